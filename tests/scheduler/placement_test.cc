// Table tests for each placement filter, score and the reason text.

#include "scheduler/placement.h"

#include <limits>
#include <map>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include <gtest/gtest.h>

#include "tests/scheduler/fixtures.h"

namespace ballast::scheduler {
namespace {

using testing::AntiAffinityTerm;
using testing::kGi;
using testing::kMi;
using testing::MakeNode;
using testing::MakeTemplate;

// Places one pod of `t` on `nodes` and returns the result.
Placement PlaceOne(const std::vector<model::Node>& nodes, const PodTemplate& t,
                   PlacementOptions options = {}) {
  Scheduler s(nodes, options);
  return s.Place(s.AddTemplate(t));
}

std::string ReasonOnOneNode(model::Node node, const PodTemplate& t) {
  Placement p = PlaceOne({std::move(node)}, t);
  EXPECT_FALSE(p.ok()) << "placed on " << p.node;
  return p.reason;
}

TEST(PlacementFilters, EachFilterHasKubernetesReasonText) {
  const PodTemplate small = MakeTemplate("web", 100, 64 * kMi);
  struct Case {
    std::string name;
    model::Node node;
    PodTemplate pod;
    std::string reason;
  };
  std::vector<Case> cases;
  {
    auto n = MakeNode("n1", 4000, 8 * kGi);
    n.unschedulable = true;
    cases.push_back(
        {"cordoned", n, small, "0/1 nodes are available: 1 node(s) were unschedulable."});
  }
  {
    auto n = MakeNode("n1", 4000, 8 * kGi);
    n.ready = false;
    cases.push_back({"not ready", n, small,
                     "0/1 nodes are available: 1 node(s) had untolerated taint "
                     "{node.kubernetes.io/not-ready: }."});
  }
  {
    auto n = MakeNode("n1", 4000, 8 * kGi);
    n.taints.push_back({"dedicated", "gpu", "NoSchedule"});
    cases.push_back({"NoSchedule taint", n, small,
                     "0/1 nodes are available: 1 node(s) had untolerated taint {dedicated: gpu}."});
  }
  {
    auto n = MakeNode("n1", 4000, 8 * kGi);
    n.taints.push_back({"maintenance", "", "NoExecute"});
    cases.push_back({"NoExecute taint", n, small,
                     "0/1 nodes are available: 1 node(s) had untolerated taint {maintenance: }."});
  }
  {
    auto pod = small;
    pod.spec.node_selector["disk"] = "ssd";
    cases.push_back({"nodeSelector", MakeNode("n1", 4000, 8 * kGi, {{"disk", "hdd"}}), pod,
                     "0/1 nodes are available: 1 node(s) didn't match Pod's node "
                     "affinity/selector."});
  }
  {
    auto pod = small;
    pod.runtime = "docker";
    cases.push_back({"runtime", MakeNode("n1", 4000, 8 * kGi), pod,
                     "0/1 nodes are available: 1 node(s) didn't have runtime docker."});
  }
  cases.push_back({"cpu", MakeNode("n1", 500, 8 * kGi), MakeTemplate("web", 600, 64 * kMi),
                   "0/1 nodes are available: 1 Insufficient cpu."});
  cases.push_back({"memory", MakeNode("n1", 4000, 1 * kGi), MakeTemplate("web", 100, 2 * kGi),
                   "0/1 nodes are available: 1 Insufficient memory."});
  cases.push_back({"cpu and memory", MakeNode("n1", 500, 1 * kGi),
                   MakeTemplate("web", 600, 2 * kGi),
                   "0/1 nodes are available: 1 Insufficient cpu, 1 Insufficient memory."});
  {
    auto n = MakeNode("n1", 4000, 8 * kGi);
    n.max_pods = 0;
    cases.push_back({"pods", n, small, "0/1 nodes are available: 1 Too many pods."});
  }
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    EXPECT_EQ(ReasonOnOneNode(c.node, c.pod), c.reason);
  }
}

TEST(PlacementFilters, FirstFailingFilterIsReported) {
  // Cordoned and too small: kube-scheduler stops at NodeUnschedulable.
  auto n = MakeNode("n1", 100, 64 * kMi);
  n.unschedulable = true;
  EXPECT_EQ(ReasonOnOneNode(n, MakeTemplate("web", 1000, 1 * kGi)),
            "0/1 nodes are available: 1 node(s) were unschedulable.");
}

TEST(PlacementFilters, ToleratedTaintsAndCordonPass) {
  auto tainted = MakeNode("n1", 4000, 8 * kGi);
  tainted.taints.push_back({"dedicated", "gpu", "NoSchedule"});
  tainted.taints.push_back({"maintenance", "", "NoExecute"});
  auto pod = MakeTemplate("web", 100, 64 * kMi);
  pod.spec.tolerations.push_back({"dedicated", "Equal", "gpu", "NoSchedule", std::nullopt});
  EXPECT_FALSE(PlaceOne({tainted}, pod).ok()) << "NoExecute taint is still untolerated";
  pod.spec.tolerations.push_back({"maintenance", "Exists", "", "", std::nullopt});
  EXPECT_EQ(PlaceOne({tainted}, pod).node, "n1");

  // A toleration for another value or effect does not match.
  auto other = MakeTemplate("web", 100, 64 * kMi);
  other.spec.tolerations.push_back({"dedicated", "Equal", "cpu", "NoSchedule", std::nullopt});
  other.spec.tolerations.push_back({"maintenance", "Exists", "", "NoSchedule", std::nullopt});
  EXPECT_FALSE(PlaceOne({tainted}, other).ok());

  // Empty key with Exists tolerates everything, including cordons and not-ready nodes.
  auto cordoned = MakeNode("n2", 4000, 8 * kGi);
  cordoned.unschedulable = true;
  cordoned.ready = false;
  auto anything = MakeTemplate("web", 100, 64 * kMi);
  anything.spec.tolerations.push_back({"", "Exists", "", "", std::nullopt});
  EXPECT_EQ(PlaceOne({cordoned}, anything).node, "n2");
}

TEST(PlacementFilters, PreferNoScheduleDoesNotFilter) {
  auto n = MakeNode("n1", 4000, 8 * kGi);
  n.taints.push_back({"spot", "", "PreferNoSchedule"});
  EXPECT_EQ(PlaceOne({n}, MakeTemplate("web", 100, 64 * kMi)).node, "n1");
}

TEST(PlacementFilters, NodeSelectorAndRuntimeMatch) {
  auto pod = MakeTemplate("web", 100, 64 * kMi);
  pod.spec.node_selector["disk"] = "ssd";
  pod.runtime = "docker";
  auto hdd = MakeNode("a", 4000, 8 * kGi, {{"disk", "hdd"}});
  hdd.runtimes = {"process", "docker"};
  auto ssd_process = MakeNode("b", 4000, 8 * kGi, {{"disk", "ssd"}});
  auto ssd_docker = MakeNode("c", 4000, 8 * kGi, {{"disk", "ssd"}});
  ssd_docker.runtimes = {"process", "docker"};
  EXPECT_EQ(PlaceOne({hdd, ssd_process, ssd_docker}, pod).node, "c");
}

TEST(PlacementFilters, RequiredRuntimeFromTemplate) {
  model::PodTemplateSpec spec;
  model::Container c;
  c.name = "app";
  c.command = {"./server"};
  spec.spec.containers.push_back(c);
  EXPECT_EQ(RequiredRuntime(spec), "process");
  spec.spec.containers[0].image = "nginx:1.27";
  EXPECT_EQ(RequiredRuntime(spec), "process") << "a command runs as a process";
  spec.spec.containers[0].command.clear();
  EXPECT_EQ(RequiredRuntime(spec), "docker");
  spec.annotations[model::kAnnotationRuntime] = "podman";
  EXPECT_EQ(RequiredRuntime(spec), "podman");
}

TEST(PlacementFilters, HostPortConflicts) {
  auto pod = MakeTemplate("web", 100, 64 * kMi);
  model::ContainerPort port;
  port.container_port = 80;
  port.host_port = 8080;
  pod.spec.containers[0].ports.push_back(port);
  Scheduler s({MakeNode("n1", 4000, 8 * kGi)});
  TemplateId t = s.AddTemplate(pod);
  EXPECT_EQ(s.Place(t).node, "n1");
  EXPECT_EQ(s.Place(t).reason,
            "0/1 nodes are available: 1 node(s) didn't have free ports for the requested pod "
            "ports.");
  // The same port number over UDP does not conflict.
  auto udp = pod;
  udp.spec.containers[0].ports[0].protocol = "UDP";
  EXPECT_EQ(s.Place(s.AddTemplate(udp)).node, "n1");
  // Once the first pod is gone the port is free again.
  ASSERT_TRUE(s.Unbind(t, "n1"));
  EXPECT_EQ(s.Place(t).node, "n1");
}

TEST(PlacementFilters, ResourcesAccumulateAndPodsWithoutRequestsFit) {
  Scheduler s({MakeNode("n1", 1000, 1 * kGi)});
  TemplateId t = s.AddTemplate(MakeTemplate("web", 400, 256 * kMi));
  EXPECT_TRUE(s.Place(t).ok());
  EXPECT_TRUE(s.Place(t).ok());
  EXPECT_EQ(s.Place(t).reason, "0/1 nodes are available: 1 Insufficient cpu.");
  // No requests: only the pod count limits it.
  TemplateId free = s.AddTemplate(MakeTemplate("free", -1, -1));
  for (int i = 0; i < 10; ++i) EXPECT_TRUE(s.Place(free).ok());
  auto usage = s.Usage();
  ASSERT_EQ(usage.size(), 1u);
  EXPECT_EQ(usage[0].cpu_milli_requested, 800);
  EXPECT_EQ(usage[0].memory_requested, 512 * kMi);
  EXPECT_EQ(usage[0].pods, 12);
}

TEST(PlacementFilters, BindCountsExistingPodsEvenWhenOvercommitted) {
  Scheduler s({MakeNode("n1", 1000, 1 * kGi)});
  TemplateId t = s.AddTemplate(MakeTemplate("web", 800, 256 * kMi));
  EXPECT_TRUE(s.Bind(t, "n1"));
  EXPECT_TRUE(s.Bind(t, "n1"));
  EXPECT_FALSE(s.Bind(t, "nope"));
  EXPECT_EQ(s.Place(t).reason, "0/1 nodes are available: 1 Insufficient cpu.");
  EXPECT_FALSE(s.Unbind(t, "nope"));
}

TEST(PlacementFilters, RequiredAntiAffinityOnHostname) {
  auto pod = MakeTemplate("web", 100, 64 * kMi);
  pod.spec.affinity.emplace();
  pod.spec.affinity->pod_anti_affinity.emplace();
  pod.spec.affinity->pod_anti_affinity->required.push_back(
      AntiAffinityTerm("web", "kubernetes.io/hostname"));
  Scheduler s({MakeNode("a", 4000, 8 * kGi), MakeNode("b", 4000, 8 * kGi)});
  TemplateId t = s.AddTemplate(pod);
  std::set<std::string> used{s.Place(t).node, s.Place(t).node};
  EXPECT_EQ(used, (std::set<std::string>{"a", "b"}));
  EXPECT_EQ(s.Place(t).reason,
            "0/2 nodes are available: 2 node(s) didn't match pod anti-affinity rules.");
}

TEST(PlacementFilters, ExistingPodsAntiAffinityIsSymmetric) {
  // "db" refuses to share a zone with "cache"; a cache pod must then avoid db's zone.
  auto db = MakeTemplate("db", 100, 64 * kMi);
  db.spec.affinity.emplace();
  db.spec.affinity->pod_anti_affinity.emplace();
  db.spec.affinity->pod_anti_affinity->required.push_back(
      AntiAffinityTerm("cache", "topology.kubernetes.io/zone"));
  auto cache = MakeTemplate("cache", 100, 64 * kMi);
  Scheduler s({MakeNode("a1", 4000, 8 * kGi, {{"topology.kubernetes.io/zone", "a"}}),
               MakeNode("a2", 4000, 8 * kGi, {{"topology.kubernetes.io/zone", "a"}}),
               MakeNode("b1", 4000, 8 * kGi, {{"topology.kubernetes.io/zone", "b"}})});
  TemplateId tdb = s.AddTemplate(db);
  TemplateId tcache = s.AddTemplate(cache);
  ASSERT_TRUE(s.Bind(tdb, "a1"));
  for (int i = 0; i < 3; ++i) EXPECT_EQ(s.Place(tcache).node, "b1");
  // A second db pod avoids the zone where cache pods run.
  const std::string db_node = s.Place(tdb).node;
  EXPECT_TRUE(db_node == "a1" || db_node == "a2") << db_node;
  // With cache pods in both zones, a db pod fails with the incoming-pod reason.
  ASSERT_TRUE(s.Bind(tcache, "a2"));
  EXPECT_EQ(s.Place(tdb).reason,
            "0/3 nodes are available: 3 node(s) didn't match pod anti-affinity rules.");
  // A template registered later still sees the placed pods' rules.
  auto late_cache = MakeTemplate("cache", 200, 64 * kMi);
  late_cache.deployment = "cache2";
  late_cache.labels["app"] = "cache";
  Scheduler s2({MakeNode("a1", 4000, 8 * kGi, {{"topology.kubernetes.io/zone", "a"}})});
  TemplateId d2 = s2.AddTemplate(db);
  ASSERT_TRUE(s2.Bind(d2, "a1"));
  EXPECT_EQ(s2.Place(s2.AddTemplate(late_cache)).reason,
            "0/1 nodes are available: 1 node(s) didn't satisfy existing pods anti-affinity "
            "rules.");
}

TEST(PlacementReasons, CountedOverAllNodesAndSortedAsKubeScheduler) {
  std::vector<model::Node> nodes;
  for (int i = 0; i < 3; ++i) {
    nodes.push_back(MakeNode("mem" + std::to_string(i), 8000, 1 * kGi, {{"disk", "ssd"}}));
  }
  for (int i = 0; i < 2; ++i) nodes.push_back(MakeNode("hdd" + std::to_string(i), 8000, 8 * kGi));
  auto pod = MakeTemplate("web", 100, 2 * kGi);
  pod.spec.node_selector["disk"] = "ssd";
  // kube-scheduler sorts the "<count> <reason>" strings as plain strings.
  EXPECT_EQ(PlaceOne(nodes, pod).reason,
            "0/5 nodes are available: 2 node(s) didn't match Pod's node affinity/selector, "
            "3 Insufficient memory.");
  EXPECT_EQ(PlaceOne({}, pod).reason, "no nodes available to schedule pods");
}

TEST(PlacementReasons, SamplingNeverReportsAPlaceablePodAsUnschedulable) {
  // 300 full nodes and one with room: sampling keeps filtering until it finds it.
  std::vector<model::Node> nodes;
  for (int i = 0; i < 300; ++i)
    nodes.push_back(MakeNode("full" + std::to_string(1000 + i), 100, kGi));
  nodes.push_back(MakeNode("roomy", 8000, 8 * kGi));
  PlacementOptions options;
  options.nodes_to_score = 3;
  EXPECT_EQ(PlaceOne(nodes, MakeTemplate("web", 1000, kMi), options).node, "roomy");
}

TEST(PlacementScores, ExactTotalsForOneNode) {
  // TaintToleration 3*100 + PodTopologySpread 2*100 + LeastAllocated 75 + Balanced 100.
  Scheduler s({MakeNode("n1", 4000, 8 * kGi)});
  auto scores = s.ScoreAllFeasible(s.AddTemplate(MakeTemplate("web", 1000, 2 * kGi)));
  ASSERT_EQ(scores.size(), 1u);
  EXPECT_EQ(scores[0].score, 300 + 200 + 75 + 100);
}

TEST(PlacementScores, LeastAllocatedSpreadsAndMostAllocatedPacks) {
  std::vector<model::Node> nodes{MakeNode("big", 16000, 32 * kGi),
                                 MakeNode("small", 4000, 8 * kGi)};
  auto pod = MakeTemplate("", 1000, 2 * kGi);  // no Deployment: no topology spread
  EXPECT_EQ(PlaceOne(nodes, pod).node, "big");
  PlacementOptions pack;
  pack.scoring = ResourceScoring::kMostAllocated;
  EXPECT_EQ(PlaceOne(nodes, pod, pack).node, "small");
}

TEST(PlacementScores, BalancedAllocationPrefersEvenFractions) {
  // Both nodes end with the same LeastAllocated score; only the balance differs.
  Scheduler s2({MakeNode("mem-used", 4000, 8 * kGi), MakeNode("cpu-used", 4000, 8 * kGi)});
  TemplateId mem = s2.AddTemplate(MakeTemplate("", 0, 4 * kGi));
  TemplateId cpu = s2.AddTemplate(MakeTemplate("", 2000, 0));
  ASSERT_TRUE(s2.Bind(mem, "mem-used"));
  ASSERT_TRUE(s2.Bind(cpu, "cpu-used"));
  // A cpu pod evens out the node whose memory is used (50%/50% against 100%/0%).
  EXPECT_EQ(s2.Place(s2.AddTemplate(MakeTemplate("", 2000, 0))).node, "mem-used");
}

TEST(PlacementScores, PreferNoScheduleTaintIsAvoided) {
  auto spot = MakeNode("a-spot", 4000, 8 * kGi);
  spot.taints.push_back({"spot", "", "PreferNoSchedule"});
  auto plain = MakeNode("b-plain", 4000, 8 * kGi);
  for (uint64_t seed = 0; seed < 5; ++seed) {
    PlacementOptions o;
    o.seed = seed;
    EXPECT_EQ(PlaceOne({spot, plain}, MakeTemplate("web", 100, kMi), o).node, "b-plain");
  }
}

TEST(PlacementScores, ReplicasSpreadOverHostnamesAndZones) {
  // Huge nodes so that resource scores do not tell them apart.
  std::vector<model::Node> nodes{
      MakeNode("a1", 1'000'000, 1024 * kGi, {{"topology.kubernetes.io/zone", "a"}}),
      MakeNode("a2", 1'000'000, 1024 * kGi, {{"topology.kubernetes.io/zone", "a"}}),
      MakeNode("b1", 1'000'000, 1024 * kGi, {{"topology.kubernetes.io/zone", "b"}})};
  for (uint64_t seed = 0; seed < 8; ++seed) {
    PlacementOptions o;
    o.seed = seed;
    Scheduler s(nodes, o);
    TemplateId t = s.AddTemplate(MakeTemplate("web", 100, kMi));
    std::string first = s.Place(t).node;
    std::string second = s.Place(t).node;
    EXPECT_NE(first.substr(0, 1), second.substr(0, 1)) << "seed " << seed;
    std::string third = s.Place(t).node;
    EXPECT_EQ((std::set<std::string>{first, second, third}).size(), 3u) << "seed " << seed;
  }
}

TEST(PlacementScores, PreferredAntiAffinitySeparatesPods) {
  auto pod = MakeTemplate("", 100, kMi);
  pod.labels["app"] = "solo";
  pod.spec.affinity.emplace();
  pod.spec.affinity->pod_anti_affinity.emplace();
  pod.spec.affinity->pod_anti_affinity->preferred.push_back(
      {100, AntiAffinityTerm("solo", "kubernetes.io/hostname")});
  for (uint64_t seed = 0; seed < 5; ++seed) {
    PlacementOptions o;
    o.seed = seed;
    Scheduler s({MakeNode("a", 1'000'000, 1024 * kGi), MakeNode("b", 1'000'000, 1024 * kGi)}, o);
    TemplateId t = s.AddTemplate(pod);
    EXPECT_NE(s.Place(t).node, s.Place(t).node);
  }
}

TEST(PlacementDeterminism, SameInputAndSeedSameAnswers) {
  std::vector<model::Node> nodes;
  for (int i = 0; i < 40; ++i)
    nodes.push_back(MakeNode(std::string("n").append(std::to_string(i)), 8000, 16 * kGi));
  auto run = [&](uint64_t seed) {
    PlacementOptions o;
    o.seed = seed;
    Scheduler s(nodes, o);
    TemplateId t = s.AddTemplate(MakeTemplate("web", 100, 64 * kMi));
    std::vector<std::string> out;
    for (int i = 0; i < 50; ++i) out.push_back(s.Place(t).node);
    return out;
  };
  EXPECT_EQ(run(7), run(7));
  EXPECT_NE(run(7), run(8)) << "ties are broken by the seed";
}

TEST(PlacementOptionsTest, AdaptiveNodesToScoreMatchesKubeScheduler) {
  EXPECT_EQ(AdaptiveNodesToScore(50), 50);
  EXPECT_EQ(AdaptiveNodesToScore(100), 100);
  EXPECT_EQ(AdaptiveNodesToScore(500), 230);
  EXPECT_EQ(AdaptiveNodesToScore(5000), 500);
  EXPECT_EQ(AdaptiveNodesToScore(10000), 500);
  EXPECT_EQ(AdaptiveNodesToScore(200), 100);
}

TEST(PlacementTemplates, TemplateOfDeployment) {
  model::Deployment d;
  d.metadata.name = "web";
  d.metadata.namespace_ = "shop";
  d.spec.template_.labels["app"] = "web";
  model::Container c;
  c.name = "nginx";
  c.image = "nginx";
  d.spec.template_.spec.containers.push_back(c);
  PodTemplate t = TemplateOf(d);
  EXPECT_EQ(t.deployment, "web");
  EXPECT_EQ(t.namespace_, "shop");
  EXPECT_EQ(t.labels.at("app"), "web");
  EXPECT_EQ(t.runtime, "docker");
}

}  // namespace
}  // namespace ballast::scheduler

namespace ballast::scheduler {
namespace {

TEST(PlacementTemplates, FromNodeMapOfLiveState) {
  model::LiveState live;
  live.nodes["b"] = testing::MakeNode("b", 1000, testing::kGi);
  live.nodes["a"] = testing::MakeNode("a", 1000, testing::kGi);
  live.nodes["a"].unschedulable = true;
  Scheduler s = Scheduler::FromNodeMap(live.nodes);
  EXPECT_EQ(s.Place(s.AddTemplate(testing::MakeTemplate("web", 100, testing::kMi))).node, "b");
  EXPECT_EQ(s.Usage().size(), 2u);
}

}  // namespace
}  // namespace ballast::scheduler

namespace ballast::scheduler {
namespace {

TEST(PlacementInput, AbsurdQuantitiesNeitherOverflowNorCrash) {
  // Under -fsanitize=undefined any overflow in fit or score arithmetic aborts this test.
  auto huge = testing::MakeNode("huge", 0, 0);
  huge.allocatable["cpu"] = model::Quantity::FromUnits(std::numeric_limits<int64_t>::max() / 2);
  huge.allocatable["memory"] = model::Quantity::FromUnits(std::numeric_limits<int64_t>::max());
  auto tiny = testing::MakeNode("tiny", 1, 1);
  Scheduler s({huge, tiny});
  auto pod = testing::MakeTemplate("web", 0, 0);
  pod.spec.containers[0].resources.requests["memory"] =
      model::Quantity::FromUnits(std::numeric_limits<int64_t>::max());
  pod.spec.containers.push_back(pod.spec.containers[0]);
  TemplateId t = s.AddTemplate(pod);
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(s.Bind(t, "huge"));
  EXPECT_EQ(s.Place(t).reason, "0/2 nodes are available: 2 Insufficient memory.");
  TemplateId small = s.AddTemplate(testing::MakeTemplate("api", 1, 1));
  // "huge" is over-committed by the bound pods: only "tiny" fits.
  EXPECT_EQ(s.ScoreAllFeasible(small).size(), 1u);
  EXPECT_EQ(s.Place(small).node, "tiny");
}

}  // namespace
}  // namespace ballast::scheduler

namespace ballast::scheduler {
namespace {

PodTemplate WithNodeAffinity(model::NodeAffinity affinity) {
  PodTemplate t = testing::MakeTemplate("web", 100, testing::kMi);
  t.spec.affinity.emplace();
  t.spec.affinity->node_affinity = std::move(affinity);
  return t;
}

// Required nodeAffinity of one term.
model::NodeAffinity Required(model::NodeSelectorTerm term) {
  model::NodeAffinity a;
  a.required.emplace().node_selector_terms.push_back(std::move(term));
  return a;
}

model::NodeSelectorTerm Expressions(std::vector<model::NodeSelectorRequirement> requirements) {
  model::NodeSelectorTerm term;
  term.match_expressions = std::move(requirements);
  return term;
}

std::set<std::string> FeasibleNodes(const std::vector<model::Node>& nodes, const PodTemplate& t) {
  Scheduler s(nodes);
  std::set<std::string> out;
  for (const auto& ns : s.ScoreAllFeasible(s.AddTemplate(t))) out.insert(ns.node);
  return out;
}

TEST(PlacementNodeAffinity, RequiredTermsFilterWithKubernetesOperators) {
  using testing::kGi;
  std::vector<model::Node> nodes{
      testing::MakeNode("a", 4000, kGi, {{"disk", "ssd"}, {"cores", "8"}}),
      testing::MakeNode("b", 4000, kGi, {{"disk", "hdd"}, {"cores", "32"}}),
      testing::MakeNode("c", 4000, kGi, {{"cores", "x"}})};
  struct Case {
    std::vector<model::NodeSelectorRequirement> expressions;
    std::set<std::string> feasible;
  };
  const std::vector<Case> cases = {
      {{{"disk", "In", {"ssd"}}}, {"a"}},
      {{{"disk", "NotIn", {"ssd"}}}, {"b", "c"}},
      {{{"disk", "Exists", {}}}, {"a", "b"}},
      {{{"disk", "DoesNotExist", {}}}, {"c"}},
      {{{"cores", "Gt", {"16"}}}, {"b"}},
      {{{"cores", "Lt", {"16"}}}, {"a"}},
      {{{"cores", "Gt", {"x"}}}, {}},
      {{{"disk", "Near", {"ssd"}}}, {}},
      {{{"disk", "In", {"ssd"}}, {"cores", "In", {"32"}}}, {}},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.expressions.at(0).key + " " + c.expressions.at(0).op);
    EXPECT_EQ(FeasibleNodes(nodes, WithNodeAffinity(Required(Expressions(c.expressions)))),
              c.feasible);
  }
  // Terms are ORed; matchFields selects by node name.
  model::NodeAffinity ored = Required(Expressions({{"disk", "In", {"ssd"}}}));
  ored.required->node_selector_terms.emplace_back().match_fields = {{"metadata.name", "In", {"c"}}};
  EXPECT_EQ(FeasibleNodes(nodes, WithNodeAffinity(ored)), (std::set<std::string>{"a", "c"}));
  Scheduler s(nodes);
  auto none = WithNodeAffinity(Required(Expressions({{"gpu", "Exists", {}}})));
  EXPECT_EQ(s.Place(s.AddTemplate(none)).reason,
            "0/3 nodes are available: 3 node(s) didn't match Pod's node affinity/selector.");
}

TEST(PlacementNodeAffinity, MalformedAffinityMatchesNoNode) {
  // What validation refuses can still be built in code: it never throws, and a required term
  // that validation would refuse matches no node.
  std::vector<model::Node> nodes{testing::MakeNode("a", 4000, testing::kGi, {{"disk", "ssd"}})};
  model::NodeAffinity no_terms;
  no_terms.required.emplace();
  model::NodeAffinity empty_terms = Required({});
  empty_terms.required->node_selector_terms.push_back(Expressions({{}, {"", "In", {"ssd"}}}));
  model::NodeAffinity bad_fields = Required({});
  bad_fields.required->node_selector_terms.at(0).match_fields = {{"metadata.uid", "In", {"a"}}};
  bad_fields.required->node_selector_terms.emplace_back().match_fields = {
      {"metadata.name", "Exists", {}}};
  model::NodeAffinity bad_weights;
  bad_weights.preferred = {{0, Expressions({{"disk", "In", {"ssd"}}})},
                           {500, Expressions({{"disk", "In", {"ssd"}}})}};
  for (const auto& [name, affinity, feasible] :
       std::vector<std::tuple<std::string, model::NodeAffinity, size_t>>{
           {"no terms", no_terms, 0},
           {"empty terms", empty_terms, 0},
           {"bad fields", bad_fields, 0},
           {"bad weights", bad_weights, 1}}) {
    SCOPED_TRACE(name);
    Scheduler s(nodes);
    TemplateId t = s.AddTemplate(WithNodeAffinity(affinity));
    EXPECT_EQ(s.ScoreAllFeasible(t).size(), feasible);
    EXPECT_EQ(s.Place(t).ok(), feasible > 0);
  }
}

TEST(PlacementNodeAffinity, PreferredTermsPullPods) {
  // Equal nodes; the preferred one wins every time, whatever the seed.
  std::vector<model::Node> nodes{
      testing::MakeNode("a", 1'000'000, 1024 * testing::kGi, {{"disk", "hdd"}}),
      testing::MakeNode("b", 1'000'000, 1024 * testing::kGi, {{"disk", "ssd"}})};
  model::NodeAffinity prefer_ssd;
  prefer_ssd.preferred = {{50, Expressions({{"disk", "In", {"ssd"}}})}};
  auto t = WithNodeAffinity(prefer_ssd);
  t.deployment = "";  // no topology spread pushing the second pod away
  for (uint64_t seed = 0; seed < 5; ++seed) {
    PlacementOptions o;
    o.seed = seed;
    Scheduler s(nodes, o);
    TemplateId id = s.AddTemplate(t);
    EXPECT_EQ(s.Place(id).node, "b");
    EXPECT_EQ(s.Place(id).node, "b");
  }
  Scheduler s(nodes);
  auto scores = s.ScoreAllFeasible(s.AddTemplate(t));
  ASSERT_EQ(scores.size(), 2u);
  EXPECT_EQ(scores[1].score - scores[0].score, 2 * 100) << "NodeAffinity weight 2, normalized";
}

}  // namespace
}  // namespace ballast::scheduler
