#include "reconciler/service_loop.h"

#include <malloc.h>

#include <algorithm>
#include <chrono>

#include "failpoint/failpoint.h"
#include "log/log.h"

namespace ballast::reconciler {
namespace {

using model::Json;

// Heartbeat changes wait at least this long after the previous pass (and at least as long as
// the previous pass took, so a large state never keeps the loop busy more than half the time).
constexpr int64_t kCoalesceMs = 50;
// A full pass at least this often even when nothing asked for one.
constexpr int64_t kResyncMs = 10000;
// A GET document polled within this window is rendered again right after each reconcile pass.
constexpr int64_t kHotWindowMs = 2000;
constexpr int64_t kTrimEveryMs = 10000;

const std::vector<std::string>& DocumentKeys() {
  static const std::vector<std::string> keys = {"status",
                                                "plan",
                                                "plan?diff",
                                                std::string("plan") + kRedactedSuffix,
                                                std::string("plan?diff") + kRedactedSuffix,
                                                "deployments",
                                                "services",
                                                "pods",
                                                "nodes"};
  return keys;
}

}  // namespace

ServiceLoop::ServiceLoop(ServiceLoopOptions options, const Clock* clock, Metrics* metrics,
                         Worker* worker, HistoryJobs* history, git::GitSource* source,
                         DesiredStateStore* desired, NodeRoster* roster)
    : options_(std::move(options)),
      clock_(clock),
      metrics_(metrics),
      worker_(worker),
      history_(history),
      source_(source),
      desired_(desired),
      roster_(roster),
      controller_(options_.controller, clock) {}

ServiceLoop::~ServiceLoop() { Stop(); }

void ServiceLoop::Start(StartupHistory startup, std::set<std::string> known_nodes) {
  const int64_t latest = startup.latest;
  controller_.Restore(std::move(startup.applied), startup.older_objects, latest > 0);
  roster_nodes_ = known_nodes;
  controller_.ExpectNodes(std::move(known_nodes));
  if (startup.pinned) controller_.Pin(*startup.pinned, std::move(startup.pinned_state));
  LogEvent(LogLevel::kInfo, "restored",
           {{"history_entries", std::to_string(latest)},
            {"applied_revision", controller_.applied().sha},
            {"pinned", startup.pinned ? std::to_string(*startup.pinned) : "none"}});
  thread_ = std::thread([this] { Main(); });
}

void ServiceLoop::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

bool ServiceLoop::Post(std::function<void()> fn) { return Queue(std::move(fn), nullptr); }

bool ServiceLoop::PostRequest(std::function<void()> fn, Lane lane) {
  return Queue(std::move(fn), &lane);
}

bool ServiceLoop::Queue(std::function<void()> fn, const Lane* lane) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_) return false;
    if (lane != nullptr) {
      size_t& queued = queued_[static_cast<size_t>(*lane)];
      if (queued >= kMaxQueuedRequests) return false;
      ++queued;
      fn = [this, &queued, fn = std::move(fn)] {
        {
          std::lock_guard<std::mutex> lock(mu_);
          --queued;
        }
        fn();
      };
    }
    events_.push_back(std::move(fn));
  }
  cv_.notify_one();
  return true;
}

void ServiceLoop::MarkDirty(bool urgent) {
  dirty_ = true;
  dirty_urgent_ = dirty_urgent_ || urgent;
}

int64_t ServiceLoop::ReconcileDueMs() const {
  int64_t due = last_reconcile_end_ms_ + kResyncMs;
  if (next_reconcile_ms_ > 0) {
    // At least 10 ms between timer passes, so a timer in the past cannot spin the loop.
    due = std::min(due, std::max(next_reconcile_ms_, last_reconcile_end_ms_ + 10));
  }
  if (dirty_) {
    due = std::min(due, dirty_urgent_
                            ? int64_t{0}
                            : last_reconcile_end_ms_ + std::max(kCoalesceMs, last_reconcile_ms_));
  }
  return due;
}

void ServiceLoop::Main() {
  for (;;) {
    std::deque<std::function<void()>> batch;
    {
      std::unique_lock<std::mutex> lock(mu_);
      const int64_t now = clock_->NowMs();
      int64_t due = poll_in_flight_ ? now + 1000 : next_poll_ms_;
      due = std::min(due, ReconcileDueMs());
      const int64_t wait_ms = std::clamp<int64_t>(due - now, 0, 1000);
      if (events_.empty() && wait_ms > 0) {
        cv_.wait_for(lock, std::chrono::milliseconds(wait_ms));
      }
      if (stopping_) return;
      batch.swap(events_);
    }
    for (auto& fn : batch) {
      // Requests are checked before they are posted; this only keeps a defect in one event from
      // taking the whole reconciler (and every workload's control) down with it.
      try {
        fn();
      } catch (const std::exception& e) {
        LogEvent(LogLevel::kError, "loop_event_failed", {{"error", e.what()}});
      }
    }
    const int64_t now = clock_->NowMs();
    if (now >= next_poll_ms_ && !poll_in_flight_) StartPoll();
    if (now >= ReconcileDueMs()) {
      const char* reason = dirty_                                                ? "change"
                           : next_reconcile_ms_ > 0 && now >= next_reconcile_ms_ ? "timer"
                                                                                 : "resync";
      ReconcileAndShip(reason);
    }
  }
}

void ServiceLoop::ReconcileAndShip(const char* reason) {
  const auto t0 = std::chrono::steady_clock::now();
  next_reconcile_ms_ = controller_.Reconcile();
  const double secs = SecondsSince(t0);
  metrics_->reconcile_duration.Observe(secs);
  metrics_->reconciles.Inc(reason);
  dirty_ = false;
  dirty_urgent_ = false;
  last_reconcile_end_ms_ = clock_->NowMs();
  last_reconcile_ms_ = static_cast<int64_t>(secs * 1000);
  PublishDocuments();
  (void)failpoint::Hit("reconcile-before-ship");  // crash or sleep: decided, not yet sent
  Ship();
  RecordNodes();
  // A large state (a pass of 50 ms or more: thousands of objects) leaves the pass's transient
  // copies (the plan's input, the documents' JSON trees) freed but held in the malloc arenas;
  // give them back now and then.
  if (last_reconcile_ms_ >= 50 && last_reconcile_end_ms_ - last_trim_ms_ >= kTrimEveryMs) {
    ::malloc_trim(0);
    last_trim_ms_ = last_reconcile_end_ms_;
  }
}

// A node the roster does not list yet is written to it (on the worker: a durable write).
void ServiceLoop::RecordNodes() {
  if (roster_ == nullptr || controller_.NodeCount() == roster_checked_count_) return;
  roster_checked_count_ = controller_.NodeCount();
  const size_t before = roster_nodes_.size();
  for (const std::string& n : controller_.NodeNames()) roster_nodes_.insert(n);
  if (roster_nodes_.size() == before) return;
  worker_->Post([this, nodes = roster_nodes_] {
    if (Status s = roster_->Store(nodes); !s.ok()) {
      LogEvent(LogLevel::kError, "node_roster_write_failed", {{"error", s.ToString()}});
    }
  });
}

ResponseCache::Document ServiceLoop::Document(const std::string& key) {
  const int64_t now = clock_->NowMs();
  if (auto doc = cache_.Lookup(key, now)) return *doc;
  return Render(key, now);
}

ResponseCache::Document ServiceLoop::Render(const std::string& key, int64_t now) {
  Json j = key == "status"                                     ? controller_.StatusJson()
           : key == "plan"                                     ? controller_.PlanJson(false)
           : key == "plan?diff"                                ? controller_.PlanJson(true)
           : key == std::string("plan") + kRedactedSuffix      ? controller_.PlanJson(false, true)
           : key == std::string("plan?diff") + kRedactedSuffix ? controller_.PlanJson(true, true)
           : key == "deployments"                              ? controller_.DeploymentsJson()
           : key == "services"                                 ? controller_.ServicesJson()
           : key == "pods"                                     ? controller_.PodsJson()
                                                               : controller_.NodesJson();
  // The source error's age counts up: such a status is good for a second.
  int64_t expires = 0;
  if (key == "status" && j.is_object() &&
      (!j["sourceError"].is_null() || !j["historyError"].is_null())) {
    expires = now + 1000;
  }
  std::string body = j.dump(-1, ' ', false, Json::error_handler_t::replace);
  body += '\n';
  return cache_.Put(key, std::move(body), expires);
}

void ServiceLoop::PublishDocuments() {
  // Documents somebody polls are rendered again at once (readers keep getting the previous one
  // meanwhile, which is still what everyone else sees); the rest are dropped and rendered on
  // their next request.
  const int64_t now = clock_->NowMs();
  const auto hot = cache_.Hot(now, kHotWindowMs);
  for (const auto& key : DocumentKeys()) {
    if (std::find(hot.begin(), hot.end(), key) == hot.end()) {
      cache_.Invalidate(key);
      continue;
    }
    Render(key, now);
  }
}

void ServiceLoop::Changed(bool urgent) {
  cache_.InvalidateAll();
  MarkDirty(urgent);
}

ServiceLoop::HeartbeatEffect ServiceLoop::OnHeartbeat(const agentapi::Heartbeat& hb) {
  if (!controller_.OnHeartbeat(hb)) return HeartbeatEffect::kUnknownNode;
  const int64_t now = clock_->NowMs();
  model::Node node = hb.node;
  node.last_heartbeat_ms = 0;
  auto it = reports_.find(node.name);
  // News: pods, node fields, the first report after a silence long enough for the node to be
  // suspected, or a proxy's progress while a pod waits for the proxies to let it go.
  const bool changed =
      it == reports_.end() || it->second.node != node || it->second.pods != hb.pods ||
      now - it->second.at_ms > options_.controller.node_lifecycle.grace_period_ms / 2 ||
      (controller_.draining() && (it->second.services_version != hb.services_version ||
                                  it->second.draining != hb.draining_endpoints));
  NodeReport& r = reports_[node.name];
  r.at_ms = now;
  r.services_version = hb.services_version;
  r.draining = hb.draining_endpoints;
  if (changed) {
    r.node = std::move(node);
    r.pods = hb.pods;
    metrics_->heartbeats.Inc("changed");
    Changed(/*urgent=*/false);
    return HeartbeatEffect::kChanged;
  }
  metrics_->heartbeats.Inc("unchanged");
  cache_.Invalidate("nodes");  // lastHeartbeat moved
  return HeartbeatEffect::kUnchanged;
}

Status ServiceLoop::OnRegister(model::Node node) {
  const std::string name = node.name;
  if (Status s = controller_.OnRegister(std::move(node)); !s.ok()) return s;
  reports_.erase(name);  // its next heartbeat is news
  Changed(/*urgent=*/true);
  return Status::Ok();
}

void ServiceLoop::Ship() {
  for (auto& [node, state] : controller_.TakeDesiredChanges()) {
    const int64_t version = desired_->Set(node, state);
    LogEvent(LogLevel::kDebug, "desired",
             {{"node", node},
              {"pods", std::to_string(state.pods.size())},
              {"version", std::to_string(version)}});
  }
  for (auto& h : controller_.TakeHistoryAppends()) {
    LogEvent(LogLevel::kInfo, "sync",
             {{"revision", h.sha}, {"trigger", h.trigger}, {"message", h.message}});
    worker_->Post([this, h = std::move(h)]() mutable { AppendHistory(std::move(h)); });
  }
  for (auto& a : controller_.TakeAutoRollbacks()) {
    LogEvent(LogLevel::kWarn, "auto_rollback",
             {{"object", a.key.ToString()}, {"from", a.from_revision}, {"to", a.to_revision}});
    worker_->Post([this, a] { AutoRollbackJob(a); });
  }
}

// Worker thread.
void ServiceLoop::AppendHistory(HistoryAppend h) {
  history_backlog_.push_back(std::move(h));
  DrainHistory();
}

// Worker thread. Writes the backlog in order until one fails; tells the controller what is
// left, so that it holds new revisions back while an applied one has no entry.
void ServiceLoop::DrainHistory() {
  if (history_backlog_.empty()) return;
  const bool was_failing = !history_backlog_error_.empty();
  std::string error;
  while (!history_backlog_.empty()) {
    const HistoryAppend& h = history_backlog_.front();
    auto id = history_->Append(h);
    if (!id.ok()) {
      error = id.status().ToString();
      metrics_->syncs.Inc("Failed");
      LogEvent(LogLevel::kError, "history_append_failed",
               {{"revision", h.sha},
                {"pending", std::to_string(history_backlog_.size())},
                {"error", error}});
      break;
    }
    metrics_->syncs.Inc("Succeeded");
    LogEvent(LogLevel::kInfo, "history_appended",
             {{"id", std::to_string(*id)}, {"revision", h.sha}, {"trigger", h.trigger}});
    history_backlog_.pop_front();
  }
  history_backlog_error_ = error;
  if (error.empty() && !was_failing) return;  // nothing the controller needs to know
  Post([this, pending = history_backlog_.size(), error] {
    controller_.SetHistoryBacklog(pending, error);
    Changed(/*urgent=*/true);
  });
}

// Worker thread.
void ServiceLoop::AutoRollbackJob(const AutoRollback& a) {
  auto restored = history_->AutoRollback(a);
  if (!restored.ok()) {
    if (restored.status().code() == StatusCode::kNotFound) {
      LogEvent(LogLevel::kWarn, "auto_rollback_skipped",
               {{"object", a.key.ToString()}, {"reason", restored.status().message()}});
    } else {
      LogEvent(LogLevel::kError, "auto_rollback_failed",
               {{"object", a.key.ToString()}, {"error", restored.status().ToString()}});
    }
    return;
  }
  LogEvent(LogLevel::kInfo, "rollback_pushed",
           {{"id", std::to_string(restored->id)},
            {"commit", restored->result.commit},
            {"auto", "true"}});
  const int64_t id = restored->id;
  Post([this, id] { RequestPoll("auto-rollback #" + std::to_string(id)); });
}

void ServiceLoop::StartPoll() {
  poll_in_flight_ = true;
  const std::string trigger = poll_trigger_;
  poll_trigger_ = "poll";
  worker_->Post([this, trigger] {
    DrainHistory();  // an entry that could not be written is tried again first
    const auto t0 = std::chrono::steady_clock::now();
    auto snapshot = source_->Poll();
    metrics_->fetch_duration.Observe(SecondsSince(t0));
    if (!snapshot.ok()) metrics_->fetch_errors.Inc("");
    Post([this, trigger, snapshot = std::move(snapshot)]() mutable {
      OnPollDone(std::move(snapshot), trigger);
    });
  });
}

void ServiceLoop::OnPollDone(Result<git::SourceSnapshot> snapshot, const std::string& trigger) {
  poll_in_flight_ = false;
  Changed(/*urgent=*/true);
  const int64_t now = clock_->NowMs();
  if (snapshot.ok()) {
    if (snapshot->changed) {
      LogEvent(LogLevel::kInfo, "source",
               {{"revision", snapshot->commit.sha},
                {"valid", snapshot->tree->ok() ? "true" : "false"},
                {"trigger", trigger}});
      for (const auto& d : snapshot->tree->diagnostics) {
        if (d.is_error()) {
          LogEvent(LogLevel::kWarn, "invalid_manifest",
                   {{"revision", snapshot->commit.sha}, {"error", d.ToString()}});
        }
      }
    }
    controller_.OnSnapshot(*snapshot, trigger);
    failures_ = 0;
    next_poll_ms_ = now + int64_t{options_.poll_seconds} * 1000;
  } else {
    controller_.OnSourceError(snapshot.status());
    ++failures_;
    int64_t backoff = int64_t{options_.poll_seconds} << std::min(failures_, 10);
    backoff = std::min<int64_t>(backoff, options_.max_backoff_seconds);
    backoff = std::max<int64_t>(backoff, options_.poll_seconds);
    next_poll_ms_ = now + backoff * 1000;
    LogEvent(
        LogLevel::kWarn, "source_error",
        {{"error", snapshot.status().ToString()}, {"retry_in_seconds", std::to_string(backoff)}});
  }
  if (poll_again_) {
    poll_again_ = false;
    next_poll_ms_ = 0;
  }
}

void ServiceLoop::RequestPoll(const std::string& trigger) {
  poll_trigger_ = trigger;
  if (poll_in_flight_) {
    poll_again_ = true;
  } else {
    next_poll_ms_ = 0;
  }
}

}  // namespace ballast::reconciler
