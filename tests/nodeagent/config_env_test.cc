// What a container's environment reads from ConfigMaps and Secrets, as kubelet builds it:
// envFrom (with its prefix, later sources winning, invalid names skipped), then env (winning
// over envFrom), key references resolved; a missing object or key stops the container with
// kubelet's message unless the reference is optional.

#include <gtest/gtest.h>

#include <algorithm>

#include "nodeagent/container_launch.h"

namespace ballast::nodeagent {
namespace {

using model::Json;

PodState Pod(Json env, Json env_from, std::vector<agentapi::PodConfigSource> config) {
  model::Container c;
  c.name = "app";
  c.command = {"/bin/app", "$(GREETING)"};
  for (const auto& e : env) {
    model::EnvVar v;
    v.name = e["name"];
    if (e.contains("value")) v.value = e["value"];
    if (e.contains("valueFrom")) v.value_from = e["valueFrom"];
    c.env.push_back(v);
  }
  if (!env_from.is_null()) c.extra["envFrom"] = env_from;
  PodState pod;
  pod.id = "shop_web-1";
  pod.runtime = "process";
  pod.dir = "/work/pods/shop_web-1";
  pod.desired.name = "web-1";
  pod.desired.namespace_ = "shop";
  pod.desired.template_.spec.containers = {c};
  pod.desired.config = std::move(config);
  ContainerState cs;
  cs.spec = c;
  pod.containers = {cs};
  return pod;
}

agentapi::PodConfigSource Source(const std::string& kind, const std::string& name,
                                 std::map<std::string, std::string> data) {
  return {kind, name, std::move(data), {}};
}

// NAME=VALUE entries of the launch, in order.
std::vector<std::string> Env(const PodState& pod) {
  LaunchNode node;
  node.node_name = "n1";
  return BuildLaunch(pod, pod.containers[0], node).env;
}

std::string Value(const std::vector<std::string>& env, const std::string& name) {
  for (const auto& e : env) {
    if (e.rfind(name + "=", 0) == 0) return e.substr(name.size() + 1);
  }
  return "<unset>";
}

TEST(ConfigEnvTest, EnvFromThenEnvWithKeyReferences) {
  const PodState pod = Pod(
      Json::parse(
          R"J([{"name": "GREETING", "valueFrom": {"configMapKeyRef": {"name": "app", "key": "greeting"}}},
                      {"name": "DB_USER", "value": "from-env"},
                      {"name": "PASSWORD", "valueFrom": {"secretKeyRef": {"name": "db", "key": "password"}}},
                      {"name": "URL", "value": "db://$(DB_USER)"}])J"),
      Json::parse(R"J([{"secretRef": {"name": "db"}, "prefix": "DB_"},
                      {"configMapRef": {"name": "app"}}])J"),
      {Source("ConfigMap", "app", {{"greeting", "hello"}, {"1bad", "x"}, {"level", "debug"}}),
       Source("Secret", "db", {{"USER", "admin"}, {"password", "s3cr3t"}})});
  ASSERT_EQ(ContainerConfigError(pod, pod.containers[0], LaunchNode{}), "");
  const auto env = Env(pod);
  EXPECT_EQ(Value(env, "GREETING"), "hello");
  EXPECT_EQ(Value(env, "PASSWORD"), "s3cr3t");
  EXPECT_EQ(Value(env, "DB_password"), "s3cr3t");
  EXPECT_EQ(Value(env, "level"), "debug");
  EXPECT_EQ(Value(env, "1bad"), "<unset>") << "not a variable name: skipped";
  EXPECT_EQ(Value(env, "DB_USER"), "from-env") << "env wins over envFrom";
  EXPECT_EQ(Value(env, "URL"), "db://from-env");
  LaunchNode node;
  EXPECT_EQ(BuildLaunch(pod, pod.containers[0], node).command.at(1), "hello")
      << "$(VAR) in the command sees what was read";
}

TEST(ConfigEnvTest, WhatIsMissingStopsTheContainerUnlessOptional) {
  const Json key_ref = Json::parse(
      R"J([{"name": "X", "valueFrom": {"configMapKeyRef": {"name": "app", "key": "x"}}}])J");
  const Json optional_ref = Json::parse(
      R"J([{"name": "X", "valueFrom": {"configMapKeyRef": {"name": "app", "key": "x", "optional": true}}}])J");
  auto error = [](const PodState& pod) {
    return ContainerConfigError(pod, pod.containers[0], LaunchNode{});
  };
  EXPECT_EQ(error(Pod(key_ref, nullptr, {})), "configmap \"app\" not found");
  EXPECT_EQ(error(Pod(key_ref, nullptr, {Source("ConfigMap", "app", {})})),
            "couldn't find key x in ConfigMap shop/app");
  EXPECT_EQ(error(Pod(optional_ref, nullptr, {})), "");
  const PodState optional = Pod(optional_ref, nullptr, {Source("ConfigMap", "app", {})});
  EXPECT_EQ(error(optional), "");
  EXPECT_EQ(Value(Env(optional), "X"), "<unset>");
  EXPECT_EQ(error(Pod(Json::array(), Json::parse(R"J([{"secretRef": {"name": "db"}}])J"), {})),
            "secret \"db\" not found");
  EXPECT_EQ(error(Pod(Json::array(),
                      Json::parse(R"J([{"secretRef": {"name": "db", "optional": true}}])J"), {})),
            "");
  // A ConfigMap of the same name is not the Secret.
  EXPECT_EQ(error(Pod(Json::array(), Json::parse(R"J([{"secretRef": {"name": "db"}}])J"),
                      {Source("ConfigMap", "db", {{"a", "b"}})})),
            "secret \"db\" not found");
  // A NUL byte cannot go into an environment: said, never cut short silently.
  const std::string why =
      error(Pod(key_ref, nullptr, {Source("ConfigMap", "app", {{"x", std::string("a\0b", 3)}})}));
  EXPECT_NE(why.find("NUL"), std::string::npos) << why;
}

}  // namespace
}  // namespace ballast::nodeagent
