// A SOPS file nobody here wrote -> opened objects (model/sops.h): what a pushed commit with an
// encrypted manifest (or a sops dotenv behind a secretGenerator) goes through on a reconciler
// with --age-identity-file. The keyring hands
// out the data key of tests/sops/fixtures/age.yaml (what `age -d` unwraps there), so mutations of
// that seed reach the value walk and the MAC. No input may crash, hang or blow up memory; and
// every object the file yields, sealed for history (SealSops) and opened again, must come back
// the same.

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "model/codec.h"
#include "model/manifest.h"
#include "model/sops.h"

namespace {

std::string Unhex(std::string_view hex) {
  std::string out;
  for (size_t i = 0; i + 1 < hex.size(); i += 2) {
    out.push_back(static_cast<char>(std::stoi(std::string(hex.substr(i, 2)), nullptr, 16)));
  }
  return out;
}

class FixtureKeyring : public ballast::model::SopsKeyring {
 public:
  ballast::Result<std::string> DataKey(
      const std::vector<ballast::model::SopsAgeStanza>&) const override {
    return Unhex("558e95c88337865c839703a4e892c03eed324ae6bbcb65c2989558e1a55825bb");
  }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const FixtureKeyring keyring;
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  ballast::model::ParseLimits limits;
  limits.sops = &keyring;
  // The same bytes as a sops dotenv (a secretGenerator's envs): opened or refused, never more.
  auto dotenv = ballast::model::OpenSopsDotenv(text, keyring);
  if (dotenv.ok() && dotenv->envelope.data_key.size() != 32) __builtin_trap();
  auto r = ballast::model::ParseManifestFile("fuzz.yaml", text, limits);
  ballast::model::SopsEnvelope envelope;
  envelope.data_key = Unhex("558e95c88337865c839703a4e892c03eed324ae6bbcb65c2989558e1a55825bb");
  envelope.age = {{"age1l44xcng8dqj32nlv6d930qvvrny05hglzcv9qpc7kxjc6902ma4qufys29", "x"}};
  envelope.lastmodified = "2024-11-12T13:33:42Z";
  for (const auto& m : r.manifests) {
    const ballast::model::Json doc = ballast::model::ToJson(m);
    // A kept object with a top-level `sops` field that is no SOPS metadata (a scalar, say) is
    // never sealed: only what OpenSops opened is, and that has none.
    if (!m.sops && doc.is_object() && doc.contains("sops")) continue;
    if (m.secret() == nullptr) continue;  // only Secrets are opened from SOPS files
    const std::string sealed = ballast::model::SealSops(doc, m.sops ? *m.sops : envelope);
    auto again = ballast::model::ParseManifestFile("sealed.yaml", sealed, limits);
    if (again.manifests.size() != 1 || ballast::model::ToJson(again.manifests[0]) != doc) {
      __builtin_trap();  // history could not give back what it was given
    }
  }
  return 0;
}
