// The reconciler's route table and its one authorization decision, against a real Service in
// this process (a local manifest repository, history in a temporary state directory, HTTP on
// 127.0.0.1): every route is in the table with the access its users expect; every POST route
// answers a malformed body with a 400 that names what is wrong, and the process keeps serving.

#include "reconciler/api_routes.h"

#include <gtest/gtest.h>

#include <chrono>
#include <mutex>
#include <set>
#include <thread>
#include <tuple>

#include "agentapi/protocol.h"
#include "diff/redact.h"
#include "net/client.h"
#include "net/server.h"
#include "reconciler/service.h"
#include "reconciler/status_page.h"
#include "tests/support/git_servers.h"

namespace ballast::reconciler {
namespace {

using model::Json;

// What a caller gets from a route: through to the handler (whatever it answers then), or
// stopped before it: 401 (no valid credential) or 403 (not allowed).
enum Outcome { kOk = 0, k401 = 401, k403 = 403 };

// The authorization matrix: every route, who may call it, and what each caller gets, with the
// request that tries it. Node routes are tried as node A speaking for node A. A route added to
// the table without a row here fails RouteTableIsWhatUsersExpect: decide its access and what
// each caller gets, then add the row.
struct MatrixRow {
  std::string method;
  std::string path;  // as in the route table
  Access access;
  std::string target;  // what is requested
  std::string body;
  // anonymous, viewer, node A, node B, admin
  Outcome anonymous, viewer, node_a, node_b, admin;
};

const std::vector<MatrixRow>& Matrix() {
  static const std::string register_a = R"({"node":{"name":"node-a","address":"127.0.0.1"}})";
  static const std::string heartbeat_a =
      R"({"node":{"name":"node-a","address":"127.0.0.1"},"pods":[]})";
  // clang-format off
  static const std::vector<MatrixRow> rows = {
      {"GET", "/healthz", Access::kPublic, "/healthz", "", kOk, kOk, kOk, kOk, kOk},
      {"GET", "/api/v1/version", Access::kPublic, "/api/v1/version", "", kOk, kOk, kOk, kOk, kOk},
      {"GET", "/static/status_page.js", Access::kPublic, "/static/status_page.js", "",
       kOk, kOk, kOk, kOk, kOk},
      {"GET", "/static/status_page.css", Access::kPublic, "/static/status_page.css", "",
       kOk, kOk, kOk, kOk, kOk},
      {"GET", "/metrics", Access::kRead, "/metrics", "", k401, kOk, k403, k403, kOk},
      {"GET", "/", Access::kRead, "/", "", k401, kOk, k403, k403, kOk},
      {"GET", "/api/v1/status", Access::kRead, "/api/v1/status", "", k401, kOk, k403, k403, kOk},
      {"GET", "/api/v1/deployments", Access::kRead, "/api/v1/deployments", "",
       k401, kOk, k403, k403, kOk},
      {"GET", "/api/v1/services", Access::kRead, "/api/v1/services", "",
       k401, kOk, k403, k403, kOk},
      {"GET", "/api/v1/pods", Access::kRead, "/api/v1/pods", "", k401, kOk, k403, k403, kOk},
      {"GET", "/api/v1/nodes", Access::kRead, "/api/v1/nodes", "", k401, kOk, k403, k403, kOk},
      {"GET", "/api/v1/plan", Access::kRead, "/api/v1/plan?diff=true", "",
       k401, kOk, k403, k403, kOk},
      {"GET", "/api/v1/history", Access::kRead, "/api/v1/history", "",
       k401, kOk, k403, k403, kOk},
      {"GET", "/api/v1/history/*", Access::kRead, "/api/v1/history/1/diff", "",
       k401, kOk, k403, k403, kOk},
      {"GET", "/api/v1/logs/*", Access::kRead, "/api/v1/logs/nope", "",
       k401, kOk, k403, k403, kOk},
      {"POST", "/api/v1/sync", Access::kAdmin, "/api/v1/sync", R"({"dryRun":true})",
       k401, k403, k403, k403, kOk},
      {"POST", "/api/v1/rollback", Access::kAdmin, "/api/v1/rollback", R"({"id":999999})",
       k401, k403, k403, k403, kOk},
      {"POST", "/api/v1/unpin", Access::kAdmin, "/api/v1/unpin", "", k401, k403, k403, k403, kOk},
      {"POST", "/api/v1/webhook/git", Access::kWebhook, "/api/v1/webhook/git", "{}",
       kOk, kOk, kOk, kOk, kOk},
      {"POST", "/api/v1/agent/register", Access::kJoin, "/api/v1/agent/register", register_a,
       k401, k403, kOk, k403, kOk},
      {"POST", "/api/v1/agent/heartbeat", Access::kNode, "/api/v1/agent/heartbeat", heartbeat_a,
       k401, k403, kOk, k403, kOk},
      {"GET", "/api/v1/agent/desired", Access::kNode, "/api/v1/agent/desired?node=node-a&wait=0",
       "", k401, k403, kOk, k403, kOk},
  };
  // clang-format on
  return rows;
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
                     nullptr,  nullptr, nullptr, nullptr, nullptr};
  std::set<std::tuple<std::string, std::string, Access>> table, expected;
  for (const auto& r : ApiRouteTable(deps)) {
    EXPECT_TRUE(table.emplace(r.method, r.path, r.access).second) << r.method << " " << r.path;
  }
  for (const auto& row : Matrix()) expected.emplace(row.method, row.path, row.access);
  EXPECT_EQ(table, expected) << "a route without its row in Matrix(), or a row without a route";
}

// The decision itself, role by role: what each may do, and to which node.
TEST(ApiRouteTable, OneDecisionForEveryRoleAndNode) {
  const Principal none{Role::kNone, "", ""}, viewer{Role::kViewer, "v", ""},
      joiner{Role::kJoiner, "joiner", ""}, node_a{Role::kNode, "node:a", "a"},
      admin{Role::kAdmin, "root", ""};
  for (const auto& who : {none, viewer, joiner, node_a, admin}) {
    EXPECT_TRUE(Authorize(who, Access::kPublic)) << who.user;
    EXPECT_TRUE(Authorize(who, Access::kWebhook)) << who.user;
  }
  EXPECT_FALSE(Authorize(none, Access::kRead));
  EXPECT_TRUE(Authorize(viewer, Access::kRead));
  EXPECT_FALSE(Authorize(viewer, Access::kSecrets));
  EXPECT_FALSE(Authorize(viewer, Access::kAdmin));
  EXPECT_FALSE(Authorize(node_a, Access::kRead));
  EXPECT_TRUE(Authorize(node_a, Access::kNode, "a"));
  EXPECT_FALSE(Authorize(node_a, Access::kNode, "b"));
  EXPECT_TRUE(Authorize(node_a, Access::kJoin, "a"));
  EXPECT_FALSE(Authorize(node_a, Access::kJoin, "b"));
  EXPECT_TRUE(Authorize(joiner, Access::kJoin, "b"));
  EXPECT_FALSE(Authorize(joiner, Access::kNode, "b"));
  EXPECT_FALSE(Authorize(joiner, Access::kRead));
  for (Access a : {Access::kRead, Access::kAdmin, Access::kSecrets, Access::kJoin, Access::kNode}) {
    EXPECT_TRUE(Authorize(admin, a, "any")) << AccessName(a);
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
// own address, presents only the token that node's registration was handed for its logs (never
// its own, nor another node's), and serves whatever comes back as plain text: registering a
// node neither steals a token nor turns the reconciler into a proxy or a page.
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

  std::string logs_token;  // what the registration handed the node for its logs
  auto join = [&](const std::string& name, const std::string& agent_api) {
    agentapi::Heartbeat hb;
    hb.node.name = name;
    hb.node.address = "127.0.0.1";
    hb.node.labels["ballast.dev/agent-api"] = agent_api;
    agentapi::RegisterRequest reg;
    reg.node = hb.node;
    auto registered = Post(agentapi::kRegisterPath, agentapi::ToJson(reg).dump());
    ASSERT_EQ(registered->status, 200);
    auto answer = agentapi::RegisterResponseFromJson(*registered->JsonBody());
    ASSERT_TRUE(answer.ok());
    logs_token = answer->logs_token;
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
  const std::string honest_logs_token = logs_token;
  ASSERT_EQ(honest_logs_token.size(), 64u);
  auto logs = client_->Get(service_->url() + "/api/v1/logs/honest-pod");
  ASSERT_TRUE(logs.ok()) << logs.status().ToString();
  EXPECT_EQ(logs->status, 200) << logs->body;
  EXPECT_EQ(*net::FindHeader(logs->headers, "Content-Type"), "text/plain; charset=utf-8");
  EXPECT_EQ(*net::FindHeader(logs->headers, "X-Content-Type-Options"), "nosniff");
  {
    std::lock_guard<std::mutex> lock(mu);
    ASSERT_EQ(authorizations.size(), 1u);
    EXPECT_NE(authorizations[0], "Bearer admin-token");
    EXPECT_EQ(authorizations[0], "Bearer " + honest_logs_token);
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

namespace ballast::reconciler {
namespace {

// A Deployment whose environment holds a secret value.
std::string SecretDeployment(const std::string& password) {
  return "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: db}\n"
         "spec:\n  replicas: 1\n  selector: {matchLabels: {app: db}}\n"
         "  template:\n    metadata: {labels: {app: db}}\n    spec:\n      containers:\n"
         "      - name: db\n        command: [sleep, '100']\n        env:\n"
         "        - {name: DB_PASSWORD, value: '" +
         password + "'}\n        - {name: DB_USER, value: app}\n";
}

// A reconciler with every kind of caller: an admin and a viewer from the token file, nodes that
// joined with the join token, and nobody.
class AuthzTest : public ::testing::Test {
 protected:
  void SetUp() override {
    farm_.CreateBare("manifests");
    farm_.Commit("manifests", {{"db.yaml", SecretDeployment("hunter2-first")}}, "one");
    ServiceOptions o;
    o.source.remote.url = farm_.BarePath("manifests");
    o.state_dir = state_.path();
    o.controller.sync = SyncPolicy::kManual;
    auto tokens = ParseTokenFile(
        "admin-t0ken,alice,1,\"admin\"\nviewer-t0ken,victor,2,\"viewer,devs\"\n", "tokens.csv");
    ASSERT_TRUE(tokens.ok()) << tokens.status().ToString();
    o.tokens = std::move(*tokens);
    o.join_token = "join-t0ken";
    service_ = std::make_unique<Service>(o, &clock_);
    ASSERT_TRUE(service_->Start().ok());
    node_a_ = Join("node-a");
    node_b_ = Join("node-b");
    ASSERT_FALSE(node_a_.empty());
    ASSERT_FALSE(node_b_.empty());
  }

  Result<net::ClientResponse> Call(const std::string& method, const std::string& target,
                                   const std::string& body, const std::string& token,
                                   net::Headers headers = {}) {
    net::ClientRequest r;
    r.method = method;
    r.url = service_->url() + target;
    r.body = body;
    if (!body.empty()) r.content_type = "application/json";
    r.headers = std::move(headers);
    if (!token.empty()) r.headers.emplace_back("Authorization", "Bearer " + token);
    return client_.Do(r);
  }

  // Registers `node` with the join token; its credential.
  std::string Join(const std::string& node) {
    auto r = Call("POST", agentapi::kRegisterPath,
                  R"({"node":{"name":")" + node + R"(","address":"127.0.0.1"}})", "join-t0ken");
    if (!r.ok() || r->status != 200) return "";
    auto answer = agentapi::RegisterResponseFromJson(*r->JsonBody());
    return answer.ok() ? answer->credential : "";
  }

  git::testing::RepoFarm farm_;
  git::testing::TempDir state_;
  SystemClock clock_;
  std::unique_ptr<Service> service_;
  net::HttpClient client_;
  std::string node_a_, node_b_;
};

// Every route × {nobody, viewer, node A, node B, admin}: the answer the matrix says.
TEST_F(AuthzTest, EveryRouteAnswersEveryCallerAsTheMatrixSays) {
  std::vector<std::pair<std::string, std::string>> callers = {{"anonymous", ""},
                                                              {"viewer", "viewer-t0ken"},
                                                              {"node A", node_a_},
                                                              {"node B", node_b_},
                                                              {"admin", "admin-t0ken"}};
  for (const auto& row : Matrix()) {
    const Outcome want[] = {row.anonymous, row.viewer, row.node_a, row.node_b, row.admin};
    for (size_t i = 0; i < callers.size(); ++i) {
      auto r = Call(row.method, row.target, row.body, callers[i].second);
      ASSERT_TRUE(r.ok()) << row.method << " " << row.target << ": " << r.status().ToString();
      const std::string what = row.method + " " + row.target + " as " + callers[i].first + " -> " +
                               std::to_string(r->status) + " " + r->body.substr(0, 200);
      if (want[i] == kOk) {
        EXPECT_NE(r->status, 401) << what;
        EXPECT_NE(r->status, 403) << what;
      } else {
        EXPECT_EQ(r->status, static_cast<int>(want[i])) << what;
      }
      // Registering node A again (as itself, or as an admin) hands it a new credential and
      // revokes the old one: node A goes on with the new one.
      if (row.access == Access::kJoin && r->status == 200) {
        auto answer = agentapi::RegisterResponseFromJson(*r->JsonBody());
        ASSERT_TRUE(answer.ok());
        callers[2].second = answer->credential;
      }
    }
  }
  // A wrong token is no identity at all.
  EXPECT_EQ(Call("GET", "/api/v1/status", "", "not-a-token")->status, 401);
  // The join token registers nodes, nothing else.
  EXPECT_EQ(Call("GET", "/api/v1/status", "", "join-t0ken")->status, 403);
  EXPECT_EQ(Call("POST", agentapi::kHeartbeatPath,
                 R"({"node":{"name":"node-a","address":"127.0.0.1"},"pods":[]})", "join-t0ken")
                ->status,
            403);
}

// A node may report only itself: node B cannot move node A's address, read node A's pods (and
// their secrets) or, with the join token, take node A's name while node A is alive.
TEST_F(AuthzTest, ANodeSpeaksOnlyForItself) {
  auto moved = Call("POST", agentapi::kHeartbeatPath,
                    R"({"node":{"name":"node-a","address":"127.0.0.66"},"pods":[]})", node_b_);
  ASSERT_TRUE(moved.ok());
  EXPECT_EQ(moved->status, 403) << moved->body;
  auto nodes = Call("GET", "/api/v1/nodes", "", "admin-t0ken");
  ASSERT_TRUE(nodes.ok());
  EXPECT_EQ(nodes->body.find("127.0.0.66"), std::string::npos) << nodes->body;
  EXPECT_EQ(Call("GET", "/api/v1/agent/desired?node=node-a&wait=0", "", node_b_)->status, 403);

  auto taken = Call("POST", agentapi::kRegisterPath,
                    R"({"node":{"name":"node-a","address":"127.0.0.1"}})", "join-t0ken");
  ASSERT_TRUE(taken.ok());
  EXPECT_EQ(taken->status, 409) << taken->body;
  EXPECT_NE(taken->body.find("holds a credential"), std::string::npos) << taken->body;
  // Node A's credential still works: nobody took it over.
  EXPECT_EQ(Call("POST", agentapi::kHeartbeatPath,
                 R"({"node":{"name":"node-a","address":"127.0.0.1"},"pods":[]})", node_a_)
                ->status,
            200);
  // Registering again with its own credential hands out a new one; the old one is revoked.
  auto again = Call("POST", agentapi::kRegisterPath,
                    R"({"node":{"name":"node-a","address":"127.0.0.1"}})", node_a_);
  ASSERT_EQ(again->status, 200) << again->body;
  EXPECT_EQ(Call("GET", "/api/v1/agent/desired?node=node-a&wait=0", "", node_a_)->status, 401);
}

// A viewer reads everything but never a secret value: not in the plan, its diff and text, the
// page, or a rollback's diff; it still sees that the value changed. An admin sees the values.
TEST_F(AuthzTest, ViewersNeverSeeSecretValues) {
  // The first sync, once the first poll has read the repository.
  int synced = 0;
  for (int i = 0; i < 200 && synced != 200; ++i) {
    synced = Call("POST", "/api/v1/sync", "{}", "admin-t0ken")->status;
    if (synced != 200) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ASSERT_EQ(synced, 200);
  farm_.Commit("manifests", {{"db.yaml", SecretDeployment("hunter2-second")}}, "two");
  ASSERT_EQ(Call("POST", "/api/v1/webhook/git", "{}", "")->status, 202);
  bool pending = false;
  for (int i = 0; i < 200 && !pending; ++i) {
    auto plan = Call("GET", "/api/v1/plan?diff=true", "", "admin-t0ken");
    pending = plan.ok() && plan->body.find("hunter2-second") != std::string::npos;
    if (!pending) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ASSERT_TRUE(pending) << "the second revision never showed in the plan";

  auto viewer_sees_no_secret = [&](const std::vector<std::string>& targets) {
    for (const auto& target : targets) {
      auto r = Call("GET", target, "", "viewer-t0ken");
      ASSERT_TRUE(r.ok()) << target;
      EXPECT_EQ(r->status, 200) << target << ": " << r->body.substr(0, 300);
      EXPECT_EQ(r->body.find("hunter2"), std::string::npos) << target << " shows a secret value";
    }
  };
  viewer_sees_no_secret({"/api/v1/plan?diff=true", "/api/v1/plan", "/", "/api/v1/deployments",
                         "/api/v1/pods", "/api/v1/status", "/api/v1/history", "/metrics"});
  auto plan = Call("GET", "/api/v1/plan?diff=true", "", "viewer-t0ken");
  EXPECT_NE(plan->body.find("DB_PASSWORD"), std::string::npos) << plan->body;
  EXPECT_NE(plan->body.find(diff::kRedactedChanged), std::string::npos) << plan->body;
  auto page = Call("GET", "/", "", "viewer-t0ken");
  EXPECT_NE(page->body.find("redacted: changed"), std::string::npos);
  auto admin = Call("GET", "/api/v1/plan?diff=true", "", "admin-t0ken");
  EXPECT_NE(admin->body.find("hunter2-second"), std::string::npos);

  // Applied: what rolling back to the first entry would change shows no value either.
  ASSERT_EQ(Call("POST", "/api/v1/sync", "{}", "admin-t0ken")->status, 200);
  viewer_sees_no_secret({"/api/v1/history/1/diff", "/api/v1/history/1/diff?format=text", "/"});
  auto rollback = Call("GET", "/api/v1/history/1/diff?format=text", "", "viewer-t0ken");
  EXPECT_NE(rollback->body.find("DB_PASSWORD"), std::string::npos) << rollback->body;
  EXPECT_NE(rollback->body.find(diff::kRedactedChanged), std::string::npos) << rollback->body;
  auto admin_rollback = Call("GET", "/api/v1/history/1/diff?format=text", "", "admin-t0ken");
  EXPECT_NE(admin_rollback->body.find("hunter2-first"), std::string::npos) << admin_rollback->body;
}

// A browser is asked for the token on the page (HTTP Basic, the token as password), and a
// browser page of another origin cannot make changes with the credentials the browser sends.
TEST_F(AuthzTest, BrowsersLogInWithBasicAndOtherOriginsCannotChangeAnything) {
  auto challenge = Call("GET", "/", "", "");
  ASSERT_TRUE(challenge.ok());
  EXPECT_EQ(challenge->status, 401);
  const std::string* how = net::FindHeader(challenge->headers, "WWW-Authenticate");
  ASSERT_NE(how, nullptr);
  EXPECT_EQ(how->rfind("Basic ", 0), 0u) << *how;
  // "any:viewer-t0ken" and "alice:admin-t0ken" in base64.
  auto page = Call("GET", "/", "", "", {{"Authorization", "Basic YW55OnZpZXdlci10MGtlbg=="}});
  EXPECT_EQ(page->status, 200) << page->body.substr(0, 200);
  const net::Headers admin_basic = {{"Authorization", "Basic YWxpY2U6YWRtaW4tdDBrZW4="}};
  auto own = admin_basic;
  own.emplace_back("Origin", "http://" + service_->url().substr(std::string("http://").size()));
  EXPECT_EQ(Call("POST", "/api/v1/sync", R"({"dryRun":true})", "", own)->status, 200);
  auto evil = admin_basic;
  evil.emplace_back("Origin", "http://evil.example");
  auto refused = Call("POST", "/api/v1/sync", R"({"dryRun":true})", "", evil);
  EXPECT_EQ(refused->status, 403) << refused->body;
  EXPECT_NE(refused->body.find("cross-origin"), std::string::npos) << refused->body;
  auto cross_site = admin_basic;
  cross_site.emplace_back("Sec-Fetch-Site", "cross-site");
  EXPECT_EQ(Call("POST", "/api/v1/unpin", "", "", cross_site)->status, 403);
}

}  // namespace
}  // namespace ballast::reconciler
