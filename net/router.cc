#include "net/router.h"

#include <atomic>
#include <exception>
#include <mutex>

namespace ballast::net {

struct Responder::State {
  explicit State(std::shared_ptr<Sink> s) : sink(std::move(s)) {}
  ~State() {
    if (!sent.exchange(true) && sink) {
      sink->Deliver(ErrorResponse(500, "the handler dropped the request without a response"));
    }
  }
  std::shared_ptr<Sink> sink;
  std::atomic<bool> sent{false};
};

Responder::Responder(std::shared_ptr<Sink> sink)
    : state_(std::make_shared<State>(std::move(sink))) {}

void Responder::Send(Response response) const {
  if (!state_ || state_->sent.exchange(true)) return;
  if (state_->sink) state_->sink->Deliver(std::move(response));
}

bool Responder::sent() const { return state_ && state_->sent.load(); }

void Router::Handle(const std::string& method, const std::string& pattern, Handler handler) {
  bool prefix = pattern.size() >= 2 && pattern.compare(pattern.size() - 2, 2, "/*") == 0;
  std::string stem = prefix ? pattern.substr(0, pattern.size() - 1) : pattern;  // keeps the '/'
  for (auto& r : routes_) {
    if (r.method == method && r.pattern == stem && r.prefix == prefix) {
      r.handler = std::move(handler);
      return;
    }
  }
  routes_.push_back(Route{method, stem, prefix, std::move(handler)});
}

void Router::HandleSync(const std::string& method, const std::string& pattern,
                        SyncHandler handler) {
  Handle(method, pattern,
         [h = std::move(handler)](const Request& req, Responder res) { res.Send(h(req)); });
}

void Router::Dispatch(const Request& request, Responder responder) const {
  const Route* best = nullptr;
  size_t best_len = 0;
  bool best_exact = false;
  std::string allow;
  for (const auto& r : routes_) {
    bool match = r.prefix ? request.path.size() > r.pattern.size() &&
                                request.path.compare(0, r.pattern.size(), r.pattern) == 0
                          : request.path == r.pattern;
    if (!match) continue;
    if (r.method != request.method && !(request.method == "HEAD" && r.method == "GET")) {
      if (allow.find(r.method) == std::string::npos)
        allow += (allow.empty() ? "" : ", ") + r.method;
      continue;
    }
    bool exact = !r.prefix;
    if (best == nullptr || (exact && !best_exact) ||
        (exact == best_exact && r.pattern.size() > best_len)) {
      best = &r;
      best_len = r.pattern.size();
      best_exact = exact;
    }
  }
  if (best == nullptr) {
    if (!allow.empty()) {
      Response r =
          ErrorResponse(405, "method " + request.method + " not allowed on " + request.path);
      r.headers.emplace_back("Allow", allow);
      responder.Send(std::move(r));
    } else {
      responder.Send(ErrorResponse(404, "no such path: " + request.path));
    }
    return;
  }
  try {
    best->handler(request, responder);
  } catch (const std::exception& e) {
    responder.Send(ErrorResponse(500, std::string("internal error: ") + e.what()));
  } catch (...) {
    responder.Send(ErrorResponse(500, "internal error"));
  }
}

}  // namespace ballast::net
