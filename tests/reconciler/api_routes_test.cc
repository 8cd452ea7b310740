// The reconciler's route table and its one authorization decision, against a real Service in
// this process (a local manifest repository, history in a temporary state directory, HTTP on
// 127.0.0.1): every route is in the table with the access its users expect; every POST route
// answers a malformed body with a 400 that names what is wrong, and the process keeps serving.

#include "reconciler/api_routes.h"

#include <gtest/gtest.h>

#include <mutex>
#include <set>
#include <tuple>

#include "agentapi/protocol.h"
#include "net/client.h"
#include "net/server.h"
#include "reconciler/service.h"
#include "reconciler/status_page.h"
#include "tests/support/git_servers.h"

namespace ballast::reconciler {
namespace {

using model::Json;

// What each route is for and who may call it. A route added to the table without a row here
// fails RouteTableIsWhatUsersExpect: decide its access, then add the row.
const std::set<std::tuple<std::string, std::string, Access>>& ExpectedRoutes() {
  static const std::set<std::tuple<std::string, std::string, Access>> routes = {
      {"GET", "/healthz", Access::kPublic},
      {"GET", "/api/v1/version", Access::kPublic},
      {"GET", "/metrics", Access::kRead},
      {"GET", "/", Access::kRead},
      {"GET", "/static/status_page.js", Access::kPublic},
      {"GET", "/static/status_page.css", Access::kPublic},
      {"GET", "/api/v1/status", Access::kRead},
      {"GET", "/api/v1/deployments", Access::kRead},
      {"GET", "/api/v1/services", Access::kRead},
      {"GET", "/api/v1/pods", Access::kRead},
      {"GET", "/api/v1/nodes", Access::kRead},
      {"GET", "/api/v1/plan", Access::kRead},
      {"GET", "/api/v1/history", Access::kRead},
      {"GET", "/api/v1/history/*", Access::kRead},
      {"GET", "/api/v1/logs/*", Access::kRead},
      {"POST", "/api/v1/sync", Access::kAdmin},
      {"POST", "/api/v1/rollback", Access::kAdmin},
      {"POST", "/api/v1/unpin", Access::kAdmin},
      {"POST", "/api/v1/webhook/git", Access::kWebhook},
      {"POST", "/api/v1/agent/register", Access::kNode},
      {"POST", "/api/v1/agent/heartbeat", Access::kNode},
      {"GET", "/api/v1/agent/desired", Access::kNode},
  };
  return routes;
}

class ApiRoutesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    farm_.CreateBare("manifests");
    farm_.Commit("manifests",
                 {{"cm.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n"}}, "one");
    ServiceOptions o;
    o.source.remote.url = farm_.BarePath("manifests");
    o.state_dir = state_.path();
    o.token = "admin-token";
    service_ = std::make_unique<Service>(o, &clock_);
    ASSERT_TRUE(service_->Start().ok());
    net::ClientOptions c;
    c.bearer_token = "admin-token";
    client_ = std::make_unique<net::HttpClient>(c);
  }

  Result<net::ClientResponse> Post(const std::string& path, const std::string& body) {
    net::ClientRequest r;
    r.method = "POST";
    r.url = service_->url() + path;
    r.body = body;
    r.content_type = "application/json";
    return client_->Do(r);
  }

  git::testing::RepoFarm farm_;
  git::testing::TempDir state_;
  SystemClock clock_;
  std::unique_ptr<Service> service_;
  std::unique_ptr<net::HttpClient> client_;
};

TEST(ApiRouteTable, RouteTableIsWhatUsersExpect) {
  ServiceOptions options;
  const ApiDeps deps{&options, nullptr, nullptr, nullptr, nullptr,
                     nullptr,  nullptr, nullptr, nullptr};
  std::set<std::tuple<std::string, std::string, Access>> table;
  for (const auto& r : ApiRouteTable(deps)) {
    EXPECT_TRUE(table.emplace(r.method, r.path, r.access).second) << r.method << " " << r.path;
  }
  EXPECT_EQ(table, ExpectedRoutes());
}

TEST(ApiRouteTable, OneDecisionForEveryAccess) {
  net::Request anonymous, admin;
  admin.headers = {{"Authorization", "Bearer t"}};
  for (Access a : {Access::kPublic, Access::kRead, Access::kWebhook}) {
    EXPECT_TRUE(Authorize(a, anonymous, "t")) << AccessName(a);
  }
  for (Access a : {Access::kAdmin, Access::kNode}) {
    EXPECT_FALSE(Authorize(a, anonymous, "t")) << AccessName(a);
    EXPECT_TRUE(Authorize(a, admin, "t")) << AccessName(a);
    EXPECT_TRUE(Authorize(a, anonymous, "")) << AccessName(a) << " (no token configured)";
  }
}

TEST_F(ApiRoutesTest, MalformedBodiesAreA400NamingTheProblemAndTheProcessKeepsServing) {
  const std::vector<std::pair<std::string, std::vector<std::string>>> cases = {
      {"/api/v1/sync",
       {R"({"dryRun":"yes"})", R"({"dryRun":1})", R"([true])", "{not json", R"("x")"}},
      {"/api/v1/rollback",
       {R"({"id":"1"})", R"({"id":1,"pin":"yes"})", R"({"id":-3})", R"({})", "", "[]"}},
      {"/api/v1/agent/register", {R"({})", R"({"node":7})", R"({"node":{"name":3}})", "nul"}},
      {"/api/v1/agent/heartbeat", {R"({"node":{"name":"n"},"pods":{}})", R"({"pods":[]})", "[1,2"}},
  };
  for (const auto& [path, bodies] : cases) {
    for (const auto& body : bodies) {
      auto r = Post(path, body);
      ASSERT_TRUE(r.ok()) << path << " " << body << ": " << r.status().ToString();
      EXPECT_EQ(r->status, 400) << path << " " << body << " -> " << r->body;
      auto j = r->JsonBody();
      ASSERT_TRUE(j.ok() && j->contains("error")) << r->body;
      EXPECT_FALSE((*j)["error"].get<std::string>().empty());
    }
  }
  // An agent of another protocol version is told so (409), not crashed on.
  auto newer = Post("/api/v1/agent/heartbeat", R"({"node":{"name":"n"},"protocolVersion":99})");
  ASSERT_TRUE(newer.ok());
  EXPECT_EQ(newer->status, 409) << newer->body;
  EXPECT_NE(newer->body.find("protocol version 99"), std::string::npos) << newer->body;
  auto sync_error = Post("/api/v1/sync", R"({"dryRun":"yes"})");
  EXPECT_NE(sync_error->body.find("dryRun"), std::string::npos) << sync_error->body;
  auto healthz = client_->Get(service_->url() + "/healthz");
  ASSERT_TRUE(healthz.ok());
  EXPECT_EQ(healthz->status, 200);
  auto dry = Post("/api/v1/sync", R"({"dryRun":true})");
  ASSERT_TRUE(dry.ok());
  EXPECT_EQ(dry->status, 200) << dry->body;
}

TEST_F(ApiRoutesTest, BadQueryParametersAreA400NamingTheParameter) {
  for (const std::string query : {"?limit=abc", "?limit=0", "?before=-1", "?limit=5x"}) {
    auto r = client_->Get(service_->url() + "/api/v1/history" + query);
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(r->status, 400) << query << " -> " << r->body;
    EXPECT_NE(r->body.find("query parameter"), std::string::npos) << r->body;
  }
  auto desired = client_->Get(service_->url() + "/api/v1/agent/desired?node=n1&wait=soon");
  ASSERT_TRUE(desired.ok());
  EXPECT_EQ(desired->status, 400) << desired->body;
  EXPECT_NE(desired->body.find("wait"), std::string::npos) << desired->body;
}

// A browser gets the page under a policy that runs only the page's own script (no inline
// code), never inside a frame; every answer forbids MIME sniffing.
TEST_F(ApiRoutesTest, ThePageRunsOnlyItsOwnScriptAndNoAnswerIsSniffed) {
  auto page = client_->Get(service_->url() + "/");
  ASSERT_TRUE(page.ok());
  ASSERT_EQ(page->status, 200);
  const std::string* csp = net::FindHeader(page->headers, "Content-Security-Policy");
  ASSERT_NE(csp, nullptr);
  EXPECT_NE(csp->find("script-src 'self'"), std::string::npos) << *csp;
  EXPECT_NE(csp->find("frame-ancestors 'none'"), std::string::npos) << *csp;
  EXPECT_EQ(csp->find("unsafe-inline"), std::string::npos) << *csp;
  EXPECT_EQ(page->body.find("<script>"), std::string::npos) << "inline script in the page";
  EXPECT_EQ(page->body.find("<style>"), std::string::npos) << "inline style in the page";
  EXPECT_NE(page->body.find("<script src=\"/static/status_page.js\">"), std::string::npos);

  net::HttpClient anonymous;  // the assets need no token: they hold nothing but code
  auto script = anonymous.Get(service_->url() + "/static/status_page.js");
  ASSERT_TRUE(script.ok());
  EXPECT_EQ(script->status, 200);
  EXPECT_EQ(*net::FindHeader(script->headers, "Content-Type"), "text/javascript; charset=utf-8");
  EXPECT_EQ(script->body, std::string(StatusPageScript()));
  auto style = anonymous.Get(service_->url() + "/static/status_page.css");
  ASSERT_TRUE(style.ok());
  EXPECT_EQ(*net::FindHeader(style->headers, "Content-Type"), "text/css; charset=utf-8");

  for (const std::string path : {"/", "/api/v1/status", "/healthz", "/api/v1/logs/nope"}) {
    auto r = client_->Get(service_->url() + path);
    ASSERT_TRUE(r.ok()) << path;
    const std::string* nosniff = net::FindHeader(r->headers, "X-Content-Type-Options");
    ASSERT_NE(nosniff, nullptr) << path;
    EXPECT_EQ(*nosniff, "nosniff") << path;
    const std::string* frames = net::FindHeader(r->headers, "X-Frame-Options");
    ASSERT_NE(frames, nullptr) << path;
    EXPECT_EQ(*frames, "DENY") << path;
  }
}

// A node that registers names where its log server is. The reconciler asks only that node's
// own address, never sends its API token there, and serves whatever comes back as plain text:
// registering a node neither steals the token nor turns the reconciler into a proxy or a page.
TEST_F(ApiRoutesTest, ANodesLogServerGetsNoTokenAndCannotServeAPage) {
  std::mutex mu;
  std::vector<std::string> authorizations;
  net::Router fake_routes;
  fake_routes.HandleSync("GET", "/api/v1/logs/*", [&](const net::Request& r) {
    std::lock_guard<std::mutex> lock(mu);
    const std::string* auth = r.Header("Authorization");
    authorizations.push_back(auth != nullptr ? *auth : "");
    net::Response resp = net::TextResponse(200, "<script>alert(document.cookie)</script>");
    resp.content_type = "text/html";
    return resp;
  });
  net::HttpServer fake(net::ServerOptions{});  // 127.0.0.1, any free port
  ASSERT_TRUE(fake.Start(std::move(fake_routes)).ok());

  auto join = [&](const std::string& name, const std::string& agent_api) {
    agentapi::Heartbeat hb;
    hb.node.name = name;
    hb.node.address = "127.0.0.1";
    hb.node.labels["ballast.dev/agent-api"] = agent_api;
    agentapi::RegisterRequest reg;
    reg.node = hb.node;
    ASSERT_EQ(Post(agentapi::kRegisterPath, agentapi::ToJson(reg).dump())->status, 200);
    model::Pod pod;
    pod.name = name + "-pod";
    pod.namespace_ = "default";
    pod.phase = model::PodPhase::kRunning;
    model::ContainerStatus c;
    c.name = "app";
    pod.containers.push_back(c);
    hb.pods = {pod};
    ASSERT_EQ(Post(agentapi::kHeartbeatPath, agentapi::ToJson(hb).dump())->status, 200);
  };
  join("honest", fake.url());
  auto logs = client_->Get(service_->url() + "/api/v1/logs/honest-pod");
  ASSERT_TRUE(logs.ok()) << logs.status().ToString();
  EXPECT_EQ(logs->status, 200) << logs->body;
  EXPECT_EQ(*net::FindHeader(logs->headers, "Content-Type"), "text/plain; charset=utf-8");
  EXPECT_EQ(*net::FindHeader(logs->headers, "X-Content-Type-Options"), "nosniff");
  {
    std::lock_guard<std::mutex> lock(mu);
    ASSERT_EQ(authorizations.size(), 1u);
    EXPECT_NE(authorizations[0], "Bearer admin-token");
    EXPECT_EQ(authorizations[0],
              "Bearer " + net::DeriveToken("admin-token", agentapi::kLogsTokenPurpose));
  }

  // A node naming a server elsewhere than its own address is not followed.
  join("elsewhere", "http://127.0.0.9:" + std::to_string(fake.port()));
  auto refused = client_->Get(service_->url() + "/api/v1/logs/elsewhere-pod");
  ASSERT_TRUE(refused.ok());
  EXPECT_EQ(refused->status, 409) << refused->body;
  EXPECT_NE(refused->body.find("not at the node's address"), std::string::npos) << refused->body;
  std::lock_guard<std::mutex> lock(mu);
  EXPECT_EQ(authorizations.size(), 1u);
}

}  // namespace
}  // namespace ballast::reconciler
