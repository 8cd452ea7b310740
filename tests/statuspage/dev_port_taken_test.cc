// `ballast dev` when its port is taken by someone else: it stops, says which address is taken and
// which flag picks another, and leaves no process behind.

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <string>

#include "tests/git/git_servers.h"

namespace ballast {
namespace {

using git::testing::Sh;
using git::testing::TempDir;

TEST(DevPortTakenTest, SaysThePortIsTakenAndWhichFlagPicksAnother) {
  // Someone else's server on the port the playground wants.
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(fd, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = 0;
  ::inet_pton(AF_INET, "127.0.0.1", &addr.sin_addr);
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  ASSERT_EQ(::listen(fd, 16), 0);
  socklen_t len = sizeof addr;
  ASSERT_EQ(::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len), 0);
  const std::string listen = "127.0.0.1:" + std::to_string(ntohs(addr.sin_port));

  TempDir dir;
  auto r = Sh("timeout 60 " + std::string(BALLAST_BINARY) + " dev --agents 1 --listen " + listen +
              " --dir " + (dir / "dev") + " --seed " + BALLAST_SOURCE_DIR + "/examples/repo");
  ::close(fd);
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
