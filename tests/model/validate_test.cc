// One case per validation rule: change a valid object in one place, expect the API server's
// complaint at the right field.

#include <gtest/gtest.h>

#include "model/codec.h"
#include "model/manifest.h"
#include "test_util.h"

namespace ballast::model {
namespace {

using testing::Dump;
using testing::Errors;

struct Case {
  const char* name;
  const char* kind;                               // "Deployment" or "Service"
  std::vector<std::pair<std::string, Json>> set;  // JSON pointer -> value
  const char* field;    // expected field path of the (first) error; "" for valid
  const char* message;  // substring of the message
};

Json Base(const char* kind) {
  const char* yaml =
      std::string(kind) == "Deployment" ? testing::kMinimalDeployment : testing::kMinimalService;
  FileParseResult r = ParseManifestFile("base.yaml", yaml);
  EXPECT_TRUE(r.diagnostics.empty()) << Dump(r.diagnostics);
  return ToJson(r.manifests.at(0));
}

class ValidationTest : public ::testing::TestWithParam<Case> {};

TEST_P(ValidationTest, ReportsAtField) {
  const Case& c = GetParam();
  Json j = Base(c.kind);
  for (const auto& [pointer, value] : c.set) j[Json::json_pointer(pointer)] = value;
  FileParseResult r = ParseManifestFile("case.yaml", ToYaml(j));
  auto errors = Errors(r);
  if (std::string(c.field).empty()) {
    EXPECT_TRUE(errors.empty()) << Dump(errors);
    return;
  }
  ASSERT_FALSE(errors.empty()) << "expected an error at " << c.field << "\n" << ToYaml(j);
  bool found = false;
  for (const auto& e : errors) {
    if (e.field == c.field && e.message.find(c.message) != std::string::npos) {
      found = true;
      EXPECT_GT(e.where.line, 0) << e.ToString();
    }
  }
  EXPECT_TRUE(found) << "want " << c.field << ": " << c.message << "\ngot:\n" << Dump(errors);
}

const char* kC0 = "/spec/template/spec/containers/0";

std::string P(const char* suffix) { return std::string(kC0) + suffix; }
Json J(const char* text) { return Json::parse(text); }

const std::vector<Case> kCases = {
    Case{"valid", "Deployment", {}, "", ""},
    Case{"name_dns1123",
         "Deployment",
         {{"/metadata/name", "Web_App"}},
         "metadata.name",
         "lowercase RFC 1123 subdomain"},
    Case{
        "name_required", "Deployment", {{"/metadata/name", ""}}, "metadata.name", "Required value"},
    Case{"namespace_label",
         "Deployment",
         {{"/metadata/namespace", "a.b"}},
         "metadata.namespace",
         "RFC 1123 label"},
    Case{"label_key",
         "Deployment",
         {{"/metadata/labels", {{"-bad", "x"}}}},
         "metadata.labels.-bad",
         "name part must consist"},
    Case{"label_value",
         "Deployment",
         {{"/metadata/labels", {{"ok", "not valid!"}}}},
         "metadata.labels.ok",
         "a valid label must be"},
    Case{"replicas_negative",
         "Deployment",
         {{"/spec/replicas", -1}},
         "spec.replicas",
         "greater than or equal to 0"},
    Case{"selector_empty",
         "Deployment",
         {{"/spec/selector", Json::object()}},
         "spec.selector",
         "empty selector is invalid"},
    Case{"selector_mismatch",
         "Deployment",
         {{"/spec/template/metadata/labels", {{"app", "other"}}}},
         "spec.template.metadata.labels",
         "`selector` does not match template `labels`"},
    Case{
        "selector_expression_operator",
        "Deployment",
        {{"/spec/selector/matchExpressions", Json::array({{{"key", "app"}, {"operator", "Has"}}})}},
        "spec.selector.matchExpressions[0].operator",
        "Unsupported value: \"Has\""},
    Case{"selector_in_without_values",
         "Deployment",
         {{"/spec/selector/matchExpressions", Json::array({{{"key", "app"}, {"operator", "In"}}})}},
         "spec.selector.matchExpressions[0].values",
         "Required value"},
    Case{"containers_required",
         "Deployment",
         {{"/spec/template/spec/containers", Json::array()}},
         "spec.template.spec.containers",
         "Required value"},
    Case{"container_name",
         "Deployment",
         {{P("/name"), "Web"}},
         "spec.template.spec.containers[0].name",
         "RFC 1123 label"},
    Case{"container_duplicate",
         "Deployment",
         {{"/spec/template/spec/containers/1", {{"name", "web"}, {"image", "x"}}}},
         "spec.template.spec.containers[1].name",
         "Duplicate value: \"web\""},
    Case{"image_or_command",
         "Deployment",
         {{P("/image"), ""}},
         "spec.template.spec.containers[0].image",
         "Required value"},
    Case{"port_range",
         "Deployment",
         {{P("/ports"), {{{"containerPort", 0}}}}},
         "spec.template.spec.containers[0].ports[0].containerPort",
         "between 1 and 65535"},
    Case{"port_protocol",
         "Deployment",
         {{P("/ports"), {{{"containerPort", 80}, {"protocol", "HTTP"}}}}},
         "spec.template.spec.containers[0].ports[0].protocol",
         "Unsupported value"},
    Case{"port_name",
         "Deployment",
         {{P("/ports"), {{{"containerPort", 80}, {"name", "this-name-is-too-long"}}}}},
         "spec.template.spec.containers[0].ports[0].name",
         "no more than 15 characters"},
    Case{"port_name_duplicate",
         "Deployment",
         {{P("/ports"),
           {{{"containerPort", 80}, {"name", "http"}}, {{"containerPort", 81}, {"name", "http"}}}}},
         "spec.template.spec.containers[0].ports[1].name",
         "Duplicate value"},
    Case{"env_name",
         "Deployment",
         {{P("/env"), {{{"name", "1BAD"}, {"value", "x"}}}}},
         "spec.template.spec.containers[0].env[0].name",
         "environment variable name"},
    Case{"quantity_syntax",
         "Deployment",
         {{P("/resources/limits"), {{"cpu", "lots"}}}},
         "spec.template.spec.containers[0].resources.limits.cpu",
         "quantities must match"},
    Case{"quantity_negative",
         "Deployment",
         {{P("/resources/requests"), {{"cpu", "-1"}}}},
         "spec.template.spec.containers[0].resources.requests.cpu",
         "greater than or equal to 0"},
    Case{
        "limits_ge_requests",
        "Deployment",
        {{P("/resources"), {{"requests", {{"memory", "1Gi"}}}, {"limits", {{"memory", "512Mi"}}}}}},
        "spec.template.spec.containers[0].resources.requests.memory",
        "must be less than or equal to memory limit of 512Mi"},
    Case{"limits_equal_requests_ok",
         "Deployment",
         {{P("/resources"), {{"requests", {{"cpu", "1000m"}}}, {"limits", {{"cpu", "1"}}}}}},
         "",
         ""},
    Case{"resource_name",
         "Deployment",
         {{P("/resources/limits"), {{"cpus", "1"}}}},
         "spec.template.spec.containers[0].resources.limits.cpus",
         "standard resource"},
    Case{"probe_no_handler",
         "Deployment",
         {{P("/readinessProbe"), {{"periodSeconds", 5}}}},
         "spec.template.spec.containers[0].readinessProbe",
         "must specify a handler type"},
    Case{"probe_two_handlers",
         "Deployment",
         {{P("/readinessProbe"),
           J(R"({"tcpSocket": {"port": 80}, "exec": {"command": ["true"]}})")}},
         "spec.template.spec.containers[0].readinessProbe",
         "more than 1 handler"},
    Case{"liveness_success_threshold",
         "Deployment",
         {{P("/livenessProbe"), {{"tcpSocket", {{"port", 80}}}, {"successThreshold", 2}}}},
         "spec.template.spec.containers[0].livenessProbe.successThreshold",
         "must be 1"},
    Case{"probe_port",
         "Deployment",
         {{P("/readinessProbe"), {{"httpGet", {{"port", 0}}}}}},
         "spec.template.spec.containers[0].readinessProbe.httpGet.port",
         "between 1 and 65535"},
    Case{"probe_period",
         "Deployment",
         {{P("/readinessProbe"), {{"tcpSocket", {{"port", 80}}}, {"periodSeconds", 0}}}},
         "spec.template.spec.containers[0].readinessProbe.periodSeconds",
         "greater than or equal to 1"},
    Case{"restart_policy",
         "Deployment",
         {{"/spec/template/spec/restartPolicy", "Never"}},
         "spec.template.spec.restartPolicy",
         "supported values: \"Always\""},
    Case{"grace_negative",
         "Deployment",
         {{"/spec/template/spec/terminationGracePeriodSeconds", -1}},
         "spec.template.spec.terminationGracePeriodSeconds",
         "greater than or equal to 0"},
    Case{"toleration_operator",
         "Deployment",
         {{"/spec/template/spec/tolerations", {{{"key", "a"}, {"operator", "Is"}}}}},
         "spec.template.spec.tolerations[0].operator",
         "Unsupported value"},
    Case{"toleration_effect",
         "Deployment",
         {{"/spec/template/spec/tolerations",
           {{{"key", "a"}, {"operator", "Exists"}, {"effect", "Never"}}}}},
         "spec.template.spec.tolerations[0].effect",
         "Unsupported value"},
    Case{"toleration_seconds_needs_noexecute",
         "Deployment",
         {{"/spec/template/spec/tolerations",
           {{{"key", "a"},
             {"operator", "Exists"},
             {"effect", "NoSchedule"},
             {"tolerationSeconds", 5}}}}},
         "spec.template.spec.tolerations[0].effect",
         "NoExecute"},
    Case{"anti_affinity_topology",
         "Deployment",
         {{"/spec/template/spec/affinity",
           {{"podAntiAffinity",
             {{"requiredDuringSchedulingIgnoredDuringExecution",
               {{{"labelSelector", {{"matchLabels", {{"app", "web"}}}}}}}}}}}}},
         "spec.template.spec.affinity.podAntiAffinity."
         "requiredDuringSchedulingIgnoredDuringExecution[0].topologyKey",
         "can not be empty"},
    Case{"strategy_type",
         "Deployment",
         {{"/spec/strategy", {{"type", "BlueGreen"}}}},
         "spec.strategy.type",
         "supported values: \"Recreate\", \"RollingUpdate\""},
    Case{"recreate_with_rolling",
         "Deployment",
         {{"/spec/strategy/type", "Recreate"}},
         "spec.strategy.rollingUpdate",
         "may not be specified"},
    Case{"surge_and_unavailable_zero",
         "Deployment",
         {{"/spec/strategy/rollingUpdate", {{"maxSurge", 0}, {"maxUnavailable", "0%"}}}},
         "spec.strategy.rollingUpdate.maxUnavailable",
         "may not be 0 when `maxSurge` is 0"},
    Case{"percent_syntax",
         "Deployment",
         {{"/spec/strategy/rollingUpdate", {{"maxSurge", "25 percent"}}}},
         "spec.strategy.rollingUpdate.maxSurge",
         "valid percent string"},
    Case{"unavailable_over_100",
         "Deployment",
         {{"/spec/strategy/rollingUpdate", {{"maxUnavailable", "150%"}}}},
         "spec.strategy.rollingUpdate.maxUnavailable",
         "not be greater than 100%"},
    Case{"progress_deadline",
         "Deployment",
         {{"/spec/minReadySeconds", 30}, {"/spec/progressDeadlineSeconds", 30}},
         "spec.progressDeadlineSeconds",
         "must be greater than minReadySeconds"},
    Case{"revision_history_negative",
         "Deployment",
         {{"/spec/revisionHistoryLimit", -2}},
         "spec.revisionHistoryLimit",
         "greater than or equal to 0"},
    Case{"int_field_string",
         "Deployment",
         {{"/spec/replicas", "3"}},
         "spec.replicas",
         "expected integer"},
    Case{"service_valid", "Service", {}, "", ""},
    Case{"service_name_dns1035",
         "Service",
         {{"/metadata/name", "1web"}},
         "metadata.name",
         "DNS-1035 label"},
    Case{"service_type", "Service", {{"/spec/type", "Internal"}}, "spec.type", "Unsupported value"},
    Case{"service_ports_required",
         "Service",
         {{"/spec/ports", Json::array()}},
         "spec.ports",
         "Required value"},
    Case{"service_port_range",
         "Service",
         {{"/spec/ports/0/port", 70000}},
         "spec.ports[0].port",
         "between 1 and 65535"},
    Case{"service_multi_port_names",
         "Service",
         {{"/spec/ports/1", {{"port", 81}}}},
         "spec.ports[0].name",
         "Required value"},
    Case{"service_port_duplicate",
         "Service",
         {{"/spec/ports", {{{"port", 80}, {"name", "a"}}, {{"port", 80}, {"name", "b"}}}}},
         "spec.ports[1]",
         "Duplicate value"},
    Case{"service_target_port_name",
         "Service",
         {{"/spec/ports/0/targetPort", "Not_A_Name"}},
         "spec.ports[0].targetPort",
         "no more than 15 characters"},
    Case{"node_port_on_cluster_ip",
         "Service",
         {{"/spec/ports/0/nodePort", 30080}},
         "spec.ports[0].nodePort",
         "may not be used when `type` is 'ClusterIP'"},
    Case{"node_port_range",
         "Service",
         {{"/spec/type", "NodePort"}, {"/spec/ports/0/nodePort", 80}},
         "spec.ports[0].nodePort",
         "30000-32767"},
    Case{"node_port_ok",
         "Service",
         {{"/spec/type", "NodePort"}, {"/spec/ports/0/nodePort", 30080}},
         "",
         ""}};

INSTANTIATE_TEST_SUITE_P(Rules, ValidationTest, ::testing::ValuesIn(kCases),
                         [](const ::testing::TestParamInfo<Case>& info) {
                           return std::string(info.param.name);
                         });

TEST(ValidationTest, AllIndependentErrorsAtOnce) {
  Json j = Base("Deployment");
  j["metadata"]["name"] = "Bad_Name";
  j["spec"]["replicas"] = -3;
  j["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]["cpu"] = "x";
  auto errors = Errors(ParseManifestFile("d.yaml", ToYaml(j)));
  EXPECT_EQ(errors.size(), 3u) << Dump(errors);
}

}  // namespace
}  // namespace ballast::model
