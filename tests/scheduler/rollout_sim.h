#pragma once

// A tiny simulated cluster for rollout tests: applies the stepper's actions to a pod list, and
// lets time pass and pods become ready.

#include <algorithm>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "model/cluster.h"
#include "model/object.h"
#include "scheduler/rollout.h"

namespace ballast::scheduler::testing {

inline model::Deployment MakeDeployment(const std::string& name, int32_t replicas) {
  model::Deployment d;
  d.metadata.name = name;
  d.spec.replicas = replicas;
  d.spec.template_.labels["app"] = name;
  return d;
}

struct RolloutSim {
  RolloutSim(model::Deployment d, std::string rev)
      : deployment(std::move(d)), revision(std::move(rev)) {}

  model::Deployment deployment;
  std::string revision;
  std::vector<model::Pod> pods;
  RolloutStatus status;
  int64_t now_ms = 1'000'000;
  uint64_t names = 0;

  // `count` ready pods of `rev`, ready since long ago.
  void AddReady(const std::string& rev, int count) {
    for (int i = 0; i < count; ++i) {
      model::Pod p = NewPod(rev);
      p.ready = true;
      p.phase = model::PodPhase::kRunning;
      p.ready_since_ms = now_ms - 3'600'000;
      p.created_ms = now_ms - 3'600'000;
      pods.push_back(p);
    }
  }

  model::Pod NewPod(const std::string& rev) {
    std::set<std::string> taken;
    for (const auto& p : pods) taken.insert(p.name);
    model::Pod p;
    p.name = NewPodNames(deployment.metadata.name, rev, 1, taken, ++names)[0];
    p.deployment = deployment.metadata.name;
    p.revision = rev;
    p.node = "node-" + std::to_string(names % 3);
    p.created_ms = now_ms;
    return p;
  }

  RolloutStep Step() { return StepRollout(deployment, revision, pods, status, now_ms); }

  // Stops become terminating; starts become new pods that are not ready yet.
  void Apply(const RolloutStep& step) {
    for (const auto& name : step.stop) {
      for (auto& p : pods) {
        if (p.name == name) p.terminating = true;
      }
    }
    for (const auto& s : step.start) {
      for (int i = 0; i < s.count; ++i) pods.push_back(NewPod(s.revision));
    }
    status = step.status;
  }

  RolloutStep StepAndApply() {
    RolloutStep step = Step();
    Apply(step);
    return step;
  }

  // Terminating pods go away; pods of revisions not in `broken` become ready.
  void Settle(const std::set<std::string>& broken = {}) {
    pods.erase(
        std::remove_if(pods.begin(), pods.end(), [](const model::Pod& p) { return p.terminating; }),
        pods.end());
    for (auto& p : pods) {
      if (!p.ready && !broken.count(p.revision)) {
        p.ready = true;
        p.phase = model::PodPhase::kRunning;
        p.ready_since_ms = now_ms;
      }
    }
  }

  int Active(const std::string& rev = "") const {
    int n = 0;
    for (const auto& p : pods) n += !p.terminating && (rev.empty() || p.revision == rev);
    return n;
  }
  int Terminating() const {
    int n = 0;
    for (const auto& p : pods) n += p.terminating;
    return n;
  }
  int Available() const {
    int n = 0;
    for (const auto& p : pods) {
      const int64_t min_ready = int64_t{deployment.spec.min_ready_seconds} * 1000;
      n += !p.terminating && p.ready && (min_ready == 0 || p.ready_since_ms + min_ready < now_ms);
    }
    return n;
  }
};

}  // namespace ballast::scheduler::testing
