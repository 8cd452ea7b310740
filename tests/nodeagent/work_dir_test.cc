// The agent's work directory: another local user must not be able to choose what the agent runs
// as root. A work directory someone else owns or can write, or a pod record someone else owns,
// makes `ballast agent` exit 1 naming the path, the owner and the mode, before it runs anything;
// records (they hold pods' secrets) are 0600 under 0700 directories; an older agent's records
// move into the state tree and their pods are adopted; the default directory is the user's own,
// never a predictable /tmp path.

#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>

#include "fake_control_plane.h"
#include "nodeagent/agent.h"
#include "nodeagent/work_dir.h"
#include "test_util.h"
#include "tests/support/git_servers.h"

namespace ballast::nodeagent {
namespace {

using namespace ballast::nodeagent::testing;
using namespace std::chrono_literals;
namespace fs = std::filesystem;
using git::testing::Quote;
using git::testing::Sh;

constexpr uid_t kOtherUser = 65534;

// `ballast agent` on `work_dir` against a reconciler that is not there; it must exit on its own
// (a refusal), else it is stopped after 20 s (exit 124).
git::testing::ShellResult RunAgent(const std::string& work_dir) {
  return Sh("timeout 20 " + Quote(BALLAST_BINARY) +
            " agent --server http://127.0.0.1:9 --name node-w --address 127.0.0.7 --no-cgroups"
            " --work-dir " +
            Quote(work_dir));
}

// A record that, if the agent ran it, leaves `marker` behind.
std::string PlantedRecord(const std::string& marker) {
  PodRecord r;
  r.desired = MakePod("planted-rev1-zzzzz", {ShellContainer("main", "touch " + marker)});
  ContainerRecord main;
  main.name = "main";
  r.containers.push_back(main);
  return EncodePodRecord(r);
}

mode_t ModeOf(const std::string& path) {
  struct stat st {};
  return ::lstat(path.c_str(), &st) == 0 ? st.st_mode & 07777 : 0;
}

TEST(WorkDirTest, DefaultIsTheUsersOwnNeverAPredictableTmpPath) {
  EXPECT_EQ(*DefaultWorkDir("n1", 0, "/run/user/0/state", "/root"), "/var/lib/ballast/agent/n1");
  EXPECT_EQ(*DefaultWorkDir("n1", 1000, "/home/u/.state", "/home/u"),
            "/home/u/.state/ballast/agent/n1");
  EXPECT_EQ(*DefaultWorkDir("n1", 1000, nullptr, "/home/u"),
            "/home/u/.local/state/ballast/agent/n1");
  EXPECT_EQ(*DefaultWorkDir("n1", 1000, "relative", "/home/u"),
            "/home/u/.local/state/ballast/agent/n1");
  EXPECT_FALSE(DefaultWorkDir("n1", 1000, nullptr, nullptr).ok());
  EXPECT_FALSE(DefaultWorkDir("../../etc", 0, nullptr, nullptr).ok());
  EXPECT_FALSE(DefaultWorkDir("..", 0, nullptr, nullptr).ok());
}

TEST(WorkDirTest, AWorkDirAnotherUserOwnsIsRefused) {
  if (::geteuid() != 0) GTEST_SKIP() << "giving a directory to another user needs root";
  TempDir tmp;
  const std::string dir = tmp.path() + "/agent";
  fs::create_directory(dir);
  fs::permissions(dir, fs::perms(0700), fs::perm_options::replace);
  ASSERT_EQ(::chown(dir.c_str(), kOtherUser, kOtherUser), 0);  // it got there first
  auto r = RunAgent(dir);
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find("--work-dir: work directory " + dir +
                          " is owned by another user (uid 65534, mode 0700)"),
            std::string::npos)
      << r.output;
  EXPECT_FALSE(fs::exists(dir + "/ballast.lock"));  // refused before anything was written
}

TEST(WorkDirTest, AWorkDirOthersCanWriteIsRefused) {
  TempDir tmp;
  const std::string dir = tmp.path() + "/agent";
  fs::create_directory(dir);
  fs::permissions(dir, fs::perms(0777), fs::perm_options::replace);
  auto r = RunAgent(dir);
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find(dir + " is writable by its group or by others (uid " +
                          std::to_string(::geteuid()) + ", mode 0777)"),
            std::string::npos)
      << r.output;
}

TEST(WorkDirTest, APodRecordAnotherUserOwnsIsRefusedAndNotRun) {
  if (::geteuid() != 0) GTEST_SKIP() << "giving a file to another user needs root";
  TempDir tmp;
  const std::string dir = tmp.path() + "/agent";
  const std::string marker = tmp.path() + "/planted-pod-ran";
  fs::create_directories(dir + "/state/pods/default_planted-rev1-zzzzz");
  fs::permissions(dir, fs::perms(0700), fs::perm_options::replace);
  const std::string record = dir + "/state/pods/default_planted-rev1-zzzzz/pod.json";
  std::ofstream(record) << PlantedRecord(marker);
  fs::permissions(record, fs::perms(0600), fs::perm_options::replace);
  ASSERT_EQ(::chown(record.c_str(), kOtherUser, kOtherUser), 0);
  auto r = RunAgent(dir);
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find(record + " is owned by another user (uid 65534, mode 0600)"),
            std::string::npos)
      << r.output;
  EXPECT_FALSE(fs::exists(marker)) << "the planted pod ran";
}

// Agents before the state tree kept pods/<pod>/pod.json beside the pod's files, and gave that
// directory to the pod's user: such a record may have been rewritten by the pod.
TEST(WorkDirTest, AnOlderAgentsRecordInADirectoryThePodOwnsIsRefused) {
  if (::geteuid() != 0) GTEST_SKIP() << "giving a directory to another user needs root";
  TempDir tmp;
  const std::string dir = tmp.path() + "/agent";
  const std::string marker = tmp.path() + "/planted-pod-ran";
  const std::string pod_dir = dir + "/pods/default_planted-rev1-zzzzz";
  fs::create_directories(pod_dir);
  fs::permissions(dir, fs::perms(0700), fs::perm_options::replace);
  fs::permissions(pod_dir, fs::perms(0755), fs::perm_options::replace);
  std::ofstream(pod_dir + "/pod.json") << PlantedRecord(marker);
  fs::permissions(pod_dir + "/pod.json", fs::perms(0644), fs::perm_options::replace);
  ASSERT_EQ(::chown(pod_dir.c_str(), kOtherUser, kOtherUser), 0);
  auto r = RunAgent(dir);
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find(pod_dir + " is owned by another user (uid 65534, mode 0755)"),
            std::string::npos)
      << r.output;
  EXPECT_NE(r.output.find(pod_dir + "/pod.json"), std::string::npos) << r.output;
  EXPECT_FALSE(fs::exists(marker)) << "the planted pod ran";
}

AgentOptions Options(const std::string& server, const std::string& work_dir) {
  AgentOptions o;
  o.server_url = server;
  o.name = "node-w";
  o.address = "127.0.0.7";
  o.work_dir = work_dir;
  o.heartbeat_seconds = 1;
  o.long_poll_seconds = 5;
  o.retry_initial_ms = 100;
  o.retry_max_ms = 500;
  o.enable_cgroups = false;
  return o;
}

agentapi::DesiredPod SecretPod(const std::string& name) {
  model::Container c = ShellContainer("main", "exec sleep 600");
  c.env.push_back(model::EnvVar{"DB_PASSWORD", "hunter2", nullptr});
  return MakePod(name, {c}, 2);
}

// A pod's record holds its environment, secrets included: only the agent's user reads it.
TEST(WorkDirTest, PodRecordsAreTheAgentsAloneToRead) {
  FakeControlPlane cp;
  TempDir tmp;
  const std::string dir = tmp.path() + "/agent";
  SystemClock clock;
  AgentOptions o = Options(cp.url(), dir);
  o.stop_pods_on_exit = true;
  Agent agent(o, clock);
  ASSERT_TRUE(agent.Start().ok());
  agentapi::DesiredState st;
  st.pods = {SecretPod("secret-rev1-aaaaa")};
  cp.store().Set("node-w", st);
  ASSERT_TRUE(WaitUntil([&] {
    auto pods = agent.Pods();
    return pods.size() == 1 && pods[0].phase == model::PodPhase::kRunning;
  }));
  const std::string record = dir + "/state/pods/default_secret-rev1-aaaaa/pod.json";
  ASSERT_NE(ReadFile(record).find("hunter2"), std::string::npos);
  EXPECT_EQ(ModeOf(record), 0600u);
  for (const std::string& d :
       {dir + "/state/pods/default_secret-rev1-aaaaa", dir + "/state/pods", dir + "/state"}) {
    EXPECT_EQ(ModeOf(d), 0700u) << d;
  }
  EXPECT_EQ(ModeOf(dir) & 0077 & ~0011, 0u) << "work directory mode " << std::oct << ModeOf(dir);

  if (::geteuid() == 0) {
    // Another local user tries to read it.
    pid_t child = ::fork();
    if (child == 0) {
      if (::setgid(kOtherUser) != 0 || ::setuid(kOtherUser) != 0) ::_exit(2);
      std::ifstream in(record);
      ::_exit(in.is_open() ? 0 : 1);
    }
    int status = 0;
    ::waitpid(child, &status, 0);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 1)
        << "uid 65534 could read the record (status " << status << ")";
  }
  cp.store().Set("node-w", agentapi::DesiredState{});
  ASSERT_TRUE(WaitUntil([&] { return agent.Pods().empty(); }));
}

// An agent upgraded in place finds its pods recorded where older agents kept them
// (pods/<pod>/pod.json, 0644): the records move to state/ (0600) and the pods are adopted.
TEST(WorkDirTest, AnOlderAgentsRecordsMoveToTheStateTreeAndItsPodsAreAdopted) {
  FakeControlPlane cp;
  TempDir tmp;
  const std::string dir = tmp.path() + "/agent";
  SystemClock clock;
  agentapi::DesiredState st;
  st.pods = {SecretPod("old-rev1-bbbbb")};
  const std::string record = dir + "/state/pods/default_old-rev1-bbbbb/pod.json";
  const std::string legacy = dir + "/pods/default_old-rev1-bbbbb/pod.json";
  {
    Agent first(Options(cp.url(), dir), clock);
    ASSERT_TRUE(first.Start().ok());
    cp.store().Set("node-w", st);
    ASSERT_TRUE(WaitUntil([&] { return fs::exists(record) && first.Pods().size() == 1; }));
    ASSERT_TRUE(WaitUntil([&] { return first.Pods()[0].phase == model::PodPhase::kRunning; }));
    first.Stop();  // its pods keep running
  }
  // As an older agent left it.
  fs::rename(record, legacy);
  fs::remove(fs::path(record).parent_path());
  fs::permissions(legacy, fs::perms(0644), fs::perm_options::replace);

  AgentOptions o = Options(cp.url(), dir);
  o.stop_pods_on_exit = true;
  Agent second(o, clock);
  Status s = second.Start();
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ(second.adopted(), 1);
  EXPECT_FALSE(fs::exists(legacy));
  EXPECT_EQ(ModeOf(record), 0600u);
  cp.store().Set("node-w", agentapi::DesiredState{});
  ASSERT_TRUE(WaitUntil([&] { return second.Pods().empty(); }));
}

// Without --work-dir, an agent of an ordinary user keeps its state in that user's home.
TEST(WorkDirTest, AnOrdinaryUsersAgentKeepsItsStateInItsHome) {
  if (::geteuid() != 0) GTEST_SKIP() << "running the agent as another user needs root";
  FakeControlPlane cp;
  TempDir home;
  ASSERT_EQ(::chown(home.path().c_str(), kOtherUser, kOtherUser), 0);
  pid_t agent = ::fork();
  if (agent == 0) {
    if (::setgid(kOtherUser) != 0 || ::setuid(kOtherUser) != 0) ::_exit(126);
    const std::string home_env = "HOME=" + home.path();
    const char* env[] = {home_env.c_str(), "PATH=/usr/bin:/bin", nullptr};
    ::execle(BALLAST_BINARY, "ballast", "agent", "--server", cp.url().c_str(), "--name",
             "node-home", "--address", "127.0.0.7", "--no-cgroups", "--heartbeat", "1",
             static_cast<char*>(nullptr), env);
    ::_exit(127);
  }
  const bool registered = WaitUntil([&] { return cp.Registered("node-home"); });
  ::kill(agent, SIGTERM);
  int status = 0;
  ::waitpid(agent, &status, 0);
  ASSERT_TRUE(registered) << "the agent did not start (exit status " << status << ")";
  const std::string dir = home.path() + "/.local/state/ballast/agent/node-home";
  struct stat st {};
  ASSERT_EQ(::lstat(dir.c_str(), &st), 0) << dir;
  EXPECT_EQ(st.st_uid, kOtherUser);
  EXPECT_EQ(st.st_mode & 07777, 0700u);
  EXPECT_TRUE(fs::exists(dir + "/state/pods"));
  EXPECT_FALSE(fs::exists("/tmp/ballast-agent-node-home"));
}

}  // namespace
}  // namespace ballast::nodeagent
