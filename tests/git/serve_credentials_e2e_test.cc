// `ballast serve` reaching its manifest repository with credentials from files, against real
// servers on loopback: https with basic authentication (--git-password-file) and a private CA
// (--git-ca-file), ssh with a key (--git-ssh-key) and the host key in a known_hosts file
// (--git-known-hosts). And what a user sees of a secret: never in ps (/proc/PID/cmdline), the
// serve log, GET /api/v1/status or the page; a password put in --repo is warned about and
// redacted everywhere ballast prints the URL or an error quoting it.

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>

#include "net/client.h"
#include "tests/reconciler/cluster.h"
#include "tests/support/git_servers.h"
#include "tests/support/manifests.h"

namespace ballast::git {
namespace {

using reconciler::testing::Cluster;
using reconciler::testing::ReadFile;
using reconciler::testing::WaitFor;
using testing::HttpGitServer;
using testing::SshServer;
using Json = net::Json;

constexpr char kAdminToken[] = "adm1n-reads-the-status";

// The command lines of running processes that mention `needle`, NULs shown as spaces.
std::vector<std::string> CommandLinesMentioning(const std::string& needle) {
  std::vector<std::string> out;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator("/proc", ec)) {
    std::string cmdline = ReadFile(entry.path() / "cmdline");
    std::replace(cmdline.begin(), cmdline.end(), '\0', ' ');
    if (cmdline.find(needle) != std::string::npos) out.push_back(cmdline);
  }
  return out;
}

class ServeGitCredentialsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    commit_ = cluster_.Commit({{"web.yaml", ballast::testing::DeploymentYaml("web", 1)}}, "first");
    token_file_ = WriteSecret("admin-token", std::string(kAdminToken) + "\n");
  }

  std::string WriteSecret(const std::string& name, const std::string& content) {
    std::string path = cluster_.dir() / name;
    std::ofstream(path) << content;
    chmod(path.c_str(), 0600);
    return path;
  }

  // Starts serve on `url` with `flags` and the admin token file.
  bool StartServe(std::vector<std::string> flags, const std::string& url) {
    flags.insert(flags.end(), {"--token-file", token_file_});
    return cluster_.StartServe(flags, url);
  }

  // GET `path` with the admin token: status and body.
  std::pair<int, std::string> Read(const std::string& path) {
    net::ClientOptions o;
    o.bearer_token = kAdminToken;
    net::HttpClient client(o);
    auto r = client.Get(cluster_.url() + path);
    if (!r.ok()) return {0, r.status().ToString()};
    return {r->status, r->body};
  }
  Json Status() {
    auto [code, body] = Read("/api/v1/status");
    return code == 200 ? Json::parse(body, nullptr, false) : Json(nullptr);
  }
  bool SeesCommit(const std::string& sha) {
    Json s = Status();
    return s.is_object() && s.value("revision", "") == sha;
  }
  std::string SourceError() {
    Json s = Status();
    if (!s.is_object() || !s["sourceError"].is_object()) return "";
    return s["sourceError"].value("message", "");
  }

  // `secret` is in none of the places a user reads: the serve log, the status document, the
  // page (each read in full, as the admin).
  void ExpectNotShown(const std::string& secret) {
    const std::string log = ReadFile(cluster_.serve_log());
    EXPECT_EQ(log.find(secret), std::string::npos) << log;
    auto [status_code, status] = Read("/api/v1/status");
    EXPECT_EQ(status_code, 200) << status;
    EXPECT_EQ(status.find(secret), std::string::npos) << status;
    auto [page_code, page] = Read("/");
    EXPECT_EQ(page_code, 200) << page;
    EXPECT_NE(page.find("<h1>ballast</h1>"), std::string::npos);
    EXPECT_EQ(page.find(secret), std::string::npos) << page;
  }
  // ... nor in the command line of any process of this test (ps, /proc/PID/cmdline).
  void ExpectNotInCommandLines(const std::string& secret) {
    auto lines = CommandLinesMentioning(cluster_.dir().path().string());
    ASSERT_FALSE(lines.empty());
    for (const std::string& line : lines) EXPECT_EQ(line.find(secret), std::string::npos) << line;
  }

  Cluster cluster_;
  std::string commit_;
  std::string token_file_;
};

TEST_F(ServeGitCredentialsTest, HttpsWithPasswordFileAndCaFile) {
  HttpGitServer server;
  ASSERT_TRUE(server.Start(cluster_.farm().root(), /*https=*/true)) << server.log();
  const std::string password = WriteSecret("git-token", std::string(HttpGitServer::kPassword));

  // The server's CA not given: its certificate is refused, and the status says so.
  ASSERT_TRUE(StartServe({"--git-username", HttpGitServer::kUser, "--git-password-file", password},
                         server.Url("manifests")))
      << cluster_.Logs();
  EXPECT_TRUE(WaitFor([&] { return SourceError().find("certificate") != std::string::npos; }))
      << cluster_.Logs();
  EXPECT_FALSE(SeesCommit(commit_));
  cluster_.StopServe();

  ASSERT_TRUE(StartServe({"--git-username", HttpGitServer::kUser, "--git-password-file", password,
                          "--git-ca-file", server.ca_file()},
                         server.Url("manifests")))
      << cluster_.Logs();
  EXPECT_TRUE(WaitFor([&] { return SeesCommit(commit_); })) << cluster_.Logs();
  // A new commit is followed (the password file is read at every fetch).
  std::string second =
      cluster_.Commit({{"web.yaml", ballast::testing::DeploymentYaml("web", 2)}}, "second");
  EXPECT_TRUE(WaitFor([&] { return SeesCommit(second); })) << cluster_.Logs();
  ExpectNotShown(HttpGitServer::kPassword);
  ExpectNotInCommandLines(HttpGitServer::kPassword);
  EXPECT_EQ(ReadFile(cluster_.serve_log()).find("git_credentials_in_url"), std::string::npos);
}

TEST_F(ServeGitCredentialsTest, WrongPasswordFileIsRefusedWithoutShowingIt) {
  HttpGitServer server;
  ASSERT_TRUE(server.Start(cluster_.farm().root(), /*https=*/false)) << server.log();
  const std::string wrong = "n0t-the-Passw0rd";
  ASSERT_TRUE(StartServe({"--git-username", HttpGitServer::kUser, "--git-password-file",
                          WriteSecret("git-token", wrong + "\n")},
                         server.Url("manifests")))
      << cluster_.Logs();
  EXPECT_TRUE(WaitFor([&] { return SourceError().find("authentication") != std::string::npos; }))
      << cluster_.Logs() << SourceError();
  ExpectNotShown(wrong);
  ExpectNotInCommandLines(wrong);

  // A file that cannot be read stops the start, naming the flag.
  auto r = testing::Sh(std::string(BALLAST_BINARY) + " serve --repo " +
                       testing::Quote(server.Url("manifests")) +
                       " --git-password-file /nonexistent/token --listen 127.0.0.1:0 "
                       "--state-dir " +
                       testing::Quote(cluster_.dir() / "other-state"));
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find("--git-password-file"), std::string::npos) << r.output;
}

class ServeSshTest : public ServeGitCredentialsTest {
 protected:
  void SetUp() override {
    ServeGitCredentialsTest::SetUp();
    bool started = sshd_.Start();
    if (!started && geteuid() != 0) {
      GTEST_SKIP() << "sshd cannot run for a non-root user here: " << sshd_.error();
    }
    ASSERT_TRUE(started) << sshd_.error();
  }
  SshServer sshd_;
};

TEST_F(ServeSshTest, KeyAndKnownHosts) {
  const std::string known_hosts = WriteSecret("known_hosts", sshd_.known_hosts_line() + "\n");
  ASSERT_TRUE(StartServe({"--git-ssh-key", sshd_.client_key(), "--git-known-hosts", known_hosts},
                         sshd_.Url(cluster_.farm().BarePath("manifests"))))
      << cluster_.Logs();
  EXPECT_TRUE(WaitFor([&] { return SeesCommit(commit_); })) << cluster_.Logs() << sshd_.log();
  const std::string private_key = ReadFile(sshd_.client_key());
  const std::string key_body = private_key.substr(private_key.find('\n') + 1, 40);
  ExpectNotShown(key_body);
  ExpectNotInCommandLines(key_body);
}

// A host whose key is not in --git-known-hosts is never fetched from, and the error says why
// and what the host offered.
TEST_F(ServeSshTest, HostNotInKnownHostsIsRefused) {
  const std::string known_hosts = WriteSecret(
      "known_hosts",
      "192.0.2.7 " + sshd_.known_hosts_line().substr(sshd_.known_hosts_line().find(' ') + 1));
  ASSERT_TRUE(StartServe({"--git-ssh-key", sshd_.client_key(), "--git-known-hosts", known_hosts},
                         sshd_.Url(cluster_.farm().BarePath("manifests"))))
      << cluster_.Logs();
  std::string error;
  EXPECT_TRUE(WaitFor([&] {
    error = SourceError();
    return !error.empty();
  })) << cluster_.Logs();
  EXPECT_NE(error.find("is not in the known_hosts file " + known_hosts), std::string::npos)
      << error;
  EXPECT_NE(error.find(sshd_.host_fingerprint()), std::string::npos) << error;
  EXPECT_FALSE(SeesCommit(commit_));
  EXPECT_NE(ReadFile(cluster_.serve_log()).find("not in the known_hosts file"), std::string::npos);
}

// A password in --repo: serve warns at start, naming the flag to use, and the password is in
// none of its log, status and page, whether the fetch works or the server refuses it.
TEST_F(ServeGitCredentialsTest, PasswordInRepoUrlIsWarnedAboutAndRedacted) {
  HttpGitServer server;
  ASSERT_TRUE(server.Start(cluster_.farm().root(), /*https=*/false)) << server.log();
  auto with_password = [&](const std::string& password) {
    std::string url = server.Url("manifests");
    return url.insert(url.find("://") + 3,
                      std::string(HttpGitServer::kUser).append(":").append(password).append("@"));
  };

  ASSERT_TRUE(StartServe({}, with_password(HttpGitServer::kPassword))) << cluster_.Logs();
  EXPECT_TRUE(WaitFor([&] { return SeesCommit(commit_); })) << cluster_.Logs();
  const std::string log = ReadFile(cluster_.serve_log());
  auto warning = log.find("git_credentials_in_url");
  ASSERT_NE(warning, std::string::npos) << log;
  const std::string warning_line = log.substr(warning, log.find('\n', warning) - warning);
  EXPECT_NE(warning_line.find("--git-password-file"), std::string::npos) << warning_line;
  EXPECT_NE(warning_line.find("ballast:***@localhost"), std::string::npos) << warning_line;
  ExpectNotShown(HttpGitServer::kPassword);
  auto [page_code, page] = Read("/");
  EXPECT_NE(page.find("/git/manifests"), std::string::npos) << page;
  cluster_.StopServe();

  const std::string wrong = "Wr0ng-Passw0rd";
  ASSERT_TRUE(StartServe({}, with_password(wrong))) << cluster_.Logs();
  EXPECT_TRUE(WaitFor([&] { return !SourceError().empty(); })) << cluster_.Logs();
  ExpectNotShown(wrong);
}

}  // namespace
}  // namespace ballast::git
