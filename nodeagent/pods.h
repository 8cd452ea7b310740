#pragma once

// The agent's pod supervisor: runs each desired pod's containers through a ContainerRuntime
// (runtime.h: processes, or images through the Docker Engine API), restarts them with
// CrashLoopBackOff, runs probes, rotates logs, stops pods (SIGTERM, then SIGKILL after the
// grace period), records every pod in the work directory and adopts still-running containers
// after an agent restart.
//
// Threading: every method except Status() must be called from one thread (the agent's
// supervision loop). Probes run on a private worker pool and hand their results back to Tick().

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "agentapi/protocol.h"
#include "model/cluster.h"
#include "model/object.h"
#include "nodeagent/backoff.h"
#include "nodeagent/cgroups.h"
#include "clock/clock.h"
#include "nodeagent/probes.h"
#include "nodeagent/process_runtime.h"
#include "nodeagent/runtime.h"

namespace ballast::nodeagent {

// Receives one event per pod/container change ("container_started", {{"pod", ...}, ...}) for
// the operator's log. Called on the supervision thread.
using EventLog = std::function<void(
    std::string_view event, const std::vector<std::pair<std::string, std::string>>& fields)>;

struct PodManagerOptions {
  std::string node_name = "node";
  std::string node_address = "127.0.0.1";    // where pods' ports and probes bind
  std::string work_dir;                      // pods live in work_dir/pods/<namespace>_<name>
  int64_t log_max_bytes = 10 * 1024 * 1024;  // per stream; one rotated copy (.1) is kept
  BackoffPolicy backoff;
  int probe_threads = 4;
  EventLog log;  // may be empty
  // The container runtime for images (DockerRuntime); null: this node runs processes only.
  // Must outlive the manager.
  ContainerRuntime* image_runtime = nullptr;
  // Pods that could run either way (every container has an image and a command) run on the
  // image runtime when this is true.
  bool prefer_images = false;
  // "Never", "IfNotPresent" or "Always" overrides every container's imagePullPolicy; "" keeps
  // them (Kubernetes' default: Always for ":latest" or no tag, else IfNotPresent).
  std::string pull_policy;
};

// Which runtime a pod runs on: the `ballast.dev/runtime` annotation when set, else "docker"
// when a container has an image and no command (or every container has an image and
// `prefer_images`), else "process".
std::string PodRuntimeName(const model::PodTemplateSpec& template_spec, bool prefer_images);

class PodManager {
 public:
  // `clock` and `cgroups` (may be null: no limits) must outlive the manager.
  PodManager(PodManagerOptions options, const Clock& clock, Cgroups* cgroups);
  ~PodManager();  // leaves pods running (they are adopted by the next agent)
  PodManager(const PodManager&) = delete;
  PodManager& operator=(const PodManager&) = delete;

  // Loads the pods recorded in the work directory. Containers whose process still runs (same
  // pid and start time) are adopted; the others count a restart and start per restart policy.
  // Returns how many containers were adopted.
  int Restore();

  // Applies a complete desired set: starts pods not running yet, stops the ones not in it.
  // `services` give the pods' Service environment (read when a pod starts).
  void SetDesired(const std::vector<agentapi::DesiredPod>& pods,
                  const std::vector<agentapi::DesiredService>& services);

  // One round of supervision. Returns true when a pod's phase, readiness or restarts changed.
  bool Tick();

  // Every pod's status, as reported to the reconciler. Thread-safe (a copy made by Tick).
  std::vector<model::Pod> Status() const;

  // Begins stopping every pod (for `ballast agent --stop-pods-on-exit`); keep calling Tick()
  // until Empty().
  void StopAll();
  bool Empty() const { return pods_.empty(); }

  struct ProbeState {
    int64_t next_at_ms = 0;
    int successes = 0;
    int failures = 0;
    bool in_flight = false;
    bool ever_succeeded = false;  // since the container (re)started
  };
  struct ContainerRun {
    model::Container spec;
    ContainerRef ref;
    bool active = false;     // started (or starting) and not yet seen to end
    bool creating = false;   // started but the runtime does not report it running yet
    int image_failures = 0;  // consecutive failed image pulls (ImagePullBackOff)
    std::string state = "waiting";
    std::string reason = "ContainerCreating";
    std::string message;
    int32_t restarts = 0;
    int32_t last_exit_code = 0;
    std::string last_reason;
    int64_t started_ms = 0;  // monotonic
    int64_t started_wall_ms = 0;
    int64_t restart_at_ms = 0;  // while waiting in back-off
    CrashLoopBackoff backoff;
    uint64_t incarnation = 0;  // bumps on each start; stale probe results are dropped
    ProbeState startup, liveness, readiness;
    bool started = false;  // startup probe passed (or none)
    bool ready = false;
    bool ran_before = false;       // a start after this one is a restart
    int64_t kill_deadline_ms = 0;  // a liveness/startup kill in progress
    std::string kill_reason;
    int64_t oom_kills_at_start = 0;
  };
  struct PodRun {
    agentapi::DesiredPod desired;
    std::string id;                              // "<namespace>_<name>"
    std::string runtime;                         // "process" or "docker"
    std::string dir;                             // work_dir/pods/<id>
    std::map<std::string, int32_t> host_ports;   // port name (or number) -> host port
    std::map<int32_t, int32_t> ports_by_number;  // containerPort -> host port
    model::StringMap service_env;
    std::vector<ContainerRun> containers;
    int64_t created_wall_ms = 0;
    int64_t ready_since_ms = 0;  // monotonic (clock.NowMs); 0 while not ready
    bool terminating = false;
    int64_t stop_deadline_ms = 0;
    bool cgroup = false;
  };

 private:
  void StartPod(const agentapi::DesiredPod& desired,
                const std::vector<agentapi::DesiredService>& services);
  void StartContainer(PodRun& pod, ContainerRun& c);
  void MarkRunning(PodRun& pod, ContainerRun& c);
  void OnStartFailure(PodRun& pod, ContainerRun& c, const std::string& message,
                      const std::string& reason);
  void OnContainerExit(PodRun& pod, ContainerRun& c, const ContainerObservation& exit);
  ContainerRuntime* RuntimeOf(const PodRun& pod);
  // Restore(): stops process groups of this agent's pods that no record accounts for.
  void KillUnrecordedProcesses();
  ContainerLaunch BuildLaunch(PodRun& pod, ContainerRun& c, bool prepare);
  void BeginStop(PodRun& pod);
  bool SuperviseContainer(PodRun& pod, ContainerRun& c);
  void ScheduleProbes(PodRun& pod, ContainerRun& c);
  bool ApplyProbeResults();
  void RotateLogs();
  void Persist(const PodRun& pod) const;
  void Publish();
  void Log(std::string_view event, std::vector<std::pair<std::string, std::string>> fields) const {
    if (options_.log) options_.log(event, fields);
  }
  model::Pod Report(const PodRun& pod) const;

  struct ProbeResult {
    std::string pod_id;
    size_t container;
    uint64_t incarnation;
    int kind;  // 0 startup, 1 liveness, 2 readiness
    ProbeOutcome outcome;
  };

  PodManagerOptions options_;
  const Clock& clock_;
  Cgroups* cgroups_;
  ProcessRuntime process_runtime_;
  std::map<std::string, PodRun> pods_;  // by id
  std::string agent_path_;              // PATH handed to pods
  std::string pods_root_;               // work_dir/pods, canonical
  int64_t last_rotate_ms_ = 0;
  std::map<std::string, std::pair<std::string, bool>> last_reported_;  // id -> (phase, ready)

  std::shared_ptr<std::mutex> results_mu_ = std::make_shared<std::mutex>();
  std::shared_ptr<std::vector<ProbeResult>> results_ = std::make_shared<std::vector<ProbeResult>>();

  mutable std::mutex status_mu_;  // guards status_
  std::vector<model::Pod> status_;

  std::unique_ptr<WorkerPool> workers_;  // last: joined first on destruction
};

// A free TCP port on `address` (bound and released; the caller's process binds it next).
Result<int32_t> FreePort(const std::string& address);

}  // namespace ballast::nodeagent
