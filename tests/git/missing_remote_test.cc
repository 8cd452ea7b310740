// A local remote that is not there (a typo in --repo, the repository moved away) is named as
// missing, not as libgit2's "unsupported URL protocol"; once it is back, polling recovers.

#include <gtest/gtest.h>

#include <filesystem>

#include "sources/git/git_source.h"
#include "tests/support/git_servers.h"
#include "tests/support/manifests.h"

namespace ballast::git {
namespace {

using ballast::testing::DeploymentYaml;
using testing::RepoFarm;
using testing::TempDir;

SourceConfig Config(const std::string& url, const TempDir& state) {
  SourceConfig c;
  c.remote.url = url;
  c.ref = "main";
  c.path = "deploy";
  c.clone_dir = state.path() / "clone";
  return c;
}

TEST(MissingRemoteTest, MovedAwayRepositoryIsNamedAsMissingAndComesBack) {
  RepoFarm farm;
  TempDir state;
  const std::string bare = farm.CreateBare("app.git");
  const std::string first =
      farm.Commit("app.git", {{"deploy/web.yaml", DeploymentYaml("web", 1)}}, "first");
  GitSource source(Config(bare, state));
  ASSERT_TRUE(source.Poll().ok());

  const std::string moved = bare + ".moved";
  std::filesystem::rename(bare, moved);
  auto gone = source.Poll();
  ASSERT_FALSE(gone.ok());
  EXPECT_EQ(gone.status().code(), StatusCode::kUnavailable) << gone.status().ToString();
  EXPECT_NE(gone.status().message().find("no repository at " + bare), std::string::npos)
      << gone.status().ToString();
  EXPECT_EQ(gone.status().message().find("unsupported URL protocol"), std::string::npos)
      << gone.status().ToString();

  std::filesystem::rename(moved, bare);
  auto back = source.Poll();
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(back->commit.sha, first);
}

TEST(MissingRemoteTest, TypoInFileUrlIsNamedAsMissing) {
  TempDir state;
  const std::string nowhere = (state.path() / "no-such-repo.git").string();
  GitSource source(Config("file://" + nowhere, state));
  auto snap = source.Poll();
  ASSERT_FALSE(snap.ok());
  EXPECT_NE(snap.status().message().find("no repository at " + nowhere), std::string::npos)
      << snap.status().ToString();
}

}  // namespace
}  // namespace ballast::git
