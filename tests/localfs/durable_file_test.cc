#include "localfs/durable_file.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <random>

#include "failpoint/failpoint.h"

#include "tests/support/git_servers.h"

namespace ballast::localfs {
namespace {

namespace fs = std::filesystem;

TEST(DurableFile, ReplacesWholeAndLeavesNoTemporaryBehind) {
  git::testing::TempDir dir;
  const fs::path file = dir.path() / "state.json";
  ASSERT_TRUE(WriteFileAtomically(file, "old").ok());
  ASSERT_TRUE(WriteFileAtomically(file, "new content").ok());
  EXPECT_EQ(*ReadSmallFile(file), "new content");
  struct stat st {};
  ASSERT_EQ(::stat(file.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  size_t entries = 0;
  for ([[maybe_unused]] const auto& e : fs::directory_iterator(dir.path())) ++entries;
  EXPECT_EQ(entries, 1u);
}

// kill -9 at random byte offsets of many writes, and right before and after the rename: the
// file always reads back whole, old or new, never torn; the temporary file a crash leaves is
// removed by the next write.
TEST(DurableFile, AKillNineAtAnyByteOfAWriteLeavesTheOldOrTheNewContent) {
  git::testing::TempDir dir;
  const fs::path file = dir.path() / "state.json";
  std::mt19937_64 rng(std::random_device{}());
  const uint64_t seed = rng();
  rng.seed(seed);
  // Two contents that differ everywhere, large enough to be written in several pieces.
  const std::string a(96 * 1024, 'a'), b = std::string(70 * 1024, 'b') + "\n";
  ASSERT_TRUE(WriteFileAtomically(file, a).ok());
  int torn_points = 0, before = 0, after = 0;
  for (int i = 0; i < 150; ++i) {
    const std::string old_content = *ReadSmallFile(file);
    const std::string& next = old_content == a ? b : a;
    std::string point;
    const int kind = static_cast<int>(rng() % 4);
    if (kind < 2) {
      point = "state-write-torn=crash-after(" + std::to_string(rng() % (next.size() + 1)) + ")";
      ++torn_points;
    } else if (kind == 2) {
      point = "state-write-before-rename=crash";
      ++before;
    } else {
      point = "state-write-after-rename=crash";
      ++after;
    }
    const pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      (void)!std::freopen("/dev/null", "w", stderr);  // "failpoint ...: crash", 150 times
      ::setenv("BALLAST_FAILPOINTS", point.c_str(), 1);
      failpoint::ReloadForTesting();
      (void)WriteFileAtomically(file, next);
      ::_exit(0);  // the failpoint never fired
    }
    int status = 0;
    ASSERT_EQ(::waitpid(pid, &status, 0), pid);
    ASSERT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL)
        << point << " (seed " << seed << "): exit status " << status;
    const std::string now = *ReadSmallFile(file);
    if (kind == 3) {
      EXPECT_EQ(now, next) << point << " (seed " << seed << ")";
    } else {
      EXPECT_EQ(now, old_content) << point << " (seed " << seed << ")";
    }
  }
  EXPECT_GT(torn_points, 0);
  EXPECT_GT(before + after, 0);
  // A crash before the rename leaves its temporary file; the next write removes it.
  ASSERT_TRUE(WriteFileAtomically(file, "last").ok());
  size_t entries = 0;
  for ([[maybe_unused]] const auto& e : fs::directory_iterator(dir.path())) ++entries;
  EXPECT_EQ(entries, 1u);
  EXPECT_EQ(*ReadSmallFile(file), "last");
}

TEST(DurableFile, ErrorsNameThePathAndLeaveTheOldContent) {
  git::testing::TempDir dir;
  const fs::path file = dir.path() / "missing-dir" / "state.json";
  Status st = WriteFileAtomically(file, "x");
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.message().find(file.parent_path().string()), std::string::npos) << st.message();

  auto absent = ReadSmallFile(dir.path() / "nothing");
  EXPECT_EQ(absent.status().code(), StatusCode::kNotFound);

  const fs::path big = dir.path() / "big";
  { std::ofstream(big) << std::string(100, 'x'); }
  EXPECT_EQ(ReadSmallFile(big, 10).status().code(), StatusCode::kResourceExhausted);

  EXPECT_TRUE(RemoveFileDurably(big).ok());
  EXPECT_FALSE(fs::exists(big));
  EXPECT_TRUE(RemoveFileDurably(big).ok());  // already gone is fine
}

}  // namespace
}  // namespace ballast::localfs
