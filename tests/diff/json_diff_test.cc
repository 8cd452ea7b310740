#include "diff/json_diff.h"

#include <gtest/gtest.h>

namespace ballast::diff {
namespace {

using model::Json;

std::vector<std::string> Segs(const std::string& p) {
  auto r = ParsePointer(p);
  EXPECT_TRUE(r.ok()) << r.status().ToString();
  return r.ok() ? *r : std::vector<std::string>{};
}

TEST(ParsePointer, UnescapesSegments) {
  EXPECT_EQ(Segs("/metadata/annotations/ballast.dev~1prune"),
            (std::vector<std::string>{"metadata", "annotations", "ballast.dev/prune"}));
  EXPECT_EQ(Segs("/a~0b/"), (std::vector<std::string>{"a~b", ""}));
}

TEST(ParsePointer, RejectsWhatIsNotAPointer) {
  auto r = ParsePointer("spec/replicas");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("must start with \"/\""), std::string::npos);
  EXPECT_FALSE(ParsePointer("/a~2").ok());
  EXPECT_FALSE(ParsePointer("").ok());
}

TEST(EscapePointerSegment, RoundTrips) {
  EXPECT_EQ(EscapePointerSegment("a/b~c"), "a~1b~0c");
  EXPECT_EQ(Segs(std::string("/").append(EscapePointerSegment("a/b~c"))),
            (std::vector<std::string>{"a/b~c"}));
}

TEST(JoinField, QuotesKeysThatAreNotIdentifiers) {
  EXPECT_EQ(JoinField("", "spec"), "spec");
  EXPECT_EQ(JoinField("spec", "replicas"), "spec.replicas");
  EXPECT_EQ(JoinField("metadata.annotations", "ballast.dev/prune"),
            "metadata.annotations[\"ballast.dev/prune\"]");
}

TEST(ItemKey, FollowsKubernetesMergeKeys) {
  EXPECT_EQ(ItemKey("containers", Json{{"name", "web"}}), "web");
  EXPECT_EQ(ItemKey("env", Json{{"name", "A"}, {"value", "1"}}), "A");
  EXPECT_EQ(ItemKey("ports", Json{{"containerPort", 8080}}), "8080/TCP");
  EXPECT_EQ(ItemKey("ports", Json{{"port", 53}, {"protocol", "UDP"}}), "53/UDP");
  EXPECT_EQ(ItemKey("volumeMounts", Json{{"mountPath", "/data"}, {"name", "d"}}), "/data");
  EXPECT_EQ(ItemKey("tolerations", Json{{"key", "k"}}), "");
  EXPECT_EQ(ItemKey("containers", Json("web")), "");
}

TEST(DiffDocuments, EqualDocumentsHaveNoChanges) {
  Json a = {{"spec", {{"replicas", 3}, {"list", {1, 2}}}}};
  std::vector<FieldChange> out;
  DiffDocuments(a, a, &out);
  EXPECT_TRUE(out.empty());
}

TEST(DiffDocuments, ReportsAddRemoveReplaceWithPaths) {
  Json a = {{"metadata", {{"annotations", {{"ballast.dev/x", "1"}, {"old", "o"}}}}},
            {"spec", {{"replicas", 3}}}};
  Json b = {{"metadata", {{"annotations", {{"ballast.dev/x", "2"}, {"new", "n"}}}}},
            {"spec", {{"replicas", 5}}}};
  std::vector<FieldChange> out;
  DiffDocuments(a, b, &out);
  ASSERT_EQ(out.size(), 4u);
  EXPECT_EQ(out[0].path, "/metadata/annotations/ballast.dev~1x");
  EXPECT_EQ(out[0].field, "metadata.annotations[\"ballast.dev/x\"]");
  EXPECT_EQ(out[0].op, ChangeOp::kReplace);
  EXPECT_EQ(out[0].old_value, "1");
  EXPECT_EQ(out[0].new_value, "2");
  EXPECT_EQ(out[1].field, "metadata.annotations.new");
  EXPECT_EQ(out[1].op, ChangeOp::kAdd);
  EXPECT_TRUE(out[1].old_value.is_null());
  EXPECT_EQ(out[2].field, "metadata.annotations.old");
  EXPECT_EQ(out[2].op, ChangeOp::kRemove);
  EXPECT_EQ(out[3].path, "/spec/replicas");
  EXPECT_EQ(out[3].old_value, 3);
  EXPECT_EQ(out[3].new_value, 5);
}

TEST(DiffDocuments, MatchesContainersByNameNotPosition) {
  // A container inserted before another shows as one addition, not as every later one changed.
  Json a = {{"containers", {{{"name", "b"}, {"image", "b:1"}}, {{"name", "c"}, {"image", "c:1"}}}}};
  Json b = {{"containers",
             {{{"name", "a"}, {"image", "a:1"}},
              {{"name", "b"}, {"image", "b:1"}},
              {{"name", "c"}, {"image", "c:2"}}}}};
  std::vector<FieldChange> out;
  DiffDocuments(a, b, &out);
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[0].field, "containers[a]");
  EXPECT_EQ(out[0].path, "/containers/0");
  EXPECT_EQ(out[0].op, ChangeOp::kAdd);
  EXPECT_EQ(out[0].new_value["image"], "a:1");
  EXPECT_EQ(out[1].field, "containers[c].image");
  EXPECT_EQ(out[1].path, "/containers/2/image");
}

TEST(DiffDocuments, RemovedItemsComeLastWithTheirOldIndex) {
  Json a = {{"env", {{{"name", "A"}, {"value", "1"}}, {{"name", "B"}, {"value", "2"}}}}};
  Json b = {{"env", {{{"name", "B"}, {"value", "2"}}}}};
  std::vector<FieldChange> out;
  DiffDocuments(a, b, &out);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].field, "env[A]");
  EXPECT_EQ(out[0].path, "/env/0");
  EXPECT_EQ(out[0].op, ChangeOp::kRemove);
}

TEST(DiffDocuments, ReplacesScalarListsWhole) {
  Json a = {{"args", {"--a", "--b"}}};
  Json b = {{"args", {"--a", "--c", "--d"}}};
  std::vector<FieldChange> out;
  DiffDocuments(a, b, &out);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].field, "args");
  EXPECT_EQ(out[0].op, ChangeOp::kReplace);
  EXPECT_EQ(out[0].new_value, b["args"]);
}

TEST(DiffDocuments, UnkeyedObjectListsOfSameLengthGoItemByItem) {
  Json a = {{"tolerations", {{{"key", "a"}, {"effect", "NoSchedule"}}}}};
  Json b = {{"tolerations", {{{"key", "a"}, {"effect", "NoExecute"}}}}};
  std::vector<FieldChange> out;
  DiffDocuments(a, b, &out);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].field, "tolerations[0].effect");
}

TEST(DiffDocuments, TypeChangeIsAReplace) {
  std::vector<FieldChange> out;
  DiffDocuments(Json{{"port", 80}}, Json{{"port", "http"}}, &out);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].op, ChangeOp::kReplace);
}

TEST(RemoveAtPointer, RemovesByKeyIndexNamePortAndWildcard) {
  Json doc = {
      {"metadata", {{"annotations", {{"a/b", "1"}, {"c", "2"}}}}},
      {"spec",
       {{"replicas", 3},
        {"ports", {{{"port", 80}, {"nodePort", 30080}}, {{"port", 90}, {"nodePort", 30090}}}},
        {"containers",
         {{{"name", "web"}, {"image", "w"}, {"env", {{{"name", "X"}}, {{"name", "Y"}}}}},
          {{"name", "side"}, {"image", "s"}}}}}}};
  EXPECT_EQ(RemoveAtPointer(doc, Segs("/metadata/annotations/a~1b")), 1);
  EXPECT_FALSE(doc["metadata"]["annotations"].contains("a/b"));
  EXPECT_EQ(RemoveAtPointer(doc, Segs("/spec/ports/80/nodePort")), 1);
  EXPECT_FALSE(doc["spec"]["ports"][0].contains("nodePort"));
  EXPECT_TRUE(doc["spec"]["ports"][1].contains("nodePort"));
  EXPECT_EQ(RemoveAtPointer(doc, Segs("/spec/containers/web/env/Y")), 1);
  EXPECT_EQ(doc["spec"]["containers"][0]["env"].size(), 1u);
  EXPECT_EQ(RemoveAtPointer(doc, Segs("/spec/containers/*/image")), 2);
  EXPECT_FALSE(doc["spec"]["containers"][1].contains("image"));
  EXPECT_EQ(RemoveAtPointer(doc, Segs("/spec/containers/1")), 1);
  EXPECT_EQ(doc["spec"]["containers"].size(), 1u);
  EXPECT_EQ(RemoveAtPointer(doc, Segs("/spec/nothing/here")), 0);
  EXPECT_EQ(RemoveAtPointer(doc, Segs("/spec/replicas/deeper")), 0);
  EXPECT_EQ(RemoveAtPointer(doc, Segs("/spec/replicas")), 1);
  EXPECT_FALSE(doc["spec"].contains("replicas"));
}

}  // namespace
}  // namespace ballast::diff

namespace ballast::diff {
namespace {

model::Json Nested(int depth) {
  model::Json v = 1;
  for (int i = 0; i < depth; ++i) v = model::Json::array({std::move(v)});
  return v;
}

TEST(JsonDeeperThan, CountsMapsAndLists) {
  EXPECT_FALSE(JsonDeeperThan(model::Json(3), 0));
  EXPECT_FALSE(JsonDeeperThan(Nested(5), 5));
  EXPECT_TRUE(JsonDeeperThan(Nested(6), 5));
  EXPECT_TRUE(JsonDeeperThan(model::Json{{"a", {{"b", Nested(3)}}}}, 4));
}

}  // namespace
}  // namespace ballast::diff
