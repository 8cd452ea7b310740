#include "reconciler/identity.h"

#include <csv.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include <fstream>
#include <sstream>
#include <stdexcept>
#include <vector>

#include "model/digest.h"

namespace ballast::reconciler {
namespace {

std::string Hex(const unsigned char* data, size_t size) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(size * 2);
  for (size_t i = 0; i < size; ++i) {
    out += kHex[data[i] >> 4];
    out += kHex[data[i] & 0xf];
  }
  return out;
}

std::string_view Trim(std::string_view s) {
  const auto b = s.find_first_not_of(" \t\r");
  if (b == std::string_view::npos) return {};
  const auto e = s.find_last_not_of(" \t\r");
  return s.substr(b, e - b + 1);
}

// The fields of one line of CSV (libcsv, strict quoting), or the column where it is malformed.
struct CsvLine {
  std::vector<std::string> fields;
  size_t error_column = 0;  // 1-based; 0: parsed
  std::string error;
};

CsvLine SplitCsvLine(std::string_view line) {
  CsvLine out;
  csv_parser parser;
  if (csv_init(&parser, CSV_STRICT | CSV_STRICT_FINI) != 0) {
    out.error_column = 1;
    out.error = "cannot start the CSV parser";
    return out;
  }
  auto on_field = [](void* data, size_t size, void* self) {
    static_cast<CsvLine*>(self)->fields.emplace_back(static_cast<const char*>(data), size);
  };
  auto on_row = [](int, void*) {};
  const size_t used = csv_parse(&parser, line.data(), line.size(), on_field, on_row, &out);
  if (used != line.size()) {
    out.error_column = used + 1;
    out.error = csv_strerror(csv_error(&parser));
  } else if (csv_fini(&parser, on_field, on_row, &out) != 0) {
    out.error_column = line.size() + 1;
    out.error = csv_strerror(csv_error(&parser));
  }
  csv_free(&parser);
  return out;
}

// The role group names give, compared exactly: admin over node over viewer; kNone when no group
// names one. The token file's groups and a certificate's organizations both come here.
Role RoleOfGroupNames(const std::vector<std::string_view>& names) {
  Role role = Role::kNone;
  for (const std::string_view name : names) {
    if (name == "admin" || name == "system:masters") return Role::kAdmin;
    if (name == "node" || name == "system:nodes") role = Role::kNode;
    if (name == "viewer" && role == Role::kNone) role = Role::kViewer;
  }
  return role;
}

// The role a token file line's groups field gives ("group1, group2": split and trimmed).
Role RoleOfGroups(const std::string& groups) {
  std::vector<std::string> split;
  std::stringstream in(groups);
  for (std::string g; std::getline(in, g, ',');) split.push_back(std::move(g));
  std::vector<std::string_view> names;
  for (const std::string& g : split) names.push_back(Trim(g));
  return RoleOfGroupNames(names);
}

}  // namespace

const char* RoleName(Role role) {
  switch (role) {
    case Role::kNone:
      return "none";
    case Role::kViewer:
      return "viewer";
    case Role::kJoiner:
      return "joiner";
    case Role::kNode:
      return "node";
    case Role::kAdmin:
      return "admin";
  }
  return "?";
}

Result<Role> ParseAnonymousRole(std::string_view name) {
  if (name == "none") return Role::kNone;
  if (name == "viewer") return Role::kViewer;
  if (name == "admin") return Role::kAdmin;
  return InvalidArgument("anonymous role: want none, viewer or admin, not \"" + std::string(name) +
                         "\"");
}

std::string Sha256Hex(std::string_view data) { return model::Sha256Hex(data); }

std::string RandomToken() {
  unsigned char bytes[32];
  if (RAND_bytes(bytes, sizeof bytes) != 1) {
    // No randomness means no credential worth handing out; never a predictable one.
    throw std::runtime_error("RAND_bytes failed");
  }
  return Hex(bytes, sizeof bytes);
}

Result<TokenTable> ParseTokenFile(std::string_view text, const std::string& path) {
  TokenTable table;
  size_t line_no = 0;
  size_t identities = 0;
  while (!text.empty()) {
    ++line_no;
    const size_t nl = text.find('\n');
    const std::string_view raw = text.substr(0, nl);
    text = nl == std::string_view::npos ? std::string_view() : text.substr(nl + 1);
    const std::string_view line = Trim(raw);
    if (line.empty() || line.front() == '#') continue;
    const std::string where = path + ":" + std::to_string(line_no);
    CsvLine csv = SplitCsvLine(line);
    if (csv.error_column != 0) {
      return InvalidArgument(where + ":" + std::to_string(csv.error_column) + ": " + csv.error);
    }
    auto& f = csv.fields;
    const std::string token(Trim(f[0]));
    if (token.empty()) return InvalidArgument(where + ":1: token: empty");
    Principal who;
    if (f.size() == 1) {
      // One bare token: the file older versions read, an admin's.
      who.role = Role::kAdmin;
      who.user = "admin";
    } else {
      if (f.size() < 3) {
        return InvalidArgument(where + ": want token,user,uid[,\"group1,group2\"], found " +
                               std::to_string(f.size()) + " fields");
      }
      who.user = std::string(Trim(f[1]));
      if (who.user.empty()) return InvalidArgument(where + ": user (field 2): empty");
      who.role = f.size() > 3 ? RoleOfGroups(f[3]) : Role::kNone;
      if (who.role == Role::kNone) {
        return InvalidArgument(where + ": groups (field 4) of user " + who.user +
                               ": name a role: admin, viewer or node");
      }
      if (who.role == Role::kNode) who.node = who.user;
    }
    if (!table.by_hash.emplace(Sha256Hex(token), who).second) {
      return InvalidArgument(where + ": the token of user " + who.user +
                             " is already on an earlier line");
    }
    ++identities;
  }
  if (identities == 0) return InvalidArgument(path + ": no tokens");
  return table;
}

Result<TokenTable> ReadTokenFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return NotFound("token file " + path + ": cannot open");
  std::stringstream text;
  text << in.rdbuf();
  return ParseTokenFile(text.str(), path);
}

Result<NodeCredentials::Issued> NodeCredentials::Issue(const std::string& node) {
  Issued issued{RandomToken(), RandomToken()};
  std::lock_guard<std::mutex> lock(mu_);
  auto it = by_node_.find(node);
  if (it == by_node_.end() && by_node_.size() >= max_nodes_) {
    return Status(StatusCode::kResourceExhausted,
                  std::to_string(max_nodes_) + " nodes hold credentials already");
  }
  if (it != by_node_.end()) node_by_hash_.erase(it->second.credential_hash);
  const std::string hash = Sha256Hex(issued.credential);
  node_by_hash_[hash] = node;
  by_node_[node] = Entry{hash, issued.logs_token};
  return issued;
}

std::optional<std::string> NodeCredentials::NodeOf(std::string_view credential) const {
  const std::string hash = Sha256Hex(credential);
  std::lock_guard<std::mutex> lock(mu_);
  auto it = node_by_hash_.find(hash);
  if (it == node_by_hash_.end()) return std::nullopt;
  return it->second;
}

bool NodeCredentials::Holds(const std::string& node) const {
  std::lock_guard<std::mutex> lock(mu_);
  return by_node_.count(node) > 0;
}

std::string NodeCredentials::LogsToken(const std::string& node) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = by_node_.find(node);
  return it == by_node_.end() ? std::string() : it->second.logs_token;
}

Principal PrincipalOfCertificate(const net::PeerCertificate& cert) {
  // Organizations are the groups as they are, as Kubernetes reads them (no trimming, no
  // splitting).
  Principal who;
  who.role = RoleOfGroupNames({cert.organizations.begin(), cert.organizations.end()});
  who.user = cert.common_name;
  if (who.role == Role::kNode) {
    constexpr std::string_view kPrefix = "system:node:";
    std::string_view name = cert.common_name;
    if (name.substr(0, kPrefix.size()) == kPrefix) name.remove_prefix(kPrefix.size());
    who.node = std::string(name);
    who.user = "node:" + who.node;
    if (who.node.empty()) return Principal{Role::kNone, "", ""};
  }
  if (who.user.empty()) return Principal{Role::kNone, "", ""};
  return who;
}

Authenticator::Authenticator(TokenTable tokens, std::string join_token, Role anonymous,
                             const NodeCredentials* nodes, bool client_certificates)
    : tokens_(std::move(tokens)),
      join_hash_(join_token.empty() ? std::string() : Sha256Hex(join_token)),
      nodes_(nodes),
      open_(tokens_.by_hash.empty() && join_token.empty() && !client_certificates) {
  anonymous_.role = open_ ? Role::kAdmin : anonymous;
  anonymous_.user = "anonymous";
}

Principal Authenticator::Authenticate(const net::Request& request) const {
  const std::string token = PresentedToken(request);
  if (token.empty()) {
    // Verified by the server against --tls-client-ca before the request was read.
    if (request.peer_certificate) return PrincipalOfCertificate(*request.peer_certificate);
    return anonymous_;
  }
  const std::string hash = Sha256Hex(token);
  if (auto it = tokens_.by_hash.find(hash); it != tokens_.by_hash.end()) return it->second;
  if (!join_hash_.empty() && hash == join_hash_) return Principal{Role::kJoiner, "joiner", ""};
  if (nodes_ != nullptr) {
    if (auto node = nodes_->NodeOf(token)) return Principal{Role::kNode, "node:" + *node, *node};
  }
  // A wrong token is no identity, even where anonymous requests may read: a client that sends
  // one wants to be told.
  return Principal{Role::kNone, "", ""};
}

std::string PresentedToken(const net::Request& request) {
  const std::string* auth = request.Header("Authorization");
  if (auth == nullptr) return "";
  const std::string_view value = Trim(*auth);
  const auto space = value.find(' ');
  if (space == std::string_view::npos) return "";
  std::string scheme(value.substr(0, space));
  for (char& c : scheme) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  const std::string_view rest = Trim(value.substr(space + 1));
  if (scheme == "bearer") return std::string(rest);
  if (scheme != "basic" || rest.size() > 4096 || rest.size() % 4 != 0) return "";
  std::string decoded(rest.size() / 4 * 3 + 1, '\0');
  const int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(decoded.data()),
                                reinterpret_cast<const unsigned char*>(rest.data()),
                                static_cast<int>(rest.size()));
  if (n < 0) return "";
  decoded.resize(static_cast<size_t>(n));
  // EVP_DecodeBlock counts the padding as zero bytes: drop them.
  size_t pad = 0;
  for (size_t i = rest.size(); i > 0 && rest[i - 1] == '='; --i) ++pad;
  decoded.resize(decoded.size() - std::min(pad, decoded.size()));
  const auto colon = decoded.find(':');
  return colon == std::string::npos ? "" : decoded.substr(colon + 1);
}

}  // namespace ballast::reconciler
