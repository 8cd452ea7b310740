#pragma once

// The manifest files of a local repository at a ref, read from its object database without a
// checkout or a clone: `ballast plan --base REF --head REF` compares two revisions of the
// repository a pull request changes.

#include <cstddef>
#include <string>
#include <vector>

#include "model/manifest.h"
#include "model/status.h"

namespace ballast::git {

struct RefReadOptions {
  std::string path;  // the folder (or file) of the application inside the repository; "": all
  size_t max_files = 100000;
  size_t max_file_bytes = 4u << 20;  // a larger file is read to one byte more, for the parser
};

// Every manifest file (model::IsManifestFileName) under `options.path` at `ref` (a branch, tag,
// sha or any revision git understands: "HEAD~1", "origin/main") of the repository at or above
// `repo_path`, each named "REF:PATH" as `git show` names it. Errors name the repository, the
// ref or the path.
Result<std::vector<model::SourceFile>> ReadManifestsAtRef(const std::string& repo_path,
                                                          const std::string& ref,
                                                          const RefReadOptions& options = {});

}  // namespace ballast::git
