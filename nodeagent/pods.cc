#include "nodeagent/pods.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pwd.h>
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
#include <random>
#include <variant>

#include "failpoint/failpoint.h"
#include "nodeagent/process.h"
#include "nodeagent/service_env.h"
#include "nodeagent/work_dir.h"

namespace ballast::nodeagent {
namespace fs = std::filesystem;

namespace {

// One callable of several lambdas, for std::visit.
template <class... Fs>
struct ActionVisitor : Fs... {
  using Fs::operator()...;
};
template <class... Fs>
ActionVisitor(Fs...) -> ActionVisitor<Fs...>;

// The PATH pods get: the agent's own, and the directory of the `ballast` binary it runs, so
// that pods find it (`command: [ballast, demo-app]`) even when it is not installed on the PATH,
// e.g. run from a build directory. Last, so an installed program of the same name wins.
std::string PodPath() {
  const char* path = std::getenv("PATH");
  std::string out = path ? path : "/usr/local/bin:/usr/bin:/bin";
  std::error_code ec;
  const fs::path self = fs::read_symlink("/proc/self/exe", ec);
  if (!ec && self.has_parent_path()) {
    const std::string dir = self.parent_path().string();
    if ((":" + out + ":").find(":" + dir + ":") == std::string::npos) out += ":" + dir;
  }
  return out;
}

// The pod's cgroup: named as its directories are, so that a long pod name fits NAME_MAX too.
std::string CgroupName(const PodState& pod) { return PodDirName(pod.id); }

// The basename of a container's log file (container_launch.h names them).
std::string LogFileName(const std::string& pod_dir, const std::string& container,
                        const char* stream) {
  return fs::path(ContainerLogPath(pod_dir, container, stream)).filename().string();
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
      lifecycle_(clock, {options_.backoff, options_.node_name, options_.node_address}),
      store_(RecordsDir(options_.work_dir)),
      files_(PodsDir(options_.work_dir)),
      workers_(std::make_unique<WorkerPool>(std::max(1, options_.probe_threads))) {
  std::error_code ec;
  node_.node_name = options_.node_name;
  node_.node_address = options_.node_address;
  node_.agent_path = PodPath();
  node_.pods_root = fs::weakly_canonical(PodsDir(options_.work_dir), ec).string();
  if (ec) node_.pods_root = PodsDir(options_.work_dir);
  node_.pull_policy = options_.pull_policy;
  node_.agent_is_root = ::geteuid() == 0;
  node_.agent_uid = ::geteuid();
  node_.agent_gid = ::getegid();
  std::random_device random;
  for (int i = 0; i < 32; ++i) volume_key_.push_back(static_cast<char>(random() & 0xff));
}

PodManager::~PodManager() { workers_.reset(); }

void PodManager::SetDesired(const std::vector<agentapi::DesiredPod>& pods,
                            const std::vector<agentapi::DesiredService>& services) {
  const DesiredChange change = CompareDesired(pods_, pods);
  for (const auto& id : change.stop) {
    PodState& pod = pods_.at(id);
    Run(pod, lifecycle_.BeginStop(pod));
  }
  for (const auto& [id, deployment] : change.deployment)
    pods_.at(id).desired.deployment = deployment;
  for (const auto& [id, draining] : change.draining) pods_.at(id).desired.draining = draining;
  for (const auto& [id, config] : change.config) {
    PodState& pod = pods_.at(id);
    pod.desired.config = config;
    // Files change in place, as kubelet updates them (the environment rolled the pod instead).
    if (ballast::Status s = WriteVolumes(pod); !s.ok()) {
      Log("pod_volumes_failed", {{"pod", pod.id}, {"error", s.message()}});
    }
  }
  for (const agentapi::DesiredPod* desired : change.start) StartPod(*desired, services);
  Publish();
}

void PodManager::StartPod(const agentapi::DesiredPod& desired,
                          const std::vector<agentapi::DesiredService>& services) {
  PodState pod =
      lifecycle_.NewPod(desired, PodRuntimeName(desired.template_, options_.prefer_images));
  pod.dir = files_.DirOf(pod.id);
  if (ballast::Status s = files_.Create(pod.id); !s.ok()) {
    Log("pod_files_failed", {{"pod", pod.id}, {"error", s.message()}});  // its start says so too
  }
  AllocatePorts(pod);
  // Processes reach a Service at its cluster IP (loopback, local to the node); a container on a
  // bridge network cannot reach the host's loopback, so it keeps the node's address.
  pod.service_env = ServiceEnvironment(services, desired.namespace_, options_.node_address,
                                       /*use_cluster_ips=*/pod.runtime == "process");
  for (const auto& [k, v] : desired.env) pod.service_env[k] = v;
  if (pod.runtime == "process" && cgroups_ != nullptr && cgroups_->enforced()) {
    pod.cgroup = cgroups_->Create(CgroupName(pod), PodLimits(desired)).ok();
  }
  auto [it, inserted] = pods_.emplace(pod.id, std::move(pod));
  Run(it->second, lifecycle_.StartPod(it->second));
}

void PodManager::AllocatePorts(PodState& pod) {
  // Ports handed to other pods may not be bound yet: never give the same one twice.
  std::set<int32_t> used;
  for (const auto& [other_id, other] : pods_) {
    for (const auto& [k, port] : other.ports_by_number) used.insert(port);
  }
  for (const auto& c : pod.desired.template_.spec.containers) {
    for (const auto& p : c.ports) {
      if (p.protocol != "TCP" && !p.protocol.empty()) continue;
      auto port = FreePort(options_.node_address);
      for (int tries = 0; port.ok() && used.count(*port) > 0 && tries < 50; ++tries) {
        port = FreePort(options_.node_address);
      }
      if (!port.ok()) continue;  // reported through the missing mapping; the pod still runs
      used.insert(*port);
      pod.host_ports[p.name.empty() ? std::to_string(p.container_port) : p.name] = *port;
      pod.ports_by_number[p.container_port] = *port;
    }
  }
}

ContainerRuntime* PodManager::RuntimeOf(const PodState& pod) {
  if (pod.runtime == "process") return &process_runtime_;
  if (options_.image_runtime != nullptr && pod.runtime == options_.image_runtime->name()) {
    return options_.image_runtime;
  }
  return nullptr;
}

bool PodManager::Run(PodState& pod, const PodActions& actions) {
  bool changed = actions.changed;
  for (const PodAction& action : actions.list) changed = Perform(pod, action) || changed;
  return changed;
}

bool PodManager::Perform(PodState& pod, const PodAction& action) {
  return std::visit(ActionVisitor{
                        [&](const StartContainer& a) { return Start(pod, a.container); },
                        [&](const SignalContainer& a) {
                          if (ContainerRuntime* rt = RuntimeOf(pod)) rt->Signal(a.ref, a.signal);
                          return false;
                        },
                        [&](const ReleaseContainer& a) {
                          if (ContainerRuntime* rt = RuntimeOf(pod)) rt->Release(a.ref);
                          return false;
                        },
                        [&](const ProbeContainer& a) {
                          SubmitProbe(pod, a);
                          return false;
                        },
                        [&](const KillPodCgroup&) {
                          if (pod.cgroup && cgroups_ != nullptr) {
                            cgroups_->KillAll(CgroupName(pod));
                          }
                          return false;
                        },
                        [&](const WritePodRecord&) {
                          Persist(pod);
                          return false;
                        },
                        [&](const LogPodEvent& a) {
                          Log(a.event, a.fields);
                          return false;
                        },
                        [&](const RemovePod&) {
                          RemovePodFiles(pod);
                          return false;
                        },
                    },
                    action);
}

bool PodManager::Start(PodState& pod, size_t i) {
  ContainerRuntime* rt = RuntimeOf(pod);
  if (rt == nullptr) {
    return Run(pod, lifecycle_.OnStartFailed(pod, i,
                                             "container " + pod.containers[i].spec.name +
                                                 ": this node has no " + pod.runtime + " runtime"));
  }
  if (std::string why = ContainerConfigError(pod, pod.containers[i], node_); !why.empty()) {
    return Run(pod, lifecycle_.OnStartFailed(pod, i, why, kCreateContainerConfigError));
  }
  if (ballast::Status s = WriteVolumes(pod); !s.ok()) {
    return Run(pod, lifecycle_.OnStartFailed(
                        pod, i, "container " + pod.containers[i].spec.name + ": " + s.message()));
  }
  PodFiles::ContainerFiles files;  // open until the runtime has started the container
  auto launch = PrepareLaunch(pod, pod.containers[i], &files);
  if (!launch.ok()) {
    return Run(pod, lifecycle_.OnStartFailed(pod, i,
                                             "container " + pod.containers[i].spec.name + ": " +
                                                 launch.status().message()));
  }
  auto ref = rt->Start(*launch);
  if (!ref.ok()) return Run(pod, lifecycle_.OnStartFailed(pod, i, ref.status().message()));
  // crash: a kill -9 with the process started and not yet in its pod's record.
  (void)failpoint::Hit("agent-pod-start-before-record");
  lifecycle_.OnCreated(pod, i, *ref);
  // Observe at once: a synchronous runtime reports it running (or already exited, and the
  // process runtime's exit status can be read only once).
  ContainerState& c = pod.containers[i];
  const ContainerObservation seen = rt->Observe(c.ref);
  return Run(pod, lifecycle_.OnFirstObservation(pod, i, seen, OomKills(pod, c, seen)));
}

int64_t PodManager::OomKills(const PodState& pod, const ContainerState& c,
                             const ContainerObservation& seen) const {
  if (!pod.cgroup || cgroups_ == nullptr || !PodLifecycle::UsesOomKills(c, seen)) return 0;
  return cgroups_->OomKills(CgroupName(pod));
}

ContainerLaunch PodManager::LaunchFor(PodState& pod, const ContainerState& c) {
  ContainerLaunch l = BuildLaunch(pod, c, node_);
  const bool in_image = pod.runtime != "process";
  if (l.uid && !in_image && !l.gid) {
    // runAsUser without runAsGroup: the user's primary group, as the node knows it.
    if (passwd* pw = ::getpwuid(*l.uid)) l.gid = pw->pw_gid;
  }
  return l;
}

Result<ContainerLaunch> PodManager::PrepareLaunch(PodState& pod, const ContainerState& c,
                                                  PodFiles::ContainerFiles* files) {
  ContainerLaunch l = LaunchFor(pod, c);
  if (pod.runtime != "process") return l;
  if (l.uid) AllowTraversalFor(pod);
  // The working directory below the pod's work directory (BuildLaunch keeps it inside).
  const std::string work = pod.dir + "/work";
  std::string relative;
  if (l.working_dir.rfind(work, 0) == 0) relative = l.working_dir.substr(work.size());
  auto opened =
      files_.PrepareContainer(pod.id, relative, LogFileName(pod.dir, c.spec.name, "stdout"),
                              LogFileName(pod.dir, c.spec.name, "stderr"), l.uid, l.gid);
  if (!opened.ok()) return opened.status();
  *files = std::move(*opened);
  for (const VolumeBind& m : ConfigVolumeMounts(pod, c, node_)) {
    if (ballast::Status s = files_.LinkMount(pod.id, m.target, m.source, l.uid, l.gid); !s.ok()) {
      return s;
    }
  }
  l.stdout_fd = files->stdout_fd.get();
  l.stderr_fd = files->stderr_fd.get();
  if (pod.cgroup && cgroups_ != nullptr) {
    auto procs = cgroups_->Create(CgroupName(pod), PodLimits(pod.desired));
    if (procs.ok()) l.cgroup_procs_files = *procs;
  }
  return l;
}

VolumeAccess PodManager::VolumeAccessOf(PodState& pod) {
  VolumeAccess access;
  access.digest_key = volume_key_;
  if (pod.runtime != "process") {
    // The container's user is the image's, unknown here; volumes/ (0700) keeps the node's
    // other users out, the bind mount lets the container in.
    access.dir_mode = 0755;
    return access;
  }
  if (!node_.agent_is_root) return access;  // the pod runs as the agent's user
  if (auto fs_group = FsGroup(pod.desired.template_.spec)) {
    // Every container holds it as a supplementary group (BuildLaunch); files get group read,
    // as kubelet gives them with an fsGroup.
    access.group = *fs_group;
    access.group_reads = true;
  } else if (!pod.containers.empty()) {
    const ContainerLaunch l = LaunchFor(pod, pod.containers.front());
    if (l.gid) {
      access.group = *l.gid;
    } else if (l.uid) {
      access.group = static_cast<gid_t>(*l.uid);
    }
  }
  return access;
}

ballast::Status PodManager::WriteVolumes(PodState& pod) {
  const auto volumes = model::ConfigVolumes(pod.desired.template_.spec);
  if (volumes.empty()) return ballast::Status::Ok();
  const VolumeAccess access = VolumeAccessOf(pod);
  ballast::Status first;
  for (const auto& v : volumes) {
    auto files = ProjectVolume(v, ConfigSource(pod, v.kind, v.object));
    if (!files.ok()) continue;  // its containers wait (ContainerConfigError says why)
    ballast::Status s =
        files_.WriteVolume(pod.id, v.name, *files, access, pod.runtime == "process");
    if (!s.ok() && first.ok()) first = s.WithContext("volume " + v.name);
  }
  return first;
}

void PodManager::AllowTraversalFor(const PodState& pod) {
  if (!node_.agent_is_root) return;
  if (ballast::Status s = AllowTraversal(options_.work_dir); !s.ok()) {
    Log("work_dir_traversal_failed", {{"pod", pod.id}, {"error", s.message()}});
  }
}

void PodManager::StopAll() {
  for (auto& [id, pod] : pods_) {
    if (!pod.terminating) Run(pod, lifecycle_.BeginStop(pod));
  }
}

bool PodManager::SuperviseContainer(PodState& pod, size_t i) {
  ContainerState& c = pod.containers[i];
  if (!c.active) return Run(pod, lifecycle_.Supervise(pod, i, nullptr, 0));
  ContainerRuntime* rt = RuntimeOf(pod);
  if (rt == nullptr) return false;  // cannot happen: active containers have a runtime
  const ContainerObservation seen = rt->Observe(c.ref);
  return Run(pod, lifecycle_.Supervise(pod, i, &seen, OomKills(pod, c, seen)));
}

void PodManager::SubmitProbe(const PodState& pod, const ProbeContainer& request) {
  const ContainerState& c = pod.containers[request.container];
  const model::Probe* probe = ContainerProbe(c.spec, request.kind);
  if (probe == nullptr) return;
  ProbeContext ctx = BuildProbeContext(pod, c, node_);
  if (pod.runtime != "process") {
    ContainerRuntime* rt = RuntimeOf(pod);
    ctx.exec = [rt, ref = c.ref](const std::vector<std::string>& command, int timeout_ms) {
      return rt->Exec(ref, {}, command, timeout_ms);
    };
  }
  ProbeResult result{pod.id, request.container, request.incarnation, request.kind, {}};
  workers_->Submit([probe = *probe, ctx = std::move(ctx), result, mu = results_mu_,
                    results = results_]() mutable {
    result.outcome = RunProbe(probe, ctx);
    std::lock_guard<std::mutex> lock(*mu);
    results->push_back(std::move(result));
  });
}

bool PodManager::ApplyProbeResults() {
  std::vector<ProbeResult> results;
  {
    std::lock_guard<std::mutex> lock(*results_mu_);
    results.swap(*results_);
  }
  bool changed = false;
  for (const auto& r : results) {
    auto it = pods_.find(r.pod_id);
    if (it == pods_.end()) continue;
    PodState& pod = it->second;
    changed =
        Run(pod, lifecycle_.OnProbeResult(pod, r.container, r.incarnation, r.kind, r.outcome)) ||
        changed;
  }
  return changed;
}

bool PodManager::Tick() {
  bool changed = ApplyProbeResults();
  for (auto it = pods_.begin(); it != pods_.end();) {
    PodState& pod = it->second;
    for (size_t i = 0; i < pod.containers.size(); ++i) {
      changed = SuperviseContainer(pod, i) || changed;
    }
    const PodActions stop = lifecycle_.SuperviseStop(pod);
    const bool removed = std::any_of(stop.list.begin(), stop.list.end(), [](const PodAction& a) {
      return std::holds_alternative<RemovePod>(a);
    });
    changed = Run(pod, stop) || changed;
    if (removed) {
      unsaved_.erase(pod.id);
      it = pods_.erase(it);
      continue;
    }
    ++it;
  }
  const int64_t now = clock_.NowMs();
  if (now - last_housekeeping_ms_ >= 1000) {
    last_housekeeping_ms_ = now;
    RotateLogs();
    RetryUnsavedRecords();
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

void PodManager::RemovePodFiles(const PodState& pod) {
  if (pod.cgroup && cgroups_ != nullptr) {
    cgroups_->KillAll(CgroupName(pod));
    cgroups_->Remove(CgroupName(pod));
  }
  // The record first: a crash in between never brings the pod back.
  if (ballast::Status s = store_.Remove(pod.id); !s.ok()) {
    Log("pod_remove_failed",
        {{"pod", pod.id}, {"path", store_.RecordPath(pod.id)}, {"error", s.message()}});
  }
  if (ballast::Status s = files_.Remove(pod.id); !s.ok()) {
    Log("pod_remove_failed", {{"pod", pod.id}, {"path", pod.dir}, {"error", s.message()}});
  }
}

void PodManager::Persist(const PodState& pod) {
  ballast::Status s = store_.Save(pod);
  if (s.ok()) {
    if (unsaved_.erase(pod.id) > 0) Log("pod_record_written", {{"pod", pod.id}});
    return;
  }
  // The record on disk stays the last one written; Tick writes it again.
  if (unsaved_.insert(pod.id).second) {
    Log("pod_record_write_failed", {{"pod", pod.id}, {"error", s.message()}});
  }
}

void PodManager::RetryUnsavedRecords() {
  const std::vector<std::string> ids(unsaved_.begin(), unsaved_.end());
  for (const auto& id : ids) {
    auto it = pods_.find(id);
    if (it == pods_.end()) {
      unsaved_.erase(id);
    } else {
      Persist(it->second);
    }
  }
}

void PodManager::RotateLogs() {
  for (const auto& [id, pod] : pods_) {
    for (const auto& c : pod.containers) {
      for (const char* stream : {"stdout", "stderr"}) {
        // Copy, then truncate: the process keeps its O_APPEND descriptor, which survives an
        // agent restart (a pipe to the agent would not).
        const std::string name = LogFileName(pod.dir, c.spec.name, stream);
        if (ballast::Status s = files_.RotateLog(id, name, options_.log_max_bytes); !s.ok()) {
          Log("log_rotate_failed",
              {{"pod", id}, {"path", pod.dir + "/logs/" + name}, {"error", s.message()}});
        }
      }
    }
  }
}

void PodManager::Publish() {
  std::vector<model::Pod> out;
  for (auto& [id, pod] : pods_) out.push_back(lifecycle_.Status(pod));
  std::lock_guard<std::mutex> lock(status_mu_);
  status_ = std::move(out);
}

std::vector<model::Pod> PodManager::Status() const {
  std::lock_guard<std::mutex> lock(status_mu_);
  return status_;
}

void PodManager::KillUnrecordedProcesses() {
  std::set<pid_t> known;
  for (const auto& [id, pod] : pods_) {
    for (const auto& c : pod.containers) {
      if (c.active && c.ref.pid > 0) known.insert(c.ref.pid);
    }
  }
  std::vector<pid_t> orphans;
  for (pid_t group : ProcessGroupsWithEnv("BALLAST_POD_DIR=" + node_.pods_root + "/")) {
    if (known.count(group) == 0 && group != ::getpgrp()) orphans.push_back(group);
  }
  // Their pod's record is gone or unreadable (deleted, truncated by a crash): nobody would ever
  // stop them, and they hold the pod's ports. SIGTERM, then SIGKILL what is left after 2 s.
  for (pid_t group : orphans) {
    Log("orphan_stopped", {{"process_group", std::to_string(group)},
                           {"reason", "no readable pod record in " + node_.pods_root}});
  }
  if (!orphans.empty()) StopGroups(orphans, std::chrono::seconds(2));
}

bool PodManager::AdoptContainer(PodState& pod, size_t i, const ContainerRef& recorded) {
  ContainerRef ref = recorded;
  ContainerRuntime* rt = RuntimeOf(pod);
  const bool known = ref.pid > 0 || !ref.id.empty();
  if (known && rt != nullptr && rt->Adopt(ref, LaunchFor(pod, pod.containers[i]))) {
    const int64_t oom_kills = pod.cgroup ? cgroups_->OomKills(CgroupName(pod)) : 0;
    Run(pod, lifecycle_.OnAdopted(pod, i, ref, oom_kills));
    return true;
  }
  lifecycle_.OnLost(pod, i);
  return false;
}

int PodManager::Restore() {
  int adopted = 0;
  for (auto& entry : store_.LoadAll()) {
    if (!entry.record.ok()) {
      Log("pod_record_unreadable",
          {{"path", entry.path}, {"error", entry.record.status().message()}});
      continue;
    }
    const PodRecord& record = *entry.record;
    PodState pod = lifecycle_.NewPod(record.desired, record.runtime);
    pod.dir = files_.DirOf(pod.id);
    ApplyRecord(record, pod);
    pod.cgroup = pod.cgroup && cgroups_ != nullptr && cgroups_->enforced();
    for (size_t i = 0; i < pod.containers.size(); ++i) {
      const ContainerRecord* saved = record.container(pod.containers[i].spec.name);
      if (saved != nullptr && AdoptContainer(pod, i, saved->ref)) {
        adopted++;
        // crash: a kill -9 with some pods adopted and the rest not yet read.
        (void)failpoint::Hit("agent-restore-after-adopt");
      }
      // A pod running as another user reaches its work directory again (the mode of WORK_DIR
      // may have been reset, e.g. by systemd's StateDirectoryMode).
      if (LaunchFor(pod, pod.containers[i]).uid) AllowTraversalFor(pod);
    }
    lifecycle_.ResumeStop(pod);
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
