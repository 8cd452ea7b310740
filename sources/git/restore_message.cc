#include "sources/git/restore_message.h"

#include <cctype>

namespace ballast::git {
namespace {

constexpr std::string_view kPrefix = "Roll back to #";
constexpr std::string_view kSource = " (source ";
constexpr std::string_view kRequestedBy = "\n\nRequested-by: ";
constexpr std::string_view kAutomatic = "auto-rollback";

}  // namespace

bool RestoreMessage::automatic() const {
  return requested_by.compare(0, kAutomatic.size(), kAutomatic) == 0;
}

std::string RestoreMessage::Format() const {
  std::string out(kPrefix);
  out += std::to_string(entry_id);
  out += kSource;
  out += source_sha.substr(0, 7);
  out += ')';
  out += kRequestedBy;
  out += requested_by.empty() ? "unknown" : requested_by;
  out += '\n';
  return out;
}

std::optional<RestoreMessage> RestoreMessage::Parse(std::string_view m) {
  if (m.substr(0, kPrefix.size()) != kPrefix) return std::nullopt;
  size_t at = kPrefix.size();
  size_t digits = at;
  while (digits < m.size() && std::isdigit(static_cast<unsigned char>(m[digits]))) ++digits;
  if (digits == at || digits - at > 18) return std::nullopt;
  RestoreMessage r;
  r.entry_id = std::stoll(std::string(m.substr(at, digits - at)));
  at = digits;
  if (m.substr(at, kSource.size()) != kSource) return std::nullopt;
  at += kSource.size();
  const size_t close = m.find(')', at);
  if (close == std::string_view::npos || m.find('\n', at) < close) return std::nullopt;
  r.source_sha = std::string(m.substr(at, close - at));
  at = close + 1;
  if (m.substr(at, kRequestedBy.size()) != kRequestedBy) return std::nullopt;
  at += kRequestedBy.size();
  const size_t eol = m.find('\n', at);
  r.requested_by = std::string(m.substr(at, eol == std::string_view::npos ? eol : eol - at));
  if (r.entry_id <= 0 || r.requested_by.empty()) return std::nullopt;
  return r;
}

}  // namespace ballast::git
