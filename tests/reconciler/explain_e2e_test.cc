// What a user reads when nothing runs: `ballast get pods` shows the container's reason as kubectl
// does (CrashLoopBackOff, not "Running"), and `ballast status` says why a Deployment is not
// Healthy (the scheduler's reason for replicas no node can take); `ballast rollback ID --dry-run`
// previews a rollback against what runs now.

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
  // (Both rows are read from one output: the broken one says "0 of 1 updated replicas" until
  // its pod exists, then that none of them is available.)
  ASSERT_TRUE(WaitFor([&] {
    status = c.Cli("status").output;
    return RowOf(status, "picky").find("didn't match Pod's node affinity/selector") !=
               std::string::npos &&
           RowOf(status, "broken").find("0 of 1 updated replicas are available") !=
               std::string::npos;
  })) << status;
  EXPECT_NE(status.find("MESSAGE"), std::string::npos) << status;

  // Which runtimes a node offers is what placement filters on: `get nodes -o wide` shows it.
  std::string nodes = c.Cli("get nodes -o wide").output;
  EXPECT_NE(nodes.find("RUNTIMES"), std::string::npos) << nodes;
  EXPECT_NE(RowOf(nodes, "127.0.0.2").find(" process "), std::string::npos) << nodes;
}

TEST(ExplainE2E, RollbackDryRunShowsTheChangeAgainstWhatRunsAndChangesNothing) {
  Cluster c;
  const int svc_port = PickFreePort();
  c.Commit({{"web.yaml", WebManifest("v1", 1, svc_port)}}, "web v1");
  ASSERT_TRUE(c.StartServe({}));
  ASSERT_TRUE(c.StartAgents(1));
  ASSERT_TRUE(WaitFor([&] { return c.RolledOut(1); })) << c.Logs();
  const std::string v2 = c.Commit({{"web.yaml", WebManifest("v2", 1, svc_port)}}, "web v2");
  ASSERT_TRUE(WaitFor([&] {
    Json s = c.Status();
    return !s.is_null() && s["appliedRevision"] == v2 && c.RolledOut(1);
  })) << c.Logs();
  const auto running = c.ReadyPods();

  // The preview names the object and the field that would go back, like `ballast plan`.
  auto preview = c.Cli("rollback 1 --dry-run");
  EXPECT_EQ(preview.exit_code, 0) << preview.output;
  EXPECT_NE(preview.output.find("Rolling back to #1"), std::string::npos) << preview.output;
  EXPECT_NE(preview.output.find("+/- Deployment default/web (update"), std::string::npos)
      << preview.output;
  EXPECT_NE(preview.output.find(R"(["--message","v2"] => ["--message","v1"])"), std::string::npos)
      << preview.output;

  // ... and is only a preview: nothing pushed, nothing restarted.
  EXPECT_EQ(c.farm().Git("manifests", "ls-remote origin refs/heads/main").substr(0, 40), v2);
  EXPECT_EQ(c.ReadyPods(), running);

  // The status page links each entry's preview; the API answers JSON and plain text.
  net::HttpClient client;
  auto page = client.Get(c.url() + "/");
  ASSERT_TRUE(page.ok());
  EXPECT_NE(page->body.find("/api/v1/history/1/diff?format=text"), std::string::npos);
  Json j = c.Get("/api/v1/history/1/diff");
  ASSERT_FALSE(j.is_null());
  EXPECT_EQ(j["changed"], true);
  auto text = client.Get(c.url() + "/api/v1/history/1/diff?format=text");
  ASSERT_TRUE(text.ok());
  EXPECT_NE(text->body.find("+/- Deployment default/web (update"), std::string::npos) << text->body;
  auto missing = client.Get(c.url() + "/api/v1/history/99/diff");
  ASSERT_TRUE(missing.ok());
  EXPECT_EQ(missing->status, 404);
  EXPECT_EQ(c.Cli("rollback 99 --dry-run").exit_code, 1);
}

}  // namespace
}  // namespace ballast::reconciler::testing
