#pragma once

// A blocking client for the Docker Engine API (v1.41; dockerd or `podman system service`) over
// its unix socket. HTTP/1.1 with Boost.Beast underneath (hidden in docker_client.cc): bodies
// framed by Content-Length, chunked transfer encoding or the end of the connection (the raw
// stream of an attached exec), and empty 204 answers. Every call has a deadline; streaming
// calls (logs?follow, wait, events) can instead be cancelled through a flag.
//
// Thread-safe: every call opens its own connection on the calling thread.

#include <atomic>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

#include "model/object.h"
#include "model/status.h"

namespace ballast::nodeagent {

struct DockerRequest {
  std::string method = "GET";
  std::string path;  // "/containers/json?all=true"; the "/v1.41" prefix is added
  std::string body;  // sent when not empty, or always for POST/PUT (then Content-Length: 0)
  std::string content_type = "application/json";
  int timeout_ms = 10'000;  // the whole call (connect, write, read); 0: no deadline
  size_t max_body = 16 * 1024 * 1024;
};

struct DockerResponse {
  int status = 0;
  std::string content_type;
  std::string body;
};

// Receives a streamed body piece by piece, as the engine sends it (after de-chunking).
// Returns false to stop reading (the call then returns OK).
using DockerBodySink = std::function<bool(std::string_view piece)>;

class DockerClient {
 public:
  explicit DockerClient(std::string socket_path, std::string api_version = "v1.41");

  const std::string& socket_path() const { return socket_path_; }

  // One request on a fresh connection. Any HTTP status is a response; errors (naming the
  // endpoint, "docker GET /_ping: ...") are Unavailable (no socket, connection reset),
  // DeadlineExceeded (timeout_ms passed) and ResourceExhausted (body over max_body).
  Result<DockerResponse> Call(const DockerRequest& request) const;

  // Like Call, but hands the body to `sink` as it arrives instead of buffering it (max_body is
  // not applied). Stops when the body ends, `sink` returns false, the deadline passes
  // (DeadlineExceeded) or `*cancel` becomes true (Aborted; checked every 100 ms). `on_status`
  // (may be empty) sees the status code before the first piece of the body. Returns the status.
  Result<int> Stream(const DockerRequest& request, const std::function<void(int)>& on_status,
                     const DockerBodySink& sink, const std::atomic<bool>* cancel) const;

  // JSON conveniences. A 2xx answer gives its body parsed (null for an empty body); any other
  // status is an error "docker POST /containers/create: no such image: ..." carrying the
  // engine's `message`, with the code following HTTP: 404 NotFound, 409 AlreadyExists,
  // 400 InvalidArgument, 5xx Internal, others FailedPrecondition.
  Result<model::Json> CallJson(const std::string& method, const std::string& path,
                               const model::Json& body = nullptr, int timeout_ms = 10'000) const;

  // GET /_ping answered "OK".
  Status Ping(int timeout_ms = 2'000) const;

 private:
  std::string socket_path_;
  std::string prefix_;  // "/v1.41"
};

// The error an engine's non-2xx answer stands for (see DockerClient::CallJson); `what` names the
// call ("docker POST /containers/create").
Status DockerError(const std::string& what, int status, std::string_view body);

// Splits Docker's multiplexed attach/logs stream (used when the container has no TTY): frames
// of an 8-byte header (stream: 0 stdin, 1 stdout, 2 stderr; three zero bytes; big-endian
// uint32 payload size) followed by the payload. Feed pieces as they arrive.
class MultiplexedStreamDecoder {
 public:
  using FrameSink = std::function<void(int stream, std::string_view payload)>;
  void Feed(std::string_view data, const FrameSink& sink);
  size_t pending() const { return buffer_.size(); }

 private:
  std::string buffer_;
};

// Percent-encodes a query parameter value (RFC 3986 unreserved characters stay).
std::string QueryEscape(std::string_view value);

}  // namespace ballast::nodeagent
