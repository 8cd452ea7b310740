#include "scheduler/node_lifecycle.h"

#include <limits>

#include "scheduler/saturating.h"

namespace ballast::scheduler {
NodeLifecycleDecision EvaluateNodes(const std::map<std::string, model::Node>& nodes,
                                    const std::vector<model::Pod>& pods,
                                    const std::set<std::string>& lost, int64_t now_ms,
                                    const NodeLifecycleOptions& options) {
  NodeLifecycleDecision d;
  auto consider = [&](int64_t t) {
    if (t > now_ms && (d.next_check_ms == 0 || t < d.next_check_ms)) d.next_check_ms = t;
  };
  std::map<std::string, const NodeHealth*> health;
  d.nodes.reserve(nodes.size());
  for (const auto& [name, node] : nodes) {
    NodeHealth h;
    h.node = name;
    const int64_t stale_at = SaturatingAdd(node.last_heartbeat_ms, options.grace_period_ms);
    // Stale strictly after the grace period, as the controller's probeTimestamp+grace < now.
    h.heartbeat_lost = stale_at < now_ms;
    h.ready = node.ready && !h.heartbeat_lost;
    if (h.heartbeat_lost) {
      h.not_ready_since_ms = stale_at;
      consider(SaturatingAdd(stale_at, options.toleration_ms));
    } else {
      consider(SaturatingAdd(stale_at, 1));
    }
    d.nodes.push_back(std::move(h));
  }
  for (const auto& h : d.nodes) health[h.node] = &h;

  std::set<std::string> reported;
  for (const model::Pod& p : pods) {
    if (p.node.empty()) continue;
    reported.insert(p.name);
    auto it = health.find(p.node);
    const bool is_lost = lost.count(p.name) > 0;
    if (it == health.end()) {
      if (!is_lost) d.newly_lost.push_back(p.name);
      continue;
    }
    const NodeHealth& h = *it->second;
    if (h.heartbeat_lost) {
      if (!is_lost && now_ms >= SaturatingAdd(h.not_ready_since_ms, options.toleration_ms)) {
        d.newly_lost.push_back(p.name);
      }
    } else if (is_lost) {
      d.stop.push_back(p.name);
    }
  }
  for (const std::string& name : lost) {
    if (!reported.count(name)) d.forget.push_back(name);
  }
  return d;
}

}  // namespace ballast::scheduler
