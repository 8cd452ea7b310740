#include "reconciler/node_roster.h"

#include <string_view>

#include "localfs/durable_file.h"

namespace ballast::reconciler {
namespace {

// What a node name may be here: 1..253 printable ASCII characters, no space.
bool PlausibleNodeName(std::string_view name) {
  if (name.empty() || name.size() > 253) return false;
  for (char c : name) {
    if (c <= ' ' || c > '~') return false;
  }
  return true;
}

}  // namespace

Result<std::set<std::string>> NodeRoster::Load(size_t max_nodes) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto text = localfs::ReadSmallFile(file_, (max_nodes + 1) * 254);
  if (!text.ok()) {
    if (text.status().code() == StatusCode::kNotFound) return std::set<std::string>();
    return text.status();
  }
  std::set<std::string> out;
  std::string_view rest = *text;
  // Written whole, each name with its newline: a last line without one was cut short.
  if (!rest.empty() && rest.back() != '\n') {
    return FailedPrecondition("node roster " + file_.string() +
                              ": truncated (no final newline); remove the file to forget the "
                              "nodes it lists");
  }
  size_t line = 0;
  while (!rest.empty()) {
    ++line;
    const size_t nl = rest.find('\n');
    const std::string_view name = rest.substr(0, nl);
    rest = nl == std::string_view::npos ? std::string_view() : rest.substr(nl + 1);
    if (!PlausibleNodeName(name) || out.size() >= max_nodes) {
      return FailedPrecondition("node roster " + file_.string() + ":" + std::to_string(line) +
                                ": not a node name (or more than " + std::to_string(max_nodes) +
                                " nodes); remove the file to forget the nodes it lists");
    }
    out.emplace(name);
  }
  return out;
}

Status NodeRoster::Store(const std::set<std::string>& nodes) {
  std::string text;
  for (const std::string& n : nodes) {
    if (PlausibleNodeName(n)) text += n + "\n";
  }
  std::lock_guard<std::mutex> lock(mu_);
  return localfs::WriteFileAtomically(file_, text);
}

}  // namespace ballast::reconciler
