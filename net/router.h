#pragma once

// Routes (method, path) to handlers. A handler gets the request and a Responder, and completes
// the response now or later (long-poll) from any thread. No Boost in this header.

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "net/http.h"

namespace ballast::net {

// Completes one request. Copyable; copies share the same request. Thread-safe: Send may be
// called from any thread, once; later calls are ignored. When the last copy is destroyed without
// a Send, the client gets 500 so that no request hangs because a handler forgot it.
class Responder {
 public:
  // The side that delivers the response (the server connection, or a test).
  struct Sink {
    virtual ~Sink() = default;
    virtual void Deliver(Response response) = 0;
  };

  Responder() = default;
  explicit Responder(std::shared_ptr<Sink> sink);

  void Send(Response response) const;
  // True once Send was called (by any copy).
  bool sent() const;

 private:
  struct State;
  std::shared_ptr<State> state_;
};

// Runs on a server thread; must not block (hand long work to another thread and Send later).
using Handler = std::function<void(const Request&, Responder)>;
// A handler that answers at once.
using SyncHandler = std::function<Response(const Request&)>;

class Router {
 public:
  // `pattern` is an exact path ("/healthz") or a prefix ending in "/*" ("/api/v1/pods/*", which
  // matches "/api/v1/pods/x" but not "/api/v1/pods"). Exact routes win over prefixes; longer
  // prefixes win over shorter ones. Registering the same (method, pattern) twice replaces it.
  void Handle(const std::string& method, const std::string& pattern, Handler handler);
  void HandleSync(const std::string& method, const std::string& pattern, SyncHandler handler);

  // 404 when no pattern matches the path, 405 (with Allow) when one matches for another method,
  // 500 when the handler throws.
  void Dispatch(const Request& request, Responder responder) const;

 private:
  struct Route {
    std::string method;
    std::string pattern;
    bool prefix = false;
    Handler handler;
  };
  std::vector<Route> routes_;
};

}  // namespace ballast::net
