#include "localfs/durable_file.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>

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
