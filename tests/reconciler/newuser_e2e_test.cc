// What a first-time user checks against the README and the walkthrough in examples/repo, with
// the real `ballast serve`, `ballast agent`s and the CLI: `ballast status` names the commit it
// runs.

#include <gtest/gtest.h>

#include <string>

#include "tests/reconciler/cluster.h"

namespace ballast::reconciler::testing {
namespace {

TEST(NewUserE2E, StatusShowsTheRevisionsCommitMessage) {
  Cluster c;
  const int svc_port = git::testing::PickFreePort();
  const std::string v1 = c.Commit({{"web.yaml", WebManifest("v1", 1, svc_port)}}, "web: say v1");
  ASSERT_TRUE(c.StartServe({}));
  ASSERT_TRUE(c.StartAgents(1));
  ASSERT_TRUE(WaitFor([&] {
    Json s = c.Status();
    return !s.is_null() && s["appliedRevision"] == v1;
  })) << c.Logs();
  auto r = c.Cli("status");
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("Revision:  " + v1), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("Commit:    web: say v1"), std::string::npos) << r.output;
}

}  // namespace
}  // namespace ballast::reconciler::testing
