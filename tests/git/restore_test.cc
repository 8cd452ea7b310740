// Rollback: a history entry's files committed back onto the tracked branch and pushed, against
// real servers: git daemon with receive-pack, a read-only git daemon, and http with credentials.
// Includes the race with a concurrent push and the refused push.

#include <gtest/gtest.h>
#include <unistd.h>

#include <fstream>

#include "sources/git/git_source.h"
#include "sources/git/history_store.h"
#include "tests/support/git_servers.h"
#include "tests/support/manifests.h"

namespace ballast::git {
namespace {

using ballast::testing::DeploymentYaml;
using testing::GitDaemon;
using testing::HttpGitServer;
using testing::RepoFarm;
using testing::Sh;
using testing::TempDir;

class RestoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    bare_ = farm_.CreateBare("app.git");
    first_ = farm_.Commit("app.git",
                          {{"deploy/web.yaml", DeploymentYaml("web", 1, "v1 comment")},
                           {"deploy/old.yaml", DeploymentYaml("old", 1)},
                           {"other/keep.txt", "untouched\n"}},
                          "v1");
  }

  SourceConfig Config(const std::string& url) {
    SourceConfig c;
    c.remote.url = url;
    c.ref = "main";
    c.path = "deploy";
    c.clone_dir = state_.path() / ("clone-" + std::to_string(next_clone_++));
    return c;
  }

  // Polls, records entry #1 (the first state), then moves the branch on to a second state.
  HistoryEntryContents RecordFirstThenChange(GitSource& source) {
    auto history = HistoryStore::Open(state_.path() / "history.git");
    EXPECT_TRUE(history.ok());
    auto snap = source.Poll();
    EXPECT_TRUE(snap.ok()) << snap.status().ToString();
    HistoryRecord record;
    record.source_sha = snap->commit.sha;
    record.trigger = "poll";
    record.result = "Succeeded";
    auto entry = (*history)->Append(record, snap->tree->files, snap->tree->manifests);
    EXPECT_TRUE(entry.ok()) << entry.status().ToString();
    second_ = farm_.Commit("app.git",
                           {{"deploy/web.yaml", DeploymentYaml("web", 5)},
                            {"deploy/old.yaml", std::nullopt},
                            {"deploy/new.yaml", DeploymentYaml("new", 1)}},
                           "v2");
    auto contents = (*history)->Read(entry->id);
    EXPECT_TRUE(contents.ok()) << contents.status().ToString();
    return *contents;
  }

  RestoreRequest Request(const HistoryEntryContents& entry) {
    RestoreRequest r;
    r.entry_id = entry.entry.id;
    r.source_sha = entry.entry.record.source_sha;
    r.files = entry.source_files;
    r.requested_by = "alice";
    return r;
  }

  std::string RemoteHead() { return Sh("git rev-parse main", bare_).output.substr(0, 40); }
  std::string RemoteFile(const std::string& path) {
    return Sh("git show main:" + path, bare_).output;
  }

  RepoFarm farm_;
  TempDir state_;
  std::string bare_, first_, second_;
  int next_clone_ = 0;
};

TEST_F(RestoreTest, CommitsTheEntryFilesOnTheBranchAndPushes) {
  GitDaemon daemon;
  ASSERT_TRUE(daemon.Start(farm_.root(), /*enable_receive_pack=*/true));
  GitSource source(Config(daemon.Url("app.git")));
  HistoryEntryContents entry = RecordFirstThenChange(source);

  auto result = source.Restore(Request(entry));
  ASSERT_TRUE(result.ok()) << result.status().ToString();
  EXPECT_TRUE(result->pushed);
  EXPECT_EQ(result->attempts, 1);
  EXPECT_EQ(result->previous_head, second_);
  EXPECT_EQ(RemoteHead(), result->commit);
  EXPECT_EQ(Sh("git rev-parse main^", bare_).output.substr(0, 40), second_);
  auto message = Sh("git log -1 --format=%B main", bare_).output;
  EXPECT_EQ(message.substr(0, message.find('\n')),
            "Roll back to #1 (source " + first_.substr(0, 7) + ")");
  EXPECT_NE(message.find("alice"), std::string::npos) << message;
  // The tracked path is exactly the entry's files; the rest of the tree is untouched.
  EXPECT_EQ(RemoteFile("deploy/web.yaml"), DeploymentYaml("web", 1, "v1 comment"));
  EXPECT_EQ(RemoteFile("deploy/old.yaml"), DeploymentYaml("old", 1));
  EXPECT_NE(Sh("git cat-file -e main:deploy/new.yaml", bare_).exit_code, 0);
  EXPECT_EQ(RemoteFile("other/keep.txt"), "untouched\n");

  // The source follows its own rollback like any other commit.
  auto snap = source.Poll();
  ASSERT_TRUE(snap.ok()) << snap.status().ToString();
  EXPECT_EQ(snap->commit.sha, result->commit);
  EXPECT_FALSE(snap->history_rewritten);
  EXPECT_EQ(snap->tree->manifests.size(), 2u);

  // Restoring the state that is already there pushes nothing.
  auto again = source.Restore(Request(entry));
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_FALSE(again->pushed);
  EXPECT_EQ(RemoteHead(), result->commit);
}

TEST_F(RestoreTest, ConcurrentPushIsFetchedAndRebuiltOnce) {
  GitDaemon daemon;
  ASSERT_TRUE(daemon.Start(farm_.root(), /*enable_receive_pack=*/true));
  GitSource source(Config(daemon.Url("app.git")));
  HistoryEntryContents entry = RecordFirstThenChange(source);

  std::string concurrent;
  RestoreRequest request = Request(entry);
  request.before_push = [&] {
    if (concurrent.empty()) {
      concurrent = farm_.Commit("app.git", {{"other/late.txt", "pushed meanwhile\n"}}, "late");
    }
  };
  auto result = source.Restore(request);
  ASSERT_TRUE(result.ok()) << result.status().ToString();
  EXPECT_EQ(result->attempts, 2);
  EXPECT_EQ(result->previous_head, concurrent);
  EXPECT_EQ(RemoteHead(), result->commit);
  EXPECT_EQ(Sh("git rev-parse main^", bare_).output.substr(0, 40), concurrent);
  EXPECT_EQ(RemoteFile("other/late.txt"), "pushed meanwhile\n");  // nobody's work is lost
  EXPECT_EQ(RemoteFile("deploy/web.yaml"), DeploymentYaml("web", 1, "v1 comment"));
}

TEST_F(RestoreTest, BranchThatKeepsMovingAborts) {
  GitDaemon daemon;
  ASSERT_TRUE(daemon.Start(farm_.root(), /*enable_receive_pack=*/true));
  GitSource source(Config(daemon.Url("app.git")));
  HistoryEntryContents entry = RecordFirstThenChange(source);
  int pushes = 0;
  RestoreRequest request = Request(entry);
  request.before_push = [&] {
    farm_.Commit("app.git", {{"other/n.txt", std::to_string(++pushes)}}, "busy");
  };
  auto result = source.Restore(request);
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.status().code(), StatusCode::kAborted) << result.status().ToString();
  EXPECT_EQ(pushes, 2);
  EXPECT_EQ(RemoteFile("deploy/web.yaml"), DeploymentYaml("web", 5));
}

TEST_F(RestoreTest, ReadOnlyRemoteFailsAndChangesNothing) {
  GitDaemon daemon;
  ASSERT_TRUE(daemon.Start(farm_.root(), /*enable_receive_pack=*/false));
  GitSource source(Config(daemon.Url("app.git")));
  HistoryEntryContents entry = RecordFirstThenChange(source);
  auto result = source.Restore(Request(entry));
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.status().code(), StatusCode::kPermissionDenied) << result.status().ToString();
  EXPECT_NE(result.status().message().find(daemon.Url("app.git")), std::string::npos)
      << result.status().ToString();
  EXPECT_EQ(RemoteHead(), second_);
}

TEST_F(RestoreTest, OverHttpWithCredentialsAndRefusedCredentials) {
  HttpGitServer server;
  ASSERT_TRUE(server.Start(farm_.root(), /*https=*/false)) << server.log();
  std::string good = state_ / "good";
  std::string bad = state_ / "bad";
  std::ofstream(good) << HttpGitServer::kPassword;
  std::ofstream(bad) << "expired-token";
  SourceConfig config = Config(server.Url("app.git"));
  config.remote.username = HttpGitServer::kUser;
  config.remote.password_file = good;
  GitSource source(config);
  HistoryEntryContents entry = RecordFirstThenChange(source);

  SourceConfig refused_config = config;
  refused_config.remote.password_file = bad;
  GitSource refused(refused_config);
  auto failed = refused.Restore(Request(entry));
  ASSERT_FALSE(failed.ok());
  EXPECT_EQ(failed.status().code(), StatusCode::kPermissionDenied) << failed.status().ToString();
  EXPECT_EQ(RemoteHead(), second_);

  auto result = source.Restore(Request(entry));
  ASSERT_TRUE(result.ok()) << result.status().ToString() << server.log();
  EXPECT_TRUE(result->pushed);
  EXPECT_EQ(RemoteHead(), result->commit);
  EXPECT_EQ(RemoteFile("deploy/web.yaml"), DeploymentYaml("web", 1, "v1 comment"));
}

TEST_F(RestoreTest, OverSsh) {
  testing::SshServer sshd;
  if (!sshd.Start()) {
    if (geteuid() != 0) GTEST_SKIP() << "sshd cannot run for a non-root user: " << sshd.error();
    FAIL() << sshd.error();
  }
  SourceConfig config = Config(sshd.Url(bare_));
  config.remote.ssh_key_file = sshd.client_key();
  config.remote.ssh_host_fingerprint = sshd.host_fingerprint();
  GitSource source(config);
  HistoryEntryContents entry = RecordFirstThenChange(source);
  auto result = source.Restore(Request(entry));
  ASSERT_TRUE(result.ok()) << result.status().ToString() << sshd.log();
  EXPECT_TRUE(result->pushed);
  EXPECT_EQ(RemoteHead(), result->commit);
  EXPECT_EQ(RemoteFile("deploy/web.yaml"), DeploymentYaml("web", 1, "v1 comment"));
}

TEST_F(RestoreTest, NeedsABranch) {
  farm_.Git("app.git", "tag v1");
  farm_.Git("app.git", "push -q origin v1");
  SourceConfig config = Config(bare_);
  config.ref = "v1";
  GitSource source(config);
  RestoreRequest request;
  request.entry_id = 1;
  request.files = {{"web.yaml", DeploymentYaml("web", 1)}};
  auto result = source.Restore(request);
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.status().code(), StatusCode::kFailedPrecondition) << result.status().ToString();
}

}  // namespace
}  // namespace ballast::git
