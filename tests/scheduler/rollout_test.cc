// Table tests for the rolling-update stepper: Kubernetes' numbers, conditions and messages.

#include "scheduler/rollout.h"

#include <limits>
#include <regex>
#include <set>
#include <string>

#include <gtest/gtest.h>

#include "tests/scheduler/rollout_sim.h"

namespace ballast::scheduler {
namespace {

using testing::MakeDeployment;
using testing::RolloutSim;

int Started(const RolloutStep& step, const std::string& rev) {
  int n = 0;
  for (const auto& s : step.start) n += s.revision == rev ? s.count : 0;
  return n;
}

int StoppedOf(const RolloutSim& sim, const RolloutStep& step, const std::string& rev) {
  int n = 0;
  for (const auto& name : step.stop) {
    for (const auto& p : sim.pods) n += p.name == name && p.revision == rev;
  }
  return n;
}

TEST(RolloutBoundsTest, FencepostsRoundAsKubernetes) {
  model::DeploymentSpec spec;
  spec.replicas = 10;
  spec.strategy.max_surge = std::string("25%");
  spec.strategy.max_unavailable = std::string("25%");
  RolloutBounds b = ResolveBounds(spec);
  EXPECT_EQ(b.max_surge, 3);        // 2.5 rounded up
  EXPECT_EQ(b.max_unavailable, 2);  // 2.5 rounded down
  spec.replicas = 1;
  b = ResolveBounds(spec);
  EXPECT_EQ(b.max_surge, 1);
  EXPECT_EQ(b.max_unavailable, 0);
  spec.strategy.max_surge = int64_t{0};
  spec.strategy.max_unavailable = int64_t{0};
  EXPECT_EQ(ResolveBounds(spec).max_unavailable, 1) << "both zero means maxUnavailable 1";
  spec.strategy.type = "Recreate";
  EXPECT_EQ(ResolveBounds(spec).max_surge, 0);
  EXPECT_EQ(ResolveBounds(spec).max_unavailable, 0);
}

TEST(RolloutStepTest, NewDeploymentStartsEveryReplica) {
  RolloutSim sim{MakeDeployment("web", 3), "aaaa"};
  RolloutStep step = sim.Step();
  ASSERT_EQ(step.start.size(), 1u);
  EXPECT_EQ(step.start[0], (PodStart{"aaaa", 3}));
  EXPECT_TRUE(step.stop.empty());
  const DeploymentCondition* prog = step.status.Find(kConditionProgressing);
  ASSERT_NE(prog, nullptr);
  EXPECT_EQ(prog->status, "True");
  EXPECT_EQ(prog->reason, kReasonNewReplicaSetCreated);
  EXPECT_EQ(prog->message, "Created new replica set \"web-aaaa\"");
  const DeploymentCondition* avail = step.status.Find(kConditionAvailable);
  ASSERT_NE(avail, nullptr);
  EXPECT_EQ(avail->status, "False");
  EXPECT_EQ(avail->reason, kReasonMinimumReplicasUnavailable);
  EXPECT_EQ(avail->message, "Deployment does not have minimum availability.");

  sim.Apply(step);
  sim.now_ms += 1000;
  sim.Settle();
  step = sim.StepAndApply();
  EXPECT_TRUE(step.start.empty());
  EXPECT_TRUE(step.stop.empty());
  EXPECT_EQ(step.status.replicas, 3);
  EXPECT_EQ(step.status.updated_replicas, 3);
  EXPECT_EQ(step.status.ready_replicas, 3);
  EXPECT_EQ(step.status.available_replicas, 3);
  EXPECT_EQ(step.status.unavailable_replicas, 0);
  EXPECT_EQ(step.status.complete_revision, "aaaa");
  prog = step.status.Find(kConditionProgressing);
  ASSERT_NE(prog, nullptr);
  EXPECT_EQ(prog->reason, kReasonNewReplicaSetAvailable);
  EXPECT_EQ(prog->message, "ReplicaSet \"web-aaaa\" has successfully progressed.");
  avail = step.status.Find(kConditionAvailable);
  EXPECT_EQ(avail->reason, kReasonMinimumReplicasAvailable);
  EXPECT_EQ(avail->message, "Deployment has minimum availability.");
}

TEST(RolloutStepTest, RollingUpdateFollowsKubernetesDocExample) {
  // 10 replicas, maxSurge 3, maxUnavailable 2: the new ReplicaSet is created with 3 pods and
  // the old one scaled down to 8 in the same sync.
  RolloutSim sim{MakeDeployment("web", 10), "bbbb"};
  sim.deployment.spec.strategy.max_surge = int64_t{3};
  sim.deployment.spec.strategy.max_unavailable = int64_t{2};
  sim.AddReady("aaaa", 10);
  RolloutStep step = sim.Step();
  EXPECT_EQ(Started(step, "bbbb"), 3);
  EXPECT_EQ(StoppedOf(sim, step, "aaaa"), 2);
  sim.Apply(step);
  // Terminating pods do not count: the new one grows to 5 (8 + 5 = 13)...
  step = sim.StepAndApply();
  EXPECT_EQ(Started(step, "bbbb"), 2);
  EXPECT_TRUE(step.stop.empty());
  // ...and nothing more happens until new pods become available.
  step = sim.StepAndApply();
  EXPECT_TRUE(step.start.empty());
  EXPECT_TRUE(step.stop.empty());
  // ...then the rollout proceeds, bounded, to the end.
  for (int i = 0; i < 20 && sim.Active("aaaa") + sim.Terminating() > 0; ++i) {
    sim.now_ms += 1000;
    sim.Settle();
    step = sim.StepAndApply();
    EXPECT_LE(sim.Active(), 13);
    EXPECT_GE(sim.Available(), 8);
  }
  sim.now_ms += 1000;
  sim.Settle();
  step = sim.StepAndApply();
  EXPECT_EQ(sim.Active("bbbb"), 10);
  EXPECT_EQ(sim.Active("aaaa"), 0);
  EXPECT_EQ(step.status.Find(kConditionProgressing)->reason, kReasonNewReplicaSetAvailable);
}

TEST(RolloutStepTest, SmallDeploymentSurgesOneAtATime) {
  RolloutSim sim{MakeDeployment("web", 4), "aaaa"};
  sim.AddReady("aaaa", 4);
  sim.StepAndApply();  // steady
  sim.revision = "bbbb";
  RolloutStep step = sim.Step();  // 25%: surge 1, unavailable 1
  EXPECT_EQ(Started(step, "bbbb"), 1);
  EXPECT_EQ(StoppedOf(sim, step, "aaaa"), 1);
  const DeploymentCondition* prog = step.status.Find(kConditionProgressing);
  EXPECT_EQ(prog->reason, kReasonNewReplicaSetCreated);
}

TEST(RolloutStepTest, ProportionalScalingMidRollout) {
  // Kubernetes' documented example: 10 replicas, maxSurge 3, maxUnavailable 2, the new
  // revision stuck at 5 pods and the old one at 8; scaling to 15 adds 3 old and 2 new.
  RolloutSim sim{MakeDeployment("web", 10), "bbbb"};
  sim.deployment.spec.strategy.max_surge = int64_t{3};
  sim.deployment.spec.strategy.max_unavailable = int64_t{2};
  sim.AddReady("aaaa", 8);
  for (int i = 0; i < 5; ++i) sim.pods.push_back(sim.NewPod("bbbb"));
  sim.status = sim.Step().status;  // observed 10 replicas
  sim.deployment.spec.replicas = 15;
  RolloutStep step = sim.Step();
  EXPECT_EQ(Started(step, "aaaa"), 3);
  EXPECT_EQ(Started(step, "bbbb"), 2);
  EXPECT_TRUE(step.stop.empty());
}

TEST(RolloutStepTest, RolloverScalesDownTheHalfRolledRevisionAtOnce) {
  RolloutSim sim{MakeDeployment("web", 4), "bbbb"};
  sim.AddReady("aaaa", 4);
  sim.StepAndApply();  // one bbbb pod starting, one aaaa stopping
  sim.Settle({"bbbb"});
  ASSERT_EQ(sim.Active("bbbb"), 1);
  sim.revision = "cccc";
  RolloutStep step = sim.StepAndApply();
  // cccc is created; the unavailable bbbb pod goes at once, aaaa stays at minimum availability.
  EXPECT_EQ(Started(step, "cccc"), 1);
  EXPECT_EQ(sim.Active("bbbb"), 0);
  EXPECT_EQ(sim.Active("aaaa"), 3);
  for (int i = 0; i < 20; ++i) {
    sim.now_ms += 1000;
    sim.Settle();
    sim.StepAndApply();
  }
  EXPECT_EQ(sim.Active("cccc"), 4);
  EXPECT_EQ(sim.Active(), 4);
}

TEST(RolloutStepTest, RecreateStopsEverythingThenStarts) {
  RolloutSim sim{MakeDeployment("web", 3), "bbbb"};
  sim.deployment.spec.strategy.type = "Recreate";
  sim.AddReady("aaaa", 3);
  RolloutStep step = sim.StepAndApply();
  EXPECT_EQ(step.stop.size(), 3u);
  EXPECT_TRUE(step.start.empty());
  step = sim.StepAndApply();  // old pods still terminating: wait
  EXPECT_TRUE(step.start.empty());
  EXPECT_TRUE(step.stop.empty());
  sim.Settle();
  step = sim.StepAndApply();
  EXPECT_EQ(Started(step, "bbbb"), 3);
}

TEST(RolloutStepTest, PausedDeploymentDoesNotRollButScales) {
  RolloutSim sim{MakeDeployment("web", 3), "bbbb"};
  sim.deployment.spec.paused = true;
  sim.AddReady("aaaa", 3);
  RolloutStep step = sim.StepAndApply();
  EXPECT_TRUE(step.start.empty());
  EXPECT_TRUE(step.stop.empty());
  const DeploymentCondition* prog = step.status.Find(kConditionProgressing);
  ASSERT_NE(prog, nullptr);
  EXPECT_EQ(prog->status, "Unknown");
  EXPECT_EQ(prog->reason, kReasonDeploymentPaused);
  EXPECT_EQ(prog->message, "Deployment is paused");
  sim.deployment.spec.replicas = 5;
  step = sim.StepAndApply();
  EXPECT_EQ(Started(step, "aaaa"), 2) << "scaling applies to the running revision";
  sim.deployment.spec.paused = false;
  step = sim.StepAndApply();
  prog = step.status.Find(kConditionProgressing);
  EXPECT_EQ(Started(step, "bbbb"), 2);
  EXPECT_EQ(prog->reason, kReasonNewReplicaSetCreated);
}

TEST(RolloutStepTest, ResumedConditionBeforeRollingAgain) {
  RolloutSim sim{MakeDeployment("web", 2), "aaaa"};
  sim.AddReady("aaaa", 2);
  sim.deployment.spec.paused = true;
  sim.StepAndApply();
  sim.deployment.spec.paused = false;
  RolloutStep step = sim.StepAndApply();
  // Complete at once, so the resumed condition gives way to NewReplicaSetAvailable.
  EXPECT_EQ(step.status.Find(kConditionProgressing)->reason, kReasonNewReplicaSetAvailable);
}

TEST(RolloutStepTest, ProgressDeadlineAndAutoRollback) {
  RolloutSim sim{MakeDeployment("web", 2), "aaaa"};
  sim.deployment.spec.progress_deadline_seconds = 10;
  sim.AddReady("aaaa", 2);
  sim.StepAndApply();
  ASSERT_EQ(sim.status.complete_revision, "aaaa");
  sim.revision = "bbbb";  // a revision whose pods never become ready
  RolloutStep step = sim.StepAndApply();
  const int64_t started = sim.now_ms;
  EXPECT_EQ(step.requeue_at_ms, started + 10'001);
  // The next step sees the new pod counted as updated: progress, the deadline restarts.
  sim.now_ms += 1000;
  step = sim.StepAndApply();
  EXPECT_EQ(step.status.updated_replicas, 1);
  EXPECT_EQ(step.status.Find(kConditionProgressing)->reason, kReasonReplicaSetUpdated);
  EXPECT_EQ(step.status.Find(kConditionProgressing)->last_update_ms, started + 1000);
  for (int i = 0; i < 10; ++i) {
    sim.now_ms += 1000;
    sim.Settle({"bbbb"});
    step = sim.StepAndApply();
    EXPECT_EQ(step.status.Find(kConditionProgressing)->status, "True") << i;
  }
  sim.now_ms += 1000;
  step = sim.StepAndApply();
  const DeploymentCondition* prog = step.status.Find(kConditionProgressing);
  EXPECT_EQ(prog->status, "False");
  EXPECT_EQ(prog->reason, kReasonProgressDeadlineExceeded);
  EXPECT_EQ(prog->message, "ReplicaSet \"web-bbbb\" has timed out progressing.");
  EXPECT_EQ(step.rollback_to, "") << "auto-rollback is opt-in";

  sim.deployment.metadata.annotations[model::kAnnotationAutoRollback] = "true";
  step = sim.StepAndApply();
  EXPECT_EQ(step.rollback_to, "aaaa");
  EXPECT_EQ(step.status.Find(kConditionProgressing)->reason, kReasonProgressDeadlineExceeded)
      << "stays exceeded";
  // Rolling back to aaaa (the caller changes the template) completes and clears it.
  sim.revision = "aaaa";
  for (int i = 0; i < 10; ++i) {
    sim.now_ms += 1000;
    sim.Settle({"bbbb"});
    step = sim.StepAndApply();
  }
  EXPECT_EQ(step.rollback_to, "");
  EXPECT_EQ(sim.Active("aaaa"), 2);
  EXPECT_EQ(sim.Active("bbbb"), 0);
}

TEST(RolloutStepTest, ProgressRefreshesTheDeadline) {
  RolloutSim sim{MakeDeployment("web", 3), "aaaa"};
  sim.deployment.spec.progress_deadline_seconds = 5;
  sim.deployment.spec.strategy.max_surge = int64_t{1};
  sim.deployment.spec.strategy.max_unavailable = int64_t{0};
  sim.StepAndApply();
  // One pod becomes ready every 4 s: never 5 s without progress.
  for (int i = 0; i < 6; ++i) {
    sim.now_ms += 4000;
    for (auto& p : sim.pods) {
      if (!p.ready) {
        p.ready = true;
        p.ready_since_ms = sim.now_ms;
        break;
      }
    }
    RolloutStep step = sim.StepAndApply();
    EXPECT_NE(step.status.Find(kConditionProgressing)->reason, kReasonProgressDeadlineExceeded);
  }
}

TEST(RolloutStepTest, MinReadySecondsDelaysAvailability) {
  RolloutSim sim{MakeDeployment("web", 1), "aaaa"};
  sim.deployment.spec.min_ready_seconds = 5;
  sim.StepAndApply();
  sim.Settle();  // ready now
  const int64_t ready_at = sim.now_ms;
  RolloutStep step = sim.StepAndApply();
  EXPECT_EQ(step.status.ready_replicas, 1);
  EXPECT_EQ(step.status.available_replicas, 0);
  EXPECT_EQ(step.requeue_at_ms, ready_at + 5001);
  sim.now_ms = ready_at + 5000;
  EXPECT_EQ(sim.Step().status.available_replicas, 0) << "strictly more than minReadySeconds";
  sim.now_ms = ready_at + 5001;
  step = sim.StepAndApply();
  EXPECT_EQ(step.status.available_replicas, 1);
  EXPECT_EQ(step.status.Find(kConditionProgressing)->reason, kReasonNewReplicaSetAvailable);
}

TEST(RolloutStepTest, FailedPodsAreStoppedAndReplaced) {
  RolloutSim sim{MakeDeployment("web", 2), "aaaa"};
  sim.AddReady("aaaa", 2);
  sim.pods[0].phase = model::PodPhase::kFailed;
  sim.pods[0].ready = false;
  RolloutStep step = sim.Step();
  ASSERT_EQ(step.stop.size(), 1u);
  EXPECT_EQ(step.stop[0], sim.pods[0].name);
  EXPECT_EQ(Started(step, "aaaa"), 1);
}

TEST(RolloutStepTest, SurplusPodsAreStoppedNotReadyFirst) {
  RolloutSim sim{MakeDeployment("web", 2), "aaaa"};
  sim.AddReady("aaaa", 3);
  sim.pods.push_back(sim.NewPod("aaaa"));  // not ready
  sim.status = sim.Step().status;          // steady: no scaling event
  RolloutStep step = sim.Step();
  ASSERT_EQ(step.stop.size(), 2u);
  EXPECT_EQ(step.stop[0], sim.pods[3].name);
  EXPECT_TRUE(step.start.empty());
}

TEST(RolloutStepTest, OtherDeploymentsPodsAreIgnored) {
  RolloutSim sim{MakeDeployment("web", 1), "aaaa"};
  sim.AddReady("aaaa", 1);
  model::Pod other = sim.pods[0];
  other.name = "api-aaaa-xxxxx";
  other.deployment = "api";
  sim.pods.push_back(other);
  model::Pod other_ns = sim.pods[0];
  other_ns.name = "web-aaaa-yyyyy";
  other_ns.namespace_ = "staging";
  sim.pods.push_back(other_ns);
  RolloutStep step = sim.Step();
  EXPECT_TRUE(step.start.empty());
  EXPECT_TRUE(step.stop.empty());
  EXPECT_EQ(step.status.replicas, 1);
}

TEST(PodNamesTest, KubernetesShapeDeterministicAndUnique) {
  std::set<std::string> taken;
  auto names = NewPodNames("web", "5d8f7c9b4x", 50, taken, 42);
  ASSERT_EQ(names.size(), 50u);
  const std::regex shape("web-5d8f7c9b4x-[bcdfghjklmnpqrstvwxz2456789]{5}");
  for (const auto& n : names) EXPECT_TRUE(std::regex_match(n, shape)) << n;
  EXPECT_EQ(std::set<std::string>(names.begin(), names.end()).size(), 50u);
  EXPECT_EQ(NewPodNames("web", "5d8f7c9b4x", 50, taken, 42), names);
  EXPECT_NE(NewPodNames("web", "5d8f7c9b4x", 1, taken, 43)[0], names[0]);
  taken.insert(names[0]);
  auto again = NewPodNames("web", "5d8f7c9b4x", 1, taken, 42);
  ASSERT_EQ(again.size(), 1u);
  EXPECT_NE(again[0], names[0]);
}

}  // namespace
}  // namespace ballast::scheduler

namespace ballast::scheduler {
namespace {

TEST(RolloutInput, AbsurdTimesDoNotOverflow) {
  testing::RolloutSim sim{testing::MakeDeployment("web", 2), "aaaa"};
  sim.deployment.spec.min_ready_seconds = std::numeric_limits<int32_t>::max();
  sim.deployment.spec.progress_deadline_seconds = std::numeric_limits<int32_t>::max() - 1;
  sim.AddReady("aaaa", 2);
  sim.pods[0].ready_since_ms = std::numeric_limits<int64_t>::max();
  sim.now_ms = std::numeric_limits<int64_t>::max() - 5;
  RolloutStep step = sim.StepAndApply();
  EXPECT_EQ(step.status.available_replicas, 1);
  sim.revision = "bbbb";
  step = sim.StepAndApply();
  EXPECT_FALSE(step.start.empty());
}

}  // namespace
}  // namespace ballast::scheduler

namespace ballast::scheduler {
namespace {

TEST(RolloutStatusJson, KubernetesShape) {
  testing::RolloutSim sim{testing::MakeDeployment("web", 2), "aaaa"};
  sim.now_ms = 1'764'092'196'000;
  sim.AddReady("aaaa", 2);
  model::Json j = StatusToJson(sim.StepAndApply().status);
  EXPECT_EQ(j["replicas"], 2);
  EXPECT_EQ(j["updatedReplicas"], 2);
  EXPECT_EQ(j["readyReplicas"], 2);
  EXPECT_EQ(j["availableReplicas"], 2);
  EXPECT_FALSE(j.contains("unavailableReplicas"));
  ASSERT_EQ(j["conditions"].size(), 2u);
  EXPECT_EQ(j["conditions"][0]["type"], "Available");
  EXPECT_EQ(j["conditions"][0]["status"], "True");
  EXPECT_EQ(j["conditions"][0]["lastUpdateTime"], "2025-11-25T17:36:36Z");
  EXPECT_EQ(j["conditions"][1]["type"], "Progressing");
  EXPECT_EQ(j["conditions"][1]["reason"], "NewReplicaSetAvailable");
  EXPECT_EQ(j["conditions"][1]["message"], "ReplicaSet \"web-aaaa\" has successfully progressed.");
}

}  // namespace
}  // namespace ballast::scheduler
