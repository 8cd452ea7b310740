// What a first-time user checks against the README and the walkthrough in examples/repo, with
// the real `ballast serve`, `ballast agent`s and the CLI: `ballast status` names the commit it
// runs, and warns (naming file and field) about Services that share a port.

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

TEST(NewUserE2E, StatusWarnsAboutTwoServicesOnOnePort) {
  Cluster c;
  const int svc_port = git::testing::PickFreePort();
  const std::string other =
      "apiVersion: v1\nkind: Service\nmetadata: {name: other}\nspec:\n"
      "  selector: {app: other}\n  ports:\n  - port: " +
      std::to_string(svc_port) + "\n";
  const std::string v1 =
      c.Commit({{"web.yaml", WebManifest("v1", 1, svc_port)}, {"other.yaml", other}},
               "web and other on one port");
  ASSERT_TRUE(c.StartServe({}));
  ASSERT_TRUE(WaitFor([&] {
    Json s = c.Status();
    return !s.is_null() && s["revision"] == v1;
  })) << c.Logs();
  auto r = c.Cli("status");
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("Warnings:\n  web.yaml:"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("spec.ports[0].port: port " + std::to_string(svc_port) +
                          " is also spec.ports[0].port of Service default/other (other.yaml:1:1)"),
            std::string::npos)
      << r.output;
}

}  // namespace
}  // namespace ballast::reconciler::testing
