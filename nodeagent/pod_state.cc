#include "nodeagent/pod_state.h"

#include <algorithm>
#include <csignal>

namespace ballast::nodeagent {
namespace {

constexpr ProbeKind kProbeKinds[] = {ProbeKind::kStartup, ProbeKind::kLiveness,
                                     ProbeKind::kReadiness};

bool RestartsAfter(const std::string& restart_policy, int exit_code) {
  if (restart_policy == "Never") return false;
  if (restart_policy == "OnFailure") return exit_code != 0;
  return true;  // Always
}

std::string RefText(const ContainerRef& ref) {
  return ref.id.empty() ? std::to_string(ref.pid) : ref.id;
}

}  // namespace

const model::Probe* ContainerProbe(const model::Container& c, ProbeKind kind) {
  const auto& p = kind == ProbeKind::kStartup    ? c.startup_probe
                  : kind == ProbeKind::kLiveness ? c.liveness_probe
                                                 : c.readiness_probe;
  return p ? &*p : nullptr;
}

ProbeState& ContainerState::probe(ProbeKind kind) {
  return kind == ProbeKind::kStartup    ? startup
         : kind == ProbeKind::kLiveness ? liveness
                                        : readiness;
}

const ProbeState& ContainerState::probe(ProbeKind kind) const {
  return kind == ProbeKind::kStartup    ? startup
         : kind == ProbeKind::kLiveness ? liveness
                                        : readiness;
}

std::string PodId(const agentapi::DesiredPod& pod) { return pod.namespace_ + "_" + pod.name; }

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

DesiredChange CompareDesired(const std::map<std::string, PodState>& pods,
                             const std::vector<agentapi::DesiredPod>& desired) {
  std::map<std::string, const agentapi::DesiredPod*> wanted;
  for (const auto& p : desired) wanted[PodId(p)] = &p;
  DesiredChange change;
  for (const auto& [id, pod] : pods) {
    auto it = wanted.find(id);
    bool same = it != wanted.end() && it->second->revision == pod.desired.revision &&
                it->second->template_ == pod.desired.template_;
    if (pod.terminating) continue;
    if (!same) {
      change.stop.push_back(id);
    } else {
      if (it->second->deployment != pod.desired.deployment) {
        change.deployment.emplace_back(id, it->second->deployment);  // bookkeeping only
      }
      if (it->second->draining != pod.desired.draining) {
        change.draining.emplace_back(id, it->second->draining);  // reported, nothing restarts
      }
      if (it->second->config != pod.desired.config) {
        change.config.emplace_back(id, it->second->config);
      }
    }
  }
  for (const auto& [id, pod] : wanted) {
    if (pods.count(id) == 0) change.start.push_back(pod);
  }
  return change;
}

PodLifecycle::PodLifecycle(const Clock& clock, Options options)
    : clock_(clock), options_(std::move(options)) {}

PodState PodLifecycle::NewPod(const agentapi::DesiredPod& desired, std::string runtime) const {
  PodState pod;
  pod.desired = desired;
  pod.id = PodId(desired);
  pod.runtime = std::move(runtime);
  pod.created_wall_ms = clock_.WallMs();
  for (const auto& spec : desired.template_.spec.containers) {
    ContainerState c;
    c.spec = spec;
    c.backoff = CrashLoopBackoff(options_.backoff);
    pod.containers.push_back(std::move(c));
  }
  return pod;
}

void PodLifecycle::PrepareStart(ContainerState& c) const {
  c.incarnation++;
  c.kill_deadline_ms = 0;
  c.kill_reason.clear();
  c.startup = c.liveness = c.readiness = ProbeState{};
  c.ready = false;
  c.started = false;
  c.started_ms = clock_.NowMs();
}

PodActions PodLifecycle::StartPod(PodState& pod) const {
  PodActions out;
  for (size_t i = 0; i < pod.containers.size(); ++i) {
    PrepareStart(pod.containers[i]);
    out.list.push_back(StartContainer{i});
  }
  out.list.push_back(WritePodRecord{});
  return out;
}

void PodLifecycle::OnCreated(PodState& pod, size_t i, const ContainerRef& ref) const {
  ContainerState& c = pod.containers[i];
  c.ref = ref;
  c.active = true;
  c.creating = true;
  c.state = "waiting";
  c.reason = "ContainerCreating";
  c.message.clear();
}

PodActions PodLifecycle::OnFirstObservation(PodState& pod, size_t i,
                                            const ContainerObservation& seen,
                                            int64_t oom_kills) const {
  PodActions out;
  out.changed = Transition(pod, i, seen, oom_kills, out);
  return out;
}

PodActions PodLifecycle::OnStartFailed(PodState& pod, size_t i, const std::string& message,
                                       const std::string& reason) const {
  PodActions out;
  OnStartFailure(pod, i, message, reason, out);
  out.changed = true;
  return out;
}

bool PodLifecycle::UsesOomKills(const ContainerState& c, const ContainerObservation& seen) {
  using Phase = ContainerObservation::Phase;
  return seen.phase == Phase::kExited || (seen.phase == Phase::kRunning && c.creating);
}

// Returns true when the container's state changed.
bool PodLifecycle::Transition(PodState& pod, size_t i, const ContainerObservation& seen,
                              int64_t oom_kills, PodActions& out) const {
  ContainerState& c = pod.containers[i];
  switch (seen.phase) {
    case ContainerObservation::Phase::kCreating:
      return false;
    case ContainerObservation::Phase::kStartFailed:
      OnStartFailure(pod, i, seen.message, seen.reason, out);
      return true;
    case ContainerObservation::Phase::kExited:
      if (c.creating) MarkRunning(pod, i, oom_kills, out);  // it ran, if only briefly
      OnExit(pod, i, seen, oom_kills, out);
      return true;
    case ContainerObservation::Phase::kRunning:
      if (!c.creating) return false;
      MarkRunning(pod, i, oom_kills, out);
      return true;
  }
  return false;
}

PodActions PodLifecycle::Supervise(PodState& pod, size_t i, const ContainerObservation* seen,
                                   int64_t oom_kills) const {
  PodActions out;
  ContainerState& c = pod.containers[i];
  const int64_t now = clock_.NowMs();
  if (c.active) {
    if (seen == nullptr) return out;
    out.changed = Transition(pod, i, *seen, oom_kills, out);
    if (seen->phase != ContainerObservation::Phase::kRunning) return out;
    if (c.kill_deadline_ms != 0 && now >= c.kill_deadline_ms) {
      out.list.push_back(SignalContainer{i, c.ref, SIGKILL});
    }
    if (!pod.terminating && c.kill_deadline_ms == 0) ScheduleProbes(pod, i, out);
    return out;
  }
  if (!pod.terminating && c.state == "waiting" && now >= c.restart_at_ms) {
    PrepareStart(c);
    out.list.push_back(StartContainer{i});
    out.list.push_back(WritePodRecord{});
    out.changed = true;
  }
  return out;
}

void PodLifecycle::MarkRunning(PodState& pod, size_t i, int64_t oom_kills, PodActions& out) const {
  ContainerState& c = pod.containers[i];
  const int64_t now = clock_.NowMs();
  if (c.ran_before) c.restarts++;
  c.ran_before = true;
  c.creating = false;
  c.image_failures = 0;
  c.state = "running";
  c.reason.clear();
  c.message.clear();
  c.started_ms = now;
  c.started_wall_ms = clock_.WallMs();
  c.oom_kills_at_start = pod.cgroup ? oom_kills : 0;
  out.list.push_back(LogPodEvent{"container_started",
                                 {{"pod", pod.id},
                                  {"container", c.spec.name},
                                  {"runtime", pod.runtime},
                                  {"id", RefText(c.ref)},
                                  {"restarts", std::to_string(c.restarts)}}});
  c.started = !c.spec.startup_probe.has_value();
  c.ready = c.started && !c.spec.readiness_probe.has_value();
  for (ProbeKind kind : kProbeKinds) {
    if (const model::Probe* p = ContainerProbe(c.spec, kind)) {
      c.probe(kind).next_at_ms = now + int64_t{p->initial_delay_seconds} * 1000;
    }
  }
  out.list.push_back(WritePodRecord{});
}

void PodLifecycle::OnStartFailure(PodState& pod, size_t i, const std::string& message,
                                  const std::string& reason, PodActions& out) const {
  ContainerState& c = pod.containers[i];
  const int64_t now = clock_.NowMs();
  if (c.active) out.list.push_back(ReleaseContainer{i, c.ref});
  c.active = false;
  c.creating = false;
  c.ref = ContainerRef{};
  if (reason == kCreateContainerConfigError) {
    // It never ran (no restart is counted); tried again after a back-off, as kubelet tries again
    // on its next sync, in case what it needs changed (an image's user, the agent's).
    out.list.push_back(LogPodEvent{
        "container_config_error",
        {{"pod", pod.id}, {"container", c.spec.name}, {"reason", reason}, {"message", message}}});
    c.state = pod.terminating ? "terminated" : "waiting";
    c.reason = reason;
    c.message = message;
    if (!pod.terminating) c.restart_at_ms = now + c.backoff.NextDelay(now, now);
    out.list.push_back(WritePodRecord{});
    return;
  }
  if (reason == "ErrImageNeverPull" || reason == "ErrImagePull") {
    // The image is missing: the container never ran, so no restart is counted. Kubernetes
    // shows ErrImagePull after a failed pull and ImagePullBackOff while it waits to retry;
    // ErrImageNeverPull stays (retrying helps only once someone loads the image).
    out.list.push_back(LogPodEvent{
        "image_unavailable",
        {{"pod", pod.id}, {"container", c.spec.name}, {"reason", reason}, {"message", message}}});
    c.state = "waiting";
    c.reason = reason == "ErrImagePull" && c.image_failures > 0 ? "ImagePullBackOff" : reason;
    c.message = message;
    c.image_failures++;
    if (pod.terminating) {
      c.state = "terminated";
    } else {
      c.restart_at_ms = now + c.backoff.NextDelay(now, now);
    }
    out.list.push_back(WritePodRecord{});
    return;
  }
  // Could not start: like a container that exited at once.
  if (c.ran_before) c.restarts++;
  c.ran_before = true;
  c.started_ms = now;
  ContainerObservation exit;
  exit.phase = ContainerObservation::Phase::kExited;
  exit.exit_code = 128;
  OnExit(pod, i, exit, 0, out);
  c.last_reason = "StartError";
  c.message = message;
}

void PodLifecycle::OnExit(PodState& pod, size_t i, const ContainerObservation& exit,
                          int64_t oom_kills, PodActions& out) const {
  ContainerState& c = pod.containers[i];
  const int64_t now = clock_.NowMs();
  if (c.active) out.list.push_back(ReleaseContainer{i, c.ref});
  std::string reason;
  if (!exit.known) {
    reason = "Unknown";
  } else if (exit.reason == "OOMKilled" ||
             (pod.cgroup && exit.signal == SIGKILL && oom_kills > c.oom_kills_at_start)) {
    reason = "OOMKilled";
  } else {
    reason = exit.exit_code == 0 ? "Completed" : "Error";
  }
  out.list.push_back(
      LogPodEvent{"container_exited",
                  {{"pod", pod.id},
                   {"container", c.spec.name},
                   {"exit_code", exit.known ? std::to_string(exit.exit_code) : "unknown"},
                   {"reason", reason},
                   {"message", c.kill_reason}}});
  c.ref = ContainerRef{};
  c.active = false;
  c.creating = false;
  c.ready = false;
  c.last_exit_code = exit.known ? exit.exit_code : 0;
  c.last_reason = reason;
  c.state = "terminated";
  c.reason = reason;
  std::string killed_because = std::move(c.kill_reason);
  c.message = killed_because;
  c.kill_deadline_ms = 0;
  c.kill_reason.clear();
  if (!pod.terminating &&
      RestartsAfter(pod.desired.template_.spec.restart_policy, exit.exit_code)) {
    int64_t delay = c.backoff.NextDelay(c.started_ms, now);
    c.state = "waiting";
    c.reason = "CrashLoopBackOff";
    c.message = "back-off " + std::to_string(delay / 1000) +
                "s restarting failed container=" + c.spec.name + " pod=" + pod.desired.name;
    if (!killed_because.empty()) c.message = killed_because + "; " + c.message;
    c.restart_at_ms = now + delay;
  }
  out.list.push_back(WritePodRecord{});
}

void PodLifecycle::ScheduleProbes(PodState& pod, size_t i, PodActions& out) const {
  ContainerState& c = pod.containers[i];
  const int64_t now = clock_.NowMs();
  for (ProbeKind kind : kProbeKinds) {
    const model::Probe* probe = ContainerProbe(c.spec, kind);
    if (probe == nullptr) continue;
    if ((kind == ProbeKind::kStartup) == c.started) continue;  // startup first, then the others
    ProbeState& st = c.probe(kind);
    if (st.in_flight || now < st.next_at_ms) continue;
    st.in_flight = true;
    int64_t period_ms = std::max<int64_t>(1, probe->period_seconds) * 1000;
    if (kind == ProbeKind::kReadiness && !st.ever_succeeded) {
      // A starting container usually fails its first readiness probe only because it does not
      // listen yet. Until the first success, retry after 100 ms, doubling up to the period, so a
      // pod turns Ready about when its app is up instead of a whole period later. Failures
      // before the first success change nothing (the container starts not ready); liveness and
      // startup probes keep their period, since their failures count towards a restart.
      period_ms = std::min(period_ms, int64_t{100} << std::min(st.failures, 10));
    }
    st.next_at_ms = now + period_ms;
    out.list.push_back(ProbeContainer{i, kind, c.incarnation});
  }
}

void PodLifecycle::KillForProbe(PodState& pod, size_t i, const model::Probe& probe,
                                const std::string& why, PodActions& out) const {
  ContainerState& c = pod.containers[i];
  int64_t grace = probe.termination_grace_period_seconds.value_or(
      pod.desired.template_.spec.termination_grace_period_seconds);
  c.kill_reason = why;
  c.kill_deadline_ms = clock_.NowMs() + grace * 1000;
  c.ready = false;
  out.list.push_back(SignalContainer{i, c.ref, SIGTERM});
  out.changed = true;
}

PodActions PodLifecycle::OnProbeResult(PodState& pod, size_t i, uint64_t incarnation,
                                       ProbeKind kind, const ProbeOutcome& outcome) const {
  PodActions out;
  if (i >= pod.containers.size()) return out;
  ContainerState& c = pod.containers[i];
  if (c.incarnation != incarnation || !c.active || c.creating) return out;
  const model::Probe* probe = ContainerProbe(c.spec, kind);
  if (probe == nullptr) return out;
  const int64_t now = clock_.NowMs();
  ProbeState& st = c.probe(kind);
  st.in_flight = false;
  if (outcome.success) {
    st.successes++;
    st.failures = 0;
    st.ever_succeeded = true;
  } else {
    st.failures++;
    st.successes = 0;
  }
  if (pod.terminating || c.kill_deadline_ms != 0) return out;
  const int failure_threshold = std::max(1, probe->failure_threshold);
  switch (kind) {
    case ProbeKind::kStartup:
      if (st.successes >= 1) {
        c.started = true;
        c.ready = !c.spec.readiness_probe.has_value();
        for (ProbeKind k : {ProbeKind::kLiveness, ProbeKind::kReadiness}) {
          if (const model::Probe* p = ContainerProbe(c.spec, k)) {
            c.probe(k).next_at_ms =
                std::max(now, c.started_ms + int64_t{p->initial_delay_seconds} * 1000);
          }
        }
        out.changed = true;
        out.list.push_back(WritePodRecord{});
      } else if (st.failures >= failure_threshold) {
        KillForProbe(pod, i, *probe,
                     "Container " + c.spec.name +
                         " failed startup probe, will be restarted: " + outcome.message,
                     out);
      }
      break;
    case ProbeKind::kLiveness:
      if (st.failures >= failure_threshold) {
        KillForProbe(pod, i, *probe,
                     "Container " + c.spec.name +
                         " failed liveness probe, will be restarted: " + outcome.message,
                     out);
      }
      break;
    case ProbeKind::kReadiness:
      if (!c.ready && st.successes >= std::max(1, probe->success_threshold)) {
        c.ready = true;
        out.changed = true;
        // Recorded, so that an agent restarted now reports the adopted pod still ready.
        out.list.push_back(WritePodRecord{});
      } else if (c.ready && st.failures >= failure_threshold) {
        c.ready = false;
        c.message = "Readiness probe failed: " + outcome.message;
        out.changed = true;
        out.list.push_back(WritePodRecord{});
      }
      break;
  }
  return out;
}

PodActions PodLifecycle::BeginStop(PodState& pod) const {
  PodActions out;
  const int64_t grace_seconds = pod.desired.template_.spec.termination_grace_period_seconds;
  out.list.push_back(LogPodEvent{
      "pod_stopping", {{"pod", pod.id}, {"grace_seconds", std::to_string(grace_seconds)}}});
  pod.terminating = true;
  pod.stop_deadline_ms = clock_.NowMs() + grace_seconds * 1000;
  for (size_t i = 0; i < pod.containers.size(); ++i) {
    ContainerState& c = pod.containers[i];
    c.ready = false;
    if (c.active) {
      out.list.push_back(SignalContainer{i, c.ref, SIGTERM});
    } else {
      c.state = "terminated";
    }
  }
  return out;
}

PodActions PodLifecycle::SuperviseStop(PodState& pod) const {
  PodActions out;
  if (!pod.terminating) return out;
  const bool running = std::any_of(pod.containers.begin(), pod.containers.end(),
                                   [](const ContainerState& c) { return c.active; });
  if (!running) {
    out.list.push_back(RemovePod{});
    out.list.push_back(LogPodEvent{"pod_stopped", {{"pod", pod.id}}});
    out.changed = true;
    return out;
  }
  if (clock_.NowMs() >= pod.stop_deadline_ms) {
    for (size_t i = 0; i < pod.containers.size(); ++i) {
      if (pod.containers[i].active) {
        out.list.push_back(SignalContainer{i, pod.containers[i].ref, SIGKILL});
      }
    }
    if (pod.cgroup) out.list.push_back(KillPodCgroup{});
  }
  return out;
}

PodActions PodLifecycle::OnAdopted(PodState& pod, size_t i, const ContainerRef& ref,
                                   int64_t oom_kills) const {
  ContainerState& c = pod.containers[i];
  PodActions out;
  c.ref = ref;
  c.active = true;
  out.list.push_back(LogPodEvent{"container_adopted",
                                 {{"pod", pod.id},
                                  {"container", c.spec.name},
                                  {"runtime", pod.runtime},
                                  {"id", RefText(ref)}}});
  c.state = "running";
  c.reason.clear();
  c.started_ms = clock_.NowMs();
  c.incarnation = 1;
  c.oom_kills_at_start = pod.cgroup ? oom_kills : 0;
  return out;
}

void PodLifecycle::OnLost(PodState& pod, size_t i) const {
  ContainerState& c = pod.containers[i];
  // What the record said of the run that is gone.
  c.ref = ContainerRef{};
  c.started = false;
  c.ready = false;
  c.started_wall_ms = 0;
  if (!c.ran_before) return;
  c.state = "waiting";
  c.reason = "CrashLoopBackOff";
  c.last_reason = "Unknown";
  c.message = "exited while the agent was not running";
  c.restart_at_ms = clock_.NowMs();
}

void PodLifecycle::ResumeStop(PodState& pod) const {
  if (!pod.terminating) return;
  pod.stop_deadline_ms =
      clock_.NowMs() + pod.desired.template_.spec.termination_grace_period_seconds * 1000;
}

model::Pod PodLifecycle::Report(const PodState& pod) const {
  model::Pod p;
  p.name = pod.desired.name;
  p.namespace_ = pod.desired.namespace_;
  p.deployment = pod.desired.deployment;
  p.revision = pod.desired.revision;
  p.node = options_.node_name;
  // A draining pod runs on, but is on its way out: a restarted reconciler must not count it.
  p.terminating = pod.terminating || pod.desired.draining;
  p.host_ports = pod.host_ports;
  p.created_ms = pod.created_wall_ms;
  for (const auto& c : pod.desired.template_.spec.containers) {
    if (c.ports.empty()) continue;
    auto it = pod.ports_by_number.find(c.ports[0].container_port);
    if (it != pod.ports_by_number.end()) {
      p.address = options_.node_address + ":" + std::to_string(it->second);
      break;
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

model::Pod PodLifecycle::Status(PodState& pod) const {
  const int64_t now = clock_.NowMs();
  model::Pod p = Report(pod);
  if (p.ready && pod.ready_since_ms == 0) pod.ready_since_ms = now;
  if (!p.ready) pod.ready_since_ms = 0;
  p.ready_since_ms = pod.ready_since_ms > 0 ? clock_.WallMs() - (now - pod.ready_since_ms) : 0;
  return p;
}

}  // namespace ballast::nodeagent
