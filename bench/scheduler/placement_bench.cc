// Placement throughput and quality. `items_per_second` is placements per second; the node
// count is in each name (BM_Place/5000). Workload: Deployments of 50 replicas whose pods request
// 50m-2 cpu and 64Mi-4Gi (uniform, fixed seed), onto nodes of 16/64Gi, 32/128Gi or 64/256Gi
// spread over three zones; 20 pods per node on average (100,000 onto 5,000 nodes, 10,000 onto
// 500).
//
// BM_Place              ballast's default: up to 1,500 feasible nodes scored per pod
// BM_PlaceKubeAdaptive  kube-scheduler's adaptive sample (500 of 5,000 nodes, 230 of 500)
// BM_PlaceLog2          a Nomad-like sample of 2*log2(n) feasible nodes
// BM_PlaceExhaustive    every feasible node scored
// BM_PlaceQuality       a sample size (second argument: -2 default, 0 kube adaptive,
//                       -1 2*log2(n), else the count), checked against exhaustive scoring every
//                       50th pod:
//                     worse_pct = share of checked pods put on a node scoring below the best
//                     node of an exhaustive pass; *_util_sd = standard deviation of node cpu and
//                     memory utilization at the end (lower is more even), also for the
//                     exhaustive run, so the two can be compared.

#include <benchmark/benchmark.h>

#include <cmath>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "scheduler/placement.h"
#include "scheduler/rollout.h"

namespace ballast::scheduler {
namespace {

constexpr int64_t kMi = 1024 * 1024;
constexpr int64_t kGi = 1024 * kMi;
constexpr int kPodsPerNode = 20;
constexpr int kReplicas = 50;

struct Workload {
  std::vector<model::Node> nodes;
  std::vector<PodTemplate> templates;  // each placed kReplicas times
};

Workload MakeWorkload(int num_nodes) {
  std::mt19937_64 rng(20261125);
  Workload w;
  const char* zones[] = {"zone-a", "zone-b", "zone-c"};
  for (int i = 0; i < num_nodes; ++i) {
    model::Node n;
    n.name = "node-" + std::to_string(100000 + i);
    n.labels["kubernetes.io/hostname"] = n.name;
    n.labels["topology.kubernetes.io/zone"] = zones[i % 3];
    const int64_t size = int64_t{1} << (rng() % 3);  // 1, 2 or 4
    n.allocatable["cpu"] = model::Quantity::FromMilli(16000 * size);
    n.allocatable["memory"] =
        model::Quantity::FromUnits(64 * kGi * size, model::Quantity::Format::kBinarySI);
    n.ready = true;
    w.nodes.push_back(std::move(n));
  }
  const int deployments = num_nodes * kPodsPerNode / kReplicas;
  for (int d = 0; d < deployments; ++d) {
    PodTemplate t;
    t.deployment = "app-" + std::to_string(d);
    t.labels["app"] = t.deployment;
    model::Container c;
    c.name = "main";
    c.command = {"./server"};
    c.resources.requests["cpu"] = model::Quantity::FromMilli(50 + rng() % 1951);
    c.resources.requests["memory"] = model::Quantity::FromUnits(
        64 * kMi + static_cast<int64_t>(rng() % (4 * kGi - 64 * kMi + 1)),
        model::Quantity::Format::kBinarySI);
    t.spec.containers.push_back(std::move(c));
    w.templates.push_back(std::move(t));
  }
  return w;
}

const Workload& WorkloadFor(int num_nodes) {
  static std::map<int, Workload> cache;
  auto it = cache.find(num_nodes);
  if (it == cache.end()) it = cache.emplace(num_nodes, MakeWorkload(num_nodes)).first;
  return it->second;
}

int32_t Log2Sample(int num_nodes) {
  return 2 * static_cast<int32_t>(std::ceil(std::log2(static_cast<double>(num_nodes))));
}

// Places every pod, replicas of a Deployment one after another as a rollout would.
int64_t PlaceAll(Scheduler& s, const Workload& w, std::vector<TemplateId>& ids) {
  int64_t placed = 0;
  for (TemplateId id : ids) {
    for (int r = 0; r < kReplicas; ++r) placed += s.Place(id).ok();
  }
  (void)w;
  return placed;
}

void RunPlacement(benchmark::State& state, int32_t nodes_to_score) {
  const int num_nodes = static_cast<int>(state.range(0));
  const Workload& w = WorkloadFor(num_nodes);
  int64_t total = 0;
  int64_t placed = 0;
  for (auto _ : state) {
    state.PauseTiming();
    PlacementOptions o;
    o.nodes_to_score = nodes_to_score;
    o.seed = 1;
    Scheduler s(w.nodes, o);
    std::vector<TemplateId> ids;
    for (const auto& t : w.templates) ids.push_back(s.AddTemplate(t));
    state.ResumeTiming();
    placed += PlaceAll(s, w, ids);
    total += static_cast<int64_t>(ids.size()) * kReplicas;
  }
  state.SetItemsProcessed(total);
  state.counters["unplaced"] = static_cast<double>(total - placed) /
                               static_cast<double>(std::max<int64_t>(1, state.iterations()));
}

void BM_Place(benchmark::State& state) { RunPlacement(state, kDefaultNodesToScore); }
void BM_PlaceKubeAdaptive(benchmark::State& state) { RunPlacement(state, kAdaptiveNodesToScore); }
void BM_PlaceLog2(benchmark::State& state) {
  RunPlacement(state, Log2Sample(static_cast<int>(state.range(0))));
}
void BM_PlaceExhaustive(benchmark::State& state) { RunPlacement(state, kScoreAllNodes); }

struct Spread {
  double cpu_sd = 0;
  double mem_sd = 0;
};

Spread UtilizationSpread(const Scheduler& s) {
  auto usage = s.Usage();
  auto sd = [&](bool cpu) {
    double sum = 0, sum2 = 0;
    for (const auto& u : usage) {
      double f =
          cpu ? static_cast<double>(u.cpu_milli_requested) /
                    static_cast<double>(u.cpu_milli_allocatable)
              : static_cast<double>(u.memory_requested) / static_cast<double>(u.memory_allocatable);
      sum += f;
      sum2 += f * f;
    }
    const double n = static_cast<double>(usage.size());
    const double mean = sum / n;
    return std::sqrt(std::max(0.0, sum2 / n - mean * mean));
  };
  return {sd(true), sd(false)};
}

void BM_PlaceQuality(benchmark::State& state) {
  const int num_nodes = static_cast<int>(state.range(0));
  const Workload& w = WorkloadFor(num_nodes);
  for (auto _ : state) {
    PlacementOptions o;
    o.seed = 1;
    o.nodes_to_score = static_cast<int32_t>(state.range(1));
    if (o.nodes_to_score == -1) o.nodes_to_score = Log2Sample(num_nodes);
    if (o.nodes_to_score == -2) o.nodes_to_score = kDefaultNodesToScore;
    Scheduler sampled(w.nodes, o);
    std::vector<TemplateId> ids;
    for (const auto& t : w.templates) ids.push_back(sampled.AddTemplate(t));
    int64_t checked = 0, worse = 0, count = 0;
    double gap = 0;
    for (TemplateId id : ids) {
      for (int r = 0; r < kReplicas; ++r) {
        if (count++ % 50 != 0) {
          sampled.Place(id);
          continue;
        }
        auto all = sampled.ScoreAllFeasible(id);
        int64_t best = 0;
        std::map<std::string, int64_t> by_node;
        for (const auto& ns : all) {
          best = std::max(best, ns.score);
          by_node[ns.node] = ns.score;
        }
        Placement p = sampled.Place(id);
        if (!p.ok()) continue;
        ++checked;
        const int64_t got = by_node[p.node];
        if (got < best) {
          ++worse;
          gap += static_cast<double>(best - got);
        }
      }
    }
    state.counters["scored"] = sampled.nodes_to_score();
    PlacementOptions all_options = o;
    all_options.nodes_to_score = kScoreAllNodes;
    Scheduler exhaustive(w.nodes, all_options);
    std::vector<TemplateId> ids2;
    for (const auto& t : w.templates) ids2.push_back(exhaustive.AddTemplate(t));
    PlaceAll(exhaustive, w, ids2);
    const Spread a = UtilizationSpread(sampled);
    const Spread b = UtilizationSpread(exhaustive);
    state.counters["worse_pct"] =
        100.0 * static_cast<double>(worse) / static_cast<double>(std::max<int64_t>(1, checked));
    state.counters["mean_gap"] = worse > 0 ? gap / static_cast<double>(worse) : 0.0;
    state.counters["cpu_util_sd"] = a.cpu_sd;
    state.counters["mem_util_sd"] = a.mem_sd;
    state.counters["exh_cpu_util_sd"] = b.cpu_sd;
    state.counters["exh_mem_util_sd"] = b.mem_sd;
  }
}

// Building a Scheduler for a pass: the nodes, one template per Deployment, and binding every
// pod that runs (the state BM_Place ends in). Items are pods bound.
void BM_BuildAndBind(benchmark::State& state) {
  const int num_nodes = static_cast<int>(state.range(0));
  const Workload& w = WorkloadFor(num_nodes);
  for (auto _ : state) {
    Scheduler s(w.nodes);
    int i = 0;
    for (const auto& t : w.templates) {
      TemplateId id = s.AddTemplate(t);
      for (int r = 0; r < kReplicas; ++r) {
        s.Bind(id, w.nodes[static_cast<size_t>(i++) % w.nodes.size()].name);
      }
    }
    benchmark::DoNotOptimize(s);
  }
  state.SetItemsProcessed(state.iterations() * static_cast<int64_t>(w.templates.size()) *
                          kReplicas);
}

// One stepper call for a Deployment of 1,000 replicas halfway through a rollout.
void BM_StepRollout(benchmark::State& state) {
  const int replicas = static_cast<int>(state.range(0));
  model::Deployment d;
  d.metadata.name = "web";
  d.spec.replicas = replicas;
  std::vector<model::Pod> pods;
  for (int i = 0; i < replicas; ++i) {
    model::Pod p;
    p.name = "web-" + std::to_string(i);
    p.deployment = "web";
    p.revision = i % 2 ? "old" : "new";
    p.node = "node-" + std::to_string(i % 97);
    p.ready = i % 5 != 0;
    p.ready_since_ms = 1000;
    p.phase = model::PodPhase::kRunning;
    pods.push_back(std::move(p));
  }
  RolloutStatus status;
  for (auto _ : state) {
    RolloutStep step = StepRollout(d, "new", pods, status, 1'000'000);
    benchmark::DoNotOptimize(step);
  }
  state.SetItemsProcessed(state.iterations());
}

BENCHMARK(BM_Place)->Arg(500)->Arg(5000)->Unit(benchmark::kMillisecond)->Iterations(3);
BENCHMARK(BM_PlaceKubeAdaptive)->Arg(500)->Arg(5000)->Unit(benchmark::kMillisecond)->Iterations(3);
BENCHMARK(BM_PlaceLog2)->Arg(500)->Arg(5000)->Unit(benchmark::kMillisecond)->Iterations(3);
BENCHMARK(BM_PlaceExhaustive)->Arg(500)->Arg(5000)->Unit(benchmark::kMillisecond)->Iterations(1);
BENCHMARK(BM_PlaceQuality)
    ->Args({500, -2})
    ->Args({500, 0})
    ->Args({5000, -2})
    ->Args({5000, 0})
    ->Args({5000, -1})
    ->Args({5000, 1000})
    ->Unit(benchmark::kMillisecond)
    ->Iterations(1);
BENCHMARK(BM_BuildAndBind)->Arg(500)->Arg(5000)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_StepRollout)->Arg(1000)->Unit(benchmark::kMicrosecond);

}  // namespace
}  // namespace ballast::scheduler

BENCHMARK_MAIN();
