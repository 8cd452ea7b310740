// The reconcile core on a fake clock with simulated agents that converge at once: auto and manual
// sync, invalid revisions, rolling updates within their bounds, adoption after a restart, lost
// nodes, prune annotations and the pin.

#include "reconciler/controller.h"

#include <gtest/gtest.h>

#include <memory>

#include "model/manifest.h"
#include "model/rfc3339.h"
#include "scheduler/service_ips.h"

namespace ballast::reconciler {
namespace {

std::string Web(const std::string& image, int replicas, const std::string& name = "web",
                const std::string& annotations = "") {
  return "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: " + name + "\n" + annotations +
         "spec:\n  replicas: " + std::to_string(replicas) +
         "\n  selector:\n    matchLabels: {app: " + name +
         "}\n  strategy:\n    rollingUpdate: {maxSurge: 1, maxUnavailable: 0}\n"
         "  template:\n    metadata:\n      labels: {app: " +
         name + "}\n    spec:\n      containers:\n        - name: app\n          image: " + image +
         "\n          command: [sleep, '1000']\n"
         "          resources: {requests: {cpu: 100m, memory: 64Mi}}\n";
}

git::SourceSnapshot Snapshot(const std::string& sha,
                             const std::map<std::string, std::string>& files) {
  auto tree = std::make_shared<git::SourceTree>();
  for (const auto& [path, content] : files) {
    tree->files.push_back({path, content});
    if (!model::IsManifestFileName(path)) continue;
    auto parsed = std::make_shared<model::FileParseResult>(model::ParseManifestFile(path, content));
    for (const auto& d : parsed->diagnostics) tree->diagnostics.push_back(d);
    for (const auto& m : parsed->manifests) tree->manifests.push_back(&m);
    tree->parsed_files.push_back(parsed);
  }
  git::SourceSnapshot s;
  s.commit.sha = sha;
  s.commit.message = "commit " + sha;
  s.tree = tree;
  return s;
}

model::Node MakeNode(const std::string& name) {
  model::Node n;
  n.name = name;
  n.address = "127.0.0.9";
  n.ready = true;
  n.labels["kubernetes.io/hostname"] = name;
  n.allocatable["cpu"] = *model::Quantity::Parse("4");
  n.allocatable["memory"] = *model::Quantity::Parse("8Gi");
  return n;
}

// Agents that run exactly what they are told, ready at once.
struct Sim {
  explicit Sim(ControllerOptions o = {}) : controller(o, &clock) {}
  FakeClock clock;
  Controller controller;
  std::map<std::string, std::vector<model::Pod>> running;  // by node
  std::set<std::string> silent;                            // nodes whose agent is gone
  // With `proxies`: pods get a host port (so they may serve), and each heartbeat says which
  // desired version the node's proxy applied and which endpoints it still carries
  // connections to (`draining`).
  bool proxies = false;
  int32_t next_port = 40000;
  std::map<std::string, int64_t> latest_version;             // by node: last desired version
  std::map<std::string, int64_t> applied_version;            // by node: what its proxy reports
  std::map<std::string, std::vector<std::string>> draining;  // by node
  std::set<std::string> proxy_stale;                         // proxies that apply nothing new

  void AddNode(const std::string& name) {
    EXPECT_TRUE(controller.OnRegister(MakeNode(name)).ok());
    running[name];
    Heartbeat(name);
  }
  void Heartbeat(const std::string& name) {
    agentapi::Heartbeat hb;
    hb.node = MakeNode(name);
    hb.node.last_heartbeat_ms = clock.WallMs();  // agents stamp their wall time
    hb.pods = running[name];
    if (proxies) {
      if (!proxy_stale.count(name)) applied_version[name] = latest_version[name];
      hb.services_version = applied_version[name];
      hb.draining_endpoints = draining[name];
    }
    // Agents time pods on their monotonic clock and send wall times by age.
    for (auto& p : hb.pods) {
      if (p.ready_since_ms > 0)
        p.ready_since_ms = clock.WallMs() - (clock.NowMs() - p.ready_since_ms);
      if (p.created_ms > 0) p.created_ms = clock.WallMs() - (clock.NowMs() - p.created_ms);
    }
    controller.OnHeartbeat(hb);
  }
  // One loop turn: reconcile, agents converge, heartbeats, one second passes.
  void Step() {
    controller.Reconcile();
    for (const auto& [node, state] : controller.TakeDesiredChanges()) {
      if (silent.count(node)) continue;
      latest_version[node] = state.version;
      std::vector<model::Pod> next;
      for (const auto& d : state.pods) {
        model::Pod p;
        bool found = false;
        for (const auto& r : running[node]) {
          if (r.name == d.name) {
            p = r;
            found = true;
          }
        }
        if (!found) {
          p.name = d.name;
          p.namespace_ = d.namespace_;
          p.deployment = d.deployment;
          p.revision = d.revision;
          p.node = node;
          p.phase = model::PodPhase::kRunning;
          p.ready = true;
          p.ready_since_ms = clock.NowMs();
          p.created_ms = clock.NowMs();
          if (proxies) p.host_ports["8080"] = next_port++;
        }
        next.push_back(p);
      }
      running[node] = next;
    }
    for (const auto& [node, pods] : running) {
      if (!silent.count(node)) Heartbeat(node);
    }
    clock.Advance(1000);
  }
  void Steps(int n) {
    for (int i = 0; i < n; ++i) Step();
  }
  // Pods by revision across every node that still runs.
  std::map<std::string, int> Revisions() {
    std::map<std::string, int> out;
    for (const auto& [node, pods] : running) {
      if (silent.count(node)) continue;
      for (const auto& p : pods) ++out[p.revision];
    }
    return out;
  }
  int Total() {
    int n = 0;
    for (const auto& [rev, count] : Revisions()) n += count;
    return n;
  }
  std::set<std::string> PodNames() {
    std::set<std::string> out;
    for (const auto& [node, pods] : running) {
      for (const auto& p : pods) out.insert(p.name);
    }
    return out;
  }
};

TEST(Controller, AutoSyncAppliesRunsPodsAndRecordsHistory) {
  Sim sim;
  sim.AddNode("n1");
  sim.AddNode("n2");
  sim.controller.OnSnapshot(Snapshot("aaa", {{"web.yaml", Web("app:1", 3)}}), "poll");
  sim.Steps(3);
  EXPECT_EQ(sim.Total(), 3);
  EXPECT_EQ(sim.controller.applied().sha, "aaa");
  auto appends = sim.controller.TakeHistoryAppends();
  ASSERT_EQ(appends.size(), 1u);
  EXPECT_EQ(appends[0].trigger, "poll");
  EXPECT_EQ(appends[0].files.size(), 1u);
  EXPECT_EQ(sim.controller.SyncStatus(), "Synced");
  EXPECT_EQ(sim.controller.OverallHealth(), Health::kHealthy);
  // Spread over both nodes.
  EXPECT_FALSE(sim.running["n1"].empty());
  EXPECT_FALSE(sim.running["n2"].empty());
  // Nothing more to record while nothing changes.
  sim.Steps(2);
  EXPECT_TRUE(sim.controller.TakeHistoryAppends().empty());
}

// Liveness, deadlines and rollouts run on the monotonic clock: a step of the wall clock (NTP,
// an operator, a VM resumed), forward or back, restarts nothing and declares no node dead. The
// documents still show wall times.
TEST(Controller, AWallClockJumpChangesNothing) {
  Sim sim;
  sim.AddNode("n1");
  sim.AddNode("n2");
  std::string web = Web("app:1", 2);
  web += "  minReadySeconds: 5\n";
  sim.controller.OnSnapshot(Snapshot("aaa", {{"web.yaml", web}}), "poll");
  sim.Steps(10);
  ASSERT_EQ(sim.Total(), 2);
  ASSERT_EQ(sim.controller.OverallHealth(), Health::kHealthy);
  const auto pods = sim.PodNames();
  for (int64_t jump : {int64_t{3600} * 1000, int64_t{-7200} * 1000}) {
    sim.clock.JumpWall(jump);
    sim.Steps(60);
    EXPECT_EQ(sim.PodNames(), pods) << "after a wall-clock jump of " << jump << " ms";
    EXPECT_EQ(sim.controller.OverallHealth(), Health::kHealthy);
    const model::Json nodes = sim.controller.NodesJson();  // outlives the loop (C++20 range-for)
    for (const auto& n : nodes["items"]) EXPECT_TRUE(n["ready"].get<bool>());
  }
  // What people see follows the wall clock.
  const std::string shown = sim.controller.NodesJson()["items"][0]["lastHeartbeat"];
  EXPECT_EQ(shown.substr(0, 4), model::FormatRfc3339(sim.clock.WallMs()).substr(0, 4));
}

// A pod that may have served leaves every Service first and is stopped (taken out of its
// node's desired set, so sent SIGTERM) only once every ready node's proxy applied that and no
// longer carries a connection to it, or once its terminationGracePeriodSeconds ran out.
TEST(Controller, APodIsStoppedOnlyOnceNoProxySendsItAnything) {
  Sim sim;
  sim.proxies = true;
  sim.AddNode("n1");
  sim.AddNode("n2");
  sim.controller.OnSnapshot(Snapshot("aaa", {{"web.yaml", Web("app:1", 1)}}), "poll");
  sim.Steps(3);
  ASSERT_EQ(sim.PodNames().size(), 1u);
  const std::string old_pod = *sim.PodNames().begin();
  std::string old_node, endpoint;
  for (const auto& [node, pods] : sim.running) {
    if (!pods.empty()) {
      old_node = node;
      endpoint = "127.0.0.9:" + std::to_string(pods[0].host_ports.at("8080"));
    }
  }
  // n1's proxy still has a request in flight to the old pod.
  sim.draining["n1"] = {endpoint};
  sim.controller.OnSnapshot(Snapshot("bbb", {{"web.yaml", Web("app:2", 1)}}), "poll");
  sim.Steps(10);
  EXPECT_EQ(sim.Revisions().size(), 2u) << "the old pod was stopped while a proxy still used it";
  EXPECT_TRUE(sim.PodNames().count(old_pod));
  const model::Json pods = sim.controller.PodsJson();
  for (const auto& p : pods["items"]) {
    if (p["name"] == old_pod) {
      EXPECT_TRUE(p.value("terminating", false)) << p.dump();
    }
  }
  // The request finished: the pod goes at the next pass.
  sim.draining["n1"].clear();
  sim.Steps(2);
  EXPECT_EQ(sim.Revisions().size(), 1u);
  EXPECT_FALSE(sim.PodNames().count(old_pod));

  // A proxy that has not applied the desired state without the pod holds it too, until it has.
  const std::string service =
      "apiVersion: v1\nkind: Service\nmetadata: {name: web}\nspec:\n  selector: {app: web}\n"
      "  ports: [{port: 80, targetPort: 8080}]\n";
  sim.controller.OnSnapshot(Snapshot("bb1", {{"web.yaml", Web("app:2", 1)}, {"svc.yaml", service}}),
                            "poll");
  sim.Steps(3);
  sim.proxy_stale.insert("n2");
  sim.controller.OnSnapshot(
      Snapshot("bb2", {{"web.yaml", Web("app:2b", 1)}, {"svc.yaml", service}}), "poll");
  sim.Steps(10);
  EXPECT_EQ(sim.Revisions().size(), 2u) << "stopped before n2's proxy applied its removal";
  sim.proxy_stale.clear();
  sim.Steps(2);
  EXPECT_EQ(sim.Revisions().size(), 1u);

  // A proxy that never lets go holds a pod for its grace period (30 s by default), no longer.
  for (const auto& [node, pods] : sim.running) {
    for (const auto& p : pods) {
      sim.draining["n2"].push_back("127.0.0.9:" + std::to_string(p.host_ports.at("8080")));
    }
  }
  sim.controller.OnSnapshot(Snapshot("ccc", {{"web.yaml", Web("app:3", 1)}, {"svc.yaml", service}}),
                            "poll");
  sim.Steps(20);
  EXPECT_EQ(sim.Total(), 2);
  sim.Steps(15);
  EXPECT_EQ(sim.Total(), 1);
  EXPECT_EQ(sim.Revisions().size(), 1u);
}

TEST(Controller, StatusSaysWhyADeploymentIsNotHealthy) {
  // `ballast status` shows this message: a user must not have to guess why nothing runs.
  Sim sim;
  sim.AddNode("n1");
  std::string pinned = Web("app:1", 2);
  pinned += "      nodeSelector: {disktype: ssd}\n";
  sim.controller.OnSnapshot(Snapshot("aaa", {{"web.yaml", pinned}}), "poll");
  sim.Steps(3);
  auto message_of = [&](const std::string& name) {
    const model::Json status = sim.controller.StatusJson();
    for (const auto& o : status["objects"]) {
      if (o["name"] == name) return o["message"].get<std::string>();
    }
    return "<no object " + name + ">";
  };
  EXPECT_EQ(message_of("web"),
            "0/1 nodes are available: 1 node(s) didn't match Pod's node affinity/selector.");
  EXPECT_EQ(sim.controller.StatusJson()["objects"][0]["health"], "Progressing");

  // Placed and ready: nothing to say.
  sim.controller.OnSnapshot(Snapshot("bbb", {{"web.yaml", Web("app:1", 2)}}), "poll");
  sim.Steps(4);
  EXPECT_EQ(sim.controller.OverallHealth(), Health::kHealthy);
  EXPECT_EQ(message_of("web"), "");
}

TEST(Controller, RestoreCommitsAreRecordedAsTheRollbackWhicheverPollReadsThem) {
  Sim sim;
  sim.AddNode("n1");
  sim.controller.OnSnapshot(Snapshot("aaa", {{"web.yaml", Web("app:1", 1)}}), "poll");
  sim.Steps(2);
  sim.controller.TakeHistoryAppends();
  auto restore = [](const std::string& sha, const std::string& message) {
    auto s = Snapshot(sha, {{"web.yaml", Web("app:" + sha, 1)}});
    s.commit.message = message;
    return s;
  };
  // What sources/git writes for `ballast rollback 1` and for an auto-rollback; a user's commit
  // that merely mentions a rollback is a plain change.
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"Roll back to #1 (source aaaaaaa)\n\nRequested-by: api\n", "rollback #1"},
      {"Roll back to #12 (source aaaaaaa)\n\nRequested-by: auto-rollback of Deployment/default/web "
       "(ProgressDeadlineExceeded)\n",
       "auto-rollback #12"},
      {"Roll back to #3 by hand\n", "poll"},
      {"Revert \"Roll back to #1 (source aaaaaaa)\"\n\nRequested-by: api\n", "poll"},
  };
  int n = 0;
  for (const auto& [message, trigger] : cases) {
    sim.controller.OnSnapshot(restore(std::string("r").append(std::to_string(++n)), message),
                              "poll");
    sim.Steps(1);
    auto appends = sim.controller.TakeHistoryAppends();
    ASSERT_EQ(appends.size(), 1u) << message;
    EXPECT_EQ(appends[0].trigger, trigger) << message;
  }
}

TEST(Controller, SecondAgentWithALiveNodesNameIsRefused) {
  // Two agents started with one --name would take turns owning the node and its pods.
  Sim sim;
  sim.AddNode("n1");  // from 127.0.0.9
  model::Node imposter = MakeNode("n1");
  imposter.address = "127.0.0.19";
  Status refused = sim.controller.OnRegister(imposter);
  EXPECT_EQ(refused.code(), StatusCode::kAlreadyExists);
  EXPECT_NE(refused.message().find("registered from 127.0.0.9 and alive"), std::string::npos)
      << refused.message();
  EXPECT_EQ(sim.controller.NodesJson()["items"][0]["address"], "127.0.0.9");
  // The same agent registering again (a reconciler or agent restart) is fine ...
  EXPECT_TRUE(sim.controller.OnRegister(MakeNode("n1")).ok());
  // ... and after the holder was silent for the grace period, a new address takes the name
  // (the machine's address changed).
  sim.clock.Advance(ControllerOptions{}.node_lifecycle.grace_period_ms + 1000);
  EXPECT_TRUE(sim.controller.OnRegister(imposter).ok());
  EXPECT_EQ(sim.controller.NodesJson()["items"][0]["address"], "127.0.0.19");
}

TEST(Controller, NodeGetsDesiredStateOnlyAfterItReported) {
  Sim sim;
  EXPECT_TRUE(sim.controller.OnRegister(MakeNode("n1")).ok());
  sim.controller.OnSnapshot(Snapshot("aaa", {{"web.yaml", Web("app:1", 1)}}), "poll");
  sim.controller.Reconcile();
  EXPECT_TRUE(sim.controller.TakeDesiredChanges().empty());
  sim.Heartbeat("n1");
  sim.clock.Advance(1000);  // past the node-settle window that follows a node joining
  sim.controller.Reconcile();
  auto changes = sim.controller.TakeDesiredChanges();
  ASSERT_EQ(changes.count("n1"), 1u);
  EXPECT_EQ(changes["n1"].pods.size(), 1u);
}

TEST(Controller, FirstPlacementWaitsForNodesStillJoining) {
  // Agents started together register a few milliseconds apart: the first placement waits until
  // no node has joined for node_settle_ms, so replicas spread instead of piling on the first.
  Sim sim;
  sim.controller.OnSnapshot(Snapshot("aaa", {{"web.yaml", Web("app:1", 3)}}), "poll");
  EXPECT_TRUE(sim.controller.OnRegister(MakeNode("n1")).ok());
  sim.Heartbeat("n1");
  sim.controller.Reconcile();
  EXPECT_EQ(sim.controller.TakeDesiredChanges()["n1"].pods.size(), 0u);
  sim.clock.Advance(100);
  EXPECT_TRUE(sim.controller.OnRegister(MakeNode("n2")).ok());
  sim.Heartbeat("n2");
  sim.controller.Reconcile();
  sim.clock.Advance(100);
  EXPECT_TRUE(sim.controller.OnRegister(MakeNode("n3")).ok());
  sim.Heartbeat("n3");
  sim.Steps(3);
  EXPECT_EQ(sim.Total(), 3);
  EXPECT_EQ(sim.running["n1"].size(), 1u);
  EXPECT_EQ(sim.running["n2"].size(), 1u);
  EXPECT_EQ(sim.running["n3"].size(), 1u);
}

TEST(Controller, InvalidRevisionIsNotAppliedAndShowsPositions) {
  Sim sim;
  sim.AddNode("n1");
  sim.controller.OnSnapshot(Snapshot("good", {{"web.yaml", Web("app:1", 2)}}), "poll");
  sim.Steps(3);
  sim.controller.TakeHistoryAppends();
  auto before = sim.PodNames();
  sim.controller.OnSnapshot(
      Snapshot("bad", {{"web.yaml", Web("app:2", 2)},
                       {"x.yaml",
                        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: x\n"
                        "spec:\n  replicas: -1\n"}}),
      "poll");
  sim.Steps(3);
  EXPECT_EQ(sim.controller.SyncStatus(), "Error");
  EXPECT_EQ(sim.controller.applied().sha, "good");
  EXPECT_EQ(sim.PodNames(), before);
  EXPECT_TRUE(sim.controller.TakeHistoryAppends().empty());
  auto status = sim.controller.StatusJson();
  EXPECT_EQ(status["revision"], "bad");
  ASSERT_FALSE(status["errors"].empty());
  bool found = false;
  for (const auto& e : status["errors"]) {
    if (e["file"] == "x.yaml" && e["line"] == 6 && e["column"].get<int>() > 0) found = true;
  }
  EXPECT_TRUE(found) << status["errors"].dump();
  EXPECT_FALSE(sim.controller.SyncNow("api").ok());

  // The next good commit recovers.
  sim.controller.OnSnapshot(Snapshot("fixed", {{"web.yaml", Web("app:2", 2)}}), "poll");
  sim.Steps(8);
  EXPECT_EQ(sim.controller.applied().sha, "fixed");
  EXPECT_EQ(sim.controller.SyncStatus(), "Synced");
}

TEST(Controller, RollingUpdateHoldsItsBoundsAndCompletes) {
  Sim sim;
  sim.AddNode("n1");
  sim.AddNode("n2");
  sim.controller.OnSnapshot(Snapshot("v1", {{"web.yaml", Web("app:1", 4)}}), "poll");
  sim.Steps(4);
  ASSERT_EQ(sim.Total(), 4);
  std::string old_rev = sim.Revisions().begin()->first;
  sim.controller.OnSnapshot(Snapshot("v2", {{"web.yaml", Web("app:2", 4)}}), "webhook");
  for (int i = 0; i < 30; ++i) {
    sim.Step();
    // maxSurge 1, maxUnavailable 0 (every simulated pod is ready at once).
    EXPECT_LE(sim.Total(), 5);
    EXPECT_GE(sim.Total(), 4);
  }
  auto revs = sim.Revisions();
  ASSERT_EQ(revs.size(), 1u);
  EXPECT_NE(revs.begin()->first, old_rev);
  EXPECT_EQ(revs.begin()->second, 4);
  auto appends = sim.controller.TakeHistoryAppends();
  ASSERT_EQ(appends.size(), 2u);
  EXPECT_EQ(appends[1].trigger, "webhook");
}

TEST(Controller, RestartAdoptsReportedPodsWithoutStartingAny) {
  Sim first;
  first.AddNode("n1");
  first.AddNode("n2");
  first.controller.OnSnapshot(Snapshot("v1", {{"web.yaml", Web("app:1", 3)}}), "poll");
  first.Steps(4);
  auto names = first.PodNames();
  ASSERT_EQ(names.size(), 3u);
  AppliedState applied = first.controller.applied();

  // A new controller: what history says, then the agents come back one after the other.
  ControllerOptions o;
  o.adopt_wait_ms = 5000;
  Sim second(o);
  second.controller.Restore(applied, {}, /*restarted=*/true);
  second.running = first.running;
  EXPECT_TRUE(second.controller.OnRegister(MakeNode("n1")).ok());
  second.Heartbeat("n1");
  second.controller.OnSnapshot(Snapshot("v1", {{"web.yaml", Web("app:1", 3)}}), "poll");
  second.Step();
  EXPECT_EQ(second.PodNames(), names);  // n1's pods kept, nothing started for n2's share
  EXPECT_TRUE(second.controller.OnRegister(MakeNode("n2")).ok());
  second.Steps(6);
  EXPECT_EQ(second.PodNames(), names);
  EXPECT_TRUE(second.controller.TakeHistoryAppends().empty());  // same revision: no new entry
  EXPECT_EQ(second.controller.SyncStatus(), "Synced");
}

// A node known before the restart (the roster) whose agent is slow to come back (its reconnect
// back-off outlasts adopt_wait): nothing is placed until it reports, so its pods are adopted,
// not started a second time elsewhere and then stopped as surplus. One that never comes back
// holds placements for the grace period at most.
TEST(Controller, RestartWaitsForEveryKnownNodeBeyondAdoptWait) {
  Sim first;
  first.AddNode("n1");
  first.AddNode("n2");
  first.controller.OnSnapshot(Snapshot("v1", {{"web.yaml", Web("app:1", 4)}}), "poll");
  first.Steps(4);
  const auto names = first.PodNames();
  ASSERT_EQ(names.size(), 4u);
  ASSERT_EQ(first.controller.NodeNames(), (std::set<std::string>{"n1", "n2"}));

  ControllerOptions o;
  o.adopt_wait_ms = 1000;
  o.node_lifecycle.grace_period_ms = 40'000;
  Sim second(o);
  second.controller.Restore(first.controller.applied(), {}, /*restarted=*/true);
  second.controller.ExpectNodes({"n1", "n2"});
  second.running = first.running;
  second.silent = {"n2"};  // n2's agent is still backing off
  EXPECT_TRUE(second.controller.OnRegister(MakeNode("n1")).ok());
  second.controller.OnSnapshot(Snapshot("v1", {{"web.yaml", Web("app:1", 4)}}), "poll");
  second.Steps(10);  // well past adopt_wait
  EXPECT_EQ(second.running["n1"].size(), 2u) << "n2's two pods are not started again on n1";
  second.silent.clear();
  EXPECT_TRUE(second.controller.OnRegister(MakeNode("n2")).ok());
  second.Steps(6);
  EXPECT_EQ(second.PodNames(), names);

  // A known node that never comes back: placements wait for the grace period, not forever.
  Sim third(o);
  third.controller.Restore(first.controller.applied(), {}, /*restarted=*/true);
  third.controller.ExpectNodes({"n1", "gone"});
  third.running["n1"] = first.running["n1"];
  EXPECT_TRUE(third.controller.OnRegister(MakeNode("n1")).ok());
  third.controller.OnSnapshot(Snapshot("v1", {{"web.yaml", Web("app:1", 4)}}), "poll");
  third.Steps(20);
  EXPECT_EQ(third.Total(), 2) << "waiting for node gone";
  third.Steps(30);
  EXPECT_EQ(third.Total(), 4) << "placed once the grace period passed";
}

TEST(Controller, RestartMidRolloutAdoptsBothRevisionsAndFinishes) {
  Sim first;
  first.AddNode("n1");
  first.controller.OnSnapshot(Snapshot("v1", {{"web.yaml", Web("app:1", 3)}}), "poll");
  first.Steps(4);
  auto v1_objects = first.controller.applied().objects;
  first.controller.OnSnapshot(Snapshot("v2", {{"web.yaml", Web("app:2", 3)}}), "poll");
  first.Steps(1);  // one surge pod of v2 started
  ASSERT_EQ(first.Revisions().size(), 2u);
  auto names = first.PodNames();

  Sim second;
  second.controller.Restore(first.controller.applied(), v1_objects, /*restarted=*/true);
  second.running = first.running;
  EXPECT_TRUE(second.controller.OnRegister(MakeNode("n1")).ok());
  second.Heartbeat("n1");
  // Listed as running the moment they are reported, before any pass: none shows as stopping.
  const model::Json listed = second.controller.PodsJson();
  ASSERT_EQ(listed["items"].size(), names.size());
  for (const auto& p : listed["items"]) EXPECT_FALSE(p["terminating"].get<bool>()) << p.dump();
  second.Step();
  // Nothing was restarted: every pod still runs under its name.
  for (const auto& n : names) {
    if (second.PodNames().count(n) == 0) {
      // Only old-revision pods may go, as the rollout scales them down.
      bool was_old = false;
      for (const auto& p : first.running["n1"]) {
        if (p.name == n &&
            p.revision != second.controller.DeploymentsJson()["items"][0]["revision"])
          was_old = true;
      }
      EXPECT_TRUE(was_old) << n;
    }
  }
  second.clock.Advance(10000);
  second.Steps(20);
  auto revs = second.Revisions();
  ASSERT_EQ(revs.size(), 1u);
  EXPECT_EQ(revs.begin()->second, 3);
}

TEST(Controller, PodsOfALostNodeAreReplacedAfterGraceAndToleration) {
  ControllerOptions o;
  o.node_lifecycle.grace_period_ms = 5000;
  o.node_lifecycle.toleration_ms = 5000;
  Sim sim(o);
  sim.AddNode("n1");
  sim.AddNode("n2");
  sim.controller.OnSnapshot(Snapshot("v1", {{"web.yaml", Web("app:1", 4)}}), "poll");
  sim.Steps(4);
  ASSERT_FALSE(sim.running["n2"].empty());
  sim.silent.insert("n2");
  sim.Steps(20);
  EXPECT_EQ(static_cast<int>(sim.running["n1"].size()), 4);
  auto nodes = sim.controller.NodesJson();
  for (const auto& n : nodes["items"]) {
    if (n["name"] == "n2") {
      EXPECT_FALSE(n["ready"].get<bool>());
    }
  }
}

TEST(Controller, PodsOfASilentNodeAreNotReadyUntilReplaced) {
  // Between the grace period and the toleration, a silent node's pods still exist (nothing is
  // started elsewhere yet) but nobody vouches for them: READY 0/1 as kubectl shows it.
  ControllerOptions o;
  o.node_lifecycle.grace_period_ms = 5000;
  o.node_lifecycle.toleration_ms = 60000;
  Sim sim(o);
  sim.AddNode("n1");
  sim.AddNode("n2");
  sim.controller.OnSnapshot(Snapshot("v1", {{"web.yaml", Web("app:1", 4)}}), "poll");
  sim.Steps(4);
  ASSERT_FALSE(sim.running["n2"].empty());
  auto ready_on = [&](const std::string& node) {
    int ready = 0, total = 0;
    const model::Json pods = sim.controller.PodsJson();
    for (const auto& p : pods["items"]) {
      if (p["node"] != node) continue;
      ++total;
      ready += p["ready"].get<bool>() ? 1 : 0;
    }
    return std::make_pair(ready, total);
  };
  const auto before = ready_on("n2");
  EXPECT_EQ(before.first, before.second);
  sim.silent.insert("n2");
  sim.Steps(8);  // past the grace period, well within the toleration
  const auto after = ready_on("n2");
  EXPECT_EQ(after.second, before.second);  // still listed, not replaced yet
  EXPECT_EQ(after.first, 0);
  EXPECT_EQ(ready_on("n1").first, ready_on("n1").second);
}

TEST(Controller, ServicesGetStableClusterIPsInDesiredStateAndAPI) {
  auto svc = [](const std::string& name, const std::string& cluster_ip) {
    return "apiVersion: v1\nkind: Service\nmetadata: {name: " + name + "}\nspec:\n" +
           (cluster_ip.empty() ? "" : "  clusterIP: \"" + cluster_ip + "\"\n") +
           "  selector: {app: " + name + "}\n  ports: [{port: 80}]\n";
  };
  Sim sim;
  sim.AddNode("n1");
  sim.controller.OnSnapshot(
      Snapshot("v1", {{"web.yaml", Web("app:1", 1)},
                      {"svc.yaml", svc("web", "") + "---\n" + svc("pinned", "127.9.9.9") + "---\n" +
                                       svc("db", "None") + "---\n" + svc("gke", "10.96.0.10")}}),
      "poll");
  sim.controller.Reconcile();
  auto changes = sim.controller.TakeDesiredChanges();
  ASSERT_EQ(changes.count("n1"), 1u);
  std::map<std::string, std::string> sent;
  for (const auto& s : changes["n1"].services) sent[s.name] = s.cluster_ip;
  EXPECT_EQ(sent["web"], scheduler::HashedClusterIP("default", "web"));
  EXPECT_EQ(sent["pinned"], "127.9.9.9");
  EXPECT_EQ(sent["db"], "");  // headless
  EXPECT_EQ(sent["gke"], scheduler::HashedClusterIP("default", "gke"));
  std::map<std::string, std::string> listed;
  const model::Json v1_services = sim.controller.ServicesJson();
  for (const auto& s : v1_services["items"]) listed[s["name"]] = s["clusterIP"];
  EXPECT_EQ(listed["web"], sent["web"]);
  EXPECT_EQ(listed["db"], "None");  // as kubectl shows a headless Service
  EXPECT_EQ(listed["pinned"], "127.9.9.9");

  // A new revision (another Deployment image, one Service fewer) keeps every address.
  sim.controller.OnSnapshot(
      Snapshot("v2", {{"web.yaml", Web("app:2", 1)}, {"svc.yaml", svc("web", "")}}), "poll");
  sim.Steps(2);
  listed.clear();
  const model::Json v2_services = sim.controller.ServicesJson();
  for (const auto& s : v2_services["items"]) listed[s["name"]] = s["clusterIP"];
  EXPECT_EQ(listed, (std::map<std::string, std::string>{{"web", sent["web"]}}));
}

TEST(Controller, PruneRemovesObjectsLeftOutOfGitUnlessAnnotated) {
  Sim sim;
  sim.AddNode("n1");
  sim.controller.OnSnapshot(
      Snapshot("v1", {{"a.yaml", Web("app:1", 1, "gone")},
                      {"b.yaml", Web("app:1", 1, "kept",
                                     "  annotations:\n    ballast.dev/prune: \"false\"\n")}}),
      "poll");
  sim.Steps(3);
  ASSERT_EQ(sim.Total(), 2);
  sim.controller.OnSnapshot(Snapshot("v2", {{"c.txt", "nothing here"}}), "poll");
  sim.Steps(5);
  ASSERT_EQ(sim.Total(), 1);
  EXPECT_EQ(sim.running["n1"][0].deployment, "kept");
}

TEST(Controller, ManualPolicyWaitsForSync) {
  ControllerOptions o;
  o.sync = SyncPolicy::kManual;
  Sim sim(o);
  sim.AddNode("n1");
  sim.controller.OnSnapshot(Snapshot("v1", {{"web.yaml", Web("app:1", 2)}}), "poll");
  sim.Steps(3);
  EXPECT_EQ(sim.Total(), 0);
  EXPECT_EQ(sim.controller.SyncStatus(), "OutOfSync");
  auto plan = sim.controller.PlanJson(false);
  EXPECT_TRUE(plan["changed"].get<bool>());
  ASSERT_TRUE(sim.controller.SyncNow("api").ok());
  sim.Steps(3);
  EXPECT_EQ(sim.Total(), 2);
  EXPECT_EQ(sim.controller.SyncStatus(), "Synced");
}

TEST(Controller, PinHoldsAnEntryAndPausesAutoSync) {
  Sim sim;
  sim.AddNode("n1");
  sim.controller.OnSnapshot(Snapshot("v1", {{"web.yaml", Web("app:1", 1)}}), "poll");
  sim.Steps(3);
  AppliedState v1 = sim.controller.applied();
  std::string rev1 = sim.Revisions().begin()->first;
  sim.controller.OnSnapshot(Snapshot("v2", {{"web.yaml", Web("app:2", 1)}}), "poll");
  sim.Steps(6);
  ASSERT_NE(sim.Revisions().begin()->first, rev1);
  sim.controller.Pin(1, v1);
  sim.Steps(6);
  EXPECT_EQ(sim.Revisions().begin()->first, rev1);
  EXPECT_EQ(sim.controller.StatusJson()["pinned"], 1);
  EXPECT_EQ(sim.controller.SyncNow("api").code(), StatusCode::kFailedPrecondition);
  sim.controller.Unpin();
  sim.Steps(6);
  EXPECT_NE(sim.Revisions().begin()->first, rev1);
  EXPECT_TRUE(sim.controller.StatusJson()["pinned"].is_null());
}

// A full disk under history.git: the applied revision keeps running and healing, the status says
// why, and no other revision is applied until its entry is written (every applied state keeps
// an entry to restore it from).
TEST(Controller, AnUnrecordedSyncHoldsNewRevisionsUntilHistoryCatchesUp) {
  Sim sim;
  sim.AddNode("n1");
  sim.controller.OnSnapshot(Snapshot("v1", {{"web.yaml", Web("app:1", 2)}}), "poll");
  sim.Steps(3);
  ASSERT_EQ(sim.controller.applied().sha, "v1");
  sim.controller.SetHistoryBacklog(1, "history: write commit: No space left on device");
  model::Json status = sim.controller.StatusJson();
  ASSERT_TRUE(status["historyError"].is_object()) << status.dump();
  EXPECT_EQ(status["historyError"]["pending"], 1);
  EXPECT_NE(status["historyError"]["message"].get<std::string>().find("No space left"),
            std::string::npos);
  EXPECT_EQ(sim.controller.MetricsCounts().history_pending, 1u);
  sim.controller.OnSnapshot(Snapshot("v2", {{"web.yaml", Web("app:2", 2)}}), "poll");
  sim.Steps(6);
  EXPECT_EQ(sim.controller.applied().sha, "v1") << "held while v1 has no entry";
  EXPECT_EQ(sim.Total(), 2);
  const Status refused = sim.controller.SyncNow("api");
  EXPECT_EQ(refused.code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(refused.message().find("No space left"), std::string::npos) << refused.ToString();
  sim.controller.SetHistoryBacklog(0, "");
  EXPECT_TRUE(sim.controller.StatusJson()["historyError"].is_null());
  sim.Steps(6);
  EXPECT_EQ(sim.controller.applied().sha, "v2") << "applied once history caught up";
}

TEST(Controller, UnreachableSourceShowsErrorAndAgeAndKeepsRunning) {
  Sim sim;
  sim.AddNode("n1");
  sim.controller.OnSnapshot(Snapshot("v1", {{"web.yaml", Web("app:1", 2)}}), "poll");
  sim.Steps(3);
  auto names = sim.PodNames();
  sim.controller.OnSourceError(Unavailable("fetch git://127.0.0.1:1/x: connection refused"));
  sim.Steps(30);
  sim.controller.OnSourceError(Unavailable("fetch git://127.0.0.1:1/x: connection refused"));
  auto status = sim.controller.StatusJson();
  ASSERT_FALSE(status["sourceError"].is_null());
  EXPECT_EQ(status["sourceError"]["ageSeconds"], 30);  // since the first failure
  EXPECT_NE(status["sourceError"]["message"].get<std::string>().find("connection refused"),
            std::string::npos);
  EXPECT_EQ(sim.PodNames(), names);
  EXPECT_EQ(sim.controller.applied().sha, "v1");
  // A good poll clears it.
  sim.controller.OnSnapshot(Snapshot("v1", {{"web.yaml", Web("app:1", 2)}}), "poll");
  EXPECT_TRUE(sim.controller.StatusJson()["sourceError"].is_null());
}

}  // namespace
}  // namespace ballast::reconciler

namespace ballast::reconciler {
namespace {

// A change the API server would refuse (an immutable ConfigMap's data) is not applied while the
// rest of the commit is; the plan says why, and a Deployment reading that ConfigMap does not
// roll for a value that never became applied.
TEST(Controller, ARefusedChangeIsNotAppliedAndTheRestIs) {
  Sim sim;
  sim.AddNode("n1");
  auto config = [](const std::string& value) {
    return "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: app}\nimmutable: true\n"
           "data: {a: \"" +
           value + "\"}\n";
  };
  sim.controller.OnSnapshot(
      Snapshot("aaa", {{"web.yaml", Web("app:1", 1)}, {"app.yaml", config("1")}}), "poll");
  sim.Steps(3);
  ASSERT_EQ(sim.controller.applied().sha, "aaa");
  sim.controller.OnSnapshot(
      Snapshot("bbb", {{"web.yaml", Web("app:2", 1)}, {"app.yaml", config("2")}}), "poll");
  sim.Steps(5);
  EXPECT_EQ(sim.controller.applied().sha, "bbb");
  std::string image, value;
  for (const auto& m : sim.controller.applied().objects) {
    if (const auto* d = m.deployment()) image = d->spec.template_.spec.containers[0].image;
    if (const auto* cm = m.config_map()) value = cm->data.at("a");
  }
  EXPECT_EQ(image, "app:2") << "the rest of the commit applies";
  EXPECT_EQ(value, "1") << "the immutable ConfigMap keeps its data";
  const model::Json plan = sim.controller.PlanJson(false, false);
  bool refused = false;
  for (const auto& o : plan["objects"]) {
    if (o["kind"] == "ConfigMap") {
      refused = o["action"] == "refused";
      EXPECT_NE(o["message"].get<std::string>().find("field is immutable"), std::string::npos);
    }
    if (o["kind"] == "Deployment") {
      EXPECT_EQ(o["action"], "unchanged") << plan.dump();
    }
  }
  EXPECT_TRUE(refused) << plan.dump();
}

}  // namespace
}  // namespace ballast::reconciler
