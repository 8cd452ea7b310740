// Property tests over random rollouts: at every step the total stays within
// replicas + maxSurge and the available pods within replicas - maxUnavailable (as far as the
// stepper's own actions go), Recreate never overlaps revisions, and every rollout converges.

#include <random>
#include <set>
#include <string>

#include <gtest/gtest.h>

#include "scheduler/rollout.h"
#include "tests/scheduler/rollout_sim.h"

namespace ballast::scheduler {
namespace {

using testing::MakeDeployment;
using testing::RolloutSim;

model::IntOrString RandomBound(std::mt19937& rng) {
  const int kind = std::uniform_int_distribution<int>(0, 2)(rng);
  if (kind == 0) return int64_t{std::uniform_int_distribution<int>(0, 3)(rng)};
  const int percents[] = {0, 10, 25, 50, 100};
  return std::to_string(percents[std::uniform_int_distribution<int>(0, 4)(rng)]) + "%";
}

void RunRandomRollout(uint32_t seed) {
  std::mt19937 rng(seed);
  auto pick = [&](int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng); };
  auto chance = [&](int percent) { return pick(1, 100) <= percent; };

  RolloutSim sim{MakeDeployment("app", pick(0, 10)), "rev0"};
  auto& spec = sim.deployment.spec;
  const bool recreate = chance(20);
  if (recreate) spec.strategy.type = "Recreate";
  spec.strategy.max_surge = RandomBound(rng);
  spec.strategy.max_unavailable = RandomBound(rng);
  spec.min_ready_seconds = pick(0, 2);
  sim.AddReady("rev0", pick(0, 10));
  sim.status = sim.Step().status;  // observed as running, before the change
  sim.revision = "rev1";

  int revisions = 1;
  int paused_steps = 0;
  for (int i = 0; i < 300; ++i) {
    // Occasional template changes (rollover), scaling and pausing, early on.
    bool scaled = false;
    if (i < 30) {
      if (chance(5) && revisions < 3) sim.revision = "rev" + std::to_string(++revisions);
      if (chance(5)) {
        spec.replicas = pick(0, 10);
        scaled = true;
      }
      if (chance(4)) {
        spec.paused = true;
        paused_steps = pick(1, 4);
      }
    }
    if (spec.paused && paused_steps-- <= 0) spec.paused = false;

    const RolloutBounds b = ResolveBounds(spec);
    const int replicas = spec.replicas;
    const int max_total = replicas + b.max_surge;
    const int min_available = replicas - std::min(b.max_unavailable, replicas);
    const int total_before = sim.Active();
    const int available_before = sim.Available();
    bool old_exists = false;
    for (const auto& p : sim.pods) old_exists = old_exists || p.revision != sim.revision;

    RolloutStep step = sim.Step();
    // A step acts once: never both up and down on the same revision.
    std::set<std::string> started;
    for (const auto& s : step.start) {
      EXPECT_GT(s.count, 0);
      started.insert(s.revision);
    }
    sim.Apply(step);

    if (!scaled && !spec.paused && !recreate) {
      if (!step.start.empty()) {
        EXPECT_LE(sim.Active(), std::max(max_total, total_before)) << "step " << i;
      }
      EXPECT_GE(sim.Available(), std::min(available_before, min_available)) << "step " << i;
    }
    if (recreate && !spec.paused && !scaled && started.count(sim.revision)) {
      EXPECT_FALSE(old_exists) << "Recreate started new pods while old ones exist, step " << i;
    }
    if (::testing::Test::HasFailure()) return;

    // Time passes: some terminating pods go, some new pods become ready.
    sim.now_ms += pick(0, 3000);
    if (chance(70)) {
      std::erase_if(sim.pods, [&](const model::Pod& p) { return p.terminating && chance(60); });
    }
    for (auto& p : sim.pods) {
      if (!p.ready && chance(40)) {
        p.ready = true;
        p.phase = model::PodPhase::kRunning;
        p.ready_since_ms = sim.now_ms;
      }
    }
  }
  // Converged: exactly the desired pods of the current revision, all available.
  spec.paused = false;
  for (int i = 0; i < 50; ++i) {
    sim.now_ms += 5000;
    sim.Settle();
    sim.StepAndApply();
  }
  sim.now_ms += 5000;
  sim.Settle();
  RolloutStep last = sim.StepAndApply();
  EXPECT_TRUE(last.start.empty());
  EXPECT_TRUE(last.stop.empty());
  EXPECT_EQ(sim.Active(sim.revision), spec.replicas);
  EXPECT_EQ(sim.Active(), spec.replicas);
  EXPECT_EQ(last.status.available_replicas, spec.replicas);
  EXPECT_EQ(last.status.complete_revision, sim.revision);
  const DeploymentCondition* prog = last.status.Find(kConditionProgressing);
  ASSERT_NE(prog, nullptr);
  EXPECT_EQ(prog->reason, kReasonNewReplicaSetAvailable);
  EXPECT_EQ(last.status.Find(kConditionAvailable)->status, "True");
}

TEST(RolloutProperties, RandomRolloutsKeepBoundsAndConverge) {
  for (uint32_t seed = 1; seed <= 500; ++seed) {
    SCOPED_TRACE("seed " + std::to_string(seed));
    RunRandomRollout(seed);
    if (::testing::Test::HasFailure()) return;
  }
}

TEST(RolloutProperties, SameInputSameStep) {
  RolloutSim a{MakeDeployment("app", 7), "new"};
  a.AddReady("old", 7);
  RolloutStep x = a.Step();
  RolloutStep y = a.Step();
  EXPECT_EQ(x.start, y.start);
  EXPECT_EQ(x.stop, y.stop);
  EXPECT_EQ(x.status, y.status);
  EXPECT_EQ(x.requeue_at_ms, y.requeue_at_ms);
}

}  // namespace
}  // namespace ballast::scheduler
