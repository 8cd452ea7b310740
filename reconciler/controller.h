#pragma once

// The reconcile core: a single-threaded state machine fed with events (a source snapshot or a
// source error, an agent registration or heartbeat, a timer tick, an API call) that decides what
// every node should run. It does no I/O and owns no thread: the Service (service.h) calls it from
// its one event-loop thread, runs the blocking git work elsewhere, and ships the decisions
// (per-node desired sets, history appends) out.
//
// State: the latest source snapshot (and the last good one), what is applied (the target the
// pods converge to, from history at start), the live state from the agents' heartbeats, the
// pods this reconciler intends each node to run, the rollout stepper's status per Deployment,
// and the pinned history entry.
//
// Not thread-safe: one thread at a time.

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "agentapi/protocol.h"
#include "clock/clock.h"
#include "diff/plan.h"
#include "model/cluster.h"
#include "model/manifest.h"
#include "model/status.h"
#include "reconciler/health.h"
#include "scheduler/node_lifecycle.h"
#include "scheduler/rollout.h"
#include "sources/git/git_source.h"

namespace ballast::reconciler {

enum class SyncPolicy { kAuto, kManual };

struct ControllerOptions {
  SyncPolicy sync = SyncPolicy::kAuto;
  scheduler::NodeLifecycleOptions node_lifecycle;
  // After a restart with a non-empty history: no pod is started for this long, so every agent
  // gets the time to report what it runs and nothing is started twice. Nodes known before the
  // restart (ExpectNodes) are waited for longer: until each has reported, or for at most the
  // node grace period (after which a silent one is NotReady anyway).
  int64_t adopt_wait_ms = 5000;
  // Within adopt_wait_ms of start, also while nodes are still joining: no pod is started until no
  // new node has registered for this long, so the first placement sees the whole fleet (agents
  // started together register within milliseconds of each other) instead of piling every
  // replica onto whichever node registered first.
  int64_t node_settle_ms = 1000;
  int heartbeat_seconds = 10;
  // Keys the digest of the ConfigMap and Secret values in pod templates (model/config_refs.h):
  // the same across restarts (ServeOptions keeps it in STATE_DIR/config-hash-key).
  std::string config_hash_key;
};

// What the applied state is: the objects the pods converge to and where they come from.
struct AppliedState {
  std::vector<model::Manifest> objects;
  std::vector<model::SourceFile> files;  // the source files, relative to the tracked path
  std::string sha;                       // source commit
};

// A history entry the Service should append (off the loop thread).
struct HistoryAppend {
  std::string sha;
  std::string trigger;
  std::string message;
  std::vector<model::SourceFile> files;
  std::vector<model::Manifest> objects;
  model::Json plan_summary;
  bool history_rewrite = false;
};

// A Deployment whose rollout hit its progress deadline under `ballast.dev/auto-rollback: "true"`:
// the Service restores the newest history entry that ran `to_revision`, through git.
struct AutoRollback {
  model::ObjectKey key;
  std::string from_revision;
  std::string to_revision;
};

class Controller {
 public:
  Controller(ControllerOptions options, const Clock* clock);

  // --- events -------------------------------------------------------------------------------
  // Start-up: what history says was applied last. `templates_from_history` are older applied
  // objects whose Deployment templates are needed to adopt pods of earlier revisions.
  void Restore(AppliedState applied, const std::vector<model::Manifest>& older_objects,
               bool restarted);
  // Start-up: the nodes known before the restart (the node roster). Until each has reported
  // again (or the grace period passed), no pod is placed: a node that has not reported yet may
  // well run the pods a placement would start a second time.
  void ExpectNodes(std::set<std::string> nodes);
  // Every node registered since start, for the roster.
  std::set<std::string> NodeNames() const;
  size_t NodeCount() const { return nodes_.size(); }
  // Pods leaving their Services before they are stopped (drain.cc).
  bool draining() const { return !draining_.empty(); }
  // A successful poll. `trigger` names what caused it ("poll", "webhook", "rollback #3").
  void OnSnapshot(const git::SourceSnapshot& snapshot, const std::string& trigger);
  void OnSourceError(const Status& status);
  // A registration under a name that another address holds while that node is alive (heard
  // from within the grace period) is refused (AlreadyExists): two agents with one --name would
  // take turns owning the node and its pods. Once the holder has been silent for the grace
  // period, a new address may take the name over (a machine whose address changed).
  Status OnRegister(model::Node node);
  // True when `node` is registered and has been heard from within the grace period.
  bool NodeAlive(const std::string& node) const;
  // False when the node is unknown (the agent should register again).
  bool OnHeartbeat(const agentapi::Heartbeat& heartbeat);

  // `ballast sync`: applies the current source revision. FailedPrecondition when pinned or when
  // the source is invalid or not read yet.
  Status SyncNow(const std::string& trigger);
  // Holds `applied` (a history entry's objects) until Unpin: auto-sync pauses.
  void Pin(int64_t id, AppliedState applied);
  void Unpin();
  // The history store has not recorded `pending` applied syncs, failing with `error` (a full
  // disk). Until it has (pending 0), no other revision is applied — auto-sync and `ballast sync`
  // wait — so that every applied state keeps an entry to restore it from; what runs keeps
  // running and being healed.
  void SetHistoryBacklog(size_t pending, std::string error);

  // Runs the loop body: node lifecycle, auto-sync, adoption, rollout steps, placement, plan.
  // Returns when it should run again at the latest (ms since the epoch; 0: no timer needed).
  int64_t Reconcile();

  // --- outputs ------------------------------------------------------------------------------
  // Appends requested since the last call.
  std::vector<HistoryAppend> TakeHistoryAppends();
  // Auto-rollbacks decided since the last call (each (Deployment, revision) once).
  std::vector<AutoRollback> TakeAutoRollbacks();
  // Nodes whose desired set changed since the last call, with their complete desired set. A node
  // appears only once it has reported its pods (so a restarted reconciler adopts them).
  std::map<std::string, agentapi::DesiredState> TakeDesiredChanges();

  // --- views (JSON for the API; rendered in documents.cc) -----------------------------------
  model::Json StatusJson() const;
  // `redact`: secret values replaced (diff/redact.h), for readers who may not see them.
  model::Json PlanJson(bool include_diff, bool redact = false) const;
  // What restoring `objects` (a history entry) would change against what runs now: the plan a
  // rollback to it would show once its commit is read. Objects kept from pruning stay, as they
  // would.
  diff::Plan RestorePlan(const std::vector<model::Manifest>& objects) const;
  model::Json DeploymentsJson() const;
  model::Json ServicesJson() const;
  model::Json PodsJson() const;
  model::Json NodesJson() const;
  // For /metrics: counts by label.
  struct Counts {
    std::map<std::string, int> objects_by_sync, objects_by_health, pods_by_phase;
    int nodes_ready = 0, nodes_total = 0;
    size_t history_pending = 0;  // applied syncs not yet recorded in history
  };
  Counts MetricsCounts() const;
  std::string SyncStatus() const;  // Synced, OutOfSync, Error, Unknown
  Health OverallHealth() const;    // the worst of the applied objects'; Unknown before any
  std::optional<int64_t> pinned() const { return pinned_; }
  const AppliedState& applied() const { return applied_; }
  const std::optional<std::string>& source_sha() const { return source_sha_; }
  const std::string& node_address(const std::string& node) const;
  std::string PodNode(const std::string& pod) const;

  // Where a pod's logs are read: the agent's API URL (node label ballast.dev/agent-api), the
  // pod's namespace and its container (`container`, or the template's first). NotFound naming
  // what is missing.
  struct LogTarget {
    std::string node;
    std::string agent_url;
    std::string namespace_;
    std::string pod;
    std::string container;
  };
  Result<LogTarget> FindLogTarget(const std::string& pod, const std::string& container) const;

 private:
  struct IntendedPod {
    agentapi::DesiredPod desired;
    std::string node;
    int64_t created_ms = 0;
  };
  void Apply(const std::string& trigger);
  // Adoption: the pods `node`'s agent reports that belong to an applied Deployment, at a
  // revision whose template is known, are kept as they run (a restarted reconciler restarts
  // nothing). Pods stopped, lost or terminating are not taken back.
  void Adopt(const std::string& node);
  std::vector<model::Pod> PodView() const;
  // An agent's wall-clock time `agent_time`, sent at its wall time `agent_now`, on this
  // controller's monotonic clock (by its age); 0 stays 0.
  int64_t FromAgent(int64_t agent_time, int64_t agent_now) const;
  // A time on this controller's monotonic clock as wall time, for people; 0 stays 0.
  int64_t ToWall(int64_t local) const;
  // Heard from within the grace period and reporting ready (a node just registered is).
  bool NodeIsReady(const std::string& node) const;
  // desired_tree_'s objects, as values; empty before the first valid revision.
  // git's objects at the desired revision, config hashes bound; made once per revision.
  const std::vector<model::Manifest>& DesiredObjects() const;
  // Puts the objects of `target` whose change the API server would refuse (an immutable field)
  // back as applied, binding config hashes again; returns their plans (which say why).
  std::vector<diff::ObjectPlan> KeepRefused(std::vector<model::Manifest>* target) const;
  void RememberTemplates(const std::vector<model::Manifest>& objects);
  struct Wake;
  class Placer;
  void StepNodeLifecycle(int64_t now, Wake& wake);
  void ForgetStoppedAndPrune(int64_t now);
  bool Settling(int64_t now, Wake& wake) const;
  void StepDeployments(int64_t now, bool settling, Wake& wake);
  void StartPods(const model::ObjectKey& key, const scheduler::PodStart& start,
                 const std::vector<model::Pod>& pods, int64_t now, Placer& placer, Wake& wake);
  // drain.cc: a pod is stopped only once no proxy sends it anything (or its grace ran out).
  static constexpr int64_t kMaxDrainSeconds = 300;
  struct Drain {
    std::string node;
    agentapi::DesiredPod desired;
    int64_t deadline_ms = 0;
    std::vector<std::string> endpoints;   // "ip:port" of its host ports
    bool recorded = false;                // `need` was taken after its endpoints were dropped
    std::map<std::string, int64_t> need;  // node -> first desired version without them
  };
  // Stops an intended pod: at once, or through draining_ when it may have served.
  void StopPod(const std::string& name, int64_t now);
  bool Drained(const Drain& d, int64_t now) const;
  // Stops the drained pods; returns when a deadline falls (0: none).
  int64_t StepDrains(int64_t now);
  void RecordDrainVersions();
  // desired.cc: what each node runs, and the Services with their ready endpoints.
  void ComputeDesired();
  // Sets the pod's config: the applied ConfigMaps and Secrets its template reads (only those:
  // a node learns no other pod's secrets).
  void AddConfig(agentapi::DesiredPod* pod) const;
  // Recomputes what is derived from applied_ (cluster IPs, config sources) after it changed.
  void IndexApplied();
  std::vector<agentapi::DesiredService> DesiredServices() const;
  std::vector<std::string> Endpoints(
      const model::Service& s, const model::ServicePort& port,
      const std::map<std::string, const model::Pod*>& reported_by_name) const;
  void ComputePlan();
  model::LiveState LiveView() const;
  Health HealthOf(const model::Manifest& m) const;
  // Why an object is not Healthy, in kubectl's words ("" when there is nothing to say): the
  // scheduler's reason for unplaced replicas, the rollout's progress, the deadline message.
  std::string HealthMessage(const model::Manifest& m) const;
  std::map<model::ObjectKey, const model::Manifest*> AppliedIndex() const;

  ControllerOptions options_;
  const Clock* clock_;
  int64_t start_ms_ = 0;
  bool restarted_ = false;
  std::set<std::string> expected_nodes_;  // ExpectNodes

  // Source.
  std::shared_ptr<const git::SourceTree> tree_;  // latest snapshot's tree
  git::CommitInfo commit_;
  std::optional<std::string> source_sha_;
  std::string source_trigger_;
  bool history_rewritten_ = false;
  // The last valid source revision (its objects and files). Shared with the source's parse
  // cache rather than copied: at 10,000 objects a copy is ~20 MB.
  std::shared_ptr<const git::SourceTree> desired_tree_;
  // DesiredObjects()'s memo, and the tree it was made from.
  mutable std::vector<model::Manifest> desired_objects_;
  mutable std::shared_ptr<const git::SourceTree> desired_objects_tree_;
  std::string desired_sha_;
  Status source_error_;
  int64_t source_error_since_ms_ = 0;

  // Applied.
  AppliedState applied_;
  // Each applied Service's cluster IP by "namespace/name": derived from applied_ and recomputed
  // wherever applied_ changes (a pass over 10,000 Services takes ~6 ms, too much per step).
  std::map<std::string, std::string> cluster_ips_;
  // Each applied ConfigMap and Secret, as pods receive it; indexed with cluster_ips_.
  std::map<model::ObjectKey, agentapi::PodConfigSource> config_sources_;
  std::optional<int64_t> pinned_;
  size_t history_pending_ = 0;  // SetHistoryBacklog
  std::string history_error_;
  int64_t history_error_since_ms_ = 0;
  std::vector<HistoryAppend> history_appends_;
  std::vector<AutoRollback> auto_rollbacks_;
  std::set<std::string> auto_rollbacks_done_;  // "Deployment ns/name@revision"

  // Live.
  std::map<std::string, model::Node> nodes_;
  std::map<std::string, std::vector<model::Pod>> reported_;  // by node
  std::set<std::string> heard_;                              // nodes with a heartbeat since start
  int64_t last_node_joined_ms_ = 0;  // when a node first registered with this controller
  std::map<std::string, scheduler::NodeHealth> health_;

  // Decisions.
  std::map<std::string, IntendedPod> intended_;  // by pod name
  std::set<std::string> stopped_;
  std::set<std::string> lost_;
  std::map<std::string, Drain> draining_;  // by pod name: still on its node, in no Service
  struct ProxyReport {
    int64_t services_version = 0;
    std::set<std::string> draining;
  };
  std::map<std::string, ProxyReport> proxies_;  // by node, from heartbeats
  int64_t version_base_ = 0;                    // desired versions count up from here
  std::map<model::ObjectKey, scheduler::RolloutStatus> rollouts_;
  std::map<model::ObjectKey, std::string> placement_problems_;
  std::map<std::string, model::PodTemplateSpec> templates_;  // by revision
  diff::RevisionCache revisions_;
  diff::Plan plan_;
  std::map<std::string, agentapi::DesiredState> sent_;
  std::map<std::string, agentapi::DesiredState> changed_;
  uint64_t name_seed_ = 0;
};

}  // namespace ballast::reconciler
