#include "nodeagent/pods.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pwd.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>
#include <thread>

#include "nodeagent/expand.h"
#include "nodeagent/service_env.h"

namespace ballast::nodeagent {
namespace fs = std::filesystem;
using model::Json;

namespace {

enum ProbeKind { kStartup = 0, kLiveness = 1, kReadiness = 2 };

std::string LogPath(const std::string& pod_dir, const std::string& container, const char* stream) {
  return pod_dir + "/logs/" + container + "." + stream + ".log";
}

// "a/../b" and absolute paths are kept inside the pod's work directory.
std::string SafeJoin(const std::string& base, const std::string& rel) {
  fs::path out(base);
  for (const auto& part : fs::path(rel)) {
    if (part == "/" || part == "." || part == ".." || part.empty()) continue;
    out /= part;
  }
  return out.string();
}

bool WriteFileAtomically(const std::string& path, const std::string& content) {
  std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    if (!out) return false;
    out << content;
    if (!out.flush()) return false;
  }
  return std::rename(tmp.c_str(), path.c_str()) == 0;
}

const model::Probe* ProbeOf(const model::Container& c, int kind) {
  const auto& p = kind == kStartup    ? c.startup_probe
                  : kind == kLiveness ? c.liveness_probe
                                      : c.readiness_probe;
  return p ? &*p : nullptr;
}

bool ShouldRestart(const std::string& policy, int exit_code) {
  if (policy == "Never") return false;
  if (policy == "OnFailure") return exit_code != 0;
  return true;  // Always
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

}  // namespace

Result<int32_t> FreePort(const std::string& address) {
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  if (::inet_pton(AF_INET, address.c_str(), &addr.sin_addr) != 1) {
    return InvalidArgument("node address " + address + " is not an IPv4 address");
  }
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return Internal(std::string("socket: ") + std::strerror(errno));
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    std::string m = std::strerror(errno);
    ::close(fd);
    return Unavailable("bind " + address + ":0: " + m);
  }
  socklen_t len = sizeof addr;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  ::close(fd);
  return static_cast<int32_t>(ntohs(addr.sin_port));
}

PodManager::PodManager(PodManagerOptions options, const Clock& clock, Cgroups* cgroups)
    : options_(std::move(options)),
      clock_(clock),
      cgroups_(cgroups),
      workers_(std::make_unique<WorkerPool>(std::max(1, options_.probe_threads))) {
  const char* path = std::getenv("PATH");
  agent_path_ = path ? path : "/usr/local/bin:/usr/bin:/bin";
  // Pods find the `ballast` binary the agent runs (`command: [ballast, demo-app]`) even when
  // it is not installed on the PATH, e.g. run from a build directory. Last, so an installed
  // program of the same name wins.
  std::error_code ec;
  const fs::path self = fs::read_symlink("/proc/self/exe", ec);
  if (!ec && self.has_parent_path()) {
    const std::string dir = self.parent_path().string();
    if ((":" + agent_path_ + ":").find(":" + dir + ":") == std::string::npos) {
      agent_path_ += ":" + dir;
    }
  }
  fs::create_directories(options_.work_dir + "/pods", ec);
  pods_root_ = fs::weakly_canonical(options_.work_dir + "/pods", ec).string();
  if (ec) pods_root_ = options_.work_dir + "/pods";
}

PodManager::~PodManager() { workers_.reset(); }

void PodManager::SetDesired(const std::vector<agentapi::DesiredPod>& pods,
                            const std::vector<agentapi::DesiredService>& services) {
  std::map<std::string, const agentapi::DesiredPod*> wanted;
  for (const auto& p : pods) wanted[p.namespace_ + "_" + p.name] = &p;
  for (auto& [id, pod] : pods_) {
    auto it = wanted.find(id);
    bool same = it != wanted.end() && it->second->revision == pod.desired.revision &&
                it->second->template_ == pod.desired.template_;
    if (!same && !pod.terminating) BeginStop(pod);
  }
  for (const auto& [id, desired] : wanted) {
    auto it = pods_.find(id);
    if (it == pods_.end()) {
      StartPod(*desired, services);
    } else if (!it->second.terminating && it->second.desired.deployment != desired->deployment) {
      it->second.desired.deployment = desired->deployment;  // bookkeeping only
    }
  }
  Publish();
}

void PodManager::StartPod(const agentapi::DesiredPod& desired,
                          const std::vector<agentapi::DesiredService>& services) {
  PodRun pod;
  pod.desired = desired;
  pod.id = desired.namespace_ + "_" + desired.name;
  pod.dir = options_.work_dir + "/pods/" + pod.id;
  pod.created_wall_ms = clock_.WallMs();
  pod.runtime = PodRuntimeName(desired.template_, options_.prefer_images);
  std::error_code ec;
  fs::create_directories(pod.dir + "/logs", ec);
  fs::create_directories(pod.dir + "/work", ec);
  // Ports handed to other pods may not be bound yet: never give the same one twice.
  std::set<int32_t> used;
  for (const auto& [other_id, other] : pods_) {
    for (const auto& [k, port] : other.ports_by_number) used.insert(port);
  }
  for (const auto& c : desired.template_.spec.containers) {
    for (const auto& p : c.ports) {
      if (p.protocol != "TCP" && !p.protocol.empty()) continue;
      auto port = FreePort(options_.node_address);
      for (int tries = 0; port.ok() && used.count(*port) > 0 && tries < 50; ++tries) {
        port = FreePort(options_.node_address);
      }
      if (port.ok()) used.insert(*port);
      if (!port.ok()) continue;  // reported through the missing mapping; the pod still runs
      pod.host_ports[p.name.empty() ? std::to_string(p.container_port) : p.name] = *port;
      pod.ports_by_number[p.container_port] = *port;
    }
  }
  // Processes reach a Service at its cluster IP (loopback, local to the node); a container on a
  // bridge network cannot reach the host's loopback, so it keeps the node's address.
  pod.service_env = ServiceEnvironment(services, desired.namespace_, options_.node_address,
                                       /*use_cluster_ips=*/pod.runtime == "process");
  for (const auto& [k, v] : desired.env) pod.service_env[k] = v;
  if (pod.runtime == "process" && cgroups_ != nullptr && cgroups_->enforced()) {
    pod.cgroup = cgroups_->Create(pod.id, PodLimits(desired)).ok();
  }
  for (const auto& spec : desired.template_.spec.containers) {
    ContainerRun c;
    c.spec = spec;
    c.backoff = CrashLoopBackoff(options_.backoff);
    pod.containers.push_back(std::move(c));
  }
  auto [it, inserted] = pods_.emplace(pod.id, std::move(pod));
  for (auto& c : it->second.containers) StartContainer(it->second, c);
  Persist(it->second);
}

std::string PodRuntimeName(const model::PodTemplateSpec& template_spec, bool prefer_images) {
  auto it = template_spec.annotations.find(model::kAnnotationRuntime);
  if (it != template_spec.annotations.end() && !it->second.empty()) return it->second;
  bool all_images = !template_spec.spec.containers.empty();
  for (const auto& c : template_spec.spec.containers) {
    if (!c.image.empty() && c.command.empty()) return "docker";
    all_images = all_images && !c.image.empty();
  }
  return prefer_images && all_images ? "docker" : "process";
}

ContainerRuntime* PodManager::RuntimeOf(const PodRun& pod) {
  if (pod.runtime == "process") return &process_runtime_;
  if (options_.image_runtime != nullptr && pod.runtime == options_.image_runtime->name()) {
    return options_.image_runtime;
  }
  return nullptr;
}

namespace {

// Kubernetes' imagePullPolicy default: Always for ":latest" or no tag, else IfNotPresent.
std::string PullPolicy(const model::Container& spec, const std::string& override_policy) {
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

}  // namespace

ContainerLaunch PodManager::BuildLaunch(PodRun& pod, ContainerRun& c, bool prepare) {
  const auto& spec = c.spec;
  const bool in_image = pod.runtime != "process";
  // Environment, in Kubernetes' order of precedence: ours, then Services, then the container's
  // own env (each value may reference the ones before it). Inside an image the image's PATH
  // and HOME stay, and ports are the container's own (published on the host ports).
  std::map<std::string, std::string> env;
  std::vector<std::string> order;
  auto set = [&](const std::string& k, const std::string& v) {
    if (env.find(k) == env.end()) order.push_back(k);
    env[k] = v;
  };
  if (!in_image) {
    set("PATH", agent_path_);
    set("HOME", pod.dir + "/work");
    // Marks every process of the pod (children inherit it), so a restarted agent that lost the
    // pod's record still finds and stops them (KillUnrecordedProcesses).
    set("BALLAST_POD_DIR", pods_root_ + "/" + pod.id);
  }
  set("HOSTNAME", pod.desired.name);
  set("HOST", in_image ? "0.0.0.0" : options_.node_address);
  auto port_value = [&](int32_t container_port, int32_t host_port) {
    return std::to_string(in_image ? container_port : host_port);
  };
  std::string first_port;
  for (const auto& p : spec.ports) {
    auto it = pod.ports_by_number.find(p.container_port);
    if (it != pod.ports_by_number.end() && first_port.empty())
      first_port = port_value(it->first, it->second);
  }
  if (first_port.empty() && !pod.ports_by_number.empty()) {
    first_port =
        port_value(pod.ports_by_number.begin()->first, pod.ports_by_number.begin()->second);
  }
  if (!first_port.empty()) set("PORT", first_port);
  for (const auto& other : pod.desired.template_.spec.containers) {
    for (const auto& p : other.ports) {
      auto it = pod.ports_by_number.find(p.container_port);
      if (!p.name.empty() && it != pod.ports_by_number.end()) {
        set("PORT_" + EnvVarName(p.name), port_value(it->first, it->second));
      }
    }
  }
  set("BALLAST_POD_NAME", pod.desired.name);
  set("BALLAST_POD_NAMESPACE", pod.desired.namespace_);
  set("BALLAST_REVISION", pod.desired.revision);
  set("BALLAST_NODE_NAME", options_.node_name);
  for (const auto& [k, v] : pod.service_env) set(k, v);
  for (const auto& e : spec.env) {
    if (!e.value_from.is_null()) continue;  // valueFrom is not supported yet
    set(e.name, ExpandVars(e.value, env));
  }

  ContainerLaunch l;
  l.node = options_.node_name;
  l.pod_namespace = pod.desired.namespace_;
  l.pod_name = pod.desired.name;
  l.pod_id = pod.id;
  l.revision = pod.desired.revision;
  l.container = spec.name;
  l.restart = c.ran_before ? c.restarts + 1 : c.restarts;
  l.image = spec.image;
  l.pull_policy = PullPolicy(spec, options_.pull_policy);
  for (const auto& a : spec.command) l.command.push_back(ExpandVars(a, env));
  for (const auto& a : spec.args) l.args.push_back(ExpandVars(a, env));
  for (const auto& k : order) l.env.push_back(k + "=" + env[k]);
  l.hostname = pod.desired.name;
  l.host_ip = options_.node_address;
  for (const auto& p : spec.ports) {
    auto it = pod.ports_by_number.find(p.container_port);
    if (it != pod.ports_by_number.end()) l.ports.push_back({it->first, it->second});
  }
  auto mem = spec.resources.limits.find("memory");
  if (mem != spec.resources.limits.end()) l.memory_bytes = mem->second.Value();
  auto cpu = spec.resources.limits.find("cpu");
  if (cpu != spec.resources.limits.end()) l.cpu_millis = cpu->second.MilliValue();
  l.stdout_path = LogPath(pod.dir, spec.name, "stdout");
  l.stderr_path = LogPath(pod.dir, spec.name, "stderr");
  l.working_dir = in_image ? spec.working_dir : SafeJoin(pod.dir + "/work", spec.working_dir);
  if (pod.desired.template_.spec.run_as_user) {
    auto uid = static_cast<uid_t>(*pod.desired.template_.spec.run_as_user);
    const auto& sc = pod.desired.template_.spec.security_context_extra;
    if (sc.is_object() && sc.contains("runAsGroup") && sc["runAsGroup"].is_number_integer()) {
      l.gid = sc["runAsGroup"].get<gid_t>();
    } else if (passwd* pw = in_image ? nullptr : ::getpwuid(uid)) {
      l.gid = pw->pw_gid;
    }
    if (in_image || ::geteuid() == 0) l.uid = uid;
  }
  if (!prepare || in_image) return l;

  std::error_code ec;
  fs::create_directories(l.working_dir, ec);
  if (l.uid) {
    uid_t uid = *l.uid;
    // The pod's files must be usable by that user, and the directories above traversable.
    for (const auto& p : {options_.work_dir, options_.work_dir + "/pods"}) {
      struct stat st;
      if (::stat(p.c_str(), &st) == 0) (void)::chmod(p.c_str(), (st.st_mode & 07777) | 0111);
    }
    auto chown_or_log = [&](const std::string& p) {
      if (::chown(p.c_str(), uid, l.gid.value_or(uid)) != 0) {
        Log("chown_failed", {{"pod", pod.id}, {"path", p}, {"error", std::strerror(errno)}});
      }
    };
    for (const auto& p : {pod.dir, pod.dir + "/work", pod.dir + "/logs", l.working_dir}) {
      chown_or_log(p);
    }
    for (const auto& p : {l.stdout_path, l.stderr_path}) {
      std::ofstream touch(p, std::ios::app);
      chown_or_log(p);
    }
  }
  if (pod.cgroup && cgroups_ != nullptr) {
    auto files = cgroups_->Create(pod.id, PodLimits(pod.desired));
    if (files.ok()) l.cgroup_procs_files = *files;
  }
  return l;
}

void PodManager::StartContainer(PodRun& pod, ContainerRun& c) {
  int64_t now = clock_.NowMs();
  c.incarnation++;
  c.kill_deadline_ms = 0;
  c.kill_reason.clear();
  c.startup = c.liveness = c.readiness = ProbeState{};
  c.ready = false;
  c.started = false;
  c.started_ms = now;

  ContainerRuntime* rt = RuntimeOf(pod);
  ballast::Status failure;
  if (rt == nullptr) {
    failure = FailedPrecondition("container " + c.spec.name + ": this node has no " + pod.runtime +
                                 " runtime");
  } else {
    ContainerLaunch launch = BuildLaunch(pod, c, true);
    auto ref = rt->Start(launch);
    if (ref.ok()) {
      c.ref = *ref;
      c.active = true;
      c.creating = true;
      c.state = "waiting";
      c.reason = "ContainerCreating";
      c.message.clear();
      // Observe at once: a synchronous runtime reports it running (or already exited, and the
      // process runtime's exit status can be read only once).
      ContainerObservation o = rt->Observe(c.ref);
      switch (o.phase) {
        case ContainerObservation::Phase::kCreating:
          break;
        case ContainerObservation::Phase::kRunning:
          MarkRunning(pod, c);
          break;
        case ContainerObservation::Phase::kExited:
          MarkRunning(pod, c);
          OnContainerExit(pod, c, o);
          break;
        case ContainerObservation::Phase::kStartFailed:
          OnStartFailure(pod, c, o.message, o.reason);
          break;
      }
      return;
    }
    failure = ref.status();
  }
  OnStartFailure(pod, c, failure.message(), "");
}

void PodManager::MarkRunning(PodRun& pod, ContainerRun& c) {
  int64_t now = clock_.NowMs();
  const auto& spec = c.spec;
  if (c.ran_before) c.restarts++;
  c.ran_before = true;
  c.creating = false;
  c.image_failures = 0;
  c.state = "running";
  c.reason.clear();
  c.message.clear();
  c.started_ms = now;
  c.started_wall_ms = clock_.WallMs();
  c.oom_kills_at_start = pod.cgroup ? cgroups_->OomKills(pod.id) : 0;
  Log("container_started", {{"pod", pod.id},
                            {"container", spec.name},
                            {"runtime", pod.runtime},
                            {"id", c.ref.id.empty() ? std::to_string(c.ref.pid) : c.ref.id},
                            {"restarts", std::to_string(c.restarts)}});
  c.started = !spec.startup_probe.has_value();
  c.ready = c.started && !spec.readiness_probe.has_value();
  for (int kind : {kStartup, kLiveness, kReadiness}) {
    const model::Probe* p = ProbeOf(spec, kind);
    ProbeState& st = kind == kStartup ? c.startup : kind == kLiveness ? c.liveness : c.readiness;
    if (p) st.next_at_ms = now + int64_t{p->initial_delay_seconds} * 1000;
  }
  Persist(pod);
}

void PodManager::OnStartFailure(PodRun& pod, ContainerRun& c, const std::string& message,
                                const std::string& reason) {
  int64_t now = clock_.NowMs();
  if (c.active) {
    if (ContainerRuntime* rt = RuntimeOf(pod)) rt->Release(c.ref);
  }
  c.active = false;
  c.creating = false;
  c.ref = ContainerRef{};
  if (reason == "ErrImageNeverPull" || reason == "ErrImagePull") {
    // The image is missing: the container never ran, so no restart is counted. Kubernetes
    // shows ErrImagePull after a failed pull and ImagePullBackOff while it waits to retry;
    // ErrImageNeverPull stays (retrying helps only once someone loads the image).
    Log("image_unavailable",
        {{"pod", pod.id}, {"container", c.spec.name}, {"reason", reason}, {"message", message}});
    c.state = "waiting";
    c.reason = reason == "ErrImagePull" && c.image_failures > 0 ? "ImagePullBackOff" : reason;
    c.message = message;
    c.image_failures++;
    if (pod.terminating) {
      c.state = "terminated";
    } else {
      c.restart_at_ms = now + c.backoff.NextDelay(now, now);
    }
    Persist(pod);
    return;
  }
  // Could not start: like a container that exited at once.
  if (c.ran_before) c.restarts++;
  c.ran_before = true;
  c.started_ms = now;
  ContainerObservation exit;
  exit.phase = ContainerObservation::Phase::kExited;
  exit.exit_code = 128;
  OnContainerExit(pod, c, exit);
  c.last_reason = "StartError";
  c.message = message;
}

void PodManager::OnContainerExit(PodRun& pod, ContainerRun& c, const ContainerObservation& exit) {
  int64_t now = clock_.NowMs();
  if (c.active) {
    if (ContainerRuntime* rt = RuntimeOf(pod)) rt->Release(c.ref);
  }
  const bool known = exit.known;
  const int exit_code = exit.exit_code;
  std::string reason;
  if (!known) {
    reason = "Unknown";
  } else if (exit.reason == "OOMKilled" ||
             (pod.cgroup && cgroups_ != nullptr && exit.signal == SIGKILL &&
              cgroups_->OomKills(pod.id) > c.oom_kills_at_start)) {
    reason = "OOMKilled";
  } else {
    reason = exit_code == 0 ? "Completed" : "Error";
  }
  Log("container_exited", {{"pod", pod.id},
                           {"container", c.spec.name},
                           {"exit_code", known ? std::to_string(exit_code) : "unknown"},
                           {"reason", reason},
                           {"message", c.kill_reason}});
  c.ref = ContainerRef{};
  c.active = false;
  c.creating = false;
  c.ready = false;
  c.last_exit_code = known ? exit_code : 0;
  c.last_reason = reason;
  c.state = "terminated";
  c.reason = reason;
  std::string killed_because = std::move(c.kill_reason);
  c.message = killed_because;
  c.kill_deadline_ms = 0;
  c.kill_reason.clear();
  if (!pod.terminating && ShouldRestart(pod.desired.template_.spec.restart_policy, exit_code)) {
    int64_t delay = c.backoff.NextDelay(c.started_ms, now);
    c.state = "waiting";
    c.reason = "CrashLoopBackOff";
    c.message = "back-off " + std::to_string(delay / 1000) +
                "s restarting failed container=" + c.spec.name + " pod=" + pod.desired.name;
    if (!killed_because.empty()) c.message = killed_because + "; " + c.message;
    c.restart_at_ms = now + delay;
  }
  Persist(pod);
}

void PodManager::BeginStop(PodRun& pod) {
  Log("pod_stopping",
      {{"pod", pod.id},
       {"grace_seconds",
        std::to_string(pod.desired.template_.spec.termination_grace_period_seconds)}});
  pod.terminating = true;
  pod.stop_deadline_ms =
      clock_.NowMs() + pod.desired.template_.spec.termination_grace_period_seconds * 1000;
  for (auto& c : pod.containers) {
    c.ready = false;
    if (c.active) {
      if (ContainerRuntime* rt = RuntimeOf(pod)) rt->Signal(c.ref, SIGTERM);
    } else {
      c.state = "terminated";
    }
  }
}

void PodManager::StopAll() {
  for (auto& [id, pod] : pods_) {
    if (!pod.terminating) BeginStop(pod);
  }
}

bool PodManager::SuperviseContainer(PodRun& pod, ContainerRun& c) {
  int64_t now = clock_.NowMs();
  if (c.active) {
    ContainerRuntime* rt = RuntimeOf(pod);
    if (rt == nullptr) return false;  // cannot happen: active containers have a runtime
    ContainerObservation o = rt->Observe(c.ref);
    bool changed = false;
    switch (o.phase) {
      case ContainerObservation::Phase::kCreating:
        return false;
      case ContainerObservation::Phase::kStartFailed:
        OnStartFailure(pod, c, o.message, o.reason);
        return true;
      case ContainerObservation::Phase::kExited:
        if (c.creating) MarkRunning(pod, c);  // it ran, if only briefly
        OnContainerExit(pod, c, o);
        return true;
      case ContainerObservation::Phase::kRunning:
        if (c.creating) {
          MarkRunning(pod, c);
          changed = true;
        }
        break;
    }
    if (c.kill_deadline_ms != 0 && now >= c.kill_deadline_ms) rt->Signal(c.ref, SIGKILL);
    if (!pod.terminating && c.kill_deadline_ms == 0) ScheduleProbes(pod, c);
    return changed;
  }
  if (!pod.terminating && c.state == "waiting" && now >= c.restart_at_ms) {
    StartContainer(pod, c);
    Persist(pod);
    return true;
  }
  return false;
}

void PodManager::ScheduleProbes(PodRun& pod, ContainerRun& c) {
  int64_t now = clock_.NowMs();
  for (int kind : {kStartup, kLiveness, kReadiness}) {
    const model::Probe* probe = ProbeOf(c.spec, kind);
    if (probe == nullptr) continue;
    if (kind == kStartup && c.started) continue;
    if (kind != kStartup && !c.started) continue;
    ProbeState& st = kind == kStartup ? c.startup : kind == kLiveness ? c.liveness : c.readiness;
    if (st.in_flight || now < st.next_at_ms) continue;
    st.in_flight = true;
    int64_t period_ms = std::max<int64_t>(1, probe->period_seconds) * 1000;
    if (kind == kReadiness && !st.ever_succeeded) {
      // A starting container usually fails its first readiness probe only because it does not
      // listen yet. Until the first success, retry after 100 ms, doubling up to the period, so a
      // pod turns Ready about when its app is up instead of a whole period later. Failures
      // before the first success change nothing (the container starts not ready); liveness and
      // startup probes keep their period, since their failures count towards a restart.
      period_ms = std::min(period_ms, int64_t{100} << std::min(st.failures, 10));
    }
    st.next_at_ms = now + period_ms;
    ProbeContext ctx;
    ctx.host = options_.node_address;
    ctx.ports_by_name.clear();
    for (const auto& other : pod.desired.template_.spec.containers) {
      for (const auto& p : other.ports) {
        auto it = pod.ports_by_number.find(p.container_port);
        if (it != pod.ports_by_number.end() && !p.name.empty())
          ctx.ports_by_name[p.name] = it->second;
      }
    }
    ctx.ports_by_number = pod.ports_by_number;
    ctx.exec_base.cwd = SafeJoin(pod.dir + "/work", c.spec.working_dir);
    ctx.exec_base.env = {"PATH=" + agent_path_, "HOST=" + options_.node_address,
                         "HOSTNAME=" + pod.desired.name};
    for (const auto& e : c.spec.env) ctx.exec_base.env.push_back(e.name + "=" + e.value);
    if (pod.runtime != "process") {
      ContainerRuntime* rt = RuntimeOf(pod);
      ctx.exec = [rt, ref = c.ref](const std::vector<std::string>& command, int timeout_ms) {
        return rt->Exec(ref, {}, command, timeout_ms);
      };
    }
    if (pod.desired.template_.spec.run_as_user && ::geteuid() == 0) {
      ctx.exec_base.uid = static_cast<uid_t>(*pod.desired.template_.spec.run_as_user);
    }
    ProbeResult base{
        pod.id, static_cast<size_t>(&c - pod.containers.data()), c.incarnation, kind, {}};
    workers_->Submit([probe = *probe, ctx = std::move(ctx), base, mu = results_mu_,
                      results = results_]() mutable {
      base.outcome = RunProbe(probe, ctx);
      std::lock_guard<std::mutex> lock(*mu);
      results->push_back(std::move(base));
    });
  }
}

bool PodManager::ApplyProbeResults() {
  std::vector<ProbeResult> results;
  {
    std::lock_guard<std::mutex> lock(*results_mu_);
    results.swap(*results_);
  }
  bool changed = false;
  int64_t now = clock_.NowMs();
  for (auto& r : results) {
    auto it = pods_.find(r.pod_id);
    if (it == pods_.end() || r.container >= it->second.containers.size()) continue;
    PodRun& pod = it->second;
    ContainerRun& c = pod.containers[r.container];
    if (c.incarnation != r.incarnation || !c.active || c.creating) continue;
    const model::Probe* probe = ProbeOf(c.spec, r.kind);
    if (probe == nullptr) continue;
    ProbeState& st = r.kind == kStartup    ? c.startup
                     : r.kind == kLiveness ? c.liveness
                                           : c.readiness;
    st.in_flight = false;
    if (r.outcome.success) {
      st.successes++;
      st.failures = 0;
      st.ever_succeeded = true;
    } else {
      st.failures++;
      st.successes = 0;
    }
    if (pod.terminating || c.kill_deadline_ms != 0) continue;
    auto kill = [&](const std::string& why) {
      int64_t grace = probe->termination_grace_period_seconds.value_or(
          pod.desired.template_.spec.termination_grace_period_seconds);
      c.kill_reason = why;
      c.kill_deadline_ms = now + grace * 1000;
      c.ready = false;
      if (ContainerRuntime* rt = RuntimeOf(pod)) rt->Signal(c.ref, SIGTERM);
      changed = true;
    };
    switch (r.kind) {
      case kStartup:
        if (st.successes >= 1) {
          c.started = true;
          c.ready = !c.spec.readiness_probe.has_value();
          for (int k : {kLiveness, kReadiness}) {
            const model::Probe* p = ProbeOf(c.spec, k);
            ProbeState& s2 = k == kLiveness ? c.liveness : c.readiness;
            if (p)
              s2.next_at_ms =
                  std::max(now, c.started_ms + int64_t{p->initial_delay_seconds} * 1000);
          }
          changed = true;
          Persist(pod);
        } else if (st.failures >= std::max(1, probe->failure_threshold)) {
          kill("Container " + c.spec.name +
               " failed startup probe, will be restarted: " + r.outcome.message);
        }
        break;
      case kLiveness:
        if (st.failures >= std::max(1, probe->failure_threshold)) {
          kill("Container " + c.spec.name +
               " failed liveness probe, will be restarted: " + r.outcome.message);
        }
        break;
      case kReadiness:
        if (!c.ready && st.successes >= std::max(1, probe->success_threshold)) {
          c.ready = true;
          changed = true;
          // Recorded, so that an agent restarted now reports the adopted pod still ready.
          Persist(pod);
        } else if (c.ready && st.failures >= std::max(1, probe->failure_threshold)) {
          c.ready = false;
          c.message = "Readiness probe failed: " + r.outcome.message;
          changed = true;
          Persist(pod);
        }
        break;
    }
  }
  return changed;
}

bool PodManager::Tick() {
  bool changed = ApplyProbeResults();
  int64_t now = clock_.NowMs();
  for (auto it = pods_.begin(); it != pods_.end();) {
    PodRun& pod = it->second;
    for (auto& c : pod.containers) changed |= SuperviseContainer(pod, c);
    if (pod.terminating) {
      bool running = std::any_of(pod.containers.begin(), pod.containers.end(),
                                 [](const ContainerRun& c) { return c.active; });
      if (!running) {
        if (pod.cgroup && cgroups_ != nullptr) {
          cgroups_->KillAll(pod.id);
          cgroups_->Remove(pod.id);
        }
        std::error_code ec;
        fs::remove_all(pod.dir, ec);
        Log("pod_stopped", {{"pod", pod.id}});
        it = pods_.erase(it);
        changed = true;
        continue;
      }
      if (now >= pod.stop_deadline_ms) {
        for (auto& c : pod.containers) {
          if (c.active) {
            if (ContainerRuntime* rt = RuntimeOf(pod)) rt->Signal(c.ref, SIGKILL);
          }
        }
        if (pod.cgroup && cgroups_ != nullptr) cgroups_->KillAll(pod.id);
      }
    }
    ++it;
  }
  if (now - last_rotate_ms_ >= 1000) {
    last_rotate_ms_ = now;
    RotateLogs();
  }
  Publish();
  std::map<std::string, std::pair<std::string, bool>> reported;
  {
    std::lock_guard<std::mutex> lock(status_mu_);
    for (const auto& p : status_) {
      reported[p.namespace_ + "_" + p.name] = {
          std::string(model::PodPhaseName(p.phase)) + "/" + std::to_string(p.restarts), p.ready};
    }
  }
  if (reported != last_reported_) {
    last_reported_ = std::move(reported);
    changed = true;
  }
  return changed;
}

void PodManager::RotateLogs() {
  for (const auto& [id, pod] : pods_) {
    for (const auto& c : pod.containers) {
      for (const char* stream : {"stdout", "stderr"}) {
        std::string path = LogPath(pod.dir, c.spec.name, stream);
        std::error_code ec;
        auto size = fs::file_size(path, ec);
        if (ec || static_cast<int64_t>(size) <= options_.log_max_bytes) continue;
        // Copy, then truncate: the process keeps its O_APPEND descriptor, which survives an
        // agent restart (a pipe to the agent would not).
        fs::copy_file(path, path + ".1", fs::copy_options::overwrite_existing, ec);
        if (ec || ::truncate(path.c_str(), 0) != 0) {
          Log("log_rotate_failed",
              {{"pod", id}, {"path", path}, {"error", ec ? ec.message() : std::strerror(errno)}});
        }
      }
    }
  }
}

model::Pod PodManager::Report(const PodRun& pod) const {
  model::Pod p;
  p.name = pod.desired.name;
  p.namespace_ = pod.desired.namespace_;
  p.deployment = pod.desired.deployment;
  p.revision = pod.desired.revision;
  p.node = options_.node_name;
  p.terminating = pod.terminating;
  p.host_ports = pod.host_ports;
  p.created_ms = pod.created_wall_ms;
  for (const auto& c : pod.desired.template_.spec.containers) {
    if (!c.ports.empty()) {
      auto it = pod.ports_by_number.find(c.ports[0].container_port);
      if (it != pod.ports_by_number.end()) {
        p.address = options_.node_address + ":" + std::to_string(it->second);
        break;
      }
    }
  }
  bool all_ready = !pod.containers.empty() && !pod.terminating;
  bool any_ran = false, any_running = false, all_done = true, all_succeeded = true;
  for (const auto& c : pod.containers) {
    model::ContainerStatus s;
    s.name = c.spec.name;
    s.ready = c.ready;
    s.restarts = c.restarts;
    s.state = c.state;
    s.reason = c.reason;
    s.message = c.message;
    s.last_exit_code = c.last_exit_code;
    s.last_reason = c.last_reason;
    s.started_at_ms = c.active && !c.creating ? c.started_wall_ms : 0;
    p.restarts += c.restarts;
    all_ready = all_ready && c.ready;
    any_ran = any_ran || c.ran_before;
    any_running = any_running || (c.active && !c.creating);
    bool done = c.state == "terminated";
    all_done = all_done && done;
    all_succeeded = all_succeeded && done && c.last_exit_code == 0 && c.last_reason == "Completed";
    p.containers.push_back(std::move(s));
  }
  p.ready = all_ready;
  if (all_done && !pod.terminating && any_ran) {
    p.phase = all_succeeded ? model::PodPhase::kSucceeded : model::PodPhase::kFailed;
  } else if (any_running || any_ran) {
    p.phase = model::PodPhase::kRunning;
  } else {
    p.phase = model::PodPhase::kPending;
  }
  return p;
}

void PodManager::Publish() {
  std::vector<model::Pod> out;
  // Readiness is timed on the monotonic clock and sent as a wall time by its age, so that a step
  // of this node's wall clock neither ages nor rejuvenates a ready pod (minReadySeconds).
  const int64_t now = clock_.NowMs();
  const int64_t wall = clock_.WallMs();
  for (auto& [id, pod] : pods_) {
    model::Pod p = Report(pod);
    if (p.ready && pod.ready_since_ms == 0) pod.ready_since_ms = now;
    if (!p.ready) pod.ready_since_ms = 0;
    p.ready_since_ms = pod.ready_since_ms > 0 ? wall - (now - pod.ready_since_ms) : 0;
    out.push_back(std::move(p));
  }
  std::lock_guard<std::mutex> lock(status_mu_);
  status_ = std::move(out);
}

std::vector<model::Pod> PodManager::Status() const {
  std::lock_guard<std::mutex> lock(status_mu_);
  return status_;
}

void PodManager::Persist(const PodRun& pod) const {
  Json containers = Json::array();
  for (const auto& c : pod.containers) {
    containers.push_back(Json{{"name", c.spec.name},
                              {"pid", c.ref.pid},
                              {"startTicks", c.ref.start_ticks},
                              {"containerId", c.ref.id},
                              {"restarts", c.restarts},
                              {"lastExitCode", c.last_exit_code},
                              {"lastReason", c.last_reason},
                              {"started", c.started},
                              {"ready", c.ready},
                              {"ranBefore", c.ran_before},
                              {"startedWallMs", c.started_wall_ms}});
  }
  Json ports_by_number = Json::object();
  for (const auto& [k, v] : pod.ports_by_number) ports_by_number[std::to_string(k)] = v;
  Json j{{"desired", ToJson(pod.desired)}, {"runtime", pod.runtime},
         {"hostPorts", pod.host_ports},    {"portsByNumber", ports_by_number},
         {"serviceEnv", pod.service_env},  {"createdMs", pod.created_wall_ms},
         {"cgroup", pod.cgroup},           {"terminating", pod.terminating},
         {"containers", containers}};
  WriteFileAtomically(pod.dir + "/pod.json", j.dump(2));
}

void PodManager::KillUnrecordedProcesses() {
  std::set<pid_t> known;
  for (const auto& [id, pod] : pods_) {
    for (const auto& c : pod.containers) {
      if (c.active && c.ref.pid > 0) known.insert(c.ref.pid);
    }
  }
  std::vector<pid_t> orphans;
  for (pid_t group : ProcessGroupsWithEnv("BALLAST_POD_DIR=" + pods_root_ + "/")) {
    if (known.count(group) == 0 && group != ::getpgrp()) orphans.push_back(group);
  }
  if (orphans.empty()) return;
  // Their pod's record is gone or unreadable (deleted, truncated by a crash): nobody would ever
  // stop them, and they hold the pod's ports. SIGTERM, then SIGKILL what is left after 2 s.
  for (pid_t group : orphans) {
    Log("orphan_stopped", {{"process_group", std::to_string(group)},
                           {"reason", "no readable pod record in " + pods_root_}});
    SignalGroup(group, SIGTERM);
  }
  for (int i = 0; i < 20; ++i) {
    bool any = false;
    for (pid_t group : orphans) any = any || GroupAlive(group);
    if (!any) return;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  for (pid_t group : orphans) SignalGroup(group, SIGKILL);
}

int PodManager::Restore() {
  int adopted = 0;
  std::error_code ec;
  int64_t now = clock_.NowMs();
  for (const auto& entry : fs::directory_iterator(options_.work_dir + "/pods", ec)) {
    if (!entry.is_directory(ec)) continue;
    std::ifstream in(entry.path() / "pod.json");
    Json j = in ? Json::parse(in, nullptr, false) : Json();
    auto desired = j.is_object()
                       ? agentapi::DesiredPodFromJson(j.value("desired", Json::object()))
                       : Result<agentapi::DesiredPod>(InvalidArgument("missing or not JSON"));
    if (!desired.ok()) {
      Log("pod_record_unreadable",
          {{"path", (entry.path() / "pod.json").string()}, {"error", desired.status().message()}});
      continue;
    }
    PodRun pod;
    pod.desired = std::move(*desired);
    pod.id = pod.desired.namespace_ + "_" + pod.desired.name;
    pod.dir = entry.path().string();
    try {
      pod.runtime = j.value("runtime", "process");
      pod.host_ports = j.value("hostPorts", std::map<std::string, int32_t>{});
      const Json ports = j.contains("portsByNumber") ? j["portsByNumber"] : Json::object();
      for (auto p = ports.begin(); p != ports.end(); ++p) {
        pod.ports_by_number[std::stoi(p.key())] = p.value().get<int32_t>();
      }
      pod.service_env = j.value("serviceEnv", model::StringMap{});
      pod.created_wall_ms = j.value("createdMs", int64_t{0});
      pod.cgroup = j.value("cgroup", false) && cgroups_ != nullptr && cgroups_->enforced();
      pod.terminating = j.value("terminating", false);
    } catch (const std::exception&) {
      continue;
    }
    Json saved = j.value("containers", Json::array());
    for (const auto& spec : pod.desired.template_.spec.containers) {
      ContainerRun c;
      c.spec = spec;
      c.backoff = CrashLoopBackoff(options_.backoff);
      for (const auto& s : saved) {
        if (!s.is_object() || s.value("name", "") != spec.name) continue;
        ContainerRef ref;
        ref.pid = s.value("pid", 0);
        ref.start_ticks = s.value("startTicks", uint64_t{0});
        ref.id = s.value("containerId", "");
        c.restarts = s.value("restarts", 0);
        c.last_exit_code = s.value("lastExitCode", 0);
        c.last_reason = s.value("lastReason", "");
        c.ran_before = s.value("ranBefore", false);
        ContainerRuntime* rt = RuntimeOf(pod);
        bool recorded = ref.pid > 0 || !ref.id.empty();
        if (recorded && rt != nullptr && rt->Adopt(ref, BuildLaunch(pod, c, false))) {
          c.ref = ref;
          c.active = true;
          Log("container_adopted", {{"pod", pod.id},
                                    {"container", spec.name},
                                    {"runtime", pod.runtime},
                                    {"id", ref.id.empty() ? std::to_string(ref.pid) : ref.id}});
          c.state = "running";
          c.reason.clear();
          c.started = s.value("started", true);
          c.ready = s.value("ready", false);
          c.started_ms = now;
          c.started_wall_ms = s.value("startedWallMs", int64_t{0});
          c.incarnation = 1;
          c.oom_kills_at_start = pod.cgroup ? cgroups_->OomKills(pod.id) : 0;
          adopted++;
        } else if (c.ran_before) {
          c.state = "waiting";
          c.reason = "CrashLoopBackOff";
          c.last_reason = "Unknown";
          c.message = "exited while the agent was not running";
          c.restart_at_ms = now;
        }
      }
      pod.containers.push_back(std::move(c));
    }
    if (pod.terminating) {
      pod.stop_deadline_ms =
          now + pod.desired.template_.spec.termination_grace_period_seconds * 1000;
    }
    pods_.emplace(pod.id, std::move(pod));
  }
  KillUnrecordedProcesses();
  if (options_.image_runtime != nullptr) {
    std::set<std::string> known;
    for (const auto& [id, pod] : pods_) {
      for (const auto& c : pod.containers) {
        if (c.active && !c.ref.id.empty()) known.insert(c.ref.id);
      }
    }
    options_.image_runtime->RemoveOrphans(known);
  }
  Publish();
  return adopted;
}

}  // namespace ballast::nodeagent
