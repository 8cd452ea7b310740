#pragma once

// Cluster IPs: the address of its own that each Service is reached at, as Kubernetes gives
// every Service a ClusterIP. ballast takes them from the loopback range, which every Linux
// machine routes to `lo` without any configuration (all of 127.0.0.0/8), so the proxy of every
// agent can listen on a Service's cluster IP and port and nothing else needs setting up.
//
// Pure: no I/O, no threads, no clock. The same Services give the same addresses, whatever their
// order, on every reconciler (a restarted or second reconciler computes what the first did).
//
//   spec.clusterIP "None"        headless: no cluster IP ("")
//   spec.clusterIP 127.a.b.c     honoured as written (the first Service by namespace/name
//                                keeps it when several ask for the same address)
//   anything else or unset       allocated in 127.128.0.0/9 from a hash (FNV-1a, 64 bits) of
//                                "namespace/name"; addresses ending in .0 or .255 are skipped.
//                                Collisions go in namespace/name order: the first keeps its
//                                address, the next probes the following addresses until one
//                                is free. Another value (10.96.0.10 from a cluster's manifests)
//                                is kept in the manifest (Service::spec.extra) but not used.

#include <map>
#include <string>
#include <vector>

#include "model/object.h"

namespace ballast::scheduler {

inline constexpr char kClusterIPNone[] = "None";

// "namespace/name" -> cluster IP ("" for a headless Service). Every Service of `services` has
// an entry. REQUIRES: no two Services with the same namespace and name.
std::map<std::string, std::string> AllocateClusterIPs(
    const std::vector<const model::Service*>& services);

// The address a Service's hash points at before any collision: 127.128.0.0/9, never .0/.255.
std::string HashedClusterIP(const std::string& namespace_, const std::string& name);

// True for a dotted-quad IPv4 address in 127.0.0.0/8 ("127.0.0.1", not "127.1").
bool IsLoopbackIPv4(const std::string& address);

}  // namespace ballast::scheduler
