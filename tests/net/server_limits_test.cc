// The server under a flood of idle connections, over real loopback sockets: beyond
// max_connections new connections are answered 503 (or closed) and the server serves again once
// the flood is gone; a server run out of file descriptors (a child process with a low
// RLIMIT_NOFILE) does not spin on EMFILE, keeps serving the connection it had, and accepts again
// once descriptors are free.

#include <poll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <iterator>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "net/client.h"
#include "net/http.h"
#include "net/router.h"
#include "net/server.h"
#include "tests/support/cpu_time.h"
#include "tests/support/ports.h"

namespace ballast::net {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

Router HealthRouter() {
  Router router;
  router.HandleSync("GET", "/healthz", [](const Request&) { return TextResponse(200, "ok"); });
  return router;
}

// `n` connections to 127.0.0.1:port that send nothing (they complete in the kernel's backlog
// whether or not the server accepts them); -1 for any that failed.
std::vector<int> OpenIdle(int port, int n) {
  std::vector<int> fds;
  for (int i = 0; i < n; ++i) fds.push_back(ballast::testing::ConnectLoopback(port));
  return fds;
}

void CloseAll(std::vector<int>& fds) {
  for (int fd : fds) {
    if (fd >= 0) ::close(fd);
  }
  fds.clear();
}

// Splits `fds` into those the server answered or closed (readable: bytes, EOF or a reset)
// within `timeout` and those still waiting. Stops waiting once `expect_refused` are readable.
void SplitRefused(const std::vector<int>& fds, size_t expect_refused,
                  std::chrono::milliseconds timeout, std::vector<int>* refused,
                  std::vector<int>* waiting) {
  std::vector<pollfd> polls;
  for (int fd : fds) polls.push_back(pollfd{fd, POLLIN, 0});
  std::vector<bool> readable(fds.size(), false);
  size_t count = 0;
  auto deadline = Clock::now() + timeout;
  while (count < expect_refused && Clock::now() < deadline) {
    for (auto& p : polls) p.revents = 0;
    if (::poll(polls.data(), polls.size(), 100) <= 0) continue;
    for (size_t i = 0; i < polls.size(); ++i) {
      if (polls[i].revents != 0 && !readable[i]) {
        readable[i] = true;
        polls[i].fd = -1;  // poll ignores it from now on
        ++count;
      }
    }
  }
  for (size_t i = 0; i < fds.size(); ++i) (readable[i] ? refused : waiting)->push_back(fds[i]);
}

// All that `fd` receives until the peer closes (or resets, or 5 s pass).
std::string ReadAll(int fd) {
  timeval tv{5, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  std::string got;
  char buf[4096];
  while (true) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n <= 0) break;
    got.append(buf, static_cast<size_t>(n));
  }
  return got;
}

// Sends one GET /healthz on the kept-alive connection `fd` and reads the answer (10 s at most).
std::string AskHealth(int fd) {
  const std::string req = "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n";
  if (::write(fd, req.data(), req.size()) != static_cast<ssize_t>(req.size())) return "";
  timeval tv{10, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  std::string got;
  char buf[4096];
  while (got.size() < 2 || got.compare(got.size() - 2, 2, "ok") != 0) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n <= 0) break;
    got.append(buf, static_cast<size_t>(n));
  }
  return got;
}

// GETs `url` until it answers `want` or `timeout` passes; the last status, 0 when it could not
// get an answer at all.
int GetUntil(const std::string& url, int want, std::chrono::seconds timeout) {
  ClientOptions o;
  o.timeout = 2s;
  HttpClient client(o);
  auto deadline = Clock::now() + timeout;
  int last = 0;
  while (true) {
    auto r = client.Get(url);
    last = r.ok() ? r->status : 0;
    if (last == want || Clock::now() >= deadline) return last;
    std::this_thread::sleep_for(50ms);
  }
}

using ballast::testing::CpuTime;

TEST(ServerLimitsTest, BeyondMaxConnectionsAnswers503AndServesAgainAfterTheFlood) {
  ServerOptions o;
  o.max_connections = 50;
  HttpServer server(o);
  ASSERT_TRUE(server.Start(HealthRouter()).ok());
  const std::string url = server.url() + "/healthz";

  std::vector<int> flood = OpenIdle(server.port(), 200);
  for (int fd : flood) ASSERT_GE(fd, 0);
  // 50 are served (and wait for a request, within read_timeout); 150 are refused at once.
  std::vector<int> refused, served;
  SplitRefused(flood, 150, 20s, &refused, &served);
  ASSERT_EQ(refused.size(), 150u);
  // Nothing more is refused: the 50 stay served.
  std::vector<int> late, still;
  SplitRefused(served, 1, 300ms, &late, &still);
  EXPECT_TRUE(late.empty());
  int answered = 0;
  for (int fd : refused) {
    std::string got = ReadAll(fd);
    if (got.empty()) continue;  // closed without an answer: too many being refused at once
    EXPECT_EQ(got.rfind("HTTP/1.1 503 ", 0), 0u) << got;
    EXPECT_NE(got.find("too many connections"), std::string::npos) << got;
    ++answered;
  }
  EXPECT_GE(answered, 1);
  // The served ones are real connections.
  EXPECT_NE(AskHealth(served[0]).find("HTTP/1.1 200 OK"), std::string::npos);

  CloseAll(refused);
  ClientOptions co;
  co.timeout = 5s;
  HttpClient client(co);
  auto busy = client.Get(url);
  ASSERT_TRUE(busy.ok()) << busy.status().ToString();
  EXPECT_EQ(busy->status, 503);
  EXPECT_NE(busy->body.find("too many connections"), std::string::npos) << busy->body;

  CloseAll(served);
  EXPECT_EQ(GetUntil(url, 200, 10s), 200);
  EXPECT_GE(server.counters().rejected_connections, 151u);
}

// The attack that starved /healthz before: more idle connections than the process may open
// files. The server runs in a child process with RLIMIT_NOFILE 64 and the default cap (above
// the limit), so that accept fails with EMFILE.
TEST(ServerLimitsTest, OutOfFileDescriptorsBacksOffServesWhatItHasAndRecovers) {
  int up[2], down[2];  // child -> parent: the port, then its accept failures; parent -> child
  ASSERT_EQ(::pipe(up), 0);
  ASSERT_EQ(::pipe(down), 0);
  pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    // The child: no gtest here, only _exit codes.
    ::close(up[0]);
    ::close(down[1]);
    rlimit limit{64, 64};
    if (::setrlimit(RLIMIT_NOFILE, &limit) != 0) ::_exit(2);
    HttpServer server{ServerOptions{}};
    if (!server.Start(HealthRouter()).ok()) ::_exit(3);
    uint64_t port = server.port();
    if (::write(up[1], &port, sizeof port) != sizeof port) ::_exit(4);
    char c;
    while (::read(down[0], &c, 1) > 0) {
    }
    uint64_t failures = server.counters().accept_failures;
    if (::write(up[1], &failures, sizeof failures) != sizeof failures) ::_exit(5);
    server.Stop();
    ::_exit(0);
  }
  ::close(up[1]);
  ::close(down[0]);
  uint64_t port = 0;
  ASSERT_EQ(::read(up[0], &port, sizeof port), static_cast<ssize_t>(sizeof port));
  const std::string url = "http://127.0.0.1:" + std::to_string(port) + "/healthz";
  const auto start = Clock::now();

  int kept = ballast::testing::ConnectLoopback(static_cast<int>(port));
  ASSERT_GE(kept, 0);
  EXPECT_NE(AskHealth(kept).find("HTTP/1.1 200 OK"), std::string::npos);

  std::vector<int> flood = OpenIdle(static_cast<int>(port), 200);
  for (int fd : flood) ASSERT_GE(fd, 0);
  std::this_thread::sleep_for(500ms);  // it accepts what it can, then meets EMFILE
  const auto cpu_before = CpuTime(pid);
  const auto wall_before = Clock::now();
  std::this_thread::sleep_for(2s);
  const double share =
      (CpuTime(pid) - cpu_before) / std::chrono::duration<double>(Clock::now() - wall_before);
  // A spinning accept loop takes a whole core; backing off takes next to nothing.
  EXPECT_LT(share, 0.5) << "the server used " << share * 100 << "% of a core while out of files";
  // The connection it had is still served.
  EXPECT_NE(AskHealth(kept).find("HTTP/1.1 200 OK"), std::string::npos);

  CloseAll(flood);
  EXPECT_EQ(GetUntil(url, 200, 10s), 200);
  ::close(kept);

  ::close(down[1]);  // the child stops
  uint64_t failures = 0;
  ASSERT_EQ(::read(up[0], &failures, sizeof failures), static_cast<ssize_t>(sizeof failures));
  const auto elapsed =
      std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start).count();
  std::printf("server out of files: %.1f%% of a core, %llu failed accepts in %lld ms\n",
              share * 100, static_cast<unsigned long long>(failures),
              static_cast<long long>(elapsed));
  EXPECT_GE(failures, 1u) << "the flood did not run the server out of file descriptors";
  // At most one failed accept per back-off pause (100 ms).
  EXPECT_LE(failures, static_cast<uint64_t>(elapsed / 100 + 1));
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
  ::close(up[0]);
}

}  // namespace
}  // namespace ballast::net
