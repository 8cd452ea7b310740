#include "nodeagent/node_identity.h"

#include <sys/stat.h>

#include <cerrno>
#include <cstring>

#include "localfs/durable_file.h"

namespace ballast::nodeagent {

using model::Json;

NodeIdentity::NodeIdentity(std::string join_token, std::string path, std::string node,
                           std::string server, bool certificate)
    : join_token_(std::move(join_token)),
      path_(std::move(path)),
      node_(std::move(node)),
      server_(std::move(server)),
      certificate_(certificate) {}

void NodeIdentity::Load() {
  auto text = localfs::ReadSmallFile(path_, 64 * 1024);
  if (!text.ok()) return;
  Json j = Json::parse(*text, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object() || j.value("node", "") != node_ || j.value("server", "") != server_) return;
  const Json& credential = j["credential"];
  const Json& logs = j["logsToken"];
  if (!credential.is_string() || !logs.is_string()) return;
  std::lock_guard<std::mutex> lock(mu_);
  credential_ = credential.get<std::string>();
  logs_token_ = logs.get<std::string>();
}

std::string NodeIdentity::Bearer() const {
  std::lock_guard<std::mutex> lock(mu_);
  return credential_.empty() ? join_token_ : credential_;
}

bool NodeIdentity::HasCredential() const {
  std::lock_guard<std::mutex> lock(mu_);
  return !credential_.empty();
}

Status NodeIdentity::Adopt(const agentapi::RegisterResponse& answer) {
  std::lock_guard<std::mutex> lock(mu_);
  credential_ = answer.credential;
  logs_token_ = answer.logs_token;
  if (credential_.empty()) return localfs::RemoveFileDurably(path_);
  // The agent's own state directory; made here (0700) when nothing made it yet.
  const std::string dir = path_.substr(0, path_.rfind('/'));
  if (!dir.empty() && ::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) {
    return Status(StatusCode::kUnavailable, dir + ": " + std::strerror(errno));
  }
  const Json j = {{"node", node_},
                  {"server", server_},
                  {"credential", credential_},
                  {"logsToken", logs_token_}};
  return localfs::WriteFileAtomically(path_, j.dump() + "\n", 0600);
}

void NodeIdentity::Forget() {
  std::lock_guard<std::mutex> lock(mu_);
  credential_.clear();
}

bool NodeIdentity::AllowsLogs(const net::Request& request) const {
  std::lock_guard<std::mutex> lock(mu_);
  if (!logs_token_.empty()) return net::CheckBearer(request, logs_token_);
  if (join_token_.empty() && certificate_) return false;  // not open: wait for a registration
  return net::CheckBearer(request, net::DeriveToken(join_token_, agentapi::kLogsTokenPurpose));
}

}  // namespace ballast::nodeagent
