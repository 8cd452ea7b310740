#include "reconciler/controller.h"

#include <algorithm>
#include <cctype>
#include <random>

#include "diff/render.h"
#include "model/codec.h"
#include "model/rfc3339.h"
#include "scheduler/placement.h"
#include "scheduler/service_ips.h"

namespace ballast::reconciler {
namespace {

using model::Json;

constexpr const char* kHealthNames[] = {"Healthy", "Suspended", "Progressing",
                                        "Missing", "Degraded",  "Unknown"};
constexpr int kHealthy = 0, kSuspended = 1, kProgressing = 2, kDegraded = 4, kUnknown = 5;

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
// (sources/git: "Roll back to #N (source abc1234)" with a "Requested-by:" trailer) names its
// cause, "rollback #N" or "auto-rollback #N", whichever poll or webhook reads it first: the
// regular poll often sees the pushed commit before the refresh the rollback asked for.
std::string TriggerOf(const git::CommitInfo& commit, const std::string& trigger) {
  constexpr std::string_view kPrefix = "Roll back to #";
  const std::string& m = commit.message;
  if (m.compare(0, kPrefix.size(), kPrefix) != 0) return trigger;
  size_t end = kPrefix.size();
  while (end < m.size() && std::isdigit(static_cast<unsigned char>(m[end]))) ++end;
  if (end == kPrefix.size()) return trigger;
  const std::string id = m.substr(kPrefix.size(), end - kPrefix.size());
  constexpr std::string_view kBy = "\nRequested-by: ";
  auto by = m.find(kBy);
  if (by == std::string::npos) return trigger;
  const bool automatic = m.compare(by + kBy.size(), 13, "auto-rollback") == 0;
  return (automatic ? "auto-rollback #" : "rollback #") + id;
}

}  // namespace

const char* HealthName(int rank) { return kHealthNames[std::clamp(rank, 0, 5)]; }

Controller::Controller(ControllerOptions options, const Clock* clock)
    : options_(std::move(options)), clock_(clock), start_ms_(clock->NowMs()) {}

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
  cluster_ips_ = ClusterIPs(applied_);
  restarted_ = restarted;
  start_ms_ = clock_->NowMs();
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

bool Controller::OnHeartbeat(const agentapi::Heartbeat& heartbeat) {
  auto it = nodes_.find(heartbeat.node.name);
  if (it == nodes_.end()) return false;
  model::Node node = heartbeat.node;
  node.last_heartbeat_ms = clock_->NowMs();
  it->second = std::move(node);
  auto& pods = reported_[heartbeat.node.name];
  pods = heartbeat.pods;
  for (auto& p : pods) p.node = heartbeat.node.name;
  heard_.insert(heartbeat.node.name);
  // At once, not at the next pass: until then every listing would show these pods as stopping.
  Adopt(heartbeat.node.name);
  return true;
}

void Controller::Adopt(const std::string& node) {
  auto reported = reported_.find(node);
  if (reported == reported_.end()) return;
  for (const auto& p : reported->second) {
    if (intended_.count(p.name) || stopped_.count(p.name) || lost_.count(p.name) || p.terminating) {
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
  cluster_ips_ = ClusterIPs(applied_);
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
  cluster_ips_ = ClusterIPs(applied_);
}

void Controller::Unpin() { pinned_.reset(); }

std::vector<model::Manifest> Controller::DesiredObjects() const {
  std::vector<model::Manifest> out;
  if (!desired_tree_) return out;
  out.reserve(desired_tree_->manifests.size());
  for (const auto* m : desired_tree_->manifests) out.push_back(*m);
  return out;
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

int64_t Controller::Reconcile() {
  const int64_t now = clock_->NowMs();
  int64_t next = 0;
  auto wake = [&next](int64_t at) {
    if (at > 0 && (next == 0 || at < next)) next = at;
  };

  // Auto-sync: a new valid revision is applied unless pinned.
  if (options_.sync == SyncPolicy::kAuto && !pinned_ && !desired_sha_.empty() &&
      desired_sha_ != applied_.sha) {
    Apply(source_trigger_.empty() ? "poll" : source_trigger_);
  }

  // Node lifecycle: readiness from heartbeats, pods on long-lost nodes replaced elsewhere.
  {
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
    }
    for (const auto& name : decision.forget) lost_.erase(name);
    wake(decision.next_check_ms);
  }

  std::map<std::string, const model::Manifest*> deployments;  // "ns/name"
  for (const auto& m : applied_.objects) {
    if (m.deployment()) deployments[m.metadata().namespace_ + "/" + m.metadata().name] = &m;
  }
  for (const auto& [node, pods] : reported_) Adopt(node);
  // Stopped pods that no agent reports any more are forgotten.
  {
    std::set<std::string> reported_names;
    for (const auto& [node, pods] : reported_) {
      for (const auto& p : pods) reported_names.insert(p.name);
    }
    for (auto it = stopped_.begin(); it != stopped_.end();) {
      it = reported_names.count(*it) ? std::next(it) : stopped_.erase(it);
    }
  }
  // Pods of Deployments that are no longer applied are stopped (pruned).
  for (auto it = intended_.begin(); it != intended_.end();) {
    if (!deployments.count(it->second.desired.namespace_ + "/" + it->second.desired.deployment)) {
      stopped_.insert(it->first);
      it = intended_.erase(it);
    } else {
      ++it;
    }
  }

  const bool in_start_window = now - start_ms_ < options_.adopt_wait_ms;
  const bool adopting = restarted_ && in_start_window;
  const bool nodes_joining = in_start_window && last_node_joined_ms_ != 0 &&
                             now - last_node_joined_ms_ < options_.node_settle_ms;
  const bool settling = adopting || nodes_joining;
  if (adopting) wake(start_ms_ + options_.adopt_wait_ms);
  if (nodes_joining) wake(last_node_joined_ms_ + options_.node_settle_ms);

  // Rollout steps, then placement of the pods to start.
  std::optional<scheduler::Scheduler> sched;
  std::map<std::string, scheduler::TemplateId> template_ids;
  auto template_id = [&](const std::string& rev, const model::ObjectKey& key) {
    auto it = template_ids.find(rev);
    if (it != template_ids.end()) return it->second;
    scheduler::PodTemplate pt;
    pt.namespace_ = key.namespace_;
    pt.deployment = key.name;
    pt.labels = templates_[rev].labels;
    pt.spec = templates_[rev].spec;
    pt.runtime = scheduler::RequiredRuntime(templates_[rev]);
    auto id = sched->AddTemplate(pt);
    template_ids[rev] = id;
    return id;
  };
  auto ensure_scheduler = [&]() {
    if (sched) return;
    std::map<std::string, model::Node> ready_nodes = nodes_;
    for (auto& [name, n] : ready_nodes) {
      auto h = health_.find(name);
      n.ready = h != health_.end() && h->second.ready;
    }
    sched.emplace(scheduler::Scheduler::FromNodeMap(ready_nodes));
    for (const auto& [name, ip] : intended_) {
      if (!templates_.count(ip.desired.revision)) continue;
      sched->Bind(template_id(ip.desired.revision,
                              {"Deployment", ip.desired.namespace_, ip.desired.deployment}),
                  ip.node);
    }
  };

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
    wake(step.requeue_at_ms);
    if (!step.rollback_to.empty() && !pinned_ &&
        auto_rollbacks_done_.insert(key.ToString() + "@" + rev).second) {
      auto_rollbacks_.push_back({key, rev, step.rollback_to});
    }
    for (const auto& name : step.stop) {
      if (intended_.erase(name)) stopped_.insert(name);
    }
    if (!step.stop.empty()) wake(now + 200);
    if (settling) continue;
    for (const auto& start : step.start) {
      if (!templates_.count(start.revision)) continue;
      ensure_scheduler();
      std::set<std::string> taken;
      for (const auto& p : pods) taken.insert(p.name);
      for (const auto& [name, ip] : intended_) taken.insert(name);
      for (const auto& name : stopped_) taken.insert(name);
      auto names = scheduler::NewPodNames(key.name, start.revision, start.count, taken,
                                          static_cast<uint64_t>(now) ^ (++name_seed_ << 20));
      auto tid = template_id(start.revision, key);
      for (const auto& name : names) {
        auto placement = sched->Place(tid);
        if (!placement.ok()) {
          placement_problems_[key] = placement.reason;
          wake(now + 2000);
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
      wake(now + 200);
    }
  }
  for (auto it = rollouts_.begin(); it != rollouts_.end();) {
    it = live_keys.count(it->first) ? std::next(it) : rollouts_.erase(it);
  }

  ComputeDesired();
  ComputePlan();
  return next;
}

void Controller::ComputeDesired() {
  // Services with their cluster IPs and ready endpoints on all nodes.
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
      for (const auto& [name, ip] : intended_) {
        if (ip.desired.namespace_ != ds.namespace_ || s->spec.selector.empty()) continue;
        bool match = true;
        for (const auto& [k, v] : s->spec.selector) {
          auto l = ip.desired.template_.labels.find(k);
          if (l == ip.desired.template_.labels.end() || l->second != v) match = false;
        }
        if (!match) continue;
        auto r = reported_by_name.find(name);
        if (r == reported_by_name.end() || !r->second->ready || r->second->terminating) continue;
        // A pod on a node that stopped heartbeating is not an endpoint (as Kubernetes marks it
        // not ready): a dead machine does not refuse connections, it lets them time out.
        if (!NodeIsReady(ip.node)) continue;
        // The host port that maps the targetPort: by container port name, or by number.
        std::string port_key;
        if (port.target_port.is_int()) {
          int64_t target = port.target_port.int_value();
          port_key = std::to_string(target);
          for (const auto& c : ip.desired.template_.spec.containers) {
            for (const auto& cp : c.ports) {
              if (cp.container_port == target && !cp.name.empty()) port_key = cp.name;
            }
          }
        } else {
          port_key = port.target_port.str_value();
        }
        auto hp = r->second->host_ports.find(port_key);
        auto n = nodes_.find(ip.node);
        if (hp == r->second->host_ports.end() || n == nodes_.end()) continue;
        dp.endpoints.push_back(n->second.address + ":" + std::to_string(hp->second));
      }
      std::sort(dp.endpoints.begin(), dp.endpoints.end());
      ds.ports.push_back(std::move(dp));
    }
    services.push_back(std::move(ds));
  }
  for (const auto& node : heard_) {
    agentapi::DesiredState state;
    state.node = node;
    for (const auto& [name, ip] : intended_) {
      if (ip.node == node) state.pods.push_back(ip.desired);
    }
    state.services = services;
    auto it = sent_.find(node);
    if (it != sent_.end()) {
      state.version = it->second.version;
      if (it->second == state) continue;
    }
    sent_[node] = state;
    changed_[node] = state;
  }
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
  std::vector<model::Manifest> target = pinned_ ? applied_.objects : DesiredObjects();
  for (const auto& m : applied_.objects) {
    if (PruneDisabled(m) && FindObject(target, m.key()) == nullptr) target.push_back(m);
  }
  diff::PlanOptions options;
  options.revisions = &revisions_;
  plan_ = diff::ComputePlan(target, applied_.objects, &live, options);
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

int Controller::HealthRank(const model::Manifest& m) const {
  const auto* d = m.deployment();
  if (d == nullptr) return m.is_supported() ? kHealthy : kUnknown;
  if (d->spec.paused) return kSuspended;
  auto it = rollouts_.find(m.key());
  if (it == rollouts_.end()) return kProgressing;
  const auto& st = it->second;
  if (const auto* c = st.Find(scheduler::kConditionProgressing);
      c != nullptr && c->reason == scheduler::kReasonProgressDeadlineExceeded) {
    return kDegraded;
  }
  if (st.updated_replicas == d->spec.replicas && st.available_replicas >= d->spec.replicas &&
      st.replicas == d->spec.replicas) {
    return kHealthy;
  }
  return kProgressing;
}

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

std::string Controller::SyncStatus() const {
  if (tree_ && !tree_->ok()) return "Error";
  if (!source_error_.ok() && desired_sha_.empty()) return "Error";
  if (!source_sha_ && applied_.sha.empty()) return "Unknown";
  if (pinned_) return plan_.has_changes() ? "OutOfSync" : "Synced";
  if (desired_sha_ != applied_.sha || plan_.has_changes()) return "OutOfSync";
  return "Synced";
}

std::string Controller::Health() const {
  int worst = kHealthy;
  for (const auto& m : applied_.objects) {
    if (m.is_supported()) worst = std::max(worst, HealthRank(m));
  }
  if (applied_.sha.empty() && !pinned_) worst = kUnknown;
  return HealthName(worst);
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
                    {"since", model::FormatRfc3339(source_error_since_ms_)},
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
                       {"health", m ? HealthName(HealthRank(*m)) : "Missing"},
                       {"message", m ? HealthMessage(*m) : ""}});
  }
  return {{"revision", source_sha_.value_or("")},
          {"appliedRevision", applied_.sha},
          {"sync", SyncStatus()},
          {"health", Health()},
          {"errors", errors},
          {"warnings", warnings},
          {"pinned", pinned_ ? Json(*pinned_) : Json(nullptr)},
          {"syncPolicy", options_.sync == SyncPolicy::kAuto ? "auto" : "manual"},
          {"sourceError", source_error},
          {"commit",
           {{"sha", commit_.sha}, {"summary", commit_.Summary()}, {"author", commit_.author_name}}},
          {"objects", objects}};
}

model::Json Controller::PlanJson(bool include_diff) const {
  diff::JsonOptions o;
  o.include_diff = include_diff;
  Json j = diff::ToJson(plan_, o);
  j["revision"] = source_sha_.value_or("");
  j["appliedRevision"] = applied_.sha;
  j["pinned"] = pinned_ ? Json(*pinned_) : Json(nullptr);
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
         {"health", HealthName(HealthRank(m))},
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
                     {"lastHeartbeat", model::FormatRfc3339(n.last_heartbeat_ms)}});
  }
  return {{"items", items}};
}

Controller::Counts Controller::MetricsCounts() const {
  Counts c;
  const auto applied = AppliedIndex();
  for (const auto& o : plan_.objects) {
    ++c.objects_by_sync[o.in_sync() ? "Synced" : "OutOfSync"];
    auto found = applied.find(o.key);
    const auto* m = found == applied.end() ? nullptr : found->second;
    ++c.objects_by_health[m ? HealthName(HealthRank(*m)) : "Missing"];
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
  if (t.container.empty()) return NotFound("pod " + pod + ": no container known");
  auto n = nodes_.find(node);
  if (n == nodes_.end()) return NotFound("pod " + pod + ": node " + node + " is not registered");
  auto api = n->second.labels.find("ballast.dev/agent-api");
  if (api == n->second.labels.end() || api->second.empty()) {
    return NotFound("pod " + pod + ": the agent of node " + node + " serves no logs");
  }
  t.agent_url = api->second;
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
