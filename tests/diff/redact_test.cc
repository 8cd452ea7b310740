// Secret values out of a plan (diff/redact.h): what a viewer reads names every variable and
// whether it changed, never a value.

#include "diff/redact.h"

#include <gtest/gtest.h>

#include <string>

#include "diff/plan.h"
#include "diff/render.h"
#include "model/manifest.h"

namespace ballast::diff {
namespace {

using model::Json;
using model::Manifest;

std::vector<Manifest> ParseWithSecrets(const std::string& yaml) {
  auto r = model::ParseManifestFile("test.yaml", yaml);
  for (const auto& d : r.diagnostics) {
    EXPECT_FALSE(d.is_error()) << d.ToString();
  }
  return r.manifests;
}

std::string WebWithEnv(const std::string& env, const std::string& extra_container = "") {
  return "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\n"
         "spec:\n  selector: {matchLabels: {app: web}}\n"
         "  template:\n    metadata: {labels: {app: web}}\n    spec:\n      containers:\n"
         "      - name: web\n        image: web:1\n        env:\n" +
         env + extra_container;
}

// Everything a reader of the plan gets: the JSON with changes, documents and diffs, and text.
std::string AllReadersGet(const Plan& plan) {
  JsonOptions o;
  o.include_diff = true;
  o.include_documents = true;
  return ToJson(plan, o).dump() + RenderText(plan);
}

TEST(Redact, AChangedValueShowsAsChangedAndNoValueIsLeft) {
  auto applied =
      ParseWithSecrets(WebWithEnv("        - {name: TOKEN, value: old-s3cret}\n"
                                  "        - {name: MODE, value: same-s3cret}\n"));
  auto desired =
      ParseWithSecrets(WebWithEnv("        - {name: TOKEN, value: new-s3cret}\n"
                                  "        - {name: MODE, value: same-s3cret}\n"));
  const Plan plan = ComputePlan(desired, applied, nullptr);
  ASSERT_NE(AllReadersGet(plan).find("new-s3cret"), std::string::npos) << "nothing to redact";
  const Plan redacted = Redacted(plan);
  const std::string all = AllReadersGet(redacted);
  EXPECT_EQ(all.find("s3cret"), std::string::npos) << all;
  ASSERT_EQ(redacted.objects.size(), 1u);
  ASSERT_EQ(redacted.objects[0].changes.size(), 1u);
  const FieldChange& c = redacted.objects[0].changes[0];
  EXPECT_EQ(c.field, "spec.template.spec.containers[web].env[TOKEN].value");
  EXPECT_EQ(c.old_value, std::string(kRedacted));
  EXPECT_EQ(c.new_value, std::string(kRedactedChanged));
  // The unified diff still has a line for the change, and none for the unchanged value.
  const std::string unified = RenderUnifiedDiff(redacted.objects[0]);
  EXPECT_NE(unified.find("+          value: \"<redacted: changed>\""), std::string::npos)
      << unified;
  EXPECT_EQ(unified.find("MODE\n-"), std::string::npos) << unified;
}

TEST(Redact, ANewContainerAndANewObjectCarryNoValue) {
  auto applied = ParseWithSecrets(WebWithEnv("        - {name: A, value: a-s3cret}\n"));
  auto desired =
      ParseWithSecrets(WebWithEnv("        - {name: A, value: a-s3cret}\n",
                                  "      - name: side\n        image: side:1\n        env:\n"
                                  "        - {name: B, value: b-s3cret}\n"));
  EXPECT_EQ(AllReadersGet(Redacted(ComputePlan(desired, applied, nullptr))).find("s3cret"),
            std::string::npos);
  EXPECT_EQ(AllReadersGet(Redacted(ComputePlan(desired, {}, nullptr))).find("s3cret"),
            std::string::npos);
  EXPECT_EQ(AllReadersGet(Redacted(ComputePlan({}, desired, nullptr))).find("s3cret"),
            std::string::npos);
}

TEST(Redact, EnvironmentReferencesAndOtherFieldsNamedEnvStay) {
  Json doc = Json::parse(R"({"metadata": {"labels": {"env": "prod"}},
      "spec": {"containers": [{"env": [{"name": "X", "valueFrom": {"secretKeyRef":
      {"name": "db", "key": "password"}}}, {"name": "Y", "value": "s3cret"}]}]}})");
  RedactDocument(doc, /*secret_kind=*/false);
  EXPECT_EQ(doc["metadata"]["labels"]["env"], "prod");
  EXPECT_EQ(doc["spec"]["containers"][0]["env"][0]["valueFrom"]["secretKeyRef"]["key"], "password");
  EXPECT_EQ(doc["spec"]["containers"][0]["env"][1]["value"], std::string(kRedacted));
}

TEST(Redact, ASecretsDataIsRedacted) {
  Json secret = Json::parse(
      R"({"kind": "Secret", "data": {"password": "czNjcmV0"}, "stringData": {"k": "s3cret"}})");
  RedactDocument(secret, /*secret_kind=*/true);
  EXPECT_EQ(secret.dump().find("czNjcmV0"), std::string::npos);
  EXPECT_EQ(secret.dump().find("s3cret"), std::string::npos);
  EXPECT_EQ(secret["data"]["password"], std::string(kRedacted));
}

// A misspelt field ("stringdata", only a warning) is a Secret's value all the same: a plan,
// its diff and the PR comment show it to nobody, admins included.
TEST(Redact, AMisspeltSecretFieldIsRedactedToo) {
  auto had = ParseWithSecrets(
      "apiVersion: v1\nkind: Secret\nmetadata: {name: db}\n"
      "stringdata: {password: hunter2}\n");
  auto want = ParseWithSecrets(
      "apiVersion: v1\nkind: Secret\nmetadata: {name: db}\n"
      "stringdata: {password: swordfish}\ntype: Opaque\n");
  for (const Plan& plan : {WithoutSecretData(ComputePlan(want, had, nullptr)),
                           WithoutSecretData(ComputePlan(want, {}, nullptr))}) {
    std::string all = ToJson(plan, JsonOptions{true, true}).dump() + RenderText(plan);
    for (const auto& o : plan.objects) all += RenderUnifiedDiff(o);
    EXPECT_EQ(all.find("hunter2"), std::string::npos) << all;
    EXPECT_EQ(all.find("swordfish"), std::string::npos) << all;
    EXPECT_NE(all.find("Opaque"), std::string::npos) << all;
  }
}

}  // namespace
}  // namespace ballast::diff
