// `ballast dev` end to end: the real binary seeds a playground from examples/repo, starts the
// reconciler and agents, the page lists the example's objects Healthy, a commit in the
// playground is answered through the post-commit hook, and SIGINT leaves no process behind.

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "net/client.h"
#include "tests/reconciler/cluster.h"
#include "tests/support/git_servers.h"

namespace ballast {
namespace {

namespace fs = std::filesystem;
using git::testing::ChildProcess;
using git::testing::Quote;
using git::testing::Sh;
using git::testing::TempDir;
using Json = net::Json;
using Clock = std::chrono::steady_clock;

using reconciler::testing::ReadFile;
using reconciler::testing::WaitFor;

// Processes whose working directory is under `dir` (the reconciler, the agents, their pods).
std::vector<std::string> ProcessesUnder(const fs::path& dir) {
  std::vector<std::string> out;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator("/proc", ec)) {
    std::string pid = e.path().filename().string();
    if (pid.find_first_not_of("0123456789") != std::string::npos) continue;
    std::error_code ec2;
    fs::path cwd = fs::read_symlink(e.path() / "cwd", ec2);
    if (ec2) continue;
    std::string s = cwd.string();
    if (s.rfind(dir.string(), 0) == 0) {
      std::string stat = ReadFile((e.path() / "stat").string());
      auto paren = stat.rfind(')');
      if (paren != std::string::npos && stat.size() > paren + 2 && stat[paren + 2] == 'Z') continue;
      out.push_back(pid + " " + ReadFile((e.path() / "cmdline").string()));
    }
  }
  return out;
}

TEST(DevTest, PlaygroundStartsAnswersACommitAndStopsEverything) {
  TempDir dir;
  fs::path play = dir.path() / "dev";
  std::string out_log = dir / "dev.out";
  // Agents on addresses of their own, so the example's fixed Service ports (8080, 8081) do not
  // meet another test's proxies.
  const std::string first = "127." + std::to_string(100 + getpid() % 150) + "." +
                            std::to_string(getpid() / 150 % 250) + ".2";
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    setpgid(0, 0);
    FILE* f = std::freopen(out_log.c_str(), "w", stdout);
    if (f == nullptr || std::freopen(out_log.c_str(), "a", stderr) == nullptr) _exit(127);
    execl(BALLAST_BINARY, BALLAST_BINARY, "dev", "--agents", "2", "--listen", "127.0.0.1:0",
          "--dir", play.c_str(), "--seed", BALLAST_SOURCE_DIR "/examples/repo", "--poll", "1",
          "--first-address", first.c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  struct Reaper {
    pid_t pid;
    ~Reaper() {
      if (pid > 0 && waitpid(pid, nullptr, WNOHANG) == 0) {
        kill(pid, SIGKILL);
        waitpid(pid, nullptr, 0);
      }
    }
  } reaper{pid};

  std::string url;
  ASSERT_TRUE(WaitFor(
      [&] {
        std::string out = ReadFile(out_log);
        auto at = out.find("reconciler on ");
        if (at == std::string::npos) return false;
        url = out.substr(at + 14, out.find(' ', at + 14) - at - 14);
        return true;
      },
      std::chrono::seconds(90)))
      << ReadFile(out_log);
  EXPECT_NE(ReadFile(out_log).find("/web.yaml, git commit, watch " + url), std::string::npos);

  net::HttpClient client;
  auto get = [&](const std::string& path) -> std::string {
    auto r = client.Get(url + path);
    return r.ok() && r->status == 200 ? r->body : "";
  };
  // The page lists the example's objects, and everything becomes Healthy.
  EXPECT_TRUE(WaitFor(
      [&] {
        auto s = Json::parse(get("/api/v1/status"), nullptr, false);
        return s.is_object() && s.value("health", "") == "Healthy" &&
               s.value("sync", "") == "Synced";
      },
      std::chrono::seconds(120)))
      << get("/api/v1/status") << ReadFile((play / "logs" / "serve.log").string());
  std::string page = get("/");
  for (const char* name : {"default/web", "default/api"}) {
    EXPECT_NE(page.find(name), std::string::npos) << name;
  }

  // A commit in the playground reaches the reconciler (the hook pushes and pokes the webhook).
  auto commit =
      Sh("sed -i 's/Hello from ballast/Hello from the dev test/' web.yaml && "
         "git commit -q -am 'web: new message' && git rev-parse HEAD",
         (play / "manifests").string());
  ASSERT_EQ(commit.exit_code, 0) << commit.output;
  std::string sha = commit.output.substr(commit.output.rfind('\n', commit.output.size() - 2) + 1);
  while (!sha.empty() && (sha.back() == '\n' || sha.back() == ' ')) sha.pop_back();
  EXPECT_TRUE(WaitFor(
      [&] {
        auto s = Json::parse(get("/api/v1/status"), nullptr, false);
        return s.is_object() && s.value("appliedRevision", "") == sha;
      },
      std::chrono::seconds(60)))
      << sha << " " << get("/api/v1/status");

  // The rolling update reaches what users see through the web Service on the first node.
  std::string answer;
  EXPECT_TRUE(WaitFor(
      [&] {
        auto r = client.Get("http://" + first + ":8080/");
        answer = r.ok() ? r->body : "";
        return answer.find("Hello from the dev test") != std::string::npos;
      },
      std::chrono::seconds(120)))
      << answer;

  // Ctrl-C: everything stops, nothing is left behind.
  ASSERT_EQ(kill(pid, SIGINT), 0);
  int status = 0;
  ASSERT_TRUE(
      WaitFor([&] { return waitpid(pid, &status, WNOHANG) == pid; }, std::chrono::seconds(60)));
  reaper.pid = -1;
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status << ReadFile(out_log);
  std::vector<std::string> left;
  EXPECT_TRUE(WaitFor(
      [&] {
        left = ProcessesUnder(play);
        return left.empty();
      },
      std::chrono::seconds(5)))
      << left.size() << " left, first: " << (left.empty() ? "" : left[0]);
  EXPECT_NE(ReadFile(out_log).find("ballast dev: stopped"), std::string::npos);
}

}  // namespace
}  // namespace ballast
