#include "diff/render_markdown.h"

#include <gtest/gtest.h>

#include <string>

#include "diff/plan.h"
#include "diff/redact.h"
#include "model/manifest.h"

namespace ballast::diff {
namespace {

std::string Web(const std::string& image, const std::string& password,
                const std::string& annotation = "x") {
  return "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\n  annotations: {note: \"" +
         annotation +
         "\"}\nspec:\n  replicas: 2\n  selector: {matchLabels: {app: web}}\n  template:\n"
         "    metadata: {labels: {app: web}}\n    spec:\n      containers:\n"
         "        - name: web\n          image: " +
         image + "\n          env: [{name: PASSWORD, value: \"" + password + "\"}]\n";
}

const char kService[] =
    "apiVersion: v1\nkind: Service\nmetadata: {name: web}\nspec:\n  selector: {app: web}\n"
    "  ports: [{port: 80}]\n";

// The plan of `head` against `base` (each one manifest file), redacted as the CLI does.
Plan PlanOf(const std::string& base, const std::string& head) {
  auto old_set = model::ParseManifestFile("base.yaml", base);
  auto new_set = model::ParseManifestFile("head.yaml", head);
  EXPECT_EQ(model::CountErrors(old_set.diagnostics) + model::CountErrors(new_set.diagnostics), 0u);
  return Redacted(ComputePlan(new_set.manifests, old_set.manifests, nullptr));
}

TEST(RenderMarkdown, ATableOfChangesPerKindAndEachObjectsDiffFolded) {
  const std::string md = RenderMarkdown(
      PlanOf(Web("app:1", "hunter2"), Web("app:2", "swordfish") + "---\n" + kService));
  EXPECT_EQ(
      md.rfind("### ballast plan: Plan: 1 to create, 1 to update (1 rolling), 0 to delete", 0), 0u)
      << md;
  EXPECT_NE(md.find("| Kind | Create | Update | of which roll pods | Delete | Refused | Drifted |"),
            std::string::npos)
      << md;
  EXPECT_NE(md.find("| Deployment | 0 | 1 | 1 | 0 | 0 | 0 |"), std::string::npos) << md;
  EXPECT_NE(md.find("| Service | 1 | 0 | 0 | 0 | 0 | 0 |"), std::string::npos) << md;
  EXPECT_NE(md.find("<details><summary><b>rolling update</b> Deployment default/web (2 changes)"
                    "</summary>"),
            std::string::npos)
      << md;
  EXPECT_NE(md.find("<details><summary><b>create</b> Service default/web</summary>"),
            std::string::npos)
      << md;
  EXPECT_NE(md.find("```diff\n--- a/Deployment/default/web\n+++ b/Deployment/default/web\n"),
            std::string::npos)
      << md;
  EXPECT_NE(md.find("\n-        image: app:1\n"), std::string::npos) << md;
  EXPECT_NE(md.find("\n+        image: app:2\n"), std::string::npos) << md;
  // Secret values never: only that one changed.
  EXPECT_EQ(md.find("hunter2"), std::string::npos) << md;
  EXPECT_EQ(md.find("swordfish"), std::string::npos) << md;
  EXPECT_NE(md.find("<redacted: changed>"), std::string::npos) << md;
}

TEST(RenderMarkdown, NothingToChangeIsOneLine) {
  const std::string md = RenderMarkdown(PlanOf(kService, kService));
  EXPECT_EQ(md, "### ballast plan: No changes: 1 unchanged.\n\n");
}

// What a manifest holds cannot break out of the comment's markup: backticks in a value get a
// longer fence; markup in a name or message is escaped.
TEST(RenderMarkdown, ContentCannotEndItsCodeBlockOrAddMarkup) {
  const std::string md = RenderMarkdown(
      PlanOf(Web("app:1", "a"), Web("app:1", "a", "```` </details><script>alert(1)</script>")));
  EXPECT_NE(md.find("`````diff\n"), std::string::npos) << md;
  EXPECT_NE(md.find("\n`````\n"), std::string::npos) << md;
  auto unsupported = model::ParseManifestFile(
      "x.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: \"a|b\"}\ndata: {}\n");
  const std::string kept = RenderMarkdown(ComputePlan(unsupported.manifests, {}, nullptr));
  EXPECT_NE(kept.find("ConfigMap default/a\\|b (not run by ballast)"), std::string::npos) << kept;
}

TEST(RenderMarkdown, ALongDiffIsCutWithANote) {
  MarkdownOptions options;
  options.max_diff_lines = 5;
  const std::string md =
      RenderMarkdown(PlanOf(Web("app:1", "a"), Web("app:2", "a") + "---\n" + kService), options);
  EXPECT_NE(md.find("*(cut at 5 lines: `ballast plan --diff` shows all)*"), std::string::npos)
      << md;
}

}  // namespace
}  // namespace ballast::diff
