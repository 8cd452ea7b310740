#pragma once

// The Kubernetes Service environment a pod starts with, derived from the Services the
// reconciler sends (agentapi::DesiredState::services), as the kubelet derives it at pod start.

#include <string>
#include <vector>

#include "agentapi/protocol.h"
#include "model/object.h"

namespace ballast::nodeagent {

// "my-svc" -> "MY_SVC", as Kubernetes names Service environment variables.
std::string EnvVarName(const std::string& name);

// The Service environment for a pod in `namespace_` on a node whose proxy listens on
// `node_address`: <NAME>_SERVICE_HOST, <NAME>_SERVICE_PORT (first port) and
// <NAME>_SERVICE_PORT_<PORTNAME> for named ports. The host is the Service's cluster IP when it
// has one and `use_cluster_ips` holds, else `node_address` (a container on a bridge network
// cannot reach the host's loopback addresses, so image pods pass false).
model::StringMap ServiceEnvironment(const std::vector<agentapi::DesiredService>& services,
                                    const std::string& namespace_, const std::string& node_address,
                                    bool use_cluster_ips = true);

}  // namespace ballast::nodeagent
