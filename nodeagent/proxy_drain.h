#pragma once

// Which endpoints a service proxy still carries connections to after they left every Service:
// what the reconciler waits for before it stops a pod (agentapi/protocol.h, reconciler/drain.cc).
// Pure bookkeeping of the proxy thread: no I/O, no locking.

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <vector>

namespace ballast::nodeagent {

// An IPv4 endpoint: address in network byte order, port in host order.
struct EndpointKey {
  uint32_t addr = 0;
  uint16_t port = 0;
  std::string ToString() const;  // "127.0.0.2:40123"
  friend auto operator<=>(const EndpointKey&, const EndpointKey&) = default;
};

class DrainTracker {
 public:
  // A connection to `ep` was opened / closed.
  void Opened(EndpointKey ep);
  void Closed(EndpointKey ep);
  // After an update: the endpoints the Services list now.
  void SetListed(std::set<EndpointKey> listed);
  // True once when the report changed since the last call: an endpoint left the lists (the
  // reconciler waits to hear that the update is in place), or the draining set changed.
  bool TakeChanged();
  // Whether a Service lists `ep` now.
  bool Listed(EndpointKey ep) const { return listed_.count(ep) > 0; }
  // Endpoints not listed with connections still open to them, sorted.
  std::vector<std::string> Draining() const;

 private:
  std::map<EndpointKey, int> open_;  // open connections by endpoint (> 0)
  std::set<EndpointKey> listed_;
  std::set<EndpointKey> draining_;
  bool changed_ = false;
};

}  // namespace ballast::nodeagent
