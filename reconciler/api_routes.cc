#include "reconciler/api_routes.h"

#include <algorithm>
#include <charconv>
#include <chrono>
#include <limits>
#include <memory>

#include "diff/redact.h"
#include "diff/render.h"
#include "log/log.h"
#include "net/gzip.h"
#include "reconciler/api_bodies.h"
#include "reconciler/status_page.h"
#include "sources/git/remote.h"

namespace ballast::reconciler {
namespace {

using model::Json;

// The thin handlers. Each parses and checks its request on the HTTP thread, then hands the work
// to the loop or the worker.
class Handlers {
 public:
  explicit Handlers(const ApiDeps& d) : d_(d) {}

  net::Response Version(const net::Request&) const {
    return net::JsonResponse(200, d_.options->version);
  }

  void Metrics(const Principal&, const net::Request&, net::Responder responder) const {
    Loop(
        [this, responder] {
          net::Response resp =
              net::TextResponse(200, d_.metrics->Render(d_.loop->controller().MetricsCounts()));
          resp.content_type = "text/plain; version=0.0.4; charset=utf-8";
          responder.Send(std::move(resp));
        },
        responder);
  }

  // The status page (reconciler/status_page.h): history read on the worker, the rest on the
  // loop thread, rendered from the same JSON documents as the API. A rendering serves every
  // request until the state changes (the loop invalidates the cache) or for a second at most
  // (history appends and pod ages): a flood of page loads costs one rendering a second.
  void Page(const Principal& who, const net::Request&, net::Responder responder) const {
    const bool secrets = Authorize(who, Access::kSecrets);
    const std::string key = secrets ? "page" : std::string("page") + kRedactedSuffix;
    if (auto doc = d_.loop->cache().Lookup(key, d_.clock->NowMs())) {
      d_.metrics->api_cache.Inc("hit");
      return responder.Send(PageResponse(doc->body));
    }
    d_.metrics->api_cache.Inc("miss");
    Work(
        [this, responder, secrets, key] {
          auto page = std::make_shared<StatusPageInput>();
          if (auto list = d_.history->ListJson(0, 20); list.ok()) page->history = std::move(*list);
          Then(
              [this, responder, page, secrets, key] {
                const Controller& c = d_.loop->controller();
                page->status = c.StatusJson();
                page->plan = c.PlanJson(true, /*redact=*/!secrets);
                page->deployments = c.DeploymentsJson();
                page->services = c.ServicesJson();
                page->pods = c.PodsJson();
                page->nodes = c.NodesJson();
                page->repo = git::RedactUrl(d_.options->source.remote.url);
                page->branch = d_.options->source.ref;
                page->path = d_.options->source.path;
                page->insecure = d_.options->insecure;
                page->now_ms = d_.clock->WallMs();  // pod ages: against the documents' wall times
                const int64_t now = d_.clock->NowMs();
                auto doc = d_.loop->cache().Put(key, RenderStatusPage(*page), now + 1000);
                responder.Send(PageResponse(doc.body));
              },
              responder);
        },
        responder);
  }

  static net::Response PageResponse(std::shared_ptr<const std::string> body) {
    net::Response resp;
    resp.status = 200;
    resp.shared_body = std::move(body);
    resp.content_type = "text/html; charset=utf-8";
    resp.headers.emplace_back("Content-Security-Policy", std::string(kStatusPageCsp));
    resp.headers.emplace_back("Cache-Control", "no-store");
    return resp;
  }

  // A GET of a cached document: answered on the server thread when the cache holds it, else
  // rendered on the loop thread.
  ApiHandler CachedGet(
      std::function<std::string(const Principal&, const net::Request&)> key_of) const {
    return [this, key_of = std::move(key_of)](const Principal& who, const net::Request& req,
                                              net::Responder responder) {
      const auto t0 = std::chrono::steady_clock::now();
      const std::string key = key_of(who, req);
      if (auto doc = d_.loop->cache().Lookup(key, d_.clock->NowMs())) {
        d_.metrics->api_cache.Inc("hit");
        responder.Send(DocumentResponse(key, req, *doc));
        d_.metrics->api_duration.Observe(SecondsSince(t0));
        return;
      }
      d_.metrics->api_cache.Inc("miss");
      Loop(
          [this, key, req, responder, t0] {
            responder.Send(DocumentResponse(key, req, d_.loop->Document(key)));
            d_.metrics->api_duration.Observe(SecondsSince(t0));
          },
          responder);
    };
  }

  void Sync(const Principal&, const net::Request& req, net::Responder responder) const {
    auto body = ParseSyncBody(req);
    if (!body.ok()) return responder.Send(net::StatusResponse(body.status()));
    Loop(
        [this, responder, dry_run = body->dry_run] {
          Controller& c = d_.loop->controller();
          if (dry_run) return responder.Send(net::JsonResponse(200, c.PlanJson(true)));
          Status st = c.SyncNow("api");
          d_.loop->Changed(/*urgent=*/true);
          if (!st.ok()) return responder.Send(net::StatusResponse(st));
          d_.loop->ReconcileAndShip("api");
          responder.Send(
              net::JsonResponse(200, {{"applied", true}, {"revision", c.applied().sha}}));
        },
        responder);
  }

  void Unpin(const Principal&, const net::Request&, net::Responder responder) const {
    Work(
        [this, responder] {
          if (Status st = d_.history->Unpin(); !st.ok()) {
            return responder.Send(net::StatusResponse(st));
          }
          Then(
              [this, responder] {
                d_.loop->controller().Unpin();
                d_.loop->Changed(/*urgent=*/true);
                LogEvent(LogLevel::kInfo, "unpinned");
                responder.Send(net::JsonResponse(200, {{"pinned", nullptr}}));
              },
              responder);
        },
        responder);
  }

  void History(const Principal&, const net::Request& req, net::Responder responder) const {
    auto before = req.QueryInt("before", 0, 0, std::numeric_limits<int64_t>::max());
    auto limit = req.QueryInt("limit", 50, 1, 1000);
    if (!before.ok() || !limit.ok()) {
      return responder.Send(net::StatusResponse(!before.ok() ? before.status() : limit.status()));
    }
    Work(
        [this, before = *before, limit = *limit, responder] {
          auto list = d_.history->ListJson(before, static_cast<size_t>(limit));
          responder.Send(list.ok() ? net::JsonResponse(200, *list)
                                   : net::StatusResponse(list.status()));
        },
        responder);
  }

  // What a rollback to entry ID would change against what runs now:
  // /api/v1/history/ID/diff (JSON as /api/v1/plan?diff=true plus "text"; ?format=text: only that
  // text, the plan and unified diffs, readable in a browser).
  void HistoryDiff(const Principal& who, const net::Request& req, net::Responder responder) const {
    const int64_t id = HistoryDiffId(req.path);
    if (id <= 0) return responder.Send(net::ErrorResponse(404, "want /api/v1/history/ID/diff"));
    const bool text = req.Query("format") == "text";
    const bool redact = !Authorize(who, Access::kSecrets);
    Work(
        [this, id, text, redact, responder] {
          auto entry = d_.history->ReadObjects(id);
          if (!entry.ok()) return responder.Send(net::StatusResponse(entry.status()));
          Then([this, text, redact, entry = std::move(*entry),
                responder] { responder.Send(RestoreDiffResponse(entry, text, redact)); },
               responder);
        },
        responder);
  }

  void Rollback(const Principal&, const net::Request& req, net::Responder responder) const {
    auto body = ParseRollbackBody(req);
    if (!body.ok()) return responder.Send(net::StatusResponse(body.status()));
    const int64_t id = body->id;
    if (body->pin) return PinEntry(id, responder);
    Work(
        [this, id, responder] {
          auto result = d_.history->Rollback(id, "api");
          if (!result.ok()) {
            LogEvent(LogLevel::kWarn, "rollback_failed",
                     {{"id", std::to_string(id)}, {"error", result.status().ToString()}});
            return responder.Send(net::StatusResponse(result.status()));
          }
          LogEvent(LogLevel::kInfo, "rollback_pushed",
                   {{"id", std::to_string(id)}, {"commit", result->result.commit}});
          responder.Send(net::JsonResponse(200, {{"id", id},
                                                 {"commit", result->result.commit},
                                                 {"pushed", result->result.pushed},
                                                 {"revision", result->revision}}));
          d_.loop->Post([this, id] { d_.loop->RequestPoll("rollback #" + std::to_string(id)); });
        },
        responder);
  }

  // Pod logs, read from the pod's agent: /api/v1/logs/POD?container=C&stream=stdout|stderr
  // &tailBytes=N.
  void Logs(const Principal&, const net::Request& req, net::Responder responder) const {
    const std::string pod = req.path.substr(std::string("/api/v1/logs/").size());
    if (pod.empty() || pod.find('/') != std::string::npos) {
      return responder.Send(net::ErrorResponse(400, "want /api/v1/logs/POD"));
    }
    const std::string container = req.Query("container");
    const std::string query = "?stream=" + net::PercentEncode(req.Query("stream", "stdout")) +
                              "&tailBytes=" + net::PercentEncode(req.Query("tailBytes", "1048576"));
    Loop(
        [this, pod, container, query, responder] {
          auto target = d_.loop->controller().FindLogTarget(pod, container);
          if (!target.ok()) return responder.Send(net::StatusResponse(target.status()));
          d_.logs->Fetch(target->agent_url + "/api/v1/logs/" + target->namespace_ + "/" +
                             target->pod + "/" + target->container + query,
                         d_.nodes->LogsToken(target->node), responder);
        },
        responder);
  }

  void Webhook(const Principal&, const net::Request& req, net::Responder responder) const {
    switch (d_.webhook->Verify(req, d_.clock->NowMs())) {
      case WebhookVerdict::kRateLimited: {
        d_.metrics->webhooks.Inc("rate_limited");
        net::Response r = net::ErrorResponse(
            429, "too many unsigned webhooks; configure --webhook-secret-file to lift the limit");
        r.headers.emplace_back("Retry-After", "5");
        return responder.Send(std::move(r));
      }
      case WebhookVerdict::kTooLarge:
        d_.metrics->webhooks.Inc("rejected");
        return responder.Send(net::ErrorResponse(413, "payload too large"));
      case WebhookVerdict::kUnauthorized:
        d_.metrics->webhooks.Inc("unauthorized");
        LogEvent(LogLevel::kWarn, "webhook_rejected", {{"remote", req.remote}});
        return responder.Send(net::ErrorResponse(401, "webhook signature missing or wrong"));
      case WebhookVerdict::kAccepted:
        break;
    }
    if (!d_.loop->PostRequest([this] { d_.loop->RequestPoll("webhook"); })) {
      return responder.Send(Busy("loop"));
    }
    d_.metrics->webhooks.Inc("accepted");
    responder.Send(net::JsonResponse(202, {{"accepted", true}}));
  }

  // A node joins: with the join token, its own credential (again) or an admin's token. The
  // answer hands it a credential of its own, bound to its name, and the token this reconciler
  // will present to its log server.
  void Register(const Principal& who, const net::Request& req, net::Responder responder) const {
    auto body = net::ParseJsonBody(req);
    auto registration = body.ok() ? agentapi::RegisterRequestFromJson(*body)
                                  : Result<agentapi::RegisterRequest>(body.status());
    if (!registration.ok()) return responder.Send(net::StatusResponse(registration.status()));
    if (!Authorize(who, Access::kJoin, registration->node.name)) {
      return responder.Send(ForbiddenForNode(who, registration->node.name));
    }
    Loop(
        [this, joiner = who.role == Role::kJoiner, node = std::move(registration->node),
         responder]() mutable {
          const std::string name = node.name, address = node.address;
          if (Status s = Admit(joiner, std::move(node)); !s.ok()) {
            LogEvent(LogLevel::kWarn, "node_register_refused",
                     {{"node", name}, {"address", address}, {"error", s.message()}});
            return responder.Send(net::StatusResponse(s));
          }
          auto issued = d_.nodes->Issue(name);
          if (!issued.ok()) return responder.Send(net::StatusResponse(issued.status()));
          LogEvent(LogLevel::kInfo, "node_registered", {{"node", name}, {"address", address}});
          agentapi::RegisterResponse answer;
          answer.heartbeat_seconds = d_.options->controller.heartbeat_seconds;
          answer.credential = std::move(issued->credential);
          answer.logs_token = std::move(issued->logs_token);
          responder.Send(net::JsonResponse(200, agentapi::ToJson(answer)));
        },
        responder, ServiceLoop::Lane::kNodes);
  }

  // Heartbeats: parsed on the server thread; only one that changes something marks the state
  // dirty (and then coalesced with the others of a burst); the rest just keep the node alive.
  void Heartbeat(const Principal& who, const net::Request& req, net::Responder responder) const {
    const auto t0 = std::chrono::steady_clock::now();
    auto body = net::ParseJsonBody(req);
    auto hb =
        body.ok() ? agentapi::HeartbeatFromJson(*body) : Result<agentapi::Heartbeat>(body.status());
    if (!hb.ok()) return responder.Send(net::StatusResponse(hb.status()));
    if (!Authorize(who, Access::kNode, hb->node.name)) {
      return responder.Send(ForbiddenForNode(who, hb->node.name));
    }
    Loop(
        [this, hb = std::move(*hb), responder, t0] {
          if (d_.loop->OnHeartbeat(hb) == ServiceLoop::HeartbeatEffect::kUnknownNode) {
            return responder.Send(
                net::ErrorResponse(404, "unknown node " + hb.node.name + ": register again"));
          }
          responder.Send(net::JsonResponse(200, Json::object()));
          d_.metrics->api_duration.Observe(SecondsSince(t0));
        },
        responder, ServiceLoop::Lane::kNodes);
  }

  // A node reads only its own desired state (its pods, their secrets included).
  void Desired(const Principal& who, const net::Request& req, net::Responder responder) const {
    const std::string node = req.Query("node");
    if (!node.empty() && !Authorize(who, Access::kNode, node)) {
      return responder.Send(ForbiddenForNode(who, node));
    }
    d_.desired->Serve(req, responder);
  }

 private:
  // Runs `fn` on the loop thread; a stopping service or a full queue answers 503 instead.
  void Loop(std::function<void()> fn, const net::Responder& responder,
            ServiceLoop::Lane lane = ServiceLoop::Lane::kPeople) const {
    if (!d_.loop->PostRequest(std::move(fn), lane)) responder.Send(Busy("loop"));
  }
  // The loop-thread stage of work the worker has begun (the request was admitted then): never
  // refused for a full queue, as the first stage may have changed something already (a pin
  // written); only a stopping service answers 503.
  void Then(std::function<void()> fn, const net::Responder& responder) const {
    if (!d_.loop->Post(std::move(fn))) {
      responder.Send(net::ErrorResponse(503, "server stopping; try again"));
    }
  }
  // Runs `fn` on the worker; a stopping service or a full queue answers 503 instead.
  void Work(std::function<void()> fn, const net::Responder& responder) const {
    if (!d_.worker->PostRequest(std::move(fn))) responder.Send(Busy("worker"));
  }
  // 503 with Retry-After for work `queue` refused, counted in ballast_queue_rejected_total.
  net::Response Busy(const std::string& queue) const {
    d_.metrics->queue_rejected.Inc(queue);
    net::Response r = net::ErrorResponse(503, "server busy or stopping; try again");
    r.headers.emplace_back("Retry-After", "1");
    return r;
  }

  // Loop thread. The join token registers a new node, or one silent for the grace period; a
  // live node that holds a credential is registered again only with that credential, so a
  // holder of the join token cannot take over a running node (and its pods' secrets).
  Status Admit(bool joiner, model::Node node) const {
    const std::string name = node.name;
    if (joiner && d_.nodes->Holds(name) && d_.loop->controller().NodeAlive(name)) {
      return Status(StatusCode::kAlreadyExists,
                    "node " + name +
                        " is alive and holds a credential: only its own agent (with the "
                        "credential kept in its work directory) may register it again; the name "
                        "is free once the node has been silent for the node grace period");
    }
    return d_.loop->OnRegister(std::move(node));
  }

  static net::Response ForbiddenForNode(const Principal& who, const std::string& node) {
    return net::ErrorResponse(
        403, std::string(RoleName(who.role)) + " " + who.user + " may not speak for node " + node);
  }

  void PinEntry(int64_t id, net::Responder responder) const {
    Work(
        [this, id, responder] {
          auto state = d_.history->Pin(id);
          if (!state.ok()) return responder.Send(net::StatusResponse(state.status()));
          Then(
              [this, id, state = std::move(*state), responder]() mutable {
                Controller& c = d_.loop->controller();
                c.Pin(id, std::move(state));
                c.TakeHistoryAppends();
                d_.loop->Changed(/*urgent=*/true);
                LogEvent(LogLevel::kInfo, "pinned", {{"id", std::to_string(id)}});
                responder.Send(
                    net::JsonResponse(200, {{"pinned", id}, {"revision", c.applied().sha}}));
              },
              responder);
        },
        responder);
  }

  // "/api/v1/history/ID/diff" -> ID; 0 for anything else.
  static int64_t HistoryDiffId(const std::string& path) {
    const std::string rest = path.substr(std::string("/api/v1/history/").size());
    const auto slash = rest.find('/');
    if (slash == std::string::npos || rest.substr(slash) != "/diff") return 0;
    int64_t id = 0;
    const char* begin = rest.data();
    const auto [end, ec] = std::from_chars(begin, begin + slash, id);
    return ec == std::errc() && end == begin + slash && id > 0 ? id : 0;
  }

  // Loop thread.
  net::Response RestoreDiffResponse(const EntryObjects& entry, bool text_only, bool redact) const {
    const Controller& c = d_.loop->controller();
    diff::Plan plan = c.RestorePlan(entry.objects);
    plan = redact ? diff::Redacted(std::move(plan)) : diff::WithoutSecretData(std::move(plan));
    std::string body = "Rolling back to #" + std::to_string(entry.id) + " (revision " +
                       entry.revision + ") would change, against what runs now:\n\n" +
                       diff::RenderText(plan);
    for (const auto& o : plan.objects) {
      if (o.is_change()) body += "\n" + diff::RenderUnifiedDiff(o);
    }
    if (text_only) return net::TextResponse(200, std::move(body));
    diff::JsonOptions o;
    o.include_diff = true;
    Json j = diff::ToJson(plan, o);
    j["id"] = entry.id;
    j["revision"] = entry.revision;
    j["appliedRevision"] = c.applied().sha;
    j["text"] = std::move(body);
    return net::JsonResponse(200, j);
  }

  // A cached document as the request asks for it: gzip when accepted (and worth it), 304 when
  // If-None-Match names what would be sent.
  net::Response DocumentResponse(const std::string& key, const net::Request& req,
                                 const ResponseCache::Document& doc) const {
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
      d_.metrics->api_cache.Inc("not_modified");
      resp.status = 304;
      return resp;
    }
    resp.status = 200;
    if (gzip) {
      resp.headers.emplace_back("Content-Encoding", "gzip");
      resp.shared_body = d_.loop->cache().Gzipped(key, doc).body;
    } else {
      resp.shared_body = doc.body;
    }
    return resp;
  }

  const ApiDeps d_;
};

}  // namespace

const char* AccessName(Access access) {
  switch (access) {
    case Access::kPublic:
      return "public";
    case Access::kRead:
      return "read";
    case Access::kAdmin:
      return "admin";
    case Access::kJoin:
      return "join";
    case Access::kSecrets:
      return "secrets";
    case Access::kNode:
      return "node";
    case Access::kWebhook:
      return "webhook";
  }
  return "?";
}

bool Authorize(const Principal& who, Access access, std::string_view node) {
  const Role r = who.role;
  // A node's own credential, for itself (or, node empty, for whichever node the call names).
  const bool itself = r == Role::kNode && (node.empty() || node == who.node);
  switch (access) {
    case Access::kPublic:
    case Access::kWebhook:  // the handler checks the signature
      return true;
    case Access::kRead:
      return r == Role::kViewer || r == Role::kAdmin;
    case Access::kAdmin:
    case Access::kSecrets:
      return r == Role::kAdmin;
    case Access::kJoin:
      return r == Role::kAdmin || r == Role::kJoiner || itself;
    case Access::kNode:
      return r == Role::kAdmin || itself;
  }
  return false;
}

std::vector<Route> ApiRouteTable(const ApiDeps& deps) {
  auto h = std::make_shared<const Handlers>(deps);
  auto sync = [h](net::Response (Handlers::*fn)(const net::Request&) const) -> ApiHandler {
    return [h, fn](const Principal&, const net::Request& req, net::Responder r) {
      r.Send(((*h).*fn)(req));
    };
  };
  using Async = void (Handlers::*)(const Principal&, const net::Request&, net::Responder) const;
  auto async = [h](Async fn) {
    return ApiHandler([h, fn](const Principal& who, const net::Request& req, net::Responder r) {
      ((*h).*fn)(who, req, std::move(r));
    });
  };
  auto doc = [h](const std::string& key) {
    return h->CachedGet([key](const Principal&, const net::Request&) { return key; });
  };
  auto healthz = [](const Principal&, const net::Request&, net::Responder r) {
    r.Send(net::TextResponse(200, "ok\n"));
  };
  // The page's script and stylesheet: the same bytes for everybody, revalidated on each load.
  auto asset = [](std::string_view body, const char* content_type) {
    return ApiHandler(
        [body, content_type](const Principal&, const net::Request&, net::Responder r) {
          net::Response resp = net::TextResponse(200, std::string(body));
          resp.content_type = content_type;
          resp.headers.emplace_back("Cache-Control", "no-cache");
          r.Send(std::move(resp));
        });
  };
  // Secret values only for those who may see them: the others get the redacted document.
  auto plan = h->CachedGet([](const Principal& who, const net::Request& req) {
    std::string key = req.Query("diff") == "true" ? "plan?diff" : "plan";
    if (!Authorize(who, Access::kSecrets)) key += kRedactedSuffix;
    return key;
  });
  // clang-format off
  return {
      {"GET",  "/healthz",                Access::kPublic,  healthz},
      {"GET",  "/api/v1/version",         Access::kPublic,  sync(&Handlers::Version)},
      {"GET",  "/metrics",                Access::kRead,    async(&Handlers::Metrics)},
      {"GET",  "/",                       Access::kRead,    async(&Handlers::Page)},
      {"GET",  std::string(kStatusPageScriptPath), Access::kPublic,
               asset(StatusPageScript(), "text/javascript; charset=utf-8")},
      {"GET",  std::string(kStatusPageStylePath),  Access::kPublic,
               asset(StatusPageStyle(), "text/css; charset=utf-8")},
      {"GET",  "/api/v1/status",          Access::kRead,    doc("status")},
      {"GET",  "/api/v1/deployments",     Access::kRead,    doc("deployments")},
      {"GET",  "/api/v1/services",        Access::kRead,    doc("services")},
      {"GET",  "/api/v1/pods",            Access::kRead,    doc("pods")},
      {"GET",  "/api/v1/nodes",           Access::kRead,    doc("nodes")},
      {"GET",  "/api/v1/plan",            Access::kRead,    plan},
      {"GET",  "/api/v1/history",         Access::kRead,    async(&Handlers::History)},
      {"GET",  "/api/v1/history/*",       Access::kRead,    async(&Handlers::HistoryDiff)},
      {"GET",  "/api/v1/logs/*",          Access::kRead,    async(&Handlers::Logs)},
      {"POST", "/api/v1/sync",            Access::kAdmin,   async(&Handlers::Sync)},
      {"POST", "/api/v1/rollback",        Access::kAdmin,   async(&Handlers::Rollback)},
      {"POST", "/api/v1/unpin",           Access::kAdmin,   async(&Handlers::Unpin)},
      {"POST", "/api/v1/webhook/git",     Access::kWebhook, async(&Handlers::Webhook)},
      {"POST", agentapi::kRegisterPath,   Access::kJoin,    async(&Handlers::Register)},
      {"POST", agentapi::kHeartbeatPath,  Access::kNode,    async(&Handlers::Heartbeat)},
      {"GET",  agentapi::kDesiredPath,    Access::kNode,    async(&Handlers::Desired)},
  };
  // clang-format on
}

namespace {

// A browser page of another origin may not make changes here (it could otherwise ride on the
// credentials a browser sends by itself, HTTP Basic): a mutating call whose Origin is not this
// server's own, or that the browser marks cross-site, is refused.
bool CrossOrigin(const net::Request& req) {
  if (const auto* site = req.Header("Sec-Fetch-Site"); site != nullptr && *site == "cross-site") {
    return true;
  }
  const auto* origin = req.Header("Origin");
  if (origin == nullptr) return false;  // not a browser's cross-origin request
  const auto* host = req.Header("Host");
  if (host == nullptr) return true;
  return *origin != "http://" + *host && *origin != "https://" + *host;
}

net::Response Denied(const Principal& who, const Route& route) {
  // No valid credential, or none presented (anonymous readers): a token would help, 401.
  if (who.role == Role::kNone || who.user == "anonymous") {
    net::Response r = net::ErrorResponse(401, "missing or wrong token");
    // A browser asks for the token itself (as the password of Basic authentication) on the
    // page; programs are told to send a bearer token.
    r.headers.emplace_back("WWW-Authenticate", route.path == "/"
                                                   ? "Basic realm=\"ballast\", charset=\"UTF-8\""
                                                   : "Bearer realm=\"ballast\"");
    return r;
  }
  return net::ErrorResponse(403, std::string(RoleName(who.role)) + " " + who.user + " may not " +
                                     route.method + " " + route.path);
}

}  // namespace

net::Router BuildRouter(const std::vector<Route>& routes, const Authenticator* auth) {
  net::Router router;
  for (const auto& route : routes) {
    router.Handle(
        route.method, route.path, [route, auth](const net::Request& req, net::Responder responder) {
          const Principal who = auth->Authenticate(req);
          if (!Authorize(who, route.access)) {
            return responder.Send(Denied(who, route));
          }
          if (route.access == Access::kAdmin && CrossOrigin(req)) {
            return responder.Send(net::ErrorResponse(
                403,
                "cross-origin request refused: Origin " +
                    std::string(req.Header("Origin") ? *req.Header("Origin") : "(cross-site)") +
                    " is not this server"));
          }
          route.handler(who, req, std::move(responder));
        });
  }
  return router;
}

}  // namespace ballast::reconciler
