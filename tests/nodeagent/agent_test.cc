// The agent against a fake control plane over real HTTP: register, heartbeat, long-poll of the
// desired set, reconciler away and back, agent restart adopting its pods (in-process and as the
// `ballast agent` binary).

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <mutex>

#include <gtest/gtest.h>

#include "fake_control_plane.h"
#include "net/client.h"
#include "nodeagent/agent.h"
#include "test_util.h"

namespace ballast::nodeagent {
namespace {

using namespace ballast::nodeagent::testing;
using namespace std::chrono_literals;

agentapi::DesiredPod DemoPod(const std::string& name, const std::string& message) {
  model::Container c;
  c.name = "app";
  c.command = {BALLAST_BINARY, "demo-app", "--message", message};
  c.ports.push_back(model::ContainerPort{"http", 8080, "TCP", 0, model::Json::object()});
  model::Probe ready;
  ready.tcp_socket = model::TcpSocketAction{std::string("http"), ""};
  ready.period_seconds = 1;
  c.readiness_probe = ready;
  agentapi::DesiredPod p = MakePod(name, {c}, 5);
  p.deployment = "demo";
  return p;
}

const model::Pod* Find(const std::vector<model::Pod>& pods, const std::string& name) {
  return FindPod(pods, name);
}

pid_t PodPid(const std::string& work_dir, const std::string& pod) {
  std::ifstream in(work_dir + "/state/pods/default_" + pod + "/pod.json");
  auto j = model::Json::parse(in, nullptr, false);
  if (j.is_discarded()) return 0;
  return j["containers"][0].value("pid", 0);
}

AgentOptions Options(const std::string& server, const std::string& work_dir,
                     const std::string& name = "node-a") {
  AgentOptions o;
  o.server_url = server;
  o.name = name;
  o.address = "127.0.0.4";
  o.work_dir = work_dir;
  o.heartbeat_seconds = 1;
  o.long_poll_seconds = 5;
  o.retry_initial_ms = 100;
  o.retry_max_ms = 500;
  o.enable_cgroups = false;
  return o;
}

TEST(AgentTest, RegistersHeartbeatsAndConvergesByLongPoll) {
  FakeControlPlane cp("s3cret");
  ASSERT_EQ(cp.start_error(), "");
  TempDir dir;
  SystemClock clock;
  AgentOptions o = Options(cp.url(), dir.path());
  o.token = "s3cret";
  o.labels = {{"zone", "a"}};
  o.stop_pods_on_exit = true;
  Agent agent(o, clock);
  ASSERT_TRUE(agent.Start().ok());
  ASSERT_TRUE(WaitUntil([&] { return cp.Registered("node-a"); }));
  model::Node node = cp.Node("node-a");
  EXPECT_EQ(node.address, "127.0.0.4");
  EXPECT_EQ(node.labels["zone"], "a");
  EXPECT_EQ(node.labels["kubernetes.io/hostname"], "node-a");
  // The kubelet's platform labels: manifests with `nodeSelector: {kubernetes.io/os: linux}`
  // (every sock-shop Deployment has it) must place unchanged.
  EXPECT_EQ(node.labels["kubernetes.io/os"], "linux");
  EXPECT_EQ(node.labels["beta.kubernetes.io/os"], "linux");
  EXPECT_FALSE(node.labels["kubernetes.io/arch"].empty());
  EXPECT_TRUE(node.ready);
  EXPECT_FALSE(node.capacity.at("cpu").IsZero());

  // The agent is waiting in a long-poll: a new desired set reaches it without a poll period.
  ASSERT_TRUE(WaitUntil([&] { return cp.heartbeats() > 0; }));
  agentapi::DesiredState st;
  st.pods = {DemoPod("demo-rev1-aaaaa", "one"), DemoPod("demo-rev1-bbbbb", "two")};
  cp.store().Set("node-a", st);
  ASSERT_TRUE(WaitUntil([&] {
    auto pods = cp.Pods("node-a");
    return pods.size() == 2 && pods[0].ready && pods[1].ready;
  }));
  auto pods = cp.Pods("node-a");
  const model::Pod* one = Find(pods, "demo-rev1-aaaaa");
  ASSERT_NE(one, nullptr);
  EXPECT_EQ(one->node, "node-a");
  EXPECT_EQ(one->deployment, "demo");
  EXPECT_EQ(one->phase, model::PodPhase::kRunning);
  net::HttpClient client;
  auto res = client.Get("http://" + one->address + "/");
  ASSERT_TRUE(res.ok()) << res.status().ToString();
  EXPECT_EQ(res->body, "one pod=demo-rev1-aaaaa revision=rev1\n");

  // Logs through the agent's log server, announced in the node's labels.
  std::string api = node.labels["ballast.dev/agent-api"];
  ASSERT_EQ(api, agent.api_url());
  // The reconciler reads them with the token derived for logs; the cluster token itself is
  // not accepted there (the reconciler never sends it to a node).
  net::ClientOptions with_token;
  with_token.bearer_token = net::DeriveToken("s3cret", agentapi::kLogsTokenPurpose);
  net::HttpClient logs_client(with_token);
  net::ClientOptions cluster_token;
  cluster_token.bearer_token = "s3cret";
  EXPECT_EQ(
      net::HttpClient(cluster_token).Get(api + "/api/v1/logs/default/demo-rev1-aaaaa/app")->status,
      401);
  auto logs = logs_client.Get(api + "/api/v1/logs/default/demo-rev1-aaaaa/app?tailBytes=100000");
  ASSERT_TRUE(logs.ok()) << logs.status().ToString();
  EXPECT_EQ(logs->status, 200);
  EXPECT_NE(logs->body.find("demo-app: serving"), std::string::npos) << logs->body;
  EXPECT_EQ(client.Get(api + "/api/v1/logs/default/demo-rev1-aaaaa/app")->status, 401);
  EXPECT_EQ(logs_client.Get(api + "/api/v1/logs/default/nope/app")->status, 404);
  EXPECT_EQ(logs_client.Get(api + "/api/v1/logs/default/../../etc")->status, 400);

  // Scale down: the pod not in the set is stopped.
  st.pods = {DemoPod("demo-rev1-aaaaa", "one")};
  cp.store().Set("node-a", st);
  ASSERT_TRUE(WaitUntil([&] { return cp.Pods("node-a").size() == 1; }));
  agent.Stop();
  EXPECT_TRUE(WaitUntil([&] { return !client.Get("http://" + one->address + "/").ok(); }));
}

// Another process holds a Service's CLUSTER_IP:port (without SO_REUSEPORT): the agent says so in
// its log, naming the address, instead of leaving the Service silently unreachable there.
TEST(AgentTest, ServiceAddressItCannotListenOnIsLogged) {
  const std::string cluster_ip = "127.128.99.7";
  auto port = FreePort(cluster_ip);
  ASSERT_TRUE(port.ok());
  int holder = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(*port));
  ::inet_pton(AF_INET, cluster_ip.c_str(), &addr.sin_addr);
  ASSERT_EQ(::bind(holder, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  ASSERT_EQ(::listen(holder, 1), 0);

  FakeControlPlane cp("");
  ASSERT_EQ(cp.start_error(), "");
  TempDir dir;
  SystemClock clock;
  AgentOptions o = Options(cp.url(), dir.path());
  std::mutex mu;
  std::vector<std::string> failures;
  o.log = [&](std::string_view event, const std::vector<std::pair<std::string, std::string>>& f) {
    if (event != "service_listen_failed") return;
    std::lock_guard<std::mutex> lock(mu);
    for (const auto& [k, v] : f) {
      if (k == "error") failures.push_back(v);
    }
  };
  Agent agent(o, clock);
  ASSERT_TRUE(agent.Start().ok());
  ASSERT_TRUE(WaitUntil([&] { return cp.Registered("node-a"); }));
  agentapi::DesiredService web;
  web.name = "web";
  web.cluster_ip = cluster_ip;
  web.ports = {agentapi::DesiredServicePort{"http", "TCP", *port, 0, {"127.0.0.1:9"}}};
  agentapi::DesiredState st;
  st.services = {web};
  cp.store().Set("node-a", st);
  const std::string want = cluster_ip + ":" + std::to_string(*port) + ": Address already in use";
  ASSERT_TRUE(WaitUntil([&] {
    std::lock_guard<std::mutex> lock(mu);
    return !failures.empty();
  }));
  {
    std::lock_guard<std::mutex> lock(mu);
    EXPECT_EQ(failures, std::vector<std::string>{want});  // once, and only that address
  }
  agent.Stop();
  ::close(holder);
}

TEST(AgentTest, WrongTokenNeverRegisters) {
  FakeControlPlane cp("right");
  TempDir dir;
  SystemClock clock;
  AgentOptions o = Options(cp.url(), dir.path());
  o.token = "wrong";
  Agent agent(o, clock);
  ASSERT_TRUE(agent.Start().ok());
  EXPECT_FALSE(WaitUntil([&] { return cp.Registered("node-a"); }, [] {}, 1500ms));
}

TEST(AgentTest, ReconcilerAwayAndBackKeepsPodsRunning) {
  TempDir dir;
  SystemClock clock;
  auto cp = std::make_unique<FakeControlPlane>();
  uint16_t port = cp->port();
  AgentOptions o = Options(cp->url(), dir.path());
  o.stop_pods_on_exit = true;
  Agent agent(o, clock);
  ASSERT_TRUE(agent.Start().ok());
  agentapi::DesiredState st;
  st.pods = {DemoPod("keep-rev1-ccccc", "kept")};
  cp->store().Set("node-a", st);
  ASSERT_TRUE(WaitUntil([&] {
    auto pods = cp->Pods("node-a");
    return pods.size() == 1 && pods[0].ready;
  }));
  pid_t pid = PodPid(dir.path(), "keep-rev1-ccccc");
  ASSERT_GT(pid, 0);

  cp.reset();  // the reconciler goes away
  // The agent keeps retrying; the pod keeps serving.
  std::this_thread::sleep_for(1500ms);  // let a few heartbeats fail (not synchronization)
  auto local = agent.Pods();
  ASSERT_EQ(local.size(), 1u);
  EXPECT_TRUE(local[0].ready);
  EXPECT_EQ(PodPid(dir.path(), "keep-rev1-ccccc"), pid);

  // A new reconciler on the same address, knowing nothing: the agent registers again and
  // reports the running pod, which is adopted as it is (same process, no restart).
  FakeControlPlane back("", port);
  ASSERT_EQ(back.start_error(), "");
  ASSERT_TRUE(WaitUntil([&] {
    auto pods = back.Pods("node-a");
    return pods.size() == 1 && pods[0].ready;
  }));
  EXPECT_EQ(back.Pods("node-a")[0].restarts, 0);
  EXPECT_EQ(PodPid(dir.path(), "keep-rev1-ccccc"), pid);
  EXPECT_TRUE(PidAlive(pid));
  back.store().Set("node-a", st);  // the same desired set: nothing restarts
  ASSERT_TRUE(WaitUntil([&] { return agent.desired_version() == 1; }));
  for (int i = 0; i < 20; ++i) std::this_thread::sleep_for(10ms);
  EXPECT_EQ(PodPid(dir.path(), "keep-rev1-ccccc"), pid);
}

TEST(AgentTest, RestartedAgentAdoptsItsPods) {
  FakeControlPlane cp;
  TempDir dir;
  SystemClock clock;
  pid_t pid = 0;
  {
    Agent first(Options(cp.url(), dir.path()), clock);  // pods survive its Stop()
    ASSERT_TRUE(first.Start().ok());
    agentapi::DesiredState st;
    st.pods = {DemoPod("adopt-rev1-ddddd", "adopt me")};
    cp.store().Set("node-a", st);
    ASSERT_TRUE(WaitUntil([&] {
      auto pods = first.Pods();
      return pods.size() == 1 && pods[0].ready;
    }));
    pid = PodPid(dir.path(), "adopt-rev1-ddddd");
    first.Stop();
  }
  ASSERT_TRUE(PidAlive(pid));
  AgentOptions o = Options(cp.url(), dir.path());
  o.stop_pods_on_exit = true;
  Agent second(o, clock);
  ASSERT_TRUE(second.Start().ok());
  EXPECT_EQ(second.adopted(), 1);
  ASSERT_TRUE(WaitUntil([&] {
    auto pods = cp.Pods("node-a");
    return pods.size() == 1 && pods[0].ready;
  }));
  EXPECT_EQ(PodPid(dir.path(), "adopt-rev1-ddddd"), pid);
  EXPECT_EQ(cp.Pods("node-a")[0].restarts, 0);
  // Adopted processes are still supervised: stopping the pod reaches the adopted process.
  cp.store().Set("node-a", agentapi::DesiredState{});
  ASSERT_TRUE(WaitUntil([&] { return second.Pods().empty(); }));
  EXPECT_TRUE(WaitUntil([&] { return !PidAlive(pid); }));
}

TEST(AgentTest, AgentBinaryKilledAndRestartedAdoptsPods) {
  FakeControlPlane cp;
  TempDir dir;
  auto spawn_agent = [&]() {
    pid_t pid = ::fork();
    if (pid == 0) {
      ::execl(BALLAST_BINARY, "ballast", "agent", "--server", cp.url().c_str(), "--name",
              "node-bin", "--address", "127.0.0.5", "--work-dir", dir.path().c_str(), "--heartbeat",
              "1", "--no-cgroups", static_cast<char*>(nullptr));
      ::_exit(127);
    }
    return pid;
  };
  pid_t agent = spawn_agent();
  ASSERT_TRUE(WaitUntil([&] { return cp.Registered("node-bin"); }));
  agentapi::DesiredState st;
  st.pods = {DemoPod("bin-rev1-eeeee", "from the binary")};
  cp.store().Set("node-bin", st);
  ASSERT_TRUE(WaitUntil([&] {
    auto pods = cp.Pods("node-bin");
    return pods.size() == 1 && pods[0].ready;
  }));
  pid_t pod_pid = PodPid(dir.path(), "bin-rev1-eeeee");
  ::kill(agent, SIGKILL);  // no chance to clean up
  ::waitpid(agent, nullptr, 0);
  ASSERT_TRUE(PidAlive(pod_pid));

  int registrations = cp.registrations();
  agent = spawn_agent();
  // The new agent registers, then reports the adopted pod.
  ASSERT_TRUE(WaitUntil([&] { return cp.registrations() > registrations; }));
  int heartbeats = cp.heartbeats();
  ASSERT_TRUE(WaitUntil([&] { return cp.heartbeats() > heartbeats; }));
  auto pods = cp.Pods("node-bin");
  ASSERT_EQ(pods.size(), 1u);
  EXPECT_TRUE(pods[0].ready);
  EXPECT_EQ(PodPid(dir.path(), "bin-rev1-eeeee"), pod_pid);
  EXPECT_EQ(cp.Pods("node-bin")[0].restarts, 0);
  // SIGTERM stops the agent cleanly and leaves the pod running (no --stop-pods-on-exit).
  ::kill(agent, SIGTERM);
  int status = 0;
  ::waitpid(agent, &status, 0);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  EXPECT_TRUE(PidAlive(pod_pid));
  ::kill(-pod_pid, SIGKILL);
  EXPECT_TRUE(WaitUntil([&] { return !PidAlive(pod_pid); }));
}

TEST(AgentTest, PodWhoseRecordIsLostIsStoppedNotLeftRunning) {
  // A crash (or a person) leaves a pod's pod.json truncated: the restarted agent cannot adopt
  // the process, so it must stop it (it holds the pod's port) before starting the pod afresh.
  FakeControlPlane cp;
  TempDir dir;
  SystemClock clock;
  agentapi::DesiredState st;
  st.pods = {DemoPod("lost-rev1-fffff", "lost record")};
  pid_t pid = 0;
  {
    Agent first(Options(cp.url(), dir.path()), clock);
    ASSERT_TRUE(first.Start().ok());
    cp.store().Set("node-a", st);
    ASSERT_TRUE(WaitUntil([&] {
      auto pods = first.Pods();
      return pods.size() == 1 && pods[0].ready;
    }));
    pid = PodPid(dir.path(), "lost-rev1-fffff");
    first.Stop();
  }
  ASSERT_TRUE(PidAlive(pid));
  std::ofstream(dir.path() + "/state/pods/default_lost-rev1-fffff/pod.json", std::ios::trunc)
      << "{\"truncat";
  AgentOptions o = Options(cp.url(), dir.path());
  o.stop_pods_on_exit = true;
  Agent second(o, clock);
  ASSERT_TRUE(second.Start().ok());
  EXPECT_EQ(second.adopted(), 0);
  EXPECT_TRUE(WaitUntil([&] { return !PidAlive(pid); })) << "orphan " << pid << " still runs";
  // The pod runs again, once.
  ASSERT_TRUE(WaitUntil([&] {
    auto pods = second.Pods();
    return pods.size() == 1 && pods[0].ready;
  }));
  EXPECT_NE(PodPid(dir.path(), "lost-rev1-fffff"), pid);
}

TEST(AgentTest, PodsFindTheBallastBinaryOffThePath) {
  // `command: [ballast, demo-app]` (examples/repo) works with an agent run from a build
  // directory that is not on the PATH.
  FakeControlPlane cp;
  TempDir dir;
  pid_t agent = ::fork();
  if (agent == 0) {
    const char* env[] = {"PATH=/usr/bin:/bin", nullptr};
    ::execle(BALLAST_BINARY, "ballast", "agent", "--server", cp.url().c_str(), "--name",
             "node-path", "--address", "127.0.0.5", "--work-dir", dir.path().c_str(), "--heartbeat",
             "1", "--no-cgroups", "--stop-pods-on-exit", static_cast<char*>(nullptr), env);
    ::_exit(127);
  }
  ASSERT_TRUE(WaitUntil([&] { return cp.Registered("node-path"); }));
  agentapi::DesiredPod pod = DemoPod("path-rev1-ggggg", "found");
  pod.template_.spec.containers[0].command = {"ballast", "demo-app"};
  agentapi::DesiredState st;
  st.pods = {pod};
  cp.store().Set("node-path", st);
  EXPECT_TRUE(WaitUntil([&] {
    auto pods = cp.Pods("node-path");
    return pods.size() == 1 && pods[0].ready;
  }));
  ::kill(agent, SIGTERM);
  ::waitpid(agent, nullptr, 0);
}

}  // namespace
}  // namespace ballast::nodeagent
