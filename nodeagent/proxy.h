#pragma once

// The service proxy (kube-proxy's job, in user space): for each Service port, listen on the
// Service's cluster IP at the Service port, and on the node's address at the Service port (and
// the nodePort when set), and forward each TCP connection to the next ready endpoint of that
// Service, round-robin, across all nodes. Each cluster IP listener serves its one Service.
// When several Services claim one port (or nodePort) on the node's address, that listener
// serves only the first of them by namespace/name, never a mix; the others are reached at their
// cluster IPs. A headless Service (no cluster IP) is served on the node's address only.
// Cluster IP listeners set SO_REUSEPORT, so agents sharing a machine share them. An endpoint that
// refuses is skipped for the next one. With no ready endpoint the port is not listened on, so a
// connection is refused at once. Endpoint changes apply to new connections only; established
// ones keep flowing, and DrainReport() says which endpoints no longer listed they still go to
// (the reconciler stops a pod only once no proxy carries anything to it).
//
// Bounded: at most ProxyOptions::max_connections are forwarded at once; one more is accepted and
// reset at once, never queued. When accept fails for want of file descriptors (EMFILE, ENFILE)
// or kernel memory (ENOBUFS, ENOMEM), the listeners are not polled for 100 ms instead of being
// retried in a loop; established connections keep flowing meanwhile.
//
// One epoll thread; Update() may be called from any thread.

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "agentapi/protocol.h"
#include "model/status.h"
#include "nodeagent/proxy_drain.h"

namespace ballast::nodeagent {

struct ProxyOptions {
  // Connections forwarded at once, over all listeners (0 is taken as 1). Each holds two file
  // descriptors and 128 KiB of buffers: 512 is 1024 descriptors and 64 MiB at most.
  size_t max_connections = 512;
};

// What a proxy has counted since it started.
struct ProxyCounters {
  uint64_t rejected_connections = 0;  // over max_connections: reset at once
  uint64_t accept_failures = 0;       // accept failed (EMFILE, ...): each paused the listeners
};

class ServiceProxy {
 public:
  explicit ServiceProxy(std::string address, ProxyOptions options = {});
  ~ServiceProxy();  // Stop()
  ServiceProxy(const ServiceProxy&) = delete;
  ServiceProxy& operator=(const ServiceProxy&) = delete;

  Status Start();
  void Stop();

  // Replaces the services to serve, those of desired state `version`. Thread-safe; applied by
  // the proxy thread right away (not at all when they equal the last ones).
  void Update(const std::vector<agentapi::DesiredService>& services, int64_t version = 0);

  // What the proxy has put in place, for the agent's heartbeat.
  struct DrainReport {
    int64_t services_version = 0;       // of the last Update applied
    std::vector<std::string> draining;  // endpoints no longer listed, connections still open
    uint64_t generation = 0;            // changes when the reconciler should hear at once
  };
  DrainReport drain_report() const;  // thread-safe

  // Addresses that could not be listened on, with why ("127.0.0.2:80: Address already in use").
  std::vector<std::string> Errors() const;
  // Ports listened on now on the node's address. Thread-safe.
  std::vector<int32_t> ListeningPorts() const;
  // Everything listened on now, node address and cluster IPs ("127.150.2.9:80"). Thread-safe.
  std::vector<std::string> ListeningAddresses() const;
  // Thread-safe.
  ProxyCounters counters() const;

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace ballast::nodeagent
