// Plan time and memory at fleet scale: 10,000 Deployments + 10,000 Services, 1 % of them
// changed (image changes, scales, Service port changes), with and without live state
// (3 pods per Deployment on 20 nodes, all at the applied revision).
//
// Peak memory is measured by counting heap bytes: this binary replaces operator new/delete, so
// "peak_MiB" is the most heap the measured call held at once above what was live before it.

#include <benchmark/benchmark.h>
#include <malloc.h>

#include <atomic>
#include <cstdlib>
#include <new>
#include <string>
#include <vector>

#include "diff/plan.h"
#include "diff/render.h"
#include "model/codec.h"

namespace {

std::atomic<int64_t> g_live{0};
std::atomic<int64_t> g_peak{0};

void Track(int64_t delta) {
  int64_t now = g_live.fetch_add(delta, std::memory_order_relaxed) + delta;
  int64_t peak = g_peak.load(std::memory_order_relaxed);
  while (now > peak && !g_peak.compare_exchange_weak(peak, now, std::memory_order_relaxed)) {
  }
}

}  // namespace

void* operator new(size_t n) {
  void* p = std::malloc(n == 0 ? 1 : n);
  if (p == nullptr) throw std::bad_alloc();
  Track(static_cast<int64_t>(malloc_usable_size(p)));
  return p;
}
void operator delete(void* p) noexcept {
  if (p == nullptr) return;
  Track(-static_cast<int64_t>(malloc_usable_size(p)));
  std::free(p);
}
void operator delete(void* p, size_t) noexcept { operator delete(p); }

namespace ballast::diff {
namespace {

using model::Manifest;

constexpr int kDeployments = 10000;
constexpr int kServices = 10000;
constexpr int kChangeEvery = 100;  // 1 %
constexpr int kPodsPerDeployment = 3;
constexpr int kNodes = 20;

std::string Name(int i) { return "app-" + std::to_string(i); }

Manifest MakeDeployment(int i, bool changed) {
  model::Deployment d;
  d.metadata.name = Name(i);
  d.metadata.labels = {{"app", Name(i)}, {"team", "team-" + std::to_string(i % 17)}};
  d.metadata.annotations = {{"owner", "platform"}};
  d.spec.replicas = 3;
  d.spec.selector.match_labels = {{"app", Name(i)}};
  d.spec.template_.labels = {{"app", Name(i)}};
  model::Container c;
  c.name = "main";
  c.image = "registry.local/" + Name(i) + ":1.0." + std::to_string(i % 7);
  c.command = {"/bin/server"};
  c.args = {"--port", "$(PORT)", "--log-level", "info"};
  c.env = {{"MODE", "production", nullptr},
           {"REGION", "eu-west", nullptr},
           {"SERVICE", Name(i), nullptr}};
  model::ContainerPort port;
  port.name = "http";
  port.container_port = 8080;
  c.ports = {port};
  c.resources.requests = {{"cpu", model::Quantity::FromMilli(100)},
                          {"memory", *model::Quantity::Parse("64Mi")}};
  c.resources.limits = {{"cpu", model::Quantity::FromMilli(500)},
                        {"memory", *model::Quantity::Parse("128Mi")}};
  model::Probe probe;
  probe.http_get = model::HttpGetAction{};
  probe.http_get->path = "/healthz";
  probe.http_get->port = std::string("http");
  c.readiness_probe = probe;
  d.spec.template_.spec.containers = {c};
  if (changed) {
    if (i % 200 == 0) {
      d.spec.replicas = 5;  // a scale
    } else {
      d.spec.template_.spec.containers[0].image += "-next";  // a rollout
    }
  }
  Manifest m;
  m.api_version = "apps/v1";
  m.value = std::move(d);
  return m;
}

Manifest MakeService(int i, bool changed) {
  model::Service s;
  s.metadata.name = Name(i);
  s.metadata.labels = {{"app", Name(i)}};
  s.spec.selector = {{"app", Name(i)}};
  model::ServicePort p;
  p.name = "http";
  p.port = changed ? 8080 : 80;
  p.target_port = std::string("http");
  s.spec.ports = {p};
  Manifest m;
  m.api_version = "v1";
  m.value = std::move(s);
  return m;
}

struct Fleet {
  std::vector<Manifest> desired, applied;
  model::LiveState live;
};

const Fleet& TheFleet() {
  static const Fleet* fleet = [] {
    auto* f = new Fleet;
    for (int i = 0; i < kDeployments; ++i) {
      bool changed = i % kChangeEvery == 0;
      f->desired.push_back(MakeDeployment(i, changed));
      f->applied.push_back(MakeDeployment(i, false));
    }
    for (int i = 0; i < kServices; ++i) {
      bool changed = i % kChangeEvery == 50;
      f->desired.push_back(MakeService(i, changed));
      f->applied.push_back(MakeService(i, false));
    }
    for (int n = 0; n < kNodes; ++n) {
      model::Node node;
      node.name = "node-" + std::to_string(n);
      node.ready = true;
      f->live.nodes[node.name] = node;
    }
    for (int i = 0; i < kDeployments; ++i) {
      const auto* d = f->applied[i].deployment();
      std::string rev = model::PodTemplateHash(d->spec.template_);
      for (int k = 0; k < kPodsPerDeployment; ++k) {
        model::Pod p;
        p.name = Name(i) + "-" + rev + "-" + std::to_string(k);
        p.deployment = Name(i);
        p.revision = rev;
        p.node = "node-" + std::to_string((i + k) % kNodes);
        p.phase = model::PodPhase::kRunning;
        p.ready = true;
        f->live.pods.push_back(std::move(p));
      }
    }
    return f;
  }();
  return *fleet;
}

void Report(benchmark::State& state, const Plan& plan, int64_t base) {
  state.counters["objects"] = static_cast<double>(plan.objects.size());
  state.counters["changed"] = static_cast<double>(plan.counts().update);
  state.counters["peak_MiB"] = static_cast<double>(g_peak.load() - base) / (1 << 20);
}

void BM_PlanWithoutLive(benchmark::State& state) {
  const Fleet& f = TheFleet();
  int64_t base = g_live.load();
  g_peak.store(base);
  Plan plan;
  for (auto _ : state) {
    plan = ComputePlan(f.desired, f.applied, nullptr);
    benchmark::DoNotOptimize(plan);
  }
  Report(state, plan, base);
}
BENCHMARK(BM_PlanWithoutLive)->Unit(benchmark::kMillisecond);

void BM_PlanWithLive(benchmark::State& state) {
  const Fleet& f = TheFleet();
  int64_t base = g_live.load();
  g_peak.store(base);
  Plan plan;
  for (auto _ : state) {
    plan = ComputePlan(f.desired, f.applied, &f.live);
    benchmark::DoNotOptimize(plan);
  }
  Report(state, plan, base);
  state.counters["drifted"] = static_cast<double>(plan.counts().drift);
}
BENCHMARK(BM_PlanWithLive)->Unit(benchmark::kMillisecond);

// The reconciler's steady state: template hashes remembered from the previous plan.
void BM_PlanWithLiveWarmCache(benchmark::State& state) {
  const Fleet& f = TheFleet();
  RevisionCache cache;
  PlanOptions options;
  options.revisions = &cache;
  Plan plan = ComputePlan(f.desired, f.applied, &f.live, options);
  int64_t base = g_live.load();
  g_peak.store(base);
  for (auto _ : state) {
    plan = ComputePlan(f.desired, f.applied, &f.live, options);
    benchmark::DoNotOptimize(plan);
  }
  Report(state, plan, base);
  state.counters["drifted"] = static_cast<double>(plan.counts().drift);
}
BENCHMARK(BM_PlanWithLiveWarmCache)->Unit(benchmark::kMillisecond);

void BM_RenderText(benchmark::State& state) {
  const Fleet& f = TheFleet();
  Plan plan = ComputePlan(f.desired, f.applied, nullptr);
  for (auto _ : state) {
    std::string text = RenderText(plan);
    benchmark::DoNotOptimize(text);
  }
}
BENCHMARK(BM_RenderText)->Unit(benchmark::kMillisecond);

void BM_ToJson(benchmark::State& state) {
  const Fleet& f = TheFleet();
  Plan plan = ComputePlan(f.desired, f.applied, nullptr);
  for (auto _ : state) {
    std::string text = ToJson(plan).dump();
    benchmark::DoNotOptimize(text);
  }
}
BENCHMARK(BM_ToJson)->Unit(benchmark::kMillisecond);

// What the status page asks for: only what is out of sync, with unified diffs.
void BM_ToJsonOutOfSyncWithDiffs(benchmark::State& state) {
  const Fleet& f = TheFleet();
  Plan plan = ComputePlan(f.desired, f.applied, nullptr);
  JsonOptions options;
  options.out_of_sync_only = true;
  options.include_diff = true;
  for (auto _ : state) {
    std::string text = ToJson(plan, options).dump();
    benchmark::DoNotOptimize(text);
  }
}
BENCHMARK(BM_ToJsonOutOfSyncWithDiffs)->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace ballast::diff

BENCHMARK_MAIN();
