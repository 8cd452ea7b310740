// Probes with Kubernetes' semantics against real `ballast demo-app` processes: ports and env,
// httpGet readiness gating and liveness restarts, tcpSocket, exec, startup gating.

#include <fstream>
#include <sstream>

#include <gtest/gtest.h>

#include "net/client.h"
#include "test_util.h"

namespace ballast::nodeagent {
namespace {

using namespace ballast::nodeagent::testing;

model::Probe HttpProbe(const std::string& path, model::IntOrString port) {
  model::Probe p;
  p.http_get = model::HttpGetAction{};
  p.http_get->path = path;
  p.http_get->port = port;
  p.period_seconds = 1;
  p.failure_threshold = 1;
  return p;
}

model::Container DemoApp(const std::string& message) {
  model::Container c;
  c.name = "app";
  c.command = {BALLAST_BINARY, "demo-app"};
  c.args = {"--message", message};
  c.ports.push_back(model::ContainerPort{"http", 8080, "TCP", 0, model::Json::object()});
  return c;
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

class ProbesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    PodManagerOptions o;
    o.node_name = "n1";
    o.node_address = "127.0.0.3";
    o.work_dir = dir_.path();
    pm_ = std::make_unique<PodManager>(o, clock_, nullptr);
  }
  void TearDown() override {
    pm_->StopAll();
    WaitUntil([&] { return pm_->Empty(); }, [&] { pm_->Tick(); });
  }
  std::optional<model::Pod> Pod(const std::string& name) {
    auto all = pm_->Status();
    const model::Pod* p = FindPod(all, name);
    if (p == nullptr) return std::nullopt;
    return *p;
  }
  bool Until(const std::function<bool()>& cond) {
    return WaitUntil(cond, [&] { pm_->Tick(); });
  }
  bool PodIs(const std::string& name, const std::function<bool(const model::Pod&)>& pred) {
    return Until([&] {
      auto p = Pod(name);
      return p && pred(*p);
    });
  }
  net::ClientResponse Post(const std::string& address, const std::string& path) {
    net::HttpClient client;
    net::ClientRequest r;
    r.method = "POST";
    r.url = "http://" + address + path;
    auto res = client.Do(r);
    EXPECT_TRUE(res.ok()) << res.status().ToString();
    return res.ok() ? *res : net::ClientResponse{};
  }

  SystemClock clock_;
  TempDir dir_;
  std::unique_ptr<PodManager> pm_;
};

TEST_F(ProbesTest, PortsEnvironmentAndExpansion) {
  agentapi::DesiredPod pod = MakePod("env-rev1-aaaaa", {});
  model::Container c;
  c.name = "main";
  c.command = {"/bin/sh", "-c"};
  c.args = {
      "env > ../env.txt; echo '$(GREETING) $$(GREETING) $(NOPE)' > ../args.txt; exec sleep 600"};
  c.env = {model::EnvVar{"GREETING", "hi-$(HOST)-$(PORT_METRICS)", nullptr}};
  c.ports = {model::ContainerPort{"http", 8080, "TCP", 0, model::Json::object()},
             model::ContainerPort{"metrics", 9090, "TCP", 0, model::Json::object()}};
  pod.template_.spec.containers = {c};
  agentapi::DesiredService db;
  db.name = "user-db";
  db.ports = {agentapi::DesiredServicePort{"pg", "TCP", 5432, 0, {}}};
  pm_->SetDesired({pod}, {db});
  std::string pod_dir = dir_.path() + "/pods/default_env-rev1-aaaaa";
  ASSERT_TRUE(Until([&] { return ReadFile(pod_dir + "/args.txt").size() > 0; }));
  auto p = Pod("env-rev1-aaaaa");
  ASSERT_TRUE(p.has_value());
  ASSERT_EQ(p->host_ports.size(), 2u);
  int32_t http = p->host_ports.at("http"), metrics = p->host_ports.at("metrics");
  EXPECT_NE(http, metrics);
  EXPECT_EQ(p->address, "127.0.0.3:" + std::to_string(http));
  std::string env = ReadFile(pod_dir + "/env.txt");
  for (const std::string& want :
       {"PORT=" + std::to_string(http), "PORT_HTTP=" + std::to_string(http),
        "PORT_METRICS=" + std::to_string(metrics), std::string("HOST=127.0.0.3"),
        std::string("HOSTNAME=env-rev1-aaaaa"), std::string("USER_DB_SERVICE_HOST=127.0.0.3"),
        std::string("USER_DB_SERVICE_PORT=5432"), std::string("USER_DB_SERVICE_PORT_PG=5432"),
        "GREETING=hi-127.0.0.3-" + std::to_string(metrics)}) {
    EXPECT_NE(env.find(want + "\n"), std::string::npos) << "missing " << want << " in\n" << env;
  }
  EXPECT_EQ(ReadFile(pod_dir + "/args.txt"),
            "hi-127.0.0.3-" + std::to_string(metrics) + " $(GREETING) $(NOPE)\n");
}

TEST_F(ProbesTest, HttpReadinessGatesAndLivenessRestarts) {
  agentapi::DesiredPod pod = MakePod("web-rev1-bbbbb", {DemoApp("hello")});
  pod.template_.spec.containers[0].readiness_probe = HttpProbe("/healthz", std::string("http"));
  model::Probe live = HttpProbe("/", 8080);  // by number: mapped to the host port
  live.failure_threshold = 2;
  pod.template_.spec.containers[0].liveness_probe = live;
  pm_->SetDesired({pod}, {});
  ASSERT_TRUE(PodIs("web-rev1-bbbbb", [](const model::Pod& p) { return p.ready; }));
  std::string address = Pod("web-rev1-bbbbb")->address;
  net::HttpClient client;
  auto res = client.Get("http://" + address + "/");
  ASSERT_TRUE(res.ok());
  EXPECT_EQ(res->body, "hello pod=web-rev1-bbbbb revision=rev1\n");

  // Readiness fails: not ready, not restarted. Recovers: ready again.
  Post(address, "/admin/fail");
  ASSERT_TRUE(PodIs("web-rev1-bbbbb", [](const model::Pod& p) { return !p.ready; }));
  EXPECT_EQ(Pod("web-rev1-bbbbb")->restarts, 0);
  EXPECT_EQ(Pod("web-rev1-bbbbb")->phase, model::PodPhase::kRunning);
  Post(address, "/admin/recover");
  ASSERT_TRUE(PodIs("web-rev1-bbbbb", [](const model::Pod& p) { return p.ready; }));

  // Liveness: make "/" unreachable by crashing... instead point liveness at a failing path.
  agentapi::DesiredPod pod2 = MakePod("sick-rev1-ccccc", {DemoApp("sick")});
  model::Probe sick_probe = HttpProbe("/does-not-exist", std::string("http"));
  sick_probe.initial_delay_seconds = 1;  // the app listens by then; the failure is the 404
  sick_probe.failure_threshold = 2;
  pod2.template_.spec.containers[0].liveness_probe = sick_probe;
  pod2.template_.spec.termination_grace_period_seconds = 2;
  pm_->SetDesired({pod, pod2}, {});
  ASSERT_TRUE(PodIs("sick-rev1-ccccc", [](const model::Pod& p) {
    return !p.containers.empty() && p.containers[0].last_reason != "";
  }));
  auto sick = Pod("sick-rev1-ccccc");
  EXPECT_NE(sick->containers[0].message.find("liveness"), std::string::npos)
      << sick->containers[0].message;
  EXPECT_NE(sick->containers[0].message.find("404"), std::string::npos);
}

TEST_F(ProbesTest, TcpExecAndStartupProbes) {
  agentapi::DesiredPod tcp = MakePod("tcp-rev1-ddddd", {DemoApp("tcp")});
  model::Probe t;
  t.tcp_socket = model::TcpSocketAction{std::string("http"), ""};
  t.period_seconds = 1;
  tcp.template_.spec.containers[0].readiness_probe = t;

  // exec readiness: ready exactly while the file exists.
  agentapi::DesiredPod exec =
      MakePod("exec-rev1-eeeee", {ShellContainer("main", "exec sleep 600")});
  model::Probe e;
  e.exec = model::ExecAction{{"test", "-f", "ready"}};
  e.period_seconds = 1;
  e.failure_threshold = 1;
  exec.template_.spec.containers[0].readiness_probe = e;

  // startup probe gates readiness until it passes.
  agentapi::DesiredPod slow = MakePod("slow-rev1-fffff", {DemoApp("slow")});
  model::Probe s;
  s.exec = model::ExecAction{{"test", "-f", "started"}};
  s.period_seconds = 1;
  s.failure_threshold = 1000;
  slow.template_.spec.containers[0].startup_probe = s;
  slow.template_.spec.containers[0].readiness_probe = t;

  pm_->SetDesired({tcp, exec, slow}, {});
  ASSERT_TRUE(PodIs("tcp-rev1-ddddd", [](const model::Pod& p) { return p.ready; }));
  ASSERT_TRUE(PodIs("exec-rev1-eeeee", [](const model::Pod& p) {
    return p.phase == model::PodPhase::kRunning && !p.ready;
  }));
  std::string exec_work = dir_.path() + "/pods/default_exec-rev1-eeeee/work";
  { std::ofstream(exec_work + "/ready") << "1"; }
  ASSERT_TRUE(PodIs("exec-rev1-eeeee", [](const model::Pod& p) { return p.ready; }));
  std::filesystem::remove(exec_work + "/ready");
  ASSERT_TRUE(PodIs("exec-rev1-eeeee", [](const model::Pod& p) { return !p.ready; }));

  // The slow pod serves TCP already, but is not ready before its startup probe passes.
  EXPECT_FALSE(WaitUntil(
      [&] {
        auto p = Pod("slow-rev1-fffff");
        return p && p->ready;
      },
      [&] { pm_->Tick(); }, std::chrono::seconds(2)));
  { std::ofstream(dir_.path() + "/pods/default_slow-rev1-fffff/work/started") << "1"; }
  ASSERT_TRUE(PodIs("slow-rev1-fffff", [](const model::Pod& p) { return p.ready; }));
}

// A realistic manifest (periodSeconds 120, no initialDelaySeconds) whose app needs a moment
// before /healthz says 200: the pod is Ready soon after, not one whole period after start; the
// probes that came too early changed nothing (not ready, not restarted).
TEST_F(ProbesTest, StartingContainerIsReadyWithoutWaitingAFullPeriod) {
  agentapi::DesiredPod pod = MakePod("warm-rev1-ddddd", {DemoApp("warm")});
  pod.template_.spec.containers[0].args = {"--message", "warm", "--ready-after", "1"};
  model::Probe ready = HttpProbe("/healthz", std::string("http"));
  ready.period_seconds = 120;
  ready.failure_threshold = 3;
  pod.template_.spec.containers[0].readiness_probe = ready;
  pm_->SetDesired({pod}, {});
  ASSERT_TRUE(PodIs("warm-rev1-ddddd", [](const model::Pod& p) { return p.ready; }));
  EXPECT_EQ(Pod("warm-rev1-ddddd")->restarts, 0);
}

}  // namespace
}  // namespace ballast::nodeagent
