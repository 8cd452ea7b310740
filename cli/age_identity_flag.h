#pragma once

// --age-identity-file: the age identity that opens SOPS-encrypted manifests (model/sops.h),
// for serve, validate and plan alike.

#include <memory>

#include "cli/flags.h"
#include "model/status.h"
#include "sources/sops/age_keyring.h"

namespace ballast::cli {

void AddAgeIdentityFlag(FlagSet& flags);

// The keyring of the file named by --age-identity-file, or null when the flag is not given.
// InvalidArgument (naming the flag) when the file is not a private age identity file.
Result<std::unique_ptr<sops::AgeKeyring>> AgeKeyringFromFlag(const FlagSet& flags);

}  // namespace ballast::cli
