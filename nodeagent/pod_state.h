#pragma once

// The node agent's pod state machine, with Kubernetes' semantics: which pods start and stop when
// the desired set changes, when an ended container restarts (restartPolicy, CrashLoopBackOff,
// ImagePullBackOff), what probe outcomes mean (startup, liveness, readiness; the kill of a
// container that fails them), when a stopping pod's grace period is over, and the status
// reported to the reconciler.
//
// Pure: no files, processes or threads. Time comes from the Clock; the rest comes in as events
// (the runtime started a container or could not, what the runtime observes of it, a probe's
// outcome, the pod is no longer wanted) and goes out as PodActions, which the executor
// (pods.h) performs in order: start a container, signal it, run a probe, write the pod's record,
// log an event, remove the pod. Each event changes the PodState it is given before the actions
// are performed, so an action always sees the state after the whole event.
//
// Threading: a PodLifecycle is immutable; the PodStates belong to the caller.

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "agentapi/protocol.h"
#include "clock/clock.h"
#include "model/cluster.h"
#include "model/object.h"
#include "nodeagent/backoff.h"
#include "nodeagent/probes.h"
#include "nodeagent/runtime.h"

namespace ballast::nodeagent {

enum class ProbeKind { kStartup, kLiveness, kReadiness };

struct ProbeState {
  int64_t next_at_ms = 0;  // monotonic
  int successes = 0;       // consecutive
  int failures = 0;        // consecutive
  bool in_flight = false;
  bool ever_succeeded = false;  // since the container (re)started
};

struct ContainerState {
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
  int64_t restart_at_ms = 0;  // monotonic; while waiting in back-off
  CrashLoopBackoff backoff;
  uint64_t incarnation = 0;  // bumps on each start; stale probe results are dropped
  ProbeState startup, liveness, readiness;
  bool started = false;  // startup probe passed (or none)
  bool ready = false;
  bool ran_before = false;       // a start after this one is a restart
  int64_t kill_deadline_ms = 0;  // monotonic; a liveness/startup kill in progress
  std::string kill_reason;
  int64_t oom_kills_at_start = 0;  // the pod cgroup's OOM kill count when it began running

  ProbeState& probe(ProbeKind kind);
  const ProbeState& probe(ProbeKind kind) const;
};

struct PodState {
  agentapi::DesiredPod desired;
  std::string id;                              // "<namespace>_<name>"
  std::string runtime;                         // "process" or "docker"
  std::string dir;                             // work_dir/pods/<id>
  std::map<std::string, int32_t> host_ports;   // port name (or number) -> host port
  std::map<int32_t, int32_t> ports_by_number;  // containerPort -> host port
  model::StringMap service_env;
  std::vector<ContainerState> containers;
  int64_t created_wall_ms = 0;
  int64_t ready_since_ms = 0;  // monotonic; 0 while not ready
  bool terminating = false;
  int64_t stop_deadline_ms = 0;  // monotonic
  bool cgroup = false;           // its processes run in a cgroup of their own
};

// The container's probe of `kind`; null when it has none.
const model::Probe* ContainerProbe(const model::Container& c, ProbeKind kind);

// The pod's id, and the name of its directory: "<namespace>_<name>".
std::string PodId(const agentapi::DesiredPod& pod);

// Which runtime a pod runs on: the `ballast.dev/runtime` annotation when set, else "docker"
// when a container has an image and no command (or every container has an image and
// `prefer_images`), else "process".
std::string PodRuntimeName(const model::PodTemplateSpec& template_spec, bool prefer_images);

// What the executor does. Containers are named by their index in PodState::containers.

// Start the container, whose state is already reset for the new run: report back with
// OnCreated and OnFirstObservation, or OnStartFailed.
struct StartContainer {
  size_t container = 0;
};
// Send `signal` to every process of the container `ref` names.
struct SignalContainer {
  size_t container = 0;
  ContainerRef ref;
  int signal = 0;
};
// Free what the ended container `ref` left behind (the rest of its process group, a stopped
// docker container).
struct ReleaseContainer {
  size_t container = 0;
  ContainerRef ref;
};
// Run the container's probe of `kind` once and report with OnProbeResult (with `incarnation`).
struct ProbeContainer {
  size_t container = 0;
  ProbeKind kind = ProbeKind::kStartup;
  uint64_t incarnation = 0;
};
// SIGKILL every process in the pod's cgroup.
struct KillPodCgroup {};
// Write the pod's record (pod.json), so that a restarted agent adopts what runs.
struct WritePodRecord {};
// Log an event for the operator.
struct LogPodEvent {
  std::string event;
  std::vector<std::pair<std::string, std::string>> fields;
};
// The pod has stopped: free its cgroup and directory and forget it.
struct RemovePod {};

using PodAction = std::variant<StartContainer, SignalContainer, ReleaseContainer, ProbeContainer,
                               KillPodCgroup, WritePodRecord, LogPodEvent, RemovePod>;

struct PodActions {
  std::vector<PodAction> list;  // in order
  bool changed = false;         // the pod's phase, readiness or restarts may have changed
};

// What a complete desired set means for the pods that run, by id.
struct DesiredChange {
  std::vector<std::string> stop;  // not wanted any more, or wanted with another template
  std::vector<const agentapi::DesiredPod*> start;  // wanted and not running; into the desired set
  std::vector<std::pair<std::string, std::string>> deployment;  // id -> new deployment name
  std::vector<std::pair<std::string, bool>> draining;           // id -> new draining flag
  // id -> the ConfigMaps and Secrets it reads, when they changed (for its later container
  // starts; what a running process's environment holds cannot change).
  std::vector<std::pair<std::string, std::vector<agentapi::PodConfigSource>>> config;
};
DesiredChange CompareDesired(const std::map<std::string, PodState>& pods,
                             const std::vector<agentapi::DesiredPod>& desired);

class PodLifecycle {
 public:
  struct Options {
    BackoffPolicy backoff;
    std::string node_name = "node";
    std::string node_address = "127.0.0.1";  // where pods' ports are reached
  };
  // `clock` must outlive the lifecycle.
  PodLifecycle(const Clock& clock, Options options);

  // A pod to run: its containers from the template, none started. The caller fills in what the
  // node gives it (directory, host ports, Service environment, cgroup) before StartPod.
  PodState NewPod(const agentapi::DesiredPod& desired, std::string runtime) const;
  // Starts every container of a new pod.
  PodActions StartPod(PodState& pod) const;

  // The runtime accepted the start of container `i` (StartContainer) as `ref`.
  void OnCreated(PodState& pod, size_t i, const ContainerRef& ref) const;
  // What the runtime observed of container `i` right after OnCreated. `oom_kills` is the pod
  // cgroup's OOM kill count when UsesOomKills says so (0 otherwise).
  PodActions OnFirstObservation(PodState& pod, size_t i, const ContainerObservation& seen,
                                int64_t oom_kills) const;
  // The runtime could not start container `i` at all (no such executable, no such runtime):
  // like a container that exited at once. With `reason` kCreateContainerConfigError it may not
  // start as configured: it waits with that reason and message, no restart counted, and is tried
  // again after a back-off.
  PodActions OnStartFailed(PodState& pod, size_t i, const std::string& message,
                           const std::string& reason = "") const;

  // One round of supervision of container `i`. `seen` is what the runtime observes now of an
  // active container (required while `active`, ignored otherwise); `oom_kills` as above.
  // Transitions (running, ended, failed to start), the SIGKILL of a container whose probe kill
  // is past its deadline, probes that are due, the restart of a container whose back-off is
  // over.
  PodActions Supervise(PodState& pod, size_t i, const ContainerObservation* seen,
                       int64_t oom_kills) const;
  // Whether the transition for `seen` reads the pod cgroup's OOM kill count: when the container
  // is seen to end, or to run for the first time. The executor reads it only then.
  static bool UsesOomKills(const ContainerState& c, const ContainerObservation& seen);

  // A probe of container `i` answered. Results of an earlier run of the container are dropped.
  PodActions OnProbeResult(PodState& pod, size_t i, uint64_t incarnation, ProbeKind kind,
                           const ProbeOutcome& outcome) const;

  // The pod is no longer wanted: SIGTERM to its containers; SuperviseStop does the rest.
  PodActions BeginStop(PodState& pod) const;
  // One round for a terminating pod, after its containers' rounds: removed once none runs;
  // past the grace period, SIGKILL to what is left.
  PodActions SuperviseStop(PodState& pod) const;

  // After an agent restart, for a pod read back from its record (pod_store.h): container `i`
  // still runs as `ref` and is adopted; or it no longer runs (Lost); or the pod was stopping
  // (ResumeStop: its grace period starts again).
  PodActions OnAdopted(PodState& pod, size_t i, const ContainerRef& ref, int64_t oom_kills) const;
  void OnLost(PodState& pod, size_t i) const;
  void ResumeStop(PodState& pod) const;

  // The pod's status as reported to the reconciler. Status also times readiness (monotonic,
  // ready_since_ms) and reports it as a wall time by its age, so that a step of the node's wall
  // clock neither ages nor rejuvenates a ready pod.
  model::Pod Report(const PodState& pod) const;
  model::Pod Status(PodState& pod) const;

 private:
  void PrepareStart(ContainerState& c) const;
  bool Transition(PodState& pod, size_t i, const ContainerObservation& seen, int64_t oom_kills,
                  PodActions& out) const;
  void MarkRunning(PodState& pod, size_t i, int64_t oom_kills, PodActions& out) const;
  void OnStartFailure(PodState& pod, size_t i, const std::string& message,
                      const std::string& reason, PodActions& out) const;
  void OnExit(PodState& pod, size_t i, const ContainerObservation& exit, int64_t oom_kills,
              PodActions& out) const;
  void ScheduleProbes(PodState& pod, size_t i, PodActions& out) const;
  void KillForProbe(PodState& pod, size_t i, const model::Probe& probe, const std::string& why,
                    PodActions& out) const;

  const Clock& clock_;
  Options options_;
};

}  // namespace ballast::nodeagent
