#pragma once

// A stand-in for the reconciler's side of the agent protocol, built on the real net/ server and
// reconciler::DesiredStateStore: records registrations and heartbeats, serves desired states by
// long-poll.

#include <condition_variable>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "agentapi/protocol.h"
#include "net/server.h"
#include "reconciler/desired_state_store.h"

namespace ballast::nodeagent::testing {

class FakeControlPlane {
 public:
  explicit FakeControlPlane(std::string token = "", uint16_t port = 0) : token_(std::move(token)) {
    net::ServerOptions o;
    o.port = port;
    server_ = std::make_unique<net::HttpServer>(o);
    net::Router router;
    router.HandleSync("POST", agentapi::kRegisterPath, [this](const net::Request& r) {
      if (!net::CheckBearer(r, token_)) return net::UnauthorizedResponse();
      auto j = net::ParseJsonBody(r);
      if (!j.ok() || !j->contains("node")) return net::ErrorResponse(400, "bad register body");
      auto node = model::NodeFromJson((*j)["node"]);
      if (!node.ok()) return net::StatusResponse(node.status());
      std::lock_guard<std::mutex> lock(mu_);
      nodes_[node->name] = *node;
      registrations_++;
      cv_.notify_all();
      return net::JsonResponse(200, model::Json{{"heartbeatSeconds", 1}});
    });
    router.HandleSync("POST", agentapi::kHeartbeatPath, [this](const net::Request& r) {
      if (!net::CheckBearer(r, token_)) return net::UnauthorizedResponse();
      auto j = net::ParseJsonBody(r);
      if (!j.ok()) return net::StatusResponse(j.status());
      auto hb = agentapi::HeartbeatFromJson(*j);
      if (!hb.ok()) return net::StatusResponse(hb.status());
      std::lock_guard<std::mutex> lock(mu_);
      if (nodes_.count(hb->node.name) == 0) return net::ErrorResponse(404, "unknown node");
      pods_[hb->node.name] = hb->pods;
      heartbeats_++;
      cv_.notify_all();
      return net::JsonResponse(200, model::Json::object());
    });
    router.Handle("GET", agentapi::kDesiredPath, [this](const net::Request& r, net::Responder res) {
      if (!net::CheckBearer(r, token_)) {
        res.Send(net::UnauthorizedResponse());
        return;
      }
      store_.Serve(r, std::move(res));
    });
    Status s = server_->Start(std::move(router));
    if (!s.ok()) start_error_ = s.ToString();
  }

  // The server's threads run the handlers above, which use the members declared after it:
  // stopped (and joined) before any of them is destroyed.
  ~FakeControlPlane() { server_->Stop(); }

  std::string url() const { return server_->url(); }
  uint16_t port() const { return server_->port(); }
  const std::string& start_error() const { return start_error_; }
  void Stop() { server_->Stop(); }
  reconciler::DesiredStateStore& store() { return store_; }

  std::vector<model::Pod> Pods(const std::string& node) {
    std::lock_guard<std::mutex> lock(mu_);
    return pods_[node];
  }
  bool Registered(const std::string& node) {
    std::lock_guard<std::mutex> lock(mu_);
    return nodes_.count(node) > 0;
  }
  model::Node Node(const std::string& node) {
    std::lock_guard<std::mutex> lock(mu_);
    return nodes_[node];
  }
  int registrations() {
    std::lock_guard<std::mutex> lock(mu_);
    return registrations_;
  }
  int heartbeats() {
    std::lock_guard<std::mutex> lock(mu_);
    return heartbeats_;
  }

 private:
  std::string token_;
  reconciler::DesiredStateStore store_;
  std::unique_ptr<net::HttpServer> server_;
  std::string start_error_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::map<std::string, model::Node> nodes_;
  std::map<std::string, std::vector<model::Pod>> pods_;
  int registrations_ = 0;
  int heartbeats_ = 0;
};

}  // namespace ballast::nodeagent::testing
