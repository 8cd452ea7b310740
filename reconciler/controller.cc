#include "reconciler/controller.h"

#include <algorithm>
#include <cctype>
#include <random>

#include "diff/render.h"
#include "model/codec.h"
#include "model/config_refs.h"
#include "model/rfc3339.h"
#include "scheduler/placement.h"
#include "scheduler/service_ips.h"
#include "sources/git/restore_message.h"

namespace ballast::reconciler {
namespace {

using model::Json;

bool PruneDisabled(const model::Manifest& m) {
  auto it = m.metadata().annotations.find(model::kAnnotationPrune);
  return it != m.metadata().annotations.end() && it->second == "false";
}

const model::Manifest* FindObject(const std::vector<model::Manifest>& objects,
                                  const model::ObjectKey& key) {
  for (const auto& m : objects) {
    if (m.key() == key) return &m;
  }
  return nullptr;
}

// The trigger a source revision is recorded with. A restore commit this reconciler pushed
// (sources/git/restore_message.h) names its cause, "rollback #N" or "auto-rollback #N",
// whichever poll or webhook reads it first: the regular poll often sees the pushed commit
// before the refresh the rollback asked for.
std::string TriggerOf(const git::CommitInfo& commit, const std::string& trigger) {
  auto restore = git::RestoreMessage::Parse(commit.message);
  if (!restore) return trigger;
  return (restore->automatic() ? "auto-rollback #" : "rollback #") +
         std::to_string(restore->entry_id);
}

}  // namespace

Controller::Controller(ControllerOptions options, const Clock* clock)
    : options_(std::move(options)),
      clock_(clock),
      start_ms_(clock->NowMs()),
      version_base_(std::max<int64_t>(0, clock->WallMs())) {}

void Controller::RememberTemplates(const std::vector<model::Manifest>& objects) {
  for (const auto& m : objects) {
    if (const auto* d = m.deployment()) {
      templates_[revisions_.Get(m.key(), d->spec.template_)] = d->spec.template_;
    }
  }
}

namespace {

// Each applied Service's cluster IP, by "namespace/name" (see scheduler/service_ips.h).
std::map<std::string, std::string> ClusterIPs(const AppliedState& applied) {
  std::vector<const model::Service*> services;
  for (const auto& m : applied.objects) {
    if (const auto* s = m.service()) services.push_back(s);
  }
  return scheduler::AllocateClusterIPs(services);
}

}  // namespace

void Controller::Restore(AppliedState applied, const std::vector<model::Manifest>& older_objects,
                         bool restarted) {
  for (const auto& m : older_objects) {
    if (const auto* d = m.deployment()) {
      templates_[model::PodTemplateHash(d->spec.template_)] = d->spec.template_;
    }
  }
  applied_ = std::move(applied);
  RememberTemplates(applied_.objects);
  IndexApplied();
  restarted_ = restarted;
  start_ms_ = clock_->NowMs();
}

void Controller::ExpectNodes(std::set<std::string> nodes) { expected_nodes_ = std::move(nodes); }

std::set<std::string> Controller::NodeNames() const {
  std::set<std::string> out;
  for (const auto& [name, node] : nodes_) out.insert(name);
  return out;
}

void Controller::OnSnapshot(const git::SourceSnapshot& snapshot, const std::string& trigger) {
  source_error_ = Status::Ok();
  source_error_since_ms_ = 0;
  commit_ = snapshot.commit;
  source_sha_ = snapshot.commit.sha;
  tree_ = snapshot.tree;
  if (snapshot.history_rewritten) history_rewritten_ = true;
  if (!tree_->ok()) return;  // keep the last good desired state
  if (desired_sha_ != snapshot.commit.sha || !desired_tree_) {
    desired_tree_ = tree_;
    desired_sha_ = snapshot.commit.sha;
    source_trigger_ = TriggerOf(snapshot.commit, trigger);
  }
}

void Controller::OnSourceError(const Status& status) {
  if (source_error_.ok()) source_error_since_ms_ = clock_->NowMs();
  source_error_ = status;
}

Status Controller::OnRegister(model::Node node) {
  const int64_t now = clock_->NowMs();
  if (auto it = nodes_.find(node.name); it != nodes_.end() && it->second.address != node.address) {
    const int64_t silent_ms = now - it->second.last_heartbeat_ms;
    if (silent_ms < options_.node_lifecycle.grace_period_ms) {
      return Status(StatusCode::kAlreadyExists,
                    "node " + node.name + " is registered from " + it->second.address +
                        " and alive; give this agent (" + node.address +
                        ") another --name, or stop the other one (a node's name is free once it "
                        "has been silent for the node grace period)");
    }
  }
  if (!nodes_.count(node.name)) last_node_joined_ms_ = now;
  node.last_heartbeat_ms = now;
  node.ready = true;
  nodes_[node.name] = std::move(node);
  return Status::Ok();
}

bool Controller::NodeAlive(const std::string& node) const {
  auto it = nodes_.find(node);
  return it != nodes_.end() &&
         clock_->NowMs() - it->second.last_heartbeat_ms < options_.node_lifecycle.grace_period_ms;
}

int64_t Controller::FromAgent(int64_t agent_time, int64_t agent_now) const {
  if (agent_time <= 0) return agent_time;
  return clock_->NowMs() - std::max<int64_t>(0, agent_now - agent_time);
}

int64_t Controller::ToWall(int64_t local) const {
  if (local <= 0) return local;
  return clock_->WallMs() - (clock_->NowMs() - local);
}

bool Controller::OnHeartbeat(const agentapi::Heartbeat& heartbeat) {
  auto it = nodes_.find(heartbeat.node.name);
  if (it == nodes_.end()) return false;
  // The agent's times are its wall clock: taken by their age as the agent measured it (its
  // send time minus them), onto this controller's monotonic clock. An agent that does not stamp
  // its heartbeats is taken to share our wall clock.
  const int64_t sent =
      heartbeat.node.last_heartbeat_ms > 0 ? heartbeat.node.last_heartbeat_ms : clock_->WallMs();
  model::Node node = heartbeat.node;
  node.last_heartbeat_ms = clock_->NowMs();
  it->second = std::move(node);
  auto& pods = reported_[heartbeat.node.name];
  pods = heartbeat.pods;
  for (auto& p : pods) {
    p.node = heartbeat.node.name;
    p.ready_since_ms = FromAgent(p.ready_since_ms, sent);
    p.created_ms = FromAgent(p.created_ms, sent);
  }
  heard_.insert(heartbeat.node.name);
  ProxyReport& proxy = proxies_[heartbeat.node.name];
  proxy.services_version = heartbeat.services_version;
  proxy.draining = {heartbeat.draining_endpoints.begin(), heartbeat.draining_endpoints.end()};
  // At once, not at the next pass: until then every listing would show these pods as stopping.
  Adopt(heartbeat.node.name);
  return true;
}

void Controller::Adopt(const std::string& node) {
  auto reported = reported_.find(node);
  if (reported == reported_.end()) return;
  for (const auto& p : reported->second) {
    if (intended_.count(p.name) || stopped_.count(p.name) || lost_.count(p.name) ||
        draining_.count(p.name) || p.terminating) {
      continue;
    }
    const model::Manifest* owner =
        FindObject(applied_.objects, {"Deployment", p.namespace_, p.deployment});
    if (owner == nullptr) continue;
    auto t = templates_.find(p.revision);
    if (t == templates_.end()) continue;
    IntendedPod ip;
    ip.desired.name = p.name;
    ip.desired.namespace_ = p.namespace_;
    ip.desired.deployment = p.deployment;
    ip.desired.revision = p.revision;
    ip.desired.template_ = t->second;
    ip.node = node;
    ip.created_ms = p.created_ms;
    intended_[p.name] = std::move(ip);
  }
}

Status Controller::SyncNow(const std::string& trigger) {
  if (pinned_) {
    return FailedPrecondition("pinned to history entry #" + std::to_string(*pinned_) +
                              ": run `ballast unpin` first");
  }
  if (history_pending_ > 0) {
    return FailedPrecondition("the history cannot record the last applied sync (" + history_error_ +
                              "): no other revision is applied until it can; free space where "
                              "STATE_DIR/history.git is");
  }
  if (desired_sha_.empty()) {
    return FailedPrecondition("no valid source revision has been read yet");
  }
  if (tree_ && !tree_->ok() && source_sha_ == commit_.sha) {
    return FailedPrecondition("source revision " + commit_.sha +
                              " has invalid manifests; not applying it");
  }
  Apply(trigger);
  return Status::Ok();
}

void Controller::Apply(const std::string& trigger) {
  // Pruning: objects that left git go, unless annotated ballast.dev/prune: "false".
  std::vector<model::Manifest> next = DesiredObjects();
  for (const auto& m : applied_.objects) {
    if (PruneDisabled(m) && FindObject(next, m.key()) == nullptr) next.push_back(m);
  }
  KeepRefused(&next);
  Json summary = Json::object();
  {
    auto plan = diff::ComputePlan(next, applied_.objects, nullptr);
    auto c = plan.counts();
    summary = {{"create", c.create},
               {"update", c.update},
               {"delete", c.del},
               {"unchanged", c.unchanged},
               {"rolling", c.rolling}};
  }
  applied_.objects = std::move(next);
  applied_.files = desired_tree_ ? desired_tree_->files : std::vector<model::SourceFile>{};
  applied_.sha = desired_sha_;
  RememberTemplates(applied_.objects);
  IndexApplied();
  HistoryAppend h;
  h.sha = applied_.sha;
  h.trigger = trigger;
  h.message = commit_.sha == desired_sha_ ? commit_.Summary() : "";
  h.files = applied_.files;
  h.objects = applied_.objects;
  h.plan_summary = summary;
  h.history_rewrite = history_rewritten_;
  history_rewritten_ = false;
  history_appends_.push_back(std::move(h));
}

void Controller::Pin(int64_t id, AppliedState applied) {
  pinned_ = id;
  applied_ = std::move(applied);
  RememberTemplates(applied_.objects);
  IndexApplied();
}

void Controller::Unpin() { pinned_.reset(); }

void Controller::SetHistoryBacklog(size_t pending, std::string error) {
  if (pending > 0 && history_pending_ == 0) history_error_since_ms_ = clock_->NowMs();
  history_pending_ = pending;
  history_error_ = pending > 0 ? std::move(error) : std::string();
}

std::vector<diff::ObjectPlan> Controller::KeepRefused(std::vector<model::Manifest>* target) const {
  std::vector<diff::ObjectPlan> refused;
  for (auto& o : diff::ComputePlan(*target, applied_.objects, nullptr).objects) {
    if (o.action == diff::Action::kRefused) refused.push_back(std::move(o));
  }
  if (refused.empty()) return refused;
  for (const auto& r : refused) {
    const model::Manifest* had = FindObject(applied_.objects, r.key);
    if (had == nullptr) continue;
    for (auto& m : *target) {
      if (m.key() == r.key) m = *had;
    }
  }
  // A ConfigMap or Secret put back changes what templates read.
  model::BindConfigHashes(target, options_.config_hash_key);
  return refused;
}

const std::vector<model::Manifest>& Controller::DesiredObjects() const {
  if (desired_objects_tree_ == desired_tree_) return desired_objects_;
  desired_objects_tree_ = desired_tree_;
  desired_objects_.clear();
  if (!desired_tree_) return desired_objects_;
  desired_objects_.reserve(desired_tree_->manifests.size());
  for (const auto* m : desired_tree_->manifests) desired_objects_.push_back(*m);
  // What each template's environment reads from ConfigMaps and Secrets is part of its revision.
  model::BindConfigHashes(&desired_objects_, options_.config_hash_key);
  return desired_objects_;
}

void Controller::IndexApplied() {
  cluster_ips_ = ClusterIPs(applied_);
  config_sources_.clear();
  for (const auto& m : applied_.objects) {
    auto data = model::EnvData(m);
    if (!data) continue;
    const auto key = m.key();
    agentapi::PodConfigSource source{key.kind, key.name, std::move(*data), {}};
    if (const model::ConfigMap* cm = m.config_map()) source.binary_data = cm->binary_data;
    config_sources_[key] = std::move(source);
  }
}

bool Controller::NodeIsReady(const std::string& node) const {
  if (auto h = health_.find(node); h != health_.end()) return h->second.ready;
  auto n = nodes_.find(node);
  return n != nodes_.end() && n->second.ready;
}

std::vector<model::Pod> Controller::PodView() const {
  std::vector<model::Pod> view;
  std::set<std::string> seen;
  for (const auto& [node, pods] : reported_) {
    for (const auto& p : pods) {
      if (lost_.count(p.name)) continue;
      model::Pod q = p;
      if (!intended_.count(p.name)) q.terminating = true;
      view.push_back(std::move(q));
      seen.insert(p.name);
    }
  }
  for (const auto& [name, ip] : intended_) {
    if (seen.count(name)) continue;
    model::Pod p;
    p.name = name;
    p.namespace_ = ip.desired.namespace_;
    p.deployment = ip.desired.deployment;
    p.revision = ip.desired.revision;
    p.node = ip.node;
    p.phase = model::PodPhase::kPending;
    p.created_ms = ip.created_ms;
    view.push_back(std::move(p));
  }
  return view;
}

// The earliest of the times something asked to be woken at (0: none).
struct Controller::Wake {
  int64_t at = 0;
  void At(int64_t t) {
    if (t > 0 && (at == 0 || t < at)) at = t;
  }
};

int64_t Controller::Reconcile() {
  const int64_t now = clock_->NowMs();
  Wake wake;
  // Auto-sync: a new valid revision is applied unless pinned.
  if (options_.sync == SyncPolicy::kAuto && !pinned_ && history_pending_ == 0 &&
      !desired_sha_.empty() && desired_sha_ != applied_.sha) {
    Apply(source_trigger_.empty() ? "poll" : source_trigger_);
  }
  StepNodeLifecycle(now, wake);
  for (const auto& [node, pods] : reported_) Adopt(node);
  ForgetStoppedAndPrune(now);
  StepDeployments(now, Settling(now, wake), wake);
  wake.At(StepDrains(now));
  ComputeDesired();
  RecordDrainVersions();
  ComputePlan();
  return wake.at;
}

// Node lifecycle: readiness from heartbeats, pods on long-lost nodes replaced elsewhere.
void Controller::StepNodeLifecycle(int64_t now, Wake& wake) {
  std::vector<model::Pod> all;
  for (const auto& [node, pods] : reported_) all.insert(all.end(), pods.begin(), pods.end());
  for (const auto& [name, ip] : intended_) {
    model::Pod p;
    p.name = name;
    p.node = ip.node;
    all.push_back(std::move(p));
  }
  auto decision = scheduler::EvaluateNodes(nodes_, all, lost_, now, options_.node_lifecycle);
  health_.clear();
  for (const auto& h : decision.nodes) health_[h.node] = h;
  for (const auto& name : decision.newly_lost) {
    lost_.insert(name);
    intended_.erase(name);
    draining_.erase(name);
  }
  for (const auto& name : decision.forget) lost_.erase(name);
  wake.At(decision.next_check_ms);
}

void Controller::ForgetStoppedAndPrune(int64_t now) {
  // Stopped pods that no agent reports any more are forgotten.
  std::set<std::string> reported_names;
  for (const auto& [node, pods] : reported_) {
    for (const auto& p : pods) reported_names.insert(p.name);
  }
  for (auto it = stopped_.begin(); it != stopped_.end();) {
    it = reported_names.count(*it) ? std::next(it) : stopped_.erase(it);
  }
  // Pods of Deployments that are no longer applied are stopped (pruned).
  std::set<std::string> deployments;  // "ns/name"
  for (const auto& m : applied_.objects) {
    if (m.deployment()) deployments.insert(m.metadata().namespace_ + "/" + m.metadata().name);
  }
  std::vector<std::string> pruned;
  for (const auto& [name, ip] : intended_) {
    if (!deployments.count(ip.desired.namespace_ + "/" + ip.desired.deployment)) {
      pruned.push_back(name);
    }
  }
  for (const auto& name : pruned) StopPod(name, now);
}

// Right after a restart (adopting what agents report) or while nodes are still joining, no pod
// is started: the first placement must see every running pod and the whole fleet.
bool Controller::Settling(int64_t now, Wake& wake) const {
  const bool in_start_window = now - start_ms_ < options_.adopt_wait_ms;
  bool awaiting_known = false;
  if (restarted_ && now - start_ms_ < options_.node_lifecycle.grace_period_ms) {
    for (const std::string& n : expected_nodes_)
      awaiting_known = awaiting_known || !heard_.count(n);
    if (awaiting_known) wake.At(start_ms_ + options_.node_lifecycle.grace_period_ms);
  }
  const bool adopting = restarted_ && (in_start_window || awaiting_known);
  const bool nodes_joining = in_start_window && last_node_joined_ms_ != 0 &&
                             now - last_node_joined_ms_ < options_.node_settle_ms;
  if (adopting) wake.At(start_ms_ + options_.adopt_wait_ms);
  if (nodes_joining) wake.At(last_node_joined_ms_ + options_.node_settle_ms);
  return adopting || nodes_joining;
}

// The scheduler for one pass, built on first use (most passes place nothing) from the ready
// nodes and every intended pod, with one template per revision.
class Controller::Placer {
 public:
  explicit Placer(Controller& c) : c_(c) {}

  scheduler::Placement Place(const std::string& revision, const model::ObjectKey& key) {
    Build();
    return sched_->Place(TemplateId(revision, key));
  }

 private:
  void Build() {
    if (sched_) return;
    std::map<std::string, model::Node> ready_nodes = c_.nodes_;
    for (auto& [name, n] : ready_nodes) {
      auto h = c_.health_.find(name);
      n.ready = h != c_.health_.end() && h->second.ready;
    }
    sched_.emplace(scheduler::Scheduler::FromNodeMap(ready_nodes));
    for (const auto& [name, ip] : c_.intended_) Bind(ip.desired, ip.node);
    // A draining pod still runs and holds its resources and host ports.
    for (const auto& [name, d] : c_.draining_) Bind(d.desired, d.node);
  }

  void Bind(const agentapi::DesiredPod& pod, const std::string& node) {
    if (!c_.templates_.count(pod.revision)) return;
    sched_->Bind(TemplateId(pod.revision, {"Deployment", pod.namespace_, pod.deployment}), node);
  }

  scheduler::TemplateId TemplateId(const std::string& rev, const model::ObjectKey& key) {
    auto it = ids_.find(rev);
    if (it != ids_.end()) return it->second;
    const model::PodTemplateSpec& t = c_.templates_[rev];
    scheduler::PodTemplate pt;
    pt.namespace_ = key.namespace_;
    pt.deployment = key.name;
    pt.labels = t.labels;
    pt.spec = t.spec;
    pt.runtime = scheduler::RequiredRuntime(t);
    return ids_[rev] = sched_->AddTemplate(pt);
  }

  Controller& c_;
  std::optional<scheduler::Scheduler> sched_;
  std::map<std::string, scheduler::TemplateId> ids_;
};

// Rollout steps of every applied Deployment, then placement of the pods to start.
void Controller::StepDeployments(int64_t now, bool settling, Wake& wake) {
  Placer placer(*this);
  placement_problems_.clear();
  // Every Deployment's pods, grouped once (a step changes only its own Deployment's pods).
  std::map<std::pair<std::string, std::string>, std::vector<model::Pod>> view;
  for (auto& p : PodView()) view[{p.namespace_, p.deployment}].push_back(std::move(p));
  std::set<model::ObjectKey> live_keys;
  for (const auto& m : applied_.objects) {
    const auto* d = m.deployment();
    if (d == nullptr) continue;
    const auto key = m.key();
    live_keys.insert(key);
    const std::string& rev = revisions_.Get(key, d->spec.template_);
    templates_[rev] = d->spec.template_;
    std::vector<model::Pod> pods;
    if (auto it = view.find({key.namespace_, key.name}); it != view.end()) pods = it->second;
    auto step = scheduler::StepRollout(*d, rev, pods, rollouts_[key], now);
    rollouts_[key] = step.status;
    wake.At(step.requeue_at_ms);
    if (!step.rollback_to.empty() && !pinned_ &&
        auto_rollbacks_done_.insert(key.ToString() + "@" + rev).second) {
      auto_rollbacks_.push_back({key, rev, step.rollback_to});
    }
    for (const auto& name : step.stop) StopPod(name, now);
    if (!step.stop.empty()) wake.At(now + 200);
    if (settling) continue;
    for (const auto& start : step.start) StartPods(key, start, pods, now, placer, wake);
  }
  for (auto it = rollouts_.begin(); it != rollouts_.end();) {
    it = live_keys.count(it->first) ? std::next(it) : rollouts_.erase(it);
  }
}

// New pods of one revision, named and placed; a pod that fits nowhere records why.
void Controller::StartPods(const model::ObjectKey& key, const scheduler::PodStart& start,
                           const std::vector<model::Pod>& pods, int64_t now, Placer& placer,
                           Wake& wake) {
  if (!templates_.count(start.revision)) return;
  std::set<std::string> taken;
  for (const auto& p : pods) taken.insert(p.name);
  for (const auto& [name, ip] : intended_) taken.insert(name);
  for (const auto& name : stopped_) taken.insert(name);
  for (const auto& [name, d] : draining_) taken.insert(name);
  const auto names = scheduler::NewPodNames(key.name, start.revision, start.count, taken,
                                            static_cast<uint64_t>(now) ^ (++name_seed_ << 20));
  for (const auto& name : names) {
    auto placement = placer.Place(start.revision, key);
    if (!placement.ok()) {
      placement_problems_[key] = placement.reason;
      wake.At(now + 2000);
      break;
    }
    IntendedPod ip;
    ip.desired.name = name;
    ip.desired.namespace_ = key.namespace_;
    ip.desired.deployment = key.name;
    ip.desired.revision = start.revision;
    ip.desired.template_ = templates_[start.revision];
    ip.node = placement.node;
    ip.created_ms = now;
    intended_[name] = std::move(ip);
  }
  wake.At(now + 200);
}

model::LiveState Controller::LiveView() const {
  model::LiveState live;
  live.nodes = nodes_;
  for (auto& [name, n] : live.nodes) {
    auto h = health_.find(name);
    n.ready = h != health_.end() && h->second.ready;
  }
  for (const auto& p : PodView()) {
    if (!p.terminating) live.pods.push_back(p);
  }
  return live;
}

diff::Plan Controller::RestorePlan(const std::vector<model::Manifest>& objects) const {
  std::vector<model::Manifest> target = objects;
  for (const auto& m : applied_.objects) {
    if (PruneDisabled(m) && FindObject(target, m.key()) == nullptr) target.push_back(m);
  }
  const model::LiveState live = LiveView();
  return diff::ComputePlan(target, applied_.objects, &live, {});
}

void Controller::ComputePlan() {
  const model::LiveState live = LiveView();
  // The objects as they are, copied only when objects kept from pruning join them.
  const std::vector<model::Manifest>& base = pinned_ ? applied_.objects : DesiredObjects();
  std::vector<model::Manifest> with_kept;
  for (const auto& m : applied_.objects) {
    if (!PruneDisabled(m) || FindObject(base, m.key()) != nullptr) continue;
    if (with_kept.empty()) with_kept = base;
    with_kept.push_back(m);
  }
  diff::PlanOptions options;
  options.revisions = &revisions_;
  plan_ = diff::ComputePlan(with_kept.empty() ? base : with_kept, applied_.objects, &live, options);
  if (plan_.has_refused()) {
    // What Apply does: the refused objects stay as applied, the rest of the plan is planned
    // without their change; their entries say why.
    std::vector<diff::ObjectPlan> refused;  // as planned with the live state (drift)
    for (auto& o : plan_.objects) {
      if (o.action == diff::Action::kRefused) refused.push_back(std::move(o));
    }
    std::vector<model::Manifest> target = with_kept.empty() ? base : with_kept;
    KeepRefused(&target);
    plan_ = diff::ComputePlan(target, applied_.objects, &live, options);
    for (auto& o : plan_.objects) {
      for (const auto& r : refused) {
        if (o.key == r.key) o = r;
      }
    }
  }
  diff::SchedulerDryRun dry;
  for (const auto& [key, reason] : placement_problems_) {
    dry.all_placed = false;
    dry.notes.push_back({key.ToString(), reason, true});
  }
  plan_.scheduler = dry;
}

std::vector<HistoryAppend> Controller::TakeHistoryAppends() {
  std::vector<HistoryAppend> out;
  out.swap(history_appends_);
  return out;
}

std::vector<AutoRollback> Controller::TakeAutoRollbacks() {
  std::vector<AutoRollback> out;
  out.swap(auto_rollbacks_);
  return out;
}

std::map<std::string, agentapi::DesiredState> Controller::TakeDesiredChanges() {
  std::map<std::string, agentapi::DesiredState> out;
  out.swap(changed_);
  return out;
}

std::map<model::ObjectKey, const model::Manifest*> Controller::AppliedIndex() const {
  std::map<model::ObjectKey, const model::Manifest*> out;
  for (const auto& m : applied_.objects) out.emplace(m.key(), &m);
  return out;
}

Health Controller::HealthOf(const model::Manifest& m) const {
  const auto* d = m.deployment();
  if (d == nullptr) return m.is_supported() ? Health::kHealthy : Health::kUnknown;
  if (d->spec.paused) return Health::kSuspended;
  auto it = rollouts_.find(m.key());
  if (it == rollouts_.end()) return Health::kProgressing;
  const auto& st = it->second;
  if (const auto* c = st.Find(scheduler::kConditionProgressing);
      c != nullptr && c->reason == scheduler::kReasonProgressDeadlineExceeded) {
    return Health::kDegraded;
  }
  if (st.updated_replicas == d->spec.replicas && st.available_replicas >= d->spec.replicas &&
      st.replicas == d->spec.replicas) {
    return Health::kHealthy;
  }
  return Health::kProgressing;
}

std::string Controller::SyncStatus() const {
  if (tree_ && !tree_->ok()) return "Error";
  if (!source_error_.ok() && desired_sha_.empty()) return "Error";
  if (!source_sha_ && applied_.sha.empty()) return "Unknown";
  if (pinned_) return plan_.has_changes() ? "OutOfSync" : "Synced";
  if (desired_sha_ != applied_.sha || plan_.has_changes()) return "OutOfSync";
  return "Synced";
}

Health Controller::OverallHealth() const {
  Health worst = Health::kHealthy;
  for (const auto& m : applied_.objects) {
    if (m.is_supported()) worst = Worse(worst, HealthOf(m));
  }
  if (applied_.sha.empty() && !pinned_) worst = Health::kUnknown;
  return worst;
}

}  // namespace ballast::reconciler
