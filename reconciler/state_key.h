#pragma once

// A secret key of the reconciler's own, kept in a state file so that it is the same after a
// restart: STATE_DIR/config-hash-key keys the digest of the ConfigMap and Secret values in pod
// templates (model/config_refs.h). Lost (a new state directory), a new one is made and every
// Deployment that reads ConfigMaps or Secrets rolls once.

#include <filesystem>
#include <string>

#include "model/status.h"

namespace ballast::reconciler {

// The key in `file` (64 hex characters and a newline), made (random, 0600, durably) when the
// file does not exist. A file that holds anything else is an error naming it.
Result<std::string> LoadOrCreateStateKey(const std::filesystem::path& file);

}  // namespace ballast::reconciler
