// spec.template.spec.affinity.nodeAffinity: decoded into typed terms, validated as the API server
// does, every problem reported with its file, line, column and field.

#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "model/codec.h"
#include "model/manifest.h"
#include "test_util.h"

namespace ballast::model {
namespace {

using testing::Dump;
using testing::Errors;

// A Deployment whose pod spec ends in `affinity: nodeAffinity:`; `node_affinity` is appended
// below it, its lines indented by ten spaces. Its first line is line 19 of the file.
std::string DeploymentWithNodeAffinity(const std::string& node_affinity) {
  std::string y =
      std::string(testing::kMinimalDeployment) + "      affinity:\n" + "        nodeAffinity:\n";
  size_t start = 0;
  while (start < node_affinity.size()) {
    size_t end = node_affinity.find('\n', start);
    if (end == std::string::npos) end = node_affinity.size();
    y += std::string(10, ' ') + node_affinity.substr(start, end - start) + "\n";
    start = end + 1;
  }
  return y;
}

constexpr char kRequired[] =
    "spec.template.spec.affinity.nodeAffinity."
    "requiredDuringSchedulingIgnoredDuringExecution";
constexpr char kPreferred[] =
    "spec.template.spec.affinity.nodeAffinity."
    "preferredDuringSchedulingIgnoredDuringExecution";

// Every operator, both lists of a term, and both kinds of nodeAffinity.
constexpr char kEveryOperator[] = R"(requiredDuringSchedulingIgnoredDuringExecution:
  nodeSelectorTerms:
  - matchExpressions:
    - {key: disk, operator: In, values: [ssd, nvme]}
    - {key: spot, operator: NotIn, values: ["true"]}
    - {key: gpu, operator: Exists}
    - {key: legacy, operator: DoesNotExist}
    - {key: cores, operator: Gt, values: ["8"]}
    - {key: cores, operator: Lt, values: ["-1"]}
  - matchFields:
    - {key: metadata.name, operator: NotIn, values: [node-a]}
preferredDuringSchedulingIgnoredDuringExecution:
- weight: 100
  preference:
    matchExpressions:
    - {key: topology.kubernetes.io/zone, operator: In, values: [zone-b]}
- weight: 1
  preference: {})";

TEST(NodeAffinityTest, DecodesEveryOperatorIntoTypedTerms) {
  FileParseResult r = ParseManifestFile("d.yaml", DeploymentWithNodeAffinity(kEveryOperator));
  ASSERT_TRUE(r.diagnostics.empty()) << Dump(r.diagnostics);
  const PodSpec& spec = r.manifests.at(0).deployment()->spec.template_.spec;
  ASSERT_TRUE(spec.affinity && spec.affinity->node_affinity);
  NodeSelectorTerm labels;
  labels.match_expressions = {{"disk", "In", {"ssd", "nvme"}}, {"spot", "NotIn", {"true"}},
                              {"gpu", "Exists", {}},           {"legacy", "DoesNotExist", {}},
                              {"cores", "Gt", {"8"}},          {"cores", "Lt", {"-1"}}};
  NodeSelectorTerm name;
  name.match_fields = {{"metadata.name", "NotIn", {"node-a"}}};
  NodeSelectorTerm zone;
  zone.match_expressions = {{"topology.kubernetes.io/zone", "In", {"zone-b"}}};
  NodeAffinity want;
  want.required.emplace().node_selector_terms = {labels, name};
  want.preferred = {{100, zone}, {1, {}}};
  EXPECT_EQ(*spec.affinity->node_affinity, want);
  // Acted on, so not listed among the fields ballast keeps without using them.
  const auto& ignored = r.manifests[0].ignored_fields;
  EXPECT_EQ(std::count_if(ignored.begin(), ignored.end(),
                          [](const std::string& f) { return f.find("nodeAffinity") != f.npos; }),
            0);
}

TEST(NodeAffinityTest, RoundTripsAndKeepsItsTemplateHash) {
  FileParseResult r = ParseManifestFile("d.yaml", DeploymentWithNodeAffinity(kEveryOperator));
  ASSERT_TRUE(r.diagnostics.empty()) << Dump(r.diagnostics);
  const Manifest& m = r.manifests.at(0);
  FileParseResult again = ParseManifestFile("again.yaml", ToYaml(m));
  ASSERT_TRUE(again.diagnostics.empty()) << Dump(again.diagnostics);
  EXPECT_EQ(again.manifests.at(0).value, m.value);
  // The hash this template had when nodeAffinity was kept verbatim: running pods keep their
  // revision across the change.
  const PodTemplateSpec& t = m.deployment()->spec.template_;
  EXPECT_EQ(PodTemplateHash(t), "ndf5jt7tvv");
  EXPECT_EQ(PodTemplateHash(PodTemplateFromJson(PodTemplateToJson(t)).value()), "ndf5jt7tvv");
}

struct MalformedAffinity {
  const char* name;
  const char* yaml;      // appended under nodeAffinity (line 19 on)
  std::string expected;  // the only error, as `ballast validate` prints it
};

class NodeAffinityErrorTest : public ::testing::TestWithParam<MalformedAffinity> {};

TEST_P(NodeAffinityErrorTest, ReportsOneErrorAtItsPosition) {
  const MalformedAffinity& c = GetParam();
  FileParseResult r = ParseManifestFile("web.yaml", DeploymentWithNodeAffinity(c.yaml));
  std::vector<Diagnostic> errors = Errors(r);
  ASSERT_EQ(errors.size(), 1u) << Dump(r.diagnostics);
  EXPECT_EQ(errors[0].ToString(), c.expected);
  EXPECT_TRUE(r.manifests.empty()) << "a Deployment with an error is not used";
}

// Each term path below nodeAffinity, for the expected messages.
std::string Term(const char* rest) {
  return std::string(kRequired) + ".nodeSelectorTerms[0]." + rest;
}

const std::vector<MalformedAffinity> kMalformedAffinities = {
    {"in_without_values",
     R"(requiredDuringSchedulingIgnoredDuringExecution:
  nodeSelectorTerms:
  - matchExpressions:
    - key: disk
      operator: In)",
     "web.yaml:22:17: error: Required value: must be specified when `operator` is 'In' or "
     "'NotIn' (" +
         Term("matchExpressions[0].values") + ")"},
    {"not_in_with_empty_values",
     R"(requiredDuringSchedulingIgnoredDuringExecution:
  nodeSelectorTerms:
  - matchExpressions:
    - {key: disk, operator: NotIn, values: []})",
     "web.yaml:22:54: error: Required value: must be specified when `operator` is 'In' or "
     "'NotIn' (" +
         Term("matchExpressions[0].values") + ")"},
    {"exists_with_values",
     R"(requiredDuringSchedulingIgnoredDuringExecution:
  nodeSelectorTerms:
  - matchExpressions:
    - {key: disk, operator: Exists, values: [ssd]})",
     "web.yaml:22:55: error: Forbidden: may not be specified when `operator` is 'Exists' or "
     "'DoesNotExist' (" +
         Term("matchExpressions[0].values") + ")"},
    {"does_not_exist_with_values",
     R"(requiredDuringSchedulingIgnoredDuringExecution:
  nodeSelectorTerms:
  - matchExpressions:
    - key: disk
      operator: DoesNotExist
    - key: spot
      operator: DoesNotExist
      values: ["true"])",
     "web.yaml:26:25: error: Forbidden: may not be specified when `operator` is 'Exists' or "
     "'DoesNotExist' (" +
         Term("matchExpressions[1].values") + ")"},
    {"gt_with_two_values",
     R"(requiredDuringSchedulingIgnoredDuringExecution:
  nodeSelectorTerms:
  - matchExpressions:
    - {key: cores, operator: Gt, values: ["8", "16"]})",
     "web.yaml:22:52: error: Required value: must be specified single value when `operator` is "
     "'Lt' or 'Gt' (" +
         Term("matchExpressions[0].values") + ")"},
    {"lt_without_values",
     R"(requiredDuringSchedulingIgnoredDuringExecution:
  nodeSelectorTerms:
  - matchExpressions:
    - {key: cores, operator: Lt})",
     "web.yaml:22:17: error: Required value: must be specified single value when `operator` is "
     "'Lt' or 'Gt' (" +
         Term("matchExpressions[0].values") + ")"},
    {"gt_not_an_integer",
     R"(requiredDuringSchedulingIgnoredDuringExecution:
  nodeSelectorTerms:
  - matchExpressions:
    - {key: cores, operator: Gt, values: ["eight"]})",
     "web.yaml:22:53: error: Invalid value: \"eight\": must be an integer when `operator` is "
     "'Lt' or 'Gt' (" +
         Term("matchExpressions[0].values[0]") + ")"},
    {"gt_unquoted_number",
     R"(requiredDuringSchedulingIgnoredDuringExecution:
  nodeSelectorTerms:
  - matchExpressions:
    - {key: cores, operator: Gt, values: [8]})",
     "web.yaml:22:53: error: Invalid type: expected string, got number (quote it: \"8\") (" +
         Term("matchExpressions[0].values[0]") + ")"},
    {"unknown_operator",
     R"(requiredDuringSchedulingIgnoredDuringExecution:
  nodeSelectorTerms:
  - matchExpressions:
    - {key: disk, operator: Near, values: [ssd]})",
     "web.yaml:22:39: error: Invalid value: \"Near\": not a valid selector operator (" +
         Term("matchExpressions[0].operator") + ")"},
    {"missing_operator",
     R"(requiredDuringSchedulingIgnoredDuringExecution:
  nodeSelectorTerms:
  - matchExpressions:
    - {key: disk, values: [ssd]})",
     "web.yaml:22:17: error: Invalid value: \"\": not a valid selector operator (" +
         Term("matchExpressions[0].operator") + ")"},
    {"key_not_a_label_name",
     R"(requiredDuringSchedulingIgnoredDuringExecution:
  nodeSelectorTerms:
  - matchExpressions:
    - {key: "disk type", operator: Exists})",
     "web.yaml:22:23: error: Invalid value: \"disk type\": name part must consist of "
     "alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric "
     "character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is "
     "'([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]') with an optional DNS subdomain prefix and '/' "
     "(e.g. 'example.com/MyName') (" +
         Term("matchExpressions[0].key") + ")"},
    {"key_missing",
     R"(requiredDuringSchedulingIgnoredDuringExecution:
  nodeSelectorTerms:
  - matchExpressions:
    - {operator: Exists})",
     "web.yaml:22:17: error: Invalid value: \"\": name part must be non-empty (" +
         Term("matchExpressions[0].key") + ")"},
    {"field_key_unknown",
     R"(requiredDuringSchedulingIgnoredDuringExecution:
  nodeSelectorTerms:
  - matchFields:
    - {key: metadata.uid, operator: In, values: [abc]})",
     "web.yaml:22:23: error: Invalid value: \"metadata.uid\": not a valid field selector key (" +
         Term("matchFields[0].key") + ")"},
    {"field_operator_exists",
     R"(requiredDuringSchedulingIgnoredDuringExecution:
  nodeSelectorTerms:
  - matchFields:
    - {key: metadata.name, operator: Exists})",
     "web.yaml:22:48: error: Invalid value: \"Exists\": not a valid selector operator (" +
         Term("matchFields[0].operator") + ")"},
    {"field_two_values",
     R"(requiredDuringSchedulingIgnoredDuringExecution:
  nodeSelectorTerms:
  - matchFields:
    - {key: metadata.name, operator: In, values: [a, b]})",
     "web.yaml:22:60: error: Required value: must be only one value when `operator` is 'In' or "
     "'NotIn' for node field selector (" +
         Term("matchFields[0].values") + ")"},
    {"required_without_terms", R"(requiredDuringSchedulingIgnoredDuringExecution: {})",
     "web.yaml:19:59: error: Required value: must have at least one node selector term (" +
         std::string(kRequired) + ".nodeSelectorTerms)"},
    {"required_with_empty_terms",
     R"(requiredDuringSchedulingIgnoredDuringExecution:
  nodeSelectorTerms: [])",
     "web.yaml:20:32: error: Required value: must have at least one node selector term (" +
         std::string(kRequired) + ".nodeSelectorTerms)"},
    {"misspelt_term_field",
     R"(requiredDuringSchedulingIgnoredDuringExecution:
  nodeSelectorTerms:
  - matchExpresions:
    - {key: disk, operator: Exists})",
     "web.yaml:22:15: error: unknown field \"matchExpresions\" in node selector term (" +
         Term("matchExpresions") + ")"},
    {"misspelt_requirement_field",
     R"(requiredDuringSchedulingIgnoredDuringExecution:
  nodeSelectorTerms:
  - matchExpressions:
    - {key: disk, operator: Exists, vaules: []})",
     "web.yaml:22:55: error: unknown field \"vaules\" in node selector requirement (" +
         Term("matchExpressions[0].vaules") + ")"},
    {"unknown_node_affinity_field",
     R"(requiredDuringSchedulingRequiredDuringExecution:
  nodeSelectorTerms: [])",
     "web.yaml:20:13: error: unknown field \"requiredDuringSchedulingRequiredDuringExecution\" "
     "in node affinity (spec.template.spec.affinity.nodeAffinity."
     "requiredDuringSchedulingRequiredDuringExecution)"},
    {"node_affinity_not_an_object", R"("junk")",
     "web.yaml:19:11: error: Invalid type: expected object, got string "
     "(spec.template.spec.affinity.nodeAffinity)"},
    {"required_not_an_object", R"(requiredDuringSchedulingIgnoredDuringExecution: 7)",
     "web.yaml:19:59: error: Invalid type: expected object, got number (" + std::string(kRequired) +
         ")"},
    {"term_not_an_object",
     R"(requiredDuringSchedulingIgnoredDuringExecution:
  nodeSelectorTerms: [3])",
     "web.yaml:20:33: error: Invalid type: expected object, got number (" + std::string(kRequired) +
         ".nodeSelectorTerms[0])"},
    {"weight_zero",
     R"(preferredDuringSchedulingIgnoredDuringExecution:
- weight: 0
  preference:
    matchExpressions: [{key: disk, operator: Exists}])",
     "web.yaml:20:21: error: Invalid value: 0: must be in the range 1-100 (" +
         std::string(kPreferred) + "[0].weight)"},
    {"weight_over_100",
     R"(preferredDuringSchedulingIgnoredDuringExecution:
- weight: 101
  preference: {})",
     "web.yaml:20:21: error: Invalid value: 101: must be in the range 1-100 (" +
         std::string(kPreferred) + "[0].weight)"},
    {"weight_missing",
     R"(preferredDuringSchedulingIgnoredDuringExecution:
- preference: {})",
     "web.yaml:20:13: error: Invalid value: 0: must be in the range 1-100 (" +
         std::string(kPreferred) + "[0].weight)"},
    {"weight_not_an_integer",
     R"(preferredDuringSchedulingIgnoredDuringExecution:
- weight: high
  preference: {})",
     "web.yaml:20:21: error: Invalid type: expected integer, got string (" +
         std::string(kPreferred) + "[0].weight)"},
    {"preference_requirement",
     R"(preferredDuringSchedulingIgnoredDuringExecution:
- weight: 10
  preference:
    matchExpressions:
    - {key: disk, operator: In})",
     "web.yaml:23:17: error: Required value: must be specified when `operator` is 'In' or "
     "'NotIn' (" +
         std::string(kPreferred) + "[0].preference.matchExpressions[0].values)"},
    {"misspelt_preference",
     R"(preferredDuringSchedulingIgnoredDuringExecution:
- weight: 10
  preferences: {})",
     "web.yaml:21:26: error: unknown field \"preferences\" in preferred scheduling term (" +
         std::string(kPreferred) + "[0].preferences)"},
};

INSTANTIATE_TEST_SUITE_P(Malformed, NodeAffinityErrorTest,
                         ::testing::ValuesIn(kMalformedAffinities),
                         [](const ::testing::TestParamInfo<MalformedAffinity>& info) {
                           return std::string(info.param.name);
                         });

}  // namespace
}  // namespace ballast::model
