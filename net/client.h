#pragma once

// A blocking HTTP/1.1 client (Boost.Beast underneath, hidden here): http and https (OpenSSL,
// verified against a CA file or the system store), one deadline per request covering connect,
// TLS, write and read, a response size limit, and Cancel() for a quick shutdown.

#include <atomic>
#include <chrono>
#include <memory>
#include <optional>
#include <string>

#include "model/status.h"
#include "net/http.h"

namespace ballast::net {

struct ClientOptions {
  std::string ca_file;  // https: PEM CA bundle; empty uses the system store
  // https: this PEM certificate (chain) and key, when the server asks for one (mutual TLS).
  std::string cert_file;
  std::string key_file;
  std::string bearer_token;  // sent as "Authorization: Bearer ..." when not empty
  std::chrono::milliseconds timeout{10000};
  size_t max_body_bytes = 16 * 1024 * 1024;
  std::string user_agent = "ballast";
};

struct ClientRequest {
  std::string method = "GET";
  std::string url;  // http://host:port/path?query
  std::string body;
  std::string content_type;  // set when body is not empty
  Headers headers;
  std::optional<std::chrono::milliseconds> timeout;  // overrides ClientOptions::timeout
};

struct ClientResponse {
  int status = 0;
  Headers headers;
  std::string body;
  // The body as JSON; InvalidArgument when it is not.
  Result<Json> JsonBody() const;
};

class HttpClient {
 public:
  explicit HttpClient(ClientOptions options = {});
  ~HttpClient();
  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;

  // Sends one request on a fresh connection and reads the response. Any HTTP status is a
  // value; errors are: Unavailable (cannot connect, connection reset, TLS failure),
  // DeadlineExceeded (timeout), ResourceExhausted (response too large), Aborted (Cancel()),
  // InvalidArgument (bad URL). Messages name the method and URL. Thread-safe.
  Result<ClientResponse> Do(const ClientRequest& request);
  Result<ClientResponse> Get(const std::string& url);
  Result<ClientResponse> PostJson(const std::string& url, const Json& body);

  // Aborts requests in flight and makes every later Do fail with Aborted. Thread-safe.
  void Cancel();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace ballast::net
