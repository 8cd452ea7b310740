#include "reconciler/state_key.h"

#include <algorithm>

#include "localfs/durable_file.h"
#include "reconciler/identity.h"

namespace ballast::reconciler {

Result<std::string> LoadOrCreateStateKey(const std::filesystem::path& file) {
  auto text = localfs::ReadSmallFile(file, 256);
  if (!text.ok() && text.status().code() == StatusCode::kNotFound) {
    const std::string key = RandomToken();
    if (Status s = localfs::WriteFileAtomically(file, key + "\n", 0600); !s.ok()) return s;
    return key;
  }
  if (!text.ok()) return text.status();
  std::string key = *text;
  const bool whole = !key.empty() && key.back() == '\n';
  if (whole) key.pop_back();
  if (!whole || key.size() != 64 || !std::all_of(key.begin(), key.end(), [](char c) {
        return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
      })) {
    return FailedPrecondition("key file " + file.string() +
                              ": not 64 hex characters and a newline (damaged?); restore it from "
                              "a backup, or remove it (Deployments that read ConfigMaps or "
                              "Secrets then roll once)");
  }
  return key;
}

}  // namespace ballast::reconciler
