#pragma once

// What this binary is: its version (CMake's project(VERSION), the one source of it), the git
// commit it was built from, the build type, the compiler, and the versions of the libraries it
// runs with. `ballast version` prints it; `ballast serve` answers it at GET /api/v1/version.

#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

namespace ballast::cli {

struct BuildInfo {
  std::string version;     // "0.1.0"
  std::string commit;      // full commit id, "-dirty" appended for a modified tree, or "unknown"
  std::string build_type;  // "Release", "Debug", ... ("+asan" / "+tsan" for sanitizer builds)
  std::string compiler;    // "GCC 12.2.0", "Clang 14.0.6"
  std::vector<std::pair<std::string, std::string>> libraries;  // {"libgit2", "1.5.1"}, ...
};

BuildInfo ThisBuild();

// {"version", "commit", "buildType", "compiler", "libraries": {"libgit2": ..., ...}}
nlohmann::json BuildInfoJson(const BuildInfo& info);

// "ballast 0.1.0\ncommit: ...\nbuild: Release, GCC 12.2.0\nlibgit2 1.5.1, OpenSSL 3.0.19, ...\n"
std::string BuildInfoText(const BuildInfo& info);

}  // namespace ballast::cli
