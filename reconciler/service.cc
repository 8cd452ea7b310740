#include "reconciler/service.h"

#include <malloc.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <chrono>
#include <condition_variable>
#include <deque>
#include <fstream>
#include <functional>
#include <mutex>
#include <thread>

#include "agentapi/protocol.h"
#include "diff/render.h"
#include "model/codec.h"
#include "model/manifest.h"
#include "model/rfc3339.h"
#include "net/client.h"
#include "net/gzip.h"
#include "reconciler/desired_state_store.h"
#include "reconciler/log.h"
#include "reconciler/metrics.h"
#include "reconciler/response_cache.h"
#include "reconciler/status_page.h"
#include "sources/git/history_store.h"
#include "sources/git/remote.h"

namespace ballast::reconciler {
namespace {

using model::Json;

// One `history` item as the API lists it (and the status page shows it).
Json HistoryItemJson(const git::HistoryEntry& e) {
  return {{"id", e.id},
          {"revision", e.record.source_sha},
          {"time", e.record.time},
          {"trigger", e.record.trigger},
          {"result", e.record.result},
          {"message", e.record.message},
          {"commit", e.commit}};
}

namespace fs = std::filesystem;

double SecondsSince(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

bool ConstantTimeEquals(const std::string& a, const std::string& b) {
  if (a.size() != b.size()) return false;
  return CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

std::string HmacSha256Hex(const std::string& key, const std::string& data) {
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char*>(data.data()), data.size(), mac, &len);
  static const char kHex[] = "0123456789abcdef";
  std::string out;
  for (unsigned int i = 0; i < len; ++i) {
    out += kHex[mac[i] >> 4];
    out += kHex[mac[i] & 15];
  }
  return out;
}

// Objects stored in a history entry, parsed back.
Result<std::vector<model::Manifest>> ParseEntryObjects(const git::HistoryEntryContents& c) {
  auto set = model::ParseManifests(c.objects);
  if (!set.ok()) {
    for (const auto& d : set.diagnostics) {
      if (d.is_error()) {
        return Internal("history entry #" + std::to_string(c.entry.id) + ": " + d.ToString());
      }
    }
  }
  return std::move(set.manifests);
}

}  // namespace

bool VerifyGithubSignature(const std::string& secret, const std::string& body,
                           const std::string& header) {
  const std::string expected = "sha256=" + HmacSha256Hex(secret, body);
  return ConstantTimeEquals(expected, header);
}

struct Service::Impl {
  Impl(ServiceOptions o, const Clock* c)
      : options(std::move(o)), clock(c), controller(options.controller, c) {}

  ServiceOptions options;
  const Clock* clock;
  Controller controller;                       // loop thread only
  std::unique_ptr<git::GitSource> source;      // worker thread only
  std::unique_ptr<git::HistoryStore> history;  // thread-safe
  std::unique_ptr<DesiredStateStore> desired;
  std::unique_ptr<net::HttpServer> server;
  Metrics metrics;

  // Event loop.
  std::mutex mu;
  std::condition_variable cv;
  std::deque<std::function<void()>> events;
  bool stopping = false;
  std::thread loop;

  // Worker (blocking libgit2 work).
  std::mutex wmu;
  std::condition_variable wcv;
  std::deque<std::function<void()>> jobs;
  bool wstopping = false;
  std::thread worker;

  // Loop-thread state.
  int64_t next_poll_ms = 0;
  bool poll_in_flight = false;
  bool poll_again = false;
  std::string poll_trigger = "poll";
  int failures = 0;
  int64_t next_reconcile_ms = 0;  // the controller's timer; 0: none
  // Reconcile scheduling. An event that changes the state marks it dirty; urgent changes (a new
  // source revision, a registration, a pin) are reconciled at once, heartbeat changes at most
  // once per coalescing window, so a burst of heartbeats costs one pass.
  bool dirty = true;
  bool dirty_urgent = true;
  int64_t last_reconcile_end_ms = 0;
  int64_t last_reconcile_ms = 0;  // how long the last pass took
  int64_t last_trim_ms = 0;
  // What each node reported last (timestamps cleared), to tell a heartbeat that changes
  // something from one that only says "still here".
  struct NodeReport {
    model::Node node;
    std::vector<model::Pod> pods;
    int64_t at_ms = 0;
  };
  std::map<std::string, NodeReport> reports;

  // GET documents served from the cache (reconciler/response_cache.h).
  ResponseCache cache;

  void Post(std::function<void()> fn) {
    {
      std::lock_guard<std::mutex> lock(mu);
      if (stopping) return;
      events.push_back(std::move(fn));
    }
    cv.notify_one();
  }
  void PostJob(std::function<void()> fn) {
    {
      std::lock_guard<std::mutex> lock(wmu);
      if (wstopping) return;
      jobs.push_back(std::move(fn));
    }
    wcv.notify_one();
  }

  void WorkerMain() {
    for (;;) {
      std::function<void()> job;
      {
        std::unique_lock<std::mutex> lock(wmu);
        wcv.wait(lock, [&] { return wstopping || !jobs.empty(); });
        if (jobs.empty()) return;  // stopping, and every job (history appends) is done
        job = std::move(jobs.front());
        jobs.pop_front();
      }
      job();
    }
  }

  // Heartbeat changes wait at least this long after the previous pass (and at least as long as
  // the previous pass took, so a large state never keeps the loop busy more than half the time).
  static constexpr int64_t kCoalesceMs = 50;
  // A full pass at least this often even when nothing asked for one.
  static constexpr int64_t kResyncMs = 10000;
  // A GET document polled within this window is rendered again right after each reconcile pass.
  static constexpr int64_t kHotWindowMs = 2000;
  static constexpr int64_t kTrimEveryMs = 10000;

  // Loop thread: the state changed; `urgent` reconciles at once, otherwise coalesced.
  void MarkDirty(bool urgent) {
    dirty = true;
    dirty_urgent = dirty_urgent || urgent;
  }

  // When the next pass is due (ms since the epoch).
  int64_t ReconcileDueMs() const {
    int64_t due = last_reconcile_end_ms + kResyncMs;
    if (next_reconcile_ms > 0) {
      // At least 10 ms between timer passes, so a timer in the past cannot spin the loop.
      due = std::min(due, std::max(next_reconcile_ms, last_reconcile_end_ms + 10));
    }
    if (dirty) {
      due = std::min(due, dirty_urgent
                              ? int64_t{0}
                              : last_reconcile_end_ms + std::max(kCoalesceMs, last_reconcile_ms));
    }
    return due;
  }

  void LoopMain() {
    for (;;) {
      std::deque<std::function<void()>> batch;
      {
        std::unique_lock<std::mutex> lock(mu);
        int64_t now = clock->NowMs();
        int64_t due = poll_in_flight ? now + 1000 : next_poll_ms;
        due = std::min(due, ReconcileDueMs());
        int64_t wait_ms = std::clamp<int64_t>(due - now, 0, 1000);
        if (events.empty() && wait_ms > 0) {
          cv.wait_for(lock, std::chrono::milliseconds(wait_ms));
        }
        if (stopping) return;
        batch.swap(events);
      }
      for (auto& fn : batch) fn();
      const int64_t now = clock->NowMs();
      if (now >= next_poll_ms && !poll_in_flight) StartPoll();
      if (now >= ReconcileDueMs()) {
        const char* reason = dirty                                               ? "change"
                             : next_reconcile_ms > 0 && now >= next_reconcile_ms ? "timer"
                                                                                 : "resync";
        ReconcileAndShip(reason);
      }
    }
  }

  // Loop thread: one reconcile pass, then the GET documents, then the decisions go out (in that
  // order: nothing the pass decided is visible to anyone before the documents show it).
  void ReconcileAndShip(const char* reason) {
    auto t0 = std::chrono::steady_clock::now();
    next_reconcile_ms = controller.Reconcile();
    const double secs = SecondsSince(t0);
    metrics.reconcile_duration.Observe(secs);
    metrics.reconciles.Inc(reason);
    dirty = false;
    dirty_urgent = false;
    last_reconcile_end_ms = clock->NowMs();
    last_reconcile_ms = static_cast<int64_t>(secs * 1000);
    PublishDocuments();
    Ship();
    // A large state (a pass of 50 ms or more: thousands of objects) leaves the pass's transient
    // copies (the plan's input, the documents' JSON trees) freed but held in the malloc arenas;
    // give them back now and then.
    if (last_reconcile_ms >= 50 && last_reconcile_end_ms - last_trim_ms >= kTrimEveryMs) {
      ::malloc_trim(0);
      last_trim_ms = last_reconcile_end_ms;
    }
  }

  // ---- cached GET documents -----------------------------------------------------------------

  static const std::vector<std::string>& DocumentKeys() {
    static const std::vector<std::string> keys = {"status",   "plan", "plan?diff", "deployments",
                                                  "services", "pods", "nodes"};
    return keys;
  }

  // Loop thread.
  Json RenderDocument(const std::string& key) const {
    if (key == "status") return controller.StatusJson();
    if (key == "plan") return controller.PlanJson(false);
    if (key == "plan?diff") return controller.PlanJson(true);
    if (key == "deployments") return controller.DeploymentsJson();
    if (key == "services") return controller.ServicesJson();
    if (key == "pods") return controller.PodsJson();
    return controller.NodesJson();
  }

  // Loop thread: the current document for `key`, rendered unless the cache holds it.
  ResponseCache::Document Document(const std::string& key) {
    const int64_t now = clock->NowMs();
    if (auto doc = cache.Lookup(key, now)) return *doc;
    return Render(key, now);
  }

  // Loop thread: renders `key` into the cache, as JsonResponse would have sent it.
  ResponseCache::Document Render(const std::string& key, int64_t now) {
    Json j = RenderDocument(key);
    // The source error's age counts up: such a status is good for a second.
    int64_t expires = 0;
    if (key == "status" && j.is_object() && !j["sourceError"].is_null()) expires = now + 1000;
    std::string body = j.dump(-1, ' ', false, Json::error_handler_t::replace);
    body += '\n';
    return cache.Put(key, std::move(body), expires);
  }

  // Loop thread, after a pass: documents somebody polls are rendered again at once (readers
  // keep getting the previous one meanwhile, which is still what everyone else sees); the rest
  // are dropped and rendered on their next request.
  void PublishDocuments() {
    const int64_t now = clock->NowMs();
    auto hot = cache.Hot(now, kHotWindowMs);
    for (const auto& key : DocumentKeys()) {
      if (std::find(hot.begin(), hot.end(), key) == hot.end()) {
        cache.Invalidate(key);
        continue;
      }
      Render(key, now);
    }
  }

  // Loop thread: an event changed the controller outside a reconcile pass.
  void Changed(bool urgent) {
    cache.InvalidateAll();
    MarkDirty(urgent);
  }

  // A cached document as the request asks for it: gzip when accepted (and worth it), 304 when
  // If-None-Match names what would be sent.
  net::Response DocumentResponse(const std::string& key, const net::Request& req,
                                 const ResponseCache::Document& doc) {
    const auto* accept = req.Header("Accept-Encoding");
    const bool gzip = accept != nullptr && doc.body->size() >= 1024 && net::AcceptsGzip(*accept);
    net::Response resp;
    resp.headers.emplace_back("ETag", gzip ? GzipEntityTag(doc.etag) : doc.etag);
    // Clients may keep it but must ask again (cheaply, with If-None-Match) before using it.
    resp.headers.emplace_back("Cache-Control", "no-cache");
    resp.headers.emplace_back("Vary", "Accept-Encoding");
    resp.content_type = "application/json";
    if (const auto* inm = req.Header("If-None-Match");
        inm != nullptr && IfNoneMatch(*inm, resp.headers[0].second)) {
      metrics.api_cache.Inc("not_modified");
      resp.status = 304;
      return resp;
    }
    resp.status = 200;
    if (gzip) {
      resp.headers.emplace_back("Content-Encoding", "gzip");
      resp.shared_body = cache.Gzipped(key, doc).body;
    } else {
      resp.shared_body = doc.body;
    }
    return resp;
  }

  // A GET of a cached document: answered on the server thread when the cache holds it, else
  // rendered on the loop thread.
  net::Handler CachedGet(std::function<std::string(const net::Request&)> key_of) {
    return [this, key_of = std::move(key_of)](const net::Request& req, net::Responder responder) {
      auto t0 = std::chrono::steady_clock::now();
      std::string key = key_of(req);
      if (auto doc = cache.Lookup(key, clock->NowMs())) {
        metrics.api_cache.Inc("hit");
        responder.Send(DocumentResponse(key, req, *doc));
        metrics.api_duration.Observe(SecondsSince(t0));
        return;
      }
      metrics.api_cache.Inc("miss");
      Post([this, key, req, responder, t0] {
        responder.Send(DocumentResponse(key, req, Document(key)));
        metrics.api_duration.Observe(SecondsSince(t0));
      });
    };
  }

  // Loop thread: whether a heartbeat tells anything new (pods, node fields, or the first report
  // after a silence long enough for the node to be suspected); remembers it.
  bool HeartbeatChanges(const agentapi::Heartbeat& hb) {
    const int64_t now = clock->NowMs();
    model::Node node = hb.node;
    node.last_heartbeat_ms = 0;
    auto it = reports.find(node.name);
    bool changed = it == reports.end() || it->second.node != node || it->second.pods != hb.pods ||
                   now - it->second.at_ms > options.controller.node_lifecycle.grace_period_ms / 2;
    NodeReport& r = reports[node.name];
    r.at_ms = now;
    if (changed) {
      r.node = std::move(node);
      r.pods = hb.pods;
    }
    return changed;
  }

  void Ship() {
    for (auto& [node, state] : controller.TakeDesiredChanges()) {
      int64_t version = desired->Set(node, state);
      LogEvent(LogLevel::kDebug, "desired",
               {{"node", node},
                {"pods", std::to_string(state.pods.size())},
                {"version", std::to_string(version)}});
    }
    for (auto& h : controller.TakeHistoryAppends()) {
      LogEvent(LogLevel::kInfo, "sync",
               {{"revision", h.sha}, {"trigger", h.trigger}, {"message", h.message}});
      PostJob([this, h = std::move(h)] { AppendHistory(h); });
    }
    for (auto& a : controller.TakeAutoRollbacks()) {
      LogEvent(LogLevel::kWarn, "auto_rollback",
               {{"object", a.key.ToString()}, {"from", a.from_revision}, {"to", a.to_revision}});
      PostJob([this, a] { AutoRollbackJob(a); });
    }
  }

  // Worker thread: restores history entry `id` through the manifest repository.
  Result<git::RestoreResult> RestoreEntry(const git::HistoryEntryContents& contents,
                                          const std::string& requested_by) {
    git::RestoreRequest r;
    r.entry_id = contents.entry.id;
    r.source_sha = contents.entry.record.source_sha;
    r.files = contents.source_files;
    r.requested_by = requested_by;
    return source->Restore(r);
  }

  // Worker thread: the newest entry that ran `to_revision` of the Deployment, restored.
  void AutoRollbackJob(const AutoRollback& a) {
    auto list = history->List(0, 100);
    if (!list.ok()) return;
    for (const auto& e : *list) {
      auto contents = history->Read(e.id);
      if (!contents.ok()) continue;
      auto objects = ParseEntryObjects(*contents);
      if (!objects.ok()) continue;
      bool match = false;
      for (const auto& m : *objects) {
        if (m.key() == a.key && m.deployment() != nullptr &&
            model::PodTemplateHash(m.deployment()->spec.template_) == a.to_revision) {
          match = true;
        }
      }
      if (!match) continue;
      auto result = RestoreEntry(
          *contents, "auto-rollback of " + a.key.ToString() + " (ProgressDeadlineExceeded)");
      if (!result.ok()) {
        LogEvent(LogLevel::kError, "auto_rollback_failed",
                 {{"object", a.key.ToString()},
                  {"id", std::to_string(e.id)},
                  {"error", result.status().ToString()}});
        return;
      }
      LogEvent(LogLevel::kInfo, "rollback_pushed",
               {{"id", std::to_string(e.id)}, {"commit", result->commit}, {"auto", "true"}});
      int64_t id = e.id;
      Post([this, id] { RequestPoll("auto-rollback #" + std::to_string(id)); });
      return;
    }
    LogEvent(LogLevel::kWarn, "auto_rollback_skipped",
             {{"object", a.key.ToString()}, {"reason", "no history entry runs " + a.to_revision}});
  }

  void AppendHistory(const HistoryAppend& h) {
    git::HistoryRecord r;
    r.source_url = options.source.remote.url;
    r.source_ref = options.source.ref;
    r.source_path = options.source.path;
    r.source_sha = h.sha;
    r.time = model::FormatRfc3339(clock->NowMs());
    r.trigger = h.trigger;
    r.result = "Succeeded";
    r.plan_summary = h.plan_summary;
    r.history_rewrite = h.history_rewrite;
    r.message = h.message;
    auto entry = history->Append(r, h.files, h.objects);
    if (!entry.ok()) {
      metrics.syncs.Inc("Failed");
      LogEvent(LogLevel::kError, "history_append_failed",
               {{"revision", h.sha}, {"error", entry.status().ToString()}});
      return;
    }
    metrics.syncs.Inc("Succeeded");
    // Reading, parsing, planning and recording a new revision leave tens of MB freed in the
    // threads' malloc arenas (at 10,000 objects); give them back instead of holding them.
    ::malloc_trim(0);
    LogEvent(LogLevel::kInfo, "history_appended",
             {{"id", std::to_string(entry->id)}, {"revision", h.sha}, {"trigger", h.trigger}});
  }

  void StartPoll() {
    poll_in_flight = true;
    std::string trigger = poll_trigger;
    poll_trigger = "poll";
    PostJob([this, trigger] {
      auto t0 = std::chrono::steady_clock::now();
      auto snapshot = source->Poll();
      double secs = SecondsSince(t0);
      metrics.fetch_duration.Observe(secs);
      if (!snapshot.ok()) metrics.fetch_errors.Inc("");
      Post([this, trigger, snapshot = std::move(snapshot)]() mutable {
        OnPollDone(std::move(snapshot), trigger);
      });
    });
  }

  void OnPollDone(Result<git::SourceSnapshot> snapshot, const std::string& trigger) {
    poll_in_flight = false;
    Changed(/*urgent=*/true);
    const int64_t now = clock->NowMs();
    if (snapshot.ok()) {
      if (snapshot->changed) {
        LogEvent(LogLevel::kInfo, "source",
                 {{"revision", snapshot->commit.sha},
                  {"valid", snapshot->tree->ok() ? "true" : "false"},
                  {"trigger", trigger}});
      }
      if (!snapshot->tree->ok()) {
        for (const auto& d : snapshot->tree->diagnostics) {
          if (d.is_error() && snapshot->changed) {
            LogEvent(LogLevel::kWarn, "invalid_manifest",
                     {{"revision", snapshot->commit.sha}, {"error", d.ToString()}});
          }
        }
      }
      controller.OnSnapshot(*snapshot, trigger);
      failures = 0;
      next_poll_ms = now + int64_t{options.poll_seconds} * 1000;
    } else {
      controller.OnSourceError(snapshot.status());
      ++failures;
      int64_t backoff = int64_t{options.poll_seconds} << std::min(failures, 10);
      backoff = std::min<int64_t>(backoff, options.max_backoff_seconds);
      backoff = std::max<int64_t>(backoff, options.poll_seconds);
      next_poll_ms = now + backoff * 1000;
      LogEvent(
          LogLevel::kWarn, "source_error",
          {{"error", snapshot.status().ToString()}, {"retry_in_seconds", std::to_string(backoff)}});
    }
    if (poll_again) {
      poll_again = false;
      next_poll_ms = 0;
    }
  }

  // Loop thread: poll at once (webhook, rollback), naming why.
  void RequestPoll(const std::string& trigger) {
    poll_trigger = trigger;
    if (poll_in_flight) {
      poll_again = true;
    } else {
      next_poll_ms = 0;
    }
  }

  Status RestoreFromHistory() {
    auto latest = history->LatestId();
    if (!latest.ok()) return latest.status();
    AppliedState applied;
    std::vector<model::Manifest> older;
    if (*latest > 0) {
      auto contents = history->Read(*latest);
      if (!contents.ok()) return contents.status();
      auto objects = ParseEntryObjects(*contents);
      if (!objects.ok()) return objects.status();
      applied.objects = std::move(*objects);
      applied.files = contents->source_files;
      applied.sha = contents->entry.record.source_sha;
      // Older revisions' templates, to adopt the pods of a rollout that was under way.
      for (int64_t id = *latest - 1; id > 0 && id > *latest - 5; --id) {
        auto c = history->Read(id);
        if (!c.ok()) break;
        auto o = ParseEntryObjects(*c);
        if (o.ok()) older.insert(older.end(), o->begin(), o->end());
      }
    }
    controller.Restore(std::move(applied), older, *latest > 0);
    // The pin survives restarts.
    std::ifstream pin(options.state_dir / "pin");
    int64_t pinned = 0;
    if (pin >> pinned && pinned > 0) {
      auto contents = history->Read(pinned);
      auto objects = contents.ok() ? ParseEntryObjects(*contents)
                                   : Result<std::vector<model::Manifest>>(contents.status());
      if (objects.ok()) {
        controller.Pin(pinned, {std::move(*objects), contents->source_files,
                                contents->entry.record.source_sha});
      }
    }
    LogEvent(LogLevel::kInfo, "restored",
             {{"history_entries", std::to_string(*latest)},
              {"applied_revision", controller.applied().sha},
              {"pinned", pinned > 0 ? std::to_string(pinned) : "none"}});
    return Status::Ok();
  }

  // ---- HTTP ---------------------------------------------------------------------------------

  // A handler that reads or changes the controller: runs on the loop thread.
  net::Handler OnLoop(std::function<net::Response(const net::Request&)> fn, bool mutating,
                      std::string name) {
    return [this, fn = std::move(fn), mutating, name = std::move(name)](const net::Request& req,
                                                                        net::Responder responder) {
      if (mutating && !net::CheckBearer(req, options.token)) {
        responder.Send(net::UnauthorizedResponse());
        return;
      }
      auto t0 = std::chrono::steady_clock::now();
      Post([this, fn, req, responder, t0, name, mutating] {
        net::Response resp = fn(req);
        if (mutating) Changed(/*urgent=*/true);
        responder.Send(std::move(resp));
        metrics.api_duration.Observe(SecondsSince(t0));
      });
    };
  }

  net::Response Rollback(const net::Request& req, net::Responder responder) {
    auto body = net::ParseJsonBody(req);
    if (!body.ok()) return net::StatusResponse(body.status());
    if (!body->is_object() || !(*body)["id"].is_number_integer()) {
      return net::ErrorResponse(400, "body must be {\"id\": N, \"pin\": false}");
    }
    int64_t id = (*body)["id"].get<int64_t>();
    bool pin = body->value("pin", false);
    PostJob([this, id, pin, responder] {
      auto contents = history->Read(id);
      if (!contents.ok()) {
        responder.Send(net::StatusResponse(contents.status()));
        return;
      }
      if (pin) {
        auto objects = ParseEntryObjects(*contents);
        if (!objects.ok()) {
          responder.Send(net::StatusResponse(objects.status()));
          return;
        }
        {
          std::ofstream out(options.state_dir / "pin", std::ios::trunc);
          out << id << "\n";
        }
        AppliedState applied{std::move(*objects), contents->source_files,
                             contents->entry.record.source_sha};
        Post([this, id, applied = std::move(applied), responder]() mutable {
          controller.Pin(id, std::move(applied));
          controller.TakeHistoryAppends();
          Changed(/*urgent=*/true);
          LogEvent(LogLevel::kInfo, "pinned", {{"id", std::to_string(id)}});
          responder.Send(
              net::JsonResponse(200, {{"pinned", id}, {"revision", controller.applied().sha}}));
        });
        return;
      }
      auto result = RestoreEntry(*contents, "api");
      if (!result.ok()) {
        const auto& st = result.status();
        LogEvent(LogLevel::kWarn, "rollback_failed",
                 {{"id", std::to_string(id)}, {"error", st.ToString()}});
        std::string message = "rollback to #" + std::to_string(id) + ": " + st.message();
        if (st.code() == StatusCode::kPermissionDenied) {
          message += " (the manifest repository cannot be pushed to; `ballast rollback " +
                     std::to_string(id) + " --pin` holds that entry instead)";
        }
        responder.Send(net::StatusResponse(Status(st.code(), message)));
        return;
      }
      LogEvent(LogLevel::kInfo, "rollback_pushed",
               {{"id", std::to_string(id)}, {"commit", result->commit}});
      responder.Send(net::JsonResponse(200, {{"id", id},
                                             {"commit", result->commit},
                                             {"pushed", result->pushed},
                                             {"revision", contents->entry.record.source_sha}}));
      Post([this, id] { RequestPoll("rollback #" + std::to_string(id)); });
    });
    return {};
  }

  void Webhook(const net::Request& req, net::Responder responder) {
    if (req.body.size() > options.max_webhook_bytes) {
      metrics.webhooks.Inc("rejected");
      responder.Send(net::ErrorResponse(413, "payload too large"));
      return;
    }
    if (!options.webhook_secret.empty()) {
      bool ok = false;
      if (const auto* sig = req.Header("X-Hub-Signature-256")) {
        ok = VerifyGithubSignature(options.webhook_secret, req.body, *sig);
      } else if (const auto* gitea = req.Header("X-Gitea-Signature")) {
        ok = ConstantTimeEquals(HmacSha256Hex(options.webhook_secret, req.body), *gitea);
      } else if (const auto* token = req.Header("X-Gitlab-Token")) {
        ok = ConstantTimeEquals(options.webhook_secret, *token);
      }
      if (!ok) {
        metrics.webhooks.Inc("unauthorized");
        LogEvent(LogLevel::kWarn, "webhook_rejected", {{"remote", req.remote}});
        responder.Send(net::ErrorResponse(401, "webhook signature missing or wrong"));
        return;
      }
    }
    metrics.webhooks.Inc("accepted");
    Post([this] { RequestPoll("webhook"); });
    responder.Send(net::JsonResponse(202, {{"accepted", true}}));
  }

  std::string MetricsText() {
    auto counts = controller.MetricsCounts();
    return metrics.Render(counts);
  }

  net::Router Routes() {
    net::Router r;
    r.HandleSync("GET", "/healthz",
                 [](const net::Request&) { return net::TextResponse(200, "ok\n"); });
    r.HandleSync("GET", "/api/v1/version",
                 [this](const net::Request&) { return net::JsonResponse(200, options.version); });
    r.Handle("GET", "/metrics",
             OnLoop(
                 [this](const net::Request&) {
                   net::Response resp = net::TextResponse(200, MetricsText());
                   resp.content_type = "text/plain; version=0.0.4; charset=utf-8";
                   return resp;
                 },
                 false, "metrics"));
    // The status page (reconciler/status_page.h): history read on the worker, the rest on the
    // loop thread, rendered from the same JSON documents as the API.
    r.Handle("GET", "/", [this](const net::Request&, net::Responder responder) {
      PostJob([this, responder] {
        auto page = std::make_shared<StatusPageInput>();
        if (auto list = history->List(0, 20); list.ok()) {
          Json items = Json::array();
          for (const auto& e : *list) items.push_back(HistoryItemJson(e));
          page->history = {{"items", items}};
        }
        Post([this, responder, page] {
          page->status = controller.StatusJson();
          page->plan = controller.PlanJson(true);
          page->deployments = controller.DeploymentsJson();
          page->services = controller.ServicesJson();
          page->pods = controller.PodsJson();
          page->nodes = controller.NodesJson();
          page->repo = options.source.remote.url;
          page->branch = options.source.ref;
          page->path = options.source.path;
          page->now_ms = clock->NowMs();
          net::Response resp = net::TextResponse(200, RenderStatusPage(*page));
          resp.content_type = "text/html; charset=utf-8";
          responder.Send(resp);
        });
      });
    });
    // Read-only documents, from the cache (rendered again when the state changes).
    for (const char* name : {"status", "deployments", "services", "pods", "nodes"}) {
      std::string key = name;
      r.Handle("GET", "/api/v1/" + key, CachedGet([key](const net::Request&) { return key; }));
    }
    r.Handle("GET", "/api/v1/plan", CachedGet([](const net::Request& req) {
               return std::string(req.Query("diff") == "true" ? "plan?diff" : "plan");
             }));
    r.Handle("POST", "/api/v1/sync",
             OnLoop(
                 [this](const net::Request& req) {
                   bool dry_run = false;
                   if (!req.body.empty()) {
                     auto body = net::ParseJsonBody(req);
                     if (!body.ok()) return net::StatusResponse(body.status());
                     if (body->is_object()) dry_run = body->value("dryRun", false);
                   }
                   if (dry_run) return net::JsonResponse(200, controller.PlanJson(true));
                   Status st = controller.SyncNow("api");
                   if (!st.ok()) return net::StatusResponse(st);
                   ReconcileAndShip("api");
                   return net::JsonResponse(
                       200, {{"applied", true}, {"revision", controller.applied().sha}});
                 },
                 true, "sync"));
    r.Handle("POST", "/api/v1/unpin",
             OnLoop(
                 [this](const net::Request&) {
                   std::error_code ec;
                   fs::remove(options.state_dir / "pin", ec);
                   controller.Unpin();
                   LogEvent(LogLevel::kInfo, "unpinned");
                   return net::JsonResponse(200, {{"pinned", nullptr}});
                 },
                 true, "unpin"));
    r.Handle("GET", "/api/v1/history", [this](const net::Request& req, net::Responder responder) {
      int64_t before = 0;
      size_t limit = 50;
      try {
        before = std::stoll(req.Query("before", "0"));
        limit = static_cast<size_t>(std::clamp(std::stoll(req.Query("limit", "50")), 1LL, 1000LL));
      } catch (...) {
        responder.Send(net::ErrorResponse(400, "before and limit must be integers"));
        return;
      }
      PostJob([this, before, limit, responder] {
        auto list = history->List(before, limit);
        if (!list.ok()) {
          responder.Send(net::StatusResponse(list.status()));
          return;
        }
        Json items = Json::array();
        for (const auto& e : *list) items.push_back(HistoryItemJson(e));
        responder.Send(net::JsonResponse(200, {{"items", items}}));
      });
    });
    // What a rollback to entry ID would change against what runs now:
    // /api/v1/history/ID/diff (JSON as /api/v1/plan?diff=true plus "text"; ?format=text: only that
    // text, the plan and unified diffs, readable in a browser).
    r.Handle("GET", "/api/v1/history/*", [this](const net::Request& req, net::Responder responder) {
      const std::string rest = req.path.substr(std::string("/api/v1/history/").size());
      int64_t id = 0;
      const auto slash = rest.find('/');
      try {
        size_t used = 0;
        id = std::stoll(rest.substr(0, slash), &used);
        if (used != slash || id <= 0) throw std::invalid_argument("id");
      } catch (...) {
        id = 0;
      }
      if (id <= 0 || slash == std::string::npos || rest.substr(slash) != "/diff") {
        responder.Send(net::ErrorResponse(404, "want /api/v1/history/ID/diff"));
        return;
      }
      const bool text = req.Query("format") == "text";
      PostJob([this, id, text, responder] {
        auto contents = history->Read(id);
        if (!contents.ok()) {
          responder.Send(net::StatusResponse(contents.status()));
          return;
        }
        auto objects = ParseEntryObjects(*contents);
        if (!objects.ok()) {
          responder.Send(net::StatusResponse(objects.status()));
          return;
        }
        const std::string revision = contents->entry.record.source_sha;
        Post([this, id, text, revision, objects = std::move(*objects), responder] {
          diff::Plan plan = controller.RestorePlan(objects);
          std::string body = "Rolling back to #" + std::to_string(id) + " (revision " + revision +
                             ") would change, against what runs now:\n\n" + diff::RenderText(plan);
          for (const auto& o : plan.objects) {
            if (o.is_change()) body += "\n" + diff::RenderUnifiedDiff(o);
          }
          if (text) {
            net::Response resp;
            resp.status = 200;
            resp.content_type = "text/plain; charset=utf-8";
            resp.body = std::move(body);
            responder.Send(std::move(resp));
            return;
          }
          diff::JsonOptions o;
          o.include_diff = true;
          Json j = diff::ToJson(plan, o);
          j["id"] = id;
          j["revision"] = revision;
          j["appliedRevision"] = controller.applied().sha;
          j["text"] = std::move(body);
          responder.Send(net::JsonResponse(200, j));
        });
      });
    });
    r.Handle("POST", "/api/v1/rollback", [this](const net::Request& req, net::Responder responder) {
      if (!net::CheckBearer(req, options.token)) {
        responder.Send(net::UnauthorizedResponse());
        return;
      }
      auto immediate = Rollback(req, responder);
      if (immediate.status != 200 || !immediate.body.empty()) responder.Send(immediate);
    });
    // Pod logs, read from the pod's agent: /api/v1/logs/POD?container=C&stream=stdout|stderr
    // &tailBytes=N. The agent call runs on its own short-lived thread (5 s deadline).
    r.Handle("GET", "/api/v1/logs/*", [this](const net::Request& req, net::Responder responder) {
      std::string pod = req.path.substr(std::string("/api/v1/logs/").size());
      if (pod.empty() || pod.find('/') != std::string::npos) {
        responder.Send(net::ErrorResponse(400, "want /api/v1/logs/POD"));
        return;
      }
      std::string container = req.Query("container");
      std::string query = "?stream=" + net::PercentEncode(req.Query("stream", "stdout")) +
                          "&tailBytes=" + net::PercentEncode(req.Query("tailBytes", "1048576"));
      Post([this, pod, container, query, responder] {
        auto target = controller.FindLogTarget(pod, container);
        if (!target.ok()) {
          responder.Send(net::StatusResponse(target.status()));
          return;
        }
        std::string url = target->agent_url + "/api/v1/logs/" + target->namespace_ + "/" +
                          target->pod + "/" + target->container + query;
        std::string token = options.token;
        std::thread([url, token, responder] {
          net::ClientOptions o;
          o.bearer_token = token;
          o.timeout = std::chrono::seconds(5);
          o.max_body_bytes = 2 << 20;
          net::HttpClient client(o);
          auto r = client.Get(url);
          if (!r.ok()) {
            responder.Send(net::StatusResponse(r.status()));
            return;
          }
          net::Response resp;
          resp.status = r->status;
          resp.body = std::move(r->body);
          if (const auto* ct = net::FindHeader(r->headers, "Content-Type")) resp.content_type = *ct;
          responder.Send(std::move(resp));
        }).detach();
      });
    });
    r.Handle(
        "POST", "/api/v1/webhook/git",
        [this](const net::Request& req, net::Responder responder) { Webhook(req, responder); });
    // The agent protocol.
    r.Handle(
        "POST", agentapi::kRegisterPath,
        OnLoop(
            [this](const net::Request& req) {
              auto body = net::ParseJsonBody(req);
              if (!body.ok()) return net::StatusResponse(body.status());
              auto registration = agentapi::RegisterRequestFromJson(*body);
              if (!registration.ok()) return net::StatusResponse(registration.status());
              const std::string name = registration->node.name;
              const std::string address = registration->node.address;
              if (Status s = controller.OnRegister(std::move(registration->node)); !s.ok()) {
                LogEvent(LogLevel::kWarn, "node_register_refused",
                         {{"node", name}, {"address", address}, {"error", s.message()}});
                return net::StatusResponse(s);
              }
              LogEvent(LogLevel::kInfo, "node_registered", {{"node", name}, {"address", address}});
              reports.erase(name);  // its next heartbeat is news
              agentapi::RegisterResponse answer;
              answer.heartbeat_seconds = options.controller.heartbeat_seconds;
              return net::JsonResponse(200, agentapi::ToJson(answer));
            },
            true, "register"));
    // Heartbeats: parsed on the server thread; only one that changes something marks the state
    // dirty (and then coalesced with the others of a burst); the rest just keep the node alive.
    r.Handle("POST", agentapi::kHeartbeatPath,
             [this](const net::Request& req, net::Responder responder) {
               if (!net::CheckBearer(req, options.token)) {
                 responder.Send(net::UnauthorizedResponse());
                 return;
               }
               auto t0 = std::chrono::steady_clock::now();
               auto body = net::ParseJsonBody(req);
               if (!body.ok()) {
                 responder.Send(net::StatusResponse(body.status()));
                 return;
               }
               auto hb = agentapi::HeartbeatFromJson(*body);
               if (!hb.ok()) {
                 responder.Send(net::StatusResponse(hb.status()));
                 return;
               }
               Post([this, hb = std::move(*hb), responder, t0] {
                 if (!controller.OnHeartbeat(hb)) {
                   responder.Send(net::ErrorResponse(
                       404, "unknown node " + hb.node.name + ": register again"));
                   return;
                 }
                 if (HeartbeatChanges(hb)) {
                   metrics.heartbeats.Inc("changed");
                   Changed(/*urgent=*/false);
                 } else {
                   metrics.heartbeats.Inc("unchanged");
                   cache.Invalidate("nodes");  // lastHeartbeat moved
                 }
                 responder.Send(net::JsonResponse(200, Json::object()));
                 metrics.api_duration.Observe(SecondsSince(t0));
               });
             });
    r.Handle("GET", agentapi::kDesiredPath,
             [this](const net::Request& req, net::Responder responder) {
               if (!net::CheckBearer(req, options.token)) {
                 responder.Send(net::UnauthorizedResponse());
                 return;
               }
               desired->Serve(req, responder);
             });
    return r;
  }
};

Service::Service(ServiceOptions options, const Clock* clock)
    : impl_(std::make_unique<Impl>(std::move(options), clock)) {}

Service::~Service() { Stop(); }

Status Service::Start() {
  auto& d = *impl_;
  std::error_code ec;
  fs::create_directories(d.options.state_dir, ec);
  if (ec) {
    return Unavailable("state dir " + d.options.state_dir.string() + ": " + ec.message());
  }
  if (d.options.source.clone_dir.empty()) {
    d.options.source.clone_dir = d.options.state_dir / "source.git";
  }
  auto history = git::HistoryStore::Open(d.options.state_dir / "history.git");
  if (!history.ok()) return history.status().WithContext("open history");
  d.history = std::move(*history);
  if (Status st = d.RestoreFromHistory(); !st.ok()) return st.WithContext("restore history");
  d.source = std::make_unique<git::GitSource>(d.options.source);
  d.desired = std::make_unique<DesiredStateStore>(60);
  d.server = std::make_unique<net::HttpServer>(d.options.http);
  if (Status st = d.server->Start(d.Routes()); !st.ok()) return st;
  d.worker = std::thread([&d] { d.WorkerMain(); });
  d.loop = std::thread([&d] { d.LoopMain(); });
  LogEvent(LogLevel::kInfo, "listening",
           {{"url", d.server->url()},
            {"repo", git::RedactUrl(d.options.source.remote.url)},
            {"ref", d.options.source.ref},
            {"sync", d.options.controller.sync == SyncPolicy::kAuto ? "auto" : "manual"}});
  return Status::Ok();
}

void Service::Stop() {
  auto& d = *impl_;
  if (d.server) d.server->Stop();
  {
    std::lock_guard<std::mutex> lock(d.mu);
    d.stopping = true;
  }
  d.cv.notify_all();
  if (d.loop.joinable()) d.loop.join();
  {
    std::lock_guard<std::mutex> lock(d.wmu);
    d.wstopping = true;
  }
  d.wcv.notify_all();
  if (d.worker.joinable()) d.worker.join();
  d.desired.reset();
}

std::string Service::url() const { return impl_->server ? impl_->server->url() : ""; }

}  // namespace ballast::reconciler
