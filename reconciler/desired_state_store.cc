#include "reconciler/desired_state_store.h"

#include <algorithm>
#include <limits>

namespace ballast::reconciler {

using model::Json;

DesiredStateStore::DesiredStateStore(int max_wait_seconds)
    : max_wait_seconds_(max_wait_seconds), expirer_([this] { ExpireLoop(); }) {}

DesiredStateStore::~DesiredStateStore() {
  std::vector<Waiter> left;
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
    left.swap(waiters_);
  }
  cv_.notify_all();
  expirer_.join();
  for (auto& w : left) w.responder.Send(net::ErrorResponse(503, "server stopping"));
}

int64_t DesiredStateStore::Set(const std::string& node, agentapi::DesiredState state) {
  std::vector<Waiter> wake;
  int64_t version;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = states_.find(node);
    int64_t next = it == states_.end() ? 1 : it->second.version + 1;
    state.version = std::max(next, state.version);
    state.node = node;
    version = state.version;
    states_[node] = std::move(state);
    auto keep = std::stable_partition(waiters_.begin(), waiters_.end(),
                                      [&](const Waiter& w) { return w.node != node; });
    wake.assign(std::make_move_iterator(keep), std::make_move_iterator(waiters_.end()));
    waiters_.erase(keep, waiters_.end());
    Json body = agentapi::ToJson(states_[node]);
    for (auto& w : wake) w.responder.Send(net::JsonResponse(200, body));
  }
  return version;
}

std::optional<agentapi::DesiredState> DesiredStateStore::Get(const std::string& node) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = states_.find(node);
  if (it == states_.end()) return std::nullopt;
  return it->second;
}

void DesiredStateStore::Serve(const net::Request& request, net::Responder responder) {
  std::string node = request.Query("node");
  if (node.empty()) {
    responder.Send(net::ErrorResponse(400, "query parameter node is required"));
    return;
  }
  auto version_or = request.QueryInt("version", -1, -1, std::numeric_limits<int64_t>::max());
  auto wait_or = request.QueryInt("wait", 0, 0, 3600);
  if (!version_or.ok() || !wait_or.ok()) {
    responder.Send(net::StatusResponse(!version_or.ok() ? version_or.status() : wait_or.status()));
    return;
  }
  const int64_t version = *version_or;
  const int wait = static_cast<int>(std::min<int64_t>(*wait_or, max_wait_seconds_));
  std::lock_guard<std::mutex> lock(mu_);
  auto it = states_.find(node);
  if (it != states_.end() && (it->second.version != version || wait == 0)) {
    responder.Send(net::JsonResponse(200, agentapi::ToJson(it->second)));
    return;
  }
  if (wait == 0 || stopping_) {
    responder.Send(net::ErrorResponse(503, "no desired state for node " + node + " yet"));
    return;
  }
  waiters_.push_back(Waiter{node, version,
                            std::chrono::steady_clock::now() + std::chrono::seconds(wait),
                            std::move(responder)});
  cv_.notify_all();
}

void DesiredStateStore::ExpireLoop() {
  std::unique_lock<std::mutex> lock(mu_);
  while (!stopping_) {
    auto now = std::chrono::steady_clock::now();
    auto next = now + std::chrono::seconds(1);
    for (auto it = waiters_.begin(); it != waiters_.end();) {
      if (it->deadline <= now) {
        auto st = states_.find(it->node);
        if (st != states_.end()) {
          it->responder.Send(net::JsonResponse(200, agentapi::ToJson(st->second)));
        } else {
          it->responder.Send(
              net::ErrorResponse(503, "no desired state for node " + it->node + " yet"));
        }
        it = waiters_.erase(it);
      } else {
        next = std::min(next, it->deadline);
        ++it;
      }
    }
    cv_.wait_until(lock, next);
  }
}

}  // namespace ballast::reconciler
