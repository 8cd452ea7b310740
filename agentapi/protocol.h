#pragma once

// The agent protocol: how `ballast agent` and the reconciler talk. The wire types and their JSON
// codecs, shared by both sides; neither side's machinery lives here. HTTP/1.1 + JSON under
// /api/v1/agent/, https when the server URL says so. All three calls are made by the agent.
//
// Identity (reconciler/identity.h): the agent registers with its join token (or a token of the
// server's token file) and is answered with a credential of its own, bound to its node name,
// which it presents ("Authorization: Bearer C") on every later call and keeps in its work
// directory. With it a node may report only itself and read only its own desired state (403
// otherwise). When a call is answered 401 (the reconciler restarted and forgot the credential)
// the agent registers again with its join token. A name whose node is alive and holds a
// credential cannot be registered by the join token (409): only by that node's credential.
//
//   POST /api/v1/agent/register      body {"protocolVersion": 1, "node": Node}
//        -> 200 {"protocolVersion": 1, "heartbeatSeconds": 10, "credential": C,
//                "logsToken": L}
//        The agent's node: name, address, labels, taints, capacity/allocatable (detected or from
//        flags), runtimes, limitsEnforced, agentVersion, ready=true. Sent at start and again
//        whenever a call is answered 404 (the server forgot the node) or 401.
//
//   POST /api/v1/agent/heartbeat     body {"protocolVersion": 1, "node": Node, "pods": [Pod]}
//        -> 200 {} | 404 (unknown node: register again)
//        Every heartbeatSeconds, and at once when a pod changes phase or readiness, the node and
//        the status of every pod the agent runs (model::Pod: phase, ready, restarts, address,
//        hostPorts, containers with state/reason/lastExitCode). Pods the agent runs but was not
//        told to run (adopted after a reconciler restart) are reported too, so the reconciler
//        can adopt them instead of starting new ones.
//        Also "servicesVersion": V, the desired state whose Services the node's proxy serves
//        now, and "drainingEndpoints": ["ip:port", ...], endpoints no longer listed that the
//        proxy still carries connections to; sent at once when either changes after an
//        endpoint was removed. They let the reconciler stop a pod only once no proxy sends it
//        anything (reconciler/drain.cc): a rolling update drops no request.
//
//   GET  /api/v1/agent/desired?node=NAME&version=V&wait=SECONDS
//        -> 200 DesiredState
//        Long-poll. The server answers at once when the node's desired state has a version other
//        than V, else holds the request until it changes or `wait` seconds pass (then answers
//        with the unchanged state). An answer is the node's complete desired set: pods not in it
//        are stopped. The server answers only once it knows what the node should run (after the
//        node's pods were reported, so a restarted reconciler adopts them); until then it holds
//        the request (or answers 503, and the agent retries).
//
// DesiredState JSON:
//   {"protocolVersion": 1, "node": "n1", "version": 7,
//    "pods": [{"name": "web-7c9f8d6b5d-x2x4q", "namespace": "default", "deployment": "web",
//              "revision": "7c9f8d6b5d", "template": <model::PodTemplateToJson>,
//              "env": {"EXTRA": "value"}, "draining": false,
//   (a DesiredPod alone, as an agent records it, also carries its own
//    "config": [{"kind": "Secret", "name": "db", "data": {"password": "<base64>"}}]; a
//    ConfigMap's may have "binaryData" too),
//    "services": [{"name": "web", "namespace": "default", "clusterIP": "127.180.3.21",
//                  "ports": [{"name": "http", "protocol": "TCP", "port": 8080,
//                             "nodePort": 30080, "endpoints": ["127.0.0.2:40123", ...]}]}],
//    "config": [{"namespace": "default", "kind": "Secret", "name": "db",
//                "data": {"password": "<base64>"}}]}
// `config` holds, once each, the ConfigMaps and Secrets the node's pods read (PodConfigSource);
// the decoder gives each pod those of its namespace its template references.
// `endpoints` are the ready backends of that Service port on all nodes (pod host address and
// the host port mapped to the targetPort). `clusterIP` is the Service's own address ("" or
// absent: headless).
//
// Pod logs, the one call the reconciler makes to an agent: GET AGENT/api/v1/logs/NS/POD/CONTAINER
// at the address the node registered (label ballast.dev/agent-api, host = the node's address),
// authorised by the `logsToken` the registration answered: random, good for that node's logs
// only. The reconciler never sends its own credentials to a node, so a node that registers
// learns nothing it could use against the API or another node. (A reconciler older than the
// logs token presents net::DeriveToken(token, kLogsTokenPurpose); an agent that was answered no
// logsToken accepts that.)
//
// Versions: every message names the protocol version its sender speaks ("protocolVersion";
// absent means 1, the protocol before it was versioned). A receiver refuses a message of a
// version outside [kMinProtocolVersion, kProtocolVersion] with an error that names both, so a
// newer reconciler and an older agent (or the reverse) can tell why they do not agree.

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "model/cluster.h"
#include "model/codec.h"
#include "model/object.h"
#include "model/status.h"

namespace ballast::agentapi {

inline constexpr int kProtocolVersion = 1;
inline constexpr int kMinProtocolVersion = 1;

inline constexpr char kRegisterPath[] = "/api/v1/agent/register";
inline constexpr char kHeartbeatPath[] = "/api/v1/agent/heartbeat";
inline constexpr char kDesiredPath[] = "/api/v1/agent/desired";
inline constexpr char kLogsTokenPurpose[] = "ballast agent logs v1";

struct RegisterRequest {
  int protocol_version = kProtocolVersion;
  model::Node node;
};

struct RegisterResponse {
  int protocol_version = kProtocolVersion;
  int heartbeat_seconds = 10;
  std::string credential;  // the node's own bearer token from now on; "" from older servers
  std::string logs_token;  // what the reconciler presents to this agent's log server
};

// A ConfigMap or Secret a pod reads (model/config_refs.h), as applied: the reconciler sends a
// pod only those its template references, from its namespace, so a node learns no other
// pod's secrets. Values are bytes (base64 on the wire).
struct PodConfigSource {
  std::string kind;  // "ConfigMap" or "Secret"
  std::string name;
  std::map<std::string, std::string> data;
  // A ConfigMap's binaryData: files in its volumes, never variables (as kubelet reads them).
  std::map<std::string, std::string> binary_data;
  friend bool operator==(const PodConfigSource&, const PodConfigSource&) = default;
};

// Bounds a DesiredPod's config list (model validation holds a template to as many:
// model::kMaxReferencedConfig).
inline constexpr size_t kMaxPodConfigSources = 256;
// Bounds the desired state's list (each object once per node).
inline constexpr size_t kMaxStateConfigSources = 16384;

struct DesiredPod {
  std::string name;
  std::string namespace_ = "default";
  std::string deployment;
  std::string revision;
  model::PodTemplateSpec template_;
  model::StringMap env;  // extra environment from the reconciler
  // What the template references that exists, sorted by kind and name; a reference missing
  // here keeps the container waiting (CreateContainerConfigError) unless it is optional.
  std::vector<PodConfigSource> config;
  // Out of every Service and about to be stopped (reconciler/drain.cc): kept running, reported
  // as terminating, so that a restarted reconciler does not take it back as a replica.
  bool draining = false;
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
  int protocol_version = kProtocolVersion;
  std::string node;
  int64_t version = 0;
  std::vector<DesiredPod> pods;
  std::vector<DesiredService> services;
  friend bool operator==(const DesiredState&, const DesiredState&) = default;
};

// Bounds on a heartbeat's drain report: more entries than this is a malformed message.
inline constexpr size_t kMaxDrainingEndpoints = 4096;

struct Heartbeat {
  int protocol_version = kProtocolVersion;
  model::Node node;
  std::vector<model::Pod> pods;
  // The version of the last desired state whose Services the agent's proxy has put in place
  // (0: an agent older than draining, which reports none).
  int64_t services_version = 0;
  // "ip:port" of endpoints no longer in any Service that the proxy still has connections open
  // to (bounded by kMaxDrainingEndpoints).
  std::vector<std::string> draining_endpoints;
};

// Encoders: every field, "protocolVersion" included.
model::Json ToJson(const RegisterRequest& request);
model::Json ToJson(const RegisterResponse& response);
model::Json ToJson(const DesiredPod& pod);
model::Json ToJson(const DesiredService& service);
model::Json ToJson(const DesiredState& state);
model::Json ToJson(const Heartbeat& heartbeat);

// Decoders: InvalidArgument naming the field ("heartbeat.pods: not an array",
// "desired.pods[2].template.spec...: ...") for a malformed message, and FailedPrecondition
// naming both versions for one of a protocol version this side does not speak. Never throw.
Result<RegisterRequest> RegisterRequestFromJson(const model::Json& j);
Result<RegisterResponse> RegisterResponseFromJson(const model::Json& j);
Result<DesiredPod> DesiredPodFromJson(const model::Json& j);
Result<DesiredService> DesiredServiceFromJson(const model::Json& j);
Result<DesiredState> DesiredStateFromJson(const model::Json& j);
Result<Heartbeat> HeartbeatFromJson(const model::Json& j);

}  // namespace ballast::agentapi
