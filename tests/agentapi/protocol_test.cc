#include "agentapi/protocol.h"

#include <gtest/gtest.h>

namespace ballast::agentapi {
namespace {

using model::Json;

model::Node SomeNode() {
  model::Node n;
  n.name = "n1";
  n.address = "127.0.0.2";
  n.ready = true;
  return n;
}

DesiredPod SomePod(const std::string& name) {
  DesiredPod p;
  p.name = name;
  p.deployment = "web";
  p.revision = "abc";
  model::Container c;
  c.name = "app";
  c.command = {"/bin/true"};
  p.template_.spec.containers.push_back(c);
  p.env = {{"EXTRA", "1"}};
  return p;
}

TEST(AgentProtocol, EveryMessageRoundTripsAndNamesItsVersion) {
  DesiredState s;
  s.node = "n1";
  s.version = 7;
  s.pods = {SomePod("web-1"), SomePod("web-2")};
  DesiredService svc;
  svc.name = "web";
  svc.cluster_ip = "127.180.3.21";
  svc.ports = {{"http", "TCP", 8080, 30080, {"127.0.0.2:40123"}}};
  s.services = {svc};
  const Json j = ToJson(s);
  EXPECT_EQ(j["protocolVersion"], kProtocolVersion);
  auto back = DesiredStateFromJson(j);
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(*back, s);

  Heartbeat hb;
  hb.node = SomeNode();
  model::Pod pod;
  pod.name = "web-1";
  pod.node = "n1";
  hb.pods = {pod};
  hb.services_version = 1765000000123;
  hb.draining_endpoints = {"127.0.0.2:40123"};
  auto hb_back = HeartbeatFromJson(ToJson(hb));
  ASSERT_TRUE(hb_back.ok()) << hb_back.status().ToString();
  EXPECT_EQ(hb_back->node, hb.node);
  EXPECT_EQ(hb_back->pods, hb.pods);
  EXPECT_EQ(hb_back->services_version, hb.services_version);
  EXPECT_EQ(hb_back->draining_endpoints, hb.draining_endpoints);

  auto reg = RegisterRequestFromJson(ToJson(RegisterRequest{kProtocolVersion, SomeNode()}));
  ASSERT_TRUE(reg.ok()) << reg.status().ToString();
  EXPECT_EQ(reg->node, SomeNode());
  auto answer =
      RegisterResponseFromJson(ToJson(RegisterResponse{kProtocolVersion, 3, "cred", "logs"}));
  ASSERT_TRUE(answer.ok());
  EXPECT_EQ(answer->heartbeat_seconds, 3);
  EXPECT_EQ(answer->credential, "cred");
  EXPECT_EQ(answer->logs_token, "logs");
  // An answer whose credential is not a string is refused, naming the field.
  auto bad = RegisterResponseFromJson(Json{{"heartbeatSeconds", 3}, {"credential", 7}});
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("credential"), std::string::npos);
}

// Each ConfigMap and Secret goes once per desired state, however many pods read it; each pod
// gets back those of its own namespace it reads, bytes intact.
TEST(AgentProtocol, ConfigGoesOncePerStateAndBackToThePodsThatReadIt) {
  auto reader = [](const std::string& name, const std::string& ns) {
    DesiredPod p = SomePod(name);
    p.namespace_ = ns;
    model::EnvVar v;
    v.name = "P";
    v.value_from = Json::parse(R"({"secretKeyRef": {"name": "db", "key": "p"}})");
    p.template_.spec.containers[0].env = {v};
    return p;
  };
  const std::string bytes("\0\xff s3cr3t", 9);
  DesiredState s;
  s.node = "n1";
  s.pods = {reader("a-1", "shop"), reader("a-2", "shop"), reader("b-1", "other"), SomePod("c-1")};
  s.pods[0].config = {{"Secret", "db", {{"p", bytes}}, {}}};
  s.pods[1].config = s.pods[0].config;
  s.pods[2].config = {{"Secret", "db", {{"p", "theirs"}}, {}}};
  const Json j = ToJson(s);
  ASSERT_EQ(j["config"].size(), 2u) << j.dump();
  EXPECT_FALSE(j["pods"][0].contains("config"));
  auto back = DesiredStateFromJson(j);
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(*back, s);
  // A pod alone (the agent's record of it) keeps its own.
  auto pod = DesiredPodFromJson(ToJson(s.pods[0]));
  ASSERT_TRUE(pod.ok()) << pod.status().ToString();
  EXPECT_EQ(pod->config.at(0).data.at("p"), bytes);
  // Malformed entries are refused naming the field.
  Json bad = j;
  bad["config"][0]["data"]["p"] = "not base64!";
  auto refused = DesiredStateFromJson(bad);
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.status().message().find("desired.config[0].data.p"), std::string::npos)
      << refused.status().message();
}

TEST(AgentProtocol, AMessageWithoutAVersionIsTheFirstProtocol) {
  auto hb = HeartbeatFromJson(Json{{"node", model::ToJson(SomeNode())}, {"pods", Json::array()}});
  ASSERT_TRUE(hb.ok()) << hb.status().ToString();
  EXPECT_EQ(hb->protocol_version, 1);
  auto answer = RegisterResponseFromJson(Json{{"heartbeatSeconds", 10}});
  ASSERT_TRUE(answer.ok());
  EXPECT_EQ(answer->protocol_version, 1);
}

TEST(AgentProtocol, AVersionThisSideDoesNotSpeakIsRefusedNamingBoth) {
  Heartbeat newer;
  newer.protocol_version = kProtocolVersion + 1;
  newer.node = SomeNode();
  Json hb = ToJson(newer);
  auto r = HeartbeatFromJson(hb);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(r.status().message().find("version " + std::to_string(kProtocolVersion + 1)),
            std::string::npos)
      << r.status().message();
  EXPECT_NE(r.status().message().find("speaks 1 to " + std::to_string(kProtocolVersion)),
            std::string::npos)
      << r.status().message();
  Json desired = ToJson(DesiredState{});
  desired["protocolVersion"] = 0;
  EXPECT_EQ(DesiredStateFromJson(desired).status().code(), StatusCode::kFailedPrecondition);
  desired["protocolVersion"] = "1";
  EXPECT_EQ(DesiredStateFromJson(desired).status().code(), StatusCode::kInvalidArgument);
}

// Found by json_bodies_fuzz (UBSan: "5.55556e+64 is outside the range of representable values
// of type 'int'"): an integer field holding a float or a too-large integer is a 400 naming it,
// never a C++ conversion of it.
TEST(AgentProtocol, AnIntegerFieldTakesIntegersInRangeOnly) {
  for (const char* version :
       {"5.5e64", "1.0", "4294967297", "-9223372036854775808", "18446744073709551615"}) {
    auto r = RegisterRequestFromJson(Json::parse(std::string("{\"protocolVersion\":") + version +
                                                 ",\"node\":{\"name\":\"n\"}}"));
    ASSERT_FALSE(r.ok()) << version;
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument) << version;
    EXPECT_NE(r.status().message().find("protocolVersion: not an integer in range"),
              std::string::npos)
        << r.status().ToString();
  }
  auto hb = HeartbeatFromJson(Json::parse(R"({"node":{"name":"n"},"servicesVersion":1e300})"));
  ASSERT_FALSE(hb.ok());
  EXPECT_NE(hb.status().message().find("servicesVersion"), std::string::npos)
      << hb.status().ToString();
}

TEST(AgentProtocol, MalformedMessagesNameTheFieldAndNeverMeanNoPods) {
  const Json node = model::ToJson(SomeNode());
  // "pods" that is not a list must not read as "runs nothing".
  for (const Json& pods : {Json::object(), Json("x"), Json(3)}) {
    auto r = HeartbeatFromJson(Json{{"node", node}, {"pods", pods}});
    ASSERT_FALSE(r.ok()) << pods.dump();
    EXPECT_EQ(r.status().message().rfind("heartbeat.pods: not an array", 0), 0u)
        << r.status().message();
  }
  // The drain report is bounded and typed.
  auto many = HeartbeatFromJson(
      Json{{"node", node},
           {"drainingEndpoints", std::vector<std::string>(kMaxDrainingEndpoints + 1, "a:1")}});
  EXPECT_EQ(many.status().message().rfind("heartbeat.drainingEndpoints: more than", 0), 0u)
      << many.status().message();
  for (const Json& v : {Json("7"), Json(1.5), Json(1e300)}) {
    auto typed = HeartbeatFromJson(Json{{"node", node}, {"servicesVersion", v}});
    EXPECT_EQ(typed.status().message().rfind("heartbeat.servicesVersion: wrong type", 0), 0u)
        << v.dump() << ": " << typed.status().message();
  }
  auto no_node = HeartbeatFromJson(Json{{"pods", Json::array()}});
  EXPECT_EQ(no_node.status().message(), "heartbeat.node: required");
  EXPECT_FALSE(HeartbeatFromJson(Json::array()).ok());
  EXPECT_FALSE(RegisterRequestFromJson(Json{{"node", 1}}).ok());

  Json desired = ToJson(DesiredState{kProtocolVersion, "n1", 1, {SomePod("a"), SomePod("b")}, {}});
  desired["pods"][1]["template"] = "nope";
  auto r = DesiredStateFromJson(desired);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("desired.pods[1]"), std::string::npos)
      << r.status().message();
  desired = ToJson(DesiredState{});
  desired["services"] =
      Json::array({Json{{"name", "s"}, {"ports", Json::array({Json{{"port", 0}}})}}});
  r = DesiredStateFromJson(desired);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("ports[0].port: out of range"), std::string::npos)
      << r.status().message();
}

}  // namespace
}  // namespace ballast::agentapi
