#pragma once

// Who is calling the reconciler, and how a request proves it.
//
// Identities come from three places:
//   - the token file (`serve --token-file`), in Kubernetes' static-token CSV form, one identity
//     per line:   token,user,uid,"group1,group2"
//     The groups give the role: "admin" (or Kubernetes' "system:masters"), "viewer", or "node"
//     (then `user` is the node's name: a node credential written by hand). A file of one bare
//     token (the form older versions read) is that token as "admin".
//   - the join token (`serve --join-token-file`): good for one thing, registering a node;
//   - node credentials: registering hands the agent a random credential bound to its node
//     name (as kubelet's TLS bootstrap or Nomad's node secret ID do). NodeCredentials keeps them.
//   - client certificates (`serve --tls-client-ca`), as Kubernetes reads them: the subject's
//     organizations are the groups (admin or system:masters, viewer, node or system:nodes), its
//     common name the user; a node's CN is its name, "system:node:NAME" or "NAME".
// A request presents its token as "Authorization: Bearer T", or as the password of HTTP Basic
// authentication (what a browser can send for the status page); a token, when present, decides
// over a certificate. Tokens are looked up by their
// SHA-256, so lookups take the same time whatever a guess shares with a real token.
//
// The decision over what an identity may do is Authorize() in api_routes.h; this file only says
// who is calling.

#include <cstddef>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

#include "model/status.h"
#include "net/http.h"

namespace ballast::reconciler {

enum class Role {
  kNone,    // no valid credential
  kViewer,  // every read, never a secret value
  kJoiner,  // the join token: may register a node, nothing else
  kNode,    // one node: the agent protocol, for itself only
  kAdmin,   // everything
};
const char* RoleName(Role role);  // "none", "viewer", "joiner", "node", "admin"
// "admin", "viewer", "none" -> the role; InvalidArgument naming the choices otherwise.
Result<Role> ParseAnonymousRole(std::string_view name);

struct Principal {
  Role role = Role::kNone;
  std::string user;  // the token file's user, "node:NAME", "anonymous"
  std::string node;  // kNode: the node this identity is
};

// The token file, parsed: SHA-256 (hex) of each token -> who it is.
struct TokenTable {
  std::map<std::string, Principal> by_hash;
};
// Parses the token file's text. Errors name `path`, the line and, for a malformed field, the
// column: "tokens.csv:3:1: ...". Never echoes a token.
Result<TokenTable> ParseTokenFile(std::string_view text, const std::string& path);
// Reads and parses the file at `path`.
Result<TokenTable> ReadTokenFile(const std::string& path);

// Lower-case hex SHA-256.
std::string Sha256Hex(std::string_view data);
// 32 random bytes (OpenSSL's RAND_bytes) as 64 hex characters.
std::string RandomToken();

// The credentials handed to registered nodes. Thread-safe; at most `max_nodes` nodes hold one.
class NodeCredentials {
 public:
  explicit NodeCredentials(size_t max_nodes = 10000) : max_nodes_(max_nodes) {}

  struct Issued {
    std::string credential;  // the node's bearer token for the agent protocol
    std::string logs_token;  // what the reconciler presents to the node's log server
  };
  // A fresh credential for `node`, replacing (revoking) any earlier one. ResourceExhausted when
  // `max_nodes` other nodes hold one.
  Result<Issued> Issue(const std::string& node);
  // The node a credential belongs to.
  std::optional<std::string> NodeOf(std::string_view credential) const;
  bool Holds(const std::string& node) const;
  // The token for reading `node`'s logs; empty when the node holds no credential.
  std::string LogsToken(const std::string& node) const;

 private:
  struct Entry {
    std::string credential_hash;
    std::string logs_token;
  };
  const size_t max_nodes_;
  mutable std::mutex mu_;  // guards the maps
  std::map<std::string, std::string> node_by_hash_;
  std::map<std::string, Entry> by_node_;
};

// Turns a request into a Principal. Thread-safe (read-only after construction, apart from the
// NodeCredentials it reads).
class Authenticator {
 public:
  // `anonymous`: the role of a request without a valid credential. When no token file and no
  // join token are configured, the reconciler is open (`ballast dev`, loopback only unless
  // --insecure): anonymous requests are admin.
  // `client_certificates`: the server verifies client certificates (--tls-client-ca), so the
  // reconciler is not open even without tokens.
  Authenticator(TokenTable tokens, std::string join_token, Role anonymous,
                const NodeCredentials* nodes, bool client_certificates = false);

  Principal Authenticate(const net::Request& request) const;
  // True when no credential is configured at all.
  bool open() const { return open_; }

 private:
  TokenTable tokens_;
  std::string join_hash_;
  Principal anonymous_;
  const NodeCredentials* nodes_;
  bool open_;
};

// Who a verified client certificate is: kNone when its groups name no role or it names no one.
Principal PrincipalOfCertificate(const net::PeerCertificate& cert);

// The token a request presents: "Authorization: Bearer T", or the password of
// "Authorization: Basic base64(user:T)". Empty when none.
std::string PresentedToken(const net::Request& request);

}  // namespace ballast::reconciler
