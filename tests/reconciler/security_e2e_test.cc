// The attacks of the security review, performed against the real `ballast serve` and
// `ballast agent` processes: a node that joins must not learn the admin's token or another
// node's pods, cannot take a live node's name, keeps its identity across kill -9, and a
// reconciler reachable beyond loopback refuses to start open.

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>

#include "agentapi/protocol.h"
#include "tests/reconciler/cluster.h"

namespace ballast::reconciler::testing {
namespace {

constexpr char kAdminToken[] = "adm1n-t0ken-only-for-people";
constexpr char kViewerToken[] = "v1ewer-t0ken";
constexpr char kJoinToken[] = "j0in-t0ken-for-agents";

class SecurityE2E : public ::testing::Test {
 protected:
  void SetUp() override {
    tokens_ = c_.dir() / "tokens.csv";
    join_ = c_.dir() / "join-token";
    std::ofstream(tokens_) << kAdminToken << ",alice,1,\"admin\"\n"
                           << kViewerToken << ",victor,2,\"viewer\"\n";
    std::ofstream(join_) << kJoinToken << "\n";
    chmod(tokens_.c_str(), 0600);
    chmod(join_.c_str(), 0600);
  }

  Result<net::ClientResponse> Call(const std::string& method, const std::string& path,
                                   const std::string& body, const std::string& token) {
    net::ClientRequest r;
    r.method = method;
    r.url = c_.url() + path;
    r.body = body;
    if (!body.empty()) r.content_type = "application/json";
    if (!token.empty()) r.headers.emplace_back("Authorization", "Bearer " + token);
    return net::HttpClient().Do(r);
  }

  // serve with the token file and the join token, two agents that join with it, and a
  // Deployment of two replicas rolled out; reads as the viewer.
  void StartCluster() {
    c_.Commit({{"web.yaml", WebManifest("v1", 2, PickFreePort())}}, "web v1");
    ASSERT_TRUE(c_.StartServe({"--token-file", tokens_, "--join-token-file", join_}));
    c_.set_read_token(kViewerToken);
    ASSERT_TRUE(c_.StartAgents(2, {"--token-file", join_}));
    ASSERT_TRUE(WaitFor([&] { return c_.RolledOut(2); })) << c_.Logs();
  }

  Cluster c_;
  std::string tokens_, join_;
};

TEST_F(SecurityE2E, AgentsJoinWithTheJoinTokenAndEachSpeaksOnlyForItself) {
  ASSERT_NO_FATAL_FAILURE(StartCluster());

  // Each agent keeps its own credential, readable by its user alone, and no other token.
  std::string credentials[2];
  for (size_t i = 0; i < 2; ++i) {
    const std::string kept =
        (c_.dir().path() / ("agent-" + Cluster::AgentName(i)) / "state" / "node-credential")
            .string();
    struct stat st {};
    ASSERT_EQ(stat(kept.c_str(), &st), 0) << kept;
    EXPECT_EQ(st.st_mode & 0777, 0600u) << kept;
    const Json j = Json::parse(ReadFile(kept));
    EXPECT_EQ(j["node"], Cluster::AgentName(i));
    credentials[i] = j["credential"].get<std::string>();
    EXPECT_EQ(ReadFile(kept).find(kAdminToken), std::string::npos);
    EXPECT_EQ(ReadFile(kept).find(kJoinToken), std::string::npos);
  }
  ASSERT_NE(credentials[0], credentials[1]);
  const std::string n2 = Cluster::AgentName(0), n3 = Cluster::AgentName(1);

  // Node n3's credential: not n2's pods, not n2's address, no reads, no changes.
  EXPECT_EQ(Call("GET", std::string(agentapi::kDesiredPath) + "?node=" + n2 + "&wait=0", "",
                 credentials[1])
                ->status,
            403);
  auto moved =
      Call("POST", agentapi::kHeartbeatPath,
           R"({"node":{"name":")" + n2 + R"(","address":"127.0.0.99"},"pods":[]})", credentials[1]);
  EXPECT_EQ(moved->status, 403) << moved->body;
  EXPECT_EQ(Call("GET", "/api/v1/status", "", credentials[1])->status, 403);
  EXPECT_EQ(Call("POST", "/api/v1/sync", "{}", credentials[1])->status, 403);
  // The join token: cannot take a live node's name, read, or change anything.
  auto taken = Call("POST", agentapi::kRegisterPath,
                    R"({"node":{"name":")" + n2 + R"(","address":"127.0.0.2"}})", kJoinToken);
  EXPECT_EQ(taken->status, 409) << taken->body;
  EXPECT_EQ(Call("GET", "/api/v1/pods", "", kJoinToken)->status, 403);
  EXPECT_EQ(Call("POST", "/api/v1/sync", "{}", kJoinToken)->status, 403);
  // Nobody: nothing but health.
  EXPECT_EQ(Call("GET", "/api/v1/pods", "", "")->status, 401);
  EXPECT_EQ(Call("GET", "/healthz", "", "")->status, 200);

  // kill -9 and restart: the agent is still node n2 with its kept credential (no 409, nothing
  // restarted), and the reconciler still reads its logs with the token it handed it.
  const auto before = c_.ReadyPods();
  c_.KillAgent(0);
  ASSERT_TRUE(c_.StartAgent(0));
  ASSERT_TRUE(WaitFor([&] {
    return ReadFile(c_.AgentLog(0)).find("event=registered") != std::string::npos;
  })) << c_.Logs();
  EXPECT_EQ(ReadFile(c_.AgentLog(0)).find("register_failed"), std::string::npos)
      << ReadFile(c_.AgentLog(0));
  ASSERT_TRUE(WaitFor([&] { return c_.RolledOut(2); })) << c_.Logs();
  for (const auto& [name, rev] : before) EXPECT_EQ(c_.ReadyPods().count(name), 1u) << name;
  // Every pod's logs, the restarted agent's too (once it has registered its new log server).
  for (const auto& [pod, rev] : c_.ReadyPods()) {
    Result<net::ClientResponse> logs = Unavailable("not asked");
    EXPECT_TRUE(WaitFor(
        [&] {
          logs = Call("GET", "/api/v1/logs/" + pod, "", kViewerToken);
          return logs.ok() && logs->status == 200;
        },
        std::chrono::seconds(30)))
        << (logs.ok() ? logs->body : logs.status().ToString());
    EXPECT_NE(logs->body.find("demo-app: serving"), std::string::npos) << logs->body;
  }

  // Neither log ever shows a token.
  for (const std::string& log : {c_.serve_log(), c_.AgentLog(0), c_.AgentLog(1)}) {
    const std::string text = ReadFile(log);
    for (const std::string& secret : {std::string(kAdminToken), std::string(kViewerToken),
                                      std::string(kJoinToken), credentials[0], credentials[1]}) {
      EXPECT_EQ(text.find(secret), std::string::npos) << log << " shows a token";
    }
  }
}

// The reconciler forgets credentials when it restarts (kill -9): agents join again with the
// join token, by themselves, and nothing restarts.
TEST_F(SecurityE2E, AgentsJoinAgainAfterTheReconcilerForgetsThem) {
  ASSERT_NO_FATAL_FAILURE(StartCluster());
  const auto before = c_.ReadyPods();
  c_.KillServe();
  ASSERT_TRUE(c_.StartServe({"--token-file", tokens_, "--join-token-file", join_}));
  ASSERT_TRUE(WaitFor([&] {
    const Json nodes = c_.Get("/api/v1/nodes");
    return nodes.is_object() && nodes["items"].size() == 2;
  })) << c_.Logs();
  ASSERT_TRUE(WaitFor([&] { return c_.RolledOut(2); })) << c_.Logs();
  EXPECT_EQ(c_.ReadyPods(), before);
}

// Mutual TLS (serve --tls-client-ca): agents join with a node certificate and no token at all,
// people read and act by their certificate's organization, and a certificate is only ever the
// node it names; one the client CA did not sign gets no connection.
TEST(SecurityMutualTls, NodeAndPeopleCertificatesAreIdentities) {
  Cluster c;
  const std::string d = c.dir().path() / "pki";
  std::filesystem::create_directories(d);
  auto sign = [&](const std::string& name, const std::string& subject) {
    return "openssl req -newkey rsa:2048 -nodes -keyout " + name + ".key -out " + name +
           ".csr -subj '" + subject + "' && openssl x509 -req -in " + name +
           ".csr -CA clients.pem -CAkey clients.key -CAcreateserial -out " + name +
           ".pem -days 2 && ";
  };
  auto made = git::testing::Sh(
      "cd " + d +
      " && openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days 2 "
      "-subj /CN=ballast-ca && openssl req -newkey rsa:2048 -nodes -keyout server.key -out "
      "server.csr -subj /CN=127.0.0.1 && printf 'subjectAltName=IP:127.0.0.1\n' > ext.cnf && "
      "openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out "
      "server.pem -days 2 -extfile ext.cnf && openssl req -x509 -newkey rsa:2048 -nodes -keyout "
      "clients.key -out clients.pem -days 2 -subj /CN=ballast-clients && " +
      sign("n2", "/O=system:nodes/CN=system:node:n2") + sign("n3", "/O=system:nodes/CN=n3") +
      sign("alice", "/O=admin/CN=alice") + sign("victor", "/O=viewer/CN=victor") +
      "openssl req -x509 -newkey rsa:2048 -nodes -keyout forged.key -out forged.pem -days 2 "
      "-subj '/O=admin/CN=mallory' 2>&1");
  ASSERT_EQ(made.exit_code, 0) << made.output;
  auto as = [&](const std::string& who) {
    net::ClientOptions o;
    o.ca_file = d + "/ca.pem";
    if (!who.empty()) {
      o.cert_file = d + "/" + who + ".pem";
      o.key_file = d + "/" + who + ".key";
    }
    return o;
  };
  c.Commit({{"web.yaml", WebManifest("v1", 2, PickFreePort())}}, "web v1");
  ASSERT_TRUE(c.StartServe({"--tls-cert", d + "/server.pem", "--tls-key", d + "/server.key",
                            "--tls-client-ca", d + "/clients.pem"}));
  ASSERT_EQ(c.url().rfind("https://", 0), 0u) << c.url();
  c.set_client_options(as("victor"));
  for (const char* node : {"n2", "n3"}) {
    ASSERT_TRUE(c.StartAgents(1, {"--ca-file", d + "/ca.pem", "--tls-cert", d + "/" + node + ".pem",
                                  "--tls-key", d + "/" + node + ".key"}));
  }
  ASSERT_TRUE(WaitFor([&] { return c.RolledOut(2); })) << c.Logs();

  auto call = [&](const std::string& who, const std::string& method, const std::string& path,
                  const std::string& body) {
    net::ClientRequest r;
    r.method = method;
    r.url = c.url() + path;
    r.body = body;
    if (!body.empty()) r.content_type = "application/json";
    return net::HttpClient(as(who)).Do(r);
  };
  // The viewer reads, never acts; the admin acts; no certificate and no token: nothing.
  EXPECT_EQ(call("victor", "GET", "/api/v1/pods", "")->status, 200);
  EXPECT_EQ(call("victor", "POST", "/api/v1/sync", "{}")->status, 403);
  EXPECT_EQ(call("alice", "POST", "/api/v1/sync", "{}")->status, 200);
  EXPECT_EQ(call("", "GET", "/api/v1/pods", "")->status, 401);
  // Node n3's certificate: not n2's registration, heartbeat or pods, and no reads.
  auto taken = call("n3", "POST", agentapi::kRegisterPath,
                    R"({"node":{"name":"n2","address":"127.0.0.3"}})");
  EXPECT_EQ(taken->status, 403) << taken->body;
  EXPECT_EQ(call("n3", "POST", agentapi::kHeartbeatPath,
                 R"({"node":{"name":"n2","address":"127.0.0.99"},"pods":[]})")
                ->status,
            403);
  EXPECT_EQ(call("n3", "GET", std::string(agentapi::kDesiredPath) + "?node=n2&wait=0", "")->status,
            403);
  EXPECT_EQ(call("n3", "GET", "/api/v1/status", "")->status, 403);
  // A self-made "admin" certificate: no TLS connection at all.
  auto forged = call("forged", "POST", "/api/v1/sync", "{}");
  EXPECT_FALSE(forged.ok()) << forged->status;
  // The pods still run where they were.
  EXPECT_TRUE(c.RolledOut(2));
}

// Beyond loopback with no credentials, serve and agent refuse to start, saying why and what
// to do; nothing is bound.
TEST(SecurityDefaults, NoOpenServerOrAgentBeyondLoopback) {
  TempDir dir;
  auto serve = git::testing::Sh(std::string(BALLAST_BINARY) + " serve --repo " +
                                (dir.path() / "none").string() + " --state-dir " +
                                (dir.path() / "state").string() + " --listen 0.0.0.0:0 2>&1");
  EXPECT_EQ(serve.exit_code, 1) << serve.output;
  EXPECT_NE(serve.output.find("reachable from other machines"), std::string::npos) << serve.output;
  EXPECT_NE(serve.output.find("--insecure"), std::string::npos) << serve.output;
  auto agent = git::testing::Sh(std::string(BALLAST_BINARY) +
                                " agent --name edge --address 10.255.255.1 --work-dir " +
                                (dir.path() / "agent").string() + " 2>&1");
  EXPECT_EQ(agent.exit_code, 1) << agent.output;
  EXPECT_NE(agent.output.find("reachable from other machines"), std::string::npos) << agent.output;
  // A token file with a mistake: its line and field, never its tokens.
  std::ofstream(dir.path() / "tokens.csv") << "a-t0ken,alice,1,admin\nb-t0ken,bob,2,\"root\"\n";
  auto bad = git::testing::Sh(std::string(BALLAST_BINARY) + " serve --repo " +
                              (dir.path() / "none").string() + " --token-file " +
                              (dir.path() / "tokens.csv").string() + " 2>&1");
  EXPECT_EQ(bad.exit_code, 2) << bad.output;
  EXPECT_NE(bad.output.find("tokens.csv:2: groups (field 4) of user bob"), std::string::npos)
      << bad.output;
  EXPECT_EQ(bad.output.find("t0ken"), std::string::npos) << bad.output;
}

}  // namespace
}  // namespace ballast::reconciler::testing
