// Property tests over random clusters: every placement is checked against a plain reference
// implementation of the filters. No node is over-committed, a pod is placed exactly when some
// node can take it, and the same input and seed give the same answers.

#include <algorithm>
#include <limits>
#include <map>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

#include "scheduler/placement.h"
#include "tests/scheduler/fixtures.h"

namespace ballast::scheduler {
namespace {

using testing::kGi;
using testing::kMi;
using testing::MakeNode;
using testing::MakeTemplate;

struct RandomCase {
  std::vector<model::Node> nodes;
  std::vector<PodTemplate> templates;
  std::vector<std::pair<bool, int>> ops;  // (place?, template) or (unbind, index of a placed pod)
  PlacementOptions options;
};

RandomCase MakeCase(uint32_t seed) {
  std::mt19937 rng(seed);
  auto pick = [&](int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng); };
  auto chance = [&](int percent) { return pick(1, 100) <= percent; };
  RandomCase c;
  const int num_nodes = pick(1, 40);
  const char* zones[] = {"a", "b", "c"};
  for (int i = 0; i < num_nodes; ++i) {
    model::StringMap labels;
    if (chance(80)) labels["topology.kubernetes.io/zone"] = zones[pick(0, 2)];
    labels["disk"] = chance(50) ? "ssd" : "hdd";
    auto n =
        MakeNode("node-" + std::to_string(i), pick(5, 160) * 100, pick(1, 64) * 512 * kMi, labels);
    if (chance(15)) n.taints.push_back({"dedicated", chance(50) ? "gpu" : "db", "NoSchedule"});
    if (chance(10)) n.taints.push_back({"maintenance", "", "NoExecute"});
    if (chance(15)) n.taints.push_back({"spot", "", "PreferNoSchedule"});
    n.unschedulable = chance(8);
    n.ready = !chance(8);
    n.max_pods = pick(1, 30);
    if (chance(50)) n.runtimes.push_back("docker");
    c.nodes.push_back(std::move(n));
  }
  const int num_templates = pick(1, 6);
  for (int i = 0; i < num_templates; ++i) {
    const std::string name = chance(85) ? "d" + std::to_string(i) : "";
    auto t = MakeTemplate(name, chance(10) ? -1 : pick(1, 80) * 50,
                          chance(10) ? -1 : pick(1, 128) * 64 * kMi);
    t.labels["app"] = "app" + std::to_string(i);
    if (chance(30)) t.spec.node_selector["disk"] = "ssd";
    if (chance(30)) t.spec.tolerations.push_back({"dedicated", "Equal", "gpu", "", std::nullopt});
    if (chance(10)) t.spec.tolerations.push_back({"", "Exists", "", "", std::nullopt});
    if (chance(20)) {
      model::ContainerPort port;
      port.container_port = 80;
      port.host_port = 8000 + pick(0, 2);
      t.spec.containers[0].ports.push_back(port);
    }
    if (chance(25)) {
      t.spec.affinity.emplace();
      t.spec.affinity->pod_anti_affinity.emplace();
      t.spec.affinity->pod_anti_affinity->required.push_back(testing::AntiAffinityTerm(
          "app" + std::to_string(pick(0, num_templates - 1)),
          chance(60) ? "kubernetes.io/hostname" : "topology.kubernetes.io/zone"));
    }
    if (chance(15)) t.runtime = "docker";
    c.templates.push_back(std::move(t));
  }
  const int num_ops = pick(1, 150);
  for (int i = 0; i < num_ops; ++i) {
    if (chance(10)) {
      c.ops.emplace_back(false, pick(0, 1000));
    } else {
      c.ops.emplace_back(true, pick(0, num_templates - 1));
    }
  }
  const int32_t choices[] = {kAdaptiveNodesToScore, 1, 3, kScoreAllNodes};
  c.options.nodes_to_score = choices[pick(0, 3)];
  c.options.scoring =
      chance(30) ? ResourceScoring::kMostAllocated : ResourceScoring::kLeastAllocated;
  c.options.seed = seed;
  return c;
}

// The filters written out plainly, over a list of placed pods.
class Reference {
 public:
  explicit Reference(const RandomCase& c) : c_(c) {}

  bool Feasible(int t, int node) const {
    const PodTemplate& pod = c_.templates[t];
    const model::Node& n = c_.nodes[node];
    auto tolerates = [&](const model::Taint& taint) {
      for (const auto& tol : pod.spec.tolerations) {
        if (!tol.effect.empty() && tol.effect != taint.effect) continue;
        if (!tol.key.empty() && tol.key != taint.key) continue;
        if (tol.op == "Exists" || tol.value == taint.value) return true;
      }
      return false;
    };
    if (n.unschedulable && !tolerates({"node.kubernetes.io/unschedulable", "", "NoSchedule"})) {
      return false;
    }
    std::vector<model::Taint> taints = n.taints;
    if (!n.ready) taints.push_back({"node.kubernetes.io/not-ready", "", "NoSchedule"});
    for (const auto& taint : taints) {
      if (taint.effect != "PreferNoSchedule" && !tolerates(taint)) return false;
    }
    for (const auto& [k, v] : pod.spec.node_selector) {
      if (!n.labels.count(k) || n.labels.at(k) != v) return false;
    }
    if (std::find(n.runtimes.begin(), n.runtimes.end(), pod.runtime) == n.runtimes.end()) {
      return false;
    }
    int64_t cpu = 0, mem = 0;
    int pods = 0;
    for (const auto& [pt, pn] : placed_) {
      if (pn != node) continue;
      ++pods;
      cpu += Cpu(pt);
      mem += Mem(pt);
      for (const auto& a : c_.templates[pt].spec.containers[0].ports) {
        for (const auto& b : pod.spec.containers[0].ports) {
          if (a.host_port == b.host_port && a.protocol == b.protocol) return false;
        }
      }
    }
    if (pods + 1 > n.max_pods) return false;
    if (Cpu(t) > 0 && cpu + Cpu(t) > n.allocatable.at("cpu").MilliValue()) return false;
    if (Mem(t) > 0 && mem + Mem(t) > n.allocatable.at("memory").Value()) return false;
    for (const auto& [pt, pn] : placed_) {
      if (Repels(t, pt, node, pn) || Repels(pt, t, pn, node)) return false;
    }
    return true;
  }

  void Place(int t, int node) { placed_.emplace_back(t, node); }
  void Remove(size_t i) { placed_.erase(placed_.begin() + static_cast<std::ptrdiff_t>(i)); }
  const std::vector<std::pair<int, int>>& placed() const { return placed_; }

  int64_t Cpu(int t) const {
    const auto& r = c_.templates[t].spec.containers[0].resources.requests;
    return r.count("cpu") ? r.at("cpu").MilliValue() : 0;
  }
  int64_t Mem(int t) const {
    const auto& r = c_.templates[t].spec.containers[0].resources.requests;
    return r.count("memory") ? r.at("memory").Value() : 0;
  }

 private:
  // Does a pod of `a` on node `na` refuse a pod of `b` on node `nb` (a's required terms)?
  bool Repels(int a, int b, int na, int nb) const {
    const auto& aff = c_.templates[a].spec.affinity;
    if (!aff || !aff->pod_anti_affinity) return false;
    for (const auto& term : aff->pod_anti_affinity->required) {
      if (!term.label_selector.Matches(c_.templates[b].labels)) continue;
      if (c_.templates[a].namespace_ != c_.templates[b].namespace_) continue;
      const auto& la = c_.nodes[na].labels;
      const auto& lb = c_.nodes[nb].labels;
      if (la.count(term.topology_key) && lb.count(term.topology_key) &&
          la.at(term.topology_key) == lb.at(term.topology_key)) {
        return true;
      }
    }
    return false;
  }

  const RandomCase& c_;
  std::vector<std::pair<int, int>> placed_;  // (template, node)
};

std::vector<std::string> RunCase(const RandomCase& c) {
  Scheduler s(c.nodes, c.options);
  std::vector<TemplateId> ids;
  for (const auto& t : c.templates) ids.push_back(s.AddTemplate(t));
  Reference ref(c);
  std::map<std::string, int> index;
  for (size_t i = 0; i < c.nodes.size(); ++i) index[c.nodes[i].name] = static_cast<int>(i);
  std::vector<std::string> answers;
  for (const auto& [place, arg] : c.ops) {
    if (!place) {
      if (ref.placed().empty()) continue;
      size_t i = static_cast<size_t>(arg) % ref.placed().size();
      auto [t, node] = ref.placed()[i];
      EXPECT_TRUE(s.Unbind(ids[t], c.nodes[node].name));
      ref.Remove(i);
      continue;
    }
    bool any = false;
    for (size_t n = 0; n < c.nodes.size(); ++n) any = any || ref.Feasible(arg, static_cast<int>(n));
    // Scoring every node, the chosen node is one of the best scored.
    std::map<std::string, int64_t> scores;
    int64_t best = std::numeric_limits<int64_t>::min();
    for (const auto& ns : s.ScoreAllFeasible(ids[arg])) {
      scores[ns.node] = ns.score;
      best = std::max(best, ns.score);
    }
    Placement p = s.Place(ids[arg]);
    answers.push_back(p.ok() ? p.node : p.reason);
    if (p.ok() && c.options.nodes_to_score == kScoreAllNodes) {
      EXPECT_EQ(scores.at(p.node), best) << "exhaustive placement missed the best node";
    }
    EXPECT_EQ(p.ok(), !scores.empty());
    if (p.ok()) {
      const int node = index.at(p.node);
      EXPECT_TRUE(ref.Feasible(arg, node))
          << "template " << arg << " placed on infeasible " << p.node;
      ref.Place(arg, node);
    } else {
      EXPECT_FALSE(any) << "placeable pod reported unschedulable: " << p.reason;
      EXPECT_EQ(p.reason.rfind("0/" + std::to_string(c.nodes.size()) + " nodes are available: ", 0),
                0u)
          << p.reason;
    }
  }
  // Nothing is over-committed.
  for (size_t n = 0; n < c.nodes.size(); ++n) {
    int64_t cpu = 0, mem = 0;
    int pods = 0;
    for (const auto& [t, node] : ref.placed()) {
      if (node != static_cast<int>(n)) continue;
      cpu += ref.Cpu(t);
      mem += ref.Mem(t);
      ++pods;
    }
    EXPECT_LE(cpu, c.nodes[n].allocatable.at("cpu").MilliValue());
    EXPECT_LE(mem, c.nodes[n].allocatable.at("memory").Value());
    EXPECT_LE(pods, c.nodes[n].max_pods);
  }
  auto usage = s.Usage();
  for (const auto& u : usage) EXPECT_LE(u.cpu_milli_requested, u.cpu_milli_allocatable);
  return answers;
}

TEST(PlacementProperties, RandomClustersAgreeWithReferenceFilters) {
  for (uint32_t seed = 1; seed <= 400; ++seed) {
    SCOPED_TRACE("seed " + std::to_string(seed));
    RandomCase c = MakeCase(seed);
    std::vector<std::string> first = RunCase(c);
    if (::testing::Test::HasFailure()) return;
    EXPECT_EQ(RunCase(c), first) << "not deterministic";
  }
}

TEST(PlacementProperties, NodeOrderInInputDoesNotMatter) {
  for (uint32_t seed = 1; seed <= 50; ++seed) {
    RandomCase c = MakeCase(seed);
    RandomCase reversed = c;
    std::reverse(reversed.nodes.begin(), reversed.nodes.end());
    auto place_all = [](const RandomCase& rc) {
      Scheduler s(rc.nodes, rc.options);
      std::vector<TemplateId> ids;
      for (const auto& t : rc.templates) ids.push_back(s.AddTemplate(t));
      std::vector<std::string> out;
      for (const auto& [place, arg] : rc.ops) {
        if (place) out.push_back(s.Place(ids[arg]).node);
      }
      return out;
    };
    EXPECT_EQ(place_all(c), place_all(reversed)) << "seed " << seed;
  }
}

}  // namespace
}  // namespace ballast::scheduler
