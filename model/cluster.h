#pragma once

// Live-state value types: what node agents report (nodes and pods), shared by the diff, the
// scheduler, the agent and the reconciler. Times are plain values (milliseconds since the Unix
// epoch) so the pure modules never read a clock.

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "model/object.h"

namespace ballast::model {

struct Taint {
  std::string key;
  std::string value;
  std::string effect;  // NoSchedule, PreferNoSchedule, NoExecute
  friend bool operator==(const Taint&, const Taint&) = default;
};

struct Node {
  std::string name;
  std::string address;  // IP the agent's pods and service proxies listen on
  StringMap labels;     // includes kubernetes.io/hostname
  std::vector<Taint> taints;
  ResourceList capacity;     // cpu, memory
  ResourceList allocatable;  // what pods may request in total
  int32_t max_pods = 110;
  bool ready = false;
  bool unschedulable = false;                       // cordoned
  std::vector<std::string> runtimes = {"process"};  // "process", "docker"
  bool limits_enforced = false;
  std::string agent_version;
  int64_t last_heartbeat_ms = 0;
  friend bool operator==(const Node&, const Node&) = default;
};

enum class PodPhase { kPending, kRunning, kSucceeded, kFailed, kUnknown };
const char* PodPhaseName(PodPhase phase);         // "Pending", "Running", ...
PodPhase ParsePodPhase(const std::string& name);  // kUnknown for anything else

struct ContainerStatus {
  std::string name;
  bool ready = false;
  int32_t restarts = 0;
  std::string state = "waiting";  // waiting, running, terminated
  std::string reason;             // ContainerCreating, CrashLoopBackOff, OOMKilled, ...
  std::string message;
  int32_t last_exit_code = 0;
  std::string last_reason;
  int64_t started_at_ms = 0;
  friend bool operator==(const ContainerStatus&, const ContainerStatus&) = default;
};

// A pod as it runs (or should run) on a node. Pods are named
// "<deployment>-<revision>-<5 chars>" as Kubernetes names ReplicaSet pods.
struct Pod {
  std::string name;
  std::string namespace_ = "default";
  std::string deployment;  // owning Deployment's name
  std::string revision;    // pod template hash
  std::string node;
  PodPhase phase = PodPhase::kPending;
  bool ready = false;
  int64_t ready_since_ms = 0;  // when it last became ready; 0 when not ready
  int32_t restarts = 0;
  bool terminating = false;
  std::string address;                        // host:port of the first declared port, "" when none
  std::map<std::string, int32_t> host_ports;  // container port name (or number) -> host port
  std::vector<ContainerStatus> containers;
  int64_t created_ms = 0;
  friend bool operator==(const Pod&, const Pod&) = default;
};

// Everything the agents report, as one value.
struct LiveState {
  std::map<std::string, Node> nodes;  // by name
  std::vector<Pod> pods;
};

Json ToJson(const Node& node);
Json ToJson(const Pod& pod);
Result<Node> NodeFromJson(const Json& j);
Result<Pod> PodFromJson(const Json& j);

}  // namespace ballast::model
