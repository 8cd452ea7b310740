#pragma once

// HTTP values shared by the server and the client, and the helpers handlers use: JSON bodies,
// error bodies, bearer-token checks, URL and query parsing. No Boost in this header.

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "model/status.h"

namespace ballast::net {

using Json = nlohmann::json;
using Headers = std::vector<std::pair<std::string, std::string>>;

// The version of the OpenSSL library this process runs, e.g. "3.0.19".
std::string OpenSslVersion();

// ASCII case-insensitive equality (header names, tokens such as "gzip" or "Bearer").
bool EqualsIgnoreCase(std::string_view a, std::string_view b);

// Case-insensitive header lookup; nullptr when absent.
const std::string* FindHeader(const Headers& headers, std::string_view name);

// A client certificate that the server verified against its client CA: the subject's common
// name and organizations (Kubernetes reads them as user name and groups).
struct PeerCertificate {
  std::string common_name;
  std::vector<std::string> organizations;
};

struct Request {
  std::string method;  // "GET", "POST", ...
  std::string target;  // as sent: "/api/v1/agent/desired?node=a&version=3"
  std::string path;    // target without the query, percent-decoded: "/api/v1/agent/desired"
  std::vector<std::pair<std::string, std::string>> query;  // decoded, in order
  Headers headers;
  std::string body;
  std::string remote;  // "127.0.0.1:53422"
  // https with ServerOptions::tls_client_ca_file: the certificate the client presented and the
  // server verified; empty when it presented none.
  std::optional<PeerCertificate> peer_certificate;

  // The first value of query parameter `name`, or `fallback`.
  std::string Query(std::string_view name, std::string fallback = "") const;
  // Query parameter `name` as a whole integer within [min, max], or `fallback` when absent.
  // InvalidArgument naming the parameter otherwise ("query parameter wait: ...").
  Result<int64_t> QueryInt(std::string_view name, int64_t fallback, int64_t min, int64_t max) const;
  const std::string* Header(std::string_view name) const { return FindHeader(headers, name); }
};

struct Response {
  int status = 200;
  std::string content_type = "text/plain; charset=utf-8";
  Headers headers;  // extra headers (Content-Type and Content-Length are set from the fields)
  std::string body;
  // When set, sent instead of `body` and not copied: a cached document that many responses
  // share. The string must not change while any response holds it.
  std::shared_ptr<const std::string> shared_body;
};

Response TextResponse(int status, std::string body);
Response JsonResponse(int status, const Json& body);
// {"error": message} with `status`.
Response ErrorResponse(int status, const std::string& message);
// The HTTP status that matches a Status code (InvalidArgument 400, NotFound 404, ...), body
// {"error": message, "code": "NotFound"}.
Response StatusResponse(const Status& status);

// Parses the request body as JSON. InvalidArgument naming the parse error otherwise.
Result<Json> ParseJsonBody(const Request& request);

// True when `token` is empty (no token configured) or the request carries
// "Authorization: Bearer <token>". Compares in constant time.
bool CheckBearer(const Request& request, const std::string& token);
// The 401 response that goes with a failed CheckBearer.
Response UnauthorizedResponse();

std::string PercentDecode(std::string_view text);
std::string PercentEncode(std::string_view text);  // for query values
std::vector<std::pair<std::string, std::string>> ParseQuery(std::string_view query);

struct Url {
  std::string scheme;  // "http" or "https"
  std::string host;    // without brackets for IPv6
  uint16_t port = 0;   // defaulted from the scheme
  std::string target;  // path and query, "/" at least
  bool tls() const { return scheme == "https"; }
  std::string HostPort() const;  // "host:port"
};

// Parses "http://host[:port][/path][?query]" and "https://...". InvalidArgument otherwise.
Result<Url> ParseUrl(std::string_view url);

// A credential for one purpose derived from a secret: hex HMAC-SHA256(secret, purpose). Whoever
// holds it can do that one thing and cannot recover the secret. "" for an empty secret.
std::string DeriveToken(std::string_view secret, std::string_view purpose);

// Reads a token file: the first line, surrounding whitespace trimmed. NotFound / InvalidArgument
// (empty file) otherwise.
Result<std::string> ReadTokenFile(const std::string& path);

}  // namespace ballast::net
