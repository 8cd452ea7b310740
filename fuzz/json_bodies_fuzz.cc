// Every JSON body the reconciler's API and the agent protocol accept, decoded from the same
// bytes: sync and rollback requests, registrations, heartbeats, desired states (what an agent reads
// from a reconciler that may be an impostor), nodes and plans. JSON parse errors are answers, never
// crashes; a heartbeat that decodes must encode and decode again to the same pods.

#include <cstddef>
#include <cstdint>
#include <string>

#include "agentapi/protocol.h"
#include "diff/render.h"
#include "model/cluster.h"
#include "net/http.h"
#include "reconciler/api_bodies.h"

using ballast::model::Json;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  // As the server hands a body to a handler: parsed by net::ParseJsonBody (depth-checked).
  ballast::net::Request request;
  request.method = "POST";
  request.headers = {{"Content-Type", "application/json"}};
  request.body.assign(reinterpret_cast<const char*>(data), size);
  // The reconciler's own POST bodies (sync, rollback), as the handlers decode them.
  (void)ballast::reconciler::ParseSyncBody(request);
  (void)ballast::reconciler::ParseRollbackBody(request);
  auto parsed = ballast::net::ParseJsonBody(request);
  if (!parsed.ok()) return 0;
  const Json& j = *parsed;
  namespace api = ballast::agentapi;
  (void)api::RegisterRequestFromJson(j);
  (void)api::RegisterResponseFromJson(j);
  (void)api::DesiredPodFromJson(j);
  (void)api::DesiredServiceFromJson(j);
  auto desired = api::DesiredStateFromJson(j);
  if (desired.ok()) {
    // The ConfigMaps and Secrets go once per state and back to the pods that read them: what
    // was decoded must survive its own encoding exactly.
    auto again = api::DesiredStateFromJson(Json::parse(api::ToJson(*desired).dump()));
    if (!again.ok() || !(*again == *desired)) __builtin_trap();
  }
  (void)ballast::model::NodeFromJson(j);
  (void)ballast::diff::PlanFromJson(j);
  auto hb = api::HeartbeatFromJson(j);
  if (hb.ok()) {
    auto again = api::HeartbeatFromJson(Json::parse(api::ToJson(*hb).dump()));
    if (!again.ok() || again->pods.size() != hb->pods.size() || again->node.name != hb->node.name) {
      __builtin_trap();  // a heartbeat that does not survive its own encoding
    }
  }
  return 0;
}
