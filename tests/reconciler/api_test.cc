// The API's cached documents and the heartbeat path, against the real `ballast serve`: what a
// client sees right after a change (never the document from before it), conditional GETs
// (ETag / If-None-Match -> 304), and that a storm of heartbeats does not cost a reconcile
// each (observable through /metrics).

#include <atomic>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "agentapi/protocol.h"
#include "model/cluster.h"
#include "model/quantity.h"
#include "tests/reconciler/cluster.h"

namespace ballast::reconciler {
namespace {

using testing::Cluster;
using testing::Json;
using testing::WaitFor;

// A Service only: nothing to place, so no agent is needed.
std::string ServiceManifest(int port) {
  return "apiVersion: v1\nkind: Service\nmetadata: {name: web}\nspec:\n  selector: {app: web}\n"
         "  ports: [{name: http, port: " +
         std::to_string(port) + ", targetPort: 8080}]\n";
}

// `n` more Services, so that documents are large enough to be sent gzipped.
std::string MoreServices(int n) {
  std::string out;
  for (int i = 0; i < n; ++i) {
    out += "---\napiVersion: v1\nkind: Service\nmetadata: {name: extra-" + std::to_string(i) +
           "}\nspec:\n  selector: {app: extra}\n  ports: [{port: 80, targetPort: 8080}]\n";
  }
  return out;
}

// The port of Service "web" in a services document; 0 when absent.
int WebPort(const Json& services) {
  if (!services.is_object()) return 0;
  for (const auto& s : services["items"]) {
    if (s["name"] == "web") return s["ports"][0]["port"].get<int>();
  }
  return 0;
}

net::ClientResponse Get(const std::string& url, const std::string& if_none_match = "") {
  net::HttpClient client;
  net::ClientRequest req;
  req.url = url;
  if (!if_none_match.empty()) req.headers.emplace_back("If-None-Match", if_none_match);
  auto r = client.Do(req);
  EXPECT_TRUE(r.ok()) << r.status().ToString();
  return r.ok() ? *r : net::ClientResponse{};
}

std::string ETag(const net::ClientResponse& r) {
  const auto* h = net::FindHeader(r.headers, "ETag");
  return h ? *h : "";
}

Json Body(const net::ClientResponse& r) {
  auto j = r.JsonBody();
  return j.ok() ? *j : Json(nullptr);
}

// The sum of every series of a metric family in the Prometheus text.
double Metric(const std::string& text, const std::string& name,
              const std::string& label_filter = "") {
  double sum = 0;
  size_t pos = 0;
  while ((pos = text.find(name, pos)) != std::string::npos) {
    bool line_start = pos == 0 || text[pos - 1] == '\n';
    size_t end = text.find('\n', pos);
    std::string line = text.substr(pos, end - pos);
    pos = end;
    if (!line_start) continue;
    char next = line.size() > name.size() ? line[name.size()] : '\0';
    if (next != '{' && next != ' ') continue;
    if (!label_filter.empty() && line.find(label_filter) == std::string::npos) continue;
    sum += std::stod(line.substr(line.rfind(' ') + 1));
  }
  return sum;
}

std::string MetricsText(Cluster& c) { return Get(c.url() + "/metrics").body; }

// What `gzip -dc` reads back from `data`.
std::string Gunzip(const std::string& data) {
  testing::TempDir dir;
  std::string path = dir / "body.gz";
  {
    std::ofstream out(path, std::ios::binary);
    out << data;
  }
  auto r = git::testing::Sh("gzip -dc " + path);
  EXPECT_EQ(r.exit_code, 0) << r.output;
  return r.output;
}

TEST(ApiTest, DocumentsAreCurrentRightAfterAChangeAndRevalidateWithETags) {
  Cluster c;
  std::string sha1 =
      c.Commit({{"web.yaml", ServiceManifest(80)}, {"more.yaml", MoreServices(20)}}, "port 80");
  ASSERT_TRUE(c.StartServe({"--sync", "manual"}));
  ASSERT_TRUE(WaitFor([&] {
    Json s = c.Status();
    return !s.is_null() && s["revision"] == sha1;
  })) << c.Logs();
  const std::string status_url = c.url() + "/api/v1/status";

  auto first = Get(status_url);
  ASSERT_EQ(first.status, 200);
  std::string etag = ETag(first);
  ASSERT_FALSE(etag.empty());
  EXPECT_EQ(Body(first)["appliedRevision"], "");
  EXPECT_EQ(Body(first)["sync"], "OutOfSync");
  // Unchanged: 304, no body, the same tag; any other tag gets the document.
  auto again = Get(status_url, etag);
  EXPECT_EQ(again.status, 304);
  EXPECT_TRUE(again.body.empty());
  EXPECT_EQ(ETag(again), etag);
  EXPECT_EQ(Get(status_url, "\"0000000000000000\"").status, 200);

  // Sync: the very next GET (same conditional request) shows the applied revision.
  auto sync = c.Post("/api/v1/sync", Json::object());
  ASSERT_TRUE(sync.ok());
  ASSERT_EQ(sync->status, 200) << sync->body;
  auto after = Get(status_url, etag);
  ASSERT_EQ(after.status, 200);
  EXPECT_NE(ETag(after), etag);
  EXPECT_EQ(Body(after)["appliedRevision"], sha1);
  EXPECT_EQ(WebPort(c.Get("/api/v1/services")), 80);

  // Again with the status being polled (documents in use are rendered ahead): a new commit,
  // seen through the webhook, then synced; each step visible at once.
  std::string sha2 = c.Commit({{"web.yaml", ServiceManifest(81)}}, "port 81");
  ASSERT_EQ(c.Post("/api/v1/webhook/git", Json::object())->status, 202);
  ASSERT_TRUE(WaitFor([&] { return Body(Get(status_url))["revision"] == sha2; })) << c.Logs();
  std::string etag2 = ETag(Get(status_url));
  EXPECT_EQ(Body(Get(status_url))["appliedRevision"], sha1);
  EXPECT_EQ(WebPort(c.Get("/api/v1/services")), 80);
  ASSERT_EQ(c.Post("/api/v1/sync", Json::object())->status, 200);
  auto synced = Get(status_url, etag2);
  ASSERT_EQ(synced.status, 200);
  EXPECT_EQ(Body(synced)["appliedRevision"], sha2);
  EXPECT_EQ(WebPort(c.Get("/api/v1/services")), 81);
  // The plan's document too (a view of its own in the cache).
  EXPECT_EQ(c.Get("/api/v1/plan")["appliedRevision"], sha2);

  // gzip for clients that accept it: the same document, its own ETag, 304 with that tag.
  net::HttpClient client;
  net::ClientRequest gz_req;
  gz_req.url = status_url;
  gz_req.headers.emplace_back("Accept-Encoding", "gzip");
  auto gz = client.Do(gz_req);
  ASSERT_TRUE(gz.ok());
  ASSERT_EQ(gz->status, 200);
  auto identity = Get(status_url);
  ASSERT_GT(identity.body.size(), 1024u);  // 21 objects: worth compressing
  const auto* encoding = net::FindHeader(gz->headers, "Content-Encoding");
  ASSERT_NE(encoding, nullptr);
  EXPECT_EQ(*encoding, "gzip");
  EXPECT_LT(gz->body.size(), identity.body.size());
  EXPECT_EQ(Gunzip(gz->body), identity.body);
  EXPECT_NE(ETag(*gz), ETag(identity));
  gz_req.headers.emplace_back("If-None-Match", ETag(*gz));
  EXPECT_EQ(client.Do(gz_req)->status, 304);

  std::string metrics = MetricsText(c);
  EXPECT_GE(Metric(metrics, "ballast_api_cache_requests_total", "result=\"not_modified\""), 1);
  EXPECT_GE(Metric(metrics, "ballast_api_cache_requests_total", "result=\"hit\""), 1);
}

// Heartbeats as an agent sends them, for a node "storm" running one pod.
struct Storm {
  explicit Storm(Cluster& c) : cluster(c) {
    node.name = "storm";
    node.address = "127.0.0.9";
    node.ready = true;
    node.capacity = {{"cpu", *model::Quantity::Parse("1")},
                     {"memory", *model::Quantity::Parse("1Gi")}};
    node.allocatable = node.capacity;
    pod.name = "stray-5f4d3c2b1a-x7k2p";
    pod.deployment = "stray";
    pod.revision = "5f4d3c2b1a";
    pod.node = "storm";
    pod.phase = model::PodPhase::kRunning;
  }
  bool Register() {
    auto r = cluster.Post(agentapi::kRegisterPath, Json{{"node", model::ToJson(node)}});
    return r.ok() && r->status == 200;
  }
  bool Beat(int restarts, bool ready) {
    agentapi::Heartbeat hb;
    hb.node = node;
    hb.node.last_heartbeat_ms = ++clock_ms;  // what an agent sends: its time moves on
    hb.pods = {pod};
    hb.pods[0].restarts = restarts;
    hb.pods[0].ready = ready;
    auto r = cluster.Post(agentapi::kHeartbeatPath, agentapi::ToJson(hb));
    return r.ok() && r->status == 200;
  }
  Cluster& cluster;
  model::Node node;
  model::Pod pod;
  std::atomic<int64_t> clock_ms{1'700'000'000'000};
};

TEST(ApiTest, HeartbeatsThatChangeNothingDoNotReconcileAndBurstsCoalesce) {
  Cluster c;
  c.Commit({{"web.yaml", ServiceManifest(80)}}, "service");
  ASSERT_TRUE(c.StartServe({}));
  ASSERT_TRUE(WaitFor([&] { return c.Status()["sync"] == "Synced"; })) << c.Logs();
  Storm storm(c);
  ASSERT_TRUE(storm.Register());
  ASSERT_TRUE(storm.Beat(0, false));

  // 200 heartbeats that only say "still here".
  std::string m0 = MetricsText(c);
  for (int i = 0; i < 200; ++i) ASSERT_TRUE(storm.Beat(0, false));
  std::string m1 = MetricsText(c);
  EXPECT_EQ(Metric(m1, "ballast_heartbeats_total", "result=\"unchanged\"") -
                Metric(m0, "ballast_heartbeats_total", "result=\"unchanged\""),
            200);
  double quiet = Metric(m1, "ballast_reconciles_total") - Metric(m0, "ballast_reconciles_total");
  EXPECT_LT(quiet, 100) << "a reconcile per unchanged heartbeat?\n" << m1;
  // The node's last heartbeat is still current in the nodes document.
  Json nodes = c.Get("/api/v1/nodes");
  ASSERT_EQ(nodes["items"].size(), 1u);
  EXPECT_EQ(nodes["items"][0]["name"], "storm");

  // 200 heartbeats that each change something, from 8 agents' worth of connections at once.
  std::vector<std::thread> threads;
  std::atomic<int> failed{0};
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 25; ++i) {
        if (!storm.Beat(1 + t * 25 + i, false)) ++failed;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(failed, 0);
  std::string m2 = MetricsText(c);
  EXPECT_EQ(Metric(m2, "ballast_heartbeats_total", "result=\"changed\"") -
                Metric(m1, "ballast_heartbeats_total", "result=\"changed\""),
            200);
  double burst = Metric(m2, "ballast_reconciles_total") - Metric(m1, "ballast_reconciles_total");
  EXPECT_LT(burst, 100) << "bursts are not coalesced\n" << m2;

  // A real change is seen at once: the pod turns ready, and the very next GET shows it.
  ASSERT_TRUE(storm.Beat(1000, true));
  Json pods = c.Get("/api/v1/pods");
  ASSERT_EQ(pods["items"].size(), 1u);
  EXPECT_EQ(pods["items"][0]["restarts"], 1000);
  EXPECT_EQ(pods["items"][0]["ready"], true);
}

}  // namespace
}  // namespace ballast::reconciler
