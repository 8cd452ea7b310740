#include "nodeagent/process_runtime.h"

#include <signal.h>
#include <unistd.h>

#include "nodeagent/process.h"

namespace ballast::nodeagent {

model::Json ContainerRef::ToJson() const {
  model::Json j = model::Json::object();
  if (!id.empty()) j["id"] = id;
  if (pid > 0) {
    j["pid"] = pid;
    j["startTicks"] = start_ticks;
  }
  return j;
}

ContainerRef ContainerRef::FromJson(const model::Json& j) {
  ContainerRef ref;
  if (!j.is_object()) return ref;
  ref.id = j.value("id", "");
  ref.pid = j.value("pid", 0);
  ref.start_ticks = j.value("startTicks", uint64_t{0});
  return ref;
}

Confinement ProcessConfinement(const ContainerLaunch& launch, bool agent_is_root) {
  const bool root = launch.uid ? *launch.uid == 0 : agent_is_root;
  return ContainerConfinement(launch.cap_add, launch.cap_drop, !launch.no_new_privileges, root);
}

Result<ContainerRef> ProcessRuntime::Start(const ContainerLaunch& launch) {
  std::vector<std::string> argv = launch.command;
  argv.insert(argv.end(), launch.args.begin(), launch.args.end());
  if (argv.empty()) {
    return InvalidArgument("container " + launch.container +
                           ": no command or args (the process runtime does not run images)");
  }
  std::string path_env;
  for (const auto& e : launch.env) {
    if (e.rfind("PATH=", 0) == 0) path_env = e.substr(5);
  }
  auto exe = ResolveExecutable(argv[0], path_env);
  if (!exe.ok()) return exe.status();
  ProcessSpec ps;
  ps.executable = *exe;
  ps.argv = std::move(argv);
  ps.env = launch.env;
  ps.cwd = launch.working_dir;
  ps.stdout_path = launch.stdout_path;
  ps.stderr_path = launch.stderr_path;
  ps.stdout_fd = launch.stdout_fd;
  ps.stderr_fd = launch.stderr_fd;
  ps.uid = launch.uid;
  ps.gid = launch.gid;
  ps.groups = launch.groups;
  ps.cgroup_procs_files = launch.cgroup_procs_files;
  ps.confinement = ProcessConfinement(launch, ::geteuid() == 0);
  auto pid = SpawnProcess(ps);
  if (!pid.ok()) return pid.status();
  ContainerRef ref;
  ref.pid = *pid;
  ref.start_ticks = ProcessStartTime(*pid);
  return ref;
}

ContainerObservation ProcessRuntime::Observe(ContainerRef& ref) {
  ContainerObservation o;
  o.phase = ContainerObservation::Phase::kRunning;
  if (ref.pid <= 0) {
    o.phase = ContainerObservation::Phase::kExited;
    o.known = false;
    return o;
  }
  if (ref.adopted) {
    // Not our child: its exit status is lost, only its disappearance can be seen.
    if (ProcessStartTime(ref.pid) != ref.start_ticks) {
      o.phase = ContainerObservation::Phase::kExited;
      o.known = false;
    }
  } else if (auto exit = TryReap(ref.pid)) {
    o.phase = ContainerObservation::Phase::kExited;
    o.exit_code = exit->exit_code;
    o.signal = exit->signal;
  }
  return o;
}

void ProcessRuntime::Signal(const ContainerRef& ref, int signal) {
  if (ref.pid > 0) SignalGroup(ref.pid, signal);
}

bool ProcessRuntime::Adopt(ContainerRef& ref, const ContainerLaunch&) {
  if (ref.pid <= 0 || ref.start_ticks == 0 || ProcessStartTime(ref.pid) != ref.start_ticks) {
    return false;
  }
  ref.adopted = true;
  return true;
}

void ProcessRuntime::Release(const ContainerRef& ref) {
  if (ref.pid > 0) SignalGroup(ref.pid, SIGKILL);  // no orphans: the rest of its group
}

ProbeOutcome ProcessRuntime::Exec(const ContainerRef&, const ProcessSpec& base,
                                  const std::vector<std::string>& command, int timeout_ms) {
  return RunExecProbe(base, command, timeout_ms);
}

}  // namespace ballast::nodeagent
