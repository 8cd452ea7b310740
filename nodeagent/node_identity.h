#pragma once

// The node's identity towards the reconciler (agentapi/protocol.h, "Identity"): the join token
// it was started with, and the credential its registration was answered with, bound to its node
// name. The credential is kept in the work directory (0600), so a restarted agent is still the
// node it was, and dropped when the reconciler no longer knows it (401): the next registration
// uses the join token again.
//
// Thread-safe.

#include <mutex>
#include <string>

#include "agentapi/protocol.h"
#include "model/status.h"
#include "net/http.h"

namespace ballast::nodeagent {

class NodeIdentity {
 public:
  // `path`: where the credential is kept; `node` and `server`: whose it is (a file written for
  // another name or another reconciler is not used).
  // `certificate`: the node proves who it is with a client certificate, so the reconciler is
  // not open even though there is no join token (no logs are served before a registration).
  NodeIdentity(std::string join_token, std::string path, std::string node, std::string server,
               bool certificate = false);

  // Reads the kept credential, if there is one for this node and server.
  void Load();
  // What to present to the reconciler: the credential, else the join token ("" for none).
  std::string Bearer() const;
  bool HasCredential() const;
  // A registration's answer: its credential (kept on disk) and logs token. Older reconcilers
  // answer neither: the join token stays what the agent presents.
  Status Adopt(const agentapi::RegisterResponse& answer);
  // The reconciler refused the credential: back to the join token.
  void Forget();
  // Whether `request` (to the log server) carries what the reconciler was told to present: the
  // logs token of the last registration, or, before any (or from an older reconciler), the
  // token derived from the join token (agentapi::kLogsTokenPurpose).
  bool AllowsLogs(const net::Request& request) const;

 private:
  const std::string join_token_;
  const std::string path_;
  const std::string node_;
  const std::string server_;
  const bool certificate_;
  mutable std::mutex mu_;  // guards the fields below
  std::string credential_;
  std::string logs_token_;
};

}  // namespace ballast::nodeagent
