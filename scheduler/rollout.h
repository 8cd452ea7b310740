#pragma once

// The rolling-update stepper: Kubernetes' Deployment controller as a pure function.
//
// Each call looks at one Deployment, the pods it owns (every revision, with readiness) and the
// status the previous call returned, and says what to do next: start N pods of a revision, stop
// these pods. The caller applies the actions (through the agents), waits for something to
// change (a heartbeat, a pod becoming ready, `requeue_at_ms`), and calls again. A ReplicaSet of
// Kubernetes is here simply "the pods of one revision": its size is the number of those pods
// that are not terminating.
//
// Semantics follow kube-controller-manager's deployment controller:
// - RollingUpdate: the new revision is scaled up while the total stays at most
//   replicas + maxSurge, old revisions are scaled down (unhealthy pods first) while the
//   available pods stay at least replicas - maxUnavailable; one kind of action per step, as the
//   controller returns after scaling the new ReplicaSet. maxSurge rounds up, maxUnavailable
//   down, and both 0 means maxUnavailable 1. Terminating pods are not counted.
// - Rollover: a template change mid-rollout makes the half-rolled revision an old one; it is
//   scaled down with the others (its unavailable pods at once).
// - Recreate: every old pod is stopped, and the new revision starts only when none is left
//   (terminating ones included).
// - Scaling (spec.replicas changed since the previous step) mid-rollout is proportional across
//   revisions, larger ones first, as the controller's scale().
// - Paused: no rollout; scaling still applies. Progressing becomes Unknown/DeploymentPaused,
//   and Unknown/DeploymentResumed when resumed.
// - A pod is available when ready for more than minReadySeconds.
// - Conditions with Kubernetes' reasons and messages: Available (MinimumReplicasAvailable /
//   MinimumReplicasUnavailable) and Progressing (NewReplicaSetCreated, ReplicaSetUpdated,
//   NewReplicaSetAvailable, ProgressDeadlineExceeded, DeploymentPaused, DeploymentResumed).
//   The progress deadline counts from the last time progress was seen.
// - Pods to stop are chosen as a ReplicaSet picks pods to delete: unscheduled, then pending,
//   then not ready, then not yet available (ballast ranks this too, so that the availability
//   bound holds whichever pods are ready), then doubled up on a node, then ready more recently,
//   then more restarts, then newer.
// - Failed and Succeeded pods are stopped and replaced.
//
// Beyond Kubernetes: with the annotation `ballast.dev/auto-rollback: "true"`, a rollout that hit
// ProgressDeadlineExceeded reports `rollback_to`, the last revision that was fully available.
// The stepper does not roll back by itself; the reconciler decides.
//
// Pure: no I/O, no clock (now is a parameter), deterministic.

#include <cstdint>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "model/cluster.h"
#include "model/object.h"

namespace ballast::scheduler {

// Condition types, reasons and statuses, in Kubernetes' words.
inline constexpr char kConditionProgressing[] = "Progressing";
inline constexpr char kConditionAvailable[] = "Available";
inline constexpr char kReasonNewReplicaSetCreated[] = "NewReplicaSetCreated";
inline constexpr char kReasonFoundNewReplicaSet[] = "FoundNewReplicaSet";
inline constexpr char kReasonReplicaSetUpdated[] = "ReplicaSetUpdated";
inline constexpr char kReasonNewReplicaSetAvailable[] = "NewReplicaSetAvailable";
inline constexpr char kReasonProgressDeadlineExceeded[] = "ProgressDeadlineExceeded";
inline constexpr char kReasonMinimumReplicasAvailable[] = "MinimumReplicasAvailable";
inline constexpr char kReasonMinimumReplicasUnavailable[] = "MinimumReplicasUnavailable";
inline constexpr char kReasonDeploymentPaused[] = "DeploymentPaused";
inline constexpr char kReasonDeploymentResumed[] = "DeploymentResumed";

struct DeploymentCondition {
  std::string type;    // Progressing, Available
  std::string status;  // True, False, Unknown
  std::string reason;
  std::string message;
  int64_t last_update_ms = 0;
  int64_t last_transition_ms = 0;
  friend bool operator==(const DeploymentCondition&, const DeploymentCondition&) = default;
};

// What a Deployment's status reports, plus what the stepper carries from one step to the next.
// Start with a default-constructed value; afterwards pass back the status the last step
// returned. It can be lost (e.g. on restart): the next step then starts afresh, which only
// delays a progress deadline and skips one proportional scaling.
struct RolloutStatus {
  int32_t replicas = 0;          // pods not terminating, every revision
  int32_t updated_replicas = 0;  // ... of the current revision
  int32_t ready_replicas = 0;
  int32_t available_replicas = 0;
  int32_t unavailable_replicas = 0;  // max(0, spec.replicas - available)
  std::vector<DeploymentCondition> conditions;
  // The last revision that was fully rolled out and available; what auto-rollback goes back to.
  std::string complete_revision;
  // spec.replicas and spec.replicas + maxSurge at the previous step; -1 before the first.
  int32_t observed_replicas = -1;
  int32_t observed_max_replicas = -1;

  // The condition of that type, or nullptr.
  const DeploymentCondition* Find(std::string_view type) const;
  friend bool operator==(const RolloutStatus&, const RolloutStatus&) = default;
};

struct PodStart {
  std::string revision;
  int32_t count = 0;
  friend bool operator==(const PodStart&, const PodStart&) = default;
};

struct RolloutStep {
  // Pods to start, per revision. Usually the current revision; an old revision only when the
  // Deployment is scaled up mid-rollout (proportional scaling, as Kubernetes does), in which
  // case the caller starts copies of that revision's existing pods. Name them with NewPodNames.
  std::vector<PodStart> start;
  std::vector<std::string> stop;  // names of pods to stop, in the order they were chosen
  RolloutStatus status;           // pass back to the next call
  // Set when auto-rollback applies: the revision to go back to.
  std::string rollback_to;
  // When something time-based (minReadySeconds, the progress deadline) next changes the
  // outcome, in ms since the epoch; 0 when nothing is pending. Step again then at the latest.
  int64_t requeue_at_ms = 0;
};

// Kubernetes' ResolveFenceposts: maxSurge rounded up, maxUnavailable rounded down, both 0
// giving maxUnavailable 1. Zero for both when the strategy is not RollingUpdate. Malformed values
// count as 0.
struct RolloutBounds {
  int32_t max_surge = 0;
  int32_t max_unavailable = 0;
};
RolloutBounds ResolveBounds(const model::DeploymentSpec& spec);

// `status` as the Kubernetes API shows a Deployment's status: replicas, updatedReplicas,
// readyReplicas, availableReplicas, unavailableReplicas (counts that are 0 left out, as the API
// server does) and conditions with lastUpdateTime / lastTransitionTime in RFC 3339 (seconds, UTC).
// The stepper's own bookkeeping (complete_revision, observed_*) is not part of it.
model::Json StatusToJson(const RolloutStatus& status);

// One step for `deployment`, whose current pod template hash is `revision`. `pods` may hold
// other Deployments' pods too; only those with this Deployment's namespace and name count.
// `now_ms` is the time in ms since the epoch.
RolloutStep StepRollout(const model::Deployment& deployment, std::string_view revision,
                        const std::vector<model::Pod>& pods, const RolloutStatus& previous,
                        int64_t now_ms);

// `count` pod names "<deployment>-<revision>-<5 chars>", the suffix from Kubernetes' alphabet
// "bcdfghjklmnpqrstvwxz2456789", derived from `seed` (same seed, same names) and different from
// every name in `taken` and from each other. Fewer names come back only when the 27^5
// suffixes are nearly exhausted.
std::vector<std::string> NewPodNames(std::string_view deployment, std::string_view revision,
                                     int32_t count, const std::set<std::string>& taken,
                                     uint64_t seed);

}  // namespace ballast::scheduler
