#pragma once

// The plan: what applying the desired state (git) would change, object by object, and why the
// cluster is out of sync even when git did not change (drift in the live state).
//
// Pure: values in, a value out. No I/O, no threads, no clock.
//
//   desired       the manifests at the source revision (parsed, defaulted, validated)
//   last_applied  the manifests recorded by the last sync (history); empty before the first
//   live          what the agents report (nodes, pods); nullptr when unknown (offline plans)
//
// Objects are compared as model::CanonicalJson documents, so defaults, map order, keyed list
// order (containers and env by name, ports by port/protocol) and quantity spelling ("1000m" vs
// "1") never show as changes. On top of that diff/ strips what the API server owns (status,
// metadata.uid/resourceVersion/generation/creationTimestamp/managedFields and kubectl's
// last-applied annotation) and the paths the user asked to ignore.

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "model/cluster.h"
#include "model/object.h"
#include "model/status.h"

namespace ballast::diff {

enum class Action {
  kCreate,        // in git, not applied yet
  kUpdate,        // in git and applied, with differences
  kDelete,        // applied (or pods running) but no longer in git: pruned
  kUnchanged,     // in git and applied, no difference (may still have drift)
  kPruneSkipped,  // no longer in git, but annotated ballast.dev/prune: "false": kept
  kUnsupported,   // a kind ballast does not run: listed, never applied
  kRefused,       // a change the API server would reject (immutable field): not applied
};
// "create", "update", "delete", "unchanged", "pruneSkipped", "unsupported", "refused".
const char* ActionName(Action action);

// How an update reaches the running pods.
enum class Rollout {
  kNone,           // nothing to do for the pods (create, delete, unchanged, Services)
  kInPlace,        // no new revision: a scale, labels, annotations, Service ports/selector
  kRollingUpdate,  // the pod template changed: a new revision, rolled out step by step
  kRecreate,       // the pod template changed under strategy Recreate
};
// "none", "inPlace", "rollingUpdate", "recreate".
const char* RolloutName(Rollout rollout);

enum class ChangeOp { kAdd, kRemove, kReplace };
const char* ChangeOpName(ChangeOp op);  // "add", "remove", "replace"

// One difference between the applied and the desired normalized object. Differences start at
// the outermost field that differs: an added container is one change whose new_value is the
// whole container.
struct FieldChange {
  // JSON pointer into the normalized document (index of the desired side for list items,
  // of the applied side for removed items): "/spec/template/spec/containers/0/image".
  std::string path;
  // The same for people, list items by key: "spec.template.spec.containers[web].image".
  std::string field;
  ChangeOp op = ChangeOp::kReplace;
  model::Json old_value;        // null for kAdd
  model::Json new_value;        // null for kRemove
  bool forces_rollout = false;  // under spec.template of a Deployment
  friend bool operator==(const FieldChange&, const FieldChange&) = default;
};

enum class DriftKind {
  kReplicasMissing,  // fewer pods of the applied revision running than replicas
  kExtraReplicas,    // more than replicas
  kOldRevision,      // pods of another revision still running
  kNodeGone,         // pods on a node that no longer reports
  kNodeNotReady,     // pods on a node that reports NotReady
  kOrphanPods,       // pods of a Deployment that is neither in git nor applied
};
// "ReplicasMissing", "ExtraReplicas", "OldRevision", "NodeGone", "NodeNotReady", "OrphanPods".
const char* DriftKindName(DriftKind kind);

// Why the live state differs from the applied state.
struct Drift {
  DriftKind kind = DriftKind::kReplicasMissing;
  std::string message;            // "replicas missing: 2 of 3 running"
  std::vector<std::string> pods;  // the pods concerned, sorted
  friend bool operator==(const Drift&, const Drift&) = default;
};

struct ObjectPlan {
  model::ObjectKey key;
  std::string api_version;
  Action action = Action::kUnchanged;
  Rollout rollout = Rollout::kNone;
  // Deployments: pod template hashes (model::PodTemplateHash) of the applied and the desired
  // template; empty when that side is absent.
  std::string old_revision;
  std::string new_revision;
  std::vector<FieldChange> changes;  // kUpdate and kRefused
  std::vector<Drift> drift;
  // kRefused: the API server's words ("spec.selector: Invalid value: ...: field is
  // immutable"); kUnsupported / kPruneSkipped / kDelete of orphans: why.
  std::string message;
  std::vector<std::string> warnings;  // e.g. a malformed ignore-differences pointer
  // The normalized documents compared (ignored fields removed); null when absent. Kept for
  // every action except kUnchanged and kUnsupported, for renderings (unified diff, create).
  model::Json old_doc;
  model::Json new_doc;

  bool is_change() const;  // create, update, delete, refused
  bool in_sync() const { return !is_change() && drift.empty(); }
};

// The scheduler's dry-run of the plan, filled by the scheduler (not by diff/), rendered by
// diff/: "all pods placed" or what could not be placed and why.
struct DryRunNote {
  std::string object;    // "Deployment default/web", empty for the whole plan
  std::string message;   // "0/3 nodes are available: 3 Insufficient cpu."
  bool problem = false;  // true when something could not be placed
  friend bool operator==(const DryRunNote&, const DryRunNote&) = default;
};

struct SchedulerDryRun {
  bool all_placed = true;
  std::vector<DryRunNote> notes;
  friend bool operator==(const SchedulerDryRun&, const SchedulerDryRun&) = default;
};

struct PlanCounts {
  int create = 0, update = 0, rolling = 0, del = 0, unchanged = 0, prune_skipped = 0,
      unsupported = 0, refused = 0, drift = 0;
};

struct Plan {
  std::vector<ObjectPlan> objects;           // sorted by key, one per key
  bool live_known = false;                   // drift was looked for (live state given)
  std::optional<SchedulerDryRun> scheduler;  // nullopt: not run
  std::vector<std::string> warnings;         // about the options (a malformed global rule)

  bool has_changes() const;  // any change or any drift: applying would do something
  bool has_refused() const;
  PlanCounts counts() const;
  const ObjectPlan* Find(const model::ObjectKey& key) const;  // nullptr when absent
};

// A path to leave out of the comparison, like Argo CD's ignoreDifferences.
//   pointer: a JSON pointer ("/spec/replicas", "/metadata/annotations/x"). A segment under a
//     list matches an item by index in the normalized (key-sorted) list, or by its key: the
//     container/env/volume name, the port number ("/spec/ports/80/nodePort"). "*" matches
//     every key or item.
//   kind: empty for every kind, else only objects of that kind.
struct IgnoreRule {
  std::string kind;
  std::string pointer;
  friend bool operator==(const IgnoreRule&, const IgnoreRule&) = default;
};

// Parses a comma-separated list of "[Kind:]/pointer" entries (the annotation's and the flag's
// syntax). Whitespace around entries is ignored. Errors name the entry.
Result<std::vector<IgnoreRule>> ParseIgnoreRules(const std::string& text);

// Memoizes model::PodTemplateHash per object across plans: a hash costs a canonical document
// (~10 us), a hit costs one template comparison. The reconciler keeps one for its lifetime, so
// a steady-state plan over 10,000 Deployments hashes only what changed.
// Not thread-safe: one plan at a time.
class RevisionCache {
 public:
  // The hash of `t`, recomputed only when `t` differs from what was last seen for `key`.
  const std::string& Get(const model::ObjectKey& key, const model::PodTemplateSpec& t);
  // Forgets the entries no Get asked for since the previous EndPlan, so objects that left
  // git do not stay forever. ComputePlan calls it when it is done.
  void EndPlan();
  size_t size() const { return entries_.size(); }
  size_t misses() const { return misses_; }

 private:
  struct Entry {
    model::PodTemplateSpec template_;
    std::string hash;
    uint64_t used = 0;  // generation of the last Get
  };
  std::map<model::ObjectKey, Entry> entries_;
  uint64_t generation_ = 0;
  size_t misses_ = 0;
};

struct PlanOptions {
  std::vector<IgnoreRule> ignore_differences;  // global, on top of each object's annotation
  RevisionCache* revisions = nullptr;          // optional memo of template hashes
};

// REQUIRES: no key appears twice in `desired` or in `last_applied` (model::CheckDuplicates);
// should it happen anyway, the first wins and the object carries a warning.
Plan ComputePlan(const std::vector<model::Manifest>& desired,
                 const std::vector<model::Manifest>& last_applied, const model::LiveState* live,
                 const PlanOptions& options = {});

}  // namespace ballast::diff
