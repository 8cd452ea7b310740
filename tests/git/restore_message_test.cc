// The rollback commit message: what GitSource::Restore writes, byte for byte (golden files in
// tests/testdata/restore_message/), read back by the reconciler, and what is not one.

#include "sources/git/restore_message.h"

#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

namespace ballast::git {
namespace {

std::string Golden(const std::string& name) {
  std::ifstream in(std::string(BALLAST_SOURCE_DIR) + "/tests/testdata/restore_message/" + name);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

TEST(RestoreMessage, FormatIsTheGoldenTextAndParsesBack) {
  const RestoreMessage api{3, "4f2a9c1d0e5b6a7f8091a2b3c4d5e6f708192a3b", "api"};
  EXPECT_EQ(api.Format(), Golden("api.txt"));
  auto back = RestoreMessage::Parse(Golden("api.txt"));
  ASSERT_TRUE(back);
  EXPECT_EQ(back->entry_id, 3);
  EXPECT_EQ(back->source_sha, "4f2a9c1");
  EXPECT_EQ(back->requested_by, "api");
  EXPECT_FALSE(back->automatic());

  const RestoreMessage automatic{
      12, "0123456789", "auto-rollback of Deployment/default/web (ProgressDeadlineExceeded)"};
  EXPECT_EQ(automatic.Format(), Golden("auto.txt"));
  auto auto_back = RestoreMessage::Parse(Golden("auto.txt"));
  ASSERT_TRUE(auto_back);
  EXPECT_EQ(auto_back->entry_id, 12);
  EXPECT_TRUE(auto_back->automatic());
  EXPECT_EQ(RestoreMessage({1, "abc", ""}).Format(),
            "Roll back to #1 (source abc)\n\nRequested-by: unknown\n");
}

TEST(RestoreMessage, OtherMessagesAreNotRestores) {
  for (const char* m : {
           "Roll back to #3 by hand\n",
           "Revert \"Roll back to #1 (source aaaaaaa)\"\n\nRequested-by: api\n",
           "Roll back to # (source aaaaaaa)\n\nRequested-by: api\n",
           "Roll back to #0 (source aaaaaaa)\n\nRequested-by: api\n",
           "Roll back to #1 (source aaaaaaa)\n",
           "Roll back to #1 (source aaaaaaa)\n\nRequested-by: \n",
           "Roll back to #99999999999999999999 (source a)\n\nRequested-by: api\n",
           "Roll back to #1 (source a\nb)\n\nRequested-by: api\n",
           "",
       }) {
    EXPECT_FALSE(RestoreMessage::Parse(m)) << m;
  }
}

}  // namespace
}  // namespace ballast::git
