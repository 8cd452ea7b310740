#include "diff/render.h"

#include <gtest/gtest.h>

#include <string>

#include "diff/plan.h"
#include "model/manifest.h"

namespace ballast::diff {
namespace {

using model::Json;

ObjectPlan Object(const std::string& kind, const std::string& name, Action action) {
  ObjectPlan o;
  o.key = {kind, "default", name};
  o.api_version = kind == "Deployment" ? "apps/v1"
                  : kind == "Ingress"  ? "networking.k8s.io/v1"
                                       : "v1";
  o.action = action;
  return o;
}

Plan SamplePlan() {
  Plan p;
  ObjectPlan up = Object("Deployment", "api", Action::kUpdate);
  up.rollout = Rollout::kRollingUpdate;
  up.old_revision = "bcdfghjklm";
  up.new_revision = "2456789bcd";
  up.changes.push_back({"/spec/template/spec/containers/0/image",
                        "spec.template.spec.containers[api].image", ChangeOp::kReplace, "app:1",
                        "app:2", true});
  up.changes.push_back({"/spec/template/spec/containers/0/env/0",
                        "spec.template.spec.containers[api].env[DEBUG]", ChangeOp::kAdd, nullptr,
                        Json{{"name", "DEBUG"}, {"value", "1"}}, true});
  up.old_doc = Json{{"a", 1}};
  up.new_doc = Json{{"a", 2}};
  p.objects.push_back(up);
  ObjectPlan del = Object("Service", "old", Action::kDelete);
  del.old_doc = Json{{"spec", {{"type", "ClusterIP"}}}};
  p.objects.push_back(del);
  p.objects.push_back(Object("Service", "same", Action::kUnchanged));
  ObjectPlan un = Object("Ingress", "web", Action::kUnsupported);
  un.message = "kind Ingress (networking.k8s.io/v1) is not run by ballast: listed, not applied";
  p.objects.push_back(un);
  return p;
}

TEST(RenderText, NomadStyleBlocksAndCounts) {
  EXPECT_EQ(RenderText(SamplePlan()),
            "+/- Deployment default/api (update: forces rolling update, 2 changes)\n"
            "    +/- spec.template.spec.containers[api].image: \"app:1\" => \"app:2\"\n"
            "    + spec.template.spec.containers[api].env[DEBUG].name: \"DEBUG\"\n"
            "    + spec.template.spec.containers[api].env[DEBUG].value: \"1\"\n"
            "      revision: bcdfghjklm => 2456789bcd\n"
            "\n"
            "- Service default/old (delete)\n"
            "    - spec.type: \"ClusterIP\"\n"
            "\n"
            "? Ingress default/web (unsupported: networking.k8s.io/v1 Ingress is not run by "
            "ballast)\n"
            "\n"
            "Scheduler dry-run:\n"
            "- not run\n"
            "\n"
            "Plan: 0 to create, 1 to update (1 rolling), 1 to delete; 1 unchanged, 1 "
            "unsupported.\n");
}

TEST(RenderText, VerboseListsUnchangedObjects) {
  std::string text = RenderText(SamplePlan(), {.verbose = true});
  EXPECT_NE(text.find("  Service default/same (unchanged)\n"), std::string::npos) << text;
}

TEST(RenderText, SchedulerDryRunSection) {
  Plan p;
  p.scheduler = SchedulerDryRun{};
  EXPECT_NE(RenderText(p).find("Scheduler dry-run:\n- All pods placed.\n"), std::string::npos);
  p.scheduler->all_placed = false;
  p.scheduler->notes.push_back(
      {"Deployment default/web", "0/3 nodes are available: 3 Insufficient cpu.", true});
  EXPECT_NE(RenderText(p).find("Scheduler dry-run:\n- WARNING: Deployment default/web: 0/3 nodes "
                               "are available: 3 Insufficient cpu.\n"),
            std::string::npos)
      << RenderText(p);
  EXPECT_NE(RenderText(p).find("No changes: 0 unchanged.\n"), std::string::npos);
}

TEST(ToJson, CarriesActionsChangesAndSummary) {
  Json j = ToJson(SamplePlan(), {.include_diff = true});
  EXPECT_EQ(j["changed"], true);
  EXPECT_EQ(j["refused"], false);
  EXPECT_EQ(j["summary"]["update"], 1);
  EXPECT_EQ(j["summary"]["rolling"], 1);
  EXPECT_EQ(j["summary"]["delete"], 1);
  EXPECT_EQ(j["summary"]["unsupported"], 1);
  EXPECT_TRUE(j["schedulerDryRun"].is_null());
  const Json& api = j["objects"][0];
  EXPECT_EQ(api["action"], "update");
  EXPECT_EQ(api["rollout"], "rollingUpdate");
  EXPECT_EQ(api["changes"][0]["op"], "replace");
  EXPECT_EQ(api["changes"][0]["old"], "app:1");
  EXPECT_EQ(api["changes"][1]["op"], "add");
  EXPECT_FALSE(api["changes"][1].contains("old"));
  EXPECT_TRUE(api.contains("diff"));
  EXPECT_FALSE(j["objects"][2].contains("diff"));  // unchanged: no diff
}

TEST(PlanFromJson, RejectsMalformedPlansWithoutThrowing) {
  EXPECT_FALSE(PlanFromJson(Json::array()).ok());
  EXPECT_FALSE(PlanFromJson(Json{{"objects", 3}}).ok());
  auto bad_action = PlanFromJson(
      Json{{"objects", {{{"kind", "Deployment"}, {"name", "web"}, {"action", "explode"}}}}});
  ASSERT_FALSE(bad_action.ok());
  EXPECT_NE(bad_action.status().message().find("objects[0]: action"), std::string::npos)
      << bad_action.status().message();
  auto wrong_type =
      PlanFromJson(Json{{"objects", Json::array()}, {"schedulerDryRun", {{"allPlaced", "yes"}}}});
  EXPECT_FALSE(wrong_type.ok());
}

// Found by fuzz/plan_fuzz: a document of a kind ballast does not run, without a name, made the
// plan's JSON unreadable to `ballast plan --server` ("kind and name required"). Listed objects
// may be nameless; objects ballast acts on may not.
TEST(PlanFromJson, ReadsANamelessUnsupportedObjectBack) {
  auto parsed = model::ParseManifestFile("kustomize.yaml",
                                         "apiVersion: apps/v1\nkind: Deployetm\nmetadata: {}\n");
  ASSERT_EQ(parsed.manifests.size(), 1u);
  const Plan plan = ComputePlan(parsed.manifests, {}, nullptr);
  ASSERT_EQ(plan.objects.size(), 1u);
  ASSERT_EQ(plan.objects[0].action, Action::kUnsupported);
  auto back = PlanFromJson(Json::parse(ToJson(plan).dump()));
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  ASSERT_EQ(back->objects.size(), 1u);
  EXPECT_EQ(back->objects[0].key.kind, "Deployetm");
  EXPECT_FALSE(
      PlanFromJson(Json{{"objects", {{{"kind", "Deployment"}, {"action", "create"}}}}}).ok())
      << "an object ballast acts on still needs its name";
}

TEST(ToJson, OutOfSyncOnlyLeavesInSyncObjectsOut) {
  JsonOptions options;
  options.out_of_sync_only = true;
  Json j = ToJson(SamplePlan(), options);
  ASSERT_EQ(j["objects"].size(), 3u);  // update, delete, unsupported; not the unchanged one
  EXPECT_EQ(j["summary"]["unchanged"], 1);
}

TEST(FormatValue, QuotesStringsOnly) {
  EXPECT_EQ(FormatValue("a\"b"), "\"a\\\"b\"");
  EXPECT_EQ(FormatValue(3), "3");
  EXPECT_EQ(FormatValue(true), "true");
  EXPECT_EQ(FormatValue(Json::array({"a", 1})), "[\"a\",1]");
  EXPECT_EQ(FormatValue(std::string("\xff")), "\"\xef\xbf\xbd\"");  // invalid UTF-8: replaced
}

}  // namespace
}  // namespace ballast::diff
