#include "scheduler/rollout.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <limits>
#include <map>

#include "model/rfc3339.h"
#include "scheduler/saturating.h"

namespace ballast::scheduler {
namespace {

constexpr char kStatusTrue[] = "True";
constexpr char kStatusFalse[] = "False";
constexpr char kStatusUnknown[] = "Unknown";

// The pods of one revision: what Kubernetes keeps as a ReplicaSet.
struct RevisionSet {
  std::string revision;
  std::vector<const model::Pod*> pods;  // active: not terminating, not finished
  int64_t created_ms = std::numeric_limits<int64_t>::max();
  int32_t available = 0;
  int32_t ready = 0;
  int32_t target = 0;  // the size this step decides on
  int32_t size() const { return static_cast<int32_t>(pods.size()); }
};

bool IsAvailable(const model::Pod& p, int32_t min_ready_seconds, int64_t now_ms) {
  if (!p.ready) return false;
  if (min_ready_seconds <= 0) return true;
  return SaturatingAdd(p.ready_since_ms, int64_t{min_ready_seconds} * 1000) < now_ms;
}

bool IsFinished(const model::Pod& p) {
  return p.phase == model::PodPhase::kFailed || p.phase == model::PodPhase::kSucceeded;
}

int32_t PhaseRank(model::PodPhase phase) {
  switch (phase) {
    case model::PodPhase::kPending:
      return 0;
    case model::PodPhase::kUnknown:
      return 1;
    case model::PodPhase::kRunning:
      return 2;
    default:
      return 3;
  }
}

// Chooses `count` pods of `set` to stop, in the order a ReplicaSet deletes them.
std::vector<std::string> PodsToStop(const RevisionSet& set, int32_t count, int32_t min_ready,
                                    int64_t now_ms) {
  std::map<std::string, int32_t> per_node;
  for (const model::Pod* p : set.pods) {
    if (!p->node.empty()) ++per_node[p->node];
  }
  std::vector<const model::Pod*> order = set.pods;
  auto key = [&](const model::Pod* p) {
    const bool assigned = !p->node.empty();
    const bool available = IsAvailable(*p, min_ready, now_ms);
    const int32_t doubled = assigned ? per_node[p->node] : 0;
    // Smaller sorts first, i.e. is stopped first.
    return std::make_tuple(assigned, PhaseRank(p->phase), p->ready, available, -doubled,
                           -p->ready_since_ms, -p->restarts, -p->created_ms, p->name);
  };
  std::sort(order.begin(), order.end(),
            [&](const model::Pod* a, const model::Pod* b) { return key(a) < key(b); });
  std::vector<std::string> out;
  for (int32_t i = 0; i < count && i < static_cast<int32_t>(order.size()); ++i) {
    out.push_back(order[i]->name);
  }
  return out;
}

// Kubernetes' SetDeploymentCondition: nothing changes when status and reason are the same; the
// transition time is kept when only the reason changes.
void SetCondition(std::vector<DeploymentCondition>& conditions, DeploymentCondition c) {
  auto it = std::find_if(conditions.begin(), conditions.end(),
                         [&](const DeploymentCondition& o) { return o.type == c.type; });
  if (it != conditions.end()) {
    if (it->status == c.status && it->reason == c.reason) return;
    if (it->status == c.status) c.last_transition_ms = it->last_transition_ms;
    conditions.erase(it);
  }
  conditions.push_back(std::move(c));
}

DeploymentCondition MakeCondition(const char* type, const char* status, const char* reason,
                                  std::string message, int64_t now_ms) {
  return DeploymentCondition{type, status, reason, std::move(message), now_ms, now_ms};
}

std::string Quote(const std::string& s) { return "\"" + s + "\""; }

}  // namespace

const DeploymentCondition* RolloutStatus::Find(std::string_view type) const {
  for (const auto& c : conditions) {
    if (c.type == type) return &c;
  }
  return nullptr;
}

model::Json StatusToJson(const RolloutStatus& status) {
  model::Json j = model::Json::object();
  auto count = [&](const char* name, int32_t v) {
    if (v != 0) j[name] = v;
  };
  count("replicas", status.replicas);
  count("updatedReplicas", status.updated_replicas);
  count("readyReplicas", status.ready_replicas);
  count("availableReplicas", status.available_replicas);
  count("unavailableReplicas", status.unavailable_replicas);
  model::Json conditions = model::Json::array();
  for (const auto& c : status.conditions) {
    conditions.push_back({{"type", c.type},
                          {"status", c.status},
                          {"lastUpdateTime", model::FormatRfc3339(c.last_update_ms)},
                          {"lastTransitionTime", model::FormatRfc3339(c.last_transition_ms)},
                          {"reason", c.reason},
                          {"message", c.message}});
  }
  if (!conditions.empty()) j["conditions"] = std::move(conditions);
  return j;
}

RolloutBounds ResolveBounds(const model::DeploymentSpec& spec) {
  RolloutBounds b;
  if (spec.strategy.type != "RollingUpdate") return b;
  const int64_t surge = model::ScaledValue(spec.strategy.max_surge, spec.replicas, true);
  const int64_t unavailable =
      model::ScaledValue(spec.strategy.max_unavailable, spec.replicas, false);
  b.max_surge = static_cast<int32_t>(std::max<int64_t>(0, surge));
  b.max_unavailable = static_cast<int32_t>(std::max<int64_t>(0, unavailable));
  if (b.max_surge == 0 && b.max_unavailable == 0) b.max_unavailable = 1;
  return b;
}

RolloutStep StepRollout(const model::Deployment& deployment, std::string_view revision_view,
                        const std::vector<model::Pod>& pods, const RolloutStatus& previous,
                        int64_t now_ms) {
  const model::DeploymentSpec& spec = deployment.spec;
  const std::string revision(revision_view);
  const std::string rs_name = deployment.metadata.name + "-" + revision;
  const int32_t replicas = std::max(0, spec.replicas);
  const int32_t min_ready = spec.min_ready_seconds;
  const bool rolling = spec.strategy.type != "Recreate";
  const RolloutBounds bounds = ResolveBounds(spec);
  const int32_t max_surge = rolling ? bounds.max_surge : 0;
  const int32_t max_unavailable =
      (!rolling || replicas == 0) ? 0 : std::min(bounds.max_unavailable, replicas);
  const bool has_deadline = spec.progress_deadline_seconds != std::numeric_limits<int32_t>::max();

  RolloutStep step;

  // Group this Deployment's pods by revision.
  std::map<std::string, RevisionSet> sets;
  bool old_pods_exist = false;  // terminating ones included (Recreate waits for them)
  for (const model::Pod& p : pods) {
    if (p.namespace_ != deployment.metadata.namespace_ ||
        p.deployment != deployment.metadata.name) {
      continue;
    }
    if (IsFinished(p)) {
      if (!p.terminating) step.stop.push_back(p.name);
      continue;
    }
    if (p.revision != revision) old_pods_exist = true;
    if (p.terminating) continue;
    RevisionSet& s = sets[p.revision];
    s.revision = p.revision;
    s.pods.push_back(&p);
    s.created_ms = std::min(s.created_ms, p.created_ms);
    if (p.ready) ++s.ready;
    if (IsAvailable(p, min_ready, now_ms)) ++s.available;
  }
  for (auto& [rev, s] : sets) s.target = s.size();
  const bool new_existed = sets.count(revision) > 0;
  RevisionSet& new_set = sets[revision];
  new_set.revision = revision;
  std::vector<RevisionSet*> olds;  // oldest first
  for (auto& [rev, s] : sets) {
    if (rev != revision) olds.push_back(&s);
  }
  std::sort(olds.begin(), olds.end(), [](const RevisionSet* a, const RevisionSet* b) {
    return std::tie(a->created_ms, a->revision) < std::tie(b->created_ms, b->revision);
  });

  // Status as observed, before this step's actions (as the controller computes it).
  RolloutStatus status;
  for (const auto& [rev, s] : sets) {
    status.replicas += s.size();
    status.ready_replicas += s.ready;
    status.available_replicas += s.available;
  }
  status.updated_replicas = new_set.size();
  status.unavailable_replicas = std::max(0, replicas - status.available_replicas);
  status.conditions = previous.conditions;
  status.complete_revision = previous.complete_revision;
  status.observed_replicas = replicas;
  status.observed_max_replicas = replicas + max_surge;

  auto sum_targets = [&]() {
    int32_t total = 0;
    for (const auto& [rev, s] : sets) total += s.target;
    return total;
  };
  // Kubernetes' NewRSNewReplicas for RollingUpdate.
  auto new_rs_new_replicas = [&]() {
    const int32_t current = sum_targets();
    const int32_t max_total = replicas + max_surge;
    if (current >= max_total) return new_set.target;
    const int32_t scale_up = std::min(max_total - current, replicas - new_set.target);
    return new_set.target + std::max(0, scale_up);
  };

  int32_t active_count = 0;
  for (const auto& [rev, s] : sets) active_count += s.target > 0 ? 1 : 0;
  const bool scaling_event =
      previous.observed_replicas >= 0 && previous.observed_replicas != replicas && active_count > 0;
  bool rollout_path = false;
  bool created_new = false;

  if (spec.paused || scaling_event) {
    // The controller's sync(): scale only.
    std::vector<RevisionSet*> active;
    for (auto& [rev, s] : sets) {
      if (s.target > 0) active.push_back(&s);
    }
    if (active.size() <= 1) {
      RevisionSet* only = nullptr;
      if (active.size() == 1) {
        only = active[0];
      } else if (new_existed) {
        only = &new_set;
      } else if (!olds.empty()) {
        only = olds.back();
      }
      if (only != nullptr) only->target = replicas;
    } else if (new_set.size() == replicas && new_set.available == replicas) {
      for (RevisionSet* o : olds) o->target = 0;  // saturated: old ones go
    } else if (rolling) {
      const int32_t total = sum_targets();
      const int32_t allowed = replicas > 0 ? replicas + max_surge : 0;
      const int32_t to_add = allowed - total;
      if (to_add != 0) {
        // Larger first; on equal size newer first when growing, older first when shrinking.
        std::sort(active.begin(), active.end(), [&](const RevisionSet* a, const RevisionSet* b) {
          if (a->target != b->target) return a->target > b->target;
          if (a->created_ms != b->created_ms) {
            return to_add > 0 ? a->created_ms > b->created_ms : a->created_ms < b->created_ms;
          }
          return a->revision < b->revision;
        });
        int32_t annotated = previous.observed_max_replicas > 0 ? previous.observed_max_replicas
                                                               : std::max(1, status.replicas);
        int32_t added = 0;
        std::vector<int32_t> sizes;
        for (RevisionSet* rs : active) {
          int32_t proportion = 0;
          if (rs->target != 0 && to_add != added) {
            int32_t fraction;
            if (replicas == 0) {
              fraction = -rs->target;
            } else {
              const double size = static_cast<double>(rs->target) *
                                  static_cast<double>(replicas + max_surge) /
                                  static_cast<double>(annotated);
              fraction = static_cast<int32_t>(std::lround(size)) - rs->target;
            }
            const int32_t allowed_left = to_add - added;
            proportion =
                to_add > 0 ? std::min(fraction, allowed_left) : std::max(fraction, allowed_left);
          }
          sizes.push_back(rs->target + proportion);
          added += proportion;
        }
        sizes[0] = std::max(0, sizes[0] + (to_add - added));
        for (size_t i = 0; i < active.size(); ++i) active[i]->target = std::max(0, sizes[i]);
      }
    }
  } else if (!rolling) {
    // Recreate.
    rollout_path = true;
    bool scaled_down = false;
    for (RevisionSet* o : olds) {
      if (o->target > 0) {
        o->target = 0;
        scaled_down = true;
      }
    }
    if (!scaled_down && !old_pods_exist) {
      created_new = !new_existed && replicas > 0;
      new_set.target = replicas;
    }
  } else {
    // RollingUpdate: reconcileNewReplicaSet, then (if it did not scale) reconcileOldReplicaSets.
    rollout_path = true;
    bool scaled = false;
    if (!new_existed) {
      new_set.target = new_rs_new_replicas();
      created_new = new_set.target > 0;
    } else if (new_set.target > replicas) {
      new_set.target = replicas;
      scaled = true;
    } else if (new_set.target < replicas) {
      const int32_t n = new_rs_new_replicas();
      scaled = n != new_set.target;
      new_set.target = n;
    }
    int32_t old_count = 0;
    for (RevisionSet* o : olds) old_count += o->target;
    if (!scaled && old_count > 0) {
      const int32_t all = sum_targets();
      const int32_t min_available = replicas - max_unavailable;
      const int32_t new_unavailable = new_set.target - new_set.available;
      int32_t max_scaled_down = all - min_available - new_unavailable;
      if (max_scaled_down > 0) {
        // Unhealthy old pods first, oldest revisions first.
        int32_t cleaned = 0;
        for (RevisionSet* o : olds) {
          if (cleaned >= max_scaled_down) break;
          if (o->target == 0 || o->target == o->available) continue;
          const int32_t n = std::min(max_scaled_down - cleaned, o->target - o->available);
          o->target -= n;
          cleaned += n;
        }
        // Then available ones, as long as availability stays at the minimum.
        int32_t available = 0;
        for (const auto& [rev, s] : sets) available += s.available;
        if (available > min_available) {
          const int32_t total_down = available - min_available;
          int32_t done = 0;
          for (RevisionSet* o : olds) {
            if (done >= total_down) break;
            if (o->target == 0) continue;
            const int32_t n = std::min(o->target, total_down - done);
            o->target -= n;
            done += n;
          }
        }
      }
    }
  }

  // Targets to actions: new revision first, then old ones oldest first.
  std::vector<RevisionSet*> order{&new_set};
  order.insert(order.end(), olds.begin(), olds.end());
  for (RevisionSet* s : order) {
    if (s->target > s->size()) {
      step.start.push_back({s->revision, s->target - s->size()});
    } else if (s->target < s->size()) {
      for (auto& name : PodsToStop(*s, s->size() - s->target, min_ready, now_ms)) {
        step.stop.push_back(std::move(name));
      }
    }
  }

  // Conditions.
  auto& conds = status.conditions;
  if (has_deadline) {
    const DeploymentCondition* prog = status.Find(kConditionProgressing);
    const bool timed_out = prog != nullptr && prog->reason == kReasonProgressDeadlineExceeded;
    const bool paused_cond = prog != nullptr && prog->reason == kReasonDeploymentPaused;
    if (!timed_out) {
      if (spec.paused && !paused_cond) {
        SetCondition(conds, MakeCondition(kConditionProgressing, kStatusUnknown,
                                          kReasonDeploymentPaused, "Deployment is paused", now_ms));
      } else if (!spec.paused && paused_cond) {
        SetCondition(conds,
                     MakeCondition(kConditionProgressing, kStatusUnknown, kReasonDeploymentResumed,
                                   "Deployment is resumed", now_ms));
      }
    }
    if (rollout_path && created_new) {
      SetCondition(conds,
                   MakeCondition(kConditionProgressing, kStatusTrue, kReasonNewReplicaSetCreated,
                                 "Created new replica set " + Quote(rs_name), now_ms));
    } else if (rollout_path && status.Find(kConditionProgressing) == nullptr) {
      SetCondition(conds,
                   MakeCondition(kConditionProgressing, kStatusTrue, kReasonFoundNewReplicaSet,
                                 "Found new replica set " + Quote(rs_name), now_ms));
    }
  }
  if (status.available_replicas >= replicas - max_unavailable) {
    SetCondition(conds,
                 MakeCondition(kConditionAvailable, kStatusTrue, kReasonMinimumReplicasAvailable,
                               "Deployment has minimum availability.", now_ms));
  } else {
    SetCondition(conds,
                 MakeCondition(kConditionAvailable, kStatusFalse, kReasonMinimumReplicasUnavailable,
                               "Deployment does not have minimum availability.", now_ms));
  }
  const bool complete = status.updated_replicas == replicas && status.replicas == replicas &&
                        status.available_replicas == replicas;
  if (complete) status.complete_revision = revision;
  if (rollout_path && has_deadline) {
    const DeploymentCondition* cur = status.Find(kConditionProgressing);
    const bool already_complete = status.replicas == status.updated_replicas && cur != nullptr &&
                                  cur->reason == kReasonNewReplicaSetAvailable;
    if (!already_complete) {
      const int32_t prev_old = previous.replicas - previous.updated_replicas;
      const int32_t new_old = status.replicas - status.updated_replicas;
      const bool progressing = status.updated_replicas > previous.updated_replicas ||
                               new_old < prev_old ||
                               status.ready_replicas > previous.ready_replicas ||
                               status.available_replicas > previous.available_replicas;
      if (complete) {
        SetCondition(
            conds, MakeCondition(kConditionProgressing, kStatusTrue, kReasonNewReplicaSetAvailable,
                                 "ReplicaSet " + Quote(rs_name) + " has successfully progressed.",
                                 now_ms));
      } else if (progressing) {
        // Progress refreshes the last update time even when the reason stays the same.
        DeploymentCondition c =
            MakeCondition(kConditionProgressing, kStatusTrue, kReasonReplicaSetUpdated,
                          "ReplicaSet " + Quote(rs_name) + " is progressing.", now_ms);
        auto it = std::find_if(conds.begin(), conds.end(), [](const DeploymentCondition& o) {
          return o.type == kConditionProgressing;
        });
        if (it != conds.end()) {
          if (it->status == kStatusTrue) c.last_transition_ms = it->last_transition_ms;
          conds.erase(it);
        }
        conds.push_back(std::move(c));
      } else if (cur != nullptr && cur->reason != kReasonNewReplicaSetAvailable) {
        const bool timed_out =
            cur->reason == kReasonProgressDeadlineExceeded ||
            SaturatingAdd(cur->last_update_ms, int64_t{spec.progress_deadline_seconds} * 1000) <
                now_ms;
        if (timed_out) {
          SetCondition(conds,
                       MakeCondition(
                           kConditionProgressing, kStatusFalse, kReasonProgressDeadlineExceeded,
                           "ReplicaSet " + Quote(rs_name) + " has timed out progressing.", now_ms));
        }
      }
    }
  }
  // Keep conditions in a stable order: Available, then Progressing (as kubectl shows them).
  std::stable_sort(
      conds.begin(), conds.end(),
      [](const DeploymentCondition& a, const DeploymentCondition& b) { return a.type < b.type; });

  // Auto-rollback (reported, not performed).
  const DeploymentCondition* prog = status.Find(kConditionProgressing);
  auto annotation = deployment.metadata.annotations.find(model::kAnnotationAutoRollback);
  if (annotation != deployment.metadata.annotations.end() && annotation->second == "true" &&
      prog != nullptr && prog->reason == kReasonProgressDeadlineExceeded &&
      !status.complete_revision.empty() && status.complete_revision != revision) {
    step.rollback_to = status.complete_revision;
  }

  // When time alone changes the answer next.
  int64_t requeue = 0;
  auto consider = [&](int64_t t) {
    if (t > now_ms && (requeue == 0 || t < requeue)) requeue = t;
  };
  if (min_ready > 0) {
    for (const auto& [rev, s] : sets) {
      for (const model::Pod* p : s.pods) {
        if (p->ready && !IsAvailable(*p, min_ready, now_ms)) {
          consider(SaturatingAdd(p->ready_since_ms, int64_t{min_ready} * 1000 + 1));
        }
      }
    }
  }
  if (has_deadline && !spec.paused && prog != nullptr && prog->status == kStatusTrue &&
      prog->reason != kReasonNewReplicaSetAvailable) {
    consider(
        SaturatingAdd(prog->last_update_ms, int64_t{spec.progress_deadline_seconds} * 1000 + 1));
  }
  step.requeue_at_ms = requeue;
  step.status = std::move(status);
  return step;
}

std::vector<std::string> NewPodNames(std::string_view deployment, std::string_view revision,
                                     int32_t count, const std::set<std::string>& taken,
                                     uint64_t seed) {
  static constexpr char kAlphabet[] = "bcdfghjklmnpqrstvwxz2456789";
  constexpr uint64_t kAlphabetSize = sizeof(kAlphabet) - 1;
  std::vector<std::string> out;
  std::set<std::string> used;
  const std::string prefix = std::string(deployment) + "-" + std::string(revision) + "-";
  // FNV-1a of the prefix, mixed with the seed, drives a splitmix64 sequence.
  uint64_t state = 1469598103934665603ULL;
  for (char c : prefix) state = (state ^ static_cast<unsigned char>(c)) * 1099511628211ULL;
  state ^= seed * 0x9e3779b97f4a7c15ULL;
  // Bounded, so that an absurd count or a nearly full name space cannot hang the caller.
  for (int64_t attempts = 0;
       static_cast<int32_t>(out.size()) < count && attempts < int64_t{count} * 64 + 1024;
       ++attempts) {
    uint64_t z = (state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    z ^= z >> 31;
    std::string name = prefix;
    for (int i = 0; i < 5; ++i) {
      name.push_back(kAlphabet[z % kAlphabetSize]);
      z /= kAlphabetSize;
    }
    if (taken.count(name) || used.count(name)) continue;
    used.insert(name);
    out.push_back(std::move(name));
  }
  return out;
}

}  // namespace ballast::scheduler
