#include "reconciler/controller.h"

// The Controller's views as the API's JSON documents (status, plan, deployments, services,
// pods, nodes) and the counts /metrics shows: rendering only, no decision is made here. The
// state machine is in controller.cc.

#include <algorithm>

#include "diff/redact.h"
#include "diff/render.h"
#include "model/codec.h"
#include "model/rfc3339.h"
#include "net/http.h"
#include "scheduler/service_ips.h"

namespace ballast::reconciler {

using model::Json;

std::string Controller::HealthMessage(const model::Manifest& m) const {
  const auto* d = m.deployment();
  if (d == nullptr) return m.is_supported() ? "" : "not run by ballast";
  if (auto problem = placement_problems_.find(m.key()); problem != placement_problems_.end()) {
    return problem->second;
  }
  if (d->spec.paused) return "Deployment is paused";
  auto it = rollouts_.find(m.key());
  if (it == rollouts_.end()) return "";
  const auto& st = it->second;
  if (const auto* c = st.Find(scheduler::kConditionProgressing);
      c != nullptr && c->reason == scheduler::kReasonProgressDeadlineExceeded) {
    return c->message;
  }
  // kubectl rollout status' wording, so the next step is obvious.
  const int32_t want = d->spec.replicas;
  if (st.updated_replicas < want) {
    return std::to_string(st.updated_replicas) + " of " + std::to_string(want) +
           " updated replicas";
  }
  if (st.replicas > st.updated_replicas) {
    return std::to_string(st.replicas - st.updated_replicas) +
           " old replicas are pending termination";
  }
  if (st.available_replicas < want) {
    return std::to_string(st.available_replicas) + " of " + std::to_string(want) +
           " updated replicas are available";
  }
  return "";
}

model::Json Controller::StatusJson() const {
  const int64_t now = clock_->NowMs();
  Json errors = Json::array();
  Json warnings = Json::array();  // of the source revision, applied or not
  if (tree_) {
    for (const auto& d : tree_->diagnostics) {
      (d.is_error() ? errors : warnings)
          .push_back({{"file", d.where.file},
                      {"line", d.where.line},
                      {"column", d.where.column},
                      {"field", d.field},
                      {"message", d.message}});
    }
  }
  Json source_error = nullptr;
  if (!source_error_.ok()) {
    source_error = {{"message", source_error_.message()},
                    {"since", model::FormatRfc3339(ToWall(source_error_since_ms_))},
                    {"ageSeconds", (now - source_error_since_ms_) / 1000}};
  }
  Json objects = Json::array();
  const auto applied = AppliedIndex();
  for (const auto& o : plan_.objects) {
    auto found = applied.find(o.key);
    const auto* m = found == applied.end() ? nullptr : found->second;
    std::string sync = o.action == diff::Action::kUnsupported ? "Unknown"
                       : o.in_sync()                          ? "Synced"
                                                              : "OutOfSync";
    objects.push_back({{"kind", o.key.kind},
                       {"namespace", o.key.namespace_},
                       {"name", o.key.name},
                       {"action", diff::ActionName(o.action)},
                       {"sync", sync},
                       {"health", m ? HealthName(HealthOf(*m)) : "Missing"},
                       {"message", m ? HealthMessage(*m) : ""}});
  }
  Json history_error = nullptr;
  if (history_pending_ > 0) {
    history_error = {{"message", history_error_},
                     {"pending", history_pending_},
                     {"since", model::FormatRfc3339(ToWall(history_error_since_ms_))},
                     {"ageSeconds", (now - history_error_since_ms_) / 1000}};
  }
  return {{"revision", source_sha_.value_or("")},
          {"appliedRevision", applied_.sha},
          {"sync", SyncStatus()},
          {"health", HealthName(OverallHealth())},
          {"errors", errors},
          {"warnings", warnings},
          {"pinned", pinned_ ? Json(*pinned_) : Json(nullptr)},
          {"syncPolicy", options_.sync == SyncPolicy::kAuto ? "auto" : "manual"},
          {"sourceError", source_error},
          {"historyError", history_error},
          {"commit",
           {{"sha", commit_.sha}, {"summary", commit_.Summary()}, {"author", commit_.author_name}}},
          {"objects", objects}};
}

model::Json Controller::PlanJson(bool include_diff, bool redact) const {
  diff::JsonOptions o;
  o.include_diff = include_diff;
  // A Secret's data reaches nobody; environment values only those who may see secrets.
  const diff::Plan plan = redact ? diff::Redacted(plan_) : diff::WithoutSecretData(plan_);
  Json j = diff::ToJson(plan, o);
  j["revision"] = source_sha_.value_or("");
  j["appliedRevision"] = applied_.sha;
  j["pinned"] = pinned_ ? Json(*pinned_) : Json(nullptr);
  // The plan in words, rendered once here (diff::RenderText, as `ballast plan` prints it): the
  // status page shows this text rather than rendering the plan again.
  j["text"] = diff::RenderText(plan);
  return j;
}

model::Json Controller::DeploymentsJson() const {
  Json items = Json::array();
  for (const auto& m : applied_.objects) {
    const auto* d = m.deployment();
    if (d == nullptr) continue;
    auto it = rollouts_.find(m.key());
    scheduler::RolloutStatus st = it == rollouts_.end() ? scheduler::RolloutStatus{} : it->second;
    Json conditions = Json::array();
    for (const auto& c : st.conditions) {
      conditions.push_back(
          {{"type", c.type}, {"status", c.status}, {"reason", c.reason}, {"message", c.message}});
    }
    const auto* o = plan_.Find(m.key());
    auto problem = placement_problems_.find(m.key());
    items.push_back(
        {{"name", d->metadata.name},
         {"namespace", d->metadata.namespace_},
         {"replicas", d->spec.replicas},
         {"currentReplicas", st.replicas},
         {"updatedReplicas", st.updated_replicas},
         {"readyReplicas", st.ready_replicas},
         {"availableReplicas", st.available_replicas},
         {"revision", model::PodTemplateHash(d->spec.template_)},
         {"sync", o == nullptr || o->in_sync() ? "Synced" : "OutOfSync"},
         {"health", HealthName(HealthOf(m))},
         {"conditions", conditions},
         {"unschedulable",
          problem == placement_problems_.end() ? Json(nullptr) : Json(problem->second)}});
  }
  return {{"items", items}};
}

namespace {

// As Kubernetes shows it: the address, or "None" for a headless Service.
std::string ClusterIPText(const std::map<std::string, std::string>& ips, const model::Service& s) {
  auto it = ips.find(s.metadata.namespace_ + "/" + s.metadata.name);
  return it == ips.end() || it->second.empty() ? scheduler::kClusterIPNone : it->second;
}

}  // namespace

model::Json Controller::ServicesJson() const {
  Json items = Json::array();
  std::map<std::string, agentapi::DesiredService> by_name;
  for (const auto& [node, st] : sent_) {
    for (const auto& s : st.services) by_name[s.namespace_ + "/" + s.name] = s;
  }
  for (const auto& m : applied_.objects) {
    const auto* s = m.service();
    if (s == nullptr) continue;
    Json ports = Json::array();
    Json endpoints = Json::array();
    auto ds = by_name.find(s->metadata.namespace_ + "/" + s->metadata.name);
    for (const auto& p : s->spec.ports) {
      ports.push_back({{"name", p.name},
                       {"protocol", p.protocol},
                       {"port", p.port},
                       {"targetPort", p.target_port.ToString()},
                       {"nodePort", p.node_port}});
    }
    if (ds != by_name.end()) {
      for (const auto& p : ds->second.ports) {
        for (const auto& e : p.endpoints) endpoints.push_back(e);
      }
    }
    items.push_back({{"name", s->metadata.name},
                     {"namespace", s->metadata.namespace_},
                     {"type", s->spec.type},
                     {"clusterIP", ClusterIPText(cluster_ips_, *s)},
                     {"selector", s->spec.selector},
                     {"ports", ports},
                     {"endpoints", endpoints}});
  }
  return {{"items", items}};
}

model::Json Controller::PodsJson() const {
  Json items = Json::array();
  for (const auto& p : PodView()) {
    Json j = model::ToJson(p);
    j["readySinceMs"] = ToWall(p.ready_since_ms);
    j["createdMs"] = ToWall(p.created_ms);
    j["lost"] = lost_.count(p.name) > 0;
    // What its node last said, no longer vouched for: not ready, as kubectl shows such pods.
    if (!p.node.empty() && reported_.count(p.node) && !NodeIsReady(p.node)) {
      j["ready"] = false;
      j["nodeReady"] = false;
      if (j.contains("containers") && j["containers"].is_array()) {
        for (auto& c : j["containers"]) c["ready"] = false;
      }
    }
    items.push_back(std::move(j));
  }
  std::sort(items.begin(), items.end(), [](const Json& a, const Json& b) {
    return std::make_pair(a.value("namespace", ""), a.value("name", "")) <
           std::make_pair(b.value("namespace", ""), b.value("name", ""));
  });
  return {{"items", items}};
}

model::Json Controller::NodesJson() const {
  Json items = Json::array();
  std::map<std::string, int> pods_on;
  for (const auto& [name, ip] : intended_) ++pods_on[ip.node];
  for (const auto& [name, n] : nodes_) {
    auto h = health_.find(name);
    bool ready = h != health_.end() ? h->second.ready : n.ready;
    Json capacity = Json::object();
    for (const auto& [r, q] : n.allocatable) capacity[r] = q.ToString();
    items.push_back({{"name", n.name},
                     {"address", n.address},
                     {"ready", ready},
                     // Until then this reconciler lists none of the node's pods (after a
                     // restart: not gone, just not reported yet).
                     {"podsReported", heard_.count(name) > 0},
                     {"pods", pods_on[name]},
                     {"allocatable", capacity},
                     {"labels", n.labels},
                     {"runtimes", n.runtimes},
                     {"agentVersion", n.agent_version},
                     {"lastHeartbeat", model::FormatRfc3339(ToWall(n.last_heartbeat_ms))}});
  }
  return {{"items", items}};
}

Controller::Counts Controller::MetricsCounts() const {
  Counts c;
  c.history_pending = history_pending_;
  const auto applied = AppliedIndex();
  for (const auto& o : plan_.objects) {
    ++c.objects_by_sync[o.in_sync() ? "Synced" : "OutOfSync"];
    auto found = applied.find(o.key);
    const auto* m = found == applied.end() ? nullptr : found->second;
    ++c.objects_by_health[m ? HealthName(HealthOf(*m)) : "Missing"];
  }
  for (const auto& p : PodView()) ++c.pods_by_phase[model::PodPhaseName(p.phase)];
  for (const auto& [name, n] : nodes_) {
    ++c.nodes_total;
    auto h = health_.find(name);
    if (h != health_.end() && h->second.ready) ++c.nodes_ready;
  }
  return c;
}

const std::string& Controller::node_address(const std::string& node) const {
  static const std::string kEmpty;
  auto it = nodes_.find(node);
  return it == nodes_.end() ? kEmpty : it->second.address;
}

Result<Controller::LogTarget> Controller::FindLogTarget(const std::string& pod,
                                                        const std::string& container) const {
  LogTarget t;
  t.pod = pod;
  t.container = container;
  std::string node;
  if (auto it = intended_.find(pod); it != intended_.end()) {
    node = it->second.node;
    t.namespace_ = it->second.desired.namespace_;
    if (t.container.empty() && !it->second.desired.template_.spec.containers.empty()) {
      t.container = it->second.desired.template_.spec.containers[0].name;
    }
  } else {
    for (const auto& [n, pods] : reported_) {
      for (const auto& p : pods) {
        if (p.name != pod) continue;
        node = n;
        t.namespace_ = p.namespace_;
        if (t.container.empty() && !p.containers.empty()) t.container = p.containers[0].name;
      }
    }
  }
  if (node.empty()) return NotFound("pod " + pod + " not found");
  t.node = node;
  if (t.container.empty()) return NotFound("pod " + pod + ": no container known");
  auto n = nodes_.find(node);
  if (n == nodes_.end()) return NotFound("pod " + pod + ": node " + node + " is not registered");
  auto api = n->second.labels.find("ballast.dev/agent-api");
  if (api == n->second.labels.end() || api->second.empty()) {
    return NotFound("pod " + pod + ": the agent of node " + node + " serves no logs");
  }
  // Only the agent itself is ever asked: a URL at the node's own address, nothing else (a node
  // could otherwise name any host and have the reconciler fetch it).
  auto url = net::ParseUrl(api->second);
  if (!url.ok() || url->host != n->second.address || url->target != "/") {
    return FailedPrecondition("pod " + pod + ": the agent of node " + node +
                              " names a log server that is not at the node's address " +
                              n->second.address);
  }
  t.agent_url = url->scheme + "://" + url->HostPort();
  return t;
}

std::string Controller::PodNode(const std::string& pod) const {
  auto it = intended_.find(pod);
  if (it != intended_.end()) return it->second.node;
  for (const auto& [node, pods] : reported_) {
    for (const auto& p : pods) {
      if (p.name == pod) return node;
    }
  }
  return "";
}

}  // namespace ballast::reconciler
