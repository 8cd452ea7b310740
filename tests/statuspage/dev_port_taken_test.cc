// `ballast dev` when its port is taken by someone else: it stops, says which address is taken and
// which flag picks another, and leaves no process behind.

#include <gtest/gtest.h>

#include <string>

#include "tests/support/git_servers.h"
#include "tests/support/ports.h"

namespace ballast {
namespace {

using git::testing::Sh;
using git::testing::TempDir;

TEST(DevPortTakenTest, SaysThePortIsTakenAndWhichFlagPicksAnother) {
  // Someone else's server on the port the playground wants.
  ballast::testing::SilentListener someone_else;
  ASSERT_TRUE(someone_else.ok());
  const std::string listen = someone_else.host_port();

  TempDir dir;
  auto r = Sh("timeout 60 " + std::string(BALLAST_BINARY) + " dev --agents 1 --listen " + listen +
              " --dir " + (dir / "dev") + " --seed " + BALLAST_SOURCE_DIR + "/examples/repo");
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find("ballast dev: " + listen +
                          " is taken by another process: pass --listen HOST:PORT with another "
                          "port, or --listen 127.0.0.1:0 for any free one"),
            std::string::npos)
      << r.output;
  // What it said before failing comes first.
  EXPECT_LT(r.output.find("created playground repository"), r.output.find("exited during start-up"))
      << r.output;
}

}  // namespace
}  // namespace ballast
