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
  EXPECT_NE(md.find("| `Deployment` | 0 | 1 | 1 | 0 | 0 | 0 |"), std::string::npos) << md;
  EXPECT_NE(md.find("| `Service` | 1 | 0 | 0 | 0 | 0 | 0 |"), std::string::npos) << md;
  EXPECT_NE(
      md.find(
          "<details><summary><b>rolling update</b> <code>Deployment default/web</code> (2 changes)"
          "</summary>"),
      std::string::npos)
      << md;
  EXPECT_NE(md.find("<details><summary><b>create</b> <code>Service default/web</code></summary>"),
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
      "x.yaml", "apiVersion: v1\nkind: PodTemplate\nmetadata: {name: \"a|b\"}\n");
  const std::string kept = RenderMarkdown(ComputePlan(unsupported.manifests, {}, nullptr));
  EXPECT_NE(kept.find("`PodTemplate default/a\\|b` (not run by ballast)"), std::string::npos)
      << kept;
}

TEST(RenderMarkdown, ALongDiffIsCutWithANote) {
  MarkdownOptions options;
  options.max_diff_lines = 5;
  const std::string md =
      RenderMarkdown(PlanOf(Web("app:1", "a"), Web("app:2", "a") + "---\n" + kService), options);
  EXPECT_NE(md.find("*(cut: `ballast plan --diff` shows all)*"), std::string::npos) << md;
}

// GitHub refuses a comment over 65,536 characters: a plan of many large changes is cut, by
// whole sections, and says so; one very long line is cut inside its section.
TEST(RenderMarkdown, TheCommentStaysUnderItsSizeLimit) {
  std::string base, head;
  for (int i = 0; i < 40; ++i) {
    const std::string name = "web" + std::to_string(i);
    auto one = [&](const std::string& image) {
      return "---\napiVersion: v1\nkind: Service\nmetadata:\n  name: " + name +
             "\n  annotations: {big: \"" + std::string(3000, 'x') + image +
             "\"}\nspec:\n  selector: {app: web}\n  ports: [{port: 80}]\n";
    };
    base += one("1");
    head += one("2");
  }
  MarkdownOptions options;
  options.max_chars = 20000;
  const std::string md = RenderMarkdown(PlanOf(base, head), options);
  EXPECT_LE(md.size(), 20000u);
  EXPECT_NE(md.find(" more parts left out: a comment holds at most 20000 characters"),
            std::string::npos)
      << md.substr(md.size() - 300);
  const std::string long_line = RenderMarkdown(
      PlanOf(base.substr(0, base.find("---", 3)), head.substr(0, head.find("---", 3))), options);
  EXPECT_LE(long_line.size(), 20000u);
}

// Names and kinds are code, never markup: no mention, link or table cell from a manifest.
TEST(RenderMarkdown, NamesAreCodeAndMentionsDoNotNotify) {
  auto parsed = model::ParseManifestFile(
      "x.yaml", "apiVersion: v1\nkind: \"@acme/security\"\nmetadata: {name: \"a`b|c\"}\n");
  const std::string md = RenderMarkdown(ComputePlan(parsed.manifests, {}, nullptr));
  EXPECT_NE(md.find("``@acme/security default/a`b\\|c``"), std::string::npos) << md;
  Plan warned;
  warned.warnings = {"ignore rule \"@team\" is malformed"};
  const std::string w = RenderMarkdown(warned);
  EXPECT_NE(w.find("> **Warning:** ignore rule \"@\u2060team\" is malformed"), std::string::npos)
      << w;
}

}  // namespace
}  // namespace ballast::diff
