#pragma once

// Reading manifest trees from disk for the offline subcommands (validate, plan).

#include <optional>
#include <string>
#include <vector>

#include "model/kustomize.h"
#include "model/manifest.h"

namespace ballast::cli {

// Reads PATH: a file, or a directory walked recursively (hidden entries such as .git skipped,
// files in name order) for *.yaml, *.yml, *.json. Paths in the result are PATH-joined, as a user
// would click them. A file over `max_bytes` is read only up to max_bytes + 1 bytes, so the model
// refuses it without the whole file in memory.
Result<std::vector<model::SourceFile>> ReadManifestTree(const std::string& path,
                                                        size_t max_bytes = 4u << 20);

// PATH as an application, as `serve --path` takes it: a directory with a kustomization at its
// root is what kustomize renders (model/kustomize.h; the files it reads may be anywhere, e.g. a
// base in ../base, and are named relative to the current directory when below it); anything
// else is every manifest file below PATH, parsed (ReadManifestTree, model::ParseManifests).
// An error only when PATH cannot be read at all; problems of the manifests are diagnostics.
// SOPS-encrypted files open with `sops` (model/sops.h); without it they are errors.
Result<model::ManifestSet> ReadApplication(const std::string& path, size_t max_bytes = 4u << 20,
                                           const model::SopsKeyring* sops = nullptr);

// What kustomize renders of PATH (as ReadApplication), or nullopt when PATH is not a directory
// with a kustomization at its root.
std::optional<model::ManifestSet> RenderIfKustomization(const std::string& path,
                                                        size_t max_bytes = 4u << 20,
                                                        const model::SopsKeyring* sops = nullptr);

}  // namespace ballast::cli
