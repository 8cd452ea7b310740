// End to end with images: the real `ballast serve`, a real `ballast agent --runtime docker` on
// podman's Docker API socket (tests/nodeagent/podman_service.h) and busybox images imported
// from busybox-static. What a user sees: a Deployment of busybox httpd Ready behind a Service,
// an image tag change rolling it, the Kubernetes reasons for a missing image and a memory hog,
// an agent killed with -9 adopting its containers; and a process-only node leaving an
// image-only Deployment unscheduled with the scheduler's reason.

#include <gtest/gtest.h>

#include <set>

#include "tests/nodeagent/podman_service.h"
#include "tests/reconciler/cluster.h"

namespace ballast::reconciler::testing {
namespace {

using nodeagent::testing::PodmanService;

// A Deployment of the image's own command (busybox httpd on port 80, no `command`), so only a
// node with the docker runtime can take it, and a Service in front of it.
std::string ImageWebManifest(const std::string& image, int replicas, int service_port) {
  WebSpec w;
  w.image = image;  // busybox httpd: /index.html on port 80
  w.replicas = replicas;
  w.service_port = service_port;
  w.termination_grace_period_seconds = 1;
  w.limits = "{memory: 64Mi, cpu: 200m}";
  return WebManifest(w);
}

// A Deployment whose image is not there, and one whose container eats past its memory limit.
const char kTroubleManifest[] = R"yaml(apiVersion: apps/v1
kind: Deployment
metadata:
  name: ghost
spec:
  replicas: 1
  selector:
    matchLabels: {app: ghost}
  template:
    metadata:
      labels: {app: ghost}
    spec:
      containers:
        - name: ghost
          image: localhost/bb:missing
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: hog
spec:
  replicas: 1
  selector:
    matchLabels: {app: hog}
  template:
    metadata:
      labels: {app: hog}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
        - name: hog
          image: localhost/bb:v1
          command: ["sh", "-c", "x=$$(head -c 300000000 /dev/zero | tr '\\0' a)"]
          resources:
            limits: {memory: 32Mi}
)yaml";

std::string ThroughService(const std::string& address, int port,
                           const std::string& path = "/index.html") {
  net::HttpClient client;
  auto r = client.Get("http://" + address + ":" + std::to_string(port) + path);
  return r.ok() && r->status == 200 ? r->body : "";
}

// The pods item of Deployment `deployment` (the first one), or null.
Json PodOf(Cluster& c, const std::string& deployment) {
  Json pods = c.Get("/api/v1/pods");
  if (pods.is_null()) return nullptr;
  for (const auto& p : pods["items"]) {
    if (p.value("deployment", "") == deployment) return p;
  }
  return nullptr;
}

// Container name -> {id, image} of the engine's containers of node `node`.
std::map<std::string, std::pair<std::string, std::string>> EngineContainers(
    PodmanService& podman, const std::string& node) {
  std::map<std::string, std::pair<std::string, std::string>> out;
  auto list = podman.client().CallJson(
      "GET", "/containers/json?all=true&filters=" +
                 nodeagent::QueryEscape(Json{{"label", {"ballast.dev/node=" + node}}}.dump()));
  if (!list.ok()) return out;
  for (const auto& c : *list) {
    out[c["Names"][0].get<std::string>()] = {c.value("Id", ""), c.value("Image", "")};
  }
  return out;
}

TEST(ContainerE2E, DeploymentOfImagesRollsReportsReasonsAndSurvivesAnAgentKill) {
  std::string why;
  PodmanService* podman = PodmanService::Shared(&why);
  ASSERT_NE(podman, nullptr) << "podman: " << why;
  ASSERT_TRUE(podman->ImportBusybox("localhost/bb:v1", "v1\n").ok());
  ASSERT_TRUE(podman->ImportBusybox("localhost/bb:v2", "v2\n").ok());

  Cluster c;
  const int svc_port = PickFreePort();
  c.Commit({{"web.yaml", ImageWebManifest("localhost/bb:v1", 2, svc_port)}}, "web v1");
  ASSERT_TRUE(c.StartServe({}));
  const std::vector<std::string> docker_agent = {"--runtime", "docker", "--docker-socket",
                                                 podman->socket()};
  ASSERT_TRUE(c.StartAgents(1, docker_agent));
  ASSERT_TRUE(WaitFor([&] { return c.RolledOut(2); })) << c.Logs();
  // Rolled out as a user sees it: the Service answers (the proxy may get the endpoints a
  // moment after the API shows the pods Ready; under load, a noticeable moment).
  EXPECT_TRUE(WaitFor([&] { return ThroughService("127.0.0.2", svc_port) == "v1\n"; }))
      << ThroughService("127.0.0.2", svc_port);
  // Placed at all: the node reported the docker runtime these image-only pods need.
  auto v1_containers = EngineContainers(*podman, "n2");
  EXPECT_EQ(v1_containers.size(), 2u);

  // A new tag rolls the Deployment: new content behind the Service, the old containers gone.
  const std::string v1_rev = c.DeploymentRevision();
  c.Commit({{"web.yaml", ImageWebManifest("localhost/bb:v2", 2, svc_port)}}, "web v2");
  ASSERT_TRUE(WaitFor([&] { return c.DeploymentRevision() != v1_rev && c.RolledOut(2); }))
      << c.Logs();
  EXPECT_TRUE(WaitFor([&] { return ThroughService("127.0.0.2", svc_port) == "v2\n"; }));
  ASSERT_TRUE(WaitFor([&] { return EngineContainers(*podman, "n2").size() == 2; }));
  auto v2_containers = EngineContainers(*podman, "n2");
  for (const auto& [name, id_image] : v2_containers) {
    EXPECT_EQ(id_image.second, "localhost/bb:v2") << name;
    EXPECT_EQ(v1_containers.count(name), 0u) << name;
  }

  // The Kubernetes reasons a kubectl user knows.
  c.Commit({{"trouble.yaml", kTroubleManifest}}, "a missing image and a memory hog");
  ASSERT_TRUE(WaitFor([&] {
    Json ghost = PodOf(c, "ghost");
    if (ghost.is_null() || ghost["containers"].empty()) return false;
    std::string reason = ghost["containers"][0].value("reason", "");
    return reason == "ErrImagePull" || reason == "ImagePullBackOff";
  })) << c.Get("/api/v1/pods").dump(2);
  EXPECT_EQ(PodOf(c, "ghost")["phase"], "Pending");
  ASSERT_TRUE(WaitFor([&] {
    Json hog = PodOf(c, "hog");
    return !hog.is_null() && !hog["containers"].empty() &&
           hog["containers"][0].value("lastReason", "") == "OOMKilled";
  })) << c.Get("/api/v1/pods").dump(2);

  // kill -9 of the agent: a new one adopts the running containers, nothing restarts.
  Json before = c.Get("/api/v1/pods");
  c.KillAgent(0);
  ASSERT_TRUE(c.StartAgent(0));
  ASSERT_TRUE(WaitFor([&] {
    Json nodes = c.Get("/api/v1/nodes");
    return !nodes.is_null() && nodes["items"].size() == 1 && nodes["items"][0]["ready"] == true;
  }));
  ASSERT_TRUE(WaitFor([&] { return c.RolledOut(2) || c.ReadyPods().size() == 2; })) << c.Logs();
  size_t kept = 0;
  for (const auto& [name, id_image] : EngineContainers(*podman, "n2")) {
    if (v2_containers.count(name) == 0) continue;
    EXPECT_EQ(id_image.first, v2_containers[name].first) << name << " is the same container";
    kept++;
  }
  EXPECT_EQ(kept, v2_containers.size());
  Json after = c.Get("/api/v1/pods");
  for (const auto& p : before["items"]) {
    if (p["deployment"] != "web") continue;
    bool found = false;
    for (const auto& q : after["items"]) {
      if (q["name"] != p["name"]) continue;
      found = true;
      EXPECT_EQ(q["restarts"], 0) << q.dump();
      EXPECT_EQ(q["ready"], true) << q.dump();
    }
    EXPECT_TRUE(found) << p["name"];
  }
  EXPECT_TRUE(WaitFor([&] { return ThroughService("127.0.0.2", svc_port) == "v2\n"; }))
      << c.Get("/api/v1/pods").dump(2) << c.Logs();
}

// A ConfigMap as files in a container: bind-mounted read-only where the pod says (busybox httpd
// serves them from /www/site), and changed in place when git changes it, as kubelet does: the
// same container serves the new page, nothing restarts.
TEST(ContainerE2E, AConfigMapVolumeIsBindMountedAndChangesInPlace) {
  std::string why;
  PodmanService* podman = PodmanService::Shared(&why);
  ASSERT_NE(podman, nullptr) << "podman: " << why;
  ASSERT_TRUE(podman->ImportBusybox("localhost/bb:v1", "v1\n").ok());
  Cluster c;
  const int svc_port = PickFreePort();
  WebSpec w;
  w.image = "localhost/bb:v1";
  w.service_port = svc_port;
  w.termination_grace_period_seconds = 1;
  w.pod_yaml = "      volumes: [{name: site, configMap: {name: site}}]\n";
  w.container_yaml = "          volumeMounts: [{name: site, mountPath: /www/site}]\n";
  auto site = [](const std::string& page) {
    return "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: site}\ndata:\n  page.html: " + page +
           "\n";
  };
  c.Commit({{"web.yaml", WebManifest(w)}, {"site.yaml", site("first-page")}}, "web with site");
  ASSERT_TRUE(c.StartServe({}));
  ASSERT_TRUE(c.StartAgents(1, {"--runtime", "docker", "--docker-socket", podman->socket()}));
  ASSERT_TRUE(WaitFor([&] { return c.RolledOut(1); })) << c.Logs();
  ASSERT_TRUE(WaitFor([&] {
    return ThroughService("127.0.0.2", svc_port, "/site/page.html") == "first-page";
  })) << ThroughService("127.0.0.2", svc_port, "/site/page.html")
      << c.Logs();
  const auto containers = EngineContainers(*podman, "n2");
  ASSERT_EQ(containers.size(), 1u);

  c.Commit({{"site.yaml", site("second-page")}}, "site: second page");
  ASSERT_TRUE(WaitFor([&] {
    return ThroughService("127.0.0.2", svc_port, "/site/page.html") == "second-page";
  })) << ThroughService("127.0.0.2", svc_port, "/site/page.html")
      << c.Logs();
  EXPECT_EQ(EngineContainers(*podman, "n2"), containers) << "the same container, not restarted";
  const Json pod = PodOf(c, "web");
  EXPECT_EQ(pod["restarts"], 0) << pod.dump();
}

TEST(ContainerE2E, ProcessOnlyNodeLeavesAnImageOnlyDeploymentUnscheduled) {
  Cluster c;
  const int svc_port = PickFreePort();
  c.Commit({{"web.yaml", ImageWebManifest("localhost/bb:v1", 1, svc_port)}}, "web v1");
  ASSERT_TRUE(c.StartServe({}));
  ASSERT_TRUE(c.StartAgents(1, {"--runtime", "process"}));
  std::string reason;
  ASSERT_TRUE(WaitFor([&] {
    Json d = c.Get("/api/v1/deployments");
    if (d.is_null() || d["items"].empty() || !d["items"][0]["unschedulable"].is_string()) {
      return false;
    }
    reason = d["items"][0]["unschedulable"].get<std::string>();
    return reason.find("runtime") != std::string::npos;  // once the node has registered
  })) << c.Logs();
  EXPECT_EQ(reason, "0/1 nodes are available: 1 node(s) didn't have runtime docker.");
  const Json pods = c.Get("/api/v1/pods");  // outlives the loop (C++20 range-for)
  for (const auto& p : pods["items"]) {
    EXPECT_NE(p["phase"], "Running") << p.dump();
  }
}

}  // namespace
}  // namespace ballast::reconciler::testing
