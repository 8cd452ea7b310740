#pragma once

// Reading manifest trees from disk for the offline subcommands (validate, plan).

#include <string>
#include <vector>

#include "model/manifest.h"

namespace ballast::cli {

// Reads PATH: a file, or a directory walked recursively (hidden entries such as .git skipped,
// files in name order) for *.yaml, *.yml, *.json. Paths in the result are PATH-joined, as a user
// would click them. A file over `max_bytes` is read only up to max_bytes + 1 bytes, so the model
// refuses it without the whole file in memory.
Result<std::vector<model::SourceFile>> ReadManifestTree(const std::string& path,
                                                        size_t max_bytes = 4u << 20);

}  // namespace ballast::cli
