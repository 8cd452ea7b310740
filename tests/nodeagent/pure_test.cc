// Pure parts of the agent: $(VAR) expansion, CrashLoopBackOff, protocol codecs.

#include <gtest/gtest.h>

#include "agentapi/protocol.h"
#include "nodeagent/backoff.h"
#include "nodeagent/expand.h"
#include "nodeagent/proxy_drain.h"
#include "nodeagent/service_env.h"

namespace ballast::nodeagent {
namespace {

// What a proxy reports while endpoints leave its Services: those still carrying connections,
// and a change to tell the reconciler at once when one leaves or finishes draining.
TEST(DrainTrackerTest, ReportsEndpointsThatLeftWithConnectionsOpen) {
  const EndpointKey a{0x0200007f, 40001}, b{0x0200007f, 40002};  // 127.0.0.2
  EXPECT_EQ(a.ToString(), "127.0.0.2:40001");
  DrainTracker t;
  t.SetListed({a, b});
  EXPECT_FALSE(t.TakeChanged());  // nothing left
  t.Opened(a);
  t.Opened(a);
  t.Opened(b);
  EXPECT_FALSE(t.TakeChanged());
  t.SetListed({b});  // a left the Service with two connections open
  EXPECT_TRUE(t.TakeChanged());
  EXPECT_EQ(t.Draining(), std::vector<std::string>{"127.0.0.2:40001"});
  t.Closed(a);
  EXPECT_FALSE(t.TakeChanged());
  EXPECT_EQ(t.Draining().size(), 1u);
  t.Closed(a);
  EXPECT_TRUE(t.TakeChanged());
  EXPECT_TRUE(t.Draining().empty());
  // A connection to an endpoint chosen before it left counts too.
  t.Opened(a);
  EXPECT_TRUE(t.TakeChanged());
  EXPECT_EQ(t.Draining().size(), 1u);
  // An endpoint that left with nothing open: the update alone is news (the reconciler waits
  // to hear it was applied).
  t.Closed(a);
  EXPECT_TRUE(t.TakeChanged());
  t.SetListed({});
  EXPECT_TRUE(t.TakeChanged());
  EXPECT_EQ(t.Draining(), std::vector<std::string>{"127.0.0.2:40002"});
  t.Closed(b);
  t.Closed(b);  // more closes than opens change nothing
  EXPECT_TRUE(t.TakeChanged());
  EXPECT_TRUE(t.Draining().empty());
}

TEST(ExpandTest, KubernetesSemantics) {
  std::map<std::string, std::string> vars = {{"A", "alpha"}, {"B", "$(A)"}, {"EMPTY", ""}};
  EXPECT_EQ(ExpandVars("$(A)", vars), "alpha");
  EXPECT_EQ(ExpandVars("x-$(A)-y", vars), "x-alpha-y");
  EXPECT_EQ(ExpandVars("$(A)$(A)", vars), "alphaalpha");
  EXPECT_EQ(ExpandVars("$(UNKNOWN)", vars), "$(UNKNOWN)");
  EXPECT_EQ(ExpandVars("$$(A)", vars), "$(A)");  // escaped
  EXPECT_EQ(ExpandVars("$$$(A)", vars), "$alpha");
  EXPECT_EQ(ExpandVars("$$$$", vars), "$$");
  EXPECT_EQ(ExpandVars("$(B)", vars), "$(A)");  // values are not expanded again
  EXPECT_EQ(ExpandVars("$(EMPTY)x", vars), "x");
  EXPECT_EQ(ExpandVars("$A", vars), "$A");              // not an expression
  EXPECT_EQ(ExpandVars("cost: 5$", vars), "cost: 5$");  // trailing operator
  EXPECT_EQ(ExpandVars("$(A", vars), "$(A");            // incomplete reference
  EXPECT_EQ(ExpandVars("$()", vars), "$()");
  EXPECT_EQ(ExpandVars("", vars), "");
  EXPECT_EQ(ExpandVars("$(A)$(", vars), "alpha$(");
}

TEST(BackoffTest, DoublesToFiveMinutesAndResetsAfterTenMinutesRunning) {
  CrashLoopBackoff b;
  int64_t t = 0;
  std::vector<int64_t> delays;
  for (int i = 0; i < 8; ++i) {
    int64_t d = b.NextDelay(t, t + 1000);
    delays.push_back(d);
    t += 1000 + d;
  }
  EXPECT_EQ(delays,
            (std::vector<int64_t>{10000, 20000, 40000, 80000, 160000, 300000, 300000, 300000}));
  EXPECT_EQ(b.NextDelay(t, t + 600'000), 10000);  // ran 10 minutes: back to the start
  EXPECT_EQ(b.NextDelay(t, t + 599'999 + 0), 20000);
}

TEST(ProtocolTest, ServiceEnvironmentNamesAsKubernetes) {
  agentapi::DesiredService s;
  s.name = "my-db";
  s.ports = {agentapi::DesiredServicePort{"pg", "TCP", 5432, 0, {}},
             agentapi::DesiredServicePort{"", "TCP", 9187, 0, {}}};
  agentapi::DesiredService other = s;
  other.namespace_ = "elsewhere";
  other.name = "hidden";
  auto env = ServiceEnvironment({s, other}, "default", "127.0.0.5");
  EXPECT_EQ(env["MY_DB_SERVICE_HOST"], "127.0.0.5");
  EXPECT_EQ(env["MY_DB_SERVICE_PORT"], "5432");
  EXPECT_EQ(env["MY_DB_SERVICE_PORT_PG"], "5432");
  EXPECT_EQ(env.count("HIDDEN_SERVICE_HOST"), 0u);
}

TEST(ProtocolTest, ServiceEnvironmentPointsAtTheClusterIP) {
  agentapi::DesiredService api;
  api.name = "api";
  api.cluster_ip = "127.150.2.9";
  api.ports = {agentapi::DesiredServicePort{"http", "TCP", 80, 0, {}}};
  agentapi::DesiredService headless = api;
  headless.name = "db";
  headless.cluster_ip = "";
  auto env = ServiceEnvironment({api, headless}, "default", "127.0.0.5");
  EXPECT_EQ(env["API_SERVICE_HOST"], "127.150.2.9");
  EXPECT_EQ(env["API_SERVICE_PORT"], "80");
  EXPECT_EQ(env["DB_SERVICE_HOST"], "127.0.0.5");  // headless: the node's proxy, as before
  // A container on a bridge network cannot reach the host's loopback: the node's address.
  auto in_image = ServiceEnvironment({api}, "default", "10.1.2.3", /*use_cluster_ips=*/false);
  EXPECT_EQ(in_image["API_SERVICE_HOST"], "10.1.2.3");
}

TEST(ProtocolTest, DesiredStateRoundTripsAndRejectsBadInput) {
  agentapi::DesiredState st;
  st.node = "n1";
  st.version = 4;
  agentapi::DesiredPod p;
  p.name = "web-abc-x1";
  p.deployment = "web";
  p.revision = "abc";
  model::Container c;
  c.name = "main";
  c.command = {"/bin/true"};
  c.ports.push_back(model::ContainerPort{"http", 8080, "TCP", 0, model::Json::object()});
  p.template_.spec.containers.push_back(c);
  p.env = {{"X", "1"}};
  st.pods.push_back(p);
  agentapi::DesiredService s;
  s.name = "web";
  s.cluster_ip = "127.201.7.3";
  s.ports = {agentapi::DesiredServicePort{"http", "TCP", 80, 30080, {"127.0.0.2:4000"}}};
  st.services.push_back(s);
  agentapi::DesiredService headless;
  headless.name = "db";
  headless.ports = {agentapi::DesiredServicePort{"pg", "TCP", 5432, 0, {}}};
  st.services.push_back(headless);
  auto back = agentapi::DesiredStateFromJson(ToJson(st));
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(back->pods.at(0).name, st.pods[0].name);
  EXPECT_EQ(back->pods.at(0).template_.spec.containers.at(0).command, c.command);
  EXPECT_EQ(back->services, st.services);
  EXPECT_EQ(ToJson(st)["services"][0]["clusterIP"], "127.201.7.3");
  // A reconciler of an earlier version sends no clusterIP: served on the node's address only.
  model::Json old = ToJson(st);
  old["services"][0].erase("clusterIP");
  auto from_old = agentapi::DesiredStateFromJson(old);
  ASSERT_TRUE(from_old.ok());
  EXPECT_EQ(from_old->services.at(0).cluster_ip, "");
  EXPECT_EQ(back->version, 4);

  EXPECT_FALSE(agentapi::DesiredStateFromJson(model::Json::array()).ok());
  EXPECT_FALSE(agentapi::DesiredStateFromJson(model::Json{{"pods", {{{"name", "x"}}}}}).ok());
  EXPECT_FALSE(agentapi::DesiredStateFromJson(model::Json{{"version", "seven"}}).ok());
  auto bad_port = model::Json{{"services", {{{"name", "s"}, {"ports", {{{"port", 70000}}}}}}}};
  EXPECT_FALSE(agentapi::DesiredStateFromJson(bad_port).ok());
  auto bad_ip = model::Json{{"services", {{{"name", "s"}, {"clusterIP", "127.1.2"}}}}};
  EXPECT_FALSE(agentapi::DesiredStateFromJson(bad_ip).ok());
  auto ip_type = model::Json{{"services", {{{"name", "s"}, {"clusterIP", 7}}}}};
  EXPECT_FALSE(agentapi::DesiredStateFromJson(ip_type).ok());
}

}  // namespace
}  // namespace ballast::nodeagent
