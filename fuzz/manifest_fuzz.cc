// Manifest text (YAML or JSON, many documents) -> typed, defaulted, validated objects: what
// every file of a repository nobody here wrote goes through. No input may crash, hang or blow up
// memory; whatever parses without error must render back to YAML that parses again to the same
// object keys.

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "model/codec.h"
#include "model/manifest.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  const ballast::model::ParseLimits limits;  // the production limits
  auto result = ballast::model::ParseManifestFile("fuzz.yaml", text, limits);
  (void)ballast::model::CheckDuplicates(result.manifests);
  for (const auto& m : result.manifests) {
    const std::string yaml = ballast::model::ToYaml(m);
    auto again = ballast::model::ParseManifestFile("again.yaml", yaml, limits);
    if (again.manifests.size() != 1 || !(again.manifests[0].key() == m.key())) {
      __builtin_trap();  // an object that does not survive its own rendering
    }
  }
  return 0;
}
