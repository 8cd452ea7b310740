// The service proxy over real sockets, in front of three real `ballast demo-app` backends:
// round-robin, skipping an endpoint that refuses, endpoint changes without dropping established
// connections, and immediate refusal with no ready endpoint.

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <map>

#include <gtest/gtest.h>

#include "net/client.h"
#include "nodeagent/process.h"
#include "nodeagent/proxy.h"
#include "test_util.h"

namespace ballast::nodeagent {
namespace {

using namespace ballast::nodeagent::testing;
using namespace std::chrono_literals;

constexpr char kProxyAddress[] = "127.0.0.7";

class ProxyTest : public ::testing::Test {
 protected:
  void SetUp() override {
    for (const char* name : {"alpha", "beta", "gamma"}) {
      auto port = FreePort("127.0.0.1");
      ASSERT_TRUE(port.ok());
      ProcessSpec spec;
      spec.executable = BALLAST_BINARY;
      spec.argv = {"ballast", "demo-app", "--message", name};
      spec.env = {"HOST=127.0.0.1", "PORT=" + std::to_string(*port)};
      auto pid = SpawnProcess(spec);
      ASSERT_TRUE(pid.ok()) << pid.status().ToString();
      pids_.push_back(*pid);
      endpoints_.push_back("127.0.0.1:" + std::to_string(*port));
    }
    net::HttpClient client;
    for (const auto& e : endpoints_) {
      ASSERT_TRUE(WaitUntil([&] { return client.Get("http://" + e + "/healthz").ok(); }));
    }
    auto port = FreePort(kProxyAddress);
    ASSERT_TRUE(port.ok());
    service_port_ = *port;
    ASSERT_TRUE(proxy_.Start().ok());
  }
  void TearDown() override {
    proxy_.Stop();
    for (pid_t p : pids_) {
      ::kill(p, SIGKILL);
      ::waitpid(p, nullptr, 0);
    }
  }
  void Serve(const std::vector<std::string>& endpoints) {
    agentapi::DesiredService s;
    s.name = "web";
    s.ports = {agentapi::DesiredServicePort{"http", "TCP", service_port_, 0, endpoints}};
    proxy_.Update({s});
  }
  std::string url() const {
    return std::string("http://") + kProxyAddress + ":" + std::to_string(service_port_) + "/";
  }
  // The message part of the demo app's answer ("alpha"), or the error.
  std::string Hit() {
    net::HttpClient client(Opts());
    auto r = client.Get(url());
    if (!r.ok()) return "error: " + r.status().ToString();
    return r->body.substr(0, r->body.find(' '));
  }
  static net::ClientOptions Opts() {
    net::ClientOptions o;
    o.timeout = 10s;
    return o;
  }
  bool Listening() {
    auto ports = proxy_.ListeningPorts();
    return std::find(ports.begin(), ports.end(), service_port_) != ports.end();
  }

  std::vector<pid_t> pids_;
  std::vector<std::string> endpoints_;
  int32_t service_port_ = 0;
  ServiceProxy proxy_{kProxyAddress};
};

TEST_F(ProxyTest, RoundRobinAcrossThreeBackends) {
  Serve(endpoints_);
  ASSERT_TRUE(WaitUntil([&] { return Listening(); }));
  std::map<std::string, int> hits;
  for (int i = 0; i < 9; ++i) hits[Hit()]++;
  EXPECT_EQ(hits, (std::map<std::string, int>{{"alpha", 3}, {"beta", 3}, {"gamma", 3}}));
}

TEST_F(ProxyTest, SkipsARefusingEndpointAndFollowsEndpointChanges) {
  // beta's process dies without the endpoint list knowing yet: its connections fail over.
  ::kill(pids_[1], SIGKILL);
  ::waitpid(pids_[1], nullptr, 0);
  Serve(endpoints_);
  ASSERT_TRUE(WaitUntil([&] { return Listening(); }));
  std::map<std::string, int> hits;
  for (int i = 0; i < 9; ++i) hits[Hit()]++;
  EXPECT_EQ(hits.count("beta"), 0u);
  EXPECT_EQ(hits["alpha"] + hits["gamma"], 9) << "errors: " << hits.size();

  // The reconciler drops gamma (turned unready): only alpha is used from then on.
  Serve({endpoints_[0]});
  ASSERT_TRUE(WaitUntil([&] { return Hit() == "alpha" && Hit() == "alpha" && Hit() == "alpha"; }));
}

TEST_F(ProxyTest, EstablishedConnectionsSurviveEndpointChanges) {
  Serve({endpoints_[2]});  // gamma only
  ASSERT_TRUE(WaitUntil([&] { return Listening(); }));
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(service_port_));
  ::inet_pton(AF_INET, kProxyAddress, &addr.sin_addr);
  ASSERT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  timeval tv{10, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  auto ask = [&]() -> std::string {
    std::string req = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
    if (::write(fd, req.data(), req.size()) != static_cast<ssize_t>(req.size()))
      return "write failed";
    std::string got;
    char buf[4096];
    while (got.find("revision=") == std::string::npos) {
      ssize_t n = ::read(fd, buf, sizeof buf);
      if (n <= 0) return "closed: " + got;
      got.append(buf, static_cast<size_t>(n));
    }
    return got;
  };
  EXPECT_NE(ask().find("gamma pod="), std::string::npos);
  Serve({endpoints_[0]});  // now alpha only
  ASSERT_TRUE(WaitUntil([&] { return Hit() == "alpha"; }));
  // The kept-alive connection still talks to gamma.
  EXPECT_NE(ask().find("gamma pod="), std::string::npos);
  ::close(fd);
}

TEST_F(ProxyTest, NoReadyEndpointRefusesAtOnce) {
  Serve(endpoints_);
  ASSERT_TRUE(WaitUntil([&] { return Listening(); }));
  EXPECT_EQ(Hit(), "alpha");
  Serve({});
  ASSERT_TRUE(WaitUntil([&] { return !Listening(); }));
  net::HttpClient client(Opts());
  auto r = client.Get(url());
  ASSERT_FALSE(r.ok());
  // Refused (Unavailable), not a hang ending in a timeout.
  EXPECT_EQ(r.status().code(), StatusCode::kUnavailable) << r.status().ToString();
  Serve({endpoints_[1]});
  ASSERT_TRUE(WaitUntil([&] { return Hit() == "beta"; }));
}

// Two Services on one port, as Kubernetes manifests write them: each is served at its own
// cluster IP with its own endpoints only; the node's address serves the first by name only.
TEST_F(ProxyTest, ServicesSharingAPortAreKeptApartByClusterIP) {
  const std::string web_ip = "127.128.77.10", api_ip = "127.128.77.11";
  agentapi::DesiredService web;
  web.name = "web";
  web.cluster_ip = web_ip;
  web.ports = {agentapi::DesiredServicePort{"http", "TCP", service_port_, 0, {endpoints_[0]}}};
  agentapi::DesiredService api = web;
  api.name = "api";
  api.cluster_ip = api_ip;
  api.ports[0].endpoints = {endpoints_[1], endpoints_[2]};
  proxy_.Update({web, api});
  const std::string port = ":" + std::to_string(service_port_);
  ASSERT_TRUE(WaitUntil([&] { return proxy_.ListeningAddresses().size() == 3; }))
      << ::testing::PrintToString(proxy_.Errors());
  auto at = [&](const std::string& address) {
    net::HttpClient client(Opts());
    auto r = client.Get("http://" + address + port + "/");
    if (!r.ok()) return "error: " + r.status().ToString();
    return r->body.substr(0, r->body.find(' '));
  };
  std::map<std::string, int> web_hits, api_hits, node_hits;
  for (int i = 0; i < 12; ++i) {
    web_hits[at(web_ip)]++;
    api_hits[at(api_ip)]++;
    node_hits[at(kProxyAddress)]++;
  }
  EXPECT_EQ(web_hits, (std::map<std::string, int>{{"alpha", 12}}));
  EXPECT_EQ(api_hits, (std::map<std::string, int>{{"beta", 6}, {"gamma", 6}}));
  // default/api < default/web: the node's address serves api, never web's pods.
  EXPECT_EQ(node_hits, (std::map<std::string, int>{{"beta", 6}, {"gamma", 6}}));

  // A second agent on this machine (as `ballast dev` runs them) serves the same cluster IPs
  // beside the first: SO_REUSEPORT, no "Address already in use".
  ServiceProxy neighbour("127.0.0.8");
  ASSERT_TRUE(neighbour.Start().ok());
  neighbour.Update({web, api});
  ASSERT_TRUE(WaitUntil([&] { return neighbour.ListeningAddresses().size() == 3; }))
      << ::testing::PrintToString(neighbour.Errors());
  EXPECT_TRUE(neighbour.Errors().empty());
  for (int i = 0; i < 6; ++i) EXPECT_EQ(at(web_ip), "alpha");
  neighbour.Stop();
  for (int i = 0; i < 6; ++i) EXPECT_EQ(at(web_ip), "alpha");

  // web gone: its cluster IP is refused, api's still answers.
  proxy_.Update({api});
  ASSERT_TRUE(WaitUntil([&] { return proxy_.ListeningAddresses().size() == 2; }));
  EXPECT_EQ(at(web_ip).rfind("error", 0), 0u);
  EXPECT_NE(at(api_ip).rfind("error", 0), 0u);
}

}  // namespace
}  // namespace ballast::nodeagent
