// A kustomization nobody here wrote -> rendered, decoded objects: what a pushed commit with a
// kustomization.yaml at --path goes through (model/kustomize.h). The input holds up to four
// files separated by a NUL byte: app/kustomization.yaml, app/patch.yaml, app/web.yaml and
// base/kustomization.yaml (missing ones are left out, so resources and patches may name them or
// not). No input may crash, hang or blow up memory; every rendered object must render back to
// YAML that parses again to the same key.

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "model/codec.h"
#include "model/kustomize.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  static const char* const kNames[] = {"app/kustomization.yaml", "app/patch.yaml", "app/web.yaml",
                                       "base/kustomization.yaml"};
  std::map<std::string, std::string> files;
  size_t start = 0;
  for (const char* name : kNames) {
    if (start > text.size()) break;
    size_t end = text.find('\0', start);
    if (end == std::string_view::npos) end = text.size();
    files[name] = std::string(text.substr(start, end - start));
    start = end + 1;
  }
  files["base/web.yaml"] =
      "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\nspec:\n"
      "  selector: {matchLabels: {app: web}}\n  template:\n    metadata: {labels: {app: web}}\n"
      "    spec:\n      containers: [{name: web, image: nginx}]\n";
  files["app/env"] = "A=1\nB=2\n";
  const ballast::model::KustomizeReader reader =
      [&](const std::string& p) -> ballast::Result<std::optional<std::string>> {
    auto it = files.find(p);
    if (it == files.end()) return std::optional<std::string>();
    return std::optional<std::string>(it->second);
  };
  ballast::model::KustomizeLimits bounds;
  bounds.max_kustomizations = 50;
  bounds.max_objects = 10000;
  bounds.max_total_bytes = 16u << 20;
  auto set = ballast::model::RenderKustomization("app", reader, "", {}, bounds);
  for (const auto& m : set.manifests) {
    const std::string yaml = ballast::model::ToYaml(m);
    auto again = ballast::model::ParseManifestFile("again.yaml", yaml, {});
    if (again.manifests.size() != 1 || !(again.manifests[0].key() == m.key())) {
      __builtin_trap();  // an object that does not survive its own rendering
    }
  }
  return 0;
}
