// Parse + validate throughput of model/ on a generated tree of 10,000 objects
// (5,000 Deployments + 5,000 Services, one pair per file, like a real manifest repository).

#include <benchmark/benchmark.h>
#include <sys/resource.h>

#include <fstream>
#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "model/codec.h"
#include "model/config_refs.h"
#include "model/kustomize.h"
#include "model/manifest.h"
#include "model/sops.h"

namespace {

using ballast::model::SourceFile;

std::string Pair(int i) {
  std::string n = "svc-" + std::to_string(i);
  return "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: " + n +
         "\n  labels:\n    app: " + n + "\n    team: team-" + std::to_string(i % 17) +
         "\nspec:\n  replicas: " + std::to_string(1 + i % 5) +
         "\n  selector:\n    matchLabels:\n      app: " + n +
         "\n  template:\n    metadata:\n      labels:\n        app: " + n +
         "\n    spec:\n      containers:\n      - name: main\n        image: registry.local/" + n +
         ":1." + std::to_string(i % 9) +
         "\n        command: [\"/srv/bin/server\"]\n        args: [\"--port\", \"$(PORT)\"]"
         "\n        env:\n        - name: LOG_LEVEL\n          value: info\n        - name: "
         "REGION\n"
         "          value: eu-west\n        ports:\n        - name: http\n          containerPort: "
         "8080\n        resources:\n          requests:\n            cpu: 100m\n            "
         "memory: 128Mi\n          limits:\n            cpu: \"1\"\n            memory: 256Mi\n"
         "        readinessProbe:\n          httpGet:\n            path: /healthz\n            "
         "port: http\n          periodSeconds: 5\n        livenessProbe:\n          tcpSocket:\n"
         "            port: http\n---\napiVersion: v1\nkind: Service\nmetadata:\n  name: " +
         n + "\nspec:\n  selector:\n    app: " + n +
         "\n  ports:\n  - name: http\n    port: 80\n    targetPort: http\n";
}

const std::vector<SourceFile>& Tree() {
  static const std::vector<SourceFile> files = [] {
    std::vector<SourceFile> f;
    for (int i = 0; i < 5000; ++i) f.push_back({"apps/" + std::to_string(i) + ".yaml", Pair(i)});
    return f;
  }();
  return files;
}

void BM_ParseAndValidateTree(benchmark::State& state) {
  const auto& files = Tree();
  size_t bytes = 0;
  for (const auto& f : files) bytes += f.content.size();
  size_t objects = 0;
  for (auto _ : state) {
    auto set = ballast::model::ParseManifests(files);
    if (!set.ok()) state.SkipWithError("generated tree did not validate");
    objects = set.manifests.size();
    benchmark::DoNotOptimize(set);
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * objects));
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * bytes));
  state.counters["objects"] = static_cast<double>(objects);
  state.counters["tree_MB"] = static_cast<double>(bytes) / 1e6;
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  state.counters["peak_rss_MB"] = static_cast<double>(ru.ru_maxrss) / 1024.0;
}
BENCHMARK(BM_ParseAndValidateTree)->Unit(benchmark::kMillisecond);

void BM_ParseOneFile(benchmark::State& state) {
  const SourceFile& f = Tree()[42];
  for (auto _ : state) {
    auto r = ballast::model::ParseManifestFile(f.path, f.content);
    benchmark::DoNotOptimize(r);
  }
  state.SetItemsProcessed(state.iterations() * 2);
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * f.content.size()));
}
BENCHMARK(BM_ParseOneFile);

void BM_PodTemplateHash(benchmark::State& state) {
  auto r = ballast::model::ParseManifestFile(Tree()[7].path, Tree()[7].content);
  const auto& t = r.manifests.at(0).deployment()->spec.template_;
  for (auto _ : state) benchmark::DoNotOptimize(ballast::model::PodTemplateHash(t));
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_PodTemplateHash);

// The desired objects of the generated tree: with `reads`, each Deployment's environment also
// reads a key of a ConfigMap of its own and every key of a shared Secret (5,000 ConfigMaps more).
const std::vector<ballast::model::Manifest>& ConfigTree(bool reads) {
  static const auto make = [](bool with_reads) {
    std::vector<SourceFile> files = Tree();
    if (with_reads) {
      for (int i = 0; i < 5000; ++i) {
        std::string& y = files[i].content;
        const std::string n = "svc-" + std::to_string(i);
        const std::string env = "        env:\n";
        y.replace(y.find(env), env.size(),
                  "        envFrom:\n        - secretRef: {name: shared}\n" + env +
                      "        - name: FEATURE\n          valueFrom:\n            "
                      "configMapKeyRef: {name: " +
                      n + ", key: feature}\n");
        y += "---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: " + n +
             "}\ndata: {feature: \"on\", other: \"x\"}\n";
      }
      files.push_back({"shared.yaml",
                       "apiVersion: v1\nkind: Secret\nmetadata: {name: shared}\n"
                       "stringData: {user: admin, password: s3cr3t}\n"});
    }
    return ballast::model::ParseManifests(files).manifests;
  };
  static const auto plain = make(false);
  static const auto reading = make(true);
  return reads ? reading : plain;
}

// The config hashes of a desired state (model::BindConfigHashes, once per desired revision in
// the reconciler): arg 0, no template reads config; arg 1, every one does. Includes the copy of
// the objects that the reconciler binds (BM_CopyDesiredObjects with the same arg: the anchor).
void BM_BindConfigHashes(benchmark::State& state) {
  const auto& set = ConfigTree(state.range(0) == 1);
  for (auto _ : state) {
    auto objects = set;
    ballast::model::BindConfigHashes(&objects, "0123456789abcdef0123456789abcdef");
    benchmark::DoNotOptimize(objects);
  }
  state.SetItemsProcessed(state.iterations() * 5000);
}
BENCHMARK(BM_BindConfigHashes)->Arg(0)->Arg(1)->Unit(benchmark::kMillisecond);

void BM_CopyDesiredObjects(benchmark::State& state) {
  const auto& set = ConfigTree(state.range(0) == 1);
  for (auto _ : state) {
    auto objects = set;
    benchmark::DoNotOptimize(objects);
  }
  state.SetItemsProcessed(state.iterations() * 5000);
}
BENCHMARK(BM_CopyDesiredObjects)->Arg(0)->Arg(1)->Unit(benchmark::kMillisecond);

}  // namespace

// kustomize (model/kustomize.h): 1,000 overlays over one base (a Deployment, a Service, a
// generated ConfigMap), each with a namespace, a name prefix, labels, an image tag, a generator
// merge and a strategic merge patch, as Flux's benchmark of 1,000 Kustomizations has them.
const std::map<std::string, std::string>& OverlayTree() {
  static const std::map<std::string, std::string> files = [] {
    std::map<std::string, std::string> f;
    f["base/kustomization.yaml"] =
        "resources: [app.yaml]\nconfigMapGenerator:\n- name: app\n  literals: [LOG_LEVEL=info, "
        "REGION=eu]\n";
    f["base/app.yaml"] = Pair(0);
    for (int i = 0; i < 1000; ++i) {
      const std::string n = std::to_string(i);
      f["overlays/" + n + "/kustomization.yaml"] =
          "resources: [../../base]\nnamespace: team-" + n + "\nnamePrefix: o" + n +
          "-\ncommonLabels: {overlay: \"" + n +
          "\"}\nimages:\n- name: registry.local/svc-0\n  newTag: \"2." + n +
          "\"\nconfigMapGenerator:\n- name: app\n  behavior: merge\n  literals: [OVERLAY=" + n +
          "]\npatches:\n- patch: |-\n    apiVersion: apps/v1\n    kind: Deployment\n"
          "    metadata: {name: svc-0}\n    spec:\n      replicas: 3\n";
    }
    return f;
  }();
  return files;
}

ballast::model::KustomizeReader OverlayReader() {
  return [](const std::string& p) -> ballast::Result<std::optional<std::string>> {
    const auto& files = OverlayTree();
    auto it = files.find(p);
    if (it == files.end()) return std::optional<std::string>();
    return std::optional<std::string>(it->second);
  };
}

// Every overlay rendered, from nothing cached: a cold start of 1,000 applications.
void BM_RenderKustomizeOverlays(benchmark::State& state) {
  const auto reader = OverlayReader();
  const int overlays = static_cast<int>(state.range(0));
  size_t objects = 0;
  for (auto _ : state) {
    objects = 0;
    for (int i = 0; i < overlays; ++i) {
      auto set = ballast::model::RenderKustomization("overlays/" + std::to_string(i), reader);
      if (!set.ok()) state.SkipWithError("an overlay did not render");
      objects += set.manifests.size();
      benchmark::DoNotOptimize(set);
    }
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()) * overlays);
  state.counters["objects"] = static_cast<double>(objects);
}
BENCHMARK(BM_RenderKustomizeOverlays)->Arg(1)->Arg(1000)->Unit(benchmark::kMillisecond);

// A Secret that real sops wrote (tests/sops/fixtures/age.yaml), opened with its data key at
// hand (the keyring's cache: what every poll after the first costs; the first runs `age`), beside
// the same Secret in plain text: what SOPS adds to a parse. Arg 1: also sealed again for
// history (model::SealSops), as an applied revision does.
class FixedKeyring : public ballast::model::SopsKeyring {
 public:
  ballast::Result<std::string> DataKey(
      const std::vector<ballast::model::SopsAgeStanza>&) const override {
    std::string key;
    const char* hex = "558e95c88337865c839703a4e892c03eed324ae6bbcb65c2989558e1a55825bb";
    for (int i = 0; i < 64; i += 2) {
      key.push_back(static_cast<char>(std::stoi(std::string(hex + i, 2), nullptr, 16)));
    }
    return key;
  }
};

std::string ReadSource(const char* relative) {
  std::ifstream in(std::string(BALLAST_SOURCE_DIR) + "/" + relative, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

void BM_OpenSopsSecret(benchmark::State& state) {
  static const FixedKeyring keyring;
  const std::string file = ReadSource("tests/sops/fixtures/age.yaml");
  ballast::model::ParseLimits limits;
  limits.sops = &keyring;
  for (auto _ : state) {
    auto r = ballast::model::ParseManifestFile("age.yaml", file, limits);
    if (r.manifests.size() != 1) state.SkipWithError("did not open");
    if (state.range(0) == 1 && !r.manifests.empty()) {
      benchmark::DoNotOptimize(
          ballast::model::SealSops(ballast::model::ToJson(r.manifests[0]), *r.manifests[0].sops));
    }
    benchmark::DoNotOptimize(r);
  }
}
BENCHMARK(BM_OpenSopsSecret)->Arg(0)->Arg(1);

void BM_ParsePlainSecret(benchmark::State& state) {
  const std::string file =
      "apiVersion: v1\nkind: Secret\nmetadata:\n  name: age\nstringData:\n  key: value\n";
  for (auto _ : state) {
    auto r = ballast::model::ParseManifestFile("age.yaml", file);
    benchmark::DoNotOptimize(r);
  }
}
BENCHMARK(BM_ParsePlainSecret);

BENCHMARK_MAIN();
