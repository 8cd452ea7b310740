// End to end with the real binary: a manifest repository, `ballast serve`, three `ballast agent`s
// on 127.0.0.2-4 running `ballast demo-app` pods. What a user does: push, break, revert, roll
// back, pin, sign webhooks, sync by hand, and kill -9 the reconciler.

#include <gtest/gtest.h>
#include <openssl/hmac.h>

#include <filesystem>
#include <set>
#include <sstream>

#include "tests/reconciler/cluster.h"

namespace ballast::reconciler::testing {
namespace {

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

// The process id a demo-app pod answers at host:port/pid ("" when it does not answer).
std::string PodPid(const std::string& address) {
  net::HttpClient client;
  auto r = client.Get("http://" + address + "/pid");
  return r.ok() && r->status == 200 ? r->body : "";
}

// A counter or gauge without labels from /metrics (-1 when missing).
double Metric(Cluster& c, const std::string& name) {
  net::HttpClient client;
  auto m = client.Get(c.url() + "/metrics");
  if (!m.ok()) return -1;
  std::istringstream in(m->body);
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(name + " ", 0) == 0) return std::stod(line.substr(name.size() + 1));
  }
  return -1;
}
double Fetches(Cluster& c) { return Metric(c, "ballast_git_fetch_duration_seconds_count"); }

std::string RemoteFile(Cluster& c, const std::string& path) {
  return git::testing::Sh("git --git-dir=" + c.farm().BarePath("manifests") + " show main:" + path)
      .output;
}
std::string RemoteHeadMessage(Cluster& c) {
  return git::testing::Sh("git --git-dir=" + c.farm().BarePath("manifests") +
                          " log -1 --format=%B main")
      .output;
}

int64_t SteadyMs() { return PodSampler::SteadyNowMs(); }

// Pods of `web` in one listing that are not terminating, by name.
std::map<std::string, Json> LivePods(const Json& pods) {
  std::map<std::string, Json> out;
  for (const auto& p : pods) {
    if (p.value("deployment", "") == "web" && !p.value("terminating", false)) {
      out[p["name"].get<std::string>()] = p;
    }
  }
  return out;
}

// The first sample that breaks the rolling-update bounds (see BoundsViolation), "" when every
// one keeps them. Samples taken while a restarted reconciler had not heard from every node yet
// are left out; `mark_ms` (a steady-clock time) dates the one reported.
std::string BoundsBroken(const std::vector<PodSample>& samples, int replicas, int max_surge,
                         int max_unavailable, int64_t mark_ms = 0) {
  int checked = 0;
  for (const auto& s : samples) {
    if (!s.complete) continue;
    ++checked;
    std::string why = BoundsViolation(s.pods, "web", replicas, max_surge, max_unavailable);
    if (!why.empty()) {
      return why + " (sample " + std::to_string(checked) + " of " + std::to_string(samples.size()) +
             ", " + std::to_string(s.taken_ms - mark_ms) + " ms after the mark)";
    }
  }
  return checked > 0 ? "" : "no complete sample";
}

// True when some sample lists pods of both revisions that are not terminating (the poller saw
// the rollout under way, not just its ends).
bool SawMidRollout(const std::vector<PodSample>& samples, const std::string& from,
                   const std::string& to) {
  for (const auto& s : samples) {
    bool old_seen = false, new_seen = false;
    for (const auto& [name, p] : LivePods(s.pods)) {
      old_seen |= p["revision"] == from;
      new_seen |= p["revision"] == to;
    }
    if (old_seen && new_seen) return true;
  }
  return false;
}

// A table as `ballast get` / `history` / `status` print it, read as a user reads it: the
// header's words start the columns, and every row has each cell at its column's offset (a blank
// before it). Returns the rows as column -> cell; "error" holds the first misaligned line.
using Row = std::map<std::string, std::string>;
std::vector<Row> Table(const std::string& text, std::string* error) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    if (!line.empty()) lines.push_back(line);
  }
  std::vector<Row> rows;
  if (lines.empty()) {
    *error = "no table";
    return rows;
  }
  std::vector<std::pair<size_t, std::string>> columns;
  const std::string& header = lines[0];
  for (size_t i = 0; i < header.size(); ++i) {
    if (header[i] != ' ' && (i == 0 || header[i - 1] == ' ')) {
      columns.push_back({i, header.substr(i, header.find(' ', i) - i)});
    }
  }
  for (size_t l = 1; l < lines.size(); ++l) {
    const std::string& line = lines[l];
    Row row;
    for (size_t k = 0; k < columns.size(); ++k) {
      const size_t at = columns[k].first;
      const bool last = k + 1 == columns.size();
      if (at > 0 && (line.size() <= at || line[at - 1] != ' ' || line[at] == ' ')) {
        if (last && line.size() <= at) continue;  // an empty last cell is trimmed
        *error = "column " + columns[k].second + " misaligned in: " + line + "\n" + text;
        return rows;
      }
      std::string cell = last ? line.substr(at) : line.substr(at, columns[k + 1].first - at);
      while (!cell.empty() && cell.back() == ' ') cell.pop_back();
      if (!last && cell.find(' ') != std::string::npos) {
        *error = "column " + columns[k].second + " runs into the next in: " + line;
        return rows;
      }
      row[columns[k].second] = cell;
    }
    rows.push_back(std::move(row));
  }
  return rows;
}

// Runs `ballast ARGS` with `env` ("NAME=value ..." or ""), against no server unless ARGS or
// `env` name one; stdout only, or stdout and stderr with `with_stderr`.
git::testing::ShellResult Ballast(const std::string& env, const std::string& args,
                                  bool with_stderr = false) {
  return git::testing::Sh("env -u BALLAST_SERVER -u BALLAST_TOKEN " + env + " " + BALLAST_BINARY +
                          " " + args + (with_stderr ? "" : " 2>/dev/null"));
}

TEST(ReconcilerE2E, PushBadCommitRevertAndRollback) {
  REQUIRE_AGENT();
  Cluster c;
  // Three replicas, at most one more and one fewer ready during a rollout.
  WebSpec web;
  web.replicas = 3;
  web.max_surge = 1;
  web.max_unavailable = 1;
  web.service_port = PickFreePort();
  web.message = "v1";
  const std::string v1_manifest = WebManifest(web);
  const std::string v1 = c.Commit({{"web.yaml", v1_manifest}}, "web v1");
  web.message = "v2";
  const std::string v2_manifest = WebManifest(web);
  ASSERT_TRUE(c.StartServe({}));
  ASSERT_TRUE(c.StartAgents(3));

  // The first revision rolls out and is served through every node's proxy.
  ASSERT_TRUE(WaitFor([&] { return c.RolledOut(3); })) << c.Logs();
  const std::string rev1 = c.DeploymentRevision();
  ASSERT_TRUE(WaitFor([&] {
    return ThroughService("127.0.0.3", web.service_port).rfind("v1", 0) == 0;
  })) << c.Logs();
  EXPECT_EQ(c.Status()["revision"], v1);

  // From here on, what `ballast get pods` shows is sampled continuously: every rollout below
  // (push, revert, rollback) keeps the bounds, and nothing else touches a pod.
  PodSampler sampler(c.url(), 3);

  // A change: new pods ready, old ones gone.
  auto old_pods = c.ReadyPods();
  const std::string v2 = c.Commit({{"web.yaml", v2_manifest}}, "web v2");
  ASSERT_TRUE(WaitFor([&] { return c.RolledOut(3) && c.DeploymentRevision() != rev1; }))
      << c.Logs();
  const std::string rev2 = c.DeploymentRevision();
  for (const auto& [name, rev] : c.ReadyPods()) EXPECT_FALSE(old_pods.count(name)) << name;
  EXPECT_TRUE(
      WaitFor([&] { return ThroughService("127.0.0.2", web.service_port).rfind("v2", 0) == 0; }));

  // A bad commit: Error with the position, running pods untouched.
  auto running = c.ReadyPods();
  const std::string bad =
      c.Commit({{"broken.yaml", std::string("apiVersion: apps/v1\nkind: Deployment\nmetadata:\n"
                                            "  name: broken\nspec:\n  replicas: -3\n")}},
               "broken");
  ASSERT_TRUE(WaitFor([&] { return c.Status()["revision"] == bad; })) << c.Logs();
  const int64_t bad_seen_ms = SteadyMs();
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
  EXPECT_NE(cli.output.find("Sync:      Error"), std::string::npos) << cli.output;
  // Two more polls read the bad revision again; had it been applied, the pods would show it.
  const double fetches = Fetches(c);
  ASSERT_TRUE(WaitFor([&] { return Fetches(c) >= fetches + 2; })) << c.Logs();
  EXPECT_EQ(c.ReadyPods(), running);
  EXPECT_EQ(c.Status()["sync"], "Error");

  // The next good commit recovers by itself.
  const std::string fixed = c.Commit({{"broken.yaml", std::nullopt}}, "drop broken");
  ASSERT_TRUE(WaitFor([&] { return c.Status()["sync"] == "Synced"; })) << c.Logs();
  const int64_t fixed_ms = SteadyMs();
  EXPECT_EQ(c.Status()["appliedRevision"], fixed);
  EXPECT_TRUE(c.Status()["errors"].empty());
  EXPECT_EQ(c.ReadyPods(), running);  // same objects: nothing restarted

  // Reverting the v2 commit in git rolls back like any other change: v1 serves again, and
  // history records the revert.
  c.farm().Git("manifests", "revert --no-edit " + v2);
  c.farm().Git("manifests", "push -q origin HEAD:main");
  const std::string revert = c.farm().Git("manifests", "rev-parse HEAD");
  ASSERT_TRUE(WaitFor([&] { return c.RolledOut(3) && c.DeploymentRevision() == rev1; }))
      << c.Logs();
  EXPECT_TRUE(
      WaitFor([&] { return ThroughService("127.0.0.4", web.service_port).rfind("v1", 0) == 0; }));

  // History records every applied sync, newest first.
  Json history;
  ASSERT_TRUE(WaitFor([&] {
    history = c.Get("/api/v1/history");
    return !history.is_null() && history["items"].size() >= 4 &&
           history["items"][0]["revision"] == revert;
  })) << history.dump();
  int64_t v2_entry = 0;
  for (const auto& e : history["items"]) {
    if (e["revision"] == v2) v2_entry = e["id"].get<int64_t>();
    EXPECT_NE(e["revision"], bad) << "the bad revision was applied: " << history.dump();
  }
  ASSERT_GT(v2_entry, 0) << history.dump();
  EXPECT_GT(history["items"][0]["id"].get<int64_t>(), history["items"][1]["id"].get<int64_t>());

  // `ballast rollback` commits the entry's files to the remote; the old revision runs again.
  cli = c.Cli("rollback " + std::to_string(v2_entry));
  ASSERT_EQ(cli.exit_code, 0) << cli.output;
  EXPECT_NE(RemoteHeadMessage(c).find("Roll back to #" + std::to_string(v2_entry)),
            std::string::npos)
      << RemoteHeadMessage(c);
  EXPECT_EQ(RemoteFile(c, "web.yaml"), v2_manifest);
  ASSERT_TRUE(WaitFor([&] { return c.RolledOut(3) && c.DeploymentRevision() == rev2; }))
      << c.Logs();
  EXPECT_TRUE(
      WaitFor([&] { return ThroughService("127.0.0.2", web.service_port).rfind("v2", 0) == 0; }));
  EXPECT_TRUE(WaitFor([&] {
    Json h = c.Get("/api/v1/history");
    return !h.is_null() && h["items"][0]["trigger"] == "rollback #" + std::to_string(v2_entry);
  }));

  // Throughout: the bounds held, no pod restarted, no stopped pod came back, and while the bad
  // revision was the newest, the running pods stayed exactly as they were.
  auto samples = sampler.Stop();
  EXPECT_EQ(BoundsBroken(samples, 3, 1, 1), "") << c.Logs();
  EXPECT_EQ(RestartedPods(samples), "");
  EXPECT_EQ(UnstoppedPods(samples), "");
  EXPECT_TRUE(SawMidRollout(samples, rev1, rev2)) << "the poller never saw a rollout under way";
  std::set<std::string> running_names;
  for (const auto& [name, rev] : running) running_names.insert(name);
  for (const auto& s : samples) {
    if (s.taken_ms < bad_seen_ms || s.taken_ms > fixed_ms) continue;
    std::set<std::string> names;
    for (const auto& [name, p] : LivePods(s.pods)) names.insert(name);
    ASSERT_EQ(names, running_names) << "pods changed while the bad revision was newest";
  }
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
  // Reads are open to anyone here (--anonymous viewer, secret values redacted); changes are not.
  ASSERT_TRUE(c.StartServe({"--poll", "3600", "--sync", "manual", "--token-file", c.dir() / "token",
                            "--webhook-secret-file", c.dir() / "secret", "--anonymous", "viewer"}));
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
  // The plan first: what applying would create; nothing moves.
  cli = c.Cli("plan");
  EXPECT_EQ(cli.exit_code, 1) << cli.output;  // 1: there are changes (as `kubectl diff`)
  EXPECT_NE(cli.output.find("Deployment default/web"), std::string::npos) << cli.output;
  cli = c.Cli("sync --dry-run --token-file " + (c.dir() / "token"));
  EXPECT_EQ(cli.exit_code, 0) << cli.output;
  EXPECT_NE(cli.output.find("Deployment default/web"), std::string::npos) << cli.output;
  EXPECT_EQ(c.PodCount(), 0);
  EXPECT_EQ(c.Get("/api/v1/history")["items"].size(), 0u);
  cli = c.Cli("sync --token-file " + (c.dir() / "token"));
  ASSERT_EQ(cli.exit_code, 0) << cli.output;
  ASSERT_TRUE(WaitFor([&] { return c.RolledOut(1); })) << c.Logs();
  const std::string rev1 = c.DeploymentRevision();
  EXPECT_TRUE(WaitFor([&] { return c.Cli("plan").exit_code == 0; }));  // nothing left to do

  // A push is not seen until a webhook says so; forged ones are refused and refresh nothing.
  const std::string v2 = c.Commit({{"web.yaml", WebManifest("v2", 1, svc_port)}}, "web v2");
  const std::string payload =
      Json::parse(R"({"ref":"refs/heads/main","after":")" + v2 + R"("})").dump();
  const double fetches = Fetches(c);
  ASSERT_GT(fetches, 0);
  const std::vector<net::Headers> forged = {
      {{"X-Hub-Signature-256", "sha256=" + HmacHex("wrong", payload)}, {"X-GitHub-Event", "push"}},
      {{"X-Hub-Signature-256", "sha256=" + HmacHex(secret, payload + " ")},
       {"X-GitHub-Event", "push"}},
      {{"X-Gitea-Signature", HmacHex("wrong", payload)}, {"X-Gitea-Event", "push"}},
      {{"X-Gitlab-Token", "nope"}, {"X-Gitlab-Event", "Push Hook"}},
      {{"X-GitHub-Event", "push"}},  // unsigned
  };
  for (const auto& headers : forged) {
    r = c.Post("/api/v1/webhook/git", Json::parse(payload), "", headers);
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(r->status, 401) << headers.begin()->first;
  }
  // Larger than the cap (1 MiB): refused before anything is checked, with 413 (or, when the
  // server closes before the client has written it all, a reset connection).
  r = c.Post("/api/v1/webhook/git", Json{{"pad", std::string(size_t{1} << 21, 'x')}}, "",
             {{"X-GitHub-Event", "push"}});
  if (r.ok()) {
    EXPECT_EQ(r->status, 413);
  }
  // A refresh would start at once; give one the time to finish, then nothing was fetched.
  std::this_thread::sleep_for(std::chrono::seconds(1));
  EXPECT_EQ(Fetches(c), fetches);
  EXPECT_EQ(c.Status()["revision"], v1);

  // Signed with the secret: accepted, the source is read at once.
  r = c.Post(
      "/api/v1/webhook/git", Json::parse(payload), "",
      {{"X-Hub-Signature-256", "sha256=" + HmacHex(secret, payload)}, {"X-GitHub-Event", "push"}});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->status, 202);
  ASSERT_TRUE(WaitFor([&] { return c.Status()["revision"] == v2; })) << c.Logs();
  // GitLab's token and Gitea's signature are accepted too.
  for (const net::Headers& headers :
       {net::Headers{{"X-Gitlab-Token", secret}, {"X-Gitlab-Event", "Push Hook"}},
        net::Headers{{"X-Gitea-Signature", HmacHex(secret, payload)}, {"X-Gitea-Event", "push"}}}) {
    const double before = Fetches(c);
    r = c.Post("/api/v1/webhook/git", Json::parse(payload), "", headers);
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(r->status, 202) << headers.begin()->first;
    EXPECT_TRUE(WaitFor([&] { return Fetches(c) > before; })) << headers.begin()->first;
  }

  // Manual mode: the plan shows the rolling update, nothing moves until `sync`.
  Json plan = c.Get("/api/v1/plan");
  ASSERT_FALSE(plan.is_null());
  EXPECT_TRUE(plan["changed"].get<bool>()) << plan.dump();
  cli = c.Cli("plan");
  EXPECT_EQ(cli.exit_code, 1) << cli.output;
  EXPECT_NE(cli.output.find("Deployment default/web"), std::string::npos) << cli.output;
  // One renderer: the page shows the document's text, which is what `ballast plan` prints.
  EXPECT_EQ(plan["text"].get<std::string>(), cli.output);
  EXPECT_EQ(c.Status()["sync"], "OutOfSync");
  EXPECT_EQ(c.DeploymentRevision(), rev1);
  r = c.Post("/api/v1/sync", {{"dryRun", false}}, token);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->status, 200) << r->body;
  ASSERT_TRUE(WaitFor([&] { return c.RolledOut(1) && c.DeploymentRevision() != rev1; }))
      << c.Logs();
  EXPECT_TRUE(WaitFor([&] { return c.Status()["sync"] == "Synced"; }));
  EXPECT_TRUE(WaitFor([&] { return ThroughService("127.0.0.2", svc_port).rfind("v2", 0) == 0; }));
  Json history;
  EXPECT_TRUE(WaitFor([&] {
    history = c.Get("/api/v1/history");
    return !history.is_null() && history["items"].size() == 2 &&
           history["items"][0]["revision"] == v2;
  })) << history.dump();

  // /metrics in Prometheus text format, counting the webhooks.
  net::HttpClient client;
  auto m = client.Get(c.url() + "/metrics");
  ASSERT_TRUE(m.ok());
  EXPECT_NE(m->body.find("ballast_webhook_requests_total{result=\"unauthorized\"} 5"),
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

TEST(ReconcilerE2E, KillNineMidRolloutRestartsNoPodAndFinishesTheRollout) {
  REQUIRE_AGENT();
  Cluster c;
  // Four replicas replaced one at a time (maxSurge 1, maxUnavailable 0); the new revision's pods
  // take two seconds to become ready, so the rollout is caught half-way.
  WebSpec web;
  web.replicas = 4;
  web.service_port = PickFreePort();
  web.message = "v1";
  c.Commit({{"web.yaml", WebManifest(web)}}, "web v1");
  ASSERT_TRUE(c.StartServe({}));
  ASSERT_TRUE(c.StartAgents(3));
  ASSERT_TRUE(WaitFor([&] { return c.RolledOut(4); })) << c.Logs();
  const std::string rev1 = c.DeploymentRevision();

  PodSampler sampler(c.url(), 3);
  web.message = "v2";
  web.app_args = {"--ready-after", "2"};
  const std::string v2 = c.Commit({{"web.yaml", WebManifest(web)}}, "web v2");

  // Half-way: a new pod ready, another new one running but not ready yet, and at least two old
  // ones still serving.
  std::string rev2;
  Json at_kill;
  ASSERT_TRUE(WaitFor([&] {
    rev2 = c.DeploymentRevision();
    Json pods = c.Get("/api/v1/pods");
    if (rev2.empty() || rev2 == rev1 || pods.is_null()) return false;
    int new_ready = 0, new_starting = 0, old_ready = 0;
    for (const auto& [name, p] : LivePods(pods["items"])) {
      const bool ready = p["ready"].get<bool>();
      if (p["revision"] == rev2) {
        new_ready += ready ? 1 : 0;
        new_starting += !ready && p["phase"] == "Running" ? 1 : 0;
      } else if (p["revision"] == rev1) {
        old_ready += ready ? 1 : 0;
      }
    }
    if (new_ready >= 1 && new_starting >= 1 && old_ready >= 2) {
      at_kill = pods["items"];
      return true;
    }
    return false;
  })) << c.Logs();
  c.KillServe();
  const int64_t kill_ms = SteadyMs();

  // What ran at that moment, asked from each pod's own process.
  std::map<std::string, std::string> pid_at_kill;  // pods the agents had reported
  std::set<std::string> pending_at_kill;           // decided, not reported yet
  for (const auto& [name, p] : LivePods(at_kill)) {
    if (p["phase"] == "Pending") {
      pending_at_kill.insert(name);
      continue;
    }
    // (A pod that just started may take a moment to listen.)
    std::string& pid = pid_at_kill[name];
    const std::string address = p["address"].get<std::string>();
    EXPECT_TRUE(WaitFor([&] { return !(pid = PodPid(address)).empty(); }, std::chrono::seconds(10)))
        << p.dump();
  }

  // Restarted on the same port: agents report back, the pods are adopted and the rollout goes
  // on from where it stood.
  ASSERT_TRUE(c.StartServe({})) << c.Logs();
  ASSERT_TRUE(WaitFor([&] { return c.RolledOut(4) && c.DeploymentRevision() == rev2; }))
      << c.Logs();
  auto samples = sampler.Stop();
  Json after = c.Get("/api/v1/pods")["items"];

  // No pod restarted: every new pod that ran at the kill still runs, the same process.
  for (const auto& [name, pid] : pid_at_kill) {
    bool is_new = false;
    for (const auto& p : at_kill) is_new |= p["name"] == name && p["revision"] == rev2;
    if (!is_new) continue;
    bool found = false;
    for (const auto& p : after) {
      if (p["name"] != name) continue;
      found = true;
      EXPECT_EQ(PodPid(p["address"].get<std::string>()), pid) << name;
      EXPECT_EQ(p["restarts"], 0) << p.dump();
    }
    EXPECT_TRUE(found) << name << " (running at the kill) is gone: " << after.dump();
  }
  EXPECT_EQ(RestartedPods(samples), "");
  // Old pods are only ever stopped, never started again; new ones are started only for the
  // replicas still missing at the kill.
  std::set<std::string> listed_at_kill, new_names, old_started;
  for (const auto& p : at_kill) listed_at_kill.insert(p["name"].get<std::string>());
  for (const auto& s : samples) {
    for (const auto& p : s.pods) {
      const std::string name = p["name"].get<std::string>();
      if (p["revision"] == rev2) new_names.insert(name);
      if (s.taken_ms > kill_ms && p["revision"] == rev1 && !listed_at_kill.count(name)) {
        old_started.insert(name);
      }
    }
  }
  EXPECT_TRUE(old_started.empty())
      << "old-revision pods started after the kill: " << *old_started.begin();
  EXPECT_LE(new_names.size(), 4 + pending_at_kill.size());
  // The bounds held across the restart, whenever the reconciler had heard from every node.
  EXPECT_EQ(BoundsBroken(samples, 4, 1, 0, kill_ms), "") << c.Logs();

  // History was reloaded, not restarted: v1 and v2, nothing applied twice.
  Json history = c.Get("/api/v1/history");
  ASSERT_FALSE(history.is_null());
  ASSERT_EQ(history["items"].size(), 2u) << history.dump();
  EXPECT_EQ(history["items"][0]["revision"], v2);
  EXPECT_TRUE(WaitFor([&] { return c.Status()["sync"] == "Synced"; }));
  EXPECT_TRUE(WaitFor([&] { return c.Status()["health"] == "Healthy"; }));
  EXPECT_TRUE(
      WaitFor([&] { return ThroughService("127.0.0.3", web.service_port).rfind("v2", 0) == 0; }));
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
  EXPECT_EQ(c.Get("/api/v1/plan")["pinned"], 1);
  cli = c.Cli("plan");
  EXPECT_NE(cli.output.find("Pinned to history entry #1"), std::string::npos) << cli.output;
  EXPECT_EQ(c.Cli("sync").exit_code, 1);  // pinned: auto-sync paused, sync refused

  // A push while pinned is read but not applied.
  const std::string v3 = c.Commit({{"web.yaml", WebManifest("v3", 1, svc_port)}}, "web v3");
  ASSERT_TRUE(WaitFor([&] { return c.Status()["revision"] == v3; })) << c.Logs();
  const double fetches = Fetches(c);
  ASSERT_TRUE(WaitFor([&] { return Fetches(c) >= fetches + 2; })) << c.Logs();
  EXPECT_EQ(c.DeploymentRevision(), rev1);
  EXPECT_EQ(c.Status()["pinned"], 1);

  cli = c.Cli("unpin");
  ASSERT_EQ(cli.exit_code, 0) << cli.output;
  EXPECT_TRUE(c.Status()["pinned"].is_null());
  ASSERT_TRUE(WaitFor([&] { return c.RolledOut(1) && c.DeploymentRevision() != rev1; }))
      << c.Logs();
  EXPECT_TRUE(WaitFor([&] { return ThroughService("127.0.0.2", svc_port).rfind("v3", 0) == 0; }));
  EXPECT_EQ(c.Cli("status").output.find("Pinned:"), std::string::npos);
  EXPECT_EQ(c.Cli("plan").output.find("Pinned"), std::string::npos);
}

TEST(ReconcilerE2E, KilledAgentsReplicasComeBackOnTheOthers) {
  REQUIRE_AGENT();
  Cluster c;
  const int svc_port = PickFreePort();
  c.Commit({{"web.yaml", WebManifest("v1", 3, svc_port)}}, "web v1");
  const int grace_s = 3, toleration_s = 2;
  ASSERT_TRUE(c.StartServe({"--node-grace", std::to_string(grace_s), "--node-toleration",
                            std::to_string(toleration_s)}));
  ASSERT_TRUE(c.StartAgents(3));
  ASSERT_TRUE(WaitFor([&] { return c.RolledOut(3); })) << c.Logs();
  // The node of the first pod ("n2".."n4" is agent 0..2).
  const Json first = c.Get("/api/v1/pods")["items"][0];
  const std::string lost = first["node"].get<std::string>();
  const size_t agent = static_cast<size_t>(lost[1] - '2');
  std::set<std::string> lost_pods;
  std::map<std::string, std::string> lost_addresses;
  const Json listed = c.Get("/api/v1/pods");
  for (const auto& p : listed["items"]) {
    if (p["node"] != lost) continue;
    lost_pods.insert(p["name"].get<std::string>());
    lost_addresses[p["name"].get<std::string>()] = p["address"].get<std::string>();
    EXPECT_NE(PodPid(p["address"].get<std::string>()), "");
  }
  ASSERT_FALSE(lost_pods.empty());

  // kill -9 of that node's agent: nobody reports its pods any more. After the grace period the
  // node is NotReady, after the toleration its replicas run on the other nodes.
  PodSampler sampler(c.url(), 3);
  c.KillAgent(agent);
  auto on_node = [&](const std::string& node) {
    int n = 0;
    Json pods = c.Get("/api/v1/pods");
    for (const auto& p : pods["items"]) n += p["node"] == node ? 1 : 0;
    return n;
  };
  ASSERT_TRUE(WaitFor([&] { return on_node(lost) == 0 && c.RolledOut(3); })) << c.Logs();
  Json nodes = c.Get("/api/v1/nodes");
  for (const auto& n : nodes["items"]) {
    EXPECT_EQ(n["ready"].get<bool>(), n["name"] != lost) << n.dump();
  }
  std::string error;
  for (const auto& row : Table(c.Cli("get nodes").output, &error)) {
    EXPECT_EQ(row.at("STATUS"), row.at("NAME") == lost ? "NotReady" : "Ready");
  }
  EXPECT_EQ(error, "");
  // The Service answers through the proxies of the nodes that are left.
  const std::string other = lost == "n2" ? "127.0.0.3" : "127.0.0.2";
  EXPECT_TRUE(WaitFor([&] { return ThroughService(other, svc_port).rfind("v1", 0) == 0; }));
  // Not before the toleration: while the node was Ready, and for the toleration after it was
  // last seen Ready, its pods were listed where they ran. (Dated by when each sample was asked
  // for, so a slow answer cannot make this fail.)
  auto samples = sampler.Stop();
  auto node_ready = [&](const PodSample& s) {
    for (const auto& n : s.nodes) {
      if (n["name"] == lost) return n["ready"].get<bool>();
    }
    return false;
  };
  int64_t last_ready_asked_ms = 0;
  for (const auto& s : samples) {
    if (node_ready(s)) last_ready_asked_ms = s.asked_ms;
  }
  ASSERT_GT(last_ready_asked_ms, 0);
  int held = 0;
  for (const auto& s : samples) {
    if (s.taken_ms >= last_ready_asked_ms + toleration_s * 1000) break;
    ++held;
    std::set<std::string> listed;
    for (const auto& p : s.pods) {
      if (p["node"] == lost) listed.insert(p["name"].get<std::string>());
    }
    ASSERT_EQ(listed, lost_pods) << "replicas moved before the toleration: " << s.pods.dump();
  }
  EXPECT_GT(held, 0);

  // The agent comes back (same name and work directory): it finds its old pods still running,
  // they are surplus now and stopped; three replicas stay, every node Ready.
  ASSERT_TRUE(c.StartAgent(agent));
  ASSERT_TRUE(WaitFor([&] {
    Json ns = c.Get("/api/v1/nodes");
    for (const auto& n : ns["items"]) {
      if (!n["ready"].get<bool>()) return false;
    }
    if (!c.RolledOut(3)) return false;
    const Json now = c.Get("/api/v1/pods");
    for (const auto& p : now["items"]) {
      if (lost_pods.count(p["name"].get<std::string>())) return false;
    }
    return true;
  })) << c.Logs();
  // Their processes are gone too, not just unlisted (each within its stop's grace period: the
  // agent reports a pod gone once it has signalled it, and a loaded machine may take a moment).
  for (const auto& [name, address] : lost_addresses) {
    std::string pid;
    EXPECT_TRUE(WaitFor([&] { return (pid = PodPid(address)).empty(); }, std::chrono::seconds(35)))
        << name << " still answers at " << address << " (pid " << pid << ")";
  }
}

TEST(ReconcilerE2E, AutoRollbackWhenTheNewRevisionNeverBecomesReady) {
  REQUIRE_AGENT();
  Cluster c;
  WebSpec web;
  web.replicas = 2;
  web.service_port = PickFreePort();
  web.annotations = "    ballast.dev/auto-rollback: \"true\"\n";
  web.progress_deadline_seconds = 3;
  web.message = "v1";
  const std::string v1_manifest = WebManifest(web);
  c.Commit({{"web.yaml", v1_manifest}}, "web v1");
  ASSERT_TRUE(c.StartServe({}));
  ASSERT_TRUE(c.StartAgents(2));
  ASSERT_TRUE(WaitFor([&] { return c.RolledOut(2); })) << c.Logs();
  const std::string rev1 = c.DeploymentRevision();

  PodSampler sampler(c.url(), 2);
  web.message = "v2";
  web.app_args = {"--fail-readiness"};
  c.Commit({{"web.yaml", WebManifest(web)}}, "web v2 (never ready)");
  // The deadline passes: the Deployment shows it, ballast commits the rollback to git (the
  // files of v1 again), and v1 runs again.
  ASSERT_TRUE(WaitFor([&] {
    return RemoteHeadMessage(c).find("Roll back to #1") != std::string::npos;
  })) << c.Logs();
  EXPECT_EQ(RemoteFile(c, "web.yaml"), v1_manifest);
  ASSERT_TRUE(WaitFor([&] { return c.RolledOut(2) && c.DeploymentRevision() == rev1; }))
      << c.Logs();
  Json history;
  EXPECT_TRUE(WaitFor([&] {
    history = c.Get("/api/v1/history");
    return !history.is_null() && history["items"][0]["trigger"] == "auto-rollback #1";
  })) << history.dump();
  // Throughout, the old pods kept serving: two ready, at most three pods.
  auto samples = sampler.Stop();
  EXPECT_EQ(BoundsBroken(samples, 2, 1, 0), "") << c.Logs();
  EXPECT_EQ(RestartedPods(samples), "");
  EXPECT_TRUE(ThroughService("127.0.0.2", web.service_port).rfind("v1", 0) == 0);
}

// Newest commit wins: a revision whose pods never become Ready (and no auto-rollback) does not
// hold the next one back until its progress deadline (ten minutes by default): the fixing
// commit is planned against the live state as soon as it is fetched and rolls out, the stuck
// pod is stopped, and the old pods served throughout.
TEST(ReconcilerE2E, AFixingCommitRollsOutWithoutWaitingForAStuckRollout) {
  REQUIRE_AGENT();
  Cluster c;
  WebSpec web;
  web.replicas = 2;
  web.service_port = PickFreePort();
  web.message = "v1";
  c.Commit({{"web.yaml", WebManifest(web)}}, "web v1");
  ASSERT_TRUE(c.StartServe({}));
  ASSERT_TRUE(c.StartAgents(2));
  ASSERT_TRUE(WaitFor([&] { return c.RolledOut(2); })) << c.Logs();
  const std::string rev1 = c.DeploymentRevision();

  PodSampler sampler(c.url(), 2);
  web.message = "v2";
  web.app_args = {"--fail-readiness"};
  c.Commit({{"web.yaml", WebManifest(web)}}, "web v2 (never ready)");
  std::string rev2;
  ASSERT_TRUE(WaitFor([&] {
    rev2 = c.DeploymentRevision();
    return rev2 != rev1 && !rev2.empty() && c.PodCount() == 3;  // the surge pod, not Ready
  })) << c.Logs();
  web.message = "v3";
  web.app_args = {};
  c.Commit({{"web.yaml", WebManifest(web)}}, "web v3 (the fix)");
  ASSERT_TRUE(WaitFor([&] {
    const std::string rev = c.DeploymentRevision();
    return rev != rev1 && rev != rev2 && c.RolledOut(2) &&
           ThroughService("127.0.0.2", web.service_port).rfind("v3", 0) == 0;
  })) << c.Logs();
  auto samples = sampler.Stop();
  EXPECT_EQ(BoundsBroken(samples, 2, 1, 0), "") << c.Logs();
  EXPECT_EQ(RestartedPods(samples), "");
}

// The CLI as a user runs it against a live cluster: every client subcommand, its columns, its
// exit codes (0 success, 1 failure, 2 usage), --server / BALLAST_SERVER and --token-file /
// BALLAST_TOKEN; then the git remote goes away and comes back.
TEST(ReconcilerE2E, CliAgainstARunningCluster) {
  REQUIRE_AGENT();
  Cluster c;
  const int svc_port = PickFreePort();
  const std::string token = "cli-t0ken-" + std::to_string(svc_port);
  const std::string token_file = c.dir() / "token";
  std::ofstream(token_file) << token << "\n";
  const std::string v1 = c.Commit({{"web.yaml", WebManifest("v1", 2, svc_port)}}, "web v1");
  ASSERT_TRUE(c.StartServe({"--token-file", token_file, "--anonymous", "viewer"}));
  ASSERT_TRUE(c.StartAgents(3, {"--token-file", token_file}));
  ASSERT_TRUE(WaitFor([&] { return c.RolledOut(2); })) << c.Logs();
  ASSERT_TRUE(WaitFor([&] { return c.Status()["health"] == "Healthy"; })) << c.Logs();
  const std::string rev = c.DeploymentRevision();
  const std::string server = "--server " + c.url();
  const std::string env = "BALLAST_SERVER=" + c.url();
  std::string error;

  // status: the revision, sync and health, and each object in an aligned table.
  auto r = Ballast(env, "status");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("Revision:  " + v1), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("Sync:      Synced (auto)"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("Health:    Healthy"), std::string::npos) << r.output;
  auto rows = Table(r.output.substr(r.output.find("KIND")), &error);
  ASSERT_EQ(error, "");
  ASSERT_EQ(rows.size(), 2u) << r.output;
  EXPECT_EQ(rows[0]["KIND"], "Deployment");
  EXPECT_EQ(rows[0]["NAME"], "web");
  EXPECT_EQ(rows[0]["SYNC"], "Synced");
  EXPECT_EQ(rows[0]["HEALTH"], "Healthy");
  EXPECT_EQ(rows[1]["KIND"], "Service");
  r = Ballast("", "status -o json " + server);
  ASSERT_EQ(r.exit_code, 0);
  EXPECT_EQ(Json::parse(r.output)["revision"], v1);

  // get: as kubectl lists them.
  r = Ballast(env, "get deployments");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  rows = Table(r.output, &error);
  ASSERT_EQ(error, "");
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0], (Row{{"NAMESPACE", "default"},
                          {"NAME", "web"},
                          {"READY", "2/2"},
                          {"UP-TO-DATE", "2"},
                          {"AVAILABLE", "2"},
                          {"SYNC", "Synced"},
                          {"HEALTH", "Healthy"}}));
  r = Ballast(env, "get deploy -o wide");
  rows = Table(r.output, &error);
  ASSERT_EQ(error, "");
  EXPECT_EQ(rows.at(0)["REVISION"], rev);

  r = Ballast(env, "get pods -o wide");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  rows = Table(r.output, &error);
  ASSERT_EQ(error, "");
  ASSERT_EQ(rows.size(), 2u) << r.output;
  Json pods = c.Get("/api/v1/pods")["items"];
  for (size_t i = 0; i < rows.size(); ++i) {
    EXPECT_EQ(rows[i]["NAME"], pods[i]["name"]);
    EXPECT_EQ(rows[i]["READY"], "1/1");
    EXPECT_EQ(rows[i]["STATUS"], "Running");
    EXPECT_EQ(rows[i]["RESTARTS"], "0");
    EXPECT_EQ(rows[i]["NODE"], pods[i]["node"]);
    EXPECT_EQ(rows[i]["ADDRESS"], pods[i]["address"]);
    EXPECT_EQ(rows[i]["REVISION"], rev);
  }
  r = Ballast(env, "get pods");
  rows = Table(r.output, &error);
  ASSERT_EQ(error, "");
  EXPECT_EQ(rows.at(0).count("ADDRESS"), 0u);

  r = Ballast(env, "get nodes");
  rows = Table(r.output, &error);
  ASSERT_EQ(error, "");
  ASSERT_EQ(rows.size(), 3u) << r.output;
  for (size_t i = 0; i < 3; ++i) {
    EXPECT_EQ(rows[i]["NAME"], "n" + std::to_string(i + 2));
    EXPECT_EQ(rows[i]["STATUS"], "Ready");
    EXPECT_EQ(rows[i]["ADDRESS"], "127.0.0." + std::to_string(i + 2));
  }
  r = Ballast(env, "get no -o wide");
  rows = Table(r.output, &error);
  ASSERT_EQ(error, "");
  EXPECT_NE(rows.at(0)["LAST-HEARTBEAT"], "");

  r = Ballast(env, "get svc -o wide");
  rows = Table(r.output, &error);
  ASSERT_EQ(error, "") << r.output;
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0]["NAME"], "web");
  EXPECT_EQ(rows[0]["TYPE"], "ClusterIP");
  EXPECT_EQ(rows[0]["CLUSTER-IP"], c.Get("/api/v1/services")["items"][0]["clusterIP"]);
  EXPECT_EQ(rows[0]["CLUSTER-IP"].rfind("127.", 0), 0u) << rows[0]["CLUSTER-IP"];
  EXPECT_EQ(rows[0]["PORTS"], std::to_string(svc_port) + "/TCP");
  EXPECT_EQ(rows[0]["ENDPOINTS"], "2");
  std::set<std::string> addresses = {pods[0]["address"].get<std::string>(),
                                     pods[1]["address"].get<std::string>()};
  EXPECT_EQ(rows[0]["ADDRESSES"], *addresses.begin() + "," + *addresses.rbegin());

  for (const std::string kind : {"deployments", "services", "pods", "nodes"}) {
    r = Ballast(env, "get " + kind + " -o json");
    ASSERT_EQ(r.exit_code, 0) << kind;
    EXPECT_TRUE(Json::parse(r.output)["items"].is_array()) << kind;
  }

  // history: one applied sync.
  r = Ballast(env, "history");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  rows = Table(r.output, &error);
  ASSERT_EQ(error, "");
  ASSERT_EQ(rows.size(), 1u) << r.output;
  EXPECT_EQ(rows[0]["ID"], "1");
  EXPECT_EQ(rows[0]["REVISION"], v1.substr(0, 12));
  EXPECT_EQ(rows[0]["MESSAGE"], "web v1");

  // plan: nothing to change (exit 0), with the server from the environment.
  r = Ballast(env, "plan");
  EXPECT_EQ(r.exit_code, 0) << r.output;

  // sync needs the token: from --token-file or BALLAST_TOKEN.
  r = Ballast(env, "sync", true);
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find("401"), std::string::npos) << r.output;
  r = Ballast(env, "sync --token-file " + token_file);
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find(v1), std::string::npos) << r.output;
  r = Ballast(env + " BALLAST_TOKEN=" + token, "sync --dry-run");
  EXPECT_EQ(r.exit_code, 0) << r.output;
  r = Ballast(env + " BALLAST_TOKEN=" + token, "rollback 99", true);
  EXPECT_EQ(r.exit_code, 1) << r.output;
  r = Ballast(env + " BALLAST_TOKEN=" + token, "unpin");
  EXPECT_EQ(r.exit_code, 0) << r.output;

  // logs: from the pod's agent; -f keeps following until stopped.
  const std::string pod = pods[0]["name"].get<std::string>();
  r = Ballast(env, "logs " + pod);
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("demo-app: serving"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find(pod), std::string::npos) << r.output;
  r = Ballast(env, "logs -f " + pod + " & sleep 2; kill $!; wait $! || true");
  EXPECT_NE(r.output.find("demo-app: serving"), std::string::npos) << r.output;
  r = Ballast(env, "logs no-such-pod", true);
  EXPECT_EQ(r.exit_code, 1) << r.output;

  // Exit codes: 2 for a usage error, 1 for a failure.
  for (const std::string usage :
       {"", "nonsense", "status extra", "status -o yaml", "get", "get widgets", "get pods -o yaml",
        "get pods nodes", "rollback", "rollback abc", "rollback 0", "unpin now", "history x",
        "logs", "sync --bogus", "status --server not-a-url",
        "status --token-file /nonexistent/token"}) {
    r = Ballast(env, usage, true);
    EXPECT_EQ(r.exit_code, 2) << "ballast " << usage << "\n" << r.output;
  }
  for (const std::string& what :
       std::vector<std::string>{"status", "get pods", "history", "sync", "logs " + pod, "plan"}) {
    r = Ballast("BALLAST_SERVER=http://127.0.0.1:1", what, true);
    EXPECT_EQ(r.exit_code, what == "plan" ? 2 : 1) << "ballast " << what << "\n" << r.output;
  }

  // The git remote goes away: what runs keeps running, status shows the error and its age, and
  // the reconciler polls with back-off (1 s, then 2 s, 4 s, ...).
  std::map<std::string, std::string> running = c.ReadyPods();
  const std::string bare = c.farm().BarePath("manifests");
  std::filesystem::rename(bare, bare + ".away");
  ASSERT_TRUE(WaitFor([&] {
    Json st = c.Status();
    return !st["sourceError"].is_null() && st["sourceError"]["ageSeconds"].get<int>() >= 2;
  })) << c.Logs();
  r = Ballast(env, "status");
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("Source:    error for "), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("Applied:   " + v1), std::string::npos) << r.output;
  ASSERT_TRUE(WaitFor([&] {
    return ReadFile(c.serve_log()).find("retry_in_seconds=4") != std::string::npos;
  })) << c.Logs();
  const std::string log = ReadFile(c.serve_log());
  EXPECT_LT(log.find("retry_in_seconds=2"), log.find("retry_in_seconds=4"));
  EXPECT_EQ(c.ReadyPods(), running);
  EXPECT_TRUE(ThroughService("127.0.0.4", svc_port).rfind("v1", 0) == 0);

  // It comes back: the error clears by itself and a new commit rolls out.
  std::filesystem::rename(bare + ".away", bare);
  ASSERT_TRUE(WaitFor([&] { return c.Status()["sourceError"].is_null(); })) << c.Logs();
  EXPECT_EQ(Ballast(env, "status").output.find("Source:"), std::string::npos);
  c.Commit({{"web.yaml", WebManifest("v2", 2, svc_port)}}, "web v2");
  ASSERT_TRUE(WaitFor([&] { return c.RolledOut(2) && c.DeploymentRevision() != rev; })) << c.Logs();
}

}  // namespace
}  // namespace ballast::reconciler::testing
