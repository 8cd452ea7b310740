// The pod runtime with real processes: start, logs, env, stop with SIGTERM then SIGKILL of the
// whole process group, CrashLoopBackOff on an injected clock.

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <sstream>

#include <gtest/gtest.h>

#include "nodeagent/process.h"
#include "test_util.h"

namespace ballast::nodeagent {
namespace {

using namespace ballast::nodeagent::testing;
using namespace std::chrono_literals;

TEST(ProcessTest, OwnProcessGroupLogsEnvAndCwd) {
  TempDir dir;
  ProcessSpec spec;
  spec.executable = "/bin/sh";
  spec.argv = {"sh", "-c", "echo out:$GREETING; echo err >&2; pwd; exec sleep 60"};
  spec.env = {"GREETING=hello", "PATH=/usr/bin:/bin"};
  spec.cwd = dir.path();
  spec.stdout_path = dir.path() + "/out.log";
  spec.stderr_path = dir.path() + "/err.log";
  auto pid = SpawnProcess(spec);
  ASSERT_TRUE(pid.ok()) << pid.status().ToString();
  EXPECT_EQ(::getpgid(*pid), *pid);
  EXPECT_EQ(::getsid(*pid), *pid);
  ASSERT_TRUE(
      WaitUntil([&] { return ReadFile(spec.stdout_path).find(dir.path()) != std::string::npos; }));
  EXPECT_EQ(ReadFile(spec.stdout_path), "out:hello\n" + dir.path() + "\n");
  EXPECT_EQ(ReadFile(spec.stderr_path), "err\n");
  EXPECT_NE(ProcessStartTime(*pid), 0u);
  EXPECT_TRUE(SignalGroup(*pid, SIGTERM));
  std::optional<ExitInfo> exit;
  ASSERT_TRUE(WaitUntil([&] { return (exit = TryReap(*pid)).has_value(); }));
  EXPECT_EQ(exit->signal, SIGTERM);
  EXPECT_EQ(exit->exit_code, 128 + SIGTERM);
  EXPECT_EQ(ProcessStartTime(*pid), 0u);
}

TEST(ProcessTest, ExecFailureIsAnErrorNotAChild) {
  ProcessSpec spec;
  spec.executable = "/nonexistent/binary";
  spec.argv = {"binary"};
  auto pid = SpawnProcess(spec);
  ASSERT_FALSE(pid.ok());
  EXPECT_NE(pid.status().message().find("/nonexistent/binary"), std::string::npos);
  EXPECT_FALSE(ResolveExecutable("definitely-not-a-command-xyz", "/usr/bin:/bin").ok());
  EXPECT_EQ(*ResolveExecutable("sh", "/nonexistent:/bin"), "/bin/sh");
}

TEST(ProcessTest, RunWithTimeoutKillsTheGroup) {
  ProcessSpec spec;
  spec.executable = "/bin/sh";
  spec.argv = {"sh", "-c", "exit 7"};
  EXPECT_EQ(*RunWithTimeout(spec, 10000), 7);
  spec.argv = {"sh", "-c", "sleep 30"};
  auto r = RunWithTimeout(spec, 200);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kDeadlineExceeded);
}

class PodManagerTest : public ::testing::Test {
 protected:
  void Make(const Clock& clock) {
    PodManagerOptions o;
    o.node_name = "n1";
    o.work_dir = dir_.path();
    pm_ = std::make_unique<PodManager>(o, clock, nullptr);
  }
  void TearDown() override {
    if (!pm_) return;
    pm_->StopAll();
    WaitUntil([&] { return pm_->Empty(); }, [&] { pm_->Tick(); });
  }
  const model::Pod* Pod(const std::string& name) {
    status_ = pm_->Status();
    return FindPod(status_, name);
  }
  bool Until(const std::function<bool()>& cond) {
    return WaitUntil(cond, [&] { pm_->Tick(); });
  }
  std::string PodDir(const std::string& name) { return dir_.path() + "/pods/default_" + name; }

  SystemClock system_clock_;
  FakeClock fake_clock_;
  TempDir dir_;
  std::unique_ptr<PodManager> pm_;
  std::vector<model::Pod> status_;
};

TEST_F(PodManagerTest, RunsLogsAndStopsWithoutOrphans) {
  Make(system_clock_);
  // A pod whose process starts a child in the same group, like a shell script would.
  auto pod = MakePod(
      "web-rev1-aaaaa",
      {ShellContainer("main", "echo started $(HOSTNAME); sleep 600 & echo $! > child.pid; wait")});
  pm_->SetDesired({pod}, {});
  ASSERT_TRUE(Until([&] {
    auto* p = Pod("web-rev1-aaaaa");
    return p && p->phase == model::PodPhase::kRunning && p->ready;
  }));
  std::string child_pid_file = PodDir("web-rev1-aaaaa") + "/work/child.pid";
  ASSERT_TRUE(WaitUntil([&] { return !ReadFile(child_pid_file).empty(); }));
  pid_t child = std::stoi(ReadFile(child_pid_file));
  EXPECT_TRUE(PidAlive(child));
  EXPECT_EQ(ReadFile(PodDir("web-rev1-aaaaa") + "/logs/main.stdout.log"),
            "started web-rev1-aaaaa\n");
  // $(HOSTNAME) above is the shell's command substitution, not Kubernetes expansion: the
  // environment carries HOSTNAME = pod name.

  pm_->SetDesired({}, {});
  ASSERT_TRUE(Until([&] { return pm_->Empty(); }));
  EXPECT_TRUE(WaitUntil([&] { return !PidAlive(child); }));
  EXPECT_FALSE(std::filesystem::exists(PodDir("web-rev1-aaaaa")));
}

TEST_F(PodManagerTest, SigtermThenSigkillAfterGracePeriod) {
  Make(system_clock_);
  // Ignores SIGTERM (and so does its child, which inherits the ignored disposition). "$$$$" is
  // the shell's "$$" after Kubernetes expansion.
  auto pod = MakePod(
      "stubborn-rev1-bbbbb",
      {ShellContainer("main", "trap '' TERM; echo $$$$ > main.pid; sleep 600 & wait; sleep 600")},
      /*grace_seconds=*/1);
  pm_->SetDesired({pod}, {});
  std::string pid_file = PodDir("stubborn-rev1-bbbbb") + "/work/main.pid";
  ASSERT_TRUE(Until([&] { return !ReadFile(pid_file).empty(); }));
  pid_t main_pid = std::stoi(ReadFile(pid_file));
  auto start = std::chrono::steady_clock::now();
  pm_->SetDesired({}, {});
  // Still there shortly after SIGTERM...
  pm_->Tick();
  EXPECT_TRUE(PidAlive(main_pid));
  ASSERT_TRUE(Until([&] { return pm_->Empty(); }));
  // ...and gone after the 1 s grace period, by SIGKILL.
  EXPECT_GE(std::chrono::steady_clock::now() - start, 900ms);
  EXPECT_FALSE(GroupAlive(main_pid));
}

TEST_F(PodManagerTest, CrashLoopBackOffOnInjectedClock) {
  FakeClock& clock = fake_clock_;
  Make(clock);
  // Exits 3 at once unless the file "run-long" exists; then waits for "stop".
  auto pod = MakePod("crash-rev1-ccccc",
                     {ShellContainer("main",
                                     "if [ -f ../run-long ]; then while [ ! -f ../stop ]; do sleep "
                                     "0.02; done; rm -f ../stop; fi; exit 3")});
  pm_->SetDesired({pod}, {});
  auto container = [&]() -> model::ContainerStatus {
    auto* p = Pod("crash-rev1-ccccc");
    return p && !p->containers.empty() ? p->containers[0] : model::ContainerStatus{};
  };
  ASSERT_TRUE(Until([&] { return container().reason == "CrashLoopBackOff"; }));
  EXPECT_EQ(container().last_exit_code, 3);
  EXPECT_EQ(container().last_reason, "Error");
  EXPECT_EQ(container().restarts, 0);
  EXPECT_NE(container().message.find("back-off 10s"), std::string::npos);

  // Not before 10 s...
  clock.Advance(9'900);
  for (int i = 0; i < 20; ++i) pm_->Tick();
  EXPECT_EQ(container().restarts, 0);
  // ...then restarted, crashes again, and waits 20 s.
  clock.Advance(100);
  ASSERT_TRUE(
      Until([&] { return container().restarts == 1 && container().reason == "CrashLoopBackOff"; }));
  EXPECT_NE(container().message.find("back-off 20s"), std::string::npos);
  clock.Advance(19'900);
  for (int i = 0; i < 20; ++i) pm_->Tick();
  EXPECT_EQ(container().restarts, 1);
  clock.Advance(100);
  ASSERT_TRUE(
      Until([&] { return container().restarts == 2 && container().reason == "CrashLoopBackOff"; }));
  EXPECT_NE(container().message.find("back-off 40s"), std::string::npos);

  // A run of 10 minutes resets the back-off to 10 s.
  std::string pod_work = PodDir("crash-rev1-ccccc") + "/work";
  { std::ofstream(PodDir("crash-rev1-ccccc") + "/run-long") << "1"; }
  clock.Advance(40'000);
  ASSERT_TRUE(Until([&] { return container().restarts == 3 && container().state == "running"; }));
  clock.Advance(600'000);
  { std::ofstream(PodDir("crash-rev1-ccccc") + "/stop") << "1"; }
  ASSERT_TRUE(Until([&] { return container().reason == "CrashLoopBackOff"; }));
  EXPECT_NE(container().message.find("back-off 10s"), std::string::npos) << container().message;
  EXPECT_EQ(Pod("crash-rev1-ccccc")->phase, model::PodPhase::kRunning);
}

TEST_F(PodManagerTest, ARecordThatCannotBeWrittenIsLoggedKeptAndWrittenLater) {
  FakeClock& clock = fake_clock_;
  std::vector<std::string> events;
  PodManagerOptions o;
  o.node_name = "n1";
  o.work_dir = dir_.path();
  o.log = [&](std::string_view event, const std::vector<std::pair<std::string, std::string>>& f) {
    std::string line(event);
    for (const auto& [k, v] : f) line += " " + k + "=" + v;
    events.push_back(line);
  };
  pm_ = std::make_unique<PodManager>(o, clock, nullptr);
  auto logged = [&](const std::string& event) {
    for (const auto& e : events) {
      if (e.rfind(event + " ", 0) == 0) return e;
    }
    return std::string();
  };
  auto container = [&]() -> model::ContainerStatus {
    auto* p = Pod("crash-rev1-ggggg");
    return p && !p->containers.empty() ? p->containers[0] : model::ContainerStatus{};
  };
  pm_->SetDesired({MakePod("crash-rev1-ggggg", {ShellContainer("main", "exit 3")})}, {});
  ASSERT_TRUE(Until([&] { return container().reason == "CrashLoopBackOff"; }));
  const std::string record = dir_.path() + "/state/pods/default_crash-rev1-ggggg/pod.json";
  ASSERT_NE(ReadFile(record).find("\"lastExitCode\": 3"), std::string::npos);

  // Something in the way of the record: the next writes fail, the pod goes on.
  std::filesystem::remove(record);
  std::filesystem::create_directories(record + "/in-the-way");
  clock.Advance(10'000);
  ASSERT_TRUE(
      Until([&] { return container().restarts == 1 && container().reason == "CrashLoopBackOff"; }));
  const std::string failed = logged("pod_record_write_failed");
  ASSERT_FALSE(failed.empty());
  EXPECT_NE(failed.find("pod=default_crash-rev1-ggggg"), std::string::npos) << failed;
  EXPECT_NE(failed.find(record), std::string::npos) << failed;
  EXPECT_EQ(std::count_if(
                events.begin(), events.end(),
                [](const std::string& e) { return e.rfind("pod_record_write_failed", 0) == 0; }),
            1)
      << "logged once, not at every write";

  // Once the way is clear, the record is written again within a second.
  std::filesystem::remove_all(record);
  clock.Advance(1000);
  pm_->Tick();
  EXPECT_FALSE(logged("pod_record_written").empty());
  EXPECT_NE(ReadFile(record).find("\"restarts\": 1"), std::string::npos) << ReadFile(record);
  // Stopped here, not in TearDown: the manager logs into `events`, which ends with this test.
  pm_->StopAll();
  ASSERT_TRUE(Until([&] { return pm_->Empty(); }));
  pm_.reset();
}

TEST_F(PodManagerTest, RestartPolicyNeverAndStartErrors) {
  Make(system_clock_);
  auto done = MakePod("job-rev1-ddddd", {ShellContainer("main", "exit 0")});
  done.template_.spec.restart_policy = "Never";
  auto missing = MakePod("bad-rev1-eeeee", {ShellContainer("main", "")});
  missing.template_.spec.containers[0].command = {"no-such-binary-ballast"};
  pm_->SetDesired({done, missing}, {});
  ASSERT_TRUE(Until([&] {
    auto* p = Pod("job-rev1-ddddd");
    return p && p->phase == model::PodPhase::kSucceeded;
  }));
  EXPECT_EQ(Pod("job-rev1-ddddd")->containers[0].reason, "Completed");
  ASSERT_TRUE(Until([&] {
    auto* p = Pod("bad-rev1-eeeee");
    return p && p->containers[0].last_reason == "StartError";
  }));
  EXPECT_NE(Pod("bad-rev1-eeeee")->containers[0].message.find("no-such-binary-ballast"),
            std::string::npos);
}

TEST_F(PodManagerTest, LogsAreRotatedAtTheCap) {
  PodManagerOptions o;
  o.work_dir = dir_.path();
  o.log_max_bytes = 4096;
  pm_ = std::make_unique<PodManager>(o, system_clock_, nullptr);
  auto pod = MakePod(
      "chatty-rev1-fffff",
      {ShellContainer("main",
                      "i=0; while [ $i -lt 400 ]; do echo line-$i-xxxxxxxxxxxxxxxxxxxxxxxxxxxxxx; "
                      "i=$((i+1)); done; sleep 600")});
  pm_->SetDesired({pod}, {});
  std::string log = PodDir("chatty-rev1-fffff") + "/logs/main.stdout.log";
  ASSERT_TRUE(Until([&] { return std::filesystem::exists(log + ".1"); }));
  ASSERT_TRUE(Until([&] { return std::filesystem::file_size(log) <= 4096; }));
  EXPECT_LE(std::filesystem::file_size(log), 4096u);
}

// A pod name may be 253 characters (a DNS subdomain): its directories, log files and record
// still work, under a bounded directory name (pod_store.h, PodDirName).
TEST_F(PodManagerTest, PodWithA253CharacterNameRunsLogsAndGoes) {
  Make(system_clock_);
  const std::string name = std::string(242, 'l') + "-rev1-hhhhh";
  ASSERT_EQ(name.size(), 253u);
  pm_->SetDesired({MakePod(name, {ShellContainer("main", "echo long; exec sleep 600")})}, {});
  ASSERT_TRUE(Until([&] {
    auto* p = Pod(name);
    return p && p->phase == model::PodPhase::kRunning;
  }));
  const std::string pod_dir = dir_.path() + "/pods/" + PodDirName("default_" + name);
  ASSERT_TRUE(WaitUntil([&] { return ReadFile(pod_dir + "/logs/main.stdout.log") == "long\n"; }));
  EXPECT_TRUE(std::filesystem::exists(dir_.path() + "/state/pods/" + PodDirName("default_" + name) +
                                      "/pod.json"));
  pm_->SetDesired({}, {});
  ASSERT_TRUE(Until([&] { return pm_->Empty(); }));
  EXPECT_FALSE(std::filesystem::exists(pod_dir));
}

}  // namespace
}  // namespace ballast::nodeagent
