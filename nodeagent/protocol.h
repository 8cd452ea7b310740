#pragma once

// The agent protocol: how `ballast agent` and the reconciler talk. HTTP/1.1 + JSON under
// /api/v1/agent/, bearer token ("Authorization: Bearer T") on every call when the server has one
// configured, https when the server URL says so. All three calls are made by the agent.
//
//   POST /api/v1/agent/register      body {"node": Node}
//        -> 200 {"heartbeatSeconds": 10}
//        The agent's node: name, address, labels, taints, capacity/allocatable (detected or from
//        flags), runtimes, limitsEnforced, agentVersion, ready=true. Sent at start and again
//        whenever a heartbeat is answered 404 (the server forgot the node).
//
//   POST /api/v1/agent/heartbeat     body {"node": Node, "pods": [Pod, ...]}
//        -> 200 {} | 404 (unknown node: register again)
//        Every heartbeatSeconds, and at once when a pod changes phase or readiness, the node and
//        the status of every pod the agent runs (model::Pod: phase, ready, restarts, address,
//        hostPorts, containers with state/reason/lastExitCode). Pods the agent runs but was not
//        told to run (adopted after a reconciler restart) are reported too, so the reconciler
//        can adopt them instead of starting new ones.
//
//   GET  /api/v1/agent/desired?node=NAME&version=V&wait=SECONDS
//        -> 200 DesiredState
//        Long-poll. The server answers at once when the node's desired state has a version other
//        than V, else holds the request until it changes or `wait` seconds pass (then answers
//        with the unchanged state). An answer is the node's complete desired set: pods not in it
//        are stopped. The server must therefore answer only once it knows what the node should
//        run (after the node's pods were reported, so a restarted reconciler adopts them);
//        until then it holds the request (or answers 503, and the agent retries).
//
// DesiredState JSON:
//   {"node": "n1", "version": 7,
//    "pods": [{"name": "web-7c9f8d6b5d-x2x4q", "namespace": "default", "deployment": "web",
//              "revision": "7c9f8d6b5d", "template": <model::PodTemplateToJson>,
//              "env": {"EXTRA": "value"}}],
//    "services": [{"name": "web", "namespace": "default", "clusterIP": "127.180.3.21",
//                  "ports": [{"name": "http", "protocol": "TCP", "port": 8080,
//                             "nodePort": 30080, "endpoints": ["127.0.0.2:40123", ...]}]}]}
// `endpoints` are the ready backends of that Service port on all nodes (pod host address and
// the host port mapped to the targetPort). `clusterIP` is the Service's own address ("" or
// absent: headless). The agent derives each pod's Service environment (<NAME>_SERVICE_HOST = the
// cluster IP, or its own address for a headless Service, <NAME>_SERVICE_PORT,
// <NAME>_SERVICE_PORT_<PORT>) from `services` of the pod's namespace, as Kubernetes does at pod
// start, plus the pod's `env`.

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "model/cluster.h"
#include "model/codec.h"
#include "model/object.h"
#include "model/status.h"
#include "net/router.h"

namespace ballast::nodeagent {

inline constexpr char kRegisterPath[] = "/api/v1/agent/register";
inline constexpr char kHeartbeatPath[] = "/api/v1/agent/heartbeat";
inline constexpr char kDesiredPath[] = "/api/v1/agent/desired";

struct DesiredPod {
  std::string name;
  std::string namespace_ = "default";
  std::string deployment;
  std::string revision;
  model::PodTemplateSpec template_;
  model::StringMap env;  // extra environment from the reconciler
  friend bool operator==(const DesiredPod&, const DesiredPod&) = default;
};

struct DesiredServicePort {
  std::string name;
  std::string protocol = "TCP";
  int32_t port = 0;
  int32_t node_port = 0;               // 0: none
  std::vector<std::string> endpoints;  // "ip:port" of ready backends, on all nodes
  friend bool operator==(const DesiredServicePort&, const DesiredServicePort&) = default;
};

struct DesiredService {
  std::string name;
  std::string namespace_ = "default";
  // The Service's own address (127.128.0.0/9 unless the manifest pins a 127.x one; see
  // scheduler/service_ips.h), listened on at each port by every agent. "": headless, none.
  std::string cluster_ip;
  std::vector<DesiredServicePort> ports;
  friend bool operator==(const DesiredService&, const DesiredService&) = default;
};

struct DesiredState {
  std::string node;
  int64_t version = 0;
  std::vector<DesiredPod> pods;
  std::vector<DesiredService> services;
  friend bool operator==(const DesiredState&, const DesiredState&) = default;
};

struct Heartbeat {
  model::Node node;
  std::vector<model::Pod> pods;
};

model::Json ToJson(const DesiredPod& pod);
model::Json ToJson(const DesiredService& service);
model::Json ToJson(const DesiredState& state);
model::Json ToJson(const Heartbeat& heartbeat);
Result<DesiredPod> DesiredPodFromJson(const model::Json& j);
Result<DesiredService> DesiredServiceFromJson(const model::Json& j);
Result<DesiredState> DesiredStateFromJson(const model::Json& j);
Result<Heartbeat> HeartbeatFromJson(const model::Json& j);

// "my-svc" -> "MY_SVC", as Kubernetes names Service environment variables.
std::string EnvVarName(const std::string& name);

// The Kubernetes Service environment for a pod in `namespace_` on a node whose proxy listens on
// `node_address`: <NAME>_SERVICE_HOST, <NAME>_SERVICE_PORT (first port) and
// <NAME>_SERVICE_PORT_<PORTNAME> for named ports. The host is the Service's cluster IP when it
// has one and `use_cluster_ips` holds, else `node_address` (a container on a bridge network
// cannot reach the host's loopback addresses, so image pods pass false).
model::StringMap ServiceEnvironment(const std::vector<DesiredService>& services,
                                    const std::string& namespace_, const std::string& node_address,
                                    bool use_cluster_ips = true);

// Server side of GET /desired: holds each node's DesiredState and the requests waiting for it.
// Thread-safe. Serve() is a net::Handler for kDesiredPath (the caller checks the token first).
// A node with no state set yet gets its requests held (up to `wait`), then 503.
class DesiredStateStore {
 public:
  explicit DesiredStateStore(int max_wait_seconds = 60);
  ~DesiredStateStore();  // answers every waiting request (503) and stops the timer thread

  // Replaces the node's state; its version is set to the previous version + 1 (starting at 1)
  // unless `state.version` is larger. Wakes the node's waiting requests. Returns the version.
  int64_t Set(const std::string& node, DesiredState state);
  // The current state, if any.
  std::optional<DesiredState> Get(const std::string& node) const;

  void Serve(const net::Request& request, net::Responder responder);

 private:
  struct Waiter {
    std::string node;
    int64_t version;
    std::chrono::steady_clock::time_point deadline;
    net::Responder responder;
  };
  void ExpireLoop();

  const int max_wait_seconds_;
  mutable std::mutex mu_;  // guards the fields below
  std::condition_variable cv_;
  bool stopping_ = false;
  std::map<std::string, DesiredState> states_;
  std::vector<Waiter> waiters_;
  std::thread expirer_;
};

}  // namespace ballast::nodeagent
