// Container start latency beside the process runtime's, with the same pod supervisor: N pods of
// busybox httpd published at once, each runtime in turn, measuring desired set published ->
// container running and -> Ready (tcpSocket probe, periodSeconds 1), p50/p99.
//   process: /bin/busybox httpd as a process on the node;
//   docker:  the image localhost/bb:v1 (busybox-static, imported) through podman's Docker API
//            service (tests/nodeagent/podman_service.h: storage in a temp folder, runc).
// Usage: bench_containers [pods=50]

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <thread>

#include "nodeagent/docker_runtime.h"
#include "nodeagent/pods.h"
#include "tests/nodeagent/podman_service.h"
#include "tests/nodeagent/test_util.h"

using namespace ballast;
using namespace ballast::nodeagent;

namespace {

int64_t Percentile(std::vector<int64_t> v, double p) {
  if (v.empty()) return -1;
  std::sort(v.begin(), v.end());
  size_t i = static_cast<size_t>(p * static_cast<double>(v.size() - 1) + 0.5);
  return v[std::min(i, v.size() - 1)];
}

agentapi::DesiredPod HttpdPod(const std::string& runtime, int i) {
  model::Container c;
  c.name = "httpd";
  if (runtime == "process") {
    c.command = {"/bin/busybox", "httpd", "-f", "-p", "$(HOST):$(PORT)", "-h", "/tmp"};
  } else {
    c.image = "localhost/bb:v1";  // its CMD: httpd -f -p 80 -h /www
  }
  c.ports.push_back(model::ContainerPort{"http", 80, "TCP", 0, model::Json::object()});
  model::Probe ready;
  ready.tcp_socket = model::TcpSocketAction{std::string("http"), ""};
  ready.period_seconds = 1;
  c.readiness_probe = ready;
  agentapi::DesiredPod p;
  char name[64];
  std::snprintf(name, sizeof name, "%s-%03d", runtime.c_str(), i);
  p.name = name;
  p.deployment = runtime;
  p.revision = "rev1";
  p.template_.spec.containers = {c};
  p.template_.spec.termination_grace_period_seconds = 1;
  return p;
}

void Run(const std::string& runtime, int pods, DockerRuntime* docker) {
  nodeagent::testing::TempDir dir;
  SystemClock clock;
  PodManagerOptions o;
  o.node_name = "bench";
  o.node_address = "127.0.0.9";
  o.work_dir = dir.path();
  o.image_runtime = docker;
  PodManager pm(o, clock, nullptr);
  std::vector<agentapi::DesiredPod> desired;
  for (int i = 0; i < pods; ++i) desired.push_back(HttpdPod(runtime, i));
  auto t0 = std::chrono::steady_clock::now();
  auto ms = [&] {
    return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() -
                                                                 t0)
        .count();
  };
  pm.SetDesired(desired, {});
  std::map<std::string, int64_t> running, ready;
  while (static_cast<int>(ready.size()) < pods && ms() < 120'000) {
    pm.Tick();
    for (const auto& p : pm.Status()) {
      if (!p.containers.empty() && p.containers[0].state == "running")
        running.emplace(p.name, ms());
      if (p.ready) ready.emplace(p.name, ms());
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  std::vector<int64_t> r1, r2;
  for (const auto& [k, v] : running) r1.push_back(v);
  for (const auto& [k, v] : ready) r2.push_back(v);
  auto s0 = std::chrono::steady_clock::now();
  pm.StopAll();
  while (!pm.Empty()) {
    pm.Tick();
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  auto stop_ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - s0)
          .count();
  std::printf(
      "%-8s %d pods: published -> running p50 %lld ms p99 %lld ms (%zu ran); -> Ready p50 %lld "
      "ms p99 %lld ms (%zu ready); stop all %lld ms\n",
      runtime.c_str(), pods, static_cast<long long>(Percentile(r1, 0.5)),
      static_cast<long long>(Percentile(r1, 0.99)), r1.size(),
      static_cast<long long>(Percentile(r2, 0.5)), static_cast<long long>(Percentile(r2, 0.99)),
      r2.size(), static_cast<long long>(stop_ms));
}

}  // namespace

int main(int argc, char** argv) {
  int pods = argc > 1 ? std::atoi(argv[1]) : 50;
  std::string why;
  auto* podman = nodeagent::testing::PodmanService::Shared(&why);
  if (podman == nullptr) {
    std::fprintf(stderr, "podman: %s\n", why.c_str());
    return 1;
  }
  if (Status s = podman->ImportBusybox("localhost/bb:v1", "bench\n"); !s.ok()) {
    std::fprintf(stderr, "%s\n", s.message().c_str());
    nodeagent::testing::PodmanService::Shutdown();
    return 1;
  }
  Run("process", pods, nullptr);
  {
    DockerRuntimeOptions ro;
    ro.socket_path = podman->socket();
    ro.node_name = "bench";
    DockerRuntime docker(ro);
    Run("docker", pods, &docker);
  }
  nodeagent::testing::PodmanService::Shutdown();
  return 0;
}
