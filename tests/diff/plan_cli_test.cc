// The real `ballast plan` binary on the golden cases: exit codes 0/1/2 and both output formats.

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>
#include <string>

#include <nlohmann/json.hpp>

#include "diff/plan.h"
#include "diff/render.h"
#include "diff/state.h"
#include "model/manifest.h"
#include "net/server.h"

namespace {

namespace fs = std::filesystem;

struct Outcome {
  int code = -1;
  std::string out, err;
};

std::string Slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

std::string Quote(const std::string& s) {
  std::string q = "'";
  for (char c : s) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

class PlanCli : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/ballast-plan-cli-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { fs::remove_all(dir_); }

  Outcome Plan(const std::string& args) {
    std::string cmd = std::string(Quote(BALLAST_BINARY)) + " plan " + args + " >" +
                      Quote((dir_ / "out").string()) + " 2>" + Quote((dir_ / "err").string()) +
                      " </dev/null";
    int status = std::system(cmd.c_str());
    Outcome r;
    r.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    r.out = Slurp(dir_ / "out");
    r.err = Slurp(dir_ / "err");
    return r;
  }

  static std::string Case(const std::string& name, const std::string& file) {
    return Quote((fs::path(BALLAST_SOURCE_DIR) / "tests/testdata/diff" / name / file).string());
  }

  fs::path dir_;
};

TEST_F(PlanCli, AgainstNothingEverythingIsCreatedAndExitIsOne) {
  Outcome r = Plan(Case("create", "desired.yaml"));
  EXPECT_EQ(r.code, 1) << r.err;
  EXPECT_NE(r.out.find("+ Deployment default/web (create)\n"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("+ Service default/web (create)\n"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("Plan: 2 to create, 0 to update, 0 to delete"), std::string::npos);
}

TEST_F(PlanCli, NoChangesExitsZero) {
  Outcome r = Plan(Case("env-reordered", "desired.yaml") + " --against " +
                   Case("env-reordered", "state.json"));
  EXPECT_EQ(r.code, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("No changes: 1 unchanged."), std::string::npos) << r.out;
}

TEST_F(PlanCli, ADirectoryIsReadRecursively) {
  fs::create_directories(dir_ / "tree/apps");
  fs::copy_file(fs::path(BALLAST_SOURCE_DIR) / "tests/testdata/diff/image-change/desired.yaml",
                dir_ / "tree/apps/api.yaml");
  Outcome r = Plan(Quote((dir_ / "tree").string()) + " --against " +
                   Case("image-change", "state.json") + " --diff");
  EXPECT_EQ(r.code, 1) << r.err;
  EXPECT_NE(r.out.find("+/- Deployment default/api (update: forces rolling update, 1 change)"),
            std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find("--- a/Deployment/default/api\n+++ b/Deployment/default/api\n"),
            std::string::npos)
      << r.out;
  EXPECT_TRUE(std::regex_search(r.out, std::regex("\n- +image: registry.local/api:1.4.2\n"
                                                  "\\+ +image: registry.local/api:1.5.0\n")))
      << r.out;
}

TEST_F(PlanCli, JsonOutput) {
  Outcome r = Plan(Case("replicas-only", "desired.yaml") + " --against " +
                   Case("replicas-only", "state.json") + " -o json --diff");
  EXPECT_EQ(r.code, 1) << r.err;
  auto j = nlohmann::json::parse(r.out, nullptr, false);
  ASSERT_FALSE(j.is_discarded()) << r.out;
  EXPECT_EQ(j["changed"], true);
  EXPECT_EQ(j["objects"][0]["action"], "update");
  EXPECT_EQ(j["objects"][0]["rollout"], "inPlace");
  EXPECT_EQ(j["objects"][0]["changes"][0]["path"], "/spec/replicas");
  EXPECT_EQ(j["objects"][0]["changes"][0]["new"], 5);
  EXPECT_NE(j["objects"][0]["diff"].get<std::string>().find("-  replicas: 3\n+  replicas: 5\n"),
            std::string::npos)
      << j["objects"][0]["diff"];
}

// `--format markdown` (or `-o markdown`): a pull-request comment, exit codes as for text.
TEST_F(PlanCli, MarkdownForAPullRequestComment) {
  Outcome r = Plan(Case("image-change", "desired.yaml") + " --against " +
                   Case("image-change", "state.json") + " --format markdown");
  EXPECT_EQ(r.code, 1) << r.err;
  EXPECT_EQ(r.out.rfind("### ballast plan: Plan: 0 to create, 1 to update (1 rolling)", 0), 0u)
      << r.out;
  EXPECT_NE(
      r.out.find("<details><summary><b>rolling update</b> <code>Deployment default/api</code>"),
      std::string::npos)
      << r.out;
  EXPECT_TRUE(std::regex_search(r.out, std::regex("\n- +image: registry.local/api:1.4.2\n")))
      << r.out;
  EXPECT_EQ(Plan(Case("image-change", "desired.yaml") + " -o markdown").code, 1);
  Outcome same = Plan(Case("env-reordered", "desired.yaml") + " --against " +
                      Case("env-reordered", "state.json") + " --format markdown");
  EXPECT_EQ(same.code, 0) << same.err;
  EXPECT_EQ(same.out, "### ballast plan: No changes: 1 unchanged.\n\n");
  Outcome both = Plan(Case("create", "desired.yaml") + " --format markdown -o json");
  EXPECT_EQ(both.code, 2);
  EXPECT_NE(both.err.find("--format and --output say different things"), std::string::npos);
  EXPECT_EQ(Plan(Case("create", "desired.yaml") + " --format html").code, 2);
}

// `--base REF --head REF [REPO]`: two revisions of a real git repository (a pull request's
// target and its head), read without a checkout; errors name the revision or the file.
TEST_F(PlanCli, TwoRevisionsOfARepository) {
  const fs::path repo = dir_ / "repo";
  fs::create_directories(repo / "deploy");
  const std::string manifest =
      Slurp(fs::path(BALLAST_SOURCE_DIR) / "tests/testdata/diff/image-change/desired.yaml");
  const std::string git = "git -C " + Quote(repo.string()) +
                          " -c user.name=t -c user.email=t@localhost -c commit.gpgsign=false ";
  auto commit = [&](const std::string& content, const std::string& message) {
    std::ofstream(repo / "deploy" / "api.yaml") << content;
    std::ofstream(repo / "README.md") << message << "\n";  // not a manifest: never read
    ASSERT_EQ(std::system((git + "add -A && " + git + "commit -qm " + message).c_str()), 0);
  };
  ASSERT_EQ(std::system(("git init -q -b main " + Quote(repo.string())).c_str()), 0);
  commit(std::regex_replace(manifest, std::regex("1\\.5\\.0"), "1.4.2"), "base");
  commit(manifest, "head");

  Outcome r = Plan("--base main~1 --head main --path deploy " + Quote(repo.string()));
  EXPECT_EQ(r.code, 1) << r.err;
  EXPECT_NE(r.out.find("+/- spec.template.spec.containers[api].image: "
                       "\"registry.local/api:1.4.2\" => \"registry.local/api:1.5.0\""),
            std::string::npos)
      << r.out;
  Outcome same = Plan("--base main --head main " + Quote(repo.string()));
  EXPECT_EQ(same.code, 0) << same.out << same.err;
  Outcome md = Plan("--base main~1 --head main -o markdown " + Quote(repo.string()));
  EXPECT_EQ(md.code, 1) << md.err;
  EXPECT_NE(md.out.find("| `Deployment` | 0 | 1 | 1 | 0 | 0 | 0 |"), std::string::npos) << md.out;

  Outcome missing = Plan("--base nope --head main " + Quote(repo.string()));
  EXPECT_EQ(missing.code, 2);
  EXPECT_NE(missing.err.find("--base: revision \"nope\" not found"), std::string::npos)
      << missing.err;
  EXPECT_EQ(Plan("--base main " + Quote(repo.string())).code, 2);  // --head missing
  commit("apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: api}\nspec: {replicas: x}\n",
         "broken");
  Outcome broken = Plan("--base main~1 --head main --path deploy " + Quote(repo.string()));
  EXPECT_EQ(broken.code, 2);
  EXPECT_NE(broken.err.find("deploy/api.yaml:4:"), std::string::npos) << broken.err;
  EXPECT_NE(broken.err.find("invalid manifest(s) at main: no plan"), std::string::npos)
      << broken.err;
  // --ignore-differences applies to revisions too: without the image there is nothing to do.
  Outcome ignored = Plan(
      "--base main~2 --head main~1 --ignore-differences "
      "/spec/template/spec/containers/*/image " +
      Quote(repo.string()));
  EXPECT_EQ(ignored.code, 0) << ignored.out << ignored.err;
}

// A pull request against a kustomize overlay: both revisions are rendered (the base lives
// outside the overlay's folder), so the plan shows what the overlay's change does to the
// rendered objects, the generated ConfigMap's new hashed name included.
TEST_F(PlanCli, TwoRevisionsOfAKustomizeOverlay) {
  const fs::path repo = dir_ / "repo";
  fs::create_directories(repo / "base");
  fs::create_directories(repo / "overlays/prod");
  const std::string git = "git -C " + Quote(repo.string()) +
                          " -c user.name=t -c user.email=t@localhost -c commit.gpgsign=false ";
  std::ofstream(repo / "base/kustomization.yaml") << "resources: [api.yaml]\n";
  std::ofstream(repo / "base/api.yaml")
      << "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: api}\nspec:\n"
         "  selector: {matchLabels: {app: api}}\n  template:\n"
         "    metadata: {labels: {app: api}}\n    spec:\n      containers:\n"
         "      - name: api\n        image: registry.local/api:1.0\n"
         "        envFrom: [{configMapRef: {name: api-env}}]\n";
  auto overlay = [&](const std::string& tag, const std::string& level, const std::string& msg) {
    std::ofstream(repo / "overlays/prod/kustomization.yaml")
        << "resources: [../../base]\nnamePrefix: prod-\nimages:\n- name: registry.local/api\n"
           "  newTag: \""
        << tag << "\"\nconfigMapGenerator:\n- name: api-env\n  literals: [LOG_LEVEL=" << level
        << "]\n";
    ASSERT_EQ(std::system((git + "add -A && " + git + "commit -qm " + msg).c_str()), 0);
  };
  ASSERT_EQ(std::system(("git init -q -b main " + Quote(repo.string())).c_str()), 0);
  overlay("1.0", "info", "base");
  overlay("1.1", "debug", "head");
  Outcome r = Plan("--base main~1 --head main --path overlays/prod " + Quote(repo.string()));
  EXPECT_EQ(r.code, 1) << r.err;
  EXPECT_NE(r.out.find("Deployment default/prod-api"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("\"registry.local/api:1.0\" => \"registry.local/api:1.1\""),
            std::string::npos)
      << r.out;
  // The ConfigMap's content changed: its hashed name did too (one deleted, one created).
  EXPECT_NE(r.out.find("+ ConfigMap default/prod-api-env-"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("- ConfigMap default/prod-api-env-"), std::string::npos) << r.out;
}

// Two revisions holding files real sops wrote (tests/sops/fixtures): planned with an identity
// file that holds both recipients' identities; no decrypted value in the pull-request comment.
TEST_F(PlanCli, TwoRevisionsWithSopsSecrets) {
  const fs::path fixtures = fs::path(BALLAST_SOURCE_DIR) / "tests/sops/fixtures";
  const fs::path repo = dir_ / "repo";
  fs::create_directories(repo);
  const std::string git = "git -C " + Quote(repo.string()) +
                          " -c user.name=t -c user.email=t@localhost -c commit.gpgsign=false ";
  ASSERT_EQ(std::system(("git init -q -b main " + Quote(repo.string())).c_str()), 0);
  fs::copy_file(fixtures / "global.yaml", repo / "global.enc.yaml");
  ASSERT_EQ(std::system((git + "add -A && " + git + "commit -qm base").c_str()), 0);
  fs::copy_file(fixtures / "age.yaml", repo / "age.enc.yaml");
  ASSERT_EQ(std::system((git + "add -A && " + git + "commit -qm head").c_str()), 0);
  const fs::path identity = dir_ / "keys.txt";
  std::ofstream(identity) << Slurp(fixtures / "age.txt") << Slurp(fixtures / "age-global.txt");
  fs::permissions(identity, fs::perms::owner_read | fs::perms::owner_write);

  const std::string refs = "--base main~1 --head main " + Quote(repo.string());
  Outcome closed = Plan(refs);
  EXPECT_EQ(closed.code, 2) << closed.out;
  EXPECT_NE(closed.err.find("--age-identity-file"), std::string::npos) << closed.err;

  Outcome r = Plan(refs + " -o markdown --age-identity-file " + Quote(identity.string()));
  EXPECT_EQ(r.code, 1) << r.err;
  EXPECT_NE(r.out.find("Secret"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("default/age"), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("global-value"), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("Z2xvYmFsLXZhbHVl"), std::string::npos) << r.out;  // its base64
}

TEST_F(PlanCli, RefusedChangeExitsTwo) {
  Outcome r = Plan(Case("immutable-selector", "desired.yaml") + " --against " +
                   Case("immutable-selector", "state.json"));
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.out.find("field is immutable"), std::string::npos) << r.out;
  EXPECT_NE(r.err.find("refused"), std::string::npos) << r.err;
}

TEST_F(PlanCli, GlobalIgnoreFlag) {
  std::string base =
      Case("replicas-only", "desired.yaml") + " --against " + Case("replicas-only", "state.json");
  EXPECT_EQ(Plan(base + " --ignore-differences Deployment:/spec/replicas").code, 0);
  Outcome bad = Plan(base + " --ignore-differences spec.replicas");
  EXPECT_EQ(bad.code, 2);
  EXPECT_NE(bad.err.find("spec.replicas"), std::string::npos) << bad.err;
}

TEST_F(PlanCli, ErrorsExitTwo) {
  EXPECT_EQ(Plan("").code, 2);                  // no PATH
  EXPECT_EQ(Plan("--no-such-flag x").code, 2);  // unknown flag
  EXPECT_EQ(Plan(Case("create", "desired.yaml") + " -o xml").code, 2);
  Outcome missing = Plan(Quote((dir_ / "nope").string()));
  EXPECT_EQ(missing.code, 2);
  Outcome no_state =
      Plan(Case("create", "desired.yaml") + " --against " + Quote((dir_ / "nope.json").string()));
  EXPECT_EQ(no_state.code, 2);
  EXPECT_NE(no_state.err.find("nope.json"), std::string::npos) << no_state.err;

  std::ofstream(dir_ / "bad-state.json") << "{\"objects\": [ {\"kind\": ";
  Outcome bad_state = Plan(Case("create", "desired.yaml") + " --against " +
                           Quote((dir_ / "bad-state.json").string()));
  EXPECT_EQ(bad_state.code, 2);
  EXPECT_NE(bad_state.err.find("not valid JSON"), std::string::npos) << bad_state.err;

  {
    // Hostile nesting: refused with a message, not a stack overflow.
    std::ofstream deep(dir_ / "deep.json");
    deep << "{\"objects\": [{\"kind\": \"Service\", \"x\": " << std::string(200000, '[')
         << std::string(200000, ']') << "}]}";
  }
  Outcome deep =
      Plan(Case("create", "desired.yaml") + " --against " + Quote((dir_ / "deep.json").string()));
  EXPECT_EQ(deep.code, 2);
  EXPECT_NE(deep.err.find("nested deeper"), std::string::npos) << deep.err;

  std::ofstream(dir_ / "bad.yaml") << "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n"
                                      "  name: web\nspec:\n  replicas: many\n";
  Outcome invalid = Plan(Quote((dir_ / "bad.yaml").string()));
  EXPECT_EQ(invalid.code, 2);
  EXPECT_NE(invalid.err.find("bad.yaml:6:"), std::string::npos) << invalid.err;
}

// The plan a reconciler would serve: image-change's desired state against its recorded one.
nlohmann::json ServedPlan(bool with_diff) {
  fs::path dir = fs::path(BALLAST_SOURCE_DIR) / "tests/testdata/diff/image-change";
  auto desired = ballast::model::ParseManifestFile("desired.yaml", Slurp(dir / "desired.yaml"));
  auto state =
      ballast::diff::StateFromJson(nlohmann::json::parse(Slurp(dir / "state.json")), "state.json");
  EXPECT_TRUE(state.ok());
  ballast::diff::Plan plan = ballast::diff::ComputePlan(desired.manifests, state->objects, nullptr);
  ballast::diff::JsonOptions options;
  options.include_diff = with_diff;
  return ballast::diff::ToJson(plan, options);
}

TEST_F(PlanCli, ShowsTheServersPlan) {
  ballast::net::Router router;
  router.HandleSync("GET", "/api/v1/plan", [](const ballast::net::Request& r) {
    if (!ballast::net::CheckBearer(r, "s3cret")) return ballast::net::UnauthorizedResponse();
    return ballast::net::JsonResponse(200, ServedPlan(r.Query("diff") == "true"));
  });
  ballast::net::HttpServer server({});
  ASSERT_TRUE(server.Start(router).ok());
  std::ofstream(dir_ / "token") << "s3cret\n";
  std::string auth =
      " --server " + server.url() + " --token-file " + Quote((dir_ / "token").string());

  Outcome text = Plan(auth + " --diff");
  EXPECT_EQ(text.code, 1) << text.err;
  EXPECT_NE(text.out.find("+/- Deployment default/api (update: forces rolling update, 1 change)"),
            std::string::npos)
      << text.out;
  EXPECT_NE(text.out.find("--- a/Deployment/default/api"), std::string::npos) << text.out;

  Outcome json = Plan(auth + " -o json");
  EXPECT_EQ(json.code, 1) << json.err;
  auto j = nlohmann::json::parse(json.out, nullptr, false);
  ASSERT_FALSE(j.is_discarded()) << json.out;
  EXPECT_EQ(j["objects"][0]["action"], "update");

  // The pull-request comment of a server's plan (field changes: it carries no documents).
  Outcome markdown = Plan(auth + " --format markdown");
  EXPECT_EQ(markdown.code, 1) << markdown.err;
  EXPECT_NE(markdown.out.find("| `Deployment` | 0 | 1 | 1 | 0 | 0 | 0 |"), std::string::npos)
      << markdown.out;
  EXPECT_NE(markdown.out.find("```text\n+/- Deployment default/api"), std::string::npos)
      << markdown.out;

  Outcome refused = Plan(" --server " + server.url());  // no token
  EXPECT_EQ(refused.code, 2);
  EXPECT_NE(refused.err.find("HTTP 401"), std::string::npos) << refused.err;

  EXPECT_EQ(Plan(auth + " --against x.json").code, 2);  // --against needs a PATH
  server.Stop();
}

TEST_F(PlanCli, UnreachableServerExitsTwo) {
  ballast::net::HttpServer server({});
  ASSERT_TRUE(server.Start(ballast::net::Router()).ok());
  std::string url = server.url();
  server.Stop();  // nothing listens on that port any more
  Outcome r = Plan("--server " + url);
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("/api/v1/plan"), std::string::npos) << r.err;
}

TEST_F(PlanCli, HelpExitsZero) {
  Outcome r = Plan("--help");
  EXPECT_EQ(r.code, 0);
  EXPECT_NE(r.out.find("--against"), std::string::npos);
}

}  // namespace
