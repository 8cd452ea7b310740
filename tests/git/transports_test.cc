// Every network transport against a real server on loopback: git daemon (git://), git
// http-backend behind lighttpd (http:// and https:// with basic credentials from a file), and
// sshd (ssh:// with an ed25519 key, the host key pinned or in a known_hosts file).

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

// A password in the URL reaches no message, whether the server refuses it, the host does not
// resolve, or libgit2 rejects the URL.
TEST_F(TransportTest, PasswordInUrlNeverInMessages) {
  HttpGitServer server;
  ASSERT_TRUE(server.Start(farm_.root(), /*https=*/false)) << server.log();
  const std::string secret = "Wr0ng%40pass-1234";  // percent-encoded '@'
  std::string url = server.Url("app.git");
  url.insert(url.find("://") + 3, std::string(HttpGitServer::kUser) + ":" + secret + "@");
  for (const std::string& u :
       {url, "http://bob:" + secret + "@unresolvable.invalid/x.git",
        "https://bob:" + secret + "@127.0.0.1:1/x.git", "http://bob:" + secret + "@[::1/x.git"}) {
    auto r = GitSource(Config(u)).Poll();
    ASSERT_FALSE(r.ok()) << u;
    EXPECT_EQ(r.status().message().find("Wr0ng"), std::string::npos) << r.status().ToString();
    EXPECT_NE(r.status().message().find(":***@"), std::string::npos) << r.status().ToString();
  }

  std::string good = server.Url("app.git");
  good.insert(good.find("://") + 3,
              std::string(HttpGitServer::kUser) + ":" + HttpGitServer::kPassword + "@");
  ExpectClonesAndFollows(Config(good));
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

// The host key checked against a known_hosts file the way ssh-keyscan writes it, plain or
// hashed (ssh-keygen -H, Debian's default for ~/.ssh/known_hosts); the public key is derived
// from the private key when there is no KEY.pub.
TEST_F(SshTransportTest, KnownHostsFileListsTheHost) {
  SourceConfig config = SshConfig();
  config.remote.ssh_host_fingerprint.clear();
  config.remote.known_hosts_files = {
      WriteFile("known_hosts", "# a comment\n@cert-authority *.example.com ssh-ed25519 AAAA\n" +
                                   sshd_.known_hosts_line() + " a comment\n")};
  ExpectClonesAndFollows(config);

  ASSERT_EQ(testing::Sh("ssh-keygen -q -H -f " + testing::Quote(config.remote.known_hosts_files[0]))
                .exit_code,
            0);
  ASSERT_EQ(
      testing::Sh("grep -q '^|1|' " + testing::Quote(config.remote.known_hosts_files[0])).exit_code,
      0);
  TempDir keys;
  ASSERT_EQ(testing::Sh("cp " + testing::Quote(sshd_.client_key()) + " key && chmod 600 key",
                        keys.path().string())
                .exit_code,
            0);
  config.remote.ssh_key_file = keys / "key";  // no key.pub beside it
  config.clone_dir = state_.path() / "hashed";
  GitSource hashed(config);
  auto r = hashed.Poll();
  ASSERT_TRUE(r.ok()) << r.status().ToString();
}

TEST_F(SshTransportTest, HostNotInKnownHostsIsRefused) {
  TempDir other;
  ASSERT_EQ(testing::Sh("ssh-keygen -q -t ed25519 -N '' -f k", other.path().string()).exit_code, 0);
  std::string other_key = testing::Sh("cut -d' ' -f1,2 k.pub", other.path().string()).output;
  SourceConfig config = SshConfig();
  config.remote.ssh_host_fingerprint.clear();
  // Another host's line, and this host's key listed for another port.
  std::string line = sshd_.known_hosts_line();
  std::string other_port = "[127.0.0.1]:1" + line.substr(line.find(']') + 2);
  config.remote.known_hosts_files = {
      WriteFile("known_hosts", "[192.0.2.1]:22 " + other_key + other_port + "\n")};
  auto r = GitSource(config).Poll();
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kPermissionDenied) << r.status().ToString();
  EXPECT_NE(r.status().message().find("is not in the known_hosts file"), std::string::npos)
      << r.status().ToString();
  // What to check before adding it: the fingerprint the host offered.
  EXPECT_NE(r.status().message().find(sshd_.host_fingerprint()), std::string::npos)
      << r.status().ToString();

  config.remote.known_hosts_files = {state_ / "missing_known_hosts"};
  auto missing = GitSource(config).Poll();
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.status().message().find("missing_known_hosts"), std::string::npos)
      << missing.status().ToString();
}

// A server whose key is not the one known_hosts lists for it: someone in between.
TEST_F(SshTransportTest, ChangedHostKeyIsRefused) {
  TempDir other;
  ASSERT_EQ(testing::Sh("ssh-keygen -q -t ed25519 -N '' -f k", other.path().string()).exit_code, 0);
  std::string other_key = testing::Sh("cut -d' ' -f1,2 k.pub", other.path().string()).output;
  std::string line = sshd_.known_hosts_line();
  SourceConfig config = SshConfig();
  config.remote.ssh_host_fingerprint.clear();
  config.remote.known_hosts_files = {
      WriteFile("known_hosts", line.substr(0, line.find(' ') + 1) + other_key)};
  GitSource source(config);
  auto r = source.Poll();
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kPermissionDenied) << r.status().ToString();
  EXPECT_NE(r.status().message().find("man-in-the-middle"), std::string::npos)
      << r.status().ToString();
  EXPECT_FALSE(std::filesystem::exists(config.clone_dir / "refs/ballast/last-seen"));
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
