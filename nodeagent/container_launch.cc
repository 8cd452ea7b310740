#include "nodeagent/container_launch.h"

#include <algorithm>
#include <filesystem>
#include <map>
#include <vector>

#include "model/config_refs.h"
#include "nodeagent/config_volumes.h"
#include "nodeagent/expand.h"
#include "nodeagent/pod_store.h"
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

// kubelet's words: `configmap "app" not found`, `secret "db" not found`.
std::string NotFound(const std::string& kind, const std::string& name) {
  return (kind == "Secret" ? "secret \"" : "configmap \"") + name + "\" not found";
}

// What envFrom turns into variables: names as the API server validates env names (others are
// skipped, as kubelet skips them).
bool IsEnvName(const std::string& s) {
  if (s.empty() || (s[0] >= '0' && s[0] <= '9')) return false;
  for (char c : s) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '-' || c == '_' || c == '.';
    if (!ok) return false;
  }
  return true;
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
  // envFrom, in order (a later source wins a name), then env (wins over envFrom), as kubelet
  // builds it. ContainerConfigError has made sure every required object and key is there.
  for (const auto& ref : model::EnvFromRefs(c.spec)) {
    const auto* source = ConfigSource(pod, ref.kind, ref.name);
    if (source == nullptr) continue;
    for (const auto& [k, v] : source->data) {
      if (IsEnvName(ref.prefix + k)) env.Set(ref.prefix + k, v);
    }
  }
  for (const auto& e : c.spec.env) {
    if (e.value_from.is_null()) {
      env.Set(e.name, ExpandVars(e.value, env.values()));
      continue;
    }
    auto ref = model::EnvKeyRef(e);
    if (!ref) continue;  // fieldRef, resourceFieldRef: not supported yet (validation warns)
    const auto* source = ConfigSource(pod, ref->kind, ref->name);
    if (source == nullptr) continue;
    if (auto v = source->data.find(ref->key); v != source->data.end()) env.Set(e.name, v->second);
  }
  return env;
}

// The user and group a container runs as: its own or the pod's (model::EffectiveSecurity); a
// process pod's only when the agent can switch to them (runs as root).
void SetUser(const model::EffectiveSecurityContext& sec, bool can_switch, std::optional<uid_t>* uid,
             std::optional<gid_t>* gid) {
  if (!can_switch) return;
  if (sec.run_as_user) *uid = static_cast<uid_t>(*sec.run_as_user);
  if (sec.run_as_group) *gid = static_cast<gid_t>(*sec.run_as_group);
}

std::string PodAndContainer(const PodState& pod, const ContainerState& c) {
  return " (pod: \"" + pod.desired.namespace_ + "/" + pod.desired.name +
         "\", container: " + c.spec.name + ")";
}

}  // namespace

const agentapi::PodConfigSource* ConfigSource(const PodState& pod, const std::string& kind,
                                              const std::string& name) {
  for (const auto& c : pod.desired.config) {
    if (c.kind == kind && c.name == name) return &c;
  }
  return nullptr;
}

std::optional<gid_t> FsGroup(const model::PodSpec& spec) {
  const model::Json& sc = spec.security_context.extra;
  auto it = sc.find("fsGroup");
  if (it == sc.end() || !it->is_number_integer()) return std::nullopt;
  const int64_t g = it->get<int64_t>();
  if (g < 0 || g > 2147483647) return std::nullopt;
  return static_cast<gid_t>(g);
}

std::vector<VolumeBind> ConfigVolumeMounts(const PodState& pod, const ContainerState& c,
                                           const LaunchNode& node) {
  std::vector<VolumeBind> out;
  const auto volumes = model::ConfigVolumes(pod.desired.template_.spec);
  for (const auto& m : model::VolumeMounts(c.spec)) {
    if (FindConfigVolume(volumes, m.name) == nullptr) continue;
    std::string source = node.pods_root + "/" + PodDirName(pod.id) + "/volumes/" + m.name;
    for (const auto& part : PathComponents(m.sub_path)) source += "/" + part;
    out.push_back({std::move(source), m.mount_path, true});
  }
  return out;
}

std::string ContainerConfigError(const PodState& pod, const ContainerState& c,
                                 const LaunchNode& node) {
  // What its volumes hold must be there, as kubelet mounts them before it starts the container.
  const auto volumes = model::ConfigVolumes(pod.desired.template_.spec);
  for (const auto& m : model::VolumeMounts(c.spec)) {
    const model::ConfigVolume* v = FindConfigVolume(volumes, m.name);
    if (v == nullptr) continue;
    const std::string failed = "MountVolume.SetUp failed for volume \"" + m.name + "\" : ";
    auto files = ProjectVolume(*v, ConfigSource(pod, v->kind, v->object));
    if (!files.ok()) return failed + files.status().message();
    std::string sub;
    for (const auto& part : PathComponents(m.sub_path)) sub += (sub.empty() ? "" : "/") + part;
    if (sub.empty()) continue;
    const bool found = std::any_of(files->begin(), files->end(), [&](const VolumeFile& f) {
      return f.path == sub || f.path.rfind(sub + "/", 0) == 0;
    });
    if (!found) {
      return failed + "subPath \"" + m.sub_path + "\" is not in the volume" +
             PodAndContainer(pod, c);
    }
  }
  // What the environment reads must be there (kubelet's messages), and fit in an environment.
  auto fits = [&](const std::string& name, const std::string& value) -> std::string {
    if (value.find('\0') == std::string::npos) return "";
    return "the value for " + name + " holds a NUL byte, which an environment cannot carry" +
           PodAndContainer(pod, c);
  };
  for (const auto& ref : model::EnvFromRefs(c.spec)) {
    const auto* source = ConfigSource(pod, ref.kind, ref.name);
    if (source == nullptr) {
      if (ref.optional) continue;
      return NotFound(ref.kind, ref.name);
    }
    for (const auto& [k, v] : source->data) {
      if (std::string why = fits(ref.prefix + k, v); !why.empty()) return why;
    }
  }
  for (const auto& e : c.spec.env) {
    auto ref = model::EnvKeyRef(e);
    if (!ref) continue;
    const auto* source = ConfigSource(pod, ref->kind, ref->name);
    if (source == nullptr) {
      if (ref->optional) continue;
      return NotFound(ref->kind, ref->name);
    }
    auto v = source->data.find(ref->key);
    if (v == source->data.end()) {
      if (ref->optional) continue;
      return "couldn't find key " + ref->key + " in " + ref->kind + " " + pod.desired.namespace_ +
             "/" + ref->name;
    }
    if (std::string why = fits(e.name, v->second); !why.empty()) return why;
  }
  const model::EffectiveSecurityContext sec =
      model::EffectiveSecurity(pod.desired.template_.spec, c.spec);
  const bool process = pod.runtime == "process";
  if (sec.run_as_non_root && sec.run_as_user == 0) {
    return "container's runAsUser breaks non-root policy" + PodAndContainer(pod, c);
  }
  if (!process) return "";
  if (sec.run_as_non_root && !sec.run_as_user && node.agent_is_root) {
    return "container has runAsNonRoot and will run as root: it has no runAsUser and the agent "
           "runs as root" +
           PodAndContainer(pod, c);
  }
  if (sec.read_only_root_filesystem) {
    return "readOnlyRootFilesystem cannot be honoured by the process runtime: the container has "
           "no root filesystem of its own (give it an image and run it on the docker runtime)" +
           PodAndContainer(pod, c);
  }
  if (!node.agent_is_root && ((sec.run_as_user && *sec.run_as_user != node.agent_uid) ||
                              (sec.run_as_group && *sec.run_as_group != node.agent_gid))) {
    return "runAsUser and runAsGroup cannot be honoured: the agent does not run as root, so its "
           "pods run as its own user " +
           std::to_string(node.agent_uid) + " and group " + std::to_string(node.agent_gid) +
           PodAndContainer(pod, c);
  }
  if (!node.agent_is_root && !sec.cap_add.empty()) {
    return "capabilities.add cannot be honoured: the agent does not run as root, so it has no "
           "capabilities to give" +
           PodAndContainer(pod, c);
  }
  if (!node.agent_is_root && sec.allow_privilege_escalation) {
    return "allowPrivilegeEscalation: true cannot be honoured: an agent that does not run as root "
           "sets no_new_privs to load the seccomp filter" +
           PodAndContainer(pod, c);
  }
  return "";
}

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
  limits.pids = model::PodPidsLimit(desired.template_);
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
  const model::EffectiveSecurityContext sec =
      model::EffectiveSecurity(pod.desired.template_.spec, spec);
  SetUser(sec, in_image || node.agent_is_root, &l.uid, &l.gid);
  l.cap_add = sec.cap_add;
  l.cap_drop = sec.cap_drop;
  l.no_new_privileges = !sec.allow_privilege_escalation;
  l.read_only_root_filesystem = sec.read_only_root_filesystem;
  l.run_as_non_root = sec.run_as_non_root;
  l.pids_limit = model::PodPidsLimit(pod.desired.template_);
  if (in_image) l.binds = ConfigVolumeMounts(pod, c, node);
  if (auto fs_group = FsGroup(pod.desired.template_.spec);
      fs_group && (in_image || node.agent_is_root)) {
    l.groups = {*fs_group};
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
  // Exec probes run as the container does, confined as it is.
  const model::EffectiveSecurityContext sec =
      model::EffectiveSecurity(pod.desired.template_.spec, c.spec);
  SetUser(sec, node.agent_is_root, &ctx.exec_base.uid, &ctx.exec_base.gid);
  const bool root = ctx.exec_base.uid ? *ctx.exec_base.uid == 0 : node.agent_is_root;
  ctx.exec_base.confinement =
      ContainerConfinement(sec.cap_add, sec.cap_drop, sec.allow_privilege_escalation, root);
  return ctx;
}

}  // namespace ballast::nodeagent
