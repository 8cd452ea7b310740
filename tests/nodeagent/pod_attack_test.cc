// A pod running as an unprivileged user (runAsUser 65534) attacks the agent, which runs as root,
// through the files they share: it replaces its log files, its working directory, its work
// directory and its record with symlinks to root's files, or rewrites its record to run as
// root. After the agent's next container start, log rotation, record write and restart, the
// root-owned files are as they were and nothing ran as root. Real agents (nodeagent::Agent
// against a fake control plane) and real pods; root only (the agent must switch users).

#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <memory>

#include <gtest/gtest.h>

#include "fake_control_plane.h"
#include "nodeagent/agent.h"
#include "test_util.h"

namespace ballast::nodeagent {
namespace {

using namespace ballast::nodeagent::testing;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

constexpr uid_t kPodUser = 65534;

struct FileState {
  uid_t uid = 0;
  mode_t mode = 0;
  bool symlink = false;
};

FileState StateOf(const std::string& path) {
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0) return {static_cast<uid_t>(-1), 0, false};
  return {st.st_uid, st.st_mode & 07777, S_ISLNK(st.st_mode)};
}

class PodAttackTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "the agent must run as root to run pods as uid 65534";
    ASSERT_EQ(cp_.start_error(), "");
    // Root's own things outside the agent's directory: what the pod aims at.
    fs::permissions(outside_.path(), fs::perms(0755), fs::perm_options::replace);
    target_ = outside_.path() + "/root-file";
    std::ofstream(target_) << "root's own\n";
    fs::permissions(target_, fs::perms(0644), fs::perm_options::replace);
    target_dir_ = outside_.path() + "/root-dir";
    fs::create_directory(target_dir_);
    fs::permissions(target_dir_, fs::perms(0755), fs::perm_options::replace);
  }

  void TearDown() override {
    if (agent_) {
      if (!with_reconciler_) StartAgent();  // to hear that no pod is wanted any more
      cp_.store().Set("node-x", agentapi::DesiredState{});
      WaitUntil([&] { return agent_->Pods().empty(); });
      agent_->Stop();
    }
  }

  // Starts an agent on the work directory (again, after a restart): it restores what it
  // recorded. Containers restart after 200 ms; logs rotate above 4 KiB. Without the reconciler
  // (as while it is away) the agent runs the pods it recorded, as they are recorded.
  void StartAgent(bool with_reconciler = true) {
    if (agent_) agent_->Stop();
    agent_.reset();
    AgentOptions o;
    o.server_url = with_reconciler ? cp_.url() : "";
    with_reconciler_ = with_reconciler;
    o.name = "node-x";
    o.address = "127.0.0.6";
    o.work_dir = work_.path();
    o.heartbeat_seconds = 1;
    o.long_poll_seconds = 5;
    o.retry_initial_ms = 100;
    o.retry_max_ms = 500;
    o.enable_cgroups = false;
    o.log_max_bytes = 4096;
    o.crash_backoff = BackoffPolicy{200, 400, 600'000};
    agent_ = std::make_unique<Agent>(o, clock_);
    Status s = agent_->Start();
    ASSERT_TRUE(s.ok()) << s.ToString();
  }

  void Run(const agentapi::DesiredPod& pod) {
    agentapi::DesiredState st;
    st.pods = {pod};
    cp_.store().Set("node-x", st);
  }

  // The pod's first container as the agent reports it.
  model::ContainerStatus Container(const std::string& pod) {
    auto pods = agent_->Pods();
    const model::Pod* p = FindPod(pods, pod);
    return p && !p->containers.empty() ? p->containers[0] : model::ContainerStatus{};
  }

  std::string PodDir(const std::string& pod) { return work_.path() + "/pods/default_" + pod; }
  std::string RecordPath(const std::string& pod) {
    return work_.path() + "/state/pods/default_" + pod + "/pod.json";
  }

  void ExpectRootsFilesUntouched() {
    const FileState file = StateOf(target_);
    EXPECT_EQ(file.uid, 0u) << target_ << " was given away";
    EXPECT_EQ(file.mode, 0644u);
    EXPECT_EQ(ReadFile(target_), "root's own\n") << target_ << " was written";
    const FileState dir = StateOf(target_dir_);
    EXPECT_EQ(dir.uid, 0u) << target_dir_ << " was given away";
    EXPECT_EQ(dir.mode, 0755u);
    EXPECT_TRUE(fs::is_empty(target_dir_)) << "the agent created files in " << target_dir_;
  }

  SystemClock clock_;
  FakeControlPlane cp_;
  TempDir work_;
  TempDir outside_;
  std::string target_;
  std::string target_dir_;
  std::unique_ptr<Agent> agent_;
  bool with_reconciler_ = true;
};

agentapi::DesiredPod UnprivilegedPod(const std::string& name, const std::string& script) {
  agentapi::DesiredPod pod = MakePod(name, {ShellContainer("main", script)}, 2);
  pod.template_.spec.security_context.run_as_user = kPodUser;
  return pod;
}

// The log files: the agent opens them (at every container start), appends, rotates (copy, then
// truncate) and serves them. The pod tries to make each one a symlink to root's file.
TEST_F(PodAttackTest, PodCannotRedirectItsLogFilesToARootFile) {
  const std::string pod = "logs-rev1-aaaaa";
  std::string script = "echo started; cd \"$HOME\"; ";
  for (const char* f : {"main.stdout.log", "main.stderr.log", "main.stdout.log.1"}) {
    script += "ln -sf " + target_ + " ../logs/" + f + " 2>/dev/null && echo replaced " + f + "; ";
  }
  script += "head -c 6000 /dev/zero | tr '\\0' x; echo; exit 1";
  StartAgent();
  Run(UnprivilegedPod(pod, script));
  const std::string log = PodDir(pod) + "/logs/main.stdout.log";
  // Started again twice after its attempts, and its log rotated (6000 bytes a run, cap 4096).
  ASSERT_TRUE(WaitUntil([&] { return Container(pod).restarts >= 2; })) << Container(pod).message;
  ASSERT_TRUE(WaitUntil([&] { return fs::exists(log + ".1"); }));
  ExpectRootsFilesUntouched();

  // The agent restarts: it restores the pod, writes its record, starts it again.
  const int32_t before = Container(pod).restarts;
  StartAgent();
  ASSERT_TRUE(WaitUntil([&] { return Container(pod).restarts > before; }));
  ExpectRootsFilesUntouched();

  // The pod's logs still work, and they are files of the agent's, not the pod's.
  EXPECT_FALSE(StateOf(log).symlink);
  EXPECT_EQ(StateOf(log).uid, 0u);
  const std::string logs = ReadFile(log + ".1") + ReadFile(log);  // rotated, and since
  EXPECT_NE(logs.find("started"), std::string::npos) << logs;
  EXPECT_EQ(logs.find("replaced"), std::string::npos) << logs;
}

// The working directory (and the work directory above it) are created and given to the pod's
// user at every container start. The pod replaces them with symlinks to a directory of root's.
TEST_F(PodAttackTest, PodCannotHaveTheAgentChownThroughItsWorkingDirectory) {
  const std::string pod = "chown-rev1-bbbbb";
  agentapi::DesiredPod desired =
      UnprivilegedPod(pod, "cd \"$HOME\"; rm -rf data && ln -s " + target_dir_ +
                               " data; mv ../work ../moved 2>/dev/null && ln -s " + target_dir_ +
                               " ../work; echo tried; exit 1");
  desired.template_.spec.containers[0].working_dir = "data";
  StartAgent();
  Run(desired);
  // Started again (or tried to) twice after the attack.
  ASSERT_TRUE(WaitUntil([&] { return Container(pod).restarts >= 2; })) << Container(pod).message;
  ExpectRootsFilesUntouched();
  // The start refuses to go through the symlink, and says so.
  EXPECT_NE(Container(pod).message.find("work/data is a symlink"), std::string::npos)
      << Container(pod).message;
  EXPECT_EQ(StateOf(PodDir(pod) + "/work").uid, kPodUser);
  EXPECT_FALSE(StateOf(PodDir(pod) + "/work").symlink);

  StartAgent();
  const int32_t before = Container(pod).restarts;
  ASSERT_TRUE(WaitUntil([&] { return Container(pod).restarts > before; }));
  ExpectRootsFilesUntouched();
}

// A Secret as a volume: the pod's user reads it (defaultMode 0400, readable through the pod's
// fsGroup, as kubelet makes it), another pod's user of the same node does not, and a pod that
// puts a symlink where its mountPath's directories go gets an error, not a link made through it.
TEST_F(PodAttackTest, AVolumeReachesItsPodOnlyAndNeverThroughTheUsersSymlinks) {
  auto with_volume = [](agentapi::DesiredPod pod) {
    pod.template_.spec.security_context.extra["fsGroup"] = 2000;
    pod.template_.spec.extra["volumes"] = model::Json::parse(
        R"([{"name": "creds", "secret": {"secretName": "db", "defaultMode": 256}}])");
    for (auto& c : pod.template_.spec.containers) {
      c.extra["volumeMounts"] =
          model::Json::parse(R"([{"name": "creds", "mountPath": "/run/creds"}])");
    }
    pod.config = {{"Secret", "db", {{"password", "s3cret-in-a-file"}}, {}}};
    return pod;
  };
  const std::string reader = "reader-rev1-ddddd";
  const std::string thief = "thief-rev1-eeeee";
  const std::string planter = "planter-rev1-fffff";
  const std::string secret_file = PodDir(reader) + "/volumes/creds/password";
  agentapi::DesiredPod thief_pod =
      UnprivilegedPod(thief, "cd \"$HOME\"; cat " + secret_file + " > got 2>&1; sleep 600");
  thief_pod.template_.spec.security_context.run_as_user = kPodUser - 1;  // another user
  agentapi::DesiredState st;
  st.pods = {with_volume(UnprivilegedPod(
                 reader, "cd \"$HOME\"; cat run/creds/password > got 2>&1; sleep 600")),
             thief_pod,
             with_volume(UnprivilegedPod(
                 planter, "cd \"$HOME\"; rm -rf run; ln -s " + target_dir_ + " run; exit 1"))};
  StartAgent();
  cp_.store().Set("node-x", st);
  ASSERT_TRUE(WaitUntil([&] {
    return ReadFile(PodDir(reader) + "/work/got") == "s3cret-in-a-file";
  })) << ReadFile(PodDir(reader) + "/work/got")
      << Container(reader).message;
  ASSERT_TRUE(WaitUntil([&] { return !ReadFile(PodDir(thief) + "/work/got").empty(); }));
  EXPECT_NE(ReadFile(PodDir(thief) + "/work/got").find("Permission denied"), std::string::npos)
      << ReadFile(PodDir(thief) + "/work/got");
  // The planter's next start refuses its symlink and says so; root's directory stays empty.
  ASSERT_TRUE(WaitUntil([&] { return Container(planter).restarts >= 1; }))
      << Container(planter).message;
  ASSERT_TRUE(WaitUntil([&] {
    return Container(planter).message.find("is a symlink") != std::string::npos;
  })) << Container(planter).message;
  ExpectRootsFilesUntouched();
}

// The record says what the agent runs, and as whom. The pod rewrites it (where older agents kept
// it, beside its own files, and where the agent keeps it now) to run itself as root.
TEST_F(PodAttackTest, PodCannotRewriteItsRecordToRunAsRoot) {
  const std::string pod = "record-rev1-ccccc";
  const std::string ran_as = outside_.path() + "/ran-as";
  // What the pod would like the agent to restore: itself, without runAsUser.
  PodRecord crafted;
  crafted.desired = MakePod(pod, {ShellContainer("main", "id -u > " + ran_as + "; sleep 600")}, 2);
  ContainerRecord main;
  main.name = "main";
  crafted.containers.push_back(main);
  const std::string crafted_path = outside_.path() + "/crafted.json";
  std::ofstream(crafted_path) << EncodePodRecord(crafted);
  fs::permissions(crafted_path, fs::perms(0644), fs::perm_options::replace);

  // It keeps at it for 3 s, so that the record is its own when the restarted agent reads it.
  const std::string script = "cd \"$HOME\"; i=0; while [ $i -lt 60 ]; do cat " + crafted_path +
                             " > ../pod.json.new 2>/dev/null && mv -f ../pod.json.new ../pod.json "
                             "&& echo rewrote old; cat " +
                             crafted_path + " > " + RecordPath(pod) +
                             " 2>/dev/null && echo rewrote record; [ $i -eq 0 ] && echo tried; "
                             "i=$((i+1)); sleep 0.05; done; echo done; exec sleep 600";
  StartAgent();
  Run(UnprivilegedPod(pod, script));
  const std::string log = PodDir(pod) + "/logs/main.stdout.log";
  ASSERT_TRUE(WaitUntil([&] { return ReadFile(log).find("tried") != std::string::npos; }));

  // The agent stops and starts again a moment later (the pod goes on meanwhile), while the
  // reconciler is away: it restores its pods from their records and runs them as recorded.
  agent_->Stop();
  std::this_thread::sleep_for(300ms);
  StartAgent(/*with_reconciler=*/false);
  EXPECT_EQ(agent_->adopted(), 1);  // the pod as it was started: same process, same user
  EXPECT_FALSE(WaitUntil([&] { return fs::exists(ran_as); }, [] {}, 2s))
      << "a rewritten record ran as uid " << ReadFile(ran_as);
  ASSERT_TRUE(WaitUntil([&] { return ReadFile(log).find("done") != std::string::npos; }));
  EXPECT_EQ(ReadFile(log), "tried\ndone\n") << "the pod rewrote a record";
  EXPECT_EQ(Container(pod).restarts, 0);
}

}  // namespace
}  // namespace ballast::nodeagent
