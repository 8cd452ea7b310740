#pragma once

// The agent's pod supervisor: performs what the pod state machine (pod_state.h) decides. It
// runs each desired pod's containers through a ContainerRuntime (runtime.h: processes, or
// images through the Docker Engine API), hands them host ports, directories and cgroups, runs
// their probes, rotates their logs, stops pods (SIGTERM, then SIGKILL after the grace period),
// records every pod in the work directory (pod_store.h) and adopts still-running containers
// after an agent restart. A pod's own files (pod_files.h) and the records the agent trusts are
// separate trees of the work directory (work_dir.h).
//
// Threading: every method except Status() must be called from one thread (the agent's
// supervision loop). Probes run on a private worker pool and hand their results back to Tick().

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "agentapi/protocol.h"
#include "clock/clock.h"
#include "model/cluster.h"
#include "model/object.h"
#include "nodeagent/backoff.h"
#include "nodeagent/cgroups.h"
#include "nodeagent/container_launch.h"
#include "nodeagent/pod_files.h"
#include "nodeagent/pod_state.h"
#include "nodeagent/pod_store.h"
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
  std::string node_address = "127.0.0.1";  // where pods' ports and probes bind
  // Pods' files live in work_dir/pods/<pod>, their records in work_dir/state/pods/<pod>
  // (work_dir.h; <pod>: PodDirName of "<namespace>_<name>").
  std::string work_dir;
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
  // A pod record that could not be written is written again (at most once a second) until it
  // is; the failure and the recovery are logged ("pod_record_write_failed",
  // "pod_record_written"), and the record on disk meanwhile is the last one written.
  bool Tick();

  // Every pod's status, as reported to the reconciler. Thread-safe (a copy made by Tick).
  std::vector<model::Pod> Status() const;

  // Begins stopping every pod (for `ballast agent --stop-pods-on-exit`); keep calling Tick()
  // until Empty().
  void StopAll();
  bool Empty() const { return pods_.empty(); }

 private:
  struct ProbeResult {
    std::string pod_id;
    size_t container = 0;
    uint64_t incarnation = 0;
    ProbeKind kind = ProbeKind::kStartup;
    ProbeOutcome outcome;
  };

  // Performs the actions in order; true when the pod's report may have changed.
  bool Run(PodState& pod, const PodActions& actions);
  bool Perform(PodState& pod, const PodAction& action);
  bool Start(PodState& pod, size_t i);
  void StartPod(const agentapi::DesiredPod& desired,
                const std::vector<agentapi::DesiredService>& services);
  void AllocatePorts(PodState& pod);
  bool SuperviseContainer(PodState& pod, size_t i);
  int64_t OomKills(const PodState& pod, const ContainerState& c,
                   const ContainerObservation& seen) const;
  ContainerRuntime* RuntimeOf(const PodState& pod);
  // The launch of container `c` (as recorded, for adoption).
  ContainerLaunch LaunchFor(PodState& pod, const ContainerState& c);
  // The launch of container `c` about to start, with its directories, file owners, log files
  // (held open in `files` until it started) and cgroup; or why it cannot start.
  Result<ContainerLaunch> PrepareLaunch(PodState& pod, const ContainerState& c,
                                        PodFiles::ContainerFiles* files);
  // Writes the pod's configMap and secret volumes (volume_files.h) from what the reconciler
  // sent; a volume whose object or key is missing keeps what it held (the containers that
  // mount it wait: ContainerConfigError). The first error writing one, if any.
  ballast::Status WriteVolumes(PodState& pod);
  // Who reads the pod's volumes: a process pod's fsGroup, else its first container's group.
  VolumeAccess VolumeAccessOf(PodState& pod);
  // A pod running as another user must reach its work directory (work_dir.h).
  void AllowTraversalFor(const PodState& pod);
  void SubmitProbe(const PodState& pod, const ProbeContainer& probe);
  bool ApplyProbeResults();
  void RemovePodFiles(const PodState& pod);
  void Persist(const PodState& pod);
  void RetryUnsavedRecords();
  void RotateLogs();
  void Publish();
  bool AdoptContainer(PodState& pod, size_t i, const ContainerRef& recorded);
  // Restore(): stops process groups of this agent's pods that no record accounts for.
  void KillUnrecordedProcesses();
  void Log(std::string_view event,
           const std::vector<std::pair<std::string, std::string>>& fields) const {
    if (options_.log) options_.log(event, fields);
  }

  PodManagerOptions options_;
  const Clock& clock_;
  Cgroups* cgroups_;
  LaunchNode node_;
  std::string volume_key_;  // VolumeAccess::digest_key: random, this process's
  PodLifecycle lifecycle_;
  PodStore store_;
  PodFiles files_;
  ProcessRuntime process_runtime_;
  std::map<std::string, PodState> pods_;  // by id
  std::set<std::string> unsaved_;         // pods whose record could not be written
  int64_t last_housekeeping_ms_ = 0;      // log rotation, record retries
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
