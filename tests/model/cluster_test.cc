#include "model/cluster.h"

#include <gtest/gtest.h>

namespace ballast::model {
namespace {

TEST(ClusterTest, NodeJsonRoundTrip) {
  Node n;
  n.name = "node-1";
  n.address = "127.0.0.2";
  n.labels = {{"kubernetes.io/hostname", "node-1"}, {"topology.kubernetes.io/zone", "a"}};
  n.taints = {{"dedicated", "db", "NoSchedule"}};
  n.capacity = {{"cpu", Quantity::FromUnits(4)}, {"memory", *Quantity::Parse("8Gi")}};
  n.allocatable = n.capacity;
  n.max_pods = 50;
  n.ready = true;
  n.unschedulable = true;
  n.runtimes = {"process", "docker"};
  n.limits_enforced = true;
  n.agent_version = "0.1.0";
  n.last_heartbeat_ms = 1234;
  auto back = NodeFromJson(ToJson(n));
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(*back, n);
  EXPECT_EQ(ToJson(n)["capacity"]["memory"], "8Gi");
}

TEST(ClusterTest, PodJsonRoundTrip) {
  Pod p;
  p.name = "web-abc-xyz12";
  p.namespace_ = "shop";
  p.deployment = "web";
  p.revision = "abc";
  p.node = "node-1";
  p.phase = PodPhase::kRunning;
  p.ready = true;
  p.ready_since_ms = 99;
  p.restarts = 2;
  p.address = "127.0.0.2:40000";
  p.host_ports = {{"http", 40000}};
  p.containers.push_back({"web", true, 2, "running", "", "", 137, "OOMKilled", 5});
  p.created_ms = 7;
  auto back = PodFromJson(ToJson(p));
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(*back, p);
}

TEST(ClusterTest, BadJsonIsAnErrorNotACrash) {
  EXPECT_FALSE(NodeFromJson(Json::array()).ok());
  EXPECT_FALSE(NodeFromJson(Json{{"address", "x"}}).ok());
  EXPECT_FALSE(NodeFromJson(Json{{"name", "n"}, {"ready", "yes"}}).ok());
  EXPECT_FALSE(NodeFromJson(Json{{"name", "n"}, {"capacity", {{"cpu", "lots"}}}}).ok());
  EXPECT_FALSE(PodFromJson(Json{{"name", 5}}).ok());
  EXPECT_EQ(ParsePodPhase("Running"), PodPhase::kRunning);
  EXPECT_EQ(ParsePodPhase("bogus"), PodPhase::kUnknown);
}

}  // namespace
}  // namespace ballast::model
