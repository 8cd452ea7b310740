#include "model/cluster.h"

#include <map>
#include <string>
#include <type_traits>
#include <utility>

namespace ballast::model {
namespace {

Json ResourcesToJson(const ResourceList& r) {
  Json j = Json::object();
  for (const auto& [k, q] : r) j[k] = q.ToString();
  return j;
}

Status ResourcesFromJson(const Json& j, const char* field, ResourceList* out) {
  if (j.is_null()) return Status::Ok();
  if (!j.is_object()) return InvalidArgument(std::string(field) + ": expected an object");
  for (const auto& [k, v] : j.items()) {
    std::string text = v.is_string() ? v.get<std::string>() : v.dump();
    auto q = Quantity::Parse(text);
    if (!q.ok()) return q.status().WithContext(std::string(field) + "." + k);
    (*out)[k] = *q;
  }
  return Status::Ok();
}

// An integer of type T: nlohmann converts a float or an out-of-range number with a C++ cast
// (undefined behaviour for a float beyond T, a silent wrap otherwise), so only JSON integers
// in range are taken; anything else is a type error naming the key.
template <typename T>
T CheckedInt(const Json& v, const std::string& key) {
  const bool fits = v.is_number_unsigned()  ? std::in_range<T>(v.get<uint64_t>())
                    : v.is_number_integer() ? std::in_range<T>(v.get<int64_t>())
                                            : false;
  if (!fits) {
    throw nlohmann::json::type_error::create(
        302, key + ": not an integer in range (" + v.dump().substr(0, 40) + ")", &v);
  }
  return static_cast<T>(v.get<int64_t>());
}

template <typename T>
T Get(const Json& j, const char* key, T fallback) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return fallback;
  if constexpr (std::is_integral_v<T> && !std::is_same_v<T, bool>) {
    return CheckedInt<T>(*it, key);
  } else if constexpr (std::is_same_v<T, std::map<std::string, int32_t>>) {
    if (!it->is_object()) return it->get<T>();  // the library's type error
    T out;
    for (const auto& [k, v] : it->items())
      out[k] = CheckedInt<int32_t>(v, std::string(key) + "." + k);
    return out;
  } else {
    return it->get<T>();
  }
}

}  // namespace

const char* PodPhaseName(PodPhase phase) {
  switch (phase) {
    case PodPhase::kPending:
      return "Pending";
    case PodPhase::kRunning:
      return "Running";
    case PodPhase::kSucceeded:
      return "Succeeded";
    case PodPhase::kFailed:
      return "Failed";
    case PodPhase::kUnknown:
      return "Unknown";
  }
  return "Unknown";
}

PodPhase ParsePodPhase(const std::string& name) {
  for (PodPhase p :
       {PodPhase::kPending, PodPhase::kRunning, PodPhase::kSucceeded, PodPhase::kFailed}) {
    if (name == PodPhaseName(p)) return p;
  }
  return PodPhase::kUnknown;
}

Json ToJson(const Node& n) {
  Json taints = Json::array();
  for (const auto& t : n.taints) {
    taints.push_back({{"key", t.key}, {"value", t.value}, {"effect", t.effect}});
  }
  return {{"name", n.name},
          {"address", n.address},
          {"labels", n.labels},
          {"taints", taints},
          {"capacity", ResourcesToJson(n.capacity)},
          {"allocatable", ResourcesToJson(n.allocatable)},
          {"maxPods", n.max_pods},
          {"ready", n.ready},
          {"unschedulable", n.unschedulable},
          {"runtimes", n.runtimes},
          {"limitsEnforced", n.limits_enforced},
          {"agentVersion", n.agent_version},
          {"lastHeartbeatMs", n.last_heartbeat_ms}};
}

Result<Node> NodeFromJson(const Json& j) {
  if (!j.is_object()) return InvalidArgument("node: expected a JSON object");
  try {
    Node n;
    n.name = Get<std::string>(j, "name", "");
    if (n.name.empty()) return InvalidArgument("node: name: Required value");
    n.address = Get<std::string>(j, "address", "");
    n.labels = Get<StringMap>(j, "labels", {});
    if (auto it = j.find("taints"); it != j.end() && it->is_array()) {
      for (const auto& t : *it) {
        n.taints.push_back({Get<std::string>(t, "key", ""), Get<std::string>(t, "value", ""),
                            Get<std::string>(t, "effect", "")});
      }
    }
    if (auto s = ResourcesFromJson(j.value("capacity", Json()), "capacity", &n.capacity); !s.ok()) {
      return s.WithContext("node " + n.name);
    }
    if (auto s = ResourcesFromJson(j.value("allocatable", Json()), "allocatable", &n.allocatable);
        !s.ok()) {
      return s.WithContext("node " + n.name);
    }
    n.max_pods = Get<int32_t>(j, "maxPods", 110);
    n.ready = Get<bool>(j, "ready", false);
    n.unschedulable = Get<bool>(j, "unschedulable", false);
    n.runtimes = Get<std::vector<std::string>>(j, "runtimes", {"process"});
    n.limits_enforced = Get<bool>(j, "limitsEnforced", false);
    n.agent_version = Get<std::string>(j, "agentVersion", "");
    n.last_heartbeat_ms = Get<int64_t>(j, "lastHeartbeatMs", 0);
    return n;
  } catch (const nlohmann::json::exception& e) {
    return InvalidArgument(std::string("node: ") + e.what());
  }
}

Json ToJson(const Pod& p) {
  Json containers = Json::array();
  for (const auto& c : p.containers) {
    containers.push_back({{"name", c.name},
                          {"ready", c.ready},
                          {"restarts", c.restarts},
                          {"state", c.state},
                          {"reason", c.reason},
                          {"message", c.message},
                          {"lastExitCode", c.last_exit_code},
                          {"lastReason", c.last_reason},
                          {"startedAtMs", c.started_at_ms}});
  }
  return {{"name", p.name},
          {"namespace", p.namespace_},
          {"deployment", p.deployment},
          {"revision", p.revision},
          {"node", p.node},
          {"phase", PodPhaseName(p.phase)},
          {"ready", p.ready},
          {"readySinceMs", p.ready_since_ms},
          {"restarts", p.restarts},
          {"terminating", p.terminating},
          {"address", p.address},
          {"hostPorts", p.host_ports},
          {"containers", containers},
          {"createdMs", p.created_ms}};
}

Result<Pod> PodFromJson(const Json& j) {
  if (!j.is_object()) return InvalidArgument("pod: expected a JSON object");
  try {
    Pod p;
    p.name = Get<std::string>(j, "name", "");
    if (p.name.empty()) return InvalidArgument("pod: name: Required value");
    p.namespace_ = Get<std::string>(j, "namespace", "default");
    p.deployment = Get<std::string>(j, "deployment", "");
    p.revision = Get<std::string>(j, "revision", "");
    p.node = Get<std::string>(j, "node", "");
    p.phase = ParsePodPhase(Get<std::string>(j, "phase", "Unknown"));
    p.ready = Get<bool>(j, "ready", false);
    p.ready_since_ms = Get<int64_t>(j, "readySinceMs", 0);
    p.restarts = Get<int32_t>(j, "restarts", 0);
    p.terminating = Get<bool>(j, "terminating", false);
    p.address = Get<std::string>(j, "address", "");
    p.host_ports = Get<std::map<std::string, int32_t>>(j, "hostPorts", {});
    p.created_ms = Get<int64_t>(j, "createdMs", 0);
    if (auto it = j.find("containers"); it != j.end() && it->is_array()) {
      for (const auto& c : *it) {
        ContainerStatus s;
        s.name = Get<std::string>(c, "name", "");
        s.ready = Get<bool>(c, "ready", false);
        s.restarts = Get<int32_t>(c, "restarts", 0);
        s.state = Get<std::string>(c, "state", "waiting");
        s.reason = Get<std::string>(c, "reason", "");
        s.message = Get<std::string>(c, "message", "");
        s.last_exit_code = Get<int32_t>(c, "lastExitCode", 0);
        s.last_reason = Get<std::string>(c, "lastReason", "");
        s.started_at_ms = Get<int64_t>(c, "startedAtMs", 0);
        p.containers.push_back(std::move(s));
      }
    }
    return p;
  } catch (const nlohmann::json::exception& e) {
    return InvalidArgument(std::string("pod: ") + e.what());
  }
}

}  // namespace ballast::model
