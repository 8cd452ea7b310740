// End-to-end agent figures with the real `ballast agent` binary against an in-process control
// plane (net/ server + reconciler::DesiredStateStore), on loopback:
//   - pod start latency over 100 demo-app pods: desired set published -> process started ->
//     Ready by tcp probe (p50/p99, from the agent's own timestamps in its heartbeats);
//   - agent RSS idle and with 100 pods;
//   - proxy throughput and latency against a direct connection, with wrk (if installed).
// Usage: bench_nodeagent PATH/TO/ballast [pods=100]

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "agentapi/protocol.h"
#include "net/client.h"
#include "net/server.h"
#include "nodeagent/pods.h"
#include "reconciler/desired_state_store.h"

using namespace ballast;
using namespace ballast::nodeagent;

namespace {

constexpr char kAddress[] = "127.0.0.9";

int64_t WallMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

long RssKiB(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string key;
  long value = 0;
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmRSS:", 0) == 0) {
      std::istringstream(line.substr(6)) >> value;
      return value;
    }
  }
  return 0;
}

int64_t Percentile(std::vector<int64_t> v, double p) {
  if (v.empty()) return -1;
  std::sort(v.begin(), v.end());
  size_t i = static_cast<size_t>(p * static_cast<double>(v.size() - 1) + 0.5);
  return v[std::min(i, v.size() - 1)];
}

struct ControlPlane {
  reconciler::DesiredStateStore store;
  net::HttpServer server{net::ServerOptions{}};
  std::mutex mu;
  std::vector<model::Pod> pods;
  bool registered = false;

  bool Start() {
    net::Router r;
    r.HandleSync("POST", agentapi::kRegisterPath, [this](const net::Request&) {
      std::lock_guard<std::mutex> lock(mu);
      registered = true;
      return net::JsonResponse(200, model::Json{{"heartbeatSeconds", 1}});
    });
    r.HandleSync("POST", agentapi::kHeartbeatPath, [this](const net::Request& req) {
      auto j = net::ParseJsonBody(req);
      if (!j.ok()) return net::StatusResponse(j.status());
      auto hb = agentapi::HeartbeatFromJson(*j);
      if (!hb.ok()) return net::StatusResponse(hb.status());
      std::lock_guard<std::mutex> lock(mu);
      pods = hb->pods;
      return net::JsonResponse(200, model::Json::object());
    });
    r.Handle("GET", agentapi::kDesiredPath,
             [this](const net::Request& req, net::Responder res) { store.Serve(req, res); });
    return server.Start(std::move(r)).ok();
  }
  std::vector<model::Pod> Pods() {
    std::lock_guard<std::mutex> lock(mu);
    return pods;
  }
};

agentapi::DesiredPod DemoPod(const std::string& binary, int i) {
  model::Container c;
  c.name = "app";
  c.command = {binary, "demo-app", "--message", "bench"};
  c.ports.push_back(model::ContainerPort{"http", 8080, "TCP", 0, model::Json::object()});
  model::Probe ready;
  ready.tcp_socket = model::TcpSocketAction{std::string("http"), ""};
  ready.period_seconds = 1;
  c.readiness_probe = ready;
  agentapi::DesiredPod p;
  char name[64];
  std::snprintf(name, sizeof name, "bench-rev1-%05d", i);
  p.name = name;
  p.deployment = "bench";
  p.revision = "rev1";
  p.template_.spec.containers = {c};
  p.template_.spec.termination_grace_period_seconds = 5;
  return p;
}

bool WaitFor(const std::function<bool()>& cond, int seconds) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(seconds);
  while (std::chrono::steady_clock::now() < deadline) {
    if (cond()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return cond();
}

// Runs wrk; returns "Requests/sec" and the average latency line.
std::pair<double, std::string> Wrk(const std::string& url) {
  std::string cmd = "wrk -t2 -c32 -d10s " + url + " 2>&1";
  FILE* f = ::popen(cmd.c_str(), "r");
  if (f == nullptr) return {0, ""};
  char line[512];
  double rps = 0;
  std::string latency;
  while (std::fgets(line, sizeof line, f)) {
    std::string s(line);
    if (s.find("Requests/sec:") != std::string::npos)
      rps = std::atof(s.substr(s.find(':') + 1).c_str());
    if (s.find("Latency") != std::string::npos && latency.empty()) latency = s;
  }
  ::pclose(f);
  while (!latency.empty() && (latency.back() == '\n' || latency.back() == ' ')) latency.pop_back();
  return {rps, latency};
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s PATH/TO/ballast [pods]\n", argv[0]);
    return 2;
  }
  std::string binary = std::filesystem::absolute(argv[1]).string();
  int n = argc > 2 ? std::atoi(argv[2]) : 100;
  ControlPlane cp;
  if (!cp.Start()) return 1;
  std::string work =
      (std::filesystem::temp_directory_path() / ("ballast-bench-" + std::to_string(::getpid())))
          .string();
  pid_t agent = ::fork();
  if (agent == 0) {
    ::execl(binary.c_str(), "ballast", "agent", "--server", cp.server.url().c_str(), "--name",
            "bench", "--address", kAddress, "--work-dir", work.c_str(), "--heartbeat", "1",
            "--stop-pods-on-exit", "--no-cgroups", static_cast<char*>(nullptr));
    ::_exit(127);
  }
  if (!WaitFor(
          [&] {
            std::lock_guard<std::mutex> l(cp.mu);
            return cp.registered;
          },
          30)) {
    std::fprintf(stderr, "agent did not register\n");
    return 1;
  }
  std::this_thread::sleep_for(std::chrono::seconds(2));
  long rss_idle = RssKiB(agent);

  agentapi::DesiredState st;
  for (int i = 0; i < n; ++i) st.pods.push_back(DemoPod(binary, i));
  int64_t t0 = WallMs();
  cp.store.Set("bench", st);
  bool all_ready = WaitFor(
      [&] {
        auto pods = cp.Pods();
        return static_cast<int>(pods.size()) == n &&
               std::all_of(pods.begin(), pods.end(), [](const model::Pod& p) { return p.ready; });
      },
      180);
  auto pods = cp.Pods();
  std::vector<int64_t> started, ready;
  for (const auto& p : pods) {
    if (!p.containers.empty() && p.containers[0].started_at_ms > 0)
      started.push_back(p.containers[0].started_at_ms - t0);
    if (p.ready) ready.push_back(p.ready_since_ms - t0);
  }
  std::this_thread::sleep_for(std::chrono::seconds(2));
  long rss_pods = RssKiB(agent);
  std::printf("pods: %d (all ready: %s)\n", n, all_ready ? "yes" : "no");
  std::printf("pod start, desired set published -> process started: p50 %lld ms, p99 %lld ms\n",
              static_cast<long long>(Percentile(started, 0.5)),
              static_cast<long long>(Percentile(started, 0.99)));
  std::printf(
      "pod start, desired set published -> Ready (tcp probe, period 1 s): p50 %lld ms, p99 %lld "
      "ms\n",
      static_cast<long long>(Percentile(ready, 0.5)),
      static_cast<long long>(Percentile(ready, 0.99)));
  std::printf("agent RSS: idle %ld KiB, with %d pods %ld KiB\n", rss_idle, n, rss_pods);
  std::fflush(stdout);

  // Proxy against direct, one backend.
  if (std::system("command -v wrk >/dev/null 2>&1") == 0 && !pods.empty()) {
    std::string backend = pods[0].address;
    auto port = FreePort(kAddress);
    agentapi::DesiredService svc;
    svc.name = "web";
    svc.ports = {
        agentapi::DesiredServicePort{"http", "TCP", port.ok() ? *port : 18080, 0, {backend}}};
    st.services = {svc};
    cp.store.Set("bench", st);
    std::string proxy_url =
        std::string("http://") + kAddress + ":" + std::to_string(svc.ports[0].port) + "/";
    net::HttpClient client;
    WaitFor([&] { return client.Get(proxy_url).ok(); }, 30);
    auto direct = Wrk("http://" + backend + "/");
    auto proxied = Wrk(proxy_url);
    std::printf("direct: %.0f req/s  (%s)\n", direct.first, direct.second.c_str());
    std::printf("proxy:  %.0f req/s  (%s)\n", proxied.first, proxied.second.c_str());
    if (direct.first > 0)
      std::printf("proxy/direct: %.0f %%\n", 100.0 * proxied.first / direct.first);
  } else {
    std::printf("proxy: skipped (wrk not installed: apt-get install wrk)\n");
  }
  ::kill(agent, SIGTERM);
  int status = 0;
  ::waitpid(agent, &status, 0);
  std::error_code ec;
  std::filesystem::remove_all(work, ec);
  return all_ready ? 0 : 1;
}
