#pragma once

// Server side of GET /api/v1/agent/desired (agentapi/protocol.h): holds each node's
// DesiredState and the long-poll requests waiting for it.
//
// Thread-safe. Owns one timer thread (joined by the destructor) that answers requests whose wait
// ran out. Serve() is a net::Handler body for agentapi::kDesiredPath (the caller authorises
// first). A node with no state set yet gets its requests held (up to `wait`), then 503.

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "agentapi/protocol.h"
#include "net/router.h"

namespace ballast::reconciler {

class DesiredStateStore {
 public:
  explicit DesiredStateStore(int max_wait_seconds = 60);
  ~DesiredStateStore();  // answers every waiting request (503) and joins the timer thread
  DesiredStateStore(const DesiredStateStore&) = delete;
  DesiredStateStore& operator=(const DesiredStateStore&) = delete;

  // Replaces the node's state; its version is set to the previous version + 1 (starting at 1)
  // unless `state.version` is larger. Wakes the node's waiting requests. Returns the version.
  int64_t Set(const std::string& node, agentapi::DesiredState state);
  // The current state, if any.
  std::optional<agentapi::DesiredState> Get(const std::string& node) const;

  void Serve(const net::Request& request, net::Responder responder);

 private:
  struct Waiter {
    std::string node;
    int64_t version;
    std::chrono::steady_clock::time_point deadline;
    net::Responder responder;
  };
  void ExpireLoop();

  const int max_wait_seconds_;
  mutable std::mutex mu_;  // guards the fields below
  std::condition_variable cv_;
  bool stopping_ = false;
  std::map<std::string, agentapi::DesiredState> states_;
  std::vector<Waiter> waiters_;
  std::thread expirer_;  // last: started after the fields it reads
};

}  // namespace ballast::reconciler
