#include "reconciler/status_page.h"

#include <gtest/gtest.h>

#include <regex>
#include <string>

namespace ballast::reconciler {
namespace {

using model::Json;

size_t Count(const std::string& haystack, const std::string& needle) {
  size_t n = 0;
  for (size_t at = haystack.find(needle); at != std::string::npos;
       at = haystack.find(needle, at + needle.size())) {
    ++n;
  }
  return n;
}

StatusPageInput Example() {
  StatusPageInput in;
  in.repo = "/srv/manifests.git";
  in.branch = "main";
  in.now_ms = 1'700'000'100'000;
  in.status = Json::parse(R"({
    "revision": "0123456789abcdef0123456789abcdef01234567", "appliedRevision": "fedcba9876543210",
    "sync": "OutOfSync", "health": "Healthy", "errors": [], "pinned": null,
    "syncPolicy": "manual", "sourceError": null,
    "commit": {"sha": "0123456789abcdef", "summary": "web: say hello v2", "author": "Ada"},
    "objects": [{"kind": "Deployment", "namespace": "default", "name": "web", "action": "update",
                 "sync": "OutOfSync", "health": "Healthy"}]})");
  in.plan = Json::parse(R"({
    "changed": true, "liveKnown": true,
    "summary": {"create": 0, "update": 1, "rolling": 1, "delete": 0, "unchanged": 3, "drift": 0},
    "objects": [{"kind": "Deployment", "namespace": "default", "name": "web",
      "action": "update", "rollout": "rollingUpdate", "oldRevision": "aaa", "newRevision": "bbb",
      "changes": [{"path": "/x", "field": "spec.template.spec.containers[web].env[MESSAGE].value",
                   "op": "replace", "old": "hello", "new": "hello v2", "forcesRollout": true}],
      "drift": [], "message": "",
      "diff": "--- a/Deployment/default/web\n+++ b/Deployment/default/web\n@@ -1,3 +1,3 @@\n   env:\n-  value: hello\n+  value: hello v2\n"},
      {"kind": "Service", "namespace": "default", "name": "web", "action": "unchanged",
       "drift": []}],
    "schedulerDryRun": {"allPlaced": true, "notes": []},
    "text": "+/- Deployment default/web (update: forces rolling update, 1 change)\n    +/- spec.template.spec.containers[web].env[MESSAGE].value: \"hello\" => \"hello v2\"\n      revision: aaa => bbb\n\nScheduler dry-run:\n- All pods placed.\n! default/api: 0/3 nodes are available\n\nPlan: 0 to create, 1 to update (1 rolling), 0 to delete; 1 unchanged.\n"})");
  in.deployments = Json::parse(R"({"items": [{"name": "web", "namespace": "default",
    "replicas": 3, "updatedReplicas": 3, "readyReplicas": 2, "availableReplicas": 2,
    "revision": "aaa", "sync": "OutOfSync", "health": "Progressing", "conditions": [],
    "unschedulable": null}]})");
  in.services = Json::parse(R"({"items": [{"name": "web", "namespace": "default",
    "type": "ClusterIP", "ports": [{"port": 8080, "targetPort": "http", "protocol": "TCP"}],
    "endpoints": ["127.0.0.2:40001"]}]})");
  in.pods = Json::parse(R"({"items": [{"name": "web-aaa-x1", "namespace": "default",
    "deployment": "web", "revision": "aaa", "node": "n1", "phase": "Running", "ready": true,
    "restarts": 0, "address": "127.0.0.2:40001", "createdMs": 1700000000000}]})");
  in.nodes = Json::parse(R"({"items": [{"name": "n1", "address": "127.0.0.2", "ready": true,
    "pods": 1, "allocatable": {"cpu": "2", "memory": "1Gi"}, "lastHeartbeat": "2026-01-01T00:00:00Z"}]})");
  in.history = Json::parse(R"({"items": [
    {"id": 2, "revision": "fedcba9876543210", "time": "t2", "trigger": "api", "result": "success",
     "message": "web: say hello"},
    {"id": 1, "revision": "0000aaaa", "time": "t1", "trigger": "poll", "result": "success",
     "message": "initial"}]})");
  return in;
}

TEST(HtmlEscapeTest, EscapesMarkupAndQuotes) {
  EXPECT_EQ(HtmlEscape("<script>alert(\"x\")</script> & 'y'"),
            "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &#39;y&#39;");
  EXPECT_EQ(HtmlEscape("plain text"), "plain text");
  EXPECT_EQ(HtmlEscape(""), "");
}

TEST(StatusPageTest, RendersEverySectionFromTheApiDocuments) {
  std::string page = RenderStatusPage(Example());
  EXPECT_EQ(page.rfind("<!doctype html>", 0), 0u);
  // Source and revision with its commit.
  EXPECT_NE(page.find("/srv/manifests.git @ main"), std::string::npos);
  EXPECT_NE(page.find("0123456789ab</code>"), std::string::npos);
  EXPECT_NE(page.find("web: say hello v2"), std::string::npos);
  EXPECT_NE(page.find("by Ada"), std::string::npos);
  // Status colours: amber for OutOfSync, green for Healthy.
  EXPECT_NE(page.find("<span class=\"badge warn\">OutOfSync</span>"), std::string::npos);
  EXPECT_NE(page.find("<span class=\"badge ok\">Healthy</span>"), std::string::npos);
  // The plan, coloured: the change line and the added diff line with the new value.
  EXPECT_NE(page.find("<span class=\"dm\">    +/- spec.template.spec.containers[web].env[MESSAGE]"
                      ".value: &quot;hello&quot; =&gt; &quot;hello v2&quot;\n</span>"),
            std::string::npos);
  EXPECT_NE(page.find("<span class=\"da\">+  value: hello v2\n</span>"), std::string::npos);
  EXPECT_NE(page.find("<span class=\"dd\">-  value: hello\n</span>"), std::string::npos);
  EXPECT_NE(page.find("<span class=\"dk\">@@ -1,3 +1,3 @@\n</span>"), std::string::npos);
  // Tables.
  EXPECT_NE(page.find("127.0.0.2:40001"), std::string::npos);
  EXPECT_NE(page.find("8080→http/TCP"), std::string::npos);
  EXPECT_NE(page.find("cpu 2, memory 1Gi"), std::string::npos);
  EXPECT_NE(page.find("<a href=\"/api/v1/logs/web-aaa-x1\">logs</a>"), std::string::npos);
  EXPECT_NE(page.find("<td>100s</td>"), std::string::npos);  // pod age from now_ms
  // History with a Roll back button per entry, and the Sync button.
  EXPECT_NE(page.find("data-action=\"rollback\" data-id=\"1\""), std::string::npos);
  EXPECT_NE(page.find("data-action=\"rollback\" data-id=\"2\""), std::string::npos);
  EXPECT_NE(page.find("data-action=\"sync\""), std::string::npos);
  // No pin, no errors: neither banner nor error list.
  EXPECT_EQ(page.find("Pinned to"), std::string::npos);
  EXPECT_EQ(page.find("Errors in git"), std::string::npos);
  // The page's own script and stylesheet, linked once each from its own origin, nothing inline
  // (the Content-Security-Policy allows no inline code) and nothing loaded from elsewhere.
  EXPECT_EQ(Count(page, "<script src=\"/static/status_page.js\"></script>"), 1u);
  EXPECT_EQ(Count(page, "<link rel=\"stylesheet\" href=\"/static/status_page.css\">"), 1u);
  EXPECT_EQ(Count(page, "<script"), 1u);
  EXPECT_EQ(page.find("<style"), std::string::npos);
  EXPECT_EQ(page.find(" style="), std::string::npos);
  EXPECT_FALSE(std::regex_search(page, std::regex(" on[a-z]+="))) << "inline event handler";
  EXPECT_EQ(page.find("src=\"http"), std::string::npos);
  EXPECT_EQ(page.find("href=\"http"), std::string::npos);
}

// The page shows the plan document's `text` (diff::RenderText, the words of `ballast plan`),
// each line coloured by its sign; dry-run notes are notes, not deletions.
TEST(StatusPageTest, PlanIsTheDocumentsTextColouredBySign) {
  std::string page = RenderStatusPage(Example());
  EXPECT_NE(page.find("<span class=\"dm\">+/- Deployment default/web (update: forces rolling "
                      "update, 1 change)\n</span>"),
            std::string::npos)
      << page;
  EXPECT_NE(page.find("<span class=\"dc\">- All pods placed.\n</span>"), std::string::npos);
  EXPECT_NE(page.find("<span class=\"db\">! default/api: 0/3 nodes are available\n</span>"),
            std::string::npos);
  EXPECT_NE(page.find("<span class=\"dc\">Plan: 0 to create, 1 to update (1 rolling), 0 to "
                      "delete; 1 unchanged.\n</span>"),
            std::string::npos);
}

TEST(StatusPageTest, ErrorsOfABadCommitShowFileLineColumn) {
  auto in = Example();
  in.status["sync"] = "Error";
  in.status["errors"] = Json::parse(
      R"([{"file": "web.yaml", "line": 12, "column": 7, "field": "spec.replicas",
           "message": "not an integer"}])");
  std::string page = RenderStatusPage(in);
  EXPECT_NE(page.find("Errors in git"), std::string::npos);
  EXPECT_NE(page.find("<code>web.yaml:12:7</code>: spec.replicas: not an integer"),
            std::string::npos);
  EXPECT_NE(page.find("<span class=\"badge bad\">Error</span>"), std::string::npos);
}

TEST(StatusPageTest, CredentialsInTheRepositoryUrlAreNotShown) {
  auto in = Example();
  in.repo = "https://deploy:s3cr3t-token@git.example.com/team/manifests.git";
  std::string page = RenderStatusPage(in);
  EXPECT_EQ(page.find("s3cr3t-token"), std::string::npos);
  EXPECT_NE(page.find("https://git.example.com/team/manifests.git @ main"), std::string::npos);
}

TEST(StatusPageTest, PinnedStateShowsABannerWithUnpin) {
  auto in = Example();
  in.status["pinned"] = 4;
  std::string page = RenderStatusPage(in);
  EXPECT_NE(page.find("Pinned to history entry #4"), std::string::npos);
  EXPECT_NE(page.find("data-action=\"unpin\""), std::string::npos);
}

TEST(StatusPageTest, HostileTextFromGitAndPodsIsEscaped) {
  const std::string evil = "<script>alert('pwned')</script><img src=x onerror=alert(1)>\"";
  auto in = Example();
  in.repo = evil;
  in.status["commit"]["summary"] = evil;
  in.status["commit"]["author"] = evil;
  in.status["objects"][0]["name"] = evil;
  in.status["errors"] =
      Json::array({{{"file", evil}, {"line", 1}, {"column", 2}, {"message", evil}}});
  in.status["sourceError"] = {{"message", evil}, {"ageSeconds", 3}};
  in.plan["objects"][0]["name"] = evil;
  in.plan["objects"][0]["diff"] = "+ " + evil + "\n";
  in.plan["objects"][0]["changes"][0]["new"] = evil;
  in.pods["items"][0]["name"] = evil;
  in.pods["items"][0]["phase"] = evil;
  in.nodes["items"][0]["allocatable"] = {{evil, evil}};
  in.services["items"][0]["endpoints"] = Json::array({evil});
  in.history["items"][0]["message"] = evil;
  in.history["items"][0]["id"] = evil;
  in.deployments["items"][0]["unschedulable"] = evil;
  std::string page = RenderStatusPage(in);
  EXPECT_EQ(Count(page, "<script"), 1u);  // ours only
  EXPECT_EQ(page.find("<img"), std::string::npos);
  EXPECT_EQ(page.find("alert('pwned')"), std::string::npos);
  EXPECT_GT(Count(page, "&lt;script&gt;alert(&#39;pwned&#39;)&lt;/script&gt;"), 10u);
  // An attribute value cannot be closed from data.
  EXPECT_NE(page.find("data-id=\"&lt;script&gt;"), std::string::npos);
}

TEST(StatusPageTest, MissingOrMalformedDocumentsRenderInsteadOfThrowing) {
  StatusPageInput empty;
  std::string page;
  ASSERT_NO_THROW(page = RenderStatusPage(empty));
  EXPECT_NE(page.find("plan unknown"), std::string::npos);
  EXPECT_NE(page.find("no agent has registered"), std::string::npos);
  EXPECT_NE(page.find("revision <code class=\"rev\">unknown</code>"), std::string::npos);

  StatusPageInput odd;
  odd.status = Json::array({1, 2});
  odd.plan = Json::parse(R"({"objects": [1, "x", {"changes": 5, "drift": {"a": 1}}],
                             "summary": [], "schedulerDryRun": {"notes": [null]}})");
  odd.deployments = Json::parse(R"({"items": {"not": "a list"}})");
  odd.services = Json::parse(R"({"items": [null, 3, {"ports": [7], "endpoints": [{"a": 1}]}]})");
  odd.pods = Json::parse(R"({"items": [{"name": 5, "createdMs": "yesterday", "ready": "yes"}]})");
  odd.nodes = Json("nodes");
  odd.history = Json::parse(R"({"items": [{"id": null}]})");
  odd.now_ms = 1;
  ASSERT_NO_THROW(page = RenderStatusPage(odd));
  EXPECT_NE(page.find("</html>"), std::string::npos);
}

TEST(StatusPageTest, InvalidUtf8FromAPodDoesNotThrow) {
  auto in = Example();
  in.pods["items"][0]["name"] = std::string("web-\xff\xfe");
  in.plan["objects"][0]["changes"][0]["new"] = std::string("\xc3\x28");
  std::string page;
  ASSERT_NO_THROW(page = RenderStatusPage(in));
  EXPECT_NE(page.find("Planned changes"), std::string::npos);
}

}  // namespace
}  // namespace ballast::reconciler
