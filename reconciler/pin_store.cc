#include "reconciler/pin_store.h"

#include <charconv>
#include <string>

#include "localfs/durable_file.h"

namespace ballast::reconciler {

Result<std::optional<int64_t>> PinStore::Load() const {
  std::lock_guard<std::mutex> lock(mu_);
  auto text = localfs::ReadSmallFile(file_, 64);
  if (!text.ok()) {
    if (text.status().code() == StatusCode::kNotFound) return std::optional<int64_t>();
    return text.status();
  }
  std::string s = *text;
  // Written whole with its newline (WriteFileAtomically): without it the file was cut short.
  if (s.empty() || s.back() != '\n') {
    return FailedPrecondition("pin file " + file_.string() + ": truncated (\"" + s.substr(0, 32) +
                              "\" has no final newline); remove it, or `ballast unpin`");
  }
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  int64_t id = 0;
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), id);
  if (ec != std::errc() || end != s.data() + s.size() || id <= 0) {
    return FailedPrecondition("pin file " + file_.string() + ": \"" + s.substr(0, 32) +
                              "\" is not a history entry id (remove it, or `ballast unpin`)");
  }
  return std::optional<int64_t>(id);
}

Status PinStore::Store(int64_t id) {
  if (id <= 0) return InvalidArgument("pin: entry id must be positive");
  std::lock_guard<std::mutex> lock(mu_);
  return localfs::WriteFileAtomically(file_, std::to_string(id) + "\n");
}

Status PinStore::Clear() {
  std::lock_guard<std::mutex> lock(mu_);
  return localfs::RemoveFileDurably(file_);
}

}  // namespace ballast::reconciler
