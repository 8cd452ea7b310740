#include "nodeagent/container_launch.h"

#include <filesystem>
#include <map>
#include <vector>

#include "nodeagent/expand.h"
#include "nodeagent/service_env.h"

namespace ballast::nodeagent {
namespace {

// "a/../b" and absolute paths are kept inside the pod's work directory.
std::string JoinInside(const std::string& base, const std::string& rel) {
  std::filesystem::path out(base);
  for (const auto& part : std::filesystem::path(rel)) {
    if (part == "/" || part == "." || part == ".." || part.empty()) continue;
    out /= part;
  }
  return out.string();
}

// Kubernetes' imagePullPolicy default: Always for ":latest" or no tag, else IfNotPresent.
std::string ImagePullPolicy(const model::Container& spec, const std::string& override_policy) {
  if (!override_policy.empty()) return override_policy;
  if (spec.extra.is_object() && spec.extra.contains("imagePullPolicy") &&
      spec.extra["imagePullPolicy"].is_string()) {
    return spec.extra["imagePullPolicy"].get<std::string>();
  }
  const std::string& image = spec.image;
  if (image.find('@') != std::string::npos) return "IfNotPresent";
  auto slash = image.rfind('/');
  auto colon = image.rfind(':');
  bool tagged = colon != std::string::npos && (slash == std::string::npos || colon > slash);
  if (!tagged || image.substr(colon + 1) == "latest") return "Always";
  return "IfNotPresent";
}

// An environment in the order its names were first set.
class OrderedEnv {
 public:
  void Set(const std::string& name, const std::string& value) {
    if (values_.find(name) == values_.end()) order_.push_back(name);
    values_[name] = value;
  }
  const std::map<std::string, std::string>& values() const { return values_; }
  std::vector<std::string> Entries() const {
    std::vector<std::string> out;
    for (const auto& name : order_) out.push_back(name + "=" + values_.at(name));
    return out;
  }

 private:
  std::map<std::string, std::string> values_;
  std::vector<std::string> order_;
};

// The container's environment, in Kubernetes' order of precedence: ours, then Services, then
// the container's own env (each value may reference the ones before it). Inside an image the
// image's PATH and HOME stay, and ports are the container's own (published on the host ports).
OrderedEnv ContainerEnv(const PodState& pod, const ContainerState& c, const LaunchNode& node) {
  const bool in_image = pod.runtime != "process";
  OrderedEnv env;
  if (!in_image) {
    env.Set("PATH", node.agent_path);
    env.Set("HOME", pod.dir + "/work");
    // Marks every process of the pod (children inherit it), so a restarted agent that lost the
    // pod's record still finds and stops them.
    env.Set("BALLAST_POD_DIR", node.pods_root + "/" + pod.id);
  }
  env.Set("HOSTNAME", pod.desired.name);
  env.Set("HOST", in_image ? "0.0.0.0" : node.node_address);
  auto port_value = [&](int32_t container_port, int32_t host_port) {
    return std::to_string(in_image ? container_port : host_port);
  };
  std::string first_port;
  for (const auto& p : c.spec.ports) {
    auto it = pod.ports_by_number.find(p.container_port);
    if (it != pod.ports_by_number.end() && first_port.empty()) {
      first_port = port_value(it->first, it->second);
    }
  }
  if (first_port.empty() && !pod.ports_by_number.empty()) {
    first_port =
        port_value(pod.ports_by_number.begin()->first, pod.ports_by_number.begin()->second);
  }
  if (!first_port.empty()) env.Set("PORT", first_port);
  for (const auto& other : pod.desired.template_.spec.containers) {
    for (const auto& p : other.ports) {
      auto it = pod.ports_by_number.find(p.container_port);
      if (!p.name.empty() && it != pod.ports_by_number.end()) {
        env.Set("PORT_" + EnvVarName(p.name), port_value(it->first, it->second));
      }
    }
  }
  env.Set("BALLAST_POD_NAME", pod.desired.name);
  env.Set("BALLAST_POD_NAMESPACE", pod.desired.namespace_);
  env.Set("BALLAST_REVISION", pod.desired.revision);
  env.Set("BALLAST_NODE_NAME", node.node_name);
  for (const auto& [k, v] : pod.service_env) env.Set(k, v);
  for (const auto& e : c.spec.env) {
    if (!e.value_from.is_null()) continue;  // valueFrom is not supported yet
    env.Set(e.name, ExpandVars(e.value, env.values()));
  }
  return env;
}

}  // namespace

std::string ContainerLogPath(const std::string& pod_dir, const std::string& container,
                             const char* stream) {
  return pod_dir + "/logs/" + container + "." + stream + ".log";
}

CgroupLimits PodLimits(const agentapi::DesiredPod& desired) {
  CgroupLimits limits;
  for (const auto& c : desired.template_.spec.containers) {
    auto mem = c.resources.limits.find("memory");
    if (mem != c.resources.limits.end()) limits.memory_bytes += mem->second.Value();
    auto cpu = c.resources.limits.find("cpu");
    if (cpu != c.resources.limits.end()) limits.cpu_millis += cpu->second.MilliValue();
  }
  return limits;
}

ContainerLaunch BuildLaunch(const PodState& pod, const ContainerState& c, const LaunchNode& node) {
  const auto& spec = c.spec;
  const bool in_image = pod.runtime != "process";
  const OrderedEnv env = ContainerEnv(pod, c, node);
  ContainerLaunch l;
  l.node = node.node_name;
  l.pod_namespace = pod.desired.namespace_;
  l.pod_name = pod.desired.name;
  l.pod_id = pod.id;
  l.revision = pod.desired.revision;
  l.container = spec.name;
  l.restart = c.ran_before ? c.restarts + 1 : c.restarts;
  l.image = spec.image;
  l.pull_policy = ImagePullPolicy(spec, node.pull_policy);
  for (const auto& a : spec.command) l.command.push_back(ExpandVars(a, env.values()));
  for (const auto& a : spec.args) l.args.push_back(ExpandVars(a, env.values()));
  l.env = env.Entries();
  l.hostname = pod.desired.name;
  l.host_ip = node.node_address;
  for (const auto& p : spec.ports) {
    auto it = pod.ports_by_number.find(p.container_port);
    if (it != pod.ports_by_number.end()) l.ports.push_back({it->first, it->second});
  }
  auto mem = spec.resources.limits.find("memory");
  if (mem != spec.resources.limits.end()) l.memory_bytes = mem->second.Value();
  auto cpu = spec.resources.limits.find("cpu");
  if (cpu != spec.resources.limits.end()) l.cpu_millis = cpu->second.MilliValue();
  l.stdout_path = ContainerLogPath(pod.dir, spec.name, "stdout");
  l.stderr_path = ContainerLogPath(pod.dir, spec.name, "stderr");
  l.working_dir = in_image ? spec.working_dir : JoinInside(pod.dir + "/work", spec.working_dir);
  if (pod.desired.template_.spec.run_as_user) {
    const auto& sc = pod.desired.template_.spec.security_context_extra;
    if (sc.is_object() && sc.contains("runAsGroup") && sc["runAsGroup"].is_number_integer()) {
      l.gid = sc["runAsGroup"].get<gid_t>();
    }
    if (in_image || node.agent_is_root) {
      l.uid = static_cast<uid_t>(*pod.desired.template_.spec.run_as_user);
    }
  }
  return l;
}

ProbeContext BuildProbeContext(const PodState& pod, const ContainerState& c,
                               const LaunchNode& node) {
  ProbeContext ctx;
  ctx.host = node.node_address;
  for (const auto& other : pod.desired.template_.spec.containers) {
    for (const auto& p : other.ports) {
      auto it = pod.ports_by_number.find(p.container_port);
      if (it != pod.ports_by_number.end() && !p.name.empty()) {
        ctx.ports_by_name[p.name] = it->second;
      }
    }
  }
  ctx.ports_by_number = pod.ports_by_number;
  ctx.exec_base.cwd = JoinInside(pod.dir + "/work", c.spec.working_dir);
  ctx.exec_base.env = {"PATH=" + node.agent_path, "HOST=" + node.node_address,
                       "HOSTNAME=" + pod.desired.name};
  for (const auto& e : c.spec.env) ctx.exec_base.env.push_back(e.name + "=" + e.value);
  if (pod.desired.template_.spec.run_as_user && node.agent_is_root) {
    ctx.exec_base.uid = static_cast<uid_t>(*pod.desired.template_.spec.run_as_user);
  }
  return ctx;
}

}  // namespace ballast::nodeagent
