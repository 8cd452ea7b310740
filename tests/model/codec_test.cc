#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "model/codec.h"
#include "model/manifest.h"
#include "test_util.h"

namespace ballast::model {
namespace {

using testing::Dump;
using testing::Errors;

std::vector<SourceFile> ReadTree(const std::string& dir) {
  std::vector<SourceFile> files;
  for (const auto& e : std::filesystem::recursive_directory_iterator(dir)) {
    if (!e.is_regular_file() || !IsManifestFileName(e.path().string())) continue;
    std::ifstream in(e.path());
    std::stringstream ss;
    ss << in.rdbuf();
    files.push_back({e.path().string(), ss.str()});
  }
  return files;
}

// The real-world manifests of ../shared/testdata and our own example survive
// parse -> emit YAML -> parse unchanged, and parse -> JSON -> decode unchanged.
TEST(CodecTest, RoundTripRealManifests) {
  const std::string root = BALLAST_SOURCE_DIR;
  size_t checked = 0;
  for (const std::string& dir : {root + "/../shared/testdata", root + "/examples/repo"}) {
    if (!std::filesystem::exists(dir)) continue;
    ManifestSet set = ParseManifests(ReadTree(dir));
    ASSERT_TRUE(set.ok()) << Dump(set.diagnostics);
    for (const Manifest& m : set.manifests) {
      std::string yaml = ToYaml(m);
      FileParseResult again = ParseManifestFile(m.source.file, yaml);
      ASSERT_TRUE(Errors(again).empty()) << Dump(again.diagnostics) << yaml;
      ASSERT_EQ(again.manifests.size(), 1u) << yaml;
      EXPECT_EQ(again.manifests[0].value, m.value) << m.key().ToString() << "\n" << yaml;
      EXPECT_EQ(ToYaml(again.manifests[0]), yaml);

      if (!m.is_supported()) continue;  // kept verbatim, nothing to decode
      auto from_json = DecodeManifest(ToJson(m), {"json", 0, 0}, nullptr);
      ASSERT_TRUE(from_json.ok()) << from_json.status().ToString();
      EXPECT_EQ(from_json->value, m.value) << m.key().ToString();
      ++checked;
    }
  }
  EXPECT_GE(checked, 4u);
}

TEST(CodecTest, YamlQuotesStringsThatWouldChangeType) {
  Json j = {{"apiVersion", "v1"},
            {"kind", "ConfigMap"},
            {"metadata", {{"name", "c"}}},
            {"data",
             {{"a", "true"},
              {"b", "8080"},
              {"c", "on"},
              {"d", ""},
              {"e", "- x"},
              {"f", "a: b"},
              {"g", "multi\nline"},
              {"h", "0755"},
              {"i", "1e3"},
              {"j", "null"},
              {"k", "#x"},
              {"l", " padded "},
              {"m", "plain text"},
              {"n", "ünïcødé"},
              {"o", "~"}}}};
  std::string yaml = ToYaml(j);
  FileParseResult r = ParseManifestFile("c.yaml", yaml);
  ASSERT_TRUE(r.diagnostics.empty()) << Dump(r.diagnostics) << yaml;
  EXPECT_EQ(ToJson(r.manifests.at(0))["data"], j["data"]) << yaml;
  EXPECT_NE(yaml.find("m: plain text\n"), std::string::npos) << yaml;
}

// Fuzz finding (manifest_fuzz): a key longer than YAML's 1024-character limit for implicit
// keys was written as one, and the YAML did not parse again. It is written as an explicit key.
TEST(CodecTest, AKeyLongerThanYamlAllowsImplicitlyIsWrittenExplicitly) {
  const std::string long_key =
      std::string(600, 'k') + std::string("\0\t\"", 3) + std::string(600, 'q');
  Json j = {{"apiVersion", "example.com/v1"},
            {"kind", "Thing"},
            {"metadata", {{"name", "x"}}},
            {"spec",
             {{long_key, {{"nested", {"a", "b"}}, {long_key, {1, 2}}}},
              {"list", Json::array({Json{{long_key, "v"}, {"z", 1}}})},
              {std::string(1100, 's'), Json::array({1, Json{{"a", "b"}}})}}}};
  const std::string yaml = ToYaml(j);
  FileParseResult r = ParseManifestFile("t.yaml", yaml);
  ASSERT_TRUE(r.diagnostics.empty()) << Dump(r.diagnostics);
  ASSERT_EQ(r.manifests.size(), 1u);
  EXPECT_EQ(ToJson(r.manifests[0]), j);
}

TEST(CodecTest, YamlKeyOrderIsFixed) {
  FileParseResult r = ParseManifestFile("d.yaml", testing::kMinimalDeployment);
  std::string yaml = ToYaml(r.manifests.at(0));
  EXPECT_EQ(yaml.find("apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\n"), 0u)
      << yaml;
}

PodTemplateSpec Template(const std::string& yaml) {
  FileParseResult r = ParseManifestFile("d.yaml", yaml);
  EXPECT_TRUE(Errors(r).empty()) << Dump(r.diagnostics);
  return r.manifests.at(0).deployment()->spec.template_;
}

const char kTwoContainers[] = R"(apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
      - name: a
        image: a:1
        env: [{name: X, value: "1"}, {name: Y, value: "2"}]
        resources: {limits: {cpu: "1", memory: 1Gi}}
      - name: b
        image: b:1
)";

TEST(TemplateHashTest, StableAcrossFormattingAndOrder) {
  std::string h = PodTemplateHash(Template(kTwoContainers));
  EXPECT_EQ(h.size(), 10u);
  EXPECT_EQ(h.find_first_not_of("bcdfghjklmnpqrstvwxz2456789"), std::string::npos);
  // Same run, same input.
  EXPECT_EQ(PodTemplateHash(Template(kTwoContainers)), h);
  // Block style, other key order, containers and env reordered, equivalent quantities.
  const char* reordered = R"(kind: Deployment
apiVersion: apps/v1
metadata:
  name: web
spec:
  template:
    spec:
      containers:
        - image: b:1
          name: b
        - name: a
          resources:
            limits:
              memory: 1024Mi
              cpu: 1000m
          image: "a:1"
          env:
            - name: Y
              value: "2"
            - value: "1"
              name: X
    metadata:
      labels:
        app: web
  selector:
    matchLabels:
      app: web
)";
  EXPECT_EQ(PodTemplateHash(Template(reordered)), h);
  // Replicas are not part of the template.
  std::string scaled = kTwoContainers;
  scaled.replace(scaled.find("spec:\n  selector"), 5, "spec:\n  replicas: 7");
  EXPECT_EQ(PodTemplateHash(Template(scaled)), h);
}

TEST(TemplateHashTest, ChangesWhenTheTemplateChanges) {
  std::string base = PodTemplateHash(Template(kTwoContainers));
  auto changed = [&](const std::string& from, const std::string& to) {
    std::string y = kTwoContainers;
    y.replace(y.find(from), from.size(), to);
    return PodTemplateHash(Template(y));
  };
  EXPECT_NE(changed("image: a:1", "image: a:2"), base);
  EXPECT_NE(changed("value: \"1\"", "value: \"3\""), base);
  EXPECT_NE(changed("cpu: \"1\"", "cpu: \"2\""), base);
  EXPECT_NE(changed("labels: {app: web}}", "labels: {app: web, v: \"2\"}}"), base);
  EXPECT_NE(changed("name: b\n", "name: c\n"), base);
}

TEST(TemplateHashTest, KnownValueStaysFixedAcrossReleases) {
  // Revisions are named by this hash and recorded in history.git: changing the hash function
  // would make every running pod look out of date. Update only with a migration.
  PodTemplateSpec t;
  t.labels = {{"app", "x"}};
  Container c;
  c.name = "x";
  c.image = "x:1";
  t.spec.containers.push_back(c);
  EXPECT_EQ(PodTemplateHash(t), "xvmwgcl89v");
  EXPECT_EQ(PodTemplateHash(PodTemplateFromJson(PodTemplateToJson(t)).value()), PodTemplateHash(t));
}

TEST(CodecTest, PodTemplateJsonRoundTrip) {
  PodTemplateSpec t = Template(kTwoContainers);
  auto back = PodTemplateFromJson(PodTemplateToJson(t));
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(*back, t);
  EXPECT_FALSE(PodTemplateFromJson(Json{{"spec", {{"containers", "nope"}}}}).ok());
}

TEST(CodecTest, CanonicalJsonIgnoresKeyedListOrder) {
  FileParseResult a = ParseManifestFile("s.yaml", R"(apiVersion: v1
kind: Service
metadata: {name: s}
spec:
  ports: [{name: a, port: 80}, {name: b, port: 81}]
)");
  FileParseResult b = ParseManifestFile("s.yaml", R"(apiVersion: v1
kind: Service
metadata: {name: s}
spec:
  ports: [{name: b, port: 81}, {name: a, port: 80, targetPort: 80}]
)");
  EXPECT_NE(ToJson(a.manifests.at(0)), ToJson(b.manifests.at(0)));
  EXPECT_EQ(CanonicalJson(a.manifests.at(0)), CanonicalJson(b.manifests.at(0)));
}

}  // namespace
}  // namespace ballast::model
