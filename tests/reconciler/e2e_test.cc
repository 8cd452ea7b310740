// End to end with the real binary: a manifest repository, `ballast serve`, three `ballast agent`s
// on 127.0.0.2-4 running `ballast demo-app` pods. What a user does: push, break, revert, roll
// back, pin, sign webhooks, sync by hand, and kill -9 the reconciler.

#include <gtest/gtest.h>
#include <openssl/hmac.h>

#include <set>

#include "tests/reconciler/cluster.h"

namespace ballast::reconciler::testing {
namespace {

using git::testing::PickFreePort;

std::string HmacHex(const std::string& key, const std::string& data) {
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char*>(data.data()), data.size(), mac, &len);
  std::string out;
  char buf[3];
  for (unsigned int i = 0; i < len; ++i) {
    std::snprintf(buf, sizeof buf, "%02x", mac[i]);
    out += buf;
  }
  return out;
}

// The agent and the demo app land in their own commits; until both are in the binary there is
// nothing to run pods with.
bool AgentAvailable() {
  return git::testing::Sh(std::string(BALLAST_BINARY) + " agent --help && " + BALLAST_BINARY +
                          " demo-app --help")
             .exit_code == 0;
}

#define REQUIRE_AGENT() \
  if (!AgentAvailable()) GTEST_SKIP() << "ballast agent / demo-app not built in"

// Fetches http://127.0.0.X:port/ through the node's Service proxy.
std::string ThroughService(const std::string& address, int port) {
  net::HttpClient client;
  auto r = client.Get("http://" + address + ":" + std::to_string(port) + "/");
  return r.ok() && r->status == 200 ? r->body : "";
}

TEST(ReconcilerE2E, PushBadCommitRevertAndRollback) {
  REQUIRE_AGENT();
  Cluster c;
  const int svc_port = PickFreePort();
  const std::string v1 = c.Commit({{"web.yaml", WebManifest("v1", 2, svc_port)}}, "web v1");
  ASSERT_TRUE(c.StartServe({}));
  ASSERT_TRUE(c.StartAgents(3));

  // The first revision rolls out and is served through every node's proxy.
  ASSERT_TRUE(WaitFor([&] { return c.RolledOut(2); })) << c.Logs();
  const std::string rev1 = c.DeploymentRevision();
  ASSERT_TRUE(WaitFor([&] { return ThroughService("127.0.0.3", svc_port).rfind("v1", 0) == 0; }))
      << c.Logs();
  EXPECT_EQ(c.Status()["revision"], v1);

  // A change: new pods ready, old ones gone.
  auto old_pods = c.ReadyPods();
  const std::string v2 = c.Commit({{"web.yaml", WebManifest("v2", 2, svc_port)}}, "web v2");
  ASSERT_TRUE(WaitFor([&] { return c.RolledOut(2) && c.DeploymentRevision() != rev1; }))
      << c.Logs();
  const std::string rev2 = c.DeploymentRevision();
  for (const auto& [name, rev] : c.ReadyPods()) EXPECT_FALSE(old_pods.count(name)) << name;
  EXPECT_TRUE(WaitFor([&] { return ThroughService("127.0.0.2", svc_port).rfind("v2", 0) == 0; }));

  // A bad commit: Error with the position, running pods untouched.
  auto running = c.ReadyPods();
  const std::string bad =
      c.Commit({{"broken.yaml", std::string("apiVersion: apps/v1\nkind: Deployment\nmetadata:\n"
                                            "  name: broken\nspec:\n  replicas: -3\n")}},
               "broken");
  ASSERT_TRUE(WaitFor([&] { return c.Status()["revision"] == bad; })) << c.Logs();
  Json st = c.Status();
  EXPECT_EQ(st["sync"], "Error");
  EXPECT_EQ(st["appliedRevision"], v2);
  ASSERT_FALSE(st["errors"].empty());
  bool positioned = false;
  for (const auto& e : st["errors"]) {
    if (e["file"] == "broken.yaml" && e["line"].get<int>() == 6 && e["column"].get<int>() > 0) {
      positioned = true;
    }
  }
  EXPECT_TRUE(positioned) << st.dump();
  auto cli = c.Cli("status");
  EXPECT_EQ(cli.exit_code, 0);
  EXPECT_NE(cli.output.find("broken.yaml:6:"), std::string::npos) << cli.output;
  std::this_thread::sleep_for(std::chrono::seconds(2));  // give a wrong apply time to show
  EXPECT_EQ(c.ReadyPods(), running);

  // The next good commit recovers by itself.
  const std::string fixed = c.Commit({{"broken.yaml", std::nullopt}}, "drop broken");
  ASSERT_TRUE(WaitFor([&] { return c.Status()["sync"] == "Synced"; })) << c.Logs();
  EXPECT_EQ(c.Status()["appliedRevision"], fixed);
  EXPECT_EQ(c.ReadyPods(), running);  // same objects: nothing restarted

  // Reverting the v2 commit in git rolls back like any other change.
  c.farm().Git("manifests", "revert --no-edit " + v2);
  c.farm().Git("manifests", "push -q origin HEAD:main");
  ASSERT_TRUE(WaitFor([&] { return c.RolledOut(2) && c.DeploymentRevision() == rev1; }))
      << c.Logs();

  // History records every applied sync, newest first.
  Json history;
  ASSERT_TRUE(WaitFor([&] {
    history = c.Get("/api/v1/history");
    return !history.is_null() && history["items"].size() >= 4;
  })) << history.dump();
  int64_t v2_entry = 0;
  for (const auto& e : history["items"]) {
    if (e["revision"] == v2) v2_entry = e["id"].get<int64_t>();
  }
  ASSERT_GT(v2_entry, 0) << history.dump();
  EXPECT_GT(history["items"][0]["id"].get<int64_t>(), history["items"][1]["id"].get<int64_t>());

  // `ballast rollback` commits the entry's files to the remote; the old revision runs again.
  cli = c.Cli("rollback " + std::to_string(v2_entry));
  ASSERT_EQ(cli.exit_code, 0) << cli.output;
  std::string head = git::testing::Sh("git --git-dir=" + c.farm().BarePath("manifests") +
                                      " log -1 --format=%s main")
                         .output;
  EXPECT_NE(head.find("Roll back to #" + std::to_string(v2_entry)), std::string::npos) << head;
  ASSERT_TRUE(WaitFor([&] { return c.RolledOut(2) && c.DeploymentRevision() == rev2; }))
      << c.Logs();
  EXPECT_TRUE(WaitFor([&] {
    Json h = c.Get("/api/v1/history");
    return !h.is_null() && h["items"][0]["trigger"] == "rollback #" + std::to_string(v2_entry);
  }));

  // The CLI lists what runs.
  cli = c.Cli("get pods -o wide");
  EXPECT_EQ(cli.exit_code, 0);
  EXPECT_NE(cli.output.find(rev2), std::string::npos) << cli.output;
  EXPECT_EQ(c.Cli("get widgets").exit_code, 2);
  // Logs come from the pod's agent.
  const std::string pod = c.ReadyPods().begin()->first;
  cli = c.Cli("logs " + pod);
  EXPECT_EQ(cli.exit_code, 0) << cli.output;
  EXPECT_NE(cli.output.find("demo-app: serving"), std::string::npos) << cli.output;
  EXPECT_NE(cli.output.find(pod), std::string::npos) << cli.output;
  EXPECT_EQ(c.Cli("logs no-such-pod").exit_code, 1);
}

TEST(ReconcilerE2E, ManualSyncTokenAndWebhookSignatures) {
  REQUIRE_AGENT();
  Cluster c;
  const int svc_port = PickFreePort();
  const std::string token = "t0ken-" + std::to_string(svc_port);
  const std::string secret = "hook-secret";
  std::ofstream(c.dir() / "token") << token << "\n";
  std::ofstream(c.dir() / "secret") << secret << "\n";
  const std::string v1 = c.Commit({{"web.yaml", WebManifest("v1", 1, svc_port)}}, "web v1");
  // Polling every hour: only webhooks (and the first poll) read the source.
  ASSERT_TRUE(c.StartServe({"--poll", "3600", "--sync", "manual", "--token-file", c.dir() / "token",
                            "--webhook-secret-file", c.dir() / "secret"}));
  ASSERT_TRUE(c.StartAgents(2, {"--token-file", c.dir() / "token"}));
  ASSERT_TRUE(WaitFor([&] { return c.Status()["revision"] == v1; })) << c.Logs();
  EXPECT_EQ(c.Status()["sync"], "OutOfSync");  // manual: nothing applied yet
  EXPECT_EQ(c.PodCount(), 0);

  // Mutating calls need the token.
  auto r = c.Post("/api/v1/sync", {{"dryRun", false}});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->status, 401);
  auto cli = c.Cli("sync");
  EXPECT_EQ(cli.exit_code, 1) << cli.output;
  cli = c.Cli("sync --dry-run --token-file " + (c.dir() / "token"));
  EXPECT_EQ(cli.exit_code, 0) << cli.output;
  EXPECT_NE(cli.output.find("Deployment default/web"), std::string::npos) << cli.output;
  cli = c.Cli("sync --token-file " + (c.dir() / "token"));
  ASSERT_EQ(cli.exit_code, 0) << cli.output;
  ASSERT_TRUE(WaitFor([&] { return c.RolledOut(1); })) << c.Logs();
  const std::string rev1 = c.DeploymentRevision();

  // A push is not seen until a webhook says so; a forged signature changes nothing.
  const std::string v2 = c.Commit({{"web.yaml", WebManifest("v2", 1, svc_port)}}, "web v2");
  const std::string payload = R"({"ref":"refs/heads/main","after":")" + v2 + R"("})";
  r = c.Post("/api/v1/webhook/git", Json::parse(payload), "",
             {{"X-Hub-Signature-256", "sha256=" + HmacHex("wrong", Json::parse(payload).dump())},
              {"X-GitHub-Event", "push"}});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->status, 401);
  r = c.Post("/api/v1/webhook/git", Json::parse(payload), "", {{"X-Gitlab-Token", "nope"}});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->status, 401);
  std::this_thread::sleep_for(std::chrono::seconds(2));
  EXPECT_EQ(c.Status()["revision"], v1);

  r = c.Post("/api/v1/webhook/git", Json::parse(payload), "",
             {{"X-Hub-Signature-256", "sha256=" + HmacHex(secret, Json::parse(payload).dump())},
              {"X-GitHub-Event", "push"}});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->status, 202);
  ASSERT_TRUE(WaitFor([&] { return c.Status()["revision"] == v2; })) << c.Logs();

  // Manual mode: the plan shows the rolling update, nothing moves until `sync`.
  Json plan = c.Get("/api/v1/plan");
  ASSERT_FALSE(plan.is_null());
  EXPECT_TRUE(plan["changed"].get<bool>()) << plan.dump();
  EXPECT_EQ(c.Status()["sync"], "OutOfSync");
  EXPECT_EQ(c.DeploymentRevision(), rev1);
  r = c.Post("/api/v1/sync", {{"dryRun", false}}, token);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->status, 200) << r->body;
  ASSERT_TRUE(WaitFor([&] { return c.RolledOut(1) && c.DeploymentRevision() != rev1; }))
      << c.Logs();
  EXPECT_TRUE(WaitFor([&] { return c.Status()["sync"] == "Synced"; }));

  // /metrics in Prometheus text format, counting the webhooks.
  net::HttpClient client;
  auto m = client.Get(c.url() + "/metrics");
  ASSERT_TRUE(m.ok());
  EXPECT_NE(m->body.find("ballast_webhook_requests_total{result=\"unauthorized\"} 2"),
            std::string::npos)
      << m->body;
  EXPECT_NE(m->body.find("# TYPE ballast_reconcile_duration_seconds histogram"), std::string::npos);
  if (git::testing::Sh("command -v promtool").exit_code == 0) {
    std::ofstream(c.dir() / "metrics.txt") << m->body;
    auto check = git::testing::Sh("promtool check metrics < " + (c.dir() / "metrics.txt"));
    EXPECT_EQ(check.exit_code, 0) << check.output;
  }
  // Secrets never reach the log.
  std::string log = ReadFile(c.serve_log());
  EXPECT_EQ(log.find(token), std::string::npos);
  EXPECT_EQ(log.find(secret), std::string::npos);
}

TEST(ReconcilerE2E, KillNineAndRestartAdoptsRunningPods) {
  REQUIRE_AGENT();
  Cluster c;
  const int svc_port = PickFreePort();
  c.Commit({{"web.yaml", WebManifest("v1", 3, svc_port)}}, "web v1");
  ASSERT_TRUE(c.StartServe({}));
  ASSERT_TRUE(c.StartAgents(3));
  ASSERT_TRUE(WaitFor([&] { return c.RolledOut(3); })) << c.Logs();
  Json before = c.Get("/api/v1/pods");

  c.KillServe();
  // Restarted on the same port: agents come back, their pods are adopted, none restarted.
  ASSERT_TRUE(c.StartServe({"--adopt-wait", "30"})) << c.Logs();
  ASSERT_TRUE(WaitFor([&] {
    Json nodes = c.Get("/api/v1/nodes");
    return !nodes.is_null() && nodes["items"].size() == 3;
  })) << c.Logs();
  ASSERT_TRUE(WaitFor([&] { return c.RolledOut(3); })) << c.Logs();
  Json after = c.Get("/api/v1/pods");
  ASSERT_EQ(after["items"].size(), before["items"].size());
  for (size_t i = 0; i < before["items"].size(); ++i) {
    EXPECT_EQ(after["items"][i]["name"], before["items"][i]["name"]);
    EXPECT_EQ(after["items"][i]["restarts"], 0);
    EXPECT_EQ(after["items"][i]["readySinceMs"], before["items"][i]["readySinceMs"]);
  }
  // History was reloaded, not restarted.
  Json history = c.Get("/api/v1/history");
  ASSERT_FALSE(history.is_null());
  EXPECT_EQ(history["items"].size(), 1u);
  EXPECT_EQ(c.Status()["sync"], "Synced");
}

TEST(ReconcilerE2E, ReadOnlyRemoteRollbackNeedsPin) {
  REQUIRE_AGENT();
  Cluster c;
  const int svc_port = PickFreePort();
  c.Commit({{"web.yaml", WebManifest("v1", 1, svc_port)}}, "web v1");
  git::testing::GitDaemon daemon;
  ASSERT_TRUE(daemon.Start(c.farm().root(), /*enable_receive_pack=*/false));
  ASSERT_TRUE(c.StartServe({}, daemon.Url("manifests")));
  ASSERT_TRUE(c.StartAgents(1));
  ASSERT_TRUE(WaitFor([&] { return c.RolledOut(1); })) << c.Logs();
  const std::string rev1 = c.DeploymentRevision();
  c.Commit({{"web.yaml", WebManifest("v2", 1, svc_port)}}, "web v2");
  ASSERT_TRUE(WaitFor([&] { return c.RolledOut(1) && c.DeploymentRevision() != rev1; }))
      << c.Logs();

  // The remote refuses pushes: rollback says so and points at --pin.
  auto cli = c.Cli("rollback 1");
  EXPECT_EQ(cli.exit_code, 1) << cli.output;
  EXPECT_NE(cli.output.find("--pin"), std::string::npos) << cli.output;

  cli = c.Cli("rollback 1 --pin");
  ASSERT_EQ(cli.exit_code, 0) << cli.output;
  ASSERT_TRUE(WaitFor([&] { return c.RolledOut(1) && c.DeploymentRevision() == rev1; }))
      << c.Logs();
  EXPECT_EQ(c.Status()["pinned"], 1);
  cli = c.Cli("status");
  EXPECT_NE(cli.output.find("Pinned:    #1"), std::string::npos) << cli.output;
  EXPECT_EQ(c.Cli("sync").exit_code, 1);  // pinned: auto-sync paused, sync refused

  cli = c.Cli("unpin");
  ASSERT_EQ(cli.exit_code, 0) << cli.output;
  EXPECT_TRUE(c.Status()["pinned"].is_null());
  ASSERT_TRUE(WaitFor([&] { return c.RolledOut(1) && c.DeploymentRevision() != rev1; }))
      << c.Logs();
}

TEST(ReconcilerE2E, LostNodeReplicasComeBackElsewhere) {
  REQUIRE_AGENT();
  Cluster c;
  const int svc_port = PickFreePort();
  c.Commit({{"web.yaml", WebManifest("v1", 3, svc_port)}}, "web v1");
  ASSERT_TRUE(c.StartServe({"--node-grace", "3", "--node-toleration", "2"}));
  ASSERT_TRUE(c.StartAgents(3));
  ASSERT_TRUE(WaitFor([&] { return c.RolledOut(3); })) << c.Logs();
  auto on_node = [&](const std::string& node) {
    int n = 0;
    Json pods = c.Get("/api/v1/pods");
    for (const auto& p : pods["items"]) n += p["node"] == node ? 1 : 0;
    return n;
  };
  // The node of the first pod ("n2".."n4" is agent 0..2).
  const std::string lost = c.Get("/api/v1/pods")["items"][0]["node"].get<std::string>();
  const size_t agent = static_cast<size_t>(lost[1] - '2');
  ASSERT_GT(on_node(lost), 0);

  // The agent of that node stops answering (frozen, as behind a partition): after the grace period
  // and the toleration its replicas run on the other nodes.
  kill(c.AgentPid(agent), SIGSTOP);
  ASSERT_TRUE(WaitFor([&] { return on_node(lost) == 0 && c.RolledOut(3); })) << c.Logs();
  Json nodes = c.Get("/api/v1/nodes");
  for (const auto& n : nodes["items"]) {
    EXPECT_EQ(n["ready"].get<bool>(), n["name"] != lost) << n.dump();
  }
  // It comes back: its old copies are surplus and stopped, three replicas stay.
  kill(c.AgentPid(agent), SIGCONT);
  ASSERT_TRUE(WaitFor([&] {
    Json ns = c.Get("/api/v1/nodes");
    for (const auto& n : ns["items"]) {
      if (!n["ready"].get<bool>()) return false;
    }
    return c.RolledOut(3);
  })) << c.Logs();
}

TEST(ReconcilerE2E, AutoRollbackWhenTheNewRevisionNeverBecomesReady) {
  REQUIRE_AGENT();
  Cluster c;
  const int svc_port = PickFreePort();
  const std::string annotation = "  annotations:\n    ballast.dev/auto-rollback: \"true\"\n";
  auto manifest = [&](const std::string& message, bool fail) {
    std::string m = WebManifest(message, 1, svc_port, annotation);
    m.replace(m.find("spec:\n  replicas:"), 17, "spec:\n  progressDeadlineSeconds: 3\n  replicas:");
    if (fail) {
      const std::string args = "\"--message\", \"" + message + "\"";
      m.replace(m.find(args), args.size(), args + ", \"--fail-readiness\"");
    }
    return m;
  };
  c.Commit({{"web.yaml", manifest("v1", false)}}, "web v1");
  ASSERT_TRUE(c.StartServe({}));
  ASSERT_TRUE(c.StartAgents(1));
  ASSERT_TRUE(WaitFor([&] { return c.RolledOut(1); })) << c.Logs();
  const std::string rev1 = c.DeploymentRevision();

  c.Commit({{"web.yaml", manifest("v2", true)}}, "web v2 (never ready)");
  // The deadline passes, ballast commits the rollback to git, and v1 runs again.
  ASSERT_TRUE(WaitFor([&] {
    std::string head = git::testing::Sh("git --git-dir=" + c.farm().BarePath("manifests") +
                                        " log -1 --format=%B main")
                           .output;
    return head.find("Roll back to #1") != std::string::npos;
  })) << c.Logs();
  ASSERT_TRUE(WaitFor([&] { return c.RolledOut(1) && c.DeploymentRevision() == rev1; }))
      << c.Logs();
  Json history = c.Get("/api/v1/history");
  ASSERT_FALSE(history.is_null());
  EXPECT_EQ(history["items"][0]["trigger"], "auto-rollback #1") << history.dump();
}

}  // namespace
}  // namespace ballast::reconciler::testing
