#include "diff/plan.h"

#include <algorithm>
#include <cstdint>
#include <map>
#include <set>
#include <string_view>
#include <utility>

#include "diff/json_diff.h"
#include "model/codec.h"

namespace ballast::diff {

using model::Json;
using model::Manifest;
using model::ObjectKey;

const char* ActionName(Action action) {
  switch (action) {
    case Action::kCreate:
      return "create";
    case Action::kUpdate:
      return "update";
    case Action::kDelete:
      return "delete";
    case Action::kUnchanged:
      return "unchanged";
    case Action::kPruneSkipped:
      return "pruneSkipped";
    case Action::kUnsupported:
      return "unsupported";
    case Action::kRefused:
      return "refused";
  }
  return "unknown";
}

const char* RolloutName(Rollout rollout) {
  switch (rollout) {
    case Rollout::kNone:
      return "none";
    case Rollout::kInPlace:
      return "inPlace";
    case Rollout::kRollingUpdate:
      return "rollingUpdate";
    case Rollout::kRecreate:
      return "recreate";
  }
  return "unknown";
}

const char* ChangeOpName(ChangeOp op) {
  switch (op) {
    case ChangeOp::kAdd:
      return "add";
    case ChangeOp::kRemove:
      return "remove";
    case ChangeOp::kReplace:
      return "replace";
  }
  return "unknown";
}

const char* DriftKindName(DriftKind kind) {
  switch (kind) {
    case DriftKind::kReplicasMissing:
      return "ReplicasMissing";
    case DriftKind::kExtraReplicas:
      return "ExtraReplicas";
    case DriftKind::kOldRevision:
      return "OldRevision";
    case DriftKind::kNodeGone:
      return "NodeGone";
    case DriftKind::kNodeNotReady:
      return "NodeNotReady";
    case DriftKind::kOrphanPods:
      return "OrphanPods";
  }
  return "Unknown";
}

bool ObjectPlan::is_change() const {
  return action == Action::kCreate || action == Action::kUpdate || action == Action::kDelete ||
         action == Action::kRefused;
}

bool Plan::has_changes() const {
  return std::any_of(objects.begin(), objects.end(),
                     [](const ObjectPlan& o) { return !o.in_sync(); });
}

bool Plan::has_refused() const {
  return std::any_of(objects.begin(), objects.end(),
                     [](const ObjectPlan& o) { return o.action == Action::kRefused; });
}

PlanCounts Plan::counts() const {
  PlanCounts c;
  for (const auto& o : objects) {
    switch (o.action) {
      case Action::kCreate:
        ++c.create;
        break;
      case Action::kUpdate:
        ++c.update;
        if (o.rollout == Rollout::kRollingUpdate || o.rollout == Rollout::kRecreate) ++c.rolling;
        break;
      case Action::kDelete:
        ++c.del;
        break;
      case Action::kUnchanged:
        ++c.unchanged;
        break;
      case Action::kPruneSkipped:
        ++c.prune_skipped;
        break;
      case Action::kUnsupported:
        ++c.unsupported;
        break;
      case Action::kRefused:
        ++c.refused;
        break;
    }
    if (!o.drift.empty()) ++c.drift;
  }
  return c;
}

const std::string& RevisionCache::Get(const ObjectKey& key, const model::PodTemplateSpec& t) {
  auto it = entries_.find(key);
  if (it != entries_.end() && it->second.template_ == t) {
    it->second.used = generation_;
    return it->second.hash;
  }
  ++misses_;
  Entry e{t, model::PodTemplateHash(t), generation_};
  if (it == entries_.end()) return entries_.emplace(key, std::move(e)).first->second.hash;
  it->second = std::move(e);
  return it->second.hash;
}

void RevisionCache::EndPlan() {
  std::erase_if(entries_, [&](const auto& kv) { return kv.second.used != generation_; });
  ++generation_;
}

const ObjectPlan* Plan::Find(const ObjectKey& key) const {
  auto it = std::lower_bound(objects.begin(), objects.end(), key,
                             [](const ObjectPlan& o, const ObjectKey& k) { return o.key < k; });
  return it != objects.end() && it->key == key ? &*it : nullptr;
}

Result<std::vector<IgnoreRule>> ParseIgnoreRules(const std::string& text) {
  std::vector<IgnoreRule> rules;
  size_t start = 0;
  while (start <= text.size()) {
    size_t comma = text.find(',', start);
    if (comma == std::string::npos) comma = text.size();
    std::string entry = text.substr(start, comma - start);
    start = comma + 1;
    auto b = entry.find_first_not_of(" \t\n\r");
    if (b == std::string::npos) continue;
    entry = entry.substr(b, entry.find_last_not_of(" \t\n\r") - b + 1);
    IgnoreRule rule;
    if (entry[0] != '/') {
      auto colon = entry.find(':');
      if (colon == std::string::npos || colon == 0) {
        return InvalidArgument("ignore-differences entry \"" + entry +
                               "\": want a JSON pointer (\"/spec/replicas\") or Kind:/pointer");
      }
      rule.kind = entry.substr(0, colon);
      entry = entry.substr(colon + 1);
    }
    auto segs = ParsePointer(entry);
    if (!segs.ok()) {
      return InvalidArgument("ignore-differences entry: " + segs.status().message());
    }
    rule.pointer = entry;
    rules.push_back(std::move(rule));
  }
  return rules;
}

namespace {

struct CompiledRule {
  std::string kind;  // empty: every kind
  std::vector<std::string> segments;
};

// What the API server owns or kubectl adds: never a difference between git and what is applied.
const std::vector<std::vector<std::string>>& ServerOwnedPaths() {
  static const std::vector<std::vector<std::string>> kPaths = {
      {"status"},
      {"metadata", "uid"},
      {"metadata", "resourceVersion"},
      {"metadata", "generation"},
      {"metadata", "creationTimestamp"},
      {"metadata", "managedFields"},
      {"metadata", "selfLink"},
      {"metadata", "annotations", "kubectl.kubernetes.io/last-applied-configuration"},
      {"metadata", "annotations", "deployment.kubernetes.io/revision"},
  };
  return kPaths;
}

Json Normalize(const Manifest& m, const std::vector<CompiledRule>& rules) {
  Json doc = model::CanonicalJson(m);
  for (const auto& p : ServerOwnedPaths()) RemoveAtPointer(doc, p);
  if (doc.contains("metadata") && doc["metadata"].contains("annotations") &&
      doc["metadata"]["annotations"].empty()) {
    doc["metadata"].erase("annotations");
  }
  const std::string& kind = m.key().kind;
  for (const auto& r : rules) {
    if (r.kind.empty() || r.kind == kind) RemoveAtPointer(doc, r.segments);
  }
  return doc;
}

// The global rules plus the object's own annotation.
std::vector<CompiledRule> RulesFor(const Manifest& m, const std::vector<CompiledRule>& global,
                                   std::vector<std::string>* warnings) {
  std::vector<CompiledRule> rules = global;
  const auto& annotations = m.metadata().annotations;
  auto it = annotations.find(model::kAnnotationIgnoreDifferences);
  if (it == annotations.end()) return rules;
  auto parsed = ParseIgnoreRules(it->second);
  if (!parsed.ok()) {
    warnings->push_back(std::string("metadata.annotations[\"") +
                        model::kAnnotationIgnoreDifferences + "\"]: " + parsed.status().message() +
                        "; nothing ignored");
    return rules;
  }
  for (auto& r : *parsed) {
    auto segs = ParsePointer(r.pointer);
    if (segs.ok()) rules.push_back({r.kind, std::move(*segs)});
  }
  return rules;
}

const Json* Lookup(const Json& doc, std::initializer_list<const char*> path) {
  const Json* node = &doc;
  for (const char* k : path) {
    if (!node->is_object()) return nullptr;
    auto it = node->find(k);
    if (it == node->end()) return nullptr;
    node = &*it;
  }
  return node;
}

std::string StringAt(const Json& doc, std::initializer_list<const char*> path) {
  const Json* v = Lookup(doc, path);
  return v != nullptr && v->is_string() ? v->get<std::string>() : "";
}

// The changes the API server rejects on update, in its words.
std::vector<std::string> ImmutableViolations(const std::string& kind, const Json& old_doc,
                                             const Json& new_doc) {
  std::vector<std::string> out;
  if (kind == "Deployment") {
    const Json* a = Lookup(old_doc, {"spec", "selector"});
    const Json* b = Lookup(new_doc, {"spec", "selector"});
    if (a != nullptr && b != nullptr && *a != *b) {
      out.push_back("spec.selector: Invalid value: " + DumpCompact(*b) + ": field is immutable");
    }
  } else if (kind == "Service") {
    static const char* kSupported[] = {"ClusterIP", "NodePort", "LoadBalancer"};
    auto supported = [](const std::string& t) {
      return t.empty() ||
             std::find(std::begin(kSupported), std::end(kSupported), t) != std::end(kSupported);
    };
    std::string ta = StringAt(old_doc, {"spec", "type"});
    std::string tb = StringAt(new_doc, {"spec", "type"});
    if (ta != tb && (!supported(ta) || !supported(tb))) {
      out.push_back("spec.type: Unsupported value: \"" + (supported(tb) ? ta : tb) +
                    "\": supported values: \"ClusterIP\", \"LoadBalancer\", \"NodePort\" (a "
                    "change from or to " +
                    (supported(tb) ? ta : tb) + " is not applied)");
    }
    std::string ipa = StringAt(old_doc, {"spec", "clusterIP"});
    std::string ipb = StringAt(new_doc, {"spec", "clusterIP"});
    if (!ipa.empty() && !ipb.empty() && ipa != ipb) {
      out.push_back("spec.clusterIP: Invalid value: \"" + ipb + "\": field is immutable");
    }
  }
  if (kind == "ConfigMap" || kind == "Secret") {
    const Json* was = Lookup(old_doc, {"immutable"});
    if (was != nullptr && *was == true) {
      for (const char* field : {"data", "binaryData", "immutable"}) {
        const Json* a = Lookup(old_doc, {field});
        const Json* b = Lookup(new_doc, {field});
        if ((a == nullptr) != (b == nullptr) || (a != nullptr && *a != *b)) {
          out.push_back(std::string(field) +
                        ": Forbidden: field is immutable when `immutable` is set");
        }
      }
    }
    if (kind == "Secret" && StringAt(old_doc, {"type"}) != StringAt(new_doc, {"type"})) {
      out.push_back("type: Invalid value: \"" + StringAt(new_doc, {"type"}) +
                    "\": field is immutable");
    }
  }
  return out;
}

std::string JoinNames(const std::vector<std::string>& names, size_t max_shown) {
  std::string out;
  for (size_t i = 0; i < names.size() && i < max_shown; ++i) {
    if (i > 0) out += ", ";
    out += names[i];
  }
  if (names.size() > max_shown) {
    out += " and " + std::to_string(names.size() - max_shown) + " more";
  }
  return out;
}

std::string Plural(size_t n, const char* one, const char* many) {
  return std::to_string(n) + " " + (n == 1 ? one : many);
}

constexpr size_t kNamesShown = 5;

// Pods by (namespace, deployment), viewing the strings of the LiveState, which outlives the
// plan computation. `claimed` marks groups whose Deployment is in git or applied.
struct PodGroup {
  std::vector<const model::Pod*> pods;
  bool claimed = false;
};
using PodGroups = std::map<std::pair<std::string_view, std::string_view>, PodGroup>;

// Drift of one Deployment's pods against the applied revision and replica count. With
// `nodes_only`, only pods on unusable nodes are reported (an update already replaces the rest).
std::vector<Drift> DeploymentDrift(const std::vector<const model::Pod*>& pods,
                                   const model::LiveState& live, const std::string& revision,
                                   int32_t replicas, bool nodes_only) {
  std::vector<Drift> out;
  std::vector<std::string> gone, not_ready, old;
  std::vector<std::string> gone_where, not_ready_where;
  std::set<std::string> old_revisions;
  int64_t running = 0;
  for (const model::Pod* p : pods) {
    if (p->terminating || p->phase == model::PodPhase::kSucceeded ||
        p->phase == model::PodPhase::kFailed) {
      continue;
    }
    if (!p->node.empty()) {
      auto n = live.nodes.find(p->node);
      if (n == live.nodes.end()) {
        gone.push_back(p->name);
        gone_where.push_back(p->name + " on " + p->node);
        continue;
      }
      if (!n->second.ready) {
        not_ready.push_back(p->name);
        not_ready_where.push_back(p->name + " on " + p->node);
        continue;
      }
    }
    if (p->revision != revision) {
      old.push_back(p->name);
      old_revisions.insert(p->revision);
      continue;
    }
    if (!p->node.empty()) ++running;  // a pod not yet placed is not running
  }
  if (!nodes_only) {
    if (running < replicas) {
      out.push_back({DriftKind::kReplicasMissing,
                     "replicas missing: " + std::to_string(running) + " of " +
                         std::to_string(replicas) + " running",
                     {}});
    } else if (running > replicas) {
      out.push_back({DriftKind::kExtraReplicas,
                     "extra replicas: " + std::to_string(running) + " running, " +
                         std::to_string(replicas) + " wanted",
                     {}});
    }
    if (!old.empty()) {
      std::sort(old.begin(), old.end());
      std::string revs = JoinNames({old_revisions.begin(), old_revisions.end()}, kNamesShown);
      out.push_back({DriftKind::kOldRevision,
                     Plural(old.size(), "pod", "pods") + " of an old revision (" + revs +
                         ") still running, want " + revision + ": " + JoinNames(old, kNamesShown),
                     old});
    }
  }
  auto node_drift = [&](DriftKind kind, std::vector<std::string>& names,
                        std::vector<std::string>& where, const char* what) {
    if (names.empty()) return;
    std::sort(names.begin(), names.end());
    std::sort(where.begin(), where.end());
    out.push_back(
        {kind,
         Plural(names.size(), "pod", "pods") + " on " + what + ": " + JoinNames(where, kNamesShown),
         names});
  };
  node_drift(DriftKind::kNodeGone, gone, gone_where, "a node that is gone");
  node_drift(DriftKind::kNodeNotReady, not_ready, not_ready_where, "a NotReady node");
  return out;
}

struct Keyed {
  ObjectKey key;
  const Manifest* manifest;
};

// Sorted by key; duplicates after the first are reported in `dups`. Sorts indices rather than
// the keys themselves: cheaper than moving three strings per swap.
std::vector<Keyed> SortedByKey(const std::vector<Manifest>& list, std::set<ObjectKey>* dups) {
  std::vector<ObjectKey> keys;
  keys.reserve(list.size());
  for (const auto& m : list) keys.push_back(m.key());
  std::vector<uint32_t> order(list.size());
  for (uint32_t i = 0; i < order.size(); ++i) order[i] = i;
  std::sort(order.begin(), order.end(), [&](uint32_t a, uint32_t b) {
    auto c = keys[a] <=> keys[b];
    return c < 0 || (c == 0 && a < b);
  });
  std::vector<Keyed> out;
  out.reserve(order.size());
  for (uint32_t i : order) {
    if (!out.empty() && out.back().key == keys[i]) {
      dups->insert(keys[i]);
      continue;
    }
    out.push_back({std::move(keys[i]), &list[i]});
  }
  return out;
}

bool PruneDisabled(const Manifest& m) {
  const auto& a = m.metadata().annotations;
  auto it = a.find(model::kAnnotationPrune);
  return it != a.end() && it->second == "false";
}

class Planner {
 public:
  Planner(const model::LiveState* live, const PlanOptions& options)
      : live_(live), cache_(options.revisions) {
    for (const auto& r : options.ignore_differences) {
      auto segs = ParsePointer(r.pointer);
      if (segs.ok()) {
        global_.push_back({r.kind, std::move(*segs)});
      } else {
        global_errors_.push_back("global ignore-differences: " + segs.status().message());
      }
    }
    if (live_ != nullptr) {
      for (const auto& p : live_->pods) {
        pods_[{p.namespace_, p.deployment}].pods.push_back(&p);
      }
    }
  }

  ObjectPlan Create(const ObjectKey& key, const Manifest& want) {
    ObjectPlan o = Start(key, want);
    if (!want.is_supported()) return Unsupported(std::move(o), want);
    o.action = Action::kCreate;
    o.new_doc = Normalize(want, RulesFor(want, global_, &o.warnings));
    if (const auto* d = want.deployment()) {
      o.new_revision = Hash(key, d->spec.template_);
      UsePods(key);
    }
    return o;
  }

  std::optional<ObjectPlan> Delete(const ObjectKey& key, const Manifest& had) {
    if (!had.is_supported()) return std::nullopt;  // never applied
    ObjectPlan o = Start(key, had);
    o.old_doc = Normalize(had, global_);
    if (const auto* d = had.deployment()) {
      o.old_revision = Hash(key, d->spec.template_);
      UsePods(key);
    }
    if (PruneDisabled(had)) {
      o.action = Action::kPruneSkipped;
      o.message =
          std::string("not in git; kept because ") + model::kAnnotationPrune + " is \"false\"";
    } else {
      o.action = Action::kDelete;
      o.message = "not in git";
    }
    return o;
  }

  ObjectPlan Compare(const ObjectKey& key, const Manifest& want, const Manifest& had) {
    ObjectPlan o = Start(key, want);
    if (!want.is_supported()) return Unsupported(std::move(o), want);
    const model::Deployment* wd = want.deployment();
    const model::Deployment* hd = had.deployment();
    if (wd != nullptr) UsePods(key);
    if (want.api_version == had.api_version && want.value == had.value) {
      // The common case, decided without building documents.
      o.action = Action::kUnchanged;
      if (hd != nullptr) AddFullDrift(o, *hd);
      return o;
    }
    auto rules = RulesFor(want, global_, &o.warnings);
    Json old_doc = Normalize(had, rules);
    Json new_doc = Normalize(want, rules);
    if (old_doc == new_doc) {
      o.action = Action::kUnchanged;
      if (hd != nullptr) AddFullDrift(o, *hd);
      return o;
    }
    DiffDocuments(old_doc, new_doc, &o.changes);
    bool template_changed = false;
    if (wd != nullptr) {
      for (auto& c : o.changes) {
        c.forces_rollout = c.path.rfind("/spec/template", 0) == 0;
        template_changed = template_changed || c.forces_rollout;
      }
    }
    auto violations = ImmutableViolations(key.kind, old_doc, new_doc);
    if (wd != nullptr && hd != nullptr) {
      o.old_revision = Hash(key, hd->spec.template_);
      o.new_revision = template_changed ? Hash(key, wd->spec.template_) : o.old_revision;
    }
    if (!violations.empty()) {
      o.action = Action::kRefused;
      o.message = violations[0];
      for (size_t i = 1; i < violations.size(); ++i) o.message += "; " + violations[i];
      o.new_revision = o.old_revision;
      if (hd != nullptr) AddFullDrift(o, *hd);
    } else {
      o.action = Action::kUpdate;
      if (template_changed) {
        o.rollout =
            wd->spec.strategy.type == "Recreate" ? Rollout::kRecreate : Rollout::kRollingUpdate;
      } else {
        o.rollout = Rollout::kInPlace;
      }
      if (hd != nullptr && live_ != nullptr) {
        o.drift = DeploymentDrift(PodsOf(key), *live_, o.old_revision, hd->spec.replicas,
                                  /*nodes_only=*/true);
      }
    }
    o.old_doc = std::move(old_doc);
    o.new_doc = std::move(new_doc);
    return o;
  }

  // Deployments whose pods run but that neither git nor the last sync knows.
  void AddOrphans(std::vector<ObjectPlan>* objects) {
    if (live_ == nullptr) return;
    for (const auto& [k, group] : pods_) {
      if (group.claimed || k.second.empty()) continue;
      ObjectKey key{"Deployment", std::string(k.first), std::string(k.second)};
      std::vector<std::string> names;
      for (const model::Pod* p : group.pods) {
        if (!p->terminating) names.push_back(p->name);
      }
      if (names.empty()) continue;
      std::sort(names.begin(), names.end());
      ObjectPlan o;
      o.key = key;
      o.api_version = "apps/v1";
      o.action = Action::kDelete;
      o.message = "not in git and not applied: its pods are stopped";
      o.drift.push_back(
          {DriftKind::kOrphanPods,
           Plural(names.size(), "pod", "pods") +
               " running of a Deployment that is not in git: " + JoinNames(names, kNamesShown),
           names});
      objects->push_back(std::move(o));
    }
  }

  const std::vector<std::string>& global_errors() const { return global_errors_; }

 private:
  ObjectPlan Start(const ObjectKey& key, const Manifest& m) {
    ObjectPlan o;
    o.key = key;
    o.api_version = m.api_version;
    return o;
  }

  ObjectPlan Unsupported(ObjectPlan o, const Manifest& m) {
    o.action = Action::kUnsupported;
    o.message = "kind " + o.key.kind + " (" + m.api_version +
                ") is not run by ballast: listed, not applied";
    return o;
  }

  void UsePods(const ObjectKey& key) {
    if (live_ == nullptr) return;
    auto it = pods_.find({key.namespace_, key.name});
    if (it != pods_.end()) it->second.claimed = true;
  }

  std::string Hash(const ObjectKey& key, const model::PodTemplateSpec& t) {
    return cache_ != nullptr ? cache_->Get(key, t) : model::PodTemplateHash(t);
  }

  const std::vector<const model::Pod*>& PodsOf(const ObjectKey& key) {
    static const std::vector<const model::Pod*> kNone;
    auto it = pods_.find({key.namespace_, key.name});
    return it == pods_.end() ? kNone : it->second.pods;
  }

  void AddFullDrift(ObjectPlan& o, const model::Deployment& applied) {
    if (live_ == nullptr) return;
    const auto& pods = PodsOf(o.key);
    // Hashing costs a canonical document: only when there are pods to compare with.
    if (o.old_revision.empty() && !pods.empty()) {
      o.old_revision = Hash(o.key, applied.spec.template_);
      if (o.new_revision.empty()) o.new_revision = o.old_revision;
    }
    o.drift = DeploymentDrift(pods, *live_, o.old_revision, applied.spec.replicas,
                              /*nodes_only=*/false);
  }

  const model::LiveState* live_;
  RevisionCache* cache_;
  std::vector<CompiledRule> global_;
  std::vector<std::string> global_errors_;
  PodGroups pods_;
};

}  // namespace

Plan ComputePlan(const std::vector<Manifest>& desired, const std::vector<Manifest>& last_applied,
                 const model::LiveState* live, const PlanOptions& options) {
  Plan plan;
  plan.live_known = live != nullptr;
  std::set<ObjectKey> dup_want, dup_had;
  std::vector<Keyed> want = SortedByKey(desired, &dup_want);
  std::vector<Keyed> had = SortedByKey(last_applied, &dup_had);
  Planner planner(live, options);
  plan.objects.reserve(std::max(want.size(), had.size()));

  size_t i = 0, j = 0;
  while (i < want.size() || j < had.size()) {
    size_t pushed = plan.objects.size();
    int cmp;
    if (i == want.size()) {
      cmp = 1;
    } else if (j == had.size()) {
      cmp = -1;
    } else {
      auto c = want[i].key <=> had[j].key;
      cmp = c < 0 ? -1 : (c > 0 ? 1 : 0);
    }
    if (cmp < 0) {
      plan.objects.push_back(planner.Create(want[i].key, *want[i].manifest));
      ++i;
    } else if (cmp > 0) {
      if (auto o = planner.Delete(had[j].key, *had[j].manifest)) {
        plan.objects.push_back(std::move(*o));
      }
      ++j;
    } else {
      plan.objects.push_back(planner.Compare(want[i].key, *want[i].manifest, *had[j].manifest));
      ++i;
      ++j;
    }
    if (plan.objects.size() > pushed) {
      ObjectPlan& o = plan.objects.back();
      if (dup_want.count(o.key)) o.warnings.push_back("defined more than once in git: first kept");
      if (dup_had.count(o.key)) {
        o.warnings.push_back("recorded more than once in the applied state: first kept");
      }
    }
  }
  size_t before = plan.objects.size();
  planner.AddOrphans(&plan.objects);
  if (plan.objects.size() != before) {
    std::inplace_merge(plan.objects.begin(), plan.objects.begin() + before, plan.objects.end(),
                       [](const ObjectPlan& a, const ObjectPlan& b) { return a.key < b.key; });
  }
  plan.warnings = planner.global_errors();
  if (options.revisions != nullptr) options.revisions->EndPlan();
  return plan;
}

}  // namespace ballast::diff
