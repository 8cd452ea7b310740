// --log-format json end to end: every line that `ballast serve` and `ballast agent` write while
// a cluster rolls out, meets a bad commit with hostile text, a rewritten history and malformed
// requests is one JSON object with time, level and event, as a log shipper needs.

#include <gtest/gtest.h>

#include <set>
#include <sstream>

#include "tests/reconciler/cluster.h"

namespace ballast::reconciler::testing {
namespace {

// Parses each line of `path`; the one line `ballast serve` prints on stdout for scripts
// ("listening on URL") is its documented contract, not a log line. Returns the events seen.
std::multiset<std::string> ParseEveryLine(const std::string& path) {
  std::multiset<std::string> events;
  std::istringstream in(ReadFile(path));
  std::string line;
  int number = 0;
  while (std::getline(in, line)) {
    ++number;
    if (line.rfind("listening on http://", 0) == 0) continue;
    Json j = Json::parse(line, nullptr, /*allow_exceptions=*/false);
    EXPECT_TRUE(j.is_object()) << path << ":" << number << ": not JSON: " << line;
    if (!j.is_object()) continue;
    EXPECT_TRUE(j["time"].is_string()) << path << ":" << number << ": " << line;
    EXPECT_TRUE(j["level"].is_string()) << path << ":" << number << ": " << line;
    EXPECT_TRUE(j["event"].is_string()) << path << ":" << number << ": " << line;
    if (j["event"].is_string()) events.insert(j["event"].get<std::string>());
  }
  EXPECT_GT(number, 0) << path << " is empty";
  return events;
}

TEST(LogFormatE2E, EveryLineOfAJsonClusterParses) {
  Cluster c;
  c.Commit({{"web.yaml", WebManifest("v1", 2, PickFreePort())}}, "web v1");
  ASSERT_TRUE(c.StartServe({"--log-format", "json"}));
  ASSERT_TRUE(c.StartAgents(2, {"--log-format", "json", "--log-level", "debug"}));
  ASSERT_TRUE(WaitFor([&] { return c.RolledOut(2); })) << c.Logs();

  // A bad commit whose error text carries quotes, backslashes and a newline.
  const std::string bad = c.Commit(
      {{"bad.yaml", std::string("apiVersion: v1\nkind: Service\nmetadata: {name: \"a\\\"b\\\\c\"}\n"
                                "spec: {ports: [{port: \"x\\ny\"}]}\n")}},
      "bad \"quoted\" commit");
  ASSERT_TRUE(WaitFor([&] { return c.Status()["revision"] == bad; })) << c.Logs();
  // A rewritten history (force push): the source warns.
  const std::string rewritten =
      c.farm().Commit("manifests", {{"bad.yaml", std::nullopt}}, "drop bad", /*force=*/true);
  ASSERT_TRUE(WaitFor([&] { return c.Status()["revision"] == rewritten; })) << c.Logs();
  // Malformed requests.
  EXPECT_EQ(c.Post("/api/v1/sync", Json{{"dryRun", "yes\n\"no\""}})->status, 400);
  EXPECT_EQ(c.Post("/api/v1/rollback", Json{{"id", "\x01"}})->status, 400);
  ASSERT_TRUE(WaitFor([&] { return c.Status()["sync"] == "Synced"; })) << c.Logs();

  c.StopAgent(0);
  c.StopAgent(1);
  c.StopServe();
  const auto serve = ParseEveryLine(c.serve_log());
  EXPECT_TRUE(serve.count("git_history_rewritten")) << ReadFile(c.serve_log());
  const auto agent = ParseEveryLine(c.AgentLog(0));
  EXPECT_TRUE(agent.count("agent_started")) << ReadFile(c.AgentLog(0));
  ParseEveryLine(c.AgentLog(1));
}

}  // namespace
}  // namespace ballast::reconciler::testing
