// The docker runtime under the pod supervisor, against a real engine: podman's Docker API
// service (podman_service.h) with busybox images imported from busybox-static. Start with env,
// $(VAR) and args, published ports and an HTTP probe, logs in the pod's files, graceful stop,
// CrashLoopBackOff and liveness restarts through exec probes, missing images, securityContext
// and the pids limit, the OOM killer, and adoption by a restarted agent.

#include "nodeagent/docker_runtime.h"

#include "nodeagent/agent.h"

#include <fstream>
#include <sstream>

#include <gtest/gtest.h>

#include "net/client.h"
#include "podman_service.h"
#include "test_util.h"

namespace ballast::nodeagent {
namespace {

using namespace ballast::nodeagent::testing;
using namespace std::chrono_literals;

model::Container ImageContainer(const std::string& name, const std::string& image,
                                std::vector<std::string> command = {},
                                std::vector<std::string> args = {}) {
  model::Container c;
  c.name = name;
  c.image = image;
  c.command = std::move(command);
  c.args = std::move(args);
  return c;
}

model::Probe HttpProbe(int32_t port) {
  model::Probe p;
  p.http_get = model::HttpGetAction{};
  p.http_get->path = "/index.html";
  p.http_get->port = int64_t{port};
  p.period_seconds = 1;
  p.failure_threshold = 1;
  return p;
}

class DockerRuntimeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string why;
    podman_ = PodmanService::Shared(&why);
    ASSERT_NE(podman_, nullptr) << "podman: " << why;
    static bool imported = false;
    if (!imported) {
      ASSERT_TRUE(podman_->ImportBusybox("localhost/bb:v1", "v1\n").ok());
      imported = true;
    }
    node_ = std::string("n-") + ::testing::UnitTest::GetInstance()->current_test_info()->name();
    Make();
  }
  void Make() {
    DockerRuntimeOptions ro;
    ro.socket_path = podman_->socket();
    ro.node_name = node_;
    runtime_ = std::make_unique<DockerRuntime>(ro);
    PodManagerOptions o;
    o.node_name = node_;
    o.node_address = "127.0.0.1";
    o.work_dir = dir_.path();
    o.backoff.initial_ms = 200;
    o.backoff.max_ms = 400;
    o.image_runtime = runtime_.get();
    o.prefer_images = true;
    pm_ = std::make_unique<PodManager>(o, clock_, nullptr);
  }
  // An agent restart: the supervisor and the runtime go away, the containers stay.
  void Restart() {
    pm_.reset();
    runtime_.reset();
    Make();
  }
  void TearDown() override {
    if (!pm_) return;
    pm_->StopAll();
    WaitUntil([&] { return pm_->Empty(); }, [&] { pm_->Tick(); });
    pm_.reset();
    runtime_.reset();
  }
  const model::Pod* Pod(const std::string& name) {
    status_ = pm_->Status();
    return FindPod(status_, name);
  }
  bool Until(const std::function<bool()>& cond, std::chrono::milliseconds timeout = 30s) {
    return WaitUntil(
        cond, [&] { pm_->Tick(); }, timeout);
  }
  std::string PodDir(const std::string& name) { return dir_.path() + "/pods/default_" + name; }
  std::vector<std::string> Containers() {
    return podman_->ContainerNames("ballast.dev/node=" + node_);
  }

  PodmanService* podman_ = nullptr;
  std::string node_;
  SystemClock clock_;
  TempDir dir_;
  std::unique_ptr<DockerRuntime> runtime_;
  std::unique_ptr<PodManager> pm_;
  std::vector<model::Pod> status_;
};

TEST_F(DockerRuntimeTest, RunsTheImageWithEnvArgsPublishedPortAndProbe) {
  auto c = ImageContainer("web", "localhost/bb:v1", {"sh", "-c"},
                          {"echo hello $(GREETING) $GREETING on $PORT; echo warn >&2; "
                           "exec httpd -f -p $PORT -h /www"});
  c.env = {{"GREETING", "world", nullptr}};
  c.ports = {{"http", 80, "TCP", 0, model::Json::object()}};
  c.readiness_probe = HttpProbe(80);
  auto pod = MakePod("web-1", {c}, /*grace_seconds=*/1);
  pm_->SetDesired({pod}, {});
  const model::Pod* p = Pod("web-1");
  ASSERT_NE(p, nullptr);
  ASSERT_TRUE(Until([&] { return (p = Pod("web-1")) && p->ready; }))
      << (p ? p->containers[0].reason + " " + p->containers[0].message : "no pod");
  EXPECT_EQ(p->phase, model::PodPhase::kRunning);
  // Published on the node address at the allocated host port; the probe went there too.
  ASSERT_EQ(p->address.rfind("127.0.0.1:", 0), 0u) << p->address;
  net::HttpClient http;
  auto page = http.Get("http://" + p->address + "/index.html");
  ASSERT_TRUE(page.ok()) << page.status().ToString();
  EXPECT_EQ(page->body, "v1\n");
  // $(GREETING) expanded by the agent, $GREETING and $PORT by the shell inside the image.
  std::string out = PodDir("web-1") + "/logs/web.stdout.log";
  ASSERT_TRUE(WaitUntil([&] { return !ReadFile(out).empty(); }));
  EXPECT_EQ(ReadFile(out), "hello world world on 80\n");
  ASSERT_TRUE(
      WaitUntil([&] { return !ReadFile(PodDir("web-1") + "/logs/web.stderr.log").empty(); }));
  EXPECT_EQ(ReadFile(PodDir("web-1") + "/logs/web.stderr.log"), "warn\n");
  // Named and labelled for its pod.
  EXPECT_EQ(Containers(), std::vector<std::string>{"ballast_web_web-1_default_0"});
  EXPECT_EQ(podman_->ContainerNames("ballast.dev/pod-name=web-1").size(), 1u);

  // Gone from the engine once the pod is stopped (httpd as pid 1 ignores SIGTERM: the grace
  // period ends with SIGKILL).
  pm_->SetDesired({}, {});
  ASSERT_TRUE(Until([&] { return pm_->Empty(); }));
  EXPECT_TRUE(WaitUntil([&] { return Containers().empty(); }));
}

TEST_F(DockerRuntimeTest, SigtermStopsGracefullyWithinTheGracePeriod) {
  auto c = ImageContainer("main", "localhost/bb:v1", {"sh", "-c"},
                          {"trap 'echo got TERM; exit 0' TERM; echo up; "
                           "while true; do sleep 0.1; done"});
  auto pod = MakePod("calm-1", {c}, /*grace_seconds=*/300);
  pm_->SetDesired({pod}, {});
  std::string out = PodDir("calm-1") + "/logs/main.stdout.log";
  ASSERT_TRUE(Until([&] { return ReadFile(out) == "up\n"; }));
  std::string logs_seen;
  pm_->SetDesired({}, {});
  // A 300 s grace period: only the container's own clean exit on SIGTERM ends this in time.
  ASSERT_TRUE(Until(
      [&] {
        if (!pm_->Empty()) logs_seen = ReadFile(out);
        return pm_->Empty();
      },
      60s));
  EXPECT_TRUE(WaitUntil([&] { return Containers().empty(); }));
}

TEST_F(DockerRuntimeTest, CrashLoopBackOffAndLivenessExecProbeRestarts) {
  auto crash = ImageContainer("crash", "localhost/bb:v1", {"sh", "-c", "echo try; exit 3"});
  auto pod = MakePod("crashy-1", {crash});
  pm_->SetDesired({pod}, {});
  const model::Pod* p = nullptr;
  // Every (state, reason) the container went through, for the failure message.
  std::string seen;
  auto track = [&] {
    if (!(p = Pod("crashy-1")) || p->containers.empty()) return false;
    std::string now = p->containers[0].state + "/" + p->containers[0].reason + " ";
    if (seen.size() < now.size() || seen.compare(seen.size() - now.size(), now.size(), now) != 0) {
      seen += now;
    }
    return true;
  };
  ASSERT_TRUE(Until([&] { return track() && p->restarts >= 2; })) << seen;
  EXPECT_EQ(p->containers[0].last_exit_code, 3);
  EXPECT_EQ(p->containers[0].last_reason, "Error");
  ASSERT_TRUE(Until([&] { return track() && p->containers[0].reason == "CrashLoopBackOff"; }))
      << seen;
  EXPECT_TRUE(WaitUntil([&] { return Containers().size() <= 1; }))
      << "exited containers are removed";

  // An exec liveness probe (run inside the container through the exec API) that fails.
  auto sick = ImageContainer("sick", "localhost/bb:v1", {"sh", "-c", "sleep 600"});
  model::Probe live;
  live.exec = model::ExecAction{{"sh", "-c", "cat /www/missing"}};
  live.period_seconds = 1;
  live.failure_threshold = 1;
  sick.liveness_probe = live;
  auto healthy = ImageContainer("healthy", "localhost/bb:v1", {"sh", "-c", "sleep 600"});
  live.exec = model::ExecAction{{"sh", "-c", "cat /www/index.html"}};
  healthy.liveness_probe = live;
  auto probed = MakePod("probed-1", {sick, healthy}, /*grace_seconds=*/1);
  pm_->SetDesired({pod, probed}, {});
  ASSERT_TRUE(Until([&] {
    return (p = Pod("probed-1")) && p->containers.size() == 2 &&
           p->containers[0].message.find("failed liveness probe") != std::string::npos;
  }));
  ASSERT_TRUE(Until([&] { return (p = Pod("probed-1")) && p->containers[0].restarts >= 1; }));
  EXPECT_EQ(p->containers[1].restarts, 0);
  EXPECT_EQ(p->containers[1].state, "running");
}

TEST_F(DockerRuntimeTest, MissingImageReasons) {
  PodManagerOptions o;
  auto never = ImageContainer("app", "localhost/bb:nope", {"sh", "-c", "sleep 600"});
  never.extra["imagePullPolicy"] = "Never";
  auto pull = ImageContainer("app", "localhost/bb:nope", {"sh", "-c", "sleep 600"});
  pm_->SetDesired({MakePod("never-1", {never}), MakePod("pull-1", {pull})}, {});
  const model::Pod* p = nullptr;
  ASSERT_TRUE(Until(
      [&] { return (p = Pod("never-1")) && p->containers[0].reason == "ErrImageNeverPull"; }));
  EXPECT_EQ(p->phase, model::PodPhase::kPending);
  EXPECT_EQ(p->restarts, 0);
  EXPECT_EQ(p->containers[0].message,
            "Container image \"localhost/bb:nope\" is not present with pull policy of Never");
  // IfNotPresent (a tagged image's default): the pull fails (no registry), then back-off.
  ASSERT_TRUE(
      Until([&] { return (p = Pod("pull-1")) && p->containers[0].reason == "ImagePullBackOff"; }));
  EXPECT_EQ(p->phase, model::PodPhase::kPending);
  EXPECT_NE(p->containers[0].message.find("Failed to pull image \"localhost/bb:nope\""),
            std::string::npos)
      << p->containers[0].message;
  EXPECT_TRUE(WaitUntil([&] { return Containers().empty(); }));
}

// securityContext and the pids limit reach the engine, and the container lives by them.
TEST_F(DockerRuntimeTest, SecurityContextAndPidsLimitReachTheEngine) {
  auto c = ImageContainer("app", "localhost/bb:v1", {"sh", "-c"},
                          {"grep -E '^(CapEff|NoNewPrivs):' /proc/self/status; id -u; id -g; "
                           "touch /written || echo read-only; exec sleep 600"});
  model::SecurityContext sc;
  sc.run_as_user = 65534;
  sc.run_as_group = 65533;
  sc.capabilities = model::Capabilities{{"NET_BIND_SERVICE"}, {"all"}};
  sc.read_only_root_filesystem = true;
  c.security_context = sc;
  auto pod = MakePod("secure-1", {c}, /*grace_seconds=*/1);
  pod.template_.annotations["ballast.dev/pids-limit"] = "64";
  pm_->SetDesired({pod}, {});
  const model::Pod* p = nullptr;
  ASSERT_TRUE(Until([&] { return (p = Pod("secure-1")) && p->phase == model::PodPhase::kRunning; }))
      << (p ? p->containers[0].reason + " " + p->containers[0].message : "no pod");
  auto info = podman_->client().CallJson("GET", "/containers/ballast_app_secure-1_default_0/json",
                                         nullptr, 10'000);
  ASSERT_TRUE(info.ok()) << info.status().ToString();
  const model::Json host = info->value("HostConfig", model::Json::object());
  EXPECT_EQ(host.value("PidsLimit", 0), 64);
  EXPECT_TRUE(host.value("ReadonlyRootfs", false));
  // podman reports capabilities against its default set: every default one dropped but
  // NET_BIND_SERVICE.
  const model::Json dropped = host.value("CapDrop", model::Json::array());
  auto has = [&](const char* cap) {
    return std::find(dropped.begin(), dropped.end(), model::Json(cap)) != dropped.end();
  };
  EXPECT_TRUE(has("NET_RAW") && has("CHOWN") && has("SETUID")) << dropped.dump();
  EXPECT_FALSE(has("NET_BIND_SERVICE")) << dropped.dump();
  EXPECT_EQ(host.value("SecurityOpt", model::Json()), model::Json::array({"no-new-privileges"}));
  EXPECT_EQ(info->value("Config", model::Json::object()).value("User", ""), "65534:65533");
  // Inside: one capability, no_new_privs, that user and group, a root filesystem it cannot
  // write.
  std::string out = PodDir("secure-1") + "/logs/app.stdout.log";
  ASSERT_TRUE(WaitUntil([&] { return ReadFile(out).find("read-only") != std::string::npos; }))
      << ReadFile(out);
  EXPECT_EQ(ReadFile(out), "CapEff:\t0000000000000400\nNoNewPrivs:\t1\n65534\n65533\nread-only\n");
}

TEST_F(DockerRuntimeTest, RunAsNonRootAgainstAnImageThatRunsAsRootIsRefused) {
  auto c = ImageContainer("app", "localhost/bb:v1", {"sh", "-c", "sleep 600"});
  model::SecurityContext sc;
  sc.run_as_non_root = true;
  c.security_context = sc;
  pm_->SetDesired({MakePod("root-image-1", {c}, 1)}, {});
  const model::Pod* p = nullptr;
  ASSERT_TRUE(Until([&] {
    return (p = Pod("root-image-1")) && p->containers[0].reason == "CreateContainerConfigError";
  }));
  EXPECT_EQ(p->phase, model::PodPhase::kPending);
  EXPECT_EQ(p->restarts, 0);
  EXPECT_EQ(p->containers[0].message,
            "container has runAsNonRoot and image will run as root (pod: \"default/root-image-1\", "
            "container: app)");
  EXPECT_TRUE(Containers().empty());  // never created
}

TEST_F(DockerRuntimeTest, MemoryHogIsOomKilled) {
  auto hog = ImageContainer("hog", "localhost/bb:v1", {"sh", "-c"},
                            {"echo eating; x=$(head -c 300000000 /dev/zero | tr '\\0' a); "
                             "echo survived"});
  hog.resources.limits["memory"] = *model::Quantity::Parse("32Mi");
  hog.resources.limits["cpu"] = *model::Quantity::Parse("500m");
  auto pod = MakePod("hog-1", {hog});
  pod.template_.spec.restart_policy = "Never";
  pm_->SetDesired({pod}, {});
  const model::Pod* p = nullptr;
  ASSERT_TRUE(Until([&] { return (p = Pod("hog-1")) && p->phase == model::PodPhase::kFailed; }));
  EXPECT_EQ(p->containers[0].last_reason, "OOMKilled");
  EXPECT_EQ(p->containers[0].last_exit_code, 137);
  EXPECT_EQ(ReadFile(PodDir("hog-1") + "/logs/hog.stdout.log").find("survived"), std::string::npos);
}

TEST_F(DockerRuntimeTest, RestartedAgentAdoptsItsContainersAndRemovesStrangers) {
  auto c = ImageContainer("web", "localhost/bb:v1", {"sh", "-c"},
                          {"echo first; sleep 1; echo second; exec httpd -f -p 80 -h /www"});
  c.ports = {{"http", 80, "TCP", 0, model::Json::object()}};
  c.readiness_probe = HttpProbe(80);
  pm_->SetDesired({MakePod("keep-1", {c}, /*grace_seconds=*/1)}, {});
  const model::Pod* p = nullptr;
  ASSERT_TRUE(Until([&] { return (p = Pod("keep-1")) && p->ready; }));
  std::string address = p->address;
  std::string id = podman_->ContainerId("ballast_web_keep-1_default_0");
  ASSERT_FALSE(id.empty());

  Restart();
  // A container of this node that no pod knows (its pod was deleted while the agent was down).
  auto stray = podman_->client().CallJson(
      "POST", "/containers/create?name=stray-" + node_,
      model::Json{{"Image", "localhost/bb:v1"}, {"Labels", {{"ballast.dev/node", node_}}}});
  ASSERT_TRUE(stray.ok()) << stray.status().ToString();
  EXPECT_EQ(pm_->Restore(), 1);
  ASSERT_TRUE(Until([&] { return (p = Pod("keep-1")) && p->ready; }));
  EXPECT_EQ(p->restarts, 0);
  EXPECT_EQ(p->address, address);
  EXPECT_EQ(podman_->ContainerId("ballast_web_keep-1_default_0"), id) << "the same container";
  EXPECT_EQ(Containers(), std::vector<std::string>{"ballast_web_keep-1_default_0"});
  // Logs keep flowing into the same file, without the first lines twice.
  std::string out = PodDir("keep-1") + "/logs/web.stdout.log";
  ASSERT_TRUE(WaitUntil([&] { return ReadFile(out).find("second") != std::string::npos; }));
  EXPECT_EQ(ReadFile(out).find("first"), ReadFile(out).rfind("first"));
}

TEST(AgentRuntimeFlags, DockerNeedsTheSocketAutoFallsBackAndNodesReportRuntimes) {
  std::string why;
  PodmanService* podman = PodmanService::Shared(&why);
  ASSERT_NE(podman, nullptr) << "podman: " << why;
  SystemClock clock;
  auto options = [&](const std::string& runtime, const std::string& socket,
                     const std::string& dir) {
    AgentOptions o;
    o.name = "flags";
    o.address = "127.0.0.1";
    o.work_dir = dir;
    o.logs_port = -1;
    o.enable_cgroups = false;
    o.runtime = runtime;
    o.docker_socket = socket;
    return o;
  };
  TempDir dir;
  const std::string nowhere = dir.path() + "/no-engine.sock";
  {
    Agent agent(options("docker", nowhere, dir.path() + "/a"), clock);
    Status s = agent.Start();
    ASSERT_FALSE(s.ok());
    EXPECT_NE(s.message().find("--runtime docker (--docker-socket " + nowhere + ")"),
              std::string::npos)
        << s.message();
  }
  {
    Agent agent(options("auto", nowhere, dir.path() + "/b"), clock);
    ASSERT_TRUE(agent.Start().ok());
    EXPECT_EQ(agent.NodeInfo().runtimes, std::vector<std::string>{"process"});
  }
  {
    Agent agent(options("auto", podman->socket(), dir.path() + "/c"), clock);
    ASSERT_TRUE(agent.Start().ok());
    EXPECT_EQ(agent.NodeInfo().runtimes, (std::vector<std::string>{"process", "docker"}));
  }
  {
    Agent agent(options("containerd", nowhere, dir.path() + "/d"), clock);
    Status s = agent.Start();
    EXPECT_EQ(s.code(), StatusCode::kInvalidArgument) << s.message();
  }
}

}  // namespace
}  // namespace ballast::nodeagent
