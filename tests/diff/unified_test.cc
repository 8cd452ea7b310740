#include "diff/unified.h"

#include <gtest/gtest.h>

#include <string>

namespace ballast::diff {
namespace {

std::string Lines(int from, int to, const std::string& tag = "l") {
  std::string s;
  for (int i = from; i <= to; ++i) s += tag + std::to_string(i) + "\n";
  return s;
}

TEST(UnifiedDiff, EqualTextsGiveNothing) {
  EXPECT_EQ(UnifiedDiff("a\nb\n", "a\nb\n", "a", "b"), "");
}

TEST(UnifiedDiff, OneChangeWithThreeLinesOfContext) {
  std::string a = Lines(1, 10);
  std::string b = a;
  b.replace(b.find("l5\n"), 3, "L5\n");
  EXPECT_EQ(UnifiedDiff(a, b, "a/x", "b/x"),
            "--- a/x\n+++ b/x\n"
            "@@ -2,7 +2,7 @@\n l2\n l3\n l4\n-l5\n+L5\n l6\n l7\n l8\n");
}

TEST(UnifiedDiff, NewFileFromNothing) {
  EXPECT_EQ(UnifiedDiff("", "x\ny\n", "/dev/null", "b/x"),
            "--- /dev/null\n+++ b/x\n@@ -0,0 +1,2 @@\n+x\n+y\n");
}

TEST(UnifiedDiff, DeletedFile) {
  EXPECT_EQ(UnifiedDiff("x\n", "", "a/x", "/dev/null"),
            "--- a/x\n+++ /dev/null\n@@ -1 +0,0 @@\n-x\n");
}

TEST(UnifiedDiff, DistantChangesMakeTwoHunksCloseOnesOne) {
  std::string a = Lines(1, 30);
  std::string far = a, near = a;
  far.replace(far.find("l2\n"), 3, "X\n");
  far.replace(far.find("l25\n"), 4, "Y\n");
  std::string d = UnifiedDiff(a, far, "a", "b");
  EXPECT_NE(d.find("@@ -1,5 +1,5 @@"), std::string::npos) << d;
  EXPECT_NE(d.find("@@ -22,7 +22,7 @@"), std::string::npos) << d;
  near.replace(near.find("l10\n"), 4, "X\n");
  near.replace(near.find("l15\n"), 4, "Y\n");
  d = UnifiedDiff(a, near, "a", "b");
  EXPECT_NE(d.find("@@ -7,12 +7,12 @@"), std::string::npos) << d;
  EXPECT_EQ(d.find("\n@@ "), d.rfind("\n@@ ")) << d;  // one hunk
}

TEST(UnifiedDiff, InsertionAlignsOnCommonLines) {
  std::string a = "a\nb\nc\nd\n";
  std::string b = "a\nb\nnew\nc\nd\n";
  EXPECT_EQ(UnifiedDiff(a, b, "a", "b", 1), "--- a\n+++ b\n@@ -2,2 +2,3 @@\n b\n+new\n c\n");
}

TEST(UnifiedDiff, LastLineWithoutNewline) {
  EXPECT_EQ(UnifiedDiff("a\nb", "a\nc", "a", "b", 0), "--- a\n+++ b\n@@ -2 +2 @@\n-b\n+c\n");
}

TEST(UnifiedDiff, HugeRewritesStayBounded) {
  // 5000 x 5000 lines differ entirely: shown as removed then added, no quadratic table.
  std::string a = Lines(1, 5000, "a"), b = Lines(1, 5000, "b");
  std::string d = UnifiedDiff(a, b, "a", "b");
  EXPECT_NE(d.find("@@ -1,5000 +1,5000 @@\n-a1\n"), std::string::npos);
  EXPECT_NE(d.find("-a5000\n+b1\n"), std::string::npos);
}

}  // namespace
}  // namespace ballast::diff
