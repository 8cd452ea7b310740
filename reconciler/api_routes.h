#pragma once

// The reconciler's HTTP API in one table: every route names its method, its path, who may call
// it (Access) and a thin handler that parses, calls the part of the service that does the
// work, and renders. Authorize() is the one decision over who (a Principal, identity.h) may do
// what; BuildRouter authenticates every request and wraps every handler in it, so a route
// cannot be served without a rule. Handlers ask it again about the object of a call (which
// node a heartbeat speaks for) and about secret values (shown to admins only).
//
// Handlers run on the HTTP server's threads and never block: controller work is posted to the
// loop (ServiceLoop::Post), git work to the worker (Worker::Post); they answer through the
// Responder when that is done. Bodies are parsed and checked on the HTTP thread, before
// anything is posted: a malformed request is a 400 naming the field.

#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "clock/clock.h"
#include "net/router.h"
#include "reconciler/desired_state_store.h"
#include "reconciler/history_jobs.h"
#include "reconciler/identity.h"
#include "reconciler/log_relay.h"
#include "reconciler/metrics.h"
#include "reconciler/service.h"
#include "reconciler/service_loop.h"
#include "reconciler/webhook.h"
#include "reconciler/worker.h"

namespace ballast::reconciler {

// What a call needs.
enum class Access {
  kPublic,   // anyone: /healthz, the version, the page's script and style
  kRead,     // every read: documents, history, logs, the page, metrics (viewer, admin)
  kAdmin,    // changes: sync, rollback, unpin
  kJoin,     // registering a node: the join token, that node's own credential, an admin
  kNode,     // the rest of the agent protocol: that node's own credential, an admin
  kWebhook,  // git hosts: the handler checks the signature (reconciler/webhook.h)
  kSecrets,  // not a route's: seeing secret values (environment values) in what is read
};
const char* AccessName(Access access);

// The one authorization decision: may `who` do what `access` names, to `node` (kJoin, kNode:
// the node the call speaks for; empty: whichever, as far as the role goes)?
bool Authorize(const Principal& who, Access access, std::string_view node = {});

// A route's handler: the request, who sent it (already authorised for the route's Access), and
// where the answer goes.
using ApiHandler = std::function<void(const Principal&, const net::Request&, net::Responder)>;

struct Route {
  std::string method;
  std::string path;  // exact, or a prefix ending in "/*" (net::Router)
  Access access;
  ApiHandler handler;
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
  WebhookVerifier* webhook;
  Metrics* metrics;
  NodeCredentials* nodes;
};

// Every route of the reconciler's listener.
std::vector<Route> ApiRouteTable(const ApiDeps& deps);

// The routes, each handler behind `auth` and Authorize: 401 without a valid credential, 403
// when the identity may not; a mutating call (kAdmin) from a browser page of another origin is
// refused (403) before its handler runs.
net::Router BuildRouter(const std::vector<Route>& routes, const Authenticator* auth);

}  // namespace ballast::reconciler
