#include "reconciler/controller.h"

// What each node should run: its intended pods, and every Service with its cluster IP and the
// ready endpoints on all nodes. The result goes to the agents (TakeDesiredChanges).

#include <algorithm>

#include "model/config_refs.h"

namespace ballast::reconciler {
namespace {

// The key of the host port an agent reports for a Service's targetPort: the container port's
// name when the target is a number that a named port declares, else the name or number as is.
std::string HostPortKey(const model::ServicePort& port, const model::PodTemplateSpec& t) {
  if (!port.target_port.is_int()) return port.target_port.str_value();
  const int64_t target = port.target_port.int_value();
  std::string key = std::to_string(target);
  for (const auto& c : t.spec.containers) {
    for (const auto& cp : c.ports) {
      if (cp.container_port == target && !cp.name.empty()) key = cp.name;
    }
  }
  return key;
}

bool Selects(const model::StringMap& selector, const model::StringMap& labels) {
  if (selector.empty()) return false;
  for (const auto& [k, v] : selector) {
    auto l = labels.find(k);
    if (l == labels.end() || l->second != v) return false;
  }
  return true;
}

}  // namespace

std::vector<std::string> Controller::Endpoints(
    const model::Service& s, const model::ServicePort& port,
    const std::map<std::string, const model::Pod*>& reported_by_name) const {
  std::vector<std::string> endpoints;
  for (const auto& [name, ip] : intended_) {
    if (ip.desired.namespace_ != s.metadata.namespace_) continue;
    if (!Selects(s.spec.selector, ip.desired.template_.labels)) continue;
    auto r = reported_by_name.find(name);
    if (r == reported_by_name.end() || !r->second->ready || r->second->terminating) continue;
    // A pod on a node that stopped heartbeating is not an endpoint (as Kubernetes marks it not
    // ready): a dead machine does not refuse connections, it lets them time out.
    if (!NodeIsReady(ip.node)) continue;
    auto hp = r->second->host_ports.find(HostPortKey(port, ip.desired.template_));
    auto n = nodes_.find(ip.node);
    if (hp == r->second->host_ports.end() || n == nodes_.end()) continue;
    endpoints.push_back(n->second.address + ":" + std::to_string(hp->second));
  }
  std::sort(endpoints.begin(), endpoints.end());
  return endpoints;
}

std::vector<agentapi::DesiredService> Controller::DesiredServices() const {
  std::vector<agentapi::DesiredService> services;
  std::map<std::string, const model::Pod*> reported_by_name;
  for (const auto& [node, pods] : reported_) {
    for (const auto& p : pods) reported_by_name[p.name] = &p;
  }
  for (const auto& m : applied_.objects) {
    const auto* s = m.service();
    if (s == nullptr) continue;
    agentapi::DesiredService ds;
    ds.name = s->metadata.name;
    ds.namespace_ = s->metadata.namespace_;
    if (auto ip = cluster_ips_.find(ds.namespace_ + "/" + ds.name); ip != cluster_ips_.end()) {
      ds.cluster_ip = ip->second;
    }
    for (const auto& port : s->spec.ports) {
      agentapi::DesiredServicePort dp;
      dp.name = port.name;
      dp.protocol = port.protocol;
      dp.port = port.port;
      dp.node_port = port.node_port;
      dp.endpoints = Endpoints(*s, port, reported_by_name);
      ds.ports.push_back(std::move(dp));
    }
    services.push_back(std::move(ds));
  }
  return services;
}

void Controller::AddConfig(agentapi::DesiredPod* pod) const {
  pod->config.clear();
  if (config_sources_.empty()) return;
  for (const auto& [kind, name] : model::ReferencedConfig(pod->template_.spec)) {
    auto it = config_sources_.find({kind, pod->namespace_, name});
    if (it != config_sources_.end()) pod->config.push_back(it->second);
  }
}

void Controller::ComputeDesired() {
  const std::vector<agentapi::DesiredService> services = DesiredServices();
  for (const auto& node : heard_) {
    agentapi::DesiredState state;
    state.node = node;
    for (const auto& [name, ip] : intended_) {
      if (ip.node == node) state.pods.push_back(ip.desired);
    }
    // A draining pod keeps running until no proxy sends it anything (drain.cc).
    for (const auto& [name, d] : draining_) {
      if (d.node == node) state.pods.push_back(d.desired);
    }
    for (auto& pod : state.pods) AddConfig(&pod);
    std::sort(state.pods.begin(), state.pods.end(),
              [](const auto& a, const auto& b) { return a.name < b.name; });
    state.services = services;
    auto it = sent_.find(node);
    if (it != sent_.end()) {
      state.version = it->second.version;
      if (it->second == state) continue;
    }
    state.version = (it != sent_.end() ? it->second.version : version_base_) + 1;
    sent_[node] = state;
    changed_[node] = state;
  }
}

}  // namespace ballast::reconciler
