// Node failure: NotReady after the grace period, pods lost after the toleration, surplus copies
// stopped when the node returns.

#include "scheduler/node_lifecycle.h"

#include <algorithm>
#include <limits>
#include <map>
#include <set>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "scheduler/placement.h"
#include "scheduler/rollout.h"
#include "tests/scheduler/fixtures.h"
#include "tests/scheduler/rollout_sim.h"

namespace ballast::scheduler {
namespace {

using testing::kGi;
using testing::MakeNode;

model::Pod PodOn(const std::string& name, const std::string& node) {
  model::Pod p;
  p.name = name;
  p.deployment = "web";
  p.revision = "aaaa";
  p.node = node;
  p.ready = true;
  p.phase = model::PodPhase::kRunning;
  return p;
}

TEST(NodeLifecycle, NotReadyAfterGraceThenPodsLostAfterToleration) {
  NodeLifecycleOptions o;
  o.grace_period_ms = 4'000;
  o.toleration_ms = 10'000;
  std::map<std::string, model::Node> nodes;
  nodes["a"] = MakeNode("a", 1000, kGi);
  nodes["b"] = MakeNode("b", 1000, kGi);
  nodes["a"].last_heartbeat_ms = 100'000;
  nodes["b"].last_heartbeat_ms = 100'000;
  std::vector<model::Pod> pods{PodOn("web-aaaa-bbbbb", "a"), PodOn("web-aaaa-ccccc", "b")};

  auto d = EvaluateNodes(nodes, pods, {}, 104'000, o);
  ASSERT_EQ(d.nodes.size(), 2u);
  EXPECT_TRUE(d.nodes[0].ready) << "exactly at the grace period still ready";
  EXPECT_EQ(d.next_check_ms, 104'001);

  nodes["b"].last_heartbeat_ms = 104'000;  // b keeps reporting, a is silent
  d = EvaluateNodes(nodes, pods, {}, 104'001, o);
  EXPECT_EQ(d.nodes[0], (NodeHealth{"a", false, true, 104'000}));
  EXPECT_TRUE(d.nodes[1].ready);
  EXPECT_TRUE(d.newly_lost.empty());
  EXPECT_EQ(d.next_check_ms, 108'001) << "b's heartbeat would go stale first";

  nodes["b"].last_heartbeat_ms = 113'000;
  d = EvaluateNodes(nodes, pods, {}, 113'999, o);
  EXPECT_TRUE(d.newly_lost.empty());
  EXPECT_EQ(d.next_check_ms, 114'000);
  d = EvaluateNodes(nodes, pods, {}, 114'000, o);
  EXPECT_EQ(d.newly_lost, std::vector<std::string>{"web-aaaa-bbbbb"});

  // Already known lost: not repeated.
  std::set<std::string> lost{"web-aaaa-bbbbb"};
  d = EvaluateNodes(nodes, pods, lost, 115'000, o);
  EXPECT_TRUE(d.newly_lost.empty());
  EXPECT_TRUE(d.stop.empty());
  EXPECT_TRUE(d.forget.empty());

  // a comes back and reports the lost pod: it is surplus.
  nodes["a"].last_heartbeat_ms = 200'000;
  nodes["b"].last_heartbeat_ms = 200'000;
  d = EvaluateNodes(nodes, pods, lost, 200'500, o);
  EXPECT_TRUE(d.nodes[0].ready);
  EXPECT_EQ(d.stop, std::vector<std::string>{"web-aaaa-bbbbb"});
  // Once it is gone from the reports it can be forgotten.
  pods.erase(pods.begin());
  d = EvaluateNodes(nodes, pods, lost, 200'600, o);
  EXPECT_TRUE(d.stop.empty());
  EXPECT_EQ(d.forget, std::vector<std::string>{"web-aaaa-bbbbb"});
}

TEST(NodeLifecycle, DefaultsAreKubernetes) {
  NodeLifecycleOptions o;
  EXPECT_EQ(o.grace_period_ms, 40'000);
  EXPECT_EQ(o.toleration_ms, 300'000);
}

TEST(NodeLifecycle, AgentReportingNotReadyKeepsItsPods) {
  std::map<std::string, model::Node> nodes;
  nodes["a"] = MakeNode("a", 1000, kGi);
  nodes["a"].ready = false;
  nodes["a"].last_heartbeat_ms = 0;
  auto d = EvaluateNodes(nodes, {PodOn("p", "a")}, {}, 1'000'000'000, {});
  EXPECT_FALSE(d.nodes[0].ready);
  EXPECT_TRUE(d.nodes[0].heartbeat_lost);
  d = EvaluateNodes(nodes, {PodOn("p", "a")}, {}, 1'000, {});
  EXPECT_FALSE(d.nodes[0].ready);
  EXPECT_FALSE(d.nodes[0].heartbeat_lost);
  EXPECT_TRUE(d.newly_lost.empty());
}

TEST(NodeLifecycle, PodsOnUnknownNodesAreLostAndUnplacedIgnored) {
  model::Pod pending = PodOn("pending", "");
  auto d = EvaluateNodes({}, {PodOn("p", "gone"), pending}, {}, 5, {});
  EXPECT_EQ(d.newly_lost, std::vector<std::string>{"p"});
  EXPECT_EQ(d.next_check_ms, 0);
}

// The whole story with the stepper: a node dies, its pods are replaced elsewhere after the
// toleration, and when it returns the count goes back to the desired one.
TEST(NodeLifecycle, FailoverWithStepperKeepsDesiredCount) {
  NodeLifecycleOptions o;
  o.grace_period_ms = 1'000;
  o.toleration_ms = 2'000;
  testing::RolloutSim sim{testing::MakeDeployment("web", 3), "aaaa"};
  sim.AddReady("aaaa", 3);
  std::map<std::string, model::Node> nodes;
  for (const auto& p : sim.pods) {
    nodes[p.node] = MakeNode(p.node, 1000, kGi);
    nodes[p.node].last_heartbeat_ms = sim.now_ms;
  }
  const std::string dead = sim.pods[0].node;
  const std::string live = sim.pods[1].node;
  ASSERT_NE(dead, live);
  std::set<std::string> lost;
  std::vector<model::Pod> on_dead_node;  // what the dead node keeps running meanwhile
  for (int tick = 0; tick < 20; ++tick) {
    sim.now_ms += 500;
    for (auto& [name, n] : nodes) {
      if (name != dead || tick >= 12) n.last_heartbeat_ms = sim.now_ms;
    }
    // While the node is away, its pods are not reported; when back, it reports them again.
    std::vector<model::Pod> reported = sim.pods;
    if (tick >= 12) {
      for (const auto& p : on_dead_node) reported.push_back(p);
      on_dead_node.clear();
    }
    auto d = EvaluateNodes(nodes, reported, lost, sim.now_ms, o);
    for (const auto& name : d.newly_lost) lost.insert(name);
    for (const auto& name : d.forget) lost.erase(name);
    // Lost pods do not count for the stepper; returned surplus is stopped.
    std::vector<model::Pod> counted;
    for (auto& p : reported) {
      if (std::find(d.stop.begin(), d.stop.end(), p.name) != d.stop.end()) p.terminating = true;
      if (lost.count(p.name) && p.node == dead && tick < 12) {
        on_dead_node.push_back(p);
        continue;
      }
      counted.push_back(p);
    }
    sim.pods = counted;
    sim.Settle();
    sim.StepAndApply();
    // The placement of replacements is not under test here: keep them off the dead node.
    for (auto& p : sim.pods) {
      if (p.node == dead && !lost.count(p.name) && p.created_ms > 1'000'000) p.node = live;
    }
  }
  sim.Settle();
  EXPECT_EQ(sim.Active(), 3);
  EXPECT_TRUE(lost.empty()) << "the surplus copy was stopped and forgotten";
}

}  // namespace
}  // namespace ballast::scheduler

namespace ballast::scheduler {
namespace {

TEST(NodeLifecycle, AbsurdHeartbeatsDoNotOverflow) {
  std::map<std::string, model::Node> nodes;
  nodes["future"] = MakeNode("future", 1000, kGi);
  nodes["future"].last_heartbeat_ms = std::numeric_limits<int64_t>::max();
  nodes["past"] = MakeNode("past", 1000, kGi);
  nodes["past"].last_heartbeat_ms = std::numeric_limits<int64_t>::min();
  auto d = EvaluateNodes(nodes, {PodOn("p", "past")}, {}, 0, {});
  EXPECT_TRUE(d.nodes[0].ready);
  EXPECT_FALSE(d.nodes[1].ready);
  EXPECT_EQ(d.newly_lost, std::vector<std::string>{"p"});
}

}  // namespace
}  // namespace ballast::scheduler

namespace ballast::scheduler {
namespace {

TEST(NodeLifecycle, ReplacementsAvoidTheNotReadyNode) {
  std::map<std::string, model::Node> nodes;
  for (const char* name : {"a", "b", "c"}) {
    nodes[name] = MakeNode(name, 4000, 8 * kGi);
    nodes[name].last_heartbeat_ms = 1'000'000;
  }
  nodes["b"].last_heartbeat_ms = 0;
  auto d = EvaluateNodes(nodes, {PodOn("web-aaaa-bbbbb", "b")}, {}, 1'000'000, {});
  ASSERT_EQ(d.newly_lost, std::vector<std::string>{"web-aaaa-bbbbb"});
  for (const NodeHealth& h : d.nodes) nodes[h.node].ready = h.ready;
  Scheduler s = Scheduler::FromNodeMap(nodes);
  TemplateId t = s.AddTemplate(testing::MakeTemplate("web", 100, 64 * testing::kMi));
  for (int i = 0; i < 20; ++i) EXPECT_NE(s.Place(t).node, "b");
  // With only the NotReady node left, the reason says why.
  std::map<std::string, model::Node> only_b{{"b", nodes["b"]}};
  Scheduler s2 = Scheduler::FromNodeMap(only_b);
  EXPECT_EQ(s2.Place(s2.AddTemplate(testing::MakeTemplate("web", 100, testing::kMi))).reason,
            "0/1 nodes are available: 1 node(s) had untolerated taint "
            "{node.kubernetes.io/not-ready: }.");
}

}  // namespace
}  // namespace ballast::scheduler
