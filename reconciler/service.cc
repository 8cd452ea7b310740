#include "reconciler/service.h"

#include <system_error>

#include "log/log.h"
#include "reconciler/api_routes.h"
#include "reconciler/desired_state_store.h"
#include "reconciler/history_jobs.h"
#include "reconciler/log_relay.h"
#include "reconciler/metrics.h"
#include "reconciler/pin_store.h"
#include "reconciler/service_loop.h"
#include "reconciler/state_key.h"
#include "reconciler/webhook.h"
#include "reconciler/worker.h"
#include "sources/git/history_store.h"
#include "sources/git/remote.h"

namespace ballast::reconciler {

namespace fs = std::filesystem;

// The parts, in the order they are built; Stop() takes them down in the reverse order.
struct Service::Impl {
  Impl(ServiceOptions o, const Clock* c) : options(std::move(o)), clock(c) {}

  ServiceOptions options;
  const Clock* clock;
  Metrics metrics;
  std::unique_ptr<git::HistoryStore> history_store;
  std::unique_ptr<git::GitSource> source;  // worker thread only
  std::unique_ptr<PinStore> pins;
  std::unique_ptr<NodeRoster> roster;
  std::unique_ptr<HistoryJobs> history;
  std::unique_ptr<DesiredStateStore> desired;
  std::unique_ptr<Worker> worker;
  std::unique_ptr<LogRelay> logs;
  std::unique_ptr<WebhookVerifier> webhook;
  NodeCredentials nodes;
  std::unique_ptr<Authenticator> auth;
  std::unique_ptr<ServiceLoop> loop;
  std::unique_ptr<net::HttpServer> server;
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
  d.history_store = std::move(*history);
  d.source = std::make_unique<git::GitSource>(d.options.source);
  d.pins = std::make_unique<PinStore>(d.options.state_dir / "pin");
  d.roster = std::make_unique<NodeRoster>(d.options.state_dir / "nodes");
  auto known_nodes = d.roster->Load();
  if (!known_nodes.ok()) return known_nodes.status();
  auto config_key = LoadOrCreateStateKey(d.options.state_dir / "config-hash-key");
  if (!config_key.ok()) return config_key.status();
  d.options.controller.config_hash_key = std::move(*config_key);
  d.history = std::make_unique<HistoryJobs>(d.history_store.get(), d.source.get(), d.pins.get(),
                                            d.options.source, d.clock);
  auto startup = d.history->LoadAtStart();
  if (!startup.ok()) return startup.status().WithContext("restore history");

  d.desired = std::make_unique<DesiredStateStore>(60);
  d.worker = std::make_unique<Worker>();
  // No credential of the reconciler's own: each node's logs are read with the token its
  // registration handed it (LogRelay::Fetch).
  net::ClientOptions agent_client;
  agent_client.timeout = std::chrono::seconds(5);
  agent_client.max_body_bytes = 2 << 20;
  d.logs = std::make_unique<LogRelay>(agent_client);
  d.webhook = std::make_unique<WebhookVerifier>(
      WebhookOptions{d.options.webhook_secret, d.options.max_webhook_bytes});
  ServiceLoopOptions loop_options{d.options.poll_seconds, d.options.max_backoff_seconds,
                                  d.options.controller};
  d.loop = std::make_unique<ServiceLoop>(loop_options, d.clock, &d.metrics, d.worker.get(),
                                         d.history.get(), d.source.get(), d.desired.get(),
                                         d.roster.get());
  d.loop->Start(std::move(*startup), std::move(*known_nodes));

  TokenTable tokens = d.options.tokens;
  if (!d.options.token.empty()) {
    tokens.by_hash.emplace(Sha256Hex(d.options.token), Principal{Role::kAdmin, "admin", ""});
  }
  d.auth =
      std::make_unique<Authenticator>(std::move(tokens), d.options.join_token, d.options.anonymous,
                                      &d.nodes, !d.options.http.tls_client_ca_file.empty());
  const ApiDeps deps{&d.options,      d.clock,         d.loop.get(), d.worker.get(),
                     d.history.get(), d.desired.get(), d.logs.get(), d.webhook.get(),
                     &d.metrics,      &d.nodes};
  d.server = std::make_unique<net::HttpServer>(d.options.http);
  if (Status st = d.server->Start(BuildRouter(ApiRouteTable(deps), d.auth.get())); !st.ok()) {
    return st;
  }
  LogEvent(LogLevel::kInfo, "listening",
           {{"url", d.server->url()},
            {"repo", git::RedactUrl(d.options.source.remote.url)},
            {"ref", d.options.source.ref},
            {"sync", d.options.controller.sync == SyncPolicy::kAuto ? "auto" : "manual"}});
  return Status::Ok();
}

void Service::Stop() {
  auto& d = *impl_;
  if (d.server) d.server->Stop();  // no new requests
  if (d.logs) d.logs->Stop();      // fetches from agents cancelled
  if (d.loop) d.loop->Stop();      // the controller stops
  if (d.worker) d.worker->Stop();  // queued git work (history appends) finishes
  d.desired.reset();               // waiting agents are answered
}

std::string Service::url() const { return impl_->server ? impl_->server->url() : ""; }

}  // namespace ballast::reconciler
