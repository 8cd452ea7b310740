// The reconciler service's parts on their own: the pin file, webhook signatures, the worker's
// ordering and shutdown, and the log relay's bounds and shutdown.

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <future>
#include <mutex>
#include <thread>

#include "net/server.h"
#include "reconciler/log_relay.h"
#include "reconciler/node_roster.h"
#include "reconciler/pin_store.h"
#include "reconciler/webhook.h"
#include "reconciler/worker.h"
#include "tests/support/git_servers.h"

namespace ballast::reconciler {
namespace {

namespace fs = std::filesystem;

// The nodes a restarted reconciler waits for: kept across restarts, a damaged file named with
// its line (never read as "no nodes": placements would then not wait).
TEST(NodeRoster, StoresLoadsAndNamesADamagedFile) {
  git::testing::TempDir dir;
  NodeRoster roster(dir.path() / "nodes");
  auto none = roster.Load();
  ASSERT_TRUE(none.ok()) << none.status().ToString();
  EXPECT_TRUE(none->empty());
  ASSERT_TRUE(roster.Store({"edge-1", "edge-2"}).ok());
  EXPECT_EQ(*roster.Load(), (std::set<std::string>{"edge-1", "edge-2"}));
  { std::ofstream(dir.path() / "nodes") << "edge-1\nedge 2\n"; }
  auto bad = roster.Load();
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find((dir.path() / "nodes").string() + ":2:"), std::string::npos)
      << bad.status().ToString();
  { std::ofstream(dir.path() / "nodes") << "a\nb\nc\n"; }
  EXPECT_FALSE(roster.Load(/*max_nodes=*/2).ok());
  // Cut short in a name ("edge-12\n" that lost its end): not a roster naming "edge-1".
  { std::ofstream(dir.path() / "nodes") << "edge-1\nedge-1"; }
  auto cut = roster.Load();
  ASSERT_FALSE(cut.ok());
  EXPECT_NE(cut.status().message().find((dir.path() / "nodes").string() + ": truncated"),
            std::string::npos)
      << cut.status().message();
}

TEST(PinStore, StoresLoadsClearsAndNamesAGarbledFile) {
  git::testing::TempDir dir;
  PinStore pins(dir.path() / "pin");
  auto none = pins.Load();
  ASSERT_TRUE(none.ok());
  EXPECT_FALSE(none->has_value());
  ASSERT_TRUE(pins.Store(3).ok());
  EXPECT_EQ(*pins.Load(), std::optional<int64_t>(3));
  // Written by hand: "7\n" is an entry id.
  { std::ofstream(dir.path() / "pin") << "7\n"; }
  EXPECT_EQ(*pins.Load(), std::optional<int64_t>(7));
  // Cut short ("17\n" that lost its end): never read as another entry.
  { std::ofstream(dir.path() / "pin") << "1"; }
  auto cut = pins.Load();
  ASSERT_FALSE(cut.ok());
  EXPECT_NE(cut.status().message().find((dir.path() / "pin").string() + ": truncated"),
            std::string::npos)
      << cut.status().message();
  ASSERT_TRUE(pins.Clear().ok());
  EXPECT_FALSE(pins.Load()->has_value());
  EXPECT_FALSE(pins.Store(0).ok());

  { std::ofstream(dir.path() / "pin") << "yes\n"; }
  auto garbled = pins.Load();
  ASSERT_FALSE(garbled.ok());
  EXPECT_NE(garbled.status().message().find((dir.path() / "pin").string()), std::string::npos)
      << garbled.status().message();
}

net::Request WebhookRequest(std::string body, net::Headers headers) {
  net::Request r;
  r.method = "POST";
  r.path = "/api/v1/webhook/git";
  r.body = std::move(body);
  r.headers = std::move(headers);
  return r;
}

TEST(Webhook, GithubGiteaAndGitlabSignaturesAndLimits) {
  const std::string body = R"({"ref":"refs/heads/main"})";
  WebhookVerifier v({"s3cret", 1024});
  const std::string mac = HmacSha256Hex("s3cret", body);
  EXPECT_EQ(v.Verify(WebhookRequest(body, {{"X-Hub-Signature-256", "sha256=" + mac}}), 0),
            WebhookVerdict::kAccepted);
  EXPECT_EQ(v.Verify(WebhookRequest(body, {{"X-Gitea-Signature", mac}}), 0),
            WebhookVerdict::kAccepted);
  EXPECT_EQ(v.Verify(WebhookRequest(body, {{"X-Gitlab-Token", "s3cret"}}), 0),
            WebhookVerdict::kAccepted);
  EXPECT_EQ(v.Verify(WebhookRequest(body + " ", {{"X-Hub-Signature-256", "sha256=" + mac}}), 0),
            WebhookVerdict::kUnauthorized);
  EXPECT_EQ(v.Verify(WebhookRequest(body, {{"X-Gitlab-Token", "guess"}}), 0),
            WebhookVerdict::kUnauthorized);
  EXPECT_EQ(v.Verify(WebhookRequest(body, {}), 0), WebhookVerdict::kUnauthorized);
  EXPECT_EQ(v.Verify(WebhookRequest(std::string(2000, 'x'), {}), 0), WebhookVerdict::kTooLarge);
  // Known answer (RFC 4231 test case 2).
  EXPECT_EQ(HmacSha256Hex("Jefe", "what do ya want for nothing?"),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
}

// Without a secret anyone may trigger polls: a burst passes, then one every 60/N seconds.
TEST(Webhook, UnsignedWebhooksAreRateLimited) {
  const std::string body = R"({"ref":"refs/heads/main"})";
  WebhookVerifier open({"", 1024, /*unsigned_per_minute=*/6});
  for (int i = 0; i < 6; ++i) {
    EXPECT_EQ(open.Verify(WebhookRequest(body, {}), 1000), WebhookVerdict::kAccepted) << i;
  }
  EXPECT_EQ(open.Verify(WebhookRequest(body, {}), 1000), WebhookVerdict::kRateLimited);
  EXPECT_EQ(open.Verify(WebhookRequest(body, {}), 5000), WebhookVerdict::kRateLimited);
  EXPECT_EQ(open.Verify(WebhookRequest(body, {}), 11000), WebhookVerdict::kAccepted);
  EXPECT_EQ(open.Verify(WebhookRequest(body, {}), 11000), WebhookVerdict::kRateLimited);
  // Signed webhooks are not limited here (they come from whoever holds the secret).
  WebhookVerifier signed_hooks({"s3cret", 1024, 1});
  const std::string mac = HmacSha256Hex("s3cret", body);
  for (int i = 0; i < 5; ++i) {
    EXPECT_EQ(signed_hooks.Verify(WebhookRequest(body, {{"X-Gitea-Signature", mac}}), 0),
              WebhookVerdict::kAccepted);
  }
}

TEST(Worker, RunsInOrderFinishesWhatIsQueuedOnStopAndRefusesLater) {
  Worker worker(/*max_queued=*/100);
  std::promise<void> gate;
  auto opened = gate.get_future().share();
  std::vector<int> ran;
  ASSERT_TRUE(worker.Post([opened] { opened.wait(); }));
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(worker.Post([&ran, i] { ran.push_back(i); }));
  std::thread stopper([&] { worker.Stop(); });
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  gate.set_value();
  stopper.join();
  EXPECT_EQ(ran, (std::vector<int>{0, 1, 2, 3, 4}));
  EXPECT_FALSE(worker.Post([] {}));
}

TEST(Worker, RequestsBeyondTheBoundAreRefusedItsOwnJobsAreNot) {
  Worker worker(/*max_queued=*/2);
  std::promise<void> gate;
  auto opened = gate.get_future().share();
  std::atomic<bool> started{false};
  ASSERT_TRUE(worker.Post([&, opened] {
    started = true;
    opened.wait();
  }));
  while (!started) std::this_thread::yield();
  EXPECT_TRUE(worker.PostRequest([] {}));
  EXPECT_TRUE(worker.PostRequest([] {}));
  EXPECT_FALSE(worker.PostRequest([] {})) << "a request beyond the bound is refused";
  // The reconciler's own work (a history append) is never refused while running.
  std::atomic<int> own{0};
  EXPECT_TRUE(worker.Post([&] { own++; }));
  gate.set_value();
  worker.Stop();
  EXPECT_EQ(own, 1);
}

// A responder that hands the response to a future.
net::Responder Capture(std::promise<net::Response>* out) {
  struct Sink : net::Responder::Sink {
    std::promise<net::Response>* out;
    void Deliver(net::Response r) override { out->set_value(std::move(r)); }
  };
  auto sink = std::make_shared<Sink>();
  sink->out = out;
  return net::Responder(sink);
}

TEST(LogRelay, RelaysTheAgentsAnswerAndStopCancelsWhatIsInFlight) {
  std::promise<void> release;
  auto released = release.get_future().share();
  std::vector<std::thread> answering;  // the agent's slow answers, joined at the end
  std::mutex answering_mu;
  net::Router router;
  router.HandleSync("GET", "/fast",
                    [](const net::Request&) { return net::TextResponse(200, "line 1\nline 2\n"); });
  router.Handle("GET", "/slow", [&, released](const net::Request&, net::Responder r) {
    std::lock_guard<std::mutex> lock(answering_mu);
    answering.emplace_back([released, r] {
      released.wait();
      r.Send(net::TextResponse(200, "late"));
    });
  });
  net::HttpServer agent({});
  ASSERT_TRUE(agent.Start(std::move(router)).ok());

  LogRelay relay({}, /*threads=*/1, /*max_queued=*/1);
  std::promise<net::Response> fast;
  relay.Fetch(agent.url() + "/fast", "", Capture(&fast));
  auto got = fast.get_future().get();
  EXPECT_EQ(got.status, 200);
  EXPECT_EQ(got.body, "line 1\nline 2\n");

  // One fetch in flight, one queued: a third is refused at once.
  std::promise<net::Response> slow, queued, refused;
  relay.Fetch(agent.url() + "/slow", "", Capture(&slow));
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  relay.Fetch(agent.url() + "/slow", "", Capture(&queued));
  relay.Fetch(agent.url() + "/slow", "", Capture(&refused));
  EXPECT_EQ(refused.get_future().get().status, 503);

  // Stop does not wait for the agent: the fetch in flight is cancelled, the queued one answered.
  const auto t0 = std::chrono::steady_clock::now();
  relay.Stop();
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(3));
  EXPECT_NE(slow.get_future().get().status, 200);
  EXPECT_EQ(queued.get_future().get().status, 503);
  release.set_value();
  agent.Stop();
  for (auto& t : answering) t.join();
}

}  // namespace
}  // namespace ballast::reconciler
