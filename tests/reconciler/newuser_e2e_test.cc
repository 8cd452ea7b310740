// What a first-time user checks against the README and the walkthrough in examples/repo, with
// the real `ballast serve`, `ballast agent`s and the CLI: `ballast status` names the commit it
// runs, and warns (naming file and field) about Services that share a port; a second
// reconciler on one --state-dir, or a second agent on one --work-dir, refuses to start; an agent
// that cannot register (a name in use, a refused token) says why in its log.

#include <gtest/gtest.h>
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>

#include "tests/reconciler/cluster.h"

namespace ballast::reconciler::testing {
namespace {

// `ballast version` names the version CMake's project() gives, the commit the tree was built
// from, the build type and the compiler; a running `ballast serve` answers the same document.
TEST(NewUserE2E, VersionNamesTheBuildAndServeAnswersTheSame) {
  auto text = git::testing::Sh(std::string(BALLAST_BINARY) + " version");
  EXPECT_EQ(text.exit_code, 0) << text.output;
  EXPECT_EQ(text.output.rfind("ballast " BALLAST_PROJECT_VERSION "\n", 0), 0u) << text.output;
  auto json = git::testing::Sh(std::string(BALLAST_BINARY) + " version -o json");
  ASSERT_EQ(json.exit_code, 0) << json.output;
  const Json v = Json::parse(json.output);
  EXPECT_EQ(v["version"], BALLAST_PROJECT_VERSION);
  // "Release", or "Debug+asan" for a sanitizer build.
  EXPECT_EQ(v["buildType"].get<std::string>().rfind(BALLAST_BUILD_TYPE, 0), 0u) << json.output;
  // The commit of the source tree, unless the build was told another one (no .git).
  auto head = git::testing::Sh("git -C " BALLAST_SOURCE_DIR " rev-parse HEAD");
  if (head.exit_code == 0) {
    const std::string commit = v["commit"];
    EXPECT_EQ(commit.substr(0, 40), head.output.substr(0, 40)) << json.output;
  }
  for (const char* library : {"libgit2", "OpenSSL", "yaml-cpp"}) {
    EXPECT_TRUE(v["libraries"].contains(library)) << json.output;
  }
  EXPECT_NE(text.output.find(v["commit"].get<std::string>()), std::string::npos) << text.output;
  EXPECT_NE(text.output.find(v["compiler"].get<std::string>()), std::string::npos) << text.output;

  Cluster c;
  c.Commit({{"web.yaml", WebManifest("v1", 1, PickFreePort())}}, "web v1");
  ASSERT_TRUE(c.StartServe({}));
  EXPECT_EQ(c.Get("/api/v1/version"), v);
}

TEST(NewUserE2E, StatusShowsTheRevisionsCommitMessage) {
  Cluster c;
  const int svc_port = PickFreePort();
  const std::string v1 = c.Commit({{"web.yaml", WebManifest("v1", 1, svc_port)}}, "web: say v1");
  ASSERT_TRUE(c.StartServe({}));
  ASSERT_TRUE(c.StartAgents(1));
  ASSERT_TRUE(WaitFor([&] {
    Json s = c.Status();
    return !s.is_null() && s["appliedRevision"] == v1;
  })) << c.Logs();
  auto r = c.Cli("status");
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("Revision:  " + v1), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("Commit:    web: say v1"), std::string::npos) << r.output;
}

TEST(NewUserE2E, StatusWarnsAboutTwoServicesOnOnePort) {
  Cluster c;
  const int svc_port = PickFreePort();
  const std::string other =
      "apiVersion: v1\nkind: Service\nmetadata: {name: other}\nspec:\n"
      "  selector: {app: other}\n  ports:\n  - port: " +
      std::to_string(svc_port) + "\n";
  const std::string v1 =
      c.Commit({{"web.yaml", WebManifest("v1", 1, svc_port)}, {"other.yaml", other}},
               "web and other on one port");
  ASSERT_TRUE(c.StartServe({}));
  ASSERT_TRUE(WaitFor([&] {
    Json s = c.Status();
    return !s.is_null() && s["revision"] == v1;
  })) << c.Logs();
  auto r = c.Cli("status");
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("Warnings:\n  web.yaml:"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("spec.ports[0].port: port " + std::to_string(svc_port) +
                          " is also spec.ports[0].port of Service default/other (other.yaml:1:1)"),
            std::string::npos)
      << r.output;
}

TEST(NewUserE2E, SecondServeOnOneStateDirAndSecondAgentOnOneWorkDirRefuseToStart) {
  Cluster c;
  const int svc_port = PickFreePort();
  c.Commit({{"web.yaml", WebManifest("v1", 1, svc_port)}}, "web v1");
  ASSERT_TRUE(c.StartServe({}));
  ASSERT_TRUE(c.StartAgents(1));
  ASSERT_TRUE(WaitFor([&] { return c.RolledOut(1); })) << c.Logs();
  const auto pods = c.ReadyPods();

  const std::string bin = BALLAST_BINARY;
  auto serve =
      git::testing::Sh("timeout 20 " + bin + " serve --repo " + c.farm().BarePath("manifests") +
                       " --listen 127.0.0.1:0 --state-dir " + (c.dir() / "state"));
  EXPECT_EQ(serve.exit_code, 1) << serve.output;
  EXPECT_NE(serve.output.find("--state-dir: " + (c.dir() / "state") +
                              " is in use by another ballast serve (pid "),
            std::string::npos)
      << serve.output;

  auto agent =
      git::testing::Sh("timeout 20 " + bin + " agent --server " + c.url() +
                       " --name intruder --address 127.0.0.9 --work-dir " + (c.dir() / "agent-n2"));
  EXPECT_EQ(agent.exit_code, 1) << agent.output;
  EXPECT_NE(agent.output.find("--work-dir: " + (c.dir() / "agent-n2") +
                              " is in use by another ballast agent (pid "),
            std::string::npos)
      << agent.output;

  // What ran keeps running, on the one node there is.
  EXPECT_EQ(c.ReadyPods(), pods);
  Json nodes = c.Get("/api/v1/nodes");
  ASSERT_FALSE(nodes.is_null());
  EXPECT_EQ(nodes["items"].size(), 1u) << nodes.dump();

  // A kill -9 leaves no stale lock: the same serve starts again on its state dir.
  c.KillServe();
  ASSERT_TRUE(c.StartServe({})) << c.Logs();
}

// kubectl's PORT(S) column shows a NodePort Service's nodePort ("80:30080/TCP"), and a pod
// behind two ports of one Service is one endpoint, not two.
TEST(NewUserE2E, GetServicesShowsNodePortsAndEachEndpointOnce) {
  Cluster c;
  const int svc_port = PickFreePort();
  const int admin_port = PickFreePort();
  const int node_port = 30000 + svc_port % 2700;
  const std::string front =
      "apiVersion: v1\nkind: Service\nmetadata: {name: front}\nspec:\n  type: NodePort\n"
      "  selector: {app: web}\n  ports:\n"
      "  - {name: http, port: " +
      std::to_string(admin_port) + ", targetPort: http, nodePort: " + std::to_string(node_port) +
      "}\n  - {name: alt, port: " + std::to_string(admin_port + 1) + ", targetPort: 8080}\n";
  c.Commit({{"web.yaml", WebManifest("v1", 2, svc_port)}, {"front.yaml", front}}, "web, front");
  ASSERT_TRUE(c.StartServe({}));
  ASSERT_TRUE(c.StartAgents(1));
  ASSERT_TRUE(WaitFor([&] { return c.RolledOut(2); })) << c.Logs();
  std::string out;
  ASSERT_TRUE(WaitFor([&] {
    out = c.Cli("get services").output;
    return out.find(" front ") != std::string::npos &&
           out.find("   2\n", out.find(" front ")) != std::string::npos;
  })) << out;
  EXPECT_NE(out.find(std::to_string(admin_port) + ":" + std::to_string(node_port) + "/TCP," +
                     std::to_string(admin_port + 1) + "/TCP"),
            std::string::npos)
      << out;
}

// A second agent started with a name already in use (another address) is refused and says why;
// the node, its address and its pods stay as they were.
TEST(NewUserE2E, SecondAgentWithATakenNameIsRefusedAndSaysWhy) {
  Cluster c;
  const int svc_port = PickFreePort();
  c.Commit({{"web.yaml", WebManifest("v1", 2, svc_port)}}, "web v1");
  ASSERT_TRUE(c.StartServe({}));
  ASSERT_TRUE(c.StartAgents(1));
  ASSERT_TRUE(WaitFor([&] { return c.RolledOut(2); })) << c.Logs();
  const auto pods = c.ReadyPods();

  git::testing::ChildProcess intruder;
  const std::string log = c.dir() / "intruder.log";
  ASSERT_TRUE(intruder.Start(
      {BALLAST_BINARY, "agent", "--server", c.url(), "--name", "n2", "--address", "127.0.0.9",
       "--work-dir", c.dir() / "intruder", "--heartbeat", "1", "--no-cgroups"},
      log));
  ASSERT_TRUE(WaitFor([&] {
    return ReadFile(log).find("event=register_failed") != std::string::npos;
  })) << ReadFile(log);
  EXPECT_NE(ReadFile(log).find("node n2 is registered from 127.0.0.2 and alive"), std::string::npos)
      << ReadFile(log);
  // A few of the intruder's heartbeat periods later, nothing moved.
  std::this_thread::sleep_for(std::chrono::seconds(3));
  Json nodes = c.Get("/api/v1/nodes");
  ASSERT_FALSE(nodes.is_null());
  ASSERT_EQ(nodes["items"].size(), 1u) << nodes.dump();
  EXPECT_EQ(nodes["items"][0]["address"], "127.0.0.2") << nodes.dump();
  EXPECT_EQ(c.ReadyPods(), pods);
  EXPECT_EQ(ReadFile(log).find("event=registered"), std::string::npos) << ReadFile(log);
  intruder.Stop();
}

// An agent whose token the reconciler refuses says so in its log instead of retrying silently.
TEST(NewUserE2E, AgentWithoutTheTokenSaysRegisterIsRefused) {
  Cluster c;
  const std::string token_file = c.dir() / "token";
  std::ofstream(token_file) << "s3cret\n";
  c.Commit({{"web.yaml", WebManifest("v1", 1, PickFreePort())}}, "web v1");
  ASSERT_TRUE(c.StartServe({"--token-file", token_file}));
  git::testing::ChildProcess agent;
  const std::string log = c.dir() / "agent-no-token.log";
  ASSERT_TRUE(
      agent.Start({BALLAST_BINARY, "agent", "--server", c.url(), "--name", "lonely", "--address",
                   "127.0.0.2", "--work-dir", c.dir() / "agent-lonely", "--no-cgroups"},
                  log));
  ASSERT_TRUE(WaitFor([&] {
    return ReadFile(log).find("event=register_failed") != std::string::npos;
  })) << ReadFile(log);
  EXPECT_NE(ReadFile(log).find("HTTP 401"), std::string::npos) << ReadFile(log);
  EXPECT_NE(ReadFile(log).find("check --token-file"), std::string::npos) << ReadFile(log);
  agent.Stop();
}

// Under the common soft limit of 1,024 open files, a flood of connections would exhaust
// descriptors before the server's connection cap refuses them: serve raises its soft limit to
// the hard one at start.
TEST(NewUserE2E, ServeRaisesItsOpenFileLimitToTheHardOne) {
  rlimit mine{};
  ASSERT_EQ(getrlimit(RLIMIT_NOFILE, &mine), 0);
  const rlim_t hard = std::min<rlim_t>(mine.rlim_max, 4096);
  if (hard <= 256) GTEST_SKIP() << "hard open-file limit " << mine.rlim_max << " is too low";
  Cluster c;
  c.Commit({{"web.yaml", WebManifest("v1", 1, PickFreePort())}}, "web v1");
  git::testing::ChildProcess serve;
  const std::string log = c.dir() / "limited.log";
  ASSERT_TRUE(serve.Start({"/usr/bin/prlimit", "--nofile=256:" + std::to_string(hard),
                           BALLAST_BINARY, "serve", "--repo", c.farm().BarePath("manifests"),
                           "--listen", "127.0.0.1:0", "--state-dir", c.dir() / "limited-state"},
                          log));
  ASSERT_TRUE(WaitFor([&] { return ReadFile(log).find("listening on") != std::string::npos; },
                      std::chrono::seconds(30)))
      << ReadFile(log);
  std::ifstream limits("/proc/" + std::to_string(serve.pid()) + "/limits");
  std::string line;
  bool found = false;
  while (std::getline(limits, line)) {
    if (line.rfind("Max open files", 0) != 0) continue;
    found = true;
    std::istringstream fields(line.substr(std::string("Max open files").size()));
    rlim_t soft = 0, hard_seen = 0;
    fields >> soft >> hard_seen;
    EXPECT_EQ(soft, hard) << line;
    EXPECT_EQ(hard_seen, hard) << line;
  }
  EXPECT_TRUE(found);
}

}  // namespace
}  // namespace ballast::reconciler::testing
