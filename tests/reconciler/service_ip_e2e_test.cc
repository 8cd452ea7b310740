// Two Services on one port, as Kubernetes repositories write them (sock-shop: six Services on
// port 80), end to end with the real binary: each Service answers at its own cluster IP with its
// own pods only, the node's address serves the first Service by namespace/name only, and pods
// find each Service at its cluster IP through <SVC>_SERVICE_HOST, as in Kubernetes.

#include <gtest/gtest.h>

#include <map>
#include <sstream>

#include "tests/reconciler/cluster.h"

namespace ballast::reconciler::testing {
namespace {

// A Deployment `name` of two demo-app pods answering `name`, and a Service `name` on `port`.
std::string App(const std::string& name, int port) {
  WebSpec w;
  w.name = name;
  w.message = name;
  w.replicas = 2;
  w.service_port = port;
  return WebManifest(w);
}

// GET http://address:port/path: the body, or "error: ..." / "status N".
std::string Fetch(const std::string& address, int port, const std::string& path = "/") {
  net::ClientOptions o;
  o.timeout = std::chrono::seconds(10);
  net::HttpClient client(o);
  auto r = client.Get("http://" + address + ":" + std::to_string(port) + path);
  if (!r.ok()) return "error: " + r.status().ToString();
  if (r->status != 200) return "status " + std::to_string(r->status);
  return r->body;
}
// Which app answered ("alpha" from "alpha pod=... revision=...").
std::string Who(const std::string& address, int port) {
  std::string body = Fetch(address, port);
  return body.substr(0, body.find(' '));
}

TEST(ServiceIPE2E, TwoServicesOnOnePortEachAnswerAtTheirOwnClusterIP) {
  Cluster c;
  const int port = PickFreePort();
  const std::string rev = c.Commit(
      {{"beta.yaml", App("beta", port)}, {"alpha.yaml", App("alpha", port)}}, "two on one port");
  ASSERT_TRUE(c.StartServe({}));
  ASSERT_TRUE(c.StartAgents(2));
  ASSERT_TRUE(WaitFor([&] { return c.ReadyPods().size() == 4 && c.PodCount() == 4; })) << c.Logs();

  // Each Service has a cluster IP of its own in 127.128.0.0/9.
  std::map<std::string, std::string> ip;
  Json services = c.Get("/api/v1/services");
  ASSERT_TRUE(services.is_object()) << c.Logs();
  for (const auto& s : services["items"]) ip[s["name"]] = s["clusterIP"];
  ASSERT_EQ(ip.size(), 2u);
  for (const auto& [name, address] : ip) {
    int a = 0, b = 0, x = 0, d = 0;
    ASSERT_EQ(std::sscanf(address.c_str(), "%d.%d.%d.%d", &a, &b, &x, &d), 4) << address;
    EXPECT_EQ(a, 127) << name << " " << address;
    EXPECT_GE(b, 128) << name << " " << address;
  }
  EXPECT_NE(ip["alpha"], ip["beta"]);

  // Every request at a cluster IP reaches that Service's pods, never the other's.
  ASSERT_TRUE(WaitFor([&] {
    return Who(ip["alpha"], port) == "alpha" && Who(ip["beta"], port) == "beta";
  })) << c.Logs();
  std::map<std::string, int> at_alpha, at_beta, at_nodes;
  for (int i = 0; i < 40; ++i) {
    at_alpha[Who(ip["alpha"], port)]++;
    at_beta[Who(ip["beta"], port)]++;
    at_nodes[Who(i % 2 ? "127.0.0.2" : "127.0.0.3", port)]++;
  }
  EXPECT_EQ(at_alpha, (std::map<std::string, int>{{"alpha", 40}}));
  EXPECT_EQ(at_beta, (std::map<std::string, int>{{"beta", 40}}));
  // The node's address serves the first Service by namespace/name only: default/alpha.
  EXPECT_EQ(at_nodes, (std::map<std::string, int>{{"alpha", 40}}));

  // A pod finds each Service at its cluster IP, as in Kubernetes.
  Json pods = c.Get("/api/v1/pods");
  ASSERT_TRUE(pods.is_object());
  int checked = 0;
  for (const auto& p : pods["items"]) {
    const std::string address = p["address"];
    const std::string host = address.substr(0, address.rfind(':'));
    const int pod_port = std::stoi(address.substr(address.rfind(':') + 1));
    EXPECT_EQ(Fetch(host, pod_port, "/env/ALPHA_SERVICE_HOST"), ip["alpha"] + "\n");
    EXPECT_EQ(Fetch(host, pod_port, "/env/BETA_SERVICE_HOST"), ip["beta"] + "\n");
    EXPECT_EQ(Fetch(host, pod_port, "/env/BETA_SERVICE_PORT"), std::to_string(port) + "\n");
    ++checked;
  }
  EXPECT_EQ(checked, 4);

  // `ballast get services` shows each cluster IP, as kubectl does.
  auto r = c.Cli("get services");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  std::istringstream lines(r.output);
  std::string header, line;
  std::getline(lines, header);
  EXPECT_NE(header.find("TYPE"), std::string::npos) << r.output;
  const size_t column = header.find("CLUSTER-IP");
  ASSERT_NE(column, std::string::npos) << r.output;
  std::map<std::string, std::string> shown;
  while (std::getline(lines, line)) {
    std::istringstream fields(line);
    std::string namespace_, name;
    fields >> namespace_ >> name;
    shown[name] = line.substr(column, line.find(' ', column) - column);
  }
  EXPECT_EQ(shown, ip) << r.output;

  // The status says which Service the node's address serves on the shared port.
  r = c.Cli("status");
  EXPECT_NE(r.output.find("port " + std::to_string(port) + " serves only Service default/alpha"),
            std::string::npos)
      << r.output;
  EXPECT_EQ(c.Status()["revision"], rev);
}

}  // namespace
}  // namespace ballast::reconciler::testing
