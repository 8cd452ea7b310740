// The service proxy over real sockets, in front of three real `ballast demo-app` backends:
// round-robin, skipping an endpoint that refuses, endpoint changes without dropping established
// connections, immediate refusal with no ready endpoint, and floods of idle connections (the cap
// on forwarded connections; a proxy run out of file descriptors in a child process).

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <iterator>
#include <map>
#include <sstream>

#include <gtest/gtest.h>

#include "net/client.h"
#include "nodeagent/process.h"
#include "nodeagent/proxy.h"
#include "test_util.h"
#include "tests/support/cpu_time.h"

// Built with ThreadSanitizer (GCC says so with __SANITIZE_THREAD__, clang with __has_feature).
#if defined(__SANITIZE_THREAD__)
#define BALLAST_TEST_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define BALLAST_TEST_TSAN 1
#endif
#endif
#ifndef BALLAST_TEST_TSAN
#define BALLAST_TEST_TSAN 0
#endif

namespace ballast::nodeagent {
namespace {

using namespace ballast::nodeagent::testing;
using namespace std::chrono_literals;

constexpr char kProxyAddress[] = "127.0.0.7";
// For a second proxy of a test's own beside the fixture's.
constexpr char kOtherProxyAddress[] = "127.0.0.9";

// A blocking TCP connection to address:port, or -1.
int Connect(const std::string& address, int32_t port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  ::inet_pton(AF_INET, address.c_str(), &addr.sin_addr);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

// Sends GET / on the kept-alive connection `fd` and returns the demo app's answer (up to its
// "revision=" part), or what went wrong.
std::string AskOn(int fd) {
  timeval tv{10, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  std::string req = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
  if (::write(fd, req.data(), req.size()) != static_cast<ssize_t>(req.size())) {
    return "write failed";
  }
  std::string got;
  char buf[4096];
  while (got.find("revision=") == std::string::npos) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n <= 0) return "closed: " + got;
    got.append(buf, static_cast<size_t>(n));
  }
  return got;
}

// How many of `fds` the proxy reset or closed (readable: EOF or a reset) within `timeout`;
// stops waiting once `expect` are.
size_t CountClosed(const std::vector<int>& fds, size_t expect, std::chrono::milliseconds timeout) {
  std::vector<pollfd> polls;
  for (int fd : fds) polls.push_back(pollfd{fd, POLLIN, 0});
  size_t closed = 0;
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (closed < expect && std::chrono::steady_clock::now() < deadline) {
    if (::poll(polls.data(), polls.size(), 100) <= 0) continue;
    for (auto& p : polls) {
      if (p.revents != 0) {
        p.fd = -1;  // poll ignores it from now on
        p.revents = 0;
        ++closed;
      }
    }
  }
  return closed;
}

using ballast::testing::CpuTime;

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
  static agentapi::DesiredService Web(int32_t port, const std::vector<std::string>& endpoints) {
    agentapi::DesiredService s;
    s.name = "web";
    s.ports = {agentapi::DesiredServicePort{"http", "TCP", port, 0, endpoints}};
    return s;
  }
  void Serve(const std::vector<std::string>& endpoints) {
    proxy_.Update({Web(service_port_, endpoints)});
  }
  std::string url() const {
    return std::string("http://") + kProxyAddress + ":" + std::to_string(service_port_) + "/";
  }
  // The message part of the demo app's answer ("alpha"), or the error.
  std::string Hit() { return HitAt(url()); }
  static std::string HitAt(const std::string& url) {
    net::HttpClient client(Opts());
    auto r = client.Get(url);
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
  int fd = Connect(kProxyAddress, service_port_);
  ASSERT_GE(fd, 0);
  EXPECT_NE(AskOn(fd).find("gamma pod="), std::string::npos);
  Serve({endpoints_[0]});  // now alpha only
  ASSERT_TRUE(WaitUntil([&] { return Hit() == "alpha"; }));
  // The kept-alive connection still talks to gamma.
  EXPECT_NE(AskOn(fd).find("gamma pod="), std::string::npos);
  ::close(fd);
}

// What the agent tells the reconciler before a pod is stopped: the desired version whose
// Services are in place, and the endpoints no longer listed that connections still go to.
TEST_F(ProxyTest, TheDrainReportFollowsUpdatesAndOpenConnections) {
  proxy_.Update({Web(service_port_, {endpoints_[2]})}, 7);  // gamma only
  ASSERT_TRUE(
      WaitUntil([&] { return Listening() && proxy_.drain_report().services_version == 7; }));
  int kept = Connect(kProxyAddress, service_port_);
  ASSERT_GE(kept, 0);
  ASSERT_NE(AskOn(kept).find("gamma pod="), std::string::npos);  // a connection to gamma, open
  const uint64_t generation = proxy_.drain_report().generation;

  // gamma leaves the Service (its pod is to be stopped): reported as draining, at once.
  proxy_.Update({Web(service_port_, {endpoints_[0]})}, 8);
  ASSERT_TRUE(WaitUntil([&] { return proxy_.drain_report().services_version == 8; }));
  auto report = proxy_.drain_report();
  EXPECT_EQ(report.draining, std::vector<std::string>{endpoints_[2]});
  EXPECT_NE(report.generation, generation) << "the reconciler must hear this at once";
  // The same Services again under a newer version (another pod of this node changed): the
  // version moves, nothing else.
  proxy_.Update({Web(service_port_, {endpoints_[0]})}, 9);
  ASSERT_TRUE(WaitUntil([&] { return proxy_.drain_report().services_version == 9; }));
  EXPECT_EQ(proxy_.drain_report().draining, std::vector<std::string>{endpoints_[2]});
  // The established connection still works; once it closes, nothing drains any more.
  EXPECT_NE(AskOn(kept).find("gamma pod="), std::string::npos);
  ::close(kept);
  ASSERT_TRUE(WaitUntil([&] { return proxy_.drain_report().draining.empty(); }));
  EXPECT_EQ(Hit(), "alpha");
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

TEST_F(ProxyTest, BeyondMaxConnectionsResetsAtOnceAndServesAgainAfterTheFlood) {
  auto port = FreePort(kOtherProxyAddress);
  ASSERT_TRUE(port.ok());
  ServiceProxy capped(kOtherProxyAddress, ProxyOptions{.max_connections = 10});
  ASSERT_TRUE(capped.Start().ok());
  capped.Update({Web(*port, {endpoints_[0]})});
  ASSERT_TRUE(WaitUntil([&] { return !capped.ListeningPorts().empty(); }));
  const std::string capped_url =
      std::string("http://") + kOtherProxyAddress + ":" + std::to_string(*port) + "/";

  std::vector<int> flood;
  for (int i = 0; i < 30; ++i) {
    flood.push_back(Connect(kOtherProxyAddress, *port));
    ASSERT_GE(flood.back(), 0);
  }
  // 10 are forwarded (idle, the demo app waits for a request); 20 are reset at once.
  EXPECT_EQ(CountClosed(flood, 20, 20s), 20u);
  EXPECT_EQ(CountClosed(flood, 21, 300ms), 20u);  // and no more
  EXPECT_EQ(HitAt(capped_url).rfind("error", 0), 0u);
  // The forwarded ones are real connections to alpha.
  std::vector<int> forwarded;
  for (int fd : flood) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 0) == 0) forwarded.push_back(fd);
  }
  ASSERT_EQ(forwarded.size(), 10u);
  EXPECT_NE(AskOn(forwarded[0]).find("alpha pod="), std::string::npos);

  for (int fd : flood) ::close(fd);
  EXPECT_TRUE(WaitUntil([&] { return HitAt(capped_url) == "alpha"; }));
  EXPECT_GE(capped.counters().rejected_connections, 21u);
}

// The attack that starves a process of file descriptors: more idle connections than it may
// open files. The proxy runs in a child process with a low RLIMIT_NOFILE and its default cap
// (above the limit), so that accept fails with EMFILE.
TEST_F(ProxyTest, OutOfFileDescriptorsBacksOffKeepsForwardingAndRecovers) {
#if BALLAST_TEST_TSAN
  // ThreadSanitizer cannot start a thread in the forked child of a threaded process ("starting
  // new threads after multi-threaded fork is not supported"): the child's proxy would die at
  // start. Every other build (and `make sanitize`) runs this test.
  GTEST_SKIP() << "not under ThreadSanitizer: it forks a threaded process";
#endif
  auto port = FreePort(kOtherProxyAddress);
  ASSERT_TRUE(port.ok());
  const std::string child_url =
      std::string("http://") + kOtherProxyAddress + ":" + std::to_string(*port) + "/";
  int up[2], down[2];  // child -> parent: ready, then its accept failures; parent -> child
  ASSERT_EQ(::pipe(up), 0);
  ASSERT_EQ(::pipe(down), 0);
  pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    // The child: no gtest here, only _exit codes.
    ::close(up[0]);
    ::close(down[1]);
    ServiceProxy child(kOtherProxyAddress);
    if (!child.Start().ok()) ::_exit(2);
    child.Update({Web(*port, {endpoints_[0]})});
    if (!WaitUntil([&] { return !child.ListeningPorts().empty(); })) ::_exit(3);
    // About 64 descriptors, an even number of them free: a forwarded connection takes two, so
    // the flood ends in an accept that fails (EMFILE), not in a client without a backend.
    int limit = 64;
    while (true) {
      int used = 0;
      for (int fd = 0; fd < limit; ++fd) used += ::fcntl(fd, F_GETFD) != -1 ? 1 : 0;
      if ((limit - used) % 2 == 0) break;
      ++limit;
    }
    rlimit lim{static_cast<rlim_t>(limit), static_cast<rlim_t>(limit)};
    if (::setrlimit(RLIMIT_NOFILE, &lim) != 0) ::_exit(4);
    char c = 'r';
    if (::write(up[1], &c, 1) != 1) ::_exit(5);
    while (::read(down[0], &c, 1) > 0) {
    }
    uint64_t failures = child.counters().accept_failures;
    if (::write(up[1], &failures, sizeof failures) != sizeof failures) ::_exit(6);
    child.Stop();
    ::_exit(0);
  }
  ::close(up[1]);
  ::close(down[0]);
  char c = 0;
  ASSERT_EQ(::read(up[0], &c, 1), 1);
  const auto start = std::chrono::steady_clock::now();

  int kept = Connect(kOtherProxyAddress, *port);
  ASSERT_GE(kept, 0);
  EXPECT_NE(AskOn(kept).find("alpha pod="), std::string::npos);

  std::vector<int> flood;
  for (int i = 0; i < 200; ++i) {
    flood.push_back(Connect(kOtherProxyAddress, *port));
    ASSERT_GE(flood.back(), 0);
  }
  std::this_thread::sleep_for(500ms);  // it forwards what it can, then meets EMFILE
  const auto cpu_before = CpuTime(pid);
  const auto wall_before = std::chrono::steady_clock::now();
  std::this_thread::sleep_for(2s);
  const double share =
      (CpuTime(pid) - cpu_before) /
      std::chrono::duration<double>(std::chrono::steady_clock::now() - wall_before);
  // A spinning accept loop takes a whole core; backing off takes next to nothing.
  EXPECT_LT(share, 0.5) << "the proxy used " << share * 100 << "% of a core while out of files";
  // The connection it had still flows.
  EXPECT_NE(AskOn(kept).find("alpha pod="), std::string::npos);

  for (int fd : flood) ::close(fd);
  EXPECT_TRUE(WaitUntil([&] { return HitAt(child_url) == "alpha"; }));
  ::close(kept);

  ::close(down[1]);  // the child stops
  uint64_t failures = 0;
  ASSERT_EQ(::read(up[0], &failures, sizeof failures), static_cast<ssize_t>(sizeof failures));
  const auto elapsed = std::chrono::duration_cast<std::chrono::milliseconds>(
                           std::chrono::steady_clock::now() - start)
                           .count();
  std::printf("proxy out of files: %.1f%% of a core, %llu failed accepts in %lld ms\n", share * 100,
              static_cast<unsigned long long>(failures), static_cast<long long>(elapsed));
  EXPECT_GE(failures, 1u) << "the flood did not run the proxy out of file descriptors";
  // At most one failed accept per pause (100 ms).
  EXPECT_LE(failures, static_cast<uint64_t>(elapsed / 100 + 1));
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
  ::close(up[0]);
}

}  // namespace
}  // namespace ballast::nodeagent
