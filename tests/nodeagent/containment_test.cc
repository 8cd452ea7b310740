// Pods attack their node (issue 16, "Pods contained"), with real agents and real pods of the
// process runtime: a fork bomb against the pids limit while the node keeps heartbeating and
// starting pods; a runAsNonRoot pod that would run as root; the capabilities, no_new_privs and
// seccomp filter a pod's processes hold, and what a dropped or an added capability changes; a
// system call the filter refuses. Each pod writes what it sees to a results directory of the
// test's own, which is what a user inside the pod would see.
//
// They need the agent to run as root (it switches users and drops capabilities); skipped
// otherwise, with the reason.

#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>

#include "fake_control_plane.h"
#include "net/client.h"
#include "nodeagent/agent.h"
#include "test_util.h"

namespace ballast::nodeagent {
namespace {

using namespace ballast::nodeagent::testing;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

// Where pods write what they see: world-writable, since some run as nobody.
class ResultsDir {
 public:
  ResultsDir() { ::chmod(dir_.path().c_str(), 0777); }
  std::string File(const std::string& name) const { return dir_.path() + "/" + name; }
  // The file's text once the pod has written it (it ends with "done\n").
  std::string Wait(const std::string& name) const {
    WaitUntil([&] { return ReadFile(File(name)).find("done\n") != std::string::npos; });
    return ReadFile(File(name));
  }

 private:
  TempDir dir_;
};

// A pod whose one container runs `script` with `sh -c` and then sleeps.
agentapi::DesiredPod ScriptPod(const std::string& name, const std::string& script,
                               model::SecurityContext sc = {}) {
  model::Container c = ShellContainer("main", script + "; exec sleep 600");
  c.security_context = std::move(sc);
  return MakePod(name, {c}, /*grace_seconds=*/1);
}

// What /proc/self/status says of the process's capabilities, no_new_privs and seccomp mode.
std::string StatusReport(const std::string& out) {
  return "grep -E '^(CapInh|CapPrm|CapEff|CapBnd|CapAmb|NoNewPrivs|Seccomp):' /proc/self/status "
         "| tr -d '\\t' > " +
         out + ".tmp; echo done >> " + out + ".tmp; mv " + out + ".tmp " + out;
}

class ContainmentTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "the agent must run as root to confine pods";
    ASSERT_EQ(cp_.start_error(), "");
    AgentOptions o;
    o.server_url = cp_.url();
    o.name = "node-c";
    o.address = "127.0.0.7";
    o.work_dir = work_.path();
    o.heartbeat_seconds = 1;
    o.long_poll_seconds = 5;
    o.retry_initial_ms = 100;
    o.retry_max_ms = 500;
    o.enable_cgroups = false;
    o.stop_pods_on_exit = true;
    o.crash_backoff.initial_ms = 200;
    o.crash_backoff.max_ms = 400;
    agent_ = std::make_unique<Agent>(o, clock_);
    ASSERT_TRUE(agent_->Start().ok());
    ASSERT_TRUE(WaitUntil([&] { return cp_.Registered("node-c"); }));
  }
  void TearDown() override {
    if (agent_) agent_->Stop();
  }
  void Run(std::vector<agentapi::DesiredPod> pods) {
    agentapi::DesiredState st;
    st.pods = std::move(pods);
    cp_.store().Set("node-c", st);
  }
  // The pod as the reconciler last heard of it.
  std::optional<model::Pod> Reported(const std::string& name) {
    auto pods = cp_.Pods("node-c");
    const model::Pod* p = FindPod(pods, name);
    if (p == nullptr) return std::nullopt;
    return *p;
  }

  FakeControlPlane cp_;
  TempDir work_;
  SystemClock clock_;
  std::unique_ptr<Agent> agent_;
  ResultsDir results_;
};

TEST_F(ContainmentTest, RunAsNonRootWithoutAUserIsRefusedWithTheReasonInItsStatus) {
  model::SecurityContext non_root;
  non_root.run_as_non_root = true;
  agentapi::DesiredPod refused = ScriptPod("nonroot-rev1-aaaaa", "id -u > never", non_root);
  // With the pod's runAsUser it runs, as that user.
  agentapi::DesiredPod with_user = ScriptPod(
      "nobody-rev1-bbbbb",
      "id -u > " + results_.File("uid") + "; echo done >> " + results_.File("uid"), non_root);
  with_user.template_.spec.security_context.run_as_user = 65534;
  Run({refused, with_user});
  std::optional<model::Pod> p;
  ASSERT_TRUE(WaitUntil([&] {
    p = Reported("nonroot-rev1-aaaaa");
    return p && !p->containers.empty() && p->containers[0].reason == "CreateContainerConfigError";
  })) << (p ? p->containers[0].reason + ": " + p->containers[0].message : "not reported");
  EXPECT_EQ(p->phase, model::PodPhase::kPending);
  EXPECT_EQ(p->containers[0].state, "waiting");
  EXPECT_NE(p->containers[0].message.find("container has runAsNonRoot and will run as root"),
            std::string::npos)
      << p->containers[0].message;
  EXPECT_EQ(p->restarts, 0);
  EXPECT_EQ(results_.Wait("uid"), "65534\ndone\n");
  // It never ran: tried again after its back-off, refused again.
  std::this_thread::sleep_for(1s);  // a few back-offs of 200-400 ms (not synchronization)
  p = Reported("nonroot-rev1-aaaaa");
  ASSERT_TRUE(p.has_value());
  EXPECT_EQ(p->containers[0].reason, "CreateContainerConfigError");
  EXPECT_EQ(p->restarts, 0);
}

TEST_F(ContainmentTest, ProcStatusShowsTheCapabilitiesNoNewPrivsAndSeccompFilter) {
  model::SecurityContext no_raw;
  no_raw.capabilities = model::Capabilities{{}, {"NET_RAW"}};
  model::SecurityContext nobody;
  nobody.run_as_user = 65534;
  model::SecurityContext nobody_bind = nobody;
  nobody_bind.capabilities = model::Capabilities{{"NET_BIND_SERVICE"}, {"all"}};
  model::SecurityContext escalate;
  escalate.allow_privilege_escalation = true;
  Run({ScriptPod("root-rev1-aaaaa", StatusReport(results_.File("root"))),
       ScriptPod("noraw-rev1-bbbbb", StatusReport(results_.File("noraw")), no_raw),
       ScriptPod("nobody-rev1-ccccc", StatusReport(results_.File("nobody")), nobody),
       ScriptPod("bind-rev1-ddddd", StatusReport(results_.File("bind")), nobody_bind),
       ScriptPod("escalate-rev1-eeeee", StatusReport(results_.File("escalate")), escalate)});
  // Root: Docker's 14 default capabilities (CHOWN ... SETFCAP), nothing inheritable or ambient.
  EXPECT_EQ(results_.Wait("root"),
            "CapInh:0000000000000000\nCapPrm:00000000a80425fb\nCapEff:00000000a80425fb\n"
            "CapBnd:00000000a80425fb\nCapAmb:0000000000000000\nNoNewPrivs:1\nSeccomp:2\n"
            "done\n");
  // drop: [NET_RAW] takes bit 13 away from every set.
  EXPECT_EQ(results_.Wait("noraw"),
            "CapInh:0000000000000000\nCapPrm:00000000a80405fb\nCapEff:00000000a80405fb\n"
            "CapBnd:00000000a80405fb\nCapAmb:0000000000000000\nNoNewPrivs:1\nSeccomp:2\n"
            "done\n");
  // Another user holds none, and can gain none (no_new_privs, a reduced bounding set).
  EXPECT_EQ(results_.Wait("nobody"),
            "CapInh:0000000000000000\nCapPrm:0000000000000000\nCapEff:0000000000000000\n"
            "CapBnd:00000000a80425fb\nCapAmb:0000000000000000\nNoNewPrivs:1\nSeccomp:2\n"
            "done\n");
  // drop: [all], add: [NET_BIND_SERVICE] as another user: that one capability, kept across exec
  // as an ambient capability.
  EXPECT_EQ(results_.Wait("bind"),
            "CapInh:0000000000000400\nCapPrm:0000000000000400\nCapEff:0000000000000400\n"
            "CapBnd:0000000000000400\nCapAmb:0000000000000400\nNoNewPrivs:1\nSeccomp:2\n"
            "done\n");
  // allowPrivilegeEscalation: true leaves no_new_privs unset; the filter stays.
  EXPECT_EQ(results_.Wait("escalate"),
            "CapInh:0000000000000000\nCapPrm:00000000a80425fb\nCapEff:00000000a80425fb\n"
            "CapBnd:00000000a80425fb\nCapAmb:0000000000000000\nNoNewPrivs:0\nSeccomp:2\n"
            "done\n");
}

TEST_F(ContainmentTest, ADroppedCapabilityIsMissedAndAnAddedOneIsThere) {
  if (ReadFile("/proc/sys/net/ipv4/ip_unprivileged_port_start") != "1024\n") {
    GTEST_SKIP() << "ports below 1024 need no capability on this machine";
  }
  // Root without CHOWN cannot give a file away; with it (the default) it can.
  const std::string chown = "touch f; chown 1:1 f 2> " + results_.File("%s") + ".err; echo $? > " +
                            results_.File("%s") + ".tmp; echo done >> " + results_.File("%s") +
                            ".tmp; mv " + results_.File("%s") + ".tmp " + results_.File("%s");
  auto script = [&](const std::string& name) {
    std::string s = chown;
    for (size_t at; (at = s.find("%s")) != std::string::npos;) s.replace(at, 2, name);
    return s;
  };
  model::SecurityContext no_chown;
  no_chown.capabilities = model::Capabilities{{}, {"CHOWN"}};
  // A user other than root binds a port below 1024 only with NET_BIND_SERVICE.
  model::SecurityContext nobody;
  nobody.run_as_user = 65534;
  model::SecurityContext nobody_bind = nobody;
  nobody_bind.capabilities = model::Capabilities{{"NET_BIND_SERVICE"}, {}};
  auto httpd = [](const std::string& name, int port, const model::SecurityContext& sc) {
    model::Container c;
    c.name = "main";
    c.image = "none";
    c.command = {"busybox", "httpd", "-f", "-p", "127.0.0.7:" + std::to_string(port), "-h", "/"};
    c.security_context = sc;
    return MakePod(name, {c}, 1);
  };
  Run({ScriptPod("chown-rev1-aaaaa", script("chown")),
       ScriptPod("nochown-rev1-bbbbb", script("nochown"), no_chown),
       httpd("bind-rev1-ccccc", 944, nobody_bind), httpd("nobind-rev1-ddddd", 945, nobody)});
  EXPECT_EQ(results_.Wait("chown"), "0\ndone\n");
  EXPECT_EQ(results_.Wait("nochown"), "1\ndone\n");
  EXPECT_NE(ReadFile(results_.File("nochown.err")).find("Operation not permitted"),
            std::string::npos);
  net::HttpClient http;
  EXPECT_TRUE(WaitUntil([&] { return http.Get("http://127.0.0.7:944/").ok(); }));
  // The other cannot bind: it exits at once, again and again.
  std::optional<model::Pod> p;
  EXPECT_TRUE(WaitUntil([&] {
    p = Reported("nobind-rev1-ddddd");
    return p && !p->containers.empty() && p->containers[0].restarts >= 1;
  }));
  EXPECT_FALSE(http.Get("http://127.0.0.7:945/").ok());
  p = Reported("bind-rev1-ccccc");
  ASSERT_TRUE(p.has_value());
  EXPECT_EQ(p->containers[0].state, "running");
}

TEST_F(ContainmentTest, ASystemCallTheFilterRefusesFailsWithEperm) {
  // Outside a pod, root may make a user namespace here (so the refusal below is the filter's).
  ProcessSpec probe;
  probe.executable = "/usr/bin/unshare";
  probe.argv = {"unshare", "-U", "true"};
  auto outside = RunWithTimeout(probe, 10'000);
  ASSERT_TRUE(outside.ok()) << outside.status().ToString();
  if (*outside != 0) GTEST_SKIP() << "this machine refuses user namespaces to root itself";
  const std::string out = results_.File("unshare");
  Run({ScriptPod("unshare-rev1-aaaaa", "unshare -U true 2> " + out + ".tmp; echo $? >> " + out +
                                           ".tmp; echo done >> " + out + ".tmp; mv " + out +
                                           ".tmp " + out)});
  EXPECT_EQ(results_.Wait("unshare"),
            "unshare: unshare failed: Operation not permitted\n1\ndone\n");
}

// The pods cgroup of `pod` under the agent `agent` (cgroup v1 or v2); "" when there is none.
std::string PodPidsCgroup(const std::string& agent, const std::string& pod) {
  for (const std::string& base :
       {"/sys/fs/cgroup/pids/ballast/" + agent, "/sys/fs/cgroup/ballast/" + agent}) {
    std::error_code ec;
    for (const auto& entry : fs::directory_iterator(base, ec)) {
      if (entry.path().filename().string().find(pod) != std::string::npos &&
          fs::exists(entry.path() / "pids.max")) {
        return entry.path().string();
      }
    }
  }
  return "";
}

// A fork bomb in a pod of a `ballast agent` process: it gets as many processes as its pids limit
// allows and no more; the agent keeps heartbeating and starts another pod meanwhile.
TEST(ContainmentBinaryTest, AForkBombIsHeldByThePidsLimitAndTheNodeStaysResponsive) {
  if (::geteuid() != 0) GTEST_SKIP() << "cgroups need the agent to run as root";
  FakeControlPlane cp;
  ASSERT_EQ(cp.start_error(), "");
  TempDir dir;
  const std::string name = "bomb-" + std::to_string(::getpid());
  pid_t agent = ::fork();
  if (agent == 0) {
    ::execl(BALLAST_BINARY, "ballast", "agent", "--server", cp.url().c_str(), "--name",
            name.c_str(), "--address", "127.0.0.6", "--work-dir", dir.path().c_str(), "--heartbeat",
            "1", "--stop-pods-on-exit", static_cast<char*>(nullptr));
    ::_exit(127);
  }
  auto stop_agent = [&] {
    if (agent > 0) {
      ::kill(agent, SIGTERM);
      ::waitpid(agent, nullptr, 0);
      agent = -1;
    }
    for (const char* ctrl : {"memory/", "cpu/", "pids/", ""}) {
      const std::string dir = std::string("/sys/fs/cgroup/") + ctrl + "ballast/" + name;
      std::error_code ec;
      for (const auto& pod : fs::directory_iterator(dir, ec)) {
        if (pod.is_directory()) ::rmdir(pod.path().c_str());  // left only if the test failed
      }
      ::rmdir(dir.c_str());
    }
  };
  ASSERT_TRUE(WaitUntil([&] { return cp.Registered(name); }));

  // A loop that forks 400 sleeps, bounded so that it cannot take this machine down if the
  // limit does not hold; then the pod's shell goes on sleeping, its sleeps kept.
  ResultsDir results;
  const std::string out = results.File("bomb");
  agentapi::DesiredPod bomb =
      ScriptPod("bomb-rev1-aaaaa",
                "(n=0; while [ $n -lt 400 ]; do sleep 600 & n=$((n+1)); done; echo spawned $n) > " +
                    out + " 2>&1; echo \"loop ended $?\" >> " + out + "; echo done >> " + out);
  bomb.template_.annotations["ballast.dev/pids-limit"] = "40";
  agentapi::DesiredState st;
  st.pods = {bomb};
  cp.store().Set(name, st);
  const std::string seen = results.Wait("bomb");
  const std::string cgroup = PodPidsCgroup(name, "bomb-rev1-aaaaa");
  if (cgroup.empty()) {
    stop_agent();
    GTEST_SKIP() << "no pids cgroup for the pod on this machine";
  }
  // The fork that would have been the 41st process failed; the loop never got to 400.
  EXPECT_NE(seen.find("Cannot fork"), std::string::npos) << seen;
  EXPECT_EQ(seen.find("spawned 400"), std::string::npos) << seen;
  EXPECT_NE(seen.find("loop ended 2"), std::string::npos) << seen;
  EXPECT_EQ(ReadFile(cgroup + "/pids.max"), "40\n");
  EXPECT_LE(std::stoi(ReadFile(cgroup + "/pids.current")), 40);  // the sleeps are still there
  EXPECT_NE(ReadFile(cgroup + "/pids.events"), "max 0\n");       // forks were refused

  // Meanwhile the node goes on: heartbeats arrive, and a new pod (with the default limit) runs.
  const int heartbeats = cp.heartbeats();
  ASSERT_TRUE(WaitUntil([&] { return cp.heartbeats() >= heartbeats + 2; }, [] {}, 10s));
  agentapi::DesiredPod other =
      ScriptPod("other-rev1-bbbbb", "echo done > " + results.File("other"));
  st.pods = {bomb, other};
  cp.store().Set(name, st);
  EXPECT_EQ(results.Wait("other"), "done\n");
  EXPECT_TRUE(WaitUntil([&] {
    auto pods = cp.Pods(name);
    const model::Pod* p = FindPod(pods, "other-rev1-bbbbb");
    return p != nullptr && p->phase == model::PodPhase::kRunning;
  }));
  EXPECT_EQ(ReadFile(PodPidsCgroup(name, "other-rev1-bbbbb") + "/pids.max"), "4096\n");
  const auto pods = cp.Pods(name);
  const model::Pod* held = FindPod(pods, "bomb-rev1-aaaaa");
  ASSERT_NE(held, nullptr);
  EXPECT_EQ(held->phase, model::PodPhase::kRunning);
  // The agent stops its pods on SIGTERM (--stop-pods-on-exit): the bomb's processes are killed
  // and its cgroup goes with it.
  ::kill(agent, SIGTERM);
  ::waitpid(agent, nullptr, 0);
  agent = -1;
  EXPECT_EQ(PodPidsCgroup(name, "bomb-rev1-aaaaa"), "");
  stop_agent();
}

}  // namespace
}  // namespace ballast::nodeagent
