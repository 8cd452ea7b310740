#pragma once

// The reconciler's HTTP API in one table: every route names its method, its path, who may call
// it (Access) and a thin handler that parses, calls the part of the service that does the
// work, and renders. Authorize() is the one decision over who may call what; BuildRouter wraps
// every handler in it, so a route cannot be served without a rule.
//
// Handlers run on the HTTP server's threads and never block: controller work is posted to the
// loop (ServiceLoop::Post), git work to the worker (Worker::Post); they answer through the
// Responder when that is done. Bodies are parsed and checked on the HTTP thread, before
// anything is posted: a malformed request is a 400 naming the field.

#include <string>
#include <vector>

#include "clock/clock.h"
#include "net/router.h"
#include "reconciler/desired_state_store.h"
#include "reconciler/history_jobs.h"
#include "reconciler/log_relay.h"
#include "reconciler/metrics.h"
#include "reconciler/service.h"
#include "reconciler/service_loop.h"
#include "reconciler/webhook.h"
#include "reconciler/worker.h"

namespace ballast::reconciler {

// Who may call a route.
enum class Access {
  kPublic,   // anyone: /healthz, the version
  kRead,     // every read: documents, history, logs, the page, metrics
  kAdmin,    // changes: sync, rollback, unpin
  kNode,     // the agent protocol
  kWebhook,  // git hosts: the handler checks the signature (reconciler/webhook.h)
};
const char* AccessName(Access access);

// The one authorization decision: may `request` call a route of `access`, given the configured
// bearer `token` (empty: none configured)?
bool Authorize(Access access, const net::Request& request, const std::string& token);

struct Route {
  std::string method;
  std::string path;  // exact, or a prefix ending in "/*" (net::Router)
  Access access;
  net::Handler handler;
};

// What the handlers work with; everything outlives the router.
struct ApiDeps {
  const ServiceOptions* options;
  const Clock* clock;
  ServiceLoop* loop;
  Worker* worker;
  HistoryJobs* history;
  DesiredStateStore* desired;
  LogRelay* logs;
  const WebhookVerifier* webhook;
  Metrics* metrics;
};

// Every route of the reconciler's listener.
std::vector<Route> ApiRouteTable(const ApiDeps& deps);

// The routes, each handler behind Authorize (401 when it says no).
net::Router BuildRouter(const std::vector<Route>& routes, const std::string& token);

}  // namespace ballast::reconciler
