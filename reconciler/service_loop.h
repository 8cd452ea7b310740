#pragma once

// The loop that owns the reconciler's state: one thread that alone touches the Controller, fed
// with closures (Post) by the HTTP handlers and the worker, and woken by its own timers (the
// next poll of the source, the controller's next step, the periodic resync).
//
// Each pass: reconcile, re-render the API documents somebody polls (ResponseCache), then ship
// the decisions (per-node desired states to DesiredStateStore, history appends and
// auto-rollbacks to the worker) — in that order, so nothing decided is visible anywhere before
// the documents show it.
//
// Threads: the loop thread, started by Start() and joined by Stop(). Post() and cache() may be
// used from any thread; every other method only from the loop thread (inside a posted closure).

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "agentapi/protocol.h"
#include "clock/clock.h"
#include "reconciler/controller.h"
#include "reconciler/desired_state_store.h"
#include "reconciler/history_jobs.h"
#include "reconciler/metrics.h"
#include "reconciler/node_roster.h"
#include "reconciler/response_cache.h"
#include "reconciler/worker.h"
#include "sources/git/git_source.h"

namespace ballast::reconciler {

struct ServiceLoopOptions {
  int poll_seconds = 30;
  // A failed poll is tried again after poll_seconds x 2^failures, at most this long (or one
  // poll interval, when that is longer): a git server back after an outage is seen within a
  // minute (it was five, and a ten-minute outage held a waiting commit back that long).
  int max_backoff_seconds = 60;
  ControllerOptions controller;
};

// The cache key of a document's redacted form: "plan?diff" + kRedactedSuffix.
inline constexpr const char* kRedactedSuffix = "#redacted";

class ServiceLoop {
 public:
  // Everything pointed to outlives the loop; `worker` runs the git work.
  ServiceLoop(ServiceLoopOptions options, const Clock* clock, Metrics* metrics, Worker* worker,
              HistoryJobs* history, git::GitSource* source, DesiredStateStore* desired,
              NodeRoster* roster);
  ~ServiceLoop();  // Stop()
  ServiceLoop(const ServiceLoop&) = delete;
  ServiceLoop& operator=(const ServiceLoop&) = delete;

  // Restores what history says (applied state, pin) and the nodes known before (the roster:
  // placements wait for them to report), then starts the loop thread, which polls the source at
  // once.
  void Start(StartupHistory startup, std::set<std::string> known_nodes = {});
  // Joins the loop thread; closures posted later are dropped. Idempotent.
  void Stop();

  // --- any thread ---
  // Runs `fn` on the loop thread; false (fn dropped) once stopping.
  bool Post(std::function<void()> fn);
  // The same for a request's work, also refused (false) while kMaxQueuedRequests closures of
  // its lane wait: a flood of requests is answered 503 instead of growing the queue without
  // bound. Nodes (registrations, heartbeats) have a lane of their own, so that a flood of
  // people's requests cannot crowd out the heartbeats that keep nodes alive.
  enum class Lane { kPeople, kNodes };
  bool PostRequest(std::function<void()> fn, Lane lane = Lane::kPeople);
  static constexpr size_t kMaxQueuedRequests = 4096;
  ResponseCache& cache() { return cache_; }

  // --- loop thread only ---
  Controller& controller() { return controller_; }
  // The state changed outside a pass: documents are stale; `urgent` reconciles at once, else
  // at most once per coalescing window.
  void Changed(bool urgent);
  // One pass now, then documents, then the decisions go out.
  void ReconcileAndShip(const char* reason);
  // Polls the source at once (webhook, rollback), naming why.
  void RequestPoll(const std::string& trigger);
  // The current document for `key` ("status", "plan", "plan?diff", "deployments", "services",
  // "pods", "nodes"; the plans also with kRedactedSuffix: secret values replaced), rendered
  // unless the cache holds it.
  ResponseCache::Document Document(const std::string& key);
  // A heartbeat: kUnknownNode (register again), kChanged (pods or node differ: reconciled,
  // coalesced with others) or kUnchanged (only keeps the node alive).
  enum class HeartbeatEffect { kUnknownNode, kChanged, kUnchanged };
  HeartbeatEffect OnHeartbeat(const agentapi::Heartbeat& heartbeat);
  // A registration; forgets the node's last report so its next heartbeat is news.
  Status OnRegister(model::Node node);

 private:
  void Main();
  bool Queue(std::function<void()> fn, const Lane* lane);
  int64_t ReconcileDueMs() const;
  void MarkDirty(bool urgent);
  ResponseCache::Document Render(const std::string& key, int64_t now);
  void PublishDocuments();
  void Ship();
  void RecordNodes();
  void StartPoll();
  void OnPollDone(Result<git::SourceSnapshot> snapshot, const std::string& trigger);
  void AppendHistory(HistoryAppend h);
  void DrainHistory();
  void AutoRollbackJob(const AutoRollback& a);

  const ServiceLoopOptions options_;
  const Clock* const clock_;
  Metrics* const metrics_;
  Worker* const worker_;
  HistoryJobs* const history_;
  git::GitSource* const source_;
  DesiredStateStore* const desired_;
  NodeRoster* const roster_;
  ResponseCache cache_;  // thread-safe
  Controller controller_;

  std::mutex mu_;  // guards events_ and stopping_
  std::condition_variable cv_;
  std::deque<std::function<void()>> events_;
  size_t queued_[2] = {0, 0};  // PostRequest closures waiting, by Lane
  bool stopping_ = false;
  std::thread thread_;

  // Worker-thread state: applied syncs not yet recorded in history, oldest first. Written in
  // order; one that fails stays first and is tried again before every poll, and no other
  // revision is applied meanwhile (Controller::SetHistoryBacklog), so this holds at most the
  // few applied before the first failure was known.
  std::deque<HistoryAppend> history_backlog_;
  std::string history_backlog_error_;

  // Loop-thread state below.
  // The roster as last written (it only grows, as the controller forgets no node), and the
  // controller's node count when it was last compared.
  std::set<std::string> roster_nodes_;
  size_t roster_checked_count_ = 0;
  int64_t next_poll_ms_ = 0;
  bool poll_in_flight_ = false;
  bool poll_again_ = false;
  std::string poll_trigger_ = "poll";
  int failures_ = 0;
  int64_t next_reconcile_ms_ = 0;  // the controller's timer; 0: none
  // Reconcile scheduling. An event that changes the state marks it dirty; urgent changes (a new
  // source revision, a registration, a pin) are reconciled at once, heartbeat changes at most
  // once per coalescing window, so a burst of heartbeats costs one pass.
  bool dirty_ = true;
  bool dirty_urgent_ = true;
  int64_t last_reconcile_end_ms_ = 0;
  int64_t last_reconcile_ms_ = 0;  // how long the last pass took
  int64_t last_trim_ms_ = 0;
  // What each node reported last (timestamps cleared), to tell a heartbeat that changes
  // something from one that only says "still here".
  struct NodeReport {
    model::Node node;
    std::vector<model::Pod> pods;
    int64_t services_version = 0;  // the proxy's drain report (agentapi/protocol.h)
    std::vector<std::string> draining;
    int64_t at_ms = 0;
  };
  std::map<std::string, NodeReport> reports_;
};

}  // namespace ballast::reconciler
