#pragma once

// An HTTP/1.1 server (Boost.Beast underneath, hidden here): keep-alive, optional TLS, request
// header and body limits, read and write timeouts, a cap on connections, long-poll friendly
// responses (see Responder), clean stop. When accept fails (out of file descriptors: EMFILE,
// ENFILE; or of kernel memory: ENOBUFS, ENOMEM) the server pauses accepting for 100 ms instead
// of retrying at once, and keeps serving the connections it has.

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include "model/status.h"
#include "net/router.h"

namespace ballast::net {

struct ServerOptions {
  std::string address = "127.0.0.1";
  uint16_t port = 0;  // 0: any free port, read back with HttpServer::port()
  int threads = 1;
  size_t max_header_bytes = 16 * 1024;
  size_t max_body_bytes = 1024 * 1024;  // larger bodies get 413
  // A request (headers and body, or the wait for the next one on a kept-alive connection) must
  // arrive within read_timeout; a response must be written within write_timeout. A handler that
  // completes later (long-poll) is not limited by either.
  std::chrono::milliseconds read_timeout{30000};
  std::chrono::milliseconds write_timeout{30000};
  // Both set: serve https with this PEM certificate (chain) and key.
  std::string tls_cert_file;
  std::string tls_key_file;
  // With TLS: ask clients for a certificate signed by this PEM CA bundle. A client may still
  // present none (then Request::peer_certificate is empty: it can use a token); one that does
  // not verify fails the handshake.
  std::string tls_client_ca_file;
  // Connections served at once, kept-alive and long-polling ones included (0 is taken as 1).
  // One more is answered 503 "too many connections" and closed within 1 s, never queued; it is
  // closed at once, unanswered, on https (no handshake for a refusal) or while 64 others are
  // being refused. Keep it below the process's open-file limit (RLIMIT_NOFILE, often 1024) so
  // that the cap, not EMFILE, is what a flood of connections meets.
  size_t max_connections = 1024;
};

// What a server has counted since it started.
struct ServerCounters {
  uint64_t rejected_connections = 0;  // over max_connections: answered 503, or closed
  uint64_t accept_failures = 0;       // accept failed (EMFILE, ...): each paused accepting
};

class HttpServer {
 public:
  explicit HttpServer(ServerOptions options);
  ~HttpServer();  // Stop()
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Binds, listens and starts the server threads. Unavailable when the address cannot be bound,
  // InvalidArgument for a bad address or TLS files.
  Status Start(Router router);
  // Closes the listener and every connection, joins the threads. Responses sent after Stop are
  // dropped. Idempotent; safe to call from any thread but a handler.
  void Stop();

  uint16_t port() const;
  const std::string& address() const;
  std::string url() const;          // "http://127.0.0.1:PORT" (https when TLS)
  ServerCounters counters() const;  // thread-safe

  struct Impl;  // in server.cc; public only so that its connection types can name it

 private:
  std::shared_ptr<Impl> impl_;
};

}  // namespace ballast::net
