#include "cli/age_identity_flag.h"

namespace ballast::cli {

void AddAgeIdentityFlag(FlagSet& flags) {
  flags.AddString("age-identity-file", "", "",
                  "age identity (AGE-SECRET-KEY-1...) that opens SOPS-encrypted manifests; "
                  "mode 0600, as age-keygen writes it");
}

Result<std::unique_ptr<sops::AgeKeyring>> AgeKeyringFromFlag(const FlagSet& flags) {
  const std::string& path = flags.Get("age-identity-file");
  if (path.empty()) return std::unique_ptr<sops::AgeKeyring>();
  return sops::AgeKeyring::Open(path);
}

}  // namespace ballast::cli
