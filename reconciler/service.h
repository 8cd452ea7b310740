#pragma once

// The running reconciler (`ballast serve`), composed of its parts:
//   - ServiceLoop (service_loop.h): the Controller on one event-loop thread;
//   - Worker (worker.h): the blocking git work (polls, history appends, rollback pushes);
//   - HistoryJobs (history_jobs.h) and PinStore (pin_store.h): history.git and the pin;
//   - the HTTP API (api_routes.h: one route table, one authorization decision) on the net/
//     server, with the agents' long-polls (desired_state_store.h), webhooks (webhook.h) and pod
//     logs relayed from agents (log_relay.h).
// Every thread belongs to one of those parts and is joined by Stop().
//
// Start-up: opens STATE_DIR/history.git, restores what the newest entry applied (and the pin),
// polls the source, and adopts the pods agents report before starting anything.

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>

#include <nlohmann/json.hpp>

#include "clock/clock.h"
#include "model/status.h"
#include "net/server.h"
#include "reconciler/controller.h"
#include "reconciler/identity.h"
#include "sources/git/git_source.h"

namespace ballast::reconciler {

struct ServiceOptions {
  git::SourceConfig source;  // clone_dir defaults to STATE_DIR/source.git when empty
  std::filesystem::path state_dir;
  net::ServerOptions http;
  int poll_seconds = 30;
  // A failed poll is tried again after poll_seconds x 2^failures, at most this long (or one
  // poll interval, when that is longer): a git server back after an outage is seen within a
  // minute (it was five, and a ten-minute outage held a waiting commit back that long).
  int max_backoff_seconds = 60;
  ControllerOptions controller;
  // Who may call (reconciler/identity.h): the token file's identities, the join token for
  // agents, and the role of a request without a credential. With none of them configured the
  // reconciler is open: every request is admin (`ballast dev`; `serve` allows that on loopback
  // only, or with --insecure). `token` is one more admin token (the one-token file of older
  // versions, and tests).
  TokenTable tokens;
  std::string join_token;
  Role anonymous = Role::kNone;
  std::string token;
  // Open or plain HTTP off loopback, on the operator's word (--insecure): said on the page.
  bool insecure = false;
  std::string webhook_secret;  // HMAC secret (GitHub, Gitea) / token (GitLab); empty: none
  size_t max_webhook_bytes = 1 << 20;
  // What GET /api/v1/version answers: the binary's version, commit, build and libraries
  // (cli/build_info.h renders it; the reconciler only serves it).
  nlohmann::json version = nlohmann::json::object();
};

class Service {
 public:
  Service(ServiceOptions options, const Clock* clock);
  ~Service();  // Stop()
  Service(const Service&) = delete;
  Service& operator=(const Service&) = delete;

  // Opens the history, starts the threads and the HTTP server. Errors name the state dir or
  // the listen address.
  Status Start();
  // Stops the HTTP server and the threads. Idempotent.
  void Stop();
  std::string url() const;

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace ballast::reconciler
