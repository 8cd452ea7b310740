#pragma once

// The manifest files of a local repository at a ref, read from its object database without a
// checkout or a clone: `ballast plan --base REF --head REF` compares two revisions of the
// repository a pull request changes.

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "model/manifest.h"
#include "model/status.h"

namespace ballast::git {

struct RefReadOptions {
  std::string path;  // the folder (or file) of the application inside the repository; "": all
  size_t max_files = 100000;         // files and folders visited (a tree may repeat one)
  size_t max_file_bytes = 4u << 20;  // a larger manifest is refused unread
  uint64_t max_total_bytes = uint64_t{512} << 20;  // as `serve` (git::SourceConfig)
  const model::SopsKeyring* sops = nullptr;        // opens SOPS files (model/sops.h)
};

// Every manifest file (model::IsManifestFileName) under `options.path` at `ref` (a branch, tag,
// sha or any revision git understands: "HEAD~1", "origin/main") of the repository at or above
// `repo_path`, each named by its path in the repository (as `serve` names them, so that a
// kustomization's folder name is the same). A symbolic link is not followed. Errors name the
// repository, the ref and the path. Memory is bounded by the limits in `options`, whatever the
// repository holds (a pull request's content is a stranger's).
Result<std::vector<model::SourceFile>> ReadManifestsAtRef(const std::string& repo_path,
                                                          const std::string& ref,
                                                          const RefReadOptions& options = {});

// The application at `options.path` at `ref`, as `serve --path` takes it: what the
// kustomization at its root renders (model/kustomize.h; its bases may be anywhere in the
// repository at that ref, symbolic links are not followed), else every manifest file under it,
// parsed (ReadManifestsAtRef). The same bounds.
Result<model::ManifestSet> ReadApplicationAtRef(const std::string& repo_path,
                                                const std::string& ref,
                                                const RefReadOptions& options = {});

}  // namespace ballast::git
