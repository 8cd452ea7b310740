#pragma once

// The seam between the pod supervisor (PodManager) and what actually runs a container: the
// process runtime (process_runtime.h: a process group on the node) and the Docker Engine API
// runtime (docker_runtime.h: a container of the pod's image). The pod state machine
// (pod_state.h) owns the Kubernetes semantics (restart policy, CrashLoopBackOff, probes, grace
// periods, reasons); a runtime only starts, observes, signals and removes one container at a
// time.
//
// Threading: Start, Observe, Signal, Adopt, Release and ListOrphans are called from the
// supervision thread; Exec from probe worker threads (it must be thread-safe).

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "model/object.h"
#include "model/status.h"
#include "nodeagent/probes.h"

namespace ballast::nodeagent {

struct PortMapping {
  int32_t container_port = 0;
  int32_t host_port = 0;  // on ContainerLaunch::host_ip
};

// Docker runtime: a host directory or file bind-mounted into the container (a configMap or
// secret volume, volume_files.h).
struct VolumeBind {
  std::string source;  // absolute host path
  std::string target;  // the mountPath
  bool read_only = true;
};

// Everything a runtime needs to start one container of a pod.
struct ContainerLaunch {
  // Identity: docker names and labels its containers with it, so a restarted agent finds them.
  std::string node;
  std::string pod_namespace;
  std::string pod_name;
  std::string pod_id;    // "<namespace>_<name>"
  std::string revision;  // the pod template hash
  std::string container;
  int32_t restart = 0;  // how many times this container was restarted before this start
  std::string image;
  std::string pull_policy;  // "Always", "IfNotPresent" or "Never"
  // Already $(VAR)-expanded. Process runtime: command + args are argv. Docker: command replaces
  // the image's entrypoint, args its cmd, as in Kubernetes.
  std::vector<std::string> command;
  std::vector<std::string> args;
  std::vector<std::string> env;  // "NAME=value", in order
  // Process runtime: the host directory to run in (exists). Docker: the directory inside the
  // image ("" = the image's).
  std::string working_dir;
  std::string hostname;
  std::string host_ip;  // node address the ports are published on
  std::vector<PortMapping> ports;
  int64_t memory_bytes = 0;  // 0: no limit
  int64_t cpu_millis = 0;    // 0: no limit
  std::string stdout_path;   // appended to (copy-truncate rotation keeps working)
  std::string stderr_path;
  // Process runtime: the log files already open for appending, used instead of the paths
  // (borrowed: valid while Start runs). -1: Start opens the paths.
  int stdout_fd = -1;
  int stderr_fd = -1;
  std::optional<uid_t> uid;
  std::optional<gid_t> gid;
  // Supplementary groups: the pod's fsGroup, which owns its volumes (as in Kubernetes).
  std::vector<gid_t> groups;
  std::vector<std::string> cgroup_procs_files;  // process runtime: join these cgroups
  // The container's securityContext (model::EffectiveSecurity) and the pod's pids limit, as each
  // runtime applies them: the process runtime through confinement.h and the pod's cgroup, the
  // docker runtime through the engine (CapAdd, CapDrop, SecurityOpt, ReadonlyRootfs, PidsLimit).
  std::vector<std::string> cap_add;  // canonical names: "CAP_NET_BIND_SERVICE", "ALL"
  std::vector<std::string> cap_drop;
  bool no_new_privileges = true;  // allowPrivilegeEscalation is not true
  bool read_only_root_filesystem = false;
  bool run_as_non_root = false;  // docker: checked against the image's user before it runs
  int64_t pids_limit = 0;        // 0: none
  // Docker runtime: the container's volumeMounts of configMap and secret volumes (the process
  // runtime links them below the pod's work directory before Start).
  std::vector<VolumeBind> binds;
};

// How the supervisor refers to a started container. Persisted in the pod's pod.json so a
// restarted agent can Adopt it.
struct ContainerRef {
  std::string id;  // docker: the container name (deterministic, see DockerRuntime)
  pid_t pid = 0;   // process runtime: process group leader
  uint64_t start_ticks = 0;
  bool adopted = false;  // not started by this agent process (not persisted)
  friend bool operator==(const ContainerRef&, const ContainerRef&) = default;
  model::Json ToJson() const;
  static ContainerRef FromJson(const model::Json& j);
};

// The waiting reason of a container that cannot start as it is configured (kubelet's): its
// securityContext asks for what cannot be given (runAsNonRoot for a root user, a field the
// runtime cannot honour).
inline constexpr char kCreateContainerConfigError[] = "CreateContainerConfigError";

struct ContainerObservation {
  enum class Phase {
    kCreating,     // asynchronous start still in progress (ContainerCreating)
    kRunning,      // its processes run
    kExited,       // it ended: see exit_code, signal, reason
    kStartFailed,  // it never ran: see error and reason
  };
  Phase phase = Phase::kCreating;
  int exit_code = 0;   // kExited: exit status, or 128 + signal as Kubernetes reports it
  int signal = 0;      // kExited: terminating signal when known
  bool known = true;   // kExited: false when the exit status could not be learned
  std::string reason;  // kExited: "OOMKilled" when the runtime knows; kStartFailed: a
                       // Kubernetes waiting reason ("ErrImageNeverPull", "ErrImagePull",
                       // kCreateContainerConfigError) or ""
  std::string message;
};

class ContainerRuntime {
 public:
  virtual ~ContainerRuntime() = default;

  // "process" or "docker".
  virtual std::string name() const = 0;

  // Starts a container. An error means it cannot start at all (e.g. no such executable); the
  // returned ref is watched through Observe. A runtime may start asynchronously (Observe then
  // says kCreating until it runs or fails).
  virtual Result<ContainerRef> Start(const ContainerLaunch& launch) = 0;

  // Where the container is now. Cheap: called on every supervision round.
  virtual ContainerObservation Observe(ContainerRef& ref) = 0;

  // Sends SIGTERM or SIGKILL to all of the container's processes.
  virtual void Signal(const ContainerRef& ref, int signal) = 0;

  // Re-attaches to a container recorded before an agent restart (`launch` as for Start, for
  // logs and limits). False when it no longer exists; when it exists, Observe tells whether
  // it still runs.
  virtual bool Adopt(ContainerRef& ref, const ContainerLaunch& launch) = 0;

  // After kExited or kStartFailed, or when the pod goes away: frees what the container leaves
  // behind (the rest of a process group, a stopped docker container).
  virtual void Release(const ContainerRef& ref) = 0;

  // Runs an exec probe's command in the container. `base` carries the process runtime's env,
  // cwd and user. Thread-safe.
  virtual ProbeOutcome Exec(const ContainerRef& ref, const ProcessSpec& base,
                            const std::vector<std::string>& command, int timeout_ms) = 0;

  // Removes what this runtime holds for the node but no pod knows any more (containers left by
  // pods deleted while the agent was down). `known` are the ids still in use.
  virtual void RemoveOrphans(const std::set<std::string>& known) { (void)known; }
};

}  // namespace ballast::nodeagent
