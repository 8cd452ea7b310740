// kustomize rendered natively, held to kustomize itself: every fixture under
// tests/model/kustomize/ renders to the objects `kubectl kustomize` (kustomize v5.5) gives, as
// recorded in golden/ (and, where kubectl is installed, as it gives them now: a stale golden file
// fails too). What ballast does not render is refused at its position, never ignored.

#include "model/kustomize.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include "model/codec.h"
#include "test_util.h"

namespace ballast::model {
namespace {

namespace fs = std::filesystem;
using testing::Dump;
using testing::Errors;

const fs::path kFixtures = fs::path(BALLAST_SOURCE_DIR) / "tests/model/kustomize";

std::string ReadAll(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

KustomizeReader DiskReader(const fs::path& root) {
  return [root](const std::string& p) -> Result<std::optional<std::string>> {
    if (!fs::is_regular_file(root / p)) return std::optional<std::string>();
    return std::optional<std::string>(ReadAll(root / p));
  };
}

// The files of an in-memory tree.
KustomizeReader MemoryReader(std::map<std::string, std::string> files) {
  return [files = std::move(files)](const std::string& p) -> Result<std::optional<std::string>> {
    auto it = files.find(p);
    if (it == files.end()) return std::optional<std::string>();
    return std::optional<std::string>(it->second);
  };
}

std::vector<Diagnostic> SetErrors(const ManifestSet& set) {
  std::vector<Diagnostic> out;
  for (const auto& d : set.diagnostics) {
    if (d.is_error()) out.push_back(d);
  }
  return out;
}

// Objects by key, each as ballast decodes it (defaults applied alike on both sides).
std::map<std::string, Json> ByKey(const std::vector<Manifest>& manifests) {
  std::map<std::string, Json> out;
  for (const auto& m : manifests) out[m.key().ToString()] = ToJson(m);
  return out;
}

std::string Kubectl(const fs::path& dir) {
  const std::string cmd = "kubectl kustomize '" + dir.string() + "' 2>/dev/null";
  FILE* p = ::popen(cmd.c_str(), "r");
  if (p == nullptr) return "";
  std::string out;
  char buf[4096];
  while (size_t n = std::fread(buf, 1, sizeof buf, p)) out.append(buf, n);
  return ::pclose(p) == 0 ? out : "";
}

bool HaveKubectl() { return std::system("kubectl version --client >/dev/null 2>&1") == 0; }

struct OracleCase {
  const char* name;
  const char* dir;     // below kFixtures
  const char* golden;  // below kFixtures/golden
};

class KustomizeOracleTest : public ::testing::TestWithParam<OracleCase> {};

TEST_P(KustomizeOracleTest, RendersWhatKustomizeRenders) {
  const OracleCase& c = GetParam();
  ManifestSet ours = RenderKustomization(c.dir, DiskReader(kFixtures));
  ASSERT_TRUE(SetErrors(ours).empty()) << Dump(ours.diagnostics);
  const std::string golden_text = ReadAll(kFixtures / "golden" / c.golden);
  FileParseResult golden = ParseManifestFile(c.golden, golden_text);
  ASSERT_TRUE(Errors(golden).empty()) << Dump(golden.diagnostics);
  ASSERT_FALSE(golden.manifests.empty());
  const auto want = ByKey(golden.manifests);
  const auto got = ByKey(ours.manifests);
  for (const auto& [key, object] : want) {
    auto it = got.find(key);
    ASSERT_NE(it, got.end()) << key << " missing; ballast rendered:\n" << Json(got).dump(2);
    EXPECT_EQ(it->second, object) << key << "\nballast: " << it->second.dump(2)
                                  << "\nkustomize: " << object.dump(2);
  }
  EXPECT_EQ(got.size(), want.size()) << Json(got).dump(2);
  if (!HaveKubectl()) return;  // the golden file is what the oracle said when it was made
  const std::string live = Kubectl(kFixtures / c.dir);
  ASSERT_FALSE(live.empty()) << "kubectl kustomize failed on " << c.dir;
  FileParseResult now = ParseManifestFile("kubectl", live);
  EXPECT_EQ(ByKey(now.manifests), want) << "golden/" << c.golden << " is stale: regenerate it with "
                                        << "kubectl kustomize " << c.dir;
}

const OracleCase kOracleCases[] = {
    {"OverlayOverABase", "overlay/prod", "overlay-prod.yaml"},
    {"ComponentsGeneratorsAndLabels", "components/app", "components-app.yaml"},
    // Targets by the name before a base's prefix and by a regular expression, replicas by the
    // original name, a patchesStrategicMerge file, a `$patch: replace` list, tag + digest.
    {"NamesPatchesAndImages", "names/overlay", "names-overlay.yaml"},
    // Public repositories (public/README.md): Online Boutique as published, with all of its
    // test overlays, with the components a user picks, and podinfo.
    {"OnlineBoutique", "public/microservices-demo/kustomize", "public-microservices-demo.yaml"},
    {"OnlineBoutiqueWithComponents", "public/overlays/boutique", "public-boutique.yaml"},
    {"OnlineBoutiqueMemorystore",
     "public/microservices-demo/kustomize/tests/memorystore-with-all-components",
     "public-memorystore.yaml"},
    {"OnlineBoutiqueSpanner",
     "public/microservices-demo/kustomize/tests/spanner-with-all-components",
     "public-spanner.yaml"},
    {"OnlineBoutiqueIstio",
     "public/microservices-demo/kustomize/tests/service-mesh-istio-with-all-components",
     "public-service-mesh-istio.yaml"},
    {"Podinfo", "public/podinfo/kustomize", "public-podinfo.yaml"},
};

INSTANTIATE_TEST_SUITE_P(Fixtures, KustomizeOracleTest, ::testing::ValuesIn(kOracleCases),
                         [](const auto& info) { return info.param.name; });

TEST(KustomizeTest, TheHashIsKustomizes) {
  // Values kustomize v5.5 gave (golden files and by hand).
  EXPECT_EQ(
      KustomizeHash(Json::parse(
          R"({"kind": "ConfigMap", "data": {"A": "1", "B": "<x>&"}, "metadata": {"name": "app"}})")),
      "5gch97b56c");
  EXPECT_EQ(KustomizeHash(Json::parse(
                R"({"kind": "Secret", "type": "Opaque", "data": {"password": "czNjcmV0"}})")),
            "bf5fk5d75b");
}

// One kustomization (and what it names) in memory; the first error's "file:line field: message".
std::string RenderError(std::map<std::string, std::string> files) {
  ManifestSet set = RenderKustomization("app", MemoryReader(std::move(files)));
  auto errors = SetErrors(set);
  if (errors.empty()) return "";
  const auto& e = errors[0];
  return e.where.file + ":" + std::to_string(e.where.line) + " " + e.field + ": " + e.message;
}

const char kDeployment[] = R"(apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers: [{name: web, image: nginx}]
)";

TEST(KustomizeTest, WhatIsNotRenderedIsRefusedAtItsPosition) {
  EXPECT_EQ(RenderError(
                {{"app/kustomization.yaml", "resources: [web.yaml]\nhelmCharts:\n- name: redis\n"},
                 {"app/web.yaml", kDeployment}})
                .rfind("app/kustomization.yaml:3 helmCharts: unsupported kustomization field "
                       "\"helmCharts\"",
                       0),
            0u);
  EXPECT_NE(
      RenderError({{"app/kustomization.yaml", "resources:\n- github.com/org/repo//base?ref=v1\n"}})
          .find("app/kustomization.yaml:2 resources[0]: remote resource"),
      std::string::npos);
  EXPECT_NE(RenderError({{"app/kustomization.yaml", "resources: [../../etc]\n"}})
                .find("outside the repository"),
            std::string::npos);
  EXPECT_NE(RenderError({{"app/kustomization.yaml", "resources: [missing.yaml]\n"}})
                .find("neither a file nor a directory with a kustomization.yaml"),
            std::string::npos);
  EXPECT_NE(RenderError({{"app/kustomization.yaml",
                          "resources: [web.yaml]\npatches:\n- patch: |\n"
                          "    kind: Deployment\n"
                          "    metadata: {name: nope}\n"},
                         {"app/web.yaml", kDeployment}})
                .find("app/kustomization.yaml:3 patches[0]: the patch matches no object"),
            std::string::npos);
  // Bases that include each other.
  EXPECT_NE(RenderError({{"app/kustomization.yaml", "resources: [../b]\n"},
                         {"b/kustomization.yaml", "resources: [../app]\n"}})
                .find("kustomizations include each other: app -> b -> app"),
            std::string::npos);
}

// What an attacker's commit tries: a JSON patch that doubles an object at every step, one
// file listed many times (each copy an alias bomb's worth of values), a generator reading a
// file outside its folder (a CI token in /proc/self/environ), a regular expression that could
// backtrack for hours. Each is refused with its position, at once and in bounded memory.
TEST(KustomizeTest, HostileTreesAreRefusedInBoundedTimeAndMemory) {
  std::string doubling =
      "resources: [cm.yaml]\npatches:\n- target: {kind: ConfigMap}\n  patch: |-\n";
  for (int i = 0; i < 40; ++i) {
    doubling += "    - {op: copy, from: /data, path: /data/k" + std::to_string(i) + "}\n";
  }
  std::string big_data;
  for (int i = 0; i < 64; ++i) big_data += "  k" + std::to_string(i) + ": v\n";
  EXPECT_NE(RenderError({{"app/kustomization.yaml", doubling},
                         {"app/cm.yaml",
                          "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n"
                          "data:\n" +
                              big_data}})
                .find("larger than a file may be"),
            std::string::npos);
  EXPECT_NE(RenderError({{"app/kustomization.yaml", "resources: [web.yaml, ./web.yaml]\n"},
                         {"app/web.yaml", kDeployment}})
                .find("is listed twice"),
            std::string::npos);
  EXPECT_NE(RenderError({{"app/kustomization.yaml",
                          "configMapGenerator:\n- name: c\n  envs: [../secrets/ci.env]\n"},
                         {"secrets/ci.env", "TOKEN=ghp_secret\n"}})
                .find("is not in or below the kustomization's folder"),
            std::string::npos);
  EXPECT_NE(RenderError({{"app/kustomization.yaml",
                          "resources: [web.yaml]\npatches:\n- target: {kind: Deployment, name: "
                          "'(a*)*b'}\n  patch: '[]'\n"},
                         {"app/web.yaml", kDeployment}})
                .find("may use only `.` and `.*`"),
            std::string::npos);
  // Generated objects count against the same bound as loaded ones.
  KustomizeLimits few;
  few.max_objects = 3;
  ManifestSet generated = RenderKustomization(
      "app",
      MemoryReader({{"app/kustomization.yaml",
                     "configMapGenerator:\n- {name: a}\n- {name: b}\n- {name: c}\n- {name: d}\n"}}),
      "", {}, few);
  ASSERT_FALSE(SetErrors(generated).empty());
  EXPECT_NE(SetErrors(generated)[0].message.find("more than 3 objects"), std::string::npos);
  std::string many = "resources: [web.yaml]\nimages:\n";
  for (int i = 0; i < 1001; ++i) many += "- {name: i" + std::to_string(i) + ", newTag: x}\n";
  EXPECT_NE(RenderError({{"app/kustomization.yaml", many}, {"app/web.yaml", kDeployment}})
                .find("must have at most 1000 entries"),
            std::string::npos);
}

// Hostile kustomizations and resources: errors, never a crash or an exception.
TEST(KustomizeTest, MalformedInputIsAnError) {
  for (const std::string& k :
       {std::string("resources: 7\n"), std::string("namespace: [a]\nresources: [web.yaml]\n"),
        std::string("commonLabels: [x]\nresources: [web.yaml]\n"),
        std::string("images: [{name: nginx, newTag: 1.10}]\nresources: [web.yaml]\n"),
        std::string("replicas: [{name: web, count: many}]\nresources: [web.yaml]\n"),
        std::string("configMapGenerator: [{name: c, literals: [novalue]}]\n"),
        std::string("configMapGenerator: [{name: c, behavior: merge, literals: [a=b]}]\n"),
        std::string("patchesJson6902: [{target: {kind: Deployment}, patch: '[{\"op\": \"remove\", "
                    "\"path\": \"/nope\"}]'}]\nresources: [web.yaml]\n"),
        std::string(
            "resources: [web.yaml]\nlabels: [{pairs: {a: b}, includeSelectors: yes-please}]\n"),
        std::string("- a list\n")}) {
    std::map<std::string, std::string> files = {{"app/kustomization.yaml", k},
                                                {"app/web.yaml", kDeployment}};
    ManifestSet set = RenderKustomization("app", MemoryReader(files));
    EXPECT_FALSE(SetErrors(set).empty() && k.find("includeSelectors") == std::string::npos)
        << k << Dump(set.diagnostics);
  }
  // A resource whose metadata is not a map, or whose kind is a number.
  ManifestSet odd = RenderKustomization(
      "app", MemoryReader({{"app/kustomization.yaml",
                            "resources: [odd.yaml]\nnamespace: x\nnamePrefix: p-\n"
                            "commonLabels: {a: b}\ncommonAnnotations: {c: d}\n"},
                           {"app/odd.yaml", "kind: 7\nmetadata: just-text\n---\n[1, 2]\n"}}));
  EXPECT_FALSE(SetErrors(odd).empty());
}

}  // namespace
}  // namespace ballast::model
