// Every network transport against a real server on loopback: git daemon (git://), git
// http-backend behind lighttpd (http:// and https:// with basic credentials from a file), and
// sshd (ssh:// with an ed25519 key and a pinned host key).

#include <gtest/gtest.h>

#include <fstream>

#include "sources/git/git_source.h"
#include "tests/support/git_servers.h"
#include "tests/support/manifests.h"
#include "tests/support/ports.h"

namespace ballast::git {
namespace {

using ballast::testing::DeploymentYaml;
using testing::GitDaemon;
using testing::HttpGitServer;
using testing::RepoFarm;
using testing::SshServer;
using testing::TempDir;

class TransportTest : public ::testing::Test {
 protected:
  void SetUp() override {
    farm_.CreateBare("app.git");
    first_ = farm_.Commit("app.git", {{"deploy/web.yaml", DeploymentYaml("web", 1)}}, "first");
  }

  SourceConfig Config(const std::string& url) {
    SourceConfig c;
    c.remote.url = url;
    c.ref = "main";
    c.path = "deploy";
    c.clone_dir = state_.path() / ("clone-" + std::to_string(next_clone_++));
    c.remote.timeout = std::chrono::seconds(60);
    return c;
  }

  std::string WriteFile(const std::string& name, const std::string& content) {
    std::string path = state_ / name;
    std::ofstream(path) << content;
    return path;
  }

  // Clones, sees the first commit, then sees a new one.
  void ExpectClonesAndFollows(const SourceConfig& config) {
    GitSource source(config);
    auto snap = source.Poll();
    ASSERT_TRUE(snap.ok()) << snap.status().ToString();
    EXPECT_EQ(snap->commit.sha, first_);
    ASSERT_EQ(snap->tree->manifests.size(), 1u);
    EXPECT_EQ(snap->tree->manifests[0]->deployment()->spec.replicas, 1);
    std::string second =
        farm_.Commit("app.git", {{"deploy/web.yaml", DeploymentYaml("web", 2)}}, "second");
    auto next = source.Poll();
    ASSERT_TRUE(next.ok()) << next.status().ToString();
    EXPECT_EQ(next->commit.sha, second);
    EXPECT_TRUE(next->changed);
    EXPECT_EQ(next->tree->manifests.at(0)->deployment()->spec.replicas, 2);
    auto same = source.Poll();
    ASSERT_TRUE(same.ok()) << same.status().ToString();
    EXPECT_FALSE(same->changed);
  }

  RepoFarm farm_;
  TempDir state_;
  std::string first_;
  int next_clone_ = 0;
};

TEST_F(TransportTest, GitDaemon) {
  GitDaemon daemon;
  ASSERT_TRUE(daemon.Start(farm_.root(), /*enable_receive_pack=*/false));
  ExpectClonesAndFollows(Config(daemon.Url("app.git")));

  GitSource missing(Config(daemon.Url("nope.git")));
  auto r = missing.Poll();
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("nope.git"), std::string::npos) << r.status().ToString();
}

TEST_F(TransportTest, HttpWithBasicCredentialsFromFile) {
  HttpGitServer server;
  ASSERT_TRUE(server.Start(farm_.root(), /*https=*/false)) << server.log();
  SourceConfig config = Config(server.Url("app.git"));
  config.remote.username = HttpGitServer::kUser;
  config.remote.password_file =
      WriteFile("token", std::string("  ") + HttpGitServer::kPassword + "\n");
  ExpectClonesAndFollows(config);
}

TEST_F(TransportTest, HttpAuthenticationFailures) {
  HttpGitServer server;
  ASSERT_TRUE(server.Start(farm_.root(), /*https=*/false)) << server.log();

  GitSource anonymous(Config(server.Url("app.git")));
  auto a = anonymous.Poll();
  ASSERT_FALSE(a.ok());
  EXPECT_EQ(a.status().code(), StatusCode::kPermissionDenied) << a.status().ToString();

  SourceConfig wrong = Config(server.Url("app.git"));
  wrong.remote.username = HttpGitServer::kUser;
  wrong.remote.password_file = WriteFile("wrong", "not-the-token\n");
  GitSource refused(wrong);
  auto b = refused.Poll();
  ASSERT_FALSE(b.ok());
  EXPECT_EQ(b.status().code(), StatusCode::kPermissionDenied) << b.status().ToString();
  EXPECT_NE(b.status().message().find("localhost"), std::string::npos) << b.status().ToString();
  // The secret never appears in messages.
  EXPECT_EQ(b.status().message().find("not-the-token"), std::string::npos);
}

TEST_F(TransportTest, HttpsWithCaFileAndInsecureSwitch) {
  HttpGitServer server;
  ASSERT_TRUE(server.Start(farm_.root(), /*https=*/true)) << server.log();
  std::string token = WriteFile("token", HttpGitServer::kPassword);

  SourceConfig untrusted = Config(server.Url("app.git"));
  untrusted.remote.username = HttpGitServer::kUser;
  untrusted.remote.password_file = token;
  GitSource refused(untrusted);
  auto r = refused.Poll();
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kPermissionDenied) << r.status().ToString();
  EXPECT_NE(r.status().message().find("certificate"), std::string::npos) << r.status().ToString();

  SourceConfig trusted = untrusted;
  trusted.remote.ca_file = server.ca_file();
  trusted.clone_dir = state_.path() / "trusted";
  ExpectClonesAndFollows(trusted);

  SourceConfig insecure = untrusted;
  insecure.remote.insecure_skip_verify = true;
  insecure.clone_dir = state_.path() / "insecure";
  GitSource accepted(insecure);
  auto ok = accepted.Poll();
  ASSERT_TRUE(ok.ok()) << ok.status().ToString();
}

class SshTransportTest : public TransportTest {
 protected:
  void SetUp() override {
    TransportTest::SetUp();
    bool started = sshd_.Start();
    if (!started && geteuid() != 0) {
      GTEST_SKIP() << "sshd cannot run for a non-root user here: " << sshd_.error();
    }
    ASSERT_TRUE(started) << sshd_.error();
  }
  SourceConfig SshConfig() {
    SourceConfig c = Config(sshd_.Url(farm_.BarePath("app.git")));
    c.remote.ssh_key_file = sshd_.client_key();
    c.remote.ssh_host_fingerprint = sshd_.host_fingerprint();
    return c;
  }
  SshServer sshd_;
};

TEST_F(SshTransportTest, Ed25519KeyAndPinnedHostKey) { ExpectClonesAndFollows(SshConfig()); }

TEST_F(SshTransportTest, HostKeyMustMatchThePin) {
  SourceConfig unpinned = SshConfig();
  unpinned.remote.ssh_host_fingerprint.clear();
  GitSource a(unpinned);
  auto r = a.Poll();
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kPermissionDenied) << r.status().ToString();
  // The message shows the fingerprint to pin.
  EXPECT_NE(r.status().message().find(sshd_.host_fingerprint()), std::string::npos)
      << r.status().ToString();

  SourceConfig wrong = SshConfig();
  wrong.remote.ssh_host_fingerprint = "SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
  GitSource b(wrong);
  auto s = b.Poll();
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.status().code(), StatusCode::kPermissionDenied) << s.status().ToString();
  EXPECT_NE(s.status().message().find("does not match"), std::string::npos)
      << s.status().ToString();
}

TEST_F(TransportTest, SilentSshServerTimesOut) {
  // Accepted by the kernel, never answered: libssh2 waits for the server's banner itself, and
  // only the deadline gets the poll back.
  ballast::testing::SilentListener silent;
  ASSERT_TRUE(silent.ok());
  SourceConfig config = Config("ssh://git@" + silent.host_port() + "/app.git");
  config.remote.ssh_key_file = WriteFile("key", "unused");
  config.remote.ssh_host_fingerprint = "SHA256:unused";
  config.remote.timeout = std::chrono::seconds(2);
  auto r = GitSource(config).Poll();
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kDeadlineExceeded) << r.status().ToString();
}

TEST_F(SshTransportTest, UnknownKeyIsRefused) {
  TempDir keys;
  ASSERT_EQ(testing::Sh("ssh-keygen -q -t ed25519 -N '' -f other", keys.path().string()).exit_code,
            0);
  SourceConfig config = SshConfig();
  config.remote.ssh_key_file = keys / "other";
  GitSource source(config);
  auto r = source.Poll();
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kPermissionDenied) << r.status().ToString();
}

}  // namespace
}  // namespace ballast::git
