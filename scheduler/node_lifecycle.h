#pragma once

// Node failure, as Kubernetes' node lifecycle controller handles it, as a pure function of the
// live state and the time.
//
// - A node not heard from for longer than the grace period (default 40 s, the controller's
//   node-monitor-grace-period) is NotReady from then on.
// - Pods on a node that has been NotReady for the toleration time (default 300 s, the
//   tolerationSeconds Kubernetes gives every pod for not-ready/unreachable) are lost: the caller
//   counts them as gone, so the rollout stepper starts replacements elsewhere, and remembers
//   their names.
// - When such a node comes back and reports the lost pods again, they are surplus copies: the
//   caller stops them, so each Deployment goes back to its desired count.
// A node whose agent reports itself not ready while still sending heartbeats is NotReady (and
// placement avoids it) but its pods are not replaced: the agent still runs them.
// Set model::Node::ready from NodeHealth::ready before building a Scheduler: placement treats a
// node that is not ready as tainted node.kubernetes.io/not-ready:NoSchedule.
//
// Pure: no I/O, no clock; the same input gives the same decision.

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "model/cluster.h"

namespace ballast::scheduler {

struct NodeLifecycleOptions {
  int64_t grace_period_ms = 40'000;
  int64_t toleration_ms = 300'000;
};

struct NodeHealth {
  std::string node;
  bool ready = false;              // heard from within the grace period and reporting ready
  bool heartbeat_lost = false;     // not heard from for longer than the grace period
  int64_t not_ready_since_ms = 0;  // when the heartbeat went stale; 0 unless heartbeat_lost
  friend bool operator==(const NodeHealth&, const NodeHealth&) = default;
};

struct NodeLifecycleDecision {
  std::vector<NodeHealth> nodes;  // every node, in name order
  // Pods (names) newly lost: on a node whose heartbeat has been lost for the toleration time,
  // or on a node that is not in `nodes` at all. Pods already in `lost` are not repeated.
  std::vector<std::string> newly_lost;
  // Pods in `lost` that a node with a fresh heartbeat reports again: surplus copies to stop.
  // Once stopped (gone from the reports) they show up in `forget`.
  std::vector<std::string> stop;
  // Names in `lost` that no node reports any more: the caller may forget them.
  std::vector<std::string> forget;
  // When the decision changes next if nothing else does (a heartbeat going stale, a toleration
  // running out), in ms since the epoch; 0 when nothing is pending.
  int64_t next_check_ms = 0;
};

// `lost`: the names the caller was told earlier (newly_lost) and has not forgotten yet.
// Pods without a node (not yet placed) are ignored.
NodeLifecycleDecision EvaluateNodes(const std::map<std::string, model::Node>& nodes,
                                    const std::vector<model::Pod>& pods,
                                    const std::set<std::string>& lost, int64_t now_ms,
                                    const NodeLifecycleOptions& options = {});

}  // namespace ballast::scheduler
