// Faults against the real `ballast serve` and agents (issue #17): a full disk, kill -9 at the
// failpoints of the reconciler and of the agents, damaged state, the git server gone, a
// partition, a wall-clock jump, no file descriptors left. The promise: no fault costs a running
// workload or a history entry.

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>

#include "model/rfc3339.h"
#include "tests/reconciler/cluster.h"

namespace ballast::reconciler::testing {
namespace {

namespace fs = std::filesystem;

// A small tmpfs mounted at `path` for the test's length (root only); lazily unmounted, so a
// process still holding files there does not keep it.
class SmallDisk {
 public:
  // What `path` holds is moved onto the new filesystem.
  SmallDisk(const fs::path& path, const std::string& size) : path_(path) {
    const fs::path aside = path.string() + ".aside";
    fs::rename(path, aside);
    fs::create_directories(path);
    const std::string options = "size=" + size + ",mode=0700";
    mounted_ = ::mount("tmpfs", path.c_str(), "tmpfs", 0, options.c_str()) == 0;
    if (!mounted_) error_ = std::strerror(errno);
    fs::copy(aside, path, fs::copy_options::recursive);
    fs::remove_all(aside);
  }
  ~SmallDisk() {
    if (mounted_) ::umount2(path_.c_str(), MNT_DETACH);
  }
  bool mounted() const { return mounted_; }
  const std::string& error() const { return error_; }
  // Writes a file until the disk is full (ENOSPC).
  void Fill() {
    std::ofstream out(path_ / "filler", std::ios::binary);
    const std::string block(64 * 1024, 'x');
    while (out.write(block.data(), block.size())) {
    }
  }
  void Free() { fs::remove(path_ / "filler"); }

 private:
  fs::path path_;
  bool mounted_ = false;
  std::string error_;
};

// The pid demo-app at `address` (a pod's ip:port) reports, or "" when it does not answer.
std::string PodPid(const std::string& address) {
  net::ClientOptions o;
  o.timeout = std::chrono::seconds(3);
  net::HttpClient client(o);
  auto r = client.Get("http://" + address + "/pid");
  return r.ok() && r->status == 200 ? r->body : "";
}

std::vector<std::string> HistoryRevisions(Cluster& c) {
  std::vector<std::string> out;
  const Json h = c.Get("/api/v1/history?limit=100");
  if (!h.is_object()) return out;
  for (const auto& item : h["items"]) out.push_back(item["revision"].get<std::string>());
  std::reverse(out.begin(), out.end());  // oldest first
  return out;
}

// Commits "v1" (`replicas` pods of web on `port`), starts serve and `agents` agents, waits for
// the rollout and its history entry; returns v1's commit.
std::string StartWithV1(Cluster& c, int port, int replicas, int agents) {
  const std::string v1 = c.Commit({{"web.yaml", WebManifest("v1", replicas, port)}}, "web v1");
  EXPECT_TRUE(c.StartServe({}));
  EXPECT_TRUE(c.StartAgents(agents));
  EXPECT_TRUE(WaitFor([&] { return c.RolledOut(replicas); })) << c.Logs();
  EXPECT_TRUE(WaitFor([&] { return HistoryRevisions(c) == std::vector<std::string>{v1}; }))
      << c.Logs();
  return v1;
}

// Only history.git's filesystem fills up. The revision being applied when it does keeps its
// pods and gets its entry once space returns; the status, the metrics and `ballast status` say
// what is wrong meanwhile; a later revision waits for the entry rather than running without one;
// nothing already recorded is lost or reordered.
TEST(FaultsE2E, AFullHistoryDiskLosesNoEntryAndHoldsNewRevisionsUntilSpaceReturns) {
  Cluster c;
  const int port = PickFreePort();
  const std::string v1 = StartWithV1(c, port, 2, 2);
  ASSERT_FALSE(::testing::Test::HasFailure());
  // history.git (and only it) moves onto a 2 MiB filesystem, under a restarted reconciler.
  c.StopServe();
  std::optional<SmallDisk> disk;
  disk.emplace(c.dir().path() / "state" / "history.git", "2m");
  if (!disk->mounted()) GTEST_SKIP() << "cannot mount a tmpfs here: " << disk->error();
  ASSERT_TRUE(c.StartServe({})) << ReadFile(c.serve_log());
  ASSERT_TRUE(WaitFor([&] { return c.RolledOut(2); })) << c.Logs();
  ASSERT_TRUE(WaitFor([&] { return HistoryRevisions(c) == std::vector<std::string>{v1}; }))
      << c.Logs();

  disk->Fill();
  const std::string v2 = c.Commit({{"web.yaml", WebManifest("v2", 2, port)}}, "web v2");
  // v2 is applied (the disk is not the workloads'), and its entry cannot be written.
  ASSERT_TRUE(WaitFor([&] {
    const Json s = c.Status();
    return s.is_object() && s["appliedRevision"] == v2 && s["historyError"].is_object();
  })) << c.Logs();
  ASSERT_TRUE(WaitFor([&] { return c.RolledOut(2); })) << c.Logs();
  const Json failing = c.Status();
  EXPECT_EQ(failing["historyError"]["pending"], 1) << failing.dump();
  EXPECT_NE(failing["historyError"]["message"].get<std::string>().find("space"), std::string::npos)
      << failing.dump();
  auto cli = c.Cli("status");
  EXPECT_NE(cli.output.find("History:   cannot record the applied state"), std::string::npos)
      << cli.output;
  net::HttpClient http;
  auto metrics = http.Get(c.url() + "/metrics");
  ASSERT_TRUE(metrics.ok());
  EXPECT_NE(metrics->body.find("ballast_history_pending_entries 1"), std::string::npos);

  // A later revision waits: applying it would leave v2 with no entry to roll back to.
  const std::string v3 = c.Commit({{"web.yaml", WebManifest("v3", 2, port)}}, "web v3");
  ASSERT_TRUE(WaitFor([&] {
    const Json s = c.Status();
    return s.is_object() && s["revision"] == v3;
  })) << c.Logs();
  for (int i = 0; i < 3; ++i) {
    std::this_thread::sleep_for(std::chrono::seconds(1));  // three polls (--poll 1)
    const Json s = c.Status();
    ASSERT_EQ(s["appliedRevision"], v2) << s.dump();
  }
  auto refused = c.Post("/api/v1/sync", Json::object());
  ASSERT_TRUE(refused.ok());
  EXPECT_EQ(refused->status, 409) << refused->body;
  EXPECT_NE(refused->body.find("history"), std::string::npos) << refused->body;
  EXPECT_TRUE(c.RolledOut(2)) << "what runs keeps running";

  // Space returns: v2's entry is written, then v3 is applied and recorded, in that order.
  disk->Free();
  ASSERT_TRUE(WaitFor([&] {
    return HistoryRevisions(c) == std::vector<std::string>{v1, v2, v3};
  })) << c.Logs();
  ASSERT_TRUE(WaitFor([&] { return c.RolledOut(2) && c.Status()["historyError"].is_null(); }))
      << c.Logs();
  EXPECT_EQ(c.Status()["appliedRevision"], v3);

  // And what was written survives a restart: the entries are on disk, in order.
  c.KillServe();
  ASSERT_TRUE(c.StartServe({}));
  EXPECT_EQ(HistoryRevisions(c), (std::vector<std::string>{v1, v2, v3}));
}

// kill -9 of the reconciler, down long enough for the agents' back-off to grow, then a restart
// that would place at once (--adopt-wait 0): it waits for every node it knew (STATE_DIR/nodes),
// so no Ready pod is replaced and no pod is started twice.
TEST(FaultsE2E, ARestartedReconcilerWaitsForTheNodesItKnewAndReplacesNoReadyPod) {
  Cluster c;
  c.Commit({{"web.yaml", WebManifest("v1", 4, PickFreePort())}}, "web v1");
  ASSERT_TRUE(c.StartServe({}));
  ASSERT_TRUE(c.StartAgents(2));
  ASSERT_TRUE(WaitFor([&] { return c.RolledOut(4); })) << c.Logs();
  const auto before = c.ReadyPods();
  ASSERT_TRUE(WaitFor([&] { return ReadFile(c.dir().path() / "state" / "nodes") == "n2\nn3\n"; }))
      << ReadFile(c.dir().path() / "state" / "nodes");

  c.KillServe();
  std::this_thread::sleep_for(std::chrono::seconds(8));
  ASSERT_TRUE(c.StartServe({"--adopt-wait", "0"}));
  // Until both nodes are back, and for a while after, there are never more than the 4 pods.
  int most = 0;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(15);
  while (std::chrono::steady_clock::now() < deadline) {
    most = std::max(most, c.PodCount());
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_EQ(most, 4) << c.Logs();
  ASSERT_TRUE(WaitFor([&] { return c.RolledOut(4); })) << c.Logs();
  EXPECT_EQ(c.ReadyPods(), before) << "every pod Ready before the kill is the one Ready now";
}

// The serve started while `failpoints` is set gets it (BALLAST_FAILPOINTS); agents started later
// do not.
bool StartServeWithFailpoints(Cluster& c, const std::string& failpoints) {
  ::setenv("BALLAST_FAILPOINTS", failpoints.c_str(), 1);
  const bool started = c.StartServe({});
  ::unsetenv("BALLAST_FAILPOINTS");
  return started;
}

// kill -9 at the instant a history entry's commit is written and its ref not yet moved (the
// failpoint history-append-before-ref), right after a new revision was applied: the restarted
// reconciler records that revision, once, after the ones before it — no entry lost, none twice.
TEST(FaultsE2E, ACrashBetweenAHistoryCommitAndItsRefLosesNoEntry) {
  Cluster c;
  const int port = PickFreePort();
  const std::string v1 = StartWithV1(c, port, 2, 2);
  ASSERT_FALSE(::testing::Test::HasFailure());
  c.StopServe();
  ASSERT_TRUE(StartServeWithFailpoints(c, "history-append-before-ref=crash"));
  const std::string v2 = c.Commit({{"web.yaml", WebManifest("v2", 2, port)}}, "web v2");
  ASSERT_TRUE(WaitFor([&] { return !c.ServeRunning(); })) << "the failpoint never fired";
  EXPECT_NE(ReadFile(c.serve_log()).find("failpoint history-append-before-ref: crash"),
            std::string::npos);
  ASSERT_TRUE(c.StartServe({}));
  ASSERT_TRUE(WaitFor([&] {
    return HistoryRevisions(c) == std::vector<std::string>{v1, v2};
  })) << c.Logs();
  ASSERT_TRUE(WaitFor([&] { return c.RolledOut(2) && c.DeploymentRevision() != ""; })) << c.Logs();
  // Still exactly those two after a while (nothing appended twice).
  std::this_thread::sleep_for(std::chrono::seconds(2));
  EXPECT_EQ(HistoryRevisions(c), (std::vector<std::string>{v1, v2}));
}

// kill -9 between writing the pin file's new contents and renaming it into place
// (state-write-before-rename): after the restart the pin is the old one (none), never a torn
// file; pinning again works.
TEST(FaultsE2E, ACrashWhileThePinIsWrittenLeavesTheOldPin) {
  Cluster c;
  StartWithV1(c, PickFreePort(), 1, 1);
  ASSERT_FALSE(::testing::Test::HasFailure());
  c.StopServe();
  ASSERT_TRUE(StartServeWithFailpoints(c, "state-write-before-rename=crash"));
  (void)c.Post("/api/v1/rollback", Json{{"id", 1}, {"pin", true}});
  ASSERT_TRUE(WaitFor([&] { return !c.ServeRunning(); })) << "the failpoint never fired";
  ASSERT_TRUE(c.StartServe({})) << ReadFile(c.serve_log());
  const Json s = c.Status();
  ASSERT_TRUE(s.is_object());
  EXPECT_TRUE(s["pinned"].is_null()) << s.dump();
  auto pinned = c.Post("/api/v1/rollback", Json{{"id", 1}, {"pin", true}});
  ASSERT_TRUE(pinned.ok());
  EXPECT_EQ(pinned->status, 200) << pinned->body;
  c.StopServe();
  ASSERT_TRUE(c.StartServe({}));
  EXPECT_EQ(c.Status()["pinned"], 1);
}

// Damaged state — a history object cut short, a pin file or node roster cut short — is found
// at start: the reconciler refuses to start with an error naming the file (never running on a
// wrong or partial state), the pods keep running meanwhile, and once the file is put right it
// starts and adopts them without a restart.
TEST(FaultsE2E, DamagedStateIsNamedAtStartAndThePodsKeepRunning) {
  Cluster c;
  const int port = PickFreePort();
  StartWithV1(c, port, 1, 1);
  ASSERT_FALSE(::testing::Test::HasFailure());
  const auto pods = c.ReadyPods();
  c.StopServe();
  const fs::path state = c.dir().path() / "state";
  fs::path object;
  for (const auto& f : fs::recursive_directory_iterator(state / "history.git" / "objects")) {
    if (f.is_regular_file() && f.path().parent_path().filename().string().size() == 2) {
      object = f.path();
    }
  }
  ASSERT_FALSE(object.empty());
  const std::string object_bytes = ReadFile(object);
  const std::string roster = ReadFile(state / "nodes");
  ASSERT_EQ(roster, "n2\n");
  auto write = [](const fs::path& p, const std::string& bytes) {
    std::error_code ec;  // a file that does not exist yet (the pin) is written anew
    fs::permissions(p, fs::perms::owner_write, fs::perm_options::add, ec);
    std::ofstream(p, std::ios::binary | std::ios::trunc) << bytes;
  };
  const std::vector<std::pair<fs::path, std::string>> damage = {
      {object, object_bytes.substr(0, object_bytes.size() / 2)},
      {state / "nodes", "n"},
      {state / "pin", "1"},
  };
  for (const auto& [file, bytes] : damage) {
    write(file, bytes);
    EXPECT_FALSE(c.StartServe({})) << file;
    const std::string log = ReadFile(c.serve_log());
    EXPECT_NE(log.find(file.string()), std::string::npos) << log;
    EXPECT_NE(log.find("error:"), std::string::npos) << log;
    // The pod still answers, through the proxy, with nobody reconciling.
    EXPECT_TRUE(WaitFor([&] { return Serves(port, "v1"); }, std::chrono::seconds(20)));
    if (file == object) write(object, object_bytes);
    if (file == state / "nodes") write(file, roster);
    if (file == state / "pin") fs::remove(file);
  }
  ASSERT_TRUE(c.StartServe({})) << ReadFile(c.serve_log());
  ASSERT_TRUE(WaitFor([&] { return c.RolledOut(1); })) << c.Logs();
  EXPECT_EQ(c.ReadyPods(), pods) << "the pod that ran through the outage is the one running now";
}

// The git server gone (git daemon stopped) while a commit waits on it, then back: the
// reconciler keeps serving and healing, says which remote fails and since when, restarts no
// pod, and applies the waiting commit once the server is back.
TEST(FaultsE2E, TheGitServerGoneAndBackCostsNoPodAndNoCommit) {
  Cluster c;
  const int port = PickFreePort();
  c.Commit({{"web.yaml", WebManifest("v1", 2, port)}}, "web v1");
  git::testing::GitDaemon daemon;
  ASSERT_TRUE(daemon.Start(c.farm().root(), /*enable_receive_pack=*/false));
  ASSERT_TRUE(c.StartServe({}, daemon.Url("manifests")));
  ASSERT_TRUE(c.StartAgents(1));
  ASSERT_TRUE(WaitFor([&] { return c.RolledOut(2); })) << c.Logs();
  const auto before = c.ReadyPods();

  daemon.Stop();
  const std::string v2 = c.Commit({{"web.yaml", WebManifest("v2", 2, port)}}, "web v2");
  ASSERT_TRUE(WaitFor([&] {
    const Json s = c.Status();
    return s.is_object() && s["sourceError"].is_object() &&
           s["sourceError"].value("message", "").find(std::to_string(daemon.port())) !=
               std::string::npos;
  })) << c.Status().dump();
  // Twenty seconds without the server (BALLAST_TEST_GIT_OUTAGE_SECONDS=600 for the ten
  // minutes, by hand): the pods run on, untouched, and answer.
  const char* outage = std::getenv("BALLAST_TEST_GIT_OUTAGE_SECONDS");
  const int seconds = outage != nullptr ? std::atoi(outage) : 20;
  for (int i = 0; i < seconds; ++i) {
    std::this_thread::sleep_for(std::chrono::seconds(1));
    EXPECT_EQ(c.ReadyPods(), before) << "a pod changed while the git server was gone";
    EXPECT_TRUE(WaitFor([&] { return Serves(port, "v1"); }, std::chrono::seconds(20)));
  }
  ASSERT_TRUE(daemon.Restart());
  // Back: the waiting commit is applied within the poll back-off (at most 60 s, however long the
  // outage: a ten-minute one waited five minutes more before that cap).
  ASSERT_TRUE(
      WaitFor([&] { return Serves(port, "v2") && c.RolledOut(2); }, std::chrono::seconds(120)))
      << c.Status().dump() << c.Logs();
  EXPECT_TRUE(c.Status()["sourceError"].is_null()) << c.Status().dump();
  EXPECT_EQ(HistoryRevisions(c).back(), v2);
}

// A partition between the reconciler and one agent (SIGSTOP of the agent: alive, unheard, its
// pods running on): the pods there keep running and answering (static stability); after the
// grace period and toleration the replicas run on the other node too; when the partition heals
// (SIGCONT) the node comes back Ready and the pods it ran meanwhile are stopped, so no
// duplicate remains.
TEST(FaultsE2E, APartitionedNodeKeepsItsPodsAndLeavesNoDuplicateWhenItHeals) {
  Cluster c;
  const int port = PickFreePort();
  c.Commit({{"web.yaml", WebManifest("v1", 2, port)}}, "web v1");
  ASSERT_TRUE(c.StartServe({"--node-grace", "3", "--node-toleration", "2"}));
  ASSERT_TRUE(c.StartAgents(2));
  ASSERT_TRUE(WaitFor([&] { return c.RolledOut(2); })) << c.Logs();
  std::map<std::string, std::string> cut_off;  // pods on n2: name -> address
  const Json listed = c.Get("/api/v1/pods");
  for (const auto& p : listed["items"]) {
    if (p["node"] == "n2") cut_off[p["name"]] = p["address"];
  }
  if (cut_off.empty()) GTEST_SKIP() << "both pods were placed on n3";

  ASSERT_EQ(::kill(c.AgentPid(0), SIGSTOP), 0);
  // Replicas come back on n3 once n2 is NotReady and the toleration passed.
  ASSERT_TRUE(WaitFor([&] {
    const Json pods = c.Get("/api/v1/pods");
    if (!pods.is_object()) return false;
    for (const auto& p : pods["items"]) {
      if (p["node"] == "n2") return false;
    }
    return c.RolledOut(2);
  })) << c.Logs();
  // Meanwhile the pods on n2 ran on, untouched.
  for (const auto& [name, address] : cut_off) {
    EXPECT_NE(PodPid(address), "") << name << " stopped during the partition";
  }

  ASSERT_EQ(::kill(c.AgentPid(0), SIGCONT), 0);
  // Healed: n2 is Ready again and what it ran during the partition is stopped.
  ASSERT_TRUE(WaitFor([&] {
    const Json nodes = c.Get("/api/v1/nodes");
    bool ready = false;
    for (const auto& n : nodes["items"]) ready = ready || (n["name"] == "n2" && n["ready"] == true);
    if (!ready) return false;
    for (const auto& [name, address] : cut_off) {
      if (PodPid(address) != "") return false;
    }
    return c.RolledOut(2);
  })) << c.Logs();
  // And it stays at two.
  for (int i = 0; i < 10; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    EXPECT_EQ(c.PodCount(), 2);
  }
}

// The wall clock stepped an hour forward, then two back (NTP, an operator, a VM resumed), on
// the reconciler and the agents, under libfaketime (its monotonic clock left alone, as a real
// step leaves it): no node is declared dead, no Ready pod replaced; only the times shown move.
TEST(FaultsE2E, AWallClockJumpOfAnHourRestartsNothing) {
  const char* lib = "/usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1";
  if (::access(lib, R_OK) != 0) GTEST_SKIP() << "no libfaketime (Debian's faketime)";
  Cluster c;
  const fs::path offset = c.dir().path() / "faketime";
  std::ofstream(offset) << "+0\n";
  c.Commit({{"web.yaml", WebManifest("v1", 2, PickFreePort())}}, "web v1");
  ::setenv("LD_PRELOAD", lib, 1);
  ::setenv("FAKETIME_TIMESTAMP_FILE", offset.c_str(), 1);
  ::setenv("FAKETIME_NO_CACHE", "1", 1);
  ::setenv("FAKETIME_DONT_FAKE_MONOTONIC", "1", 1);
  const bool started = c.StartServe({}) && c.StartAgents(2);
  for (const char* v : {"LD_PRELOAD", "FAKETIME_TIMESTAMP_FILE", "FAKETIME_NO_CACHE",
                        "FAKETIME_DONT_FAKE_MONOTONIC"})
    ::unsetenv(v);
  ASSERT_TRUE(started) << c.Logs();
  ASSERT_TRUE(WaitFor([&] { return c.RolledOut(2); })) << c.Logs();
  const auto before = c.ReadyPods();
  for (const char* jump : {"+3600", "-3600"}) {
    std::ofstream(offset, std::ios::trunc) << jump << "\n";
    // The step is seen: the reconciler shows heartbeats at the shifted hour.
    auto shifted = [&] {
      const int64_t now = std::chrono::duration_cast<std::chrono::milliseconds>(
                              std::chrono::system_clock::now().time_since_epoch())
                              .count();
      return model::FormatRfc3339(now + std::atoll(jump) * 1000).substr(0, 13);
    };
    EXPECT_TRUE(WaitFor(
        [&] {
          const Json nodes = c.Get("/api/v1/nodes");
          return nodes.is_object() && !nodes["items"].empty() &&
                 nodes["items"][0].value("lastHeartbeat", "").substr(0, 13) == shifted();
        },
        std::chrono::seconds(20)))
        << "libfaketime did not move the clock to " << shifted();
    for (int i = 0; i < 15; ++i) {
      std::this_thread::sleep_for(std::chrono::seconds(1));
      EXPECT_EQ(c.ReadyPods(), before) << "after a jump of " << jump << " s";
      const Json nodes = c.Get("/api/v1/nodes");
      for (const auto& n : nodes["items"]) {
        EXPECT_TRUE(n["ready"].get<bool>()) << n.dump() << " after a jump of " << jump << " s";
      }
    }
  }
}

}  // namespace
}  // namespace ballast::reconciler::testing

namespace ballast::reconciler::testing {
namespace {

// Agent `i` started again with `failpoints` enabled (BALLAST_FAILPOINTS); it is expected to
// crash at one of them: true once it has, saying so in its log.
bool RestartAgentUntilItCrashesAt(Cluster& c, size_t i, const std::string& failpoint) {
  ::setenv("BALLAST_FAILPOINTS", (failpoint + "=crash").c_str(), 1);
  const bool started = c.StartAgent(i);
  ::unsetenv("BALLAST_FAILPOINTS");
  return started && WaitFor([&] { return !c.AgentRunning(i); });
}

// kill -9 of an agent at the instant a pod's process is started and not yet in the pod's record
// (agent-pod-start-before-record), during a rolling update: the restarted agent finds the
// process it cannot adopt and stops it, so the pod runs once, not twice (a second copy would
// hold its port and run unsupervised), and the rollout completes.
TEST(FaultsE2E, AnAgentKilledMidPodStartLeavesNoSecondCopyOfThePod) {
  Cluster c;
  const int port = PickFreePort();
  StartWithV1(c, port, 1, 1);
  ASSERT_FALSE(::testing::Test::HasFailure());
  ASSERT_EQ(c.PodProcesses().size(), 1u);
  c.KillAgent(0);  // the v1 pod runs on; the agent comes back armed with the failpoint
  ::setenv("BALLAST_FAILPOINTS", "agent-pod-start-before-record=crash", 1);
  ASSERT_TRUE(c.StartAgent(0));
  ::unsetenv("BALLAST_FAILPOINTS");
  ASSERT_TRUE(WaitFor([&] { return c.RolledOut(1); })) << c.Logs();  // adopted, nothing started
  ASSERT_TRUE(c.AgentRunning(0));
  c.Commit({{"web.yaml", WebManifest("v2", 1, port)}}, "web v2");
  ASSERT_TRUE(WaitFor([&] { return !c.AgentRunning(0); })) << "the failpoint never fired";
  EXPECT_NE(ReadFile(c.AgentLog(0)).find("failpoint agent-pod-start-before-record: crash"),
            std::string::npos);
  const auto left = c.PodProcesses();
  ASSERT_EQ(left.size(), 2u) << "v1's pod and v2's unrecorded one";

  ASSERT_TRUE(c.StartAgent(0));
  ASSERT_TRUE(WaitFor([&] { return c.RolledOut(1) && Serves(port, "v2"); })) << c.Logs();
  ASSERT_TRUE(WaitFor([&] { return c.PodProcesses().size() == 1; })) << c.Logs();
  EXPECT_NE(ReadFile(c.AgentLog(0)).find("orphan_stopped"), std::string::npos) << c.Logs();
  const pid_t now = c.PodProcesses().at(0);  // v2 started afresh by the restarted agent
  for (pid_t pid : left) EXPECT_NE(now, pid);
  // And it stays one.
  for (int i = 0; i < 10; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    EXPECT_EQ(c.PodProcesses().size(), 1u);
  }
}

// kill -9 of an agent while it adopts its pods at start (agent-restore-after-adopt, after the
// first of three): the next start adopts all three again; no pod is restarted or replaced.
TEST(FaultsE2E, AnAgentKilledWhileAdoptingItsPodsRestartsNone) {
  Cluster c;
  const int port = PickFreePort();
  StartWithV1(c, port, 3, 1);
  ASSERT_FALSE(::testing::Test::HasFailure());
  const auto before = c.ReadyPods();
  std::map<std::string, std::string> pids;  // pod -> pid
  const Json listed = c.Get("/api/v1/pods");
  for (const auto& p : listed["items"]) pids[p["name"]] = PodPid(p["address"].get<std::string>());
  ASSERT_EQ(pids.size(), 3u);

  c.KillAgent(0);
  ASSERT_TRUE(RestartAgentUntilItCrashesAt(c, 0, "agent-restore-after-adopt")) << c.Logs();
  EXPECT_NE(ReadFile(c.AgentLog(0)).find("failpoint agent-restore-after-adopt: crash"),
            std::string::npos);
  ASSERT_TRUE(c.StartAgent(0));
  ASSERT_TRUE(WaitFor([&] { return c.RolledOut(3); })) << c.Logs();
  for (int i = 0; i < 10; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    EXPECT_EQ(c.ReadyPods(), before);
  }
  const Json after = c.Get("/api/v1/pods");
  for (const auto& p : after["items"]) {
    EXPECT_EQ(PodPid(p["address"].get<std::string>()), pids[p["name"]]) << p.dump();
  }
  EXPECT_EQ(c.PodProcesses().size(), 3u);
}

}  // namespace
}  // namespace ballast::reconciler::testing

namespace ballast::reconciler::testing {
namespace {

size_t OpenDescriptors(pid_t pid) {
  std::error_code ec;
  size_t n = 0;
  for (auto it = fs::directory_iterator("/proc/" + std::to_string(pid) + "/fd", ec);
       !ec && it != fs::directory_iterator(); it.increment(ec)) {
    ++n;
  }
  return n;
}

// The reconciler runs out of file descriptors (its limit lowered to what it holds plus a few,
// then idle connections take the rest) while a new revision is pushed: it neither crashes nor
// spins; the pods it runs are untouched meanwhile; once descriptors are free again the revision
// is applied and recorded, after the one before — nothing lost.
TEST(FaultsE2E, RunningOutOfFileDescriptorsCostsNoPodAndNoEntry) {
  Cluster c;
  const int port = PickFreePort();
  const std::string v1 = StartWithV1(c, port, 2, 1);
  ASSERT_FALSE(::testing::Test::HasFailure());
  std::map<std::string, std::string> pids;  // address -> pid of each pod
  const Json listed = c.Get("/api/v1/pods");
  for (const auto& p : listed["items"]) pids[p["address"]] = PodPid(p["address"]);

  const pid_t serve = c.ServePid();
  rlimit old{};
  ASSERT_EQ(::prlimit(serve, RLIMIT_NOFILE, nullptr, &old), 0) << std::strerror(errno);
  const rlimit low{OpenDescriptors(serve) + 8, old.rlim_max};
  ASSERT_EQ(::prlimit(serve, RLIMIT_NOFILE, &low, nullptr), 0) << std::strerror(errno);
  const int serve_port = std::stoi(c.url().substr(c.url().rfind(':') + 1));
  std::vector<int> idle;
  for (int i = 0; i < 64; ++i) {
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<uint16_t>(serve_port));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd >= 0 && ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0) {
      idle.push_back(fd);
    } else if (fd >= 0) {
      ::close(fd);
    }
  }
  ASSERT_TRUE(WaitFor([&] { return OpenDescriptors(serve) >= low.rlim_cur; }))
      << "serve holds " << OpenDescriptors(serve) << " of " << low.rlim_cur;
  const std::string v2 = c.Commit({{"web.yaml", WebManifest("v2", 2, port)}}, "web v2");
  // Out of descriptors for 5 s: alive, not spinning, its pods untouched.
  std::this_thread::sleep_for(std::chrono::seconds(5));
  ASSERT_TRUE(c.ServeRunning()) << c.Logs();
  for (const auto& [address, pid] : pids) EXPECT_EQ(PodPid(address), pid) << address;

  for (int fd : idle) ::close(fd);
  ASSERT_EQ(::prlimit(serve, RLIMIT_NOFILE, &old, nullptr), 0) << std::strerror(errno);
  ASSERT_TRUE(WaitFor([&] { return c.RolledOut(2) && Serves(port, "v2"); })) << c.Logs();
  ASSERT_TRUE(WaitFor([&] {
    return HistoryRevisions(c) == std::vector<std::string>{v1, v2};
  })) << c.Logs();
  EXPECT_TRUE(c.ServeRunning());
  // It did run out: a fetch failed for it, and said so (not only the accept loop).
  const std::string log = ReadFile(c.serve_log());
  bool fetch_failed = false;
  for (size_t at = log.find("event=source_error"); at != std::string::npos;
       at = log.find("event=source_error", at + 1)) {
    const std::string line = log.substr(at, log.find('\n', at) - at);
    fetch_failed = fetch_failed || line.find("Too many open files") != std::string::npos;
  }
  EXPECT_TRUE(fetch_failed) << c.Logs();
}

}  // namespace
}  // namespace ballast::reconciler::testing
