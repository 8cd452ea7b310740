#include "nodeagent/proxy_drain.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <algorithm>
#include <utility>

namespace ballast::nodeagent {

std::string EndpointKey::ToString() const {
  char text[INET_ADDRSTRLEN] = {};
  in_addr a{};
  a.s_addr = addr;
  ::inet_ntop(AF_INET, &a, text, sizeof text);
  return std::string(text).append(":").append(std::to_string(port));
}

void DrainTracker::Opened(EndpointKey ep) {
  ++open_[ep];
  // A connection may go to an endpoint chosen before the update that dropped it.
  if (!listed_.count(ep) && draining_.insert(ep).second) changed_ = true;
}

void DrainTracker::Closed(EndpointKey ep) {
  auto it = open_.find(ep);
  if (it == open_.end()) return;
  if (--it->second > 0) return;
  open_.erase(it);
  if (draining_.erase(ep)) changed_ = true;
}

void DrainTracker::SetListed(std::set<EndpointKey> listed) {
  for (const auto& ep : listed_) {
    if (!listed.count(ep)) {
      changed_ = true;
      break;
    }
  }
  listed_ = std::move(listed);
  std::set<EndpointKey> draining;
  for (const auto& [ep, n] : open_) {
    if (!listed_.count(ep)) draining.insert(ep);
  }
  if (draining != draining_) changed_ = true;
  draining_ = std::move(draining);
}

bool DrainTracker::TakeChanged() { return std::exchange(changed_, false); }

std::vector<std::string> DrainTracker::Draining() const {
  std::vector<std::string> out;
  for (const auto& ep : draining_) out.push_back(ep.ToString());
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace ballast::nodeagent
