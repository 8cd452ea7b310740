#include "reconciler/controller.h"

// Stopping a pod without dropping a request. A pod the controller stops (a rolling update's
// old pod, a scale-down, a pruned Deployment) first leaves every Service's endpoints while it
// keeps running; it is taken out of its node's desired set, and so sent SIGTERM, only once
// every ready node's proxy has put that change in place (its heartbeat's servicesVersion) and
// carries no connection to it any more (drainingEndpoints), or once the pod's
// terminationGracePeriodSeconds ran out. Kubernetes sends SIGTERM while the endpoint removal
// is still travelling to the proxies, so users add `preStop: sleep`; here the order is kept.
//
// Versions: each node's desired state is numbered from the controller's start (wall time in
// ms), so that an agent still reporting the version a previous reconciler process sent it is
// never taken as having applied this one's.

#include <algorithm>

namespace ballast::reconciler {

void Controller::StopPod(const std::string& name, int64_t now) {
  auto it = intended_.find(name);
  if (it == intended_.end()) return;
  const model::Pod* reported = nullptr;
  if (auto r = reported_.find(it->second.node); r != reported_.end()) {
    for (const auto& p : r->second) {
      if (p.name == name) reported = &p;
    }
  }
  auto n = nodes_.find(it->second.node);
  // A pod that never served (not running, no host port) or whose node is gone has nothing
  // in flight: it stops at once.
  if (reported == nullptr || reported->terminating || reported->host_ports.empty() ||
      n == nodes_.end() || !NodeIsReady(it->second.node)) {
    stopped_.insert(name);
    intended_.erase(it);
    return;
  }
  Drain d;
  d.node = it->second.node;
  d.desired = std::move(it->second.desired);
  d.desired.draining = true;  // reported terminating from now on (agentapi::DesiredPod)
  const int64_t grace = std::clamp<int64_t>(
      d.desired.template_.spec.termination_grace_period_seconds, 0, kMaxDrainSeconds);
  d.deadline_ms = now + grace * 1000;
  for (const auto& [port_name, host_port] : reported->host_ports) {
    d.endpoints.push_back(n->second.address + ":" + std::to_string(host_port));
  }
  intended_.erase(it);
  draining_[name] = std::move(d);
}

bool Controller::Drained(const Drain& d, int64_t now) const {
  if (!d.recorded) return false;  // no desired state without its endpoints was computed yet
  // After a restart, a node not heard from yet may still route to the pod by what the previous
  // process told it: wait for the nodes it knew (bounded by the grace period, as Settling).
  if (restarted_ && now - start_ms_ < options_.node_lifecycle.grace_period_ms) {
    for (const std::string& n : expected_nodes_) {
      if (!heard_.count(n)) return false;
    }
  }
  for (const auto& [node, need] : d.need) {
    if (!NodeIsReady(node)) continue;  // a silent node's proxy is not waited for
    auto report = proxies_.find(node);
    if (report == proxies_.end() || report->second.services_version == 0) continue;  // older
    auto sent = sent_.find(node);
    const int64_t v = report->second.services_version;
    if (v < need || sent == sent_.end() || v > sent->second.version) return false;
    for (const auto& e : d.endpoints) {
      if (report->second.draining.count(e)) return false;
    }
  }
  return true;
}

int64_t Controller::StepDrains(int64_t now) {
  int64_t wake = 0;
  for (auto it = draining_.begin(); it != draining_.end();) {
    const Drain& d = it->second;
    if (now >= d.deadline_ms || !NodeIsReady(d.node) || Drained(d, now)) {
      stopped_.insert(it->first);
      it = draining_.erase(it);
      continue;
    }
    if (wake == 0 || d.deadline_ms < wake) wake = d.deadline_ms;
    ++it;
  }
  return wake;
}

void Controller::RecordDrainVersions() {
  for (auto& [name, d] : draining_) {
    // A node first heard during the drain is waited for too: its first desired state already
    // leaves the pod out, but its proxy may route by what a previous process told it.
    for (const auto& [node, state] : sent_) d.need.emplace(node, state.version);
    d.recorded = true;
  }
}

}  // namespace ballast::reconciler
