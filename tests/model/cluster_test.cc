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

namespace ballast::model {
namespace {

// Fuzz finding (json_bodies_fuzz, UBSan): a heartbeat's `restarts: 555000029202.206` went
// through nlohmann's C++ cast to int. Integer fields take JSON integers in range only.
TEST(ClusterCodec, IntegerFieldsTakeIntegersInRangeOnly) {
  for (const char* bad :
       {R"({"name": "p", "containers": [{"name": "c", "restarts": 555000029202.206}]})",
        R"({"name": "p", "restarts": 4294967296})", R"({"name": "p", "restarts": 1.5})",
        R"({"name": "p", "hostPorts": {"http": 1e300}})"}) {
    auto pod = PodFromJson(Json::parse(bad));
    ASSERT_FALSE(pod.ok()) << bad;
    EXPECT_NE(pod.status().message().find("not an integer in range"), std::string::npos)
        << pod.status().message();
  }
  auto node = NodeFromJson(Json::parse(R"({"name": "n", "maxPods": -1e20})"));
  EXPECT_FALSE(node.ok());
  auto good =
      PodFromJson(Json::parse(R"({"name": "p", "restarts": 3, "hostPorts": {"http": 8080}})"));
  ASSERT_TRUE(good.ok()) << good.status().ToString();
  EXPECT_EQ(good->restarts, 3);
  EXPECT_EQ(good->host_ports.at("http"), 8080);
}

}  // namespace
}  // namespace ballast::model
