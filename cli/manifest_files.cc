#include "cli/manifest_files.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <system_error>

namespace ballast::cli {
namespace fs = std::filesystem;

namespace {

// The first max_bytes + 1 bytes of `p` (one more than allowed, so that the parser can say the
// file is too large), in memory proportional to the file: a buffer sized to the limit for every
// file (4 MiB) ran `validate` out of memory on a repository of a few thousand files.
Result<std::string> ReadPrefix(const fs::path& p, size_t max_bytes) {
  std::ifstream in(p, std::ios::binary);
  if (!in) return NotFound("cannot open " + p.string());
  std::string content;
  char chunk[64 * 1024];
  while (content.size() <= max_bytes) {
    const size_t want = std::min(sizeof chunk, max_bytes + 1 - content.size());
    in.read(chunk, static_cast<std::streamsize>(want));
    content.append(chunk, static_cast<size_t>(in.gcount()));
    if (!in) break;
  }
  if (in.bad()) return Internal("cannot read " + p.string());
  return content;
}

}  // namespace

Result<std::vector<model::SourceFile>> ReadManifestTree(const std::string& path, size_t max_bytes) {
  std::error_code ec;
  fs::file_status st = fs::status(path, ec);
  if (ec || !fs::exists(st)) return NotFound(path + ": no such file or directory");
  std::vector<model::SourceFile> files;
  if (!fs::is_directory(st)) {
    auto content = ReadPrefix(path, max_bytes);
    if (!content.ok()) return content.status();
    files.push_back({path, std::move(*content)});
    return files;
  }
  std::vector<fs::path> found;
  fs::recursive_directory_iterator it(path, fs::directory_options::skip_permission_denied, ec);
  if (ec) return Internal(path + ": " + ec.message());
  for (; it != fs::recursive_directory_iterator(); it.increment(ec)) {
    if (ec) return Internal(path + ": " + ec.message());
    const std::string name = it->path().filename().string();
    if (!name.empty() && name[0] == '.') {
      if (it->is_directory()) it.disable_recursion_pending();
      continue;
    }
    if (it->is_regular_file() && model::IsManifestFileName(name)) found.push_back(it->path());
  }
  std::sort(found.begin(), found.end());
  for (const auto& p : found) {
    auto content = ReadPrefix(p, max_bytes);
    if (!content.ok()) return content.status();
    files.push_back({p.string(), std::move(*content)});
  }
  return files;
}

std::optional<model::ManifestSet> RenderIfKustomization(const std::string& path, size_t max_bytes,
                                                        const model::SopsKeyring* sops) {
  std::error_code ec;
  if (fs::is_directory(path, ec)) {
    // Paths below the current directory keep their names; others are taken from the root.
    const fs::path absolute = fs::weakly_canonical(fs::absolute(path, ec), ec);
    const fs::path cwd = fs::current_path(ec);
    fs::path base = "/";
    std::string dir = absolute.relative_path().string();
    const fs::path rel = absolute.lexically_relative(cwd);
    if (!ec && !rel.empty() && *rel.begin() != "..") {
      base = cwd;
      dir = rel == "." ? "" : rel.string();
    }
    model::KustomizeReader reader =
        [&](const std::string& p) -> Result<std::optional<std::string>> {
      const fs::path file = base / p;
      std::error_code e;
      if (!fs::is_regular_file(file, e)) return std::optional<std::string>();
      auto content = ReadPrefix(file, max_bytes);
      if (!content.ok()) return content.status();
      return std::optional<std::string>(std::move(*content));
    };
    if (!model::FindKustomization(dir, reader).empty()) {
      model::ParseLimits limits;
      limits.max_file_bytes = max_bytes;
      limits.sops = sops;
      return model::RenderKustomization(dir, reader, base == "/" ? "/" : "", limits);
    }
  }
  return std::nullopt;
}

Result<model::ManifestSet> ReadApplication(const std::string& path, size_t max_bytes,
                                           const model::SopsKeyring* sops) {
  if (auto rendered = RenderIfKustomization(path, max_bytes, sops)) return std::move(*rendered);
  auto files = ReadManifestTree(path, max_bytes);
  if (!files.ok()) return files.status();
  model::ParseLimits limits;
  limits.max_file_bytes = max_bytes;
  limits.sops = sops;
  return model::ParseManifests(*files, limits);
}

}  // namespace ballast::cli
