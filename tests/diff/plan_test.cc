#include "diff/plan.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <string>

#include "diff/state.h"
#include "model/codec.h"
#include "model/manifest.h"

namespace ballast::diff {
namespace {

using model::Manifest;

std::vector<Manifest> Parse(const std::string& yaml) {
  auto r = model::ParseManifestFile("test.yaml", yaml);
  for (const auto& d : r.diagnostics) {
    EXPECT_FALSE(d.is_error()) << d.ToString();
  }
  return r.manifests;
}

std::string Deployment(const std::string& name, int replicas, const std::string& image,
                       const std::string& extra_meta = "", const std::string& strategy = "") {
  return "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: " + name + "\n" + extra_meta +
         "spec:\n  replicas: " + std::to_string(replicas) + "\n" + strategy +
         "  selector:\n    matchLabels:\n      app: " + name +
         "\n  template:\n    metadata:\n      labels:\n        app: " + name +
         "\n    spec:\n      containers:\n        - name: main\n          image: " + image + "\n";
}

std::string Service(const std::string& name, int port, const std::string& extra_spec = "") {
  return "apiVersion: v1\nkind: Service\nmetadata:\n  name: " + name + "\nspec:\n" + extra_spec +
         "  selector:\n    app: " + name + "\n  ports:\n    - port: " + std::to_string(port) + "\n";
}

ObjectPlan Only(const Plan& p) {
  EXPECT_EQ(p.objects.size(), 1u);
  return p.objects.at(0);
}

model::ObjectKey DeploymentKey(const std::string& name) { return {"Deployment", "default", name}; }

TEST(ComputePlan, IdenticalObjectsAreUnchanged) {
  auto want = Parse(Deployment("web", 3, "app:1") + "---\n" + Service("web", 80));
  Plan p = ComputePlan(want, want, nullptr);
  ASSERT_EQ(p.objects.size(), 2u);
  for (const auto& o : p.objects) {
    EXPECT_EQ(o.action, Action::kUnchanged) << o.key.ToString();
    EXPECT_TRUE(o.in_sync());
  }
  EXPECT_FALSE(p.has_changes());
}

TEST(ComputePlan, NothingAppliedMeansCreateWithTheDesiredRevision) {
  auto want = Parse(Deployment("web", 3, "app:1"));
  ObjectPlan o = Only(ComputePlan(want, {}, nullptr));
  EXPECT_EQ(o.action, Action::kCreate);
  EXPECT_EQ(o.new_revision, model::PodTemplateHash(want[0].deployment()->spec.template_));
  EXPECT_TRUE(o.old_doc.is_null());
  EXPECT_EQ(o.new_doc["spec"]["replicas"], 3);
}

TEST(ComputePlan, ReplicasAloneIsAnInPlaceScale) {
  auto had = Parse(Deployment("web", 3, "app:1"));
  auto want = Parse(Deployment("web", 5, "app:1"));
  ObjectPlan o = Only(ComputePlan(want, had, nullptr));
  EXPECT_EQ(o.action, Action::kUpdate);
  EXPECT_EQ(o.rollout, Rollout::kInPlace);
  ASSERT_EQ(o.changes.size(), 1u);
  EXPECT_EQ(o.changes[0].path, "/spec/replicas");
  EXPECT_FALSE(o.changes[0].forces_rollout);
  EXPECT_EQ(o.old_revision, o.new_revision);
}

TEST(ComputePlan, ImageChangeForcesARollingUpdateToANewRevision) {
  auto had = Parse(Deployment("web", 3, "app:1"));
  auto want = Parse(Deployment("web", 3, "app:2"));
  ObjectPlan o = Only(ComputePlan(want, had, nullptr));
  EXPECT_EQ(o.action, Action::kUpdate);
  EXPECT_EQ(o.rollout, Rollout::kRollingUpdate);
  ASSERT_EQ(o.changes.size(), 1u);
  EXPECT_EQ(o.changes[0].field, "spec.template.spec.containers[main].image");
  EXPECT_TRUE(o.changes[0].forces_rollout);
  EXPECT_EQ(o.old_revision, model::PodTemplateHash(had[0].deployment()->spec.template_));
  EXPECT_EQ(o.new_revision, model::PodTemplateHash(want[0].deployment()->spec.template_));
  EXPECT_NE(o.old_revision, o.new_revision);
}

TEST(ComputePlan, RecreateStrategyIsNamed) {
  std::string recreate = "  strategy:\n    type: Recreate\n";
  auto had = Parse(Deployment("web", 1, "app:1", "", recreate));
  auto want = Parse(Deployment("web", 1, "app:2", "", recreate));
  EXPECT_EQ(Only(ComputePlan(want, had, nullptr)).rollout, Rollout::kRecreate);
}

TEST(ComputePlan, SelectorChangeIsRefusedAsImmutable) {
  auto had = Parse(Deployment("web", 1, "app:1"));
  std::string changed = Deployment("web", 1, "app:1");
  changed.replace(changed.find("app: web"), 8, "app: web2");
  changed.replace(changed.find("app: web\n"), 8, "app: web2");
  auto want = Parse(changed);
  Plan p = ComputePlan(want, had, nullptr);
  ObjectPlan o = Only(p);
  EXPECT_EQ(o.action, Action::kRefused);
  EXPECT_NE(o.message.find("spec.selector: Invalid value: "), std::string::npos) << o.message;
  EXPECT_NE(o.message.find("field is immutable"), std::string::npos);
  EXPECT_TRUE(p.has_refused());
  EXPECT_TRUE(p.has_changes());
  EXPECT_EQ(o.new_revision, o.old_revision);  // nothing new rolls out
}

TEST(ComputePlan, ServiceClusterIpChangeIsRefused) {
  auto had = Parse(Service("dns", 53, "  clusterIP: 10.96.0.10\n"));
  auto want = Parse(Service("dns", 53, "  clusterIP: 10.96.0.11\n"));
  ObjectPlan o = Only(ComputePlan(want, had, nullptr));
  EXPECT_EQ(o.action, Action::kRefused);
  EXPECT_EQ(o.message, "spec.clusterIP: Invalid value: \"10.96.0.11\": field is immutable");
}

TEST(ComputePlan, ServiceTypeChangeBetweenSupportedTypesIsInPlace) {
  auto had = Parse(Service("web", 80));
  auto want = Parse(Service("web", 80, "  type: NodePort\n"));
  ObjectPlan o = Only(ComputePlan(want, had, nullptr));
  EXPECT_EQ(o.action, Action::kUpdate);
  EXPECT_EQ(o.rollout, Rollout::kInPlace);
}

TEST(ComputePlan, PruneFalseKeepsWhatLeftGit) {
  auto had =
      Parse(Deployment("old", 1, "a:1", "  annotations:\n    ballast.dev/prune: \"false\"\n") +
            "---\n" + Deployment("gone", 1, "a:1"));
  Plan p = ComputePlan({}, had, nullptr);
  ASSERT_EQ(p.objects.size(), 2u);
  EXPECT_EQ(p.Find(DeploymentKey("old"))->action, Action::kPruneSkipped);
  EXPECT_EQ(p.Find(DeploymentKey("gone"))->action, Action::kDelete);
  EXPECT_EQ(p.counts().del, 1);
  EXPECT_EQ(p.counts().prune_skipped, 1);
}

TEST(ComputePlan, UnsupportedKindsAreListedNotChanged) {
  std::string pdb =
      "apiVersion: policy/v1\nkind: PodDisruptionBudget\nmetadata:\n  name: web\nspec:\n"
      "  minAvailable: 1\n";
  auto want = Parse(pdb);
  Plan p = ComputePlan(want, {}, nullptr);
  EXPECT_EQ(Only(p).action, Action::kUnsupported);
  EXPECT_FALSE(p.has_changes());
  // An unsupported object that leaves git was never applied: nothing to delete.
  EXPECT_TRUE(ComputePlan({}, want, nullptr).objects.empty());
}

TEST(ComputePlan, ServerOwnedFieldsAreNoDifference) {
  auto want = Parse(Deployment("web", 1, "app:1"));
  auto had = Parse(Deployment("web", 1, "app:1",
                              "  uid: 1234-5678\n  resourceVersion: \"42\"\n  annotations:\n"
                              "    kubectl.kubernetes.io/last-applied-configuration: \"{}\"\n") +
                   "status:\n  replicas: 1\n");
  ASSERT_FALSE(want[0].value == had[0].value);  // the slow path is taken
  EXPECT_EQ(Only(ComputePlan(want, had, nullptr)).action, Action::kUnchanged);
}

TEST(ComputePlan, IgnoreAnnotationAndGlobalRules) {
  auto had = Parse(Deployment("web", 3, "app:1") + "---\n" + Service("web", 80));
  auto want =
      Parse(Deployment("web", 9, "app:1",
                       "  annotations:\n    ballast.dev/ignore-differences: /spec/replicas\n") +
            "---\n" + Service("web", 8080));
  // The annotation itself is a (metadata) change; replicas are not.
  Plan p = ComputePlan(want, had, nullptr);
  const ObjectPlan* d = p.Find(DeploymentKey("web"));
  ASSERT_NE(d, nullptr);
  ASSERT_EQ(d->changes.size(), 1u);
  EXPECT_EQ(d->changes[0].field, "metadata.annotations");
  EXPECT_EQ(d->changes[0].op, ChangeOp::kAdd);
  EXPECT_EQ(d->rollout, Rollout::kInPlace);

  PlanOptions options;
  options.ignore_differences = *ParseIgnoreRules("Service:/spec/ports, Deployment:/metadata");
  p = ComputePlan(want, had, nullptr, options);
  EXPECT_EQ(p.Find(DeploymentKey("web"))->action, Action::kUnchanged);
  EXPECT_EQ(p.Find({"Service", "default", "web"})->action, Action::kUnchanged);
  options.ignore_differences = *ParseIgnoreRules("Deployment:/spec/ports");  // wrong kind
  p = ComputePlan(want, had, nullptr, options);
  EXPECT_EQ(p.Find({"Service", "default", "web"})->action, Action::kUpdate);
}

TEST(ComputePlan, MalformedIgnoreAnnotationIsAWarningNotAnError) {
  auto had = Parse(Deployment("web", 3, "app:1"));
  auto want = Parse(Deployment(
      "web", 4, "app:1", "  annotations:\n    ballast.dev/ignore-differences: spec.replicas\n"));
  ObjectPlan o = Only(ComputePlan(want, had, nullptr));
  EXPECT_EQ(o.action, Action::kUpdate);
  ASSERT_EQ(o.warnings.size(), 1u);
  EXPECT_NE(o.warnings[0].find("spec.replicas"), std::string::npos);
  EXPECT_NE(o.warnings[0].find("nothing ignored"), std::string::npos);
}

TEST(ParseIgnoreRules, ParsesKindsAndRejectsNonPointers) {
  auto r = ParseIgnoreRules(" /spec/replicas , Service:/spec/ports/0/nodePort,,");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_EQ(r->size(), 2u);
  EXPECT_EQ((*r)[0], (IgnoreRule{"", "/spec/replicas"}));
  EXPECT_EQ((*r)[1], (IgnoreRule{"Service", "/spec/ports/0/nodePort"}));
  EXPECT_FALSE(ParseIgnoreRules("spec/replicas").ok());
  EXPECT_FALSE(ParseIgnoreRules("Service:").ok());
  EXPECT_FALSE(ParseIgnoreRules("/a~9").ok());
  EXPECT_TRUE(ParseIgnoreRules("")->empty());
}

model::Pod MakePod(const std::string& name, const std::string& deployment,
                   const std::string& revision, const std::string& node) {
  model::Pod p;
  p.name = name;
  p.deployment = deployment;
  p.revision = revision;
  p.node = node;
  p.phase = model::PodPhase::kRunning;
  p.ready = true;
  return p;
}

model::LiveState Nodes(std::initializer_list<std::pair<const char*, bool>> nodes) {
  model::LiveState live;
  for (const auto& [name, ready] : nodes) {
    model::Node n;
    n.name = name;
    n.ready = ready;
    live.nodes[name] = n;
  }
  return live;
}

TEST(ComputePlanDrift, NoLiveStateMeansNoDrift) {
  auto want = Parse(Deployment("web", 3, "app:1"));
  Plan p = ComputePlan(want, want, nullptr);
  EXPECT_FALSE(p.live_known);
  EXPECT_TRUE(Only(p).drift.empty());
}

TEST(ComputePlanDrift, MissingAndExtraReplicas) {
  auto want = Parse(Deployment("web", 2, "app:1") + "---\n" + Deployment("api", 1, "api:1"));
  std::string web = model::PodTemplateHash(want[0].deployment()->spec.template_);
  std::string api = model::PodTemplateHash(want[1].deployment()->spec.template_);
  model::LiveState live = Nodes({{"n1", true}});
  live.pods.push_back(MakePod("web-1", "web", web, "n1"));
  live.pods.push_back(MakePod("api-1", "api", api, "n1"));
  live.pods.push_back(MakePod("api-2", "api", api, "n1"));
  Plan p = ComputePlan(want, want, &live);
  const ObjectPlan* w = p.Find(DeploymentKey("web"));
  ASSERT_EQ(w->drift.size(), 1u);
  EXPECT_EQ(w->drift[0].kind, DriftKind::kReplicasMissing);
  EXPECT_EQ(w->drift[0].message, "replicas missing: 1 of 2 running");
  EXPECT_EQ(w->action, Action::kUnchanged);
  EXPECT_FALSE(w->in_sync());
  const ObjectPlan* a = p.Find(DeploymentKey("api"));
  ASSERT_EQ(a->drift.size(), 1u);
  EXPECT_EQ(a->drift[0].kind, DriftKind::kExtraReplicas);
  EXPECT_EQ(p.counts().drift, 2);
  EXPECT_TRUE(p.has_changes());
}

TEST(ComputePlanDrift, EverythingInPlaceIsInSync) {
  auto want = Parse(Deployment("web", 2, "app:1"));
  std::string rev = model::PodTemplateHash(want[0].deployment()->spec.template_);
  model::LiveState live = Nodes({{"n1", true}, {"n2", true}});
  live.pods.push_back(MakePod("web-1", "web", rev, "n1"));
  live.pods.push_back(MakePod("web-2", "web", rev, "n2"));
  model::Pod leaving = MakePod("web-0", "web", "oldoldold1", "n1");
  leaving.terminating = true;
  live.pods.push_back(leaving);
  Plan p = ComputePlan(want, want, &live);
  EXPECT_TRUE(Only(p).in_sync()) << Only(p).drift.size();
  EXPECT_FALSE(p.has_changes());
}

TEST(ComputePlanDrift, InPlaceUpdateReportsOnlyNodeProblems) {
  auto had = Parse(Deployment("web", 2, "app:1"));
  auto want = Parse(Deployment("web", 4, "app:1"));
  std::string rev = model::PodTemplateHash(had[0].deployment()->spec.template_);
  model::LiveState live = Nodes({{"n1", true}});
  live.pods.push_back(MakePod("web-1", "web", rev, "n1"));
  live.pods.push_back(MakePod("web-2", "web", rev, "gone-node"));
  ObjectPlan o = Only(ComputePlan(want, had, &live));
  EXPECT_EQ(o.action, Action::kUpdate);
  ASSERT_EQ(o.drift.size(), 1u);
  EXPECT_EQ(o.drift[0].kind, DriftKind::kNodeGone);
  EXPECT_EQ(o.drift[0].pods, std::vector<std::string>{"web-2"});
  EXPECT_EQ(o.drift[0].message, "1 pod on a node that is gone: web-2 on gone-node");
}

TEST(ComputePlanDrift, AnIgnoredTemplateFieldTriggersNoRollout) {
  // The image is managed elsewhere: git's image differs from the applied one, the pods run the
  // applied revision, and the plan says all is in sync.
  auto had = Parse(Deployment("web", 1, "app:1"));
  auto want = Parse(Deployment("web", 1, "app:2"));
  std::string applied = model::PodTemplateHash(had[0].deployment()->spec.template_);
  model::LiveState live = Nodes({{"n1", true}});
  live.pods.push_back(MakePod("web-1", "web", applied, "n1"));
  PlanOptions options;
  options.ignore_differences =
      *ParseIgnoreRules("Deployment:/spec/template/spec/containers/*/image");
  Plan p = ComputePlan(want, had, &live, options);
  ObjectPlan o = Only(p);
  EXPECT_EQ(o.action, Action::kUnchanged);
  EXPECT_TRUE(o.in_sync()) << (o.drift.empty() ? "" : o.drift[0].message);
  EXPECT_EQ(o.old_revision, applied);
  EXPECT_FALSE(p.has_changes());
}

TEST(ComputePlanDrift, OrphanPodsArePlannedForDeletionInKeyOrder) {
  auto want = Parse(Deployment("b", 1, "b:1"));
  model::LiveState live = Nodes({{"n1", true}});
  live.pods.push_back(MakePod("c-1", "c", "r", "n1"));
  live.pods.push_back(MakePod("a-1", "a", "r", "n1"));
  Plan p = ComputePlan(want, {}, &live);
  ASSERT_EQ(p.objects.size(), 3u);
  EXPECT_EQ(p.objects[0].key, DeploymentKey("a"));
  EXPECT_EQ(p.objects[0].action, Action::kDelete);
  EXPECT_EQ(p.objects[0].drift.at(0).kind, DriftKind::kOrphanPods);
  EXPECT_EQ(p.objects[1].key, DeploymentKey("b"));
  EXPECT_EQ(p.objects[1].action, Action::kCreate);
  EXPECT_EQ(p.objects[2].key, DeploymentKey("c"));
}

TEST(ComputePlan, IsDeterministicWhateverTheInputOrder) {
  auto want = Parse(Deployment("a", 1, "a:1") + "---\n" + Deployment("b", 2, "b:1") + "---\n" +
                    Service("a", 80) + "---\n" + Service("c", 81));
  auto had = Parse(Deployment("b", 1, "b:1") + "---\n" + Service("c", 80) + "---\n" +
                   Deployment("z", 1, "z:1"));
  Plan p1 = ComputePlan(want, had, nullptr);
  std::reverse(want.begin(), want.end());
  std::reverse(had.begin(), had.end());
  Plan p2 = ComputePlan(want, had, nullptr);
  ASSERT_EQ(p1.objects.size(), 5u);
  ASSERT_EQ(p2.objects.size(), 5u);
  for (size_t i = 0; i < p1.objects.size(); ++i) {
    EXPECT_EQ(p1.objects[i].key, p2.objects[i].key);
    EXPECT_EQ(p1.objects[i].action, p2.objects[i].action);
    EXPECT_EQ(p1.objects[i].changes, p2.objects[i].changes);
  }
  EXPECT_TRUE(std::is_sorted(p1.objects.begin(), p1.objects.end(),
                             [](const auto& x, const auto& y) { return x.key < y.key; }));
}

TEST(RevisionCache, HashesOnlyWhatChanged) {
  auto a = Parse(Deployment("web", 1, "app:1"));
  auto b = Parse(Deployment("web", 1, "app:2"));
  const auto& ta = a[0].deployment()->spec.template_;
  const auto& tb = b[0].deployment()->spec.template_;
  RevisionCache cache;
  model::ObjectKey key = DeploymentKey("web");
  EXPECT_EQ(cache.Get(key, ta), model::PodTemplateHash(ta));
  EXPECT_EQ(cache.Get(key, ta), model::PodTemplateHash(ta));
  EXPECT_EQ(cache.misses(), 1u);
  EXPECT_EQ(cache.Get(key, tb), model::PodTemplateHash(tb));
  EXPECT_EQ(cache.misses(), 2u);
  EXPECT_EQ(cache.size(), 1u);
  cache.EndPlan();  // used in this round: kept
  EXPECT_EQ(cache.size(), 1u);
  cache.EndPlan();  // not asked for since: forgotten
  EXPECT_EQ(cache.size(), 0u);
}

TEST(ComputePlanDrift, SamePlanWithARevisionCache) {
  auto had = Parse(Deployment("web", 2, "app:1") + "---\n" + Deployment("api", 1, "api:1"));
  auto want = Parse(Deployment("web", 2, "app:2") + "---\n" + Deployment("api", 1, "api:1"));
  model::LiveState live = Nodes({{"n1", true}});
  live.pods.push_back(MakePod("api-1", "api", "stale12345", "n1"));
  live.pods.push_back(MakePod("web-1", "web", "stale12345", "n1"));
  RevisionCache cache;
  PlanOptions with_cache;
  with_cache.revisions = &cache;
  Plan plain = ComputePlan(want, had, &live);
  for (int round = 0; round < 2; ++round) {
    Plan cached = ComputePlan(want, had, &live, with_cache);
    ASSERT_EQ(cached.objects.size(), plain.objects.size());
    for (size_t i = 0; i < plain.objects.size(); ++i) {
      EXPECT_EQ(cached.objects[i].old_revision, plain.objects[i].old_revision);
      EXPECT_EQ(cached.objects[i].new_revision, plain.objects[i].new_revision);
      EXPECT_EQ(cached.objects[i].drift, plain.objects[i].drift);
    }
  }
}

TEST(StateFromJson, ReadsObjectsNodesAndPods) {
  model::Json j = {{"objects",
                    {{{"apiVersion", "v1"},
                      {"kind", "Service"},
                      {"metadata", {{"name", "web"}}},
                      {"spec", {{"selector", {{"app", "web"}}}, {"ports", {{{"port", 80}}}}}}}}},
                   {"nodes", {{{"name", "n1"}, {"ready", true}}}},
                   {"pods", {{{"name", "web-1"}, {"deployment", "web"}, {"node", "n1"}}}}};
  auto s = StateFromJson(j, "state.json");
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  ASSERT_EQ(s->objects.size(), 1u);
  EXPECT_EQ(s->objects[0].service()->spec.ports.at(0).port, 80);
  ASSERT_TRUE(s->live.has_value());
  EXPECT_TRUE(s->live->nodes.at("n1").ready);
  EXPECT_EQ(s->live->pods.at(0).deployment, "web");
  // Objects only: the live state is unknown, not empty.
  auto objects_only = StateFromJson({{"objects", j["objects"]}}, "state.json");
  ASSERT_TRUE(objects_only.ok());
  EXPECT_FALSE(objects_only->live.has_value());
  // And back.
  auto again = StateFromJson(ToJson(*s), "again.json");
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_EQ(again->objects[0].value, s->objects[0].value);
  EXPECT_EQ(again->live->pods, s->live->pods);
}

TEST(StateFromJson, ErrorsNameTheEntry) {
  auto unknown = StateFromJson({{"object", model::Json::array()}}, "s.json");
  ASSERT_FALSE(unknown.ok());
  EXPECT_NE(unknown.status().message().find("unknown key \"object\""), std::string::npos);
  auto bad_object = StateFromJson(
      {{"objects", {{{"apiVersion", "apps/v1"}, {"kind", "Deployment"}, {"metadata", 3}}}}},
      "s.json");
  ASSERT_FALSE(bad_object.ok());
  EXPECT_NE(bad_object.status().message().find("objects[0]"), std::string::npos)
      << bad_object.status().message();
  auto dup_node = StateFromJson({{"nodes", {{{"name", "n1"}}, {{"name", "n1"}}}}}, "s.json");
  ASSERT_FALSE(dup_node.ok());
  EXPECT_NE(dup_node.status().message().find("listed twice"), std::string::npos);
  EXPECT_FALSE(StateFromJson({{"pods", 3}}, "s.json").ok());
  EXPECT_FALSE(StateFromJson(model::Json::array(), "s.json").ok());
  model::Json deep = 1;
  for (int i = 0; i < 150; ++i) deep = model::Json::array({std::move(deep)});
  auto too_deep = StateFromJson({{"objects", {{{"kind", "Service"}, {"x", deep}}}}}, "s.json");
  ASSERT_FALSE(too_deep.ok());
  EXPECT_NE(too_deep.status().message().find("nested deeper"), std::string::npos);
}

TEST(ComputePlan, DuplicateKeysKeepTheFirstWithAWarning) {
  auto want = Parse(Deployment("web", 1, "app:1"));
  auto twice = want;
  twice.push_back(Parse(Deployment("web", 5, "app:9"))[0]);
  ObjectPlan o = Only(ComputePlan(twice, want, nullptr));
  EXPECT_EQ(o.action, Action::kUnchanged);
  ASSERT_EQ(o.warnings.size(), 1u);
  EXPECT_NE(o.warnings[0].find("more than once"), std::string::npos);
}

}  // namespace
}  // namespace ballast::diff
