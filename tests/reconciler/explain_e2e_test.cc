// What a user reads when nothing runs: `ballast get pods` shows the container's reason as kubectl
// does (CrashLoopBackOff, not "Running"), and `ballast status` says why a Deployment is not
// Healthy (the scheduler's reason for replicas no node can take).

#include <gtest/gtest.h>

#include <sstream>
#include <string>

#include "tests/reconciler/cluster.h"

namespace ballast::reconciler::testing {
namespace {

std::string Deployment(const std::string& name, const std::string& command,
                       const std::string& pod_spec_extra) {
  return "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: " + name +
         "}\nspec:\n  replicas: 1\n  selector: {matchLabels: {app: " + name +
         "}}\n  template:\n    metadata: {labels: {app: " + name + "}}\n    spec:\n" +
         pod_spec_extra + "      containers:\n        - name: main\n          command: [\"" +
         command + "\"]\n";
}

// The row of `table` (CLI output) whose columns include `name`.
std::string RowOf(const std::string& table, const std::string& name) {
  std::istringstream in(table);
  for (std::string line; std::getline(in, line);) {
    if (line.find(" " + name) != std::string::npos) return line;
  }
  return "";
}

TEST(ExplainE2E, GetPodsAndStatusSayWhyNothingRuns) {
  Cluster c;
  c.Commit({{"broken.yaml", Deployment("broken", "no-such-program-here", "")},
            {"picky.yaml", Deployment("picky", "sleep", "      nodeSelector: {disktype: ssd}\n")}},
           "two deployments that cannot run");
  ASSERT_TRUE(c.StartServe({}));
  ASSERT_TRUE(c.StartAgents(1));

  // The missing executable: kubectl's STATUS column shows the container's reason.
  std::string pods;
  ASSERT_TRUE(WaitFor([&] {
    pods = c.Cli("get pods").output;
    return RowOf(pods, "broken-").find("CrashLoopBackOff") != std::string::npos;
  })) << pods
      << c.Logs();
  EXPECT_NE(RowOf(pods, "broken-").find(" 0/1 "), std::string::npos) << pods;

  // `ballast status` says why each Deployment is not Healthy.
  std::string status;
  ASSERT_TRUE(WaitFor([&] {
    status = c.Cli("status").output;
    return RowOf(status, "picky").find("didn't match Pod's node affinity/selector") !=
           std::string::npos;
  })) << status;
  EXPECT_NE(RowOf(status, "broken").find("0 of 1 updated replicas are available"),
            std::string::npos)
      << status;
  EXPECT_NE(status.find("MESSAGE"), std::string::npos) << status;
}

}  // namespace
}  // namespace ballast::reconciler::testing
