// A rolling update under load through the Service proxies (issue #17): the app exits at once on
// SIGTERM (demo-app does), and no request fails, because a pod leaves every proxy's endpoints,
// and the connections still going to it finish, before it is sent SIGTERM
// (reconciler/drain.cc).

#include <gtest/gtest.h>

#include <atomic>
#include <map>
#include <mutex>
#include <thread>

#include "tests/reconciler/cluster.h"

namespace ballast::reconciler::testing {
namespace {

// Clients that each send GET / to `address:port` over a new connection, again and again.
class Load {
 public:
  Load(std::string address, int port, int clients) {
    for (int i = 0; i < clients; ++i) {
      threads_.emplace_back([this, address, port] {
        while (!stop_.load()) Once(address, port);
      });
    }
  }
  ~Load() { Stop(); }
  void Stop() {
    stop_ = true;
    for (auto& t : threads_) {
      if (t.joinable()) t.join();
    }
  }
  int ok() const { return ok_.load(); }
  int failed() const { return failed_.load(); }
  // The first few failures, with what each was.
  std::string Failures() {
    std::lock_guard<std::mutex> lock(mu_);
    std::string out;
    for (const auto& [what, n] : failures_) out += what + " x" + std::to_string(n) + "\n";
    return out;
  }

 private:
  void Once(const std::string& address, int port) {
    net::ClientOptions o;
    o.timeout = std::chrono::seconds(10);
    net::HttpClient client(o);
    auto r = client.Get("http://" + address + ":" + std::to_string(port) + "/");
    if (r.ok() && r->status == 200 && r->body.find("pod=") != std::string::npos) {
      ++ok_;
      return;
    }
    ++failed_;
    std::lock_guard<std::mutex> lock(mu_);
    ++failures_[r.ok() ? "status " + std::to_string(r->status) : r.status().ToString()];
  }

  std::atomic<bool> stop_{false};
  std::atomic<int> ok_{0}, failed_{0};
  std::mutex mu_;
  std::map<std::string, int> failures_;
  std::vector<std::thread> threads_;
};

TEST(RolloutLoadE2E, ARollingUpdateUnderLoadFailsNoRequest) {
  Cluster c;
  const int port = PickFreePort();
  WebSpec w;
  w.replicas = 3;
  w.service_port = port;
  w.message = "v1";
  // Each answer takes 50 ms, so every pod has requests in flight when it is stopped, and the
  // app exits the moment SIGTERM arrives, dropping them unless nothing is sent to it any more.
  w.app_args = {"--latency-ms", "50", "--exit-on-sigterm"};
  // Kubernetes' default grace period: a drain that only waited it out would take 30 s a pod,
  // and the rollouts below (6 pods, 60 s each at most) would not finish.
  w.termination_grace_period_seconds = 30;
  c.Commit({{"web.yaml", WebManifest(w)}}, "web v1");
  ASSERT_TRUE(c.StartServe({}));
  ASSERT_TRUE(c.StartAgents(2));
  ASSERT_TRUE(WaitFor([&] { return c.RolledOut(3); })) << c.Logs();

  // Through node n2's address: its proxy forwards to pods on both nodes. The load starts once
  // the Service answers there (on a loaded machine the proxy may listen a moment after the
  // rollout shows complete; that is not what this test is about).
  ASSERT_TRUE(WaitFor([&] {
    net::ClientOptions o;
    o.timeout = std::chrono::seconds(5);
    net::HttpClient client(o);
    auto r = client.Get("http://" + Cluster::AgentAddress(0) + ":" + std::to_string(port) + "/");
    return r.ok() && r->status == 200;
  })) << c.Logs();
  Load load(Cluster::AgentAddress(0), port, 6);
  ASSERT_TRUE(WaitFor([&] { return load.ok() > 20; })) << load.Failures() << c.Logs();
  // Two rolling updates, each replacing all three pods one by one.
  for (const std::string message : {"v2", "v3"}) {
    const std::string before_revision = c.DeploymentRevision();
    w.message = message;
    c.Commit({{"web.yaml", WebManifest(w)}}, "web " + message);
    ASSERT_TRUE(WaitFor([&] {
      const std::string rev = c.DeploymentRevision();
      return !rev.empty() && rev != before_revision && c.RolledOut(3);
    })) << c.Logs();
    const int before = load.ok();
    ASSERT_TRUE(WaitFor([&] { return load.ok() > before + 20; })) << load.Failures();
  }
  load.Stop();
  std::printf("requests: %d answered, %d failed\n", load.ok(), load.failed());
  EXPECT_EQ(load.failed(), 0) << load.Failures() << c.Logs();
  EXPECT_GT(load.ok(), 60);
}

}  // namespace
}  // namespace ballast::reconciler::testing
