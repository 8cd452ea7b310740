// The agent's pod state machine on a FakeClock, fed the events a runtime and probes would send:
// what a user of the cluster sees (restarts and their back-off, readiness, stops after the
// grace period, probe kills, image pull errors, adoption after an agent restart) without
// processes, files or sleeping.

#include "nodeagent/pod_state.h"

#include <signal.h>

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "clock/clock.h"

namespace ballast::nodeagent {
namespace {

using Phase = ContainerObservation::Phase;

model::Container AppContainer(const std::string& name) {
  model::Container c;
  c.name = name;
  c.command = {"/bin/app"};
  return c;
}

agentapi::DesiredPod MakeDesired(const std::string& name, std::vector<model::Container> containers,
                                 int64_t grace_seconds = 30) {
  agentapi::DesiredPod p;
  p.name = name;
  p.deployment = "web";
  p.revision = "rev1";
  p.template_.spec.containers = std::move(containers);
  p.template_.spec.termination_grace_period_seconds = grace_seconds;
  return p;
}

model::Probe TcpProbe(int period_seconds, int failure_threshold = 3, int initial_delay = 0) {
  model::Probe p;
  p.tcp_socket = model::TcpSocketAction{std::string("http"), ""};
  p.period_seconds = period_seconds;
  p.failure_threshold = failure_threshold;
  p.initial_delay_seconds = initial_delay;
  return p;
}

ContainerObservation Seen(Phase phase) {
  ContainerObservation o;
  o.phase = phase;
  return o;
}

ContainerObservation Exited(int exit_code, int signal = 0) {
  ContainerObservation o = Seen(Phase::kExited);
  o.exit_code = exit_code;
  o.signal = signal;
  return o;
}

template <class Action>
std::vector<Action> All(const PodActions& actions) {
  std::vector<Action> out;
  for (const auto& a : actions.list) {
    if (const auto* x = std::get_if<Action>(&a)) out.push_back(*x);
  }
  return out;
}

template <class Action>
bool Has(const PodActions& actions) {
  return !All<Action>(actions).empty();
}

std::vector<std::string> Events(const PodActions& actions) {
  std::vector<std::string> out;
  for (const auto& e : All<LogPodEvent>(actions)) out.push_back(e.event);
  return out;
}

// Plays the runtime for a PodLifecycle: starts whatever it asks to start (as pid 100, 101, ...),
// and collects the probes it asks for.
class PodStateTest : public ::testing::Test {
 protected:
  PodStateTest() : lifecycle_(clock_, {BackoffPolicy{}, "node-1", "127.0.0.9"}) {}

  void Create(agentapi::DesiredPod desired, bool cgroup = false) {
    pod_ = lifecycle_.NewPod(desired, "process");
    pod_.cgroup = cgroup;
    Perform(lifecycle_.StartPod(pod_));
  }

  // Starts what `actions` ask to start; each start runs at once.
  void Perform(const PodActions& actions) {
    for (const auto& start : All<StartContainer>(actions)) {
      ContainerRef ref;
      ref.pid = next_pid_++;
      lifecycle_.OnCreated(pod_, start.container, ref);
      Perform(
          lifecycle_.OnFirstObservation(pod_, start.container, Seen(Phase::kRunning), oom_kills_));
    }
    for (const auto& probe : All<ProbeContainer>(actions)) probes_.push_back(probe);
  }

  // One supervision round in which container `i` (active) is seen in `seen`.
  PodActions Observe(size_t i, const ContainerObservation& seen, int64_t oom_kills = 0) {
    PodActions a = lifecycle_.Supervise(pod_, i, &seen, oom_kills);
    Perform(a);
    return a;
  }
  // One supervision round for every container, all running when active.
  PodActions Round() {
    PodActions all;
    for (size_t i = 0; i < pod_.containers.size(); ++i) {
      const bool active = pod_.containers[i].active;
      ContainerObservation running = Seen(Phase::kRunning);
      PodActions a = lifecycle_.Supervise(pod_, i, active ? &running : nullptr, 0);
      Perform(a);
      all.list.insert(all.list.end(), a.list.begin(), a.list.end());
      all.changed = all.changed || a.changed;
    }
    return all;
  }
  // Answers the oldest outstanding probe of `kind`.
  PodActions Answer(ProbeKind kind, bool success, const std::string& message = "refused") {
    for (auto it = probes_.begin(); it != probes_.end(); ++it) {
      if (it->kind != kind) continue;
      ProbeContainer p = *it;
      probes_.erase(it);
      PodActions a = lifecycle_.OnProbeResult(pod_, p.container, p.incarnation, kind,
                                              ProbeOutcome{success, success ? "" : message});
      Perform(a);
      return a;
    }
    ADD_FAILURE() << "no probe of that kind is outstanding";
    return {};
  }
  size_t Outstanding(ProbeKind kind) const {
    size_t n = 0;
    for (const auto& p : probes_) n += p.kind == kind ? 1 : 0;
    return n;
  }
  model::ContainerStatus Shown(size_t i = 0) { return lifecycle_.Report(pod_).containers.at(i); }

  FakeClock clock_;
  PodLifecycle lifecycle_;
  PodState pod_;
  pid_t next_pid_ = 100;
  int64_t oom_kills_ = 0;  // the pod cgroup's OOM kill count, as the kernel would tell
  std::vector<ProbeContainer> probes_;
};

TEST_F(PodStateTest, ACrashingContainerRestartsWithBackOffDoublingToFiveMinutes) {
  Create(MakeDesired("web-1", {AppContainer("app")}));
  ASSERT_EQ(Shown().state, "running");
  std::vector<int64_t> waited;
  for (int crash = 0; crash < 8; ++crash) {
    clock_.Advance(1000);  // runs a second, then crashes
    PodActions exit = Observe(0, Exited(1));
    EXPECT_TRUE(exit.changed);
    EXPECT_TRUE(Has<ReleaseContainer>(exit)) << "what is left of the process group is freed";
    EXPECT_TRUE(Has<WritePodRecord>(exit));
    ASSERT_EQ(Shown().reason, "CrashLoopBackOff");
    EXPECT_EQ(Shown().last_exit_code, 1);
    EXPECT_EQ(Shown().last_reason, "Error");
    EXPECT_EQ(Shown().restarts, crash);
    // Nothing happens until the back-off is over, then it starts again at once.
    int64_t seconds = 0;
    while (pod_.containers[0].state == "waiting") {
      PodActions round = Round();
      if (Has<StartContainer>(round)) break;
      clock_.Advance(1000);
      ++seconds;
      ASSERT_LT(seconds, 400);
    }
    waited.push_back(seconds);
    EXPECT_EQ(Shown().state, "running");
    EXPECT_EQ(Shown().restarts, crash + 1);
  }
  EXPECT_EQ(waited, (std::vector<int64_t>{10, 20, 40, 80, 160, 300, 300, 300}));
  EXPECT_EQ(lifecycle_.Report(pod_).restarts, 8);
  EXPECT_EQ(lifecycle_.Report(pod_).phase, model::PodPhase::kRunning);
}

TEST_F(PodStateTest, BackOffStartsAgainAfterTenMinutesOfRunning) {
  Create(MakeDesired("web-1", {AppContainer("app")}));
  for (int crash = 0; crash < 3; ++crash) {
    Observe(0, Exited(2));
    clock_.Advance(pod_.containers[0].restart_at_ms - clock_.NowMs());
    Round();
  }
  clock_.Advance(600'000);
  Observe(0, Exited(2));
  EXPECT_NE(Shown().message.find("back-off 10s restarting failed container=app pod=web-1"),
            std::string::npos)
      << Shown().message;
}

TEST_F(PodStateTest, RestartPolicyDecidesWhetherAnEndedContainerRunsAgain) {
  auto job = MakeDesired("job-1", {AppContainer("main")});
  job.template_.spec.restart_policy = "Never";
  Create(job);
  Observe(0, Exited(0));
  EXPECT_EQ(Shown().state, "terminated");
  EXPECT_EQ(Shown().reason, "Completed");
  EXPECT_EQ(lifecycle_.Report(pod_).phase, model::PodPhase::kSucceeded);
  clock_.Advance(3600'000);
  EXPECT_FALSE(Has<StartContainer>(Round()));

  auto failing = MakeDesired("job-2", {AppContainer("main")});
  failing.template_.spec.restart_policy = "OnFailure";
  Create(failing);
  Observe(0, Exited(0));
  EXPECT_EQ(lifecycle_.Report(pod_).phase, model::PodPhase::kSucceeded);

  Create(failing);
  Observe(0, Exited(3));
  EXPECT_EQ(Shown().reason, "CrashLoopBackOff");
  EXPECT_EQ(lifecycle_.Report(pod_).phase, model::PodPhase::kRunning);

  failing.template_.spec.restart_policy = "Never";
  Create(failing);
  Observe(0, Exited(3));
  EXPECT_EQ(lifecycle_.Report(pod_).phase, model::PodPhase::kFailed);
}

TEST_F(PodStateTest, AContainerThatCannotStartIsAStartErrorAndBacksOff) {
  pod_ = lifecycle_.NewPod(MakeDesired("bad-1", {AppContainer("main")}), "process");
  lifecycle_.StartPod(pod_);
  PodActions failed = lifecycle_.OnStartFailed(pod_, 0, "executable \"x\" not found in $PATH");
  EXPECT_EQ(Shown().last_reason, "StartError");
  EXPECT_EQ(Shown().message, "executable \"x\" not found in $PATH");
  EXPECT_EQ(Shown().reason, "CrashLoopBackOff");
  EXPECT_EQ(Shown().last_exit_code, 128);
  EXPECT_EQ(Events(failed), std::vector<std::string>{"container_exited"});
  clock_.Advance(10'000);
  EXPECT_TRUE(Has<StartContainer>(lifecycle_.Supervise(pod_, 0, nullptr, 0)));
  lifecycle_.OnStartFailed(pod_, 0, "still missing");
  EXPECT_EQ(Shown().restarts, 1);
  EXPECT_EQ(pod_.containers[0].restart_at_ms - clock_.NowMs(), 20'000);
}

TEST_F(PodStateTest, AMissingImageIsRetriedWithoutCountingRestarts) {
  pod_ = lifecycle_.NewPod(MakeDesired("img-1", {AppContainer("main")}), "docker");
  lifecycle_.StartPod(pod_);
  lifecycle_.OnCreated(pod_, 0, ContainerRef{"ballast-img-1", 0, 0, false});
  ContainerObservation pull = Seen(Phase::kStartFailed);
  pull.reason = "ErrImagePull";
  pull.message = "pull access denied";
  PodActions first = lifecycle_.OnFirstObservation(pod_, 0, pull, 0);
  EXPECT_EQ(Shown().reason, "ErrImagePull");
  EXPECT_EQ(Events(first), std::vector<std::string>{"image_unavailable"});
  EXPECT_TRUE(Has<ReleaseContainer>(first));
  clock_.Advance(10'000);
  EXPECT_TRUE(Has<StartContainer>(lifecycle_.Supervise(pod_, 0, nullptr, 0)));
  lifecycle_.OnCreated(pod_, 0, ContainerRef{"ballast-img-1", 0, 0, false});
  lifecycle_.OnFirstObservation(pod_, 0, pull, 0);
  EXPECT_EQ(Shown().reason, "ImagePullBackOff");
  EXPECT_EQ(Shown().restarts, 0);
  EXPECT_EQ(lifecycle_.Report(pod_).phase, model::PodPhase::kPending);
}

TEST_F(PodStateTest, AContainerThatMayNotStartAsConfiguredWaitsWithTheReason) {
  pod_ = lifecycle_.NewPod(MakeDesired("nonroot-1", {AppContainer("main")}), "process");
  lifecycle_.StartPod(pod_);
  const std::string why = "container has runAsNonRoot and will run as root";
  PodActions failed = lifecycle_.OnStartFailed(pod_, 0, why, kCreateContainerConfigError);
  EXPECT_EQ(Shown().state, "waiting");
  EXPECT_EQ(Shown().reason, "CreateContainerConfigError");
  EXPECT_EQ(Shown().message, why);
  EXPECT_EQ(Events(failed), std::vector<std::string>{"container_config_error"});
  EXPECT_TRUE(Has<WritePodRecord>(failed));
  // Tried again after a back-off, never counted as a restart; the pod stays Pending.
  EXPECT_FALSE(Has<StartContainer>(lifecycle_.Supervise(pod_, 0, nullptr, 0)));
  clock_.Advance(10'000);
  EXPECT_TRUE(Has<StartContainer>(lifecycle_.Supervise(pod_, 0, nullptr, 0)));
  lifecycle_.OnStartFailed(pod_, 0, why, kCreateContainerConfigError);
  EXPECT_EQ(Shown().restarts, 0);
  EXPECT_EQ(Shown().reason, "CreateContainerConfigError");
  EXPECT_EQ(lifecycle_.Report(pod_).phase, model::PodPhase::kPending);
}

TEST_F(PodStateTest, AStoppingPodGetsSigtermThenSigkillAfterItsGracePeriod) {
  Create(MakeDesired("web-1", {AppContainer("app"), AppContainer("sidecar")}, /*grace_seconds=*/5));
  pod_.cgroup = true;
  PodActions stop = lifecycle_.BeginStop(pod_);
  EXPECT_EQ(Events(stop), std::vector<std::string>{"pod_stopping"});
  auto terms = All<SignalContainer>(stop);
  ASSERT_EQ(terms.size(), 2u);
  EXPECT_EQ(terms[0].signal, SIGTERM);
  EXPECT_EQ(terms[0].ref.pid, 100);
  EXPECT_EQ(terms[1].ref.pid, 101);
  model::Pod report = lifecycle_.Report(pod_);
  EXPECT_TRUE(report.terminating);
  EXPECT_FALSE(report.ready);

  clock_.Advance(4'999);
  Round();
  EXPECT_TRUE(lifecycle_.SuperviseStop(pod_).list.empty()) << "still within the grace period";
  clock_.Advance(1);
  PodActions late = lifecycle_.SuperviseStop(pod_);
  auto kills = All<SignalContainer>(late);
  ASSERT_EQ(kills.size(), 2u);
  EXPECT_EQ(kills[0].signal, SIGKILL);
  EXPECT_TRUE(Has<KillPodCgroup>(late));

  // A stopping container that ends is not restarted; the pod goes once both have ended.
  Observe(0, Exited(143, SIGTERM));
  EXPECT_EQ(Shown(0).state, "terminated");
  EXPECT_FALSE(Has<RemovePod>(lifecycle_.SuperviseStop(pod_)));
  Observe(1, Exited(137, SIGKILL));
  clock_.Advance(60'000);
  EXPECT_FALSE(Has<StartContainer>(Round()));
  PodActions gone = lifecycle_.SuperviseStop(pod_);
  EXPECT_TRUE(Has<RemovePod>(gone));
  EXPECT_EQ(Events(gone), std::vector<std::string>{"pod_stopped"});
}

TEST_F(PodStateTest, ReadinessFollowsTheProbeAndIsReportedAsAWallTime) {
  model::Container app = AppContainer("app");
  app.readiness_probe = TcpProbe(/*period_seconds=*/10, /*failure_threshold=*/3);
  Create(MakeDesired("web-1", {app}));
  EXPECT_FALSE(lifecycle_.Report(pod_).ready);
  Round();
  ASSERT_EQ(Outstanding(ProbeKind::kReadiness), 1u);
  // Until its first success the probe is retried quickly (the app is still coming up).
  Answer(ProbeKind::kReadiness, false);
  clock_.Advance(99);
  Round();
  EXPECT_EQ(Outstanding(ProbeKind::kReadiness), 0u);
  clock_.Advance(1);
  Round();
  ASSERT_EQ(Outstanding(ProbeKind::kReadiness), 1u);
  PodActions ready = Answer(ProbeKind::kReadiness, true);
  EXPECT_TRUE(ready.changed);
  EXPECT_TRUE(Has<WritePodRecord>(ready)) << "an agent restarted now reports it ready";
  model::Pod status = lifecycle_.Status(pod_);
  EXPECT_TRUE(status.ready);
  EXPECT_EQ(status.ready_since_ms, clock_.WallMs());

  // A step of the wall clock does not change how long it has been ready.
  clock_.Advance(5'000);
  clock_.JumpWall(-3600'000);
  EXPECT_EQ(lifecycle_.Status(pod_).ready_since_ms, clock_.WallMs() - 5'000);

  // Then every period; two failures are tolerated, the third makes it not ready.
  for (int failure = 1; failure <= 3; ++failure) {
    clock_.Advance(10'000);
    Round();
    Answer(ProbeKind::kReadiness, false, "connection refused");
    EXPECT_EQ(lifecycle_.Report(pod_).ready, failure < 3) << failure;
  }
  EXPECT_EQ(Shown().message, "Readiness probe failed: connection refused");
  EXPECT_EQ(lifecycle_.Status(pod_).ready_since_ms, 0);
  EXPECT_EQ(Shown().state, "running") << "readiness never restarts a container";
}

TEST_F(PodStateTest, AFailingLivenessProbeRestartsTheContainer) {
  model::Container app = AppContainer("app");
  model::Probe live = TcpProbe(/*period_seconds=*/5, /*failure_threshold=*/2);
  live.termination_grace_period_seconds = 3;
  app.liveness_probe = live;
  Create(MakeDesired("web-1", {app}));
  Round();
  Answer(ProbeKind::kLiveness, false, "dial tcp: refused");
  clock_.Advance(5'000);
  Round();
  PodActions kill = Answer(ProbeKind::kLiveness, false, "dial tcp: refused");
  auto term = All<SignalContainer>(kill);
  ASSERT_EQ(term.size(), 1u);
  EXPECT_EQ(term[0].signal, SIGTERM);
  // No more probes while it is being killed; SIGKILL after the probe's own grace period.
  clock_.Advance(2'999);
  EXPECT_FALSE(Has<SignalContainer>(Round()));
  EXPECT_EQ(Outstanding(ProbeKind::kLiveness), 0u);
  clock_.Advance(1);
  auto sigkill = All<SignalContainer>(Round());
  ASSERT_EQ(sigkill.size(), 1u);
  EXPECT_EQ(sigkill[0].signal, SIGKILL);
  Observe(0, Exited(137, SIGKILL));
  EXPECT_EQ(Shown().reason, "CrashLoopBackOff");
  EXPECT_EQ(Shown().message.rfind("Container app failed liveness probe, will be restarted: "
                                  "dial tcp: refused; back-off 10s",
                                  0),
            0u)
      << Shown().message;
}

TEST_F(PodStateTest, AStartupProbeHoldsBackTheOtherProbes) {
  model::Container app = AppContainer("app");
  app.startup_probe = TcpProbe(/*period_seconds=*/1, /*failure_threshold=*/30);
  app.liveness_probe = TcpProbe(/*period_seconds=*/10, 3, /*initial_delay=*/20);
  app.readiness_probe = TcpProbe(/*period_seconds=*/10);
  Create(MakeDesired("web-1", {app}));
  Round();
  EXPECT_EQ(Outstanding(ProbeKind::kStartup), 1u);
  EXPECT_EQ(Outstanding(ProbeKind::kLiveness), 0u);
  EXPECT_EQ(Outstanding(ProbeKind::kReadiness), 0u);
  clock_.Advance(7'000);
  PodActions started = Answer(ProbeKind::kStartup, true);
  EXPECT_TRUE(started.changed);
  Round();
  EXPECT_EQ(Outstanding(ProbeKind::kReadiness), 1u);
  // initialDelaySeconds counts from the container's start, not from the startup probe's success.
  EXPECT_EQ(Outstanding(ProbeKind::kLiveness), 0u);
  clock_.Advance(13'000);
  Round();
  EXPECT_EQ(Outstanding(ProbeKind::kLiveness), 1u);
  EXPECT_EQ(Outstanding(ProbeKind::kStartup), 0u);
}

TEST_F(PodStateTest, AProbeResultFromAnEarlierRunIsIgnored) {
  model::Container app = AppContainer("app");
  app.readiness_probe = TcpProbe(/*period_seconds=*/10);
  Create(MakeDesired("web-1", {app}));
  Round();
  ASSERT_EQ(Outstanding(ProbeKind::kReadiness), 1u);
  Observe(0, Exited(1));
  clock_.Advance(10'000);
  Round();  // restarted
  ASSERT_EQ(Shown().state, "running");
  PodActions stale = Answer(ProbeKind::kReadiness, true);
  EXPECT_FALSE(stale.changed);
  EXPECT_FALSE(lifecycle_.Report(pod_).ready);
}

TEST_F(PodStateTest, AnOomKillIsReportedAsOOMKilled) {
  oom_kills_ = 2;  // earlier runs' kills
  Create(MakeDesired("mem-1", {AppContainer("app")}), /*cgroup=*/true);
  const ContainerObservation killed = Exited(137, SIGKILL);
  EXPECT_TRUE(PodLifecycle::UsesOomKills(pod_.containers[0], killed));
  EXPECT_FALSE(PodLifecycle::UsesOomKills(pod_.containers[0], Seen(Phase::kRunning)));
  Observe(0, killed, /*oom_kills=*/3);
  EXPECT_EQ(Shown().last_reason, "OOMKilled");
  oom_kills_ = 3;
  clock_.Advance(10'000);
  Round();
  Observe(0, killed, /*oom_kills=*/3);  // a SIGKILL, but not the kernel's
  EXPECT_EQ(Shown().last_reason, "Error");
}

TEST_F(PodStateTest, ANewTemplateStopsThePodAndARenamedDeploymentDoesNot) {
  std::map<std::string, PodState> pods;
  auto web = MakeDesired("web-1", {AppContainer("app")});
  auto db = MakeDesired("db-1", {AppContainer("pg")});
  pods["default_web-1"] = lifecycle_.NewPod(web, "process");
  pods["default_db-1"] = lifecycle_.NewPod(db, "process");

  auto renamed = web;
  renamed.deployment = "frontend";
  auto changed_db = db;
  changed_db.template_.spec.containers[0].command = {"/bin/pg", "--new-flag"};
  auto cache = MakeDesired("cache-1", {AppContainer("redis")});
  // The change points into the desired set: it must outlive the change.
  const std::vector<agentapi::DesiredPod> desired = {renamed, changed_db, cache};
  DesiredChange change = CompareDesired(pods, desired);
  EXPECT_EQ(change.stop, std::vector<std::string>{"default_db-1"});
  ASSERT_EQ(change.deployment.size(), 1u);
  EXPECT_EQ(change.deployment[0],
            (std::pair<std::string, std::string>{"default_web-1", "frontend"}));
  ASSERT_EQ(change.start.size(), 1u);
  EXPECT_EQ(change.start[0]->name, "cache-1");

  // A pod already stopping is left to stop, and comes back only once it is gone.
  pods["default_db-1"].terminating = true;
  const std::vector<agentapi::DesiredPod> again = {web, changed_db};
  change = CompareDesired(pods, again);
  EXPECT_TRUE(change.stop.empty());
  EXPECT_TRUE(change.start.empty());
  change = CompareDesired(pods, {});
  EXPECT_EQ(change.stop, std::vector<std::string>{"default_web-1"});

  // Draining (out of every Service, about to be stopped): nothing restarts; reported as
  // terminating, so a restarted reconciler does not count it as a replica.
  auto draining = web;
  draining.draining = true;
  const std::vector<agentapi::DesiredPod> drained = {draining};
  change = CompareDesired(pods, drained);
  EXPECT_TRUE(change.stop.empty());
  ASSERT_EQ(change.draining.size(), 1u);
  EXPECT_EQ(change.draining[0], (std::pair<std::string, bool>{"default_web-1", true}));
  pods["default_web-1"].desired.draining = true;
  EXPECT_TRUE(lifecycle_.Report(pods["default_web-1"]).terminating);
}

TEST_F(PodStateTest, AfterAnAgentRestartRunningContainersAreAdoptedAndLostOnesRestart) {
  model::Container app = AppContainer("app");
  app.readiness_probe = TcpProbe(10);
  pod_ = lifecycle_.NewPod(MakeDesired("web-1", {app, AppContainer("sidecar")}), "process");
  // As recorded: both ran before, the first was ready.
  pod_.containers[0].ran_before = pod_.containers[1].ran_before = true;
  pod_.containers[0].ready = pod_.containers[0].started = true;
  pod_.containers[0].restarts = 2;
  PodActions adopted = lifecycle_.OnAdopted(pod_, 0, ContainerRef{"", 4242, 99, true}, 0);
  EXPECT_EQ(Events(adopted), std::vector<std::string>{"container_adopted"});
  lifecycle_.OnLost(pod_, 1);
  model::Pod report = lifecycle_.Report(pod_);
  EXPECT_EQ(report.containers[0].state, "running");
  EXPECT_TRUE(report.containers[0].ready);
  EXPECT_EQ(report.containers[0].restarts, 2);
  EXPECT_EQ(report.containers[1].reason, "CrashLoopBackOff");
  EXPECT_EQ(report.containers[1].last_reason, "Unknown");
  EXPECT_EQ(report.phase, model::PodPhase::kRunning);
  // The lost one starts again right away; the adopted one is probed as before.
  PodActions round = Round();
  auto starts = All<StartContainer>(round);
  ASSERT_EQ(starts.size(), 1u);
  EXPECT_EQ(starts[0].container, 1u);
  EXPECT_EQ(Outstanding(ProbeKind::kReadiness), 1u);
  EXPECT_EQ(Shown(1).restarts, 1);

  // A pod that was stopping when the agent went down gets its grace period again.
  pod_.desired.template_.spec.termination_grace_period_seconds = 7;
  pod_.terminating = true;
  lifecycle_.ResumeStop(pod_);
  clock_.Advance(6'999);
  EXPECT_FALSE(Has<SignalContainer>(lifecycle_.SuperviseStop(pod_)));
  clock_.Advance(1);
  EXPECT_TRUE(Has<SignalContainer>(lifecycle_.SuperviseStop(pod_)));
}

TEST_F(PodStateTest, ThePodReportNamesItsAddressAndCreationTime) {
  model::Container app = AppContainer("app");
  app.ports.push_back(model::ContainerPort{"http", 8080, "TCP", 0, model::Json::object()});
  pod_ = lifecycle_.NewPod(MakeDesired("web-1", {app}), "process");
  pod_.ports_by_number[8080] = 40001;
  pod_.host_ports["http"] = 40001;
  model::Pod report = lifecycle_.Report(pod_);
  EXPECT_EQ(report.address, "127.0.0.9:40001");
  EXPECT_EQ(report.node, "node-1");
  EXPECT_EQ(report.created_ms, clock_.WallMs());
  EXPECT_EQ(report.phase, model::PodPhase::kPending);
  EXPECT_EQ(report.containers[0].reason, "ContainerCreating");
}

}  // namespace
}  // namespace ballast::nodeagent
