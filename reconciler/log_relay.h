#pragma once

// Pod logs read from the pod's agent for GET /api/v1/logs/...: the reconciler asks the agent's
// API and relays the answer.
//
// Thread-safe. Owns `threads` threads (joined by Stop() or the destructor) and one HttpClient
// whose requests Stop() cancels, so no fetch outlives the reconciler. At most `max_queued`
// fetches wait; beyond that a request is answered 503 at once.

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "net/client.h"
#include "net/router.h"

namespace ballast::reconciler {

class LogRelay {
 public:
  LogRelay(net::ClientOptions client_options, size_t threads = 2, size_t max_queued = 64);
  ~LogRelay();  // Stop()
  LogRelay(const LogRelay&) = delete;
  LogRelay& operator=(const LogRelay&) = delete;

  // GETs `url` with `token` as its bearer token (the one the node's registration handed out for
  // its logs alone, never the reconciler's own) and answers `responder` with the agent's status
  // and body as plain text (or the error, as a JSON error response).
  void Fetch(std::string url, std::string token, net::Responder responder);
  // Cancels fetches in flight, answers queued ones 503, joins the threads. Idempotent.
  void Stop();

 private:
  struct Job {
    std::string url;
    std::string token;
    net::Responder responder;
  };
  void Main();

  const size_t max_queued_;
  net::HttpClient client_;
  std::mutex mu_;  // guards the fields below
  std::condition_variable cv_;
  std::deque<Job> jobs_;
  bool stopping_ = false;
  std::vector<std::thread> threads_;  // last: started once the fields above exist
};

}  // namespace ballast::reconciler
