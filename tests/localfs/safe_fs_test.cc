// The descriptor-relative file operations the agent uses in directories a pod can write: a
// symlink, a hard link or a FIFO planted where the agent expects its own file is refused or
// replaced, never written, chowned or removed through; the file it points to stays as it was.

#include "localfs/safe_fs.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "tests/support/git_servers.h"

namespace ballast::localfs {
namespace {

namespace fs = std::filesystem;
using git::testing::TempDir;

std::string Slurp(const fs::path& p) {
  std::ifstream in(p);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// A file outside the directory under attack, with content that must not change.
fs::path Victim(const TempDir& outside) {
  const fs::path victim = outside.path() / "victim";
  std::ofstream(victim) << "precious\n";
  fs::permissions(victim, fs::perms(0644), fs::perm_options::replace);
  return victim;
}

TEST(SafeFs, AppendRefusesASymlinkAHardLinkAndAFifo) {
  TempDir dir, outside;
  const fs::path victim = Victim(outside);
  auto d = OpenDir(dir.path().string());
  ASSERT_TRUE(d.ok()) << d.status().ToString();

  fs::create_symlink(victim, dir.path() / "app.log");
  auto via_symlink = OpenAppendAt(*d, "app.log", 0640);
  ASSERT_FALSE(via_symlink.ok());
  EXPECT_EQ(via_symlink.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(via_symlink.status().message().find("is a symlink"), std::string::npos)
      << via_symlink.status().message();

  fs::create_hard_link(victim, dir.path() / "linked.log");
  auto via_link = OpenAppendAt(*d, "linked.log", 0640);
  ASSERT_FALSE(via_link.ok());
  EXPECT_NE(via_link.status().message().find("hard links"), std::string::npos)
      << via_link.status().message();

  ASSERT_EQ(::mkfifo((dir.path() / "fifo.log").c_str(), 0600), 0);
  auto fifo = OpenAppendAt(*d, "fifo.log", 0640);  // returns at once, never blocks
  EXPECT_FALSE(fifo.ok());

  EXPECT_EQ(Slurp(victim), "precious\n");

  // A new file is made with exactly the mode asked for, and written to.
  auto fresh = OpenAppendAt(*d, "new.log", 0640);
  ASSERT_TRUE(fresh.ok()) << fresh.status().ToString();
  ASSERT_EQ(::write(fresh->get(), "line\n", 5), 5);
  struct stat st {};
  ASSERT_EQ(::stat((dir.path() / "new.log").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0640u);
  EXPECT_EQ(Slurp(dir.path() / "new.log"), "line\n");
}

TEST(SafeFs, DirectoriesAreNeverReachedThroughASymlink) {
  TempDir dir, outside;
  fs::create_symlink(outside.path(), dir.path() / "work");
  auto d = OpenDir(dir.path().string());
  ASSERT_TRUE(d.ok());
  auto made = MakeDirAt(*d, "work", 0700);
  ASSERT_FALSE(made.ok());
  EXPECT_NE(made.status().message().find((dir.path() / "work").string() + " is a symlink"),
            std::string::npos)
      << made.status().message();
  EXPECT_FALSE(OpenDirAt(*d, "work").ok());
  EXPECT_FALSE(OpenDir((dir.path() / "work").string()).ok());
  EXPECT_FALSE(OpenDir((dir.path() / "work").string() + "/").ok());  // not through the slash
  EXPECT_FALSE(MakeDirs((dir.path() / "work").string() + "//", 0700, 0700).ok());
  EXPECT_FALSE(MakeDirAt(*d, "../escape", 0700).ok());  // one component only
  EXPECT_TRUE(fs::is_empty(outside.path()));
}

TEST(SafeFs, RemovingATreeRemovesSymlinksNotWhatTheyPointTo) {
  TempDir dir, outside;
  const fs::path victim = Victim(outside);
  fs::create_directories(dir.path() / "pod" / "work" / "deep" / "er");
  std::ofstream(dir.path() / "pod" / "work" / "deep" / "file") << "x";
  fs::create_symlink(outside.path(), dir.path() / "pod" / "work" / "to-dir");
  fs::create_symlink(victim, dir.path() / "pod" / "work" / "deep" / "to-file");
  auto d = OpenDir(dir.path().string());
  ASSERT_TRUE(d.ok());
  ASSERT_TRUE(RemoveTreeAt(*d, "pod").ok());
  EXPECT_FALSE(fs::exists(dir.path() / "pod"));
  EXPECT_EQ(Slurp(victim), "precious\n");
  EXPECT_TRUE(RemoveTreeAt(*d, "pod").ok());  // already gone is fine
}

TEST(SafeFs, CopyReplacesASymlinkAtTheDestinationInsteadOfWritingThroughIt) {
  TempDir dir, outside;
  const fs::path victim = Victim(outside);
  std::ofstream(dir.path() / "app.log") << "log lines\n";
  fs::create_symlink(victim, dir.path() / "app.log.1");
  auto d = OpenDir(dir.path().string());
  ASSERT_TRUE(d.ok());
  auto from = OpenFileAt(*d, "app.log", O_RDONLY);
  ASSERT_TRUE(from.ok()) << from.status().ToString();
  ASSERT_TRUE(CopyToAt(from->get(), *d, "app.log.1", 0640).ok());
  EXPECT_FALSE(fs::is_symlink(dir.path() / "app.log.1"));
  EXPECT_EQ(Slurp(dir.path() / "app.log.1"), "log lines\n");
  EXPECT_EQ(Slurp(victim), "precious\n");
}

TEST(SafeFs, CheckPrivateSaysWhatItFound) {
  struct stat st {};
  st.st_uid = 65534;
  st.st_mode = S_IFDIR | 0755;
  Status other = CheckPrivate(st, "/x/work", 0);
  EXPECT_EQ(other.code(), StatusCode::kPermissionDenied);
  EXPECT_NE(other.message().find("/x/work is owned by another user (uid 65534, mode 0755)"),
            std::string::npos)
      << other.message();
  st.st_uid = 0;
  st.st_mode = S_IFDIR | 0777;
  Status writable = CheckPrivate(st, "/x/work", 0);
  EXPECT_NE(writable.message().find("writable by its group or by others (uid 0, mode 0777)"),
            std::string::npos)
      << writable.message();
  st.st_mode = S_IFDIR | 0711;
  EXPECT_TRUE(CheckPrivate(st, "/x/work", 0).ok());
}

}  // namespace
}  // namespace ballast::localfs
