#pragma once

// Child processes, as the agent runs pods and `ballast dev` runs the reconciler and agents: each
// in its own session and process group, stdout/stderr appended to files, optionally placed in
// cgroups and switched to another user before exec; signalled, reaped and stopped (SIGTERM,
// then SIGKILL after a grace period) by process group. Plain POSIX/Linux; no threads of its own.

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "model/status.h"
#include "nodeagent/confinement.h"

namespace ballast::nodeagent {

struct ProcessSpec {
  std::string executable;         // absolute path (see ResolveExecutable)
  std::vector<std::string> argv;  // argv[0] included
  std::vector<std::string> env;   // "NAME=value", the whole environment
  std::string cwd;
  // Opened O_APPEND (so copy-truncate rotation works), created 0640; a symlink or anything but a
  // regular file there is refused. "": /dev/null.
  std::string stdout_path;
  std::string stderr_path;
  // When not -1, the child's stdout / stderr instead of the paths: a descriptor open for
  // appending, borrowed (the caller closes it after SpawnProcess returns). The agent opens pods'
  // log files relative to their directory (pod_files.h) and passes them here.
  int stdout_fd = -1;
  int stderr_fd = -1;
  std::optional<uid_t> uid;   // switch to this user before exec; requires root
  std::optional<gid_t> gid;   // and group (without a uid: the group alone); requires root
  std::vector<gid_t> groups;  // supplementary groups (fsGroup) with a uid or gid; else none
  // Capabilities, no_new_privs and seccomp filter applied before exec (confinement.h); none when
  // unset (for `ballast dev`'s own processes).
  std::optional<Confinement> confinement;
  // Files such as ".../cgroup.procs" the child writes its pid to before exec.
  std::vector<std::string> cgroup_procs_files;
  // When not 0, the child receives this signal when the thread that started it dies
  // (PR_SET_PDEATHSIG), so it never outlives its parent: for helpers such as `ballast dev`'s
  // reconciler and agents, never for pods (which outlive an agent restart).
  int parent_death_signal = 0;
};

// Starts the process: a new session (so its process group id is its pid), stdin /dev/null,
// signals reset, every other descriptor closed, confined as `spec.confinement` says. Returns the
// pid once exec succeeded; an exec failure is an error naming the executable and errno text.
Result<pid_t> SpawnProcess(const ProcessSpec& spec);

// `name` as is when it contains '/', else searched in `path_env` (colon-separated).
// NotFound when there is no such executable file.
Result<std::string> ResolveExecutable(const std::string& name, const std::string& path_env);

// Field 22 of /proc/PID/stat (start time in clock ticks since boot); 0 when there is no such
// process or it is a zombie. With the pid it identifies a process across pid reuse.
uint64_t ProcessStartTime(pid_t pid);

struct ExitInfo {
  int exit_code = 0;  // the exit status, or 128 + signal as Kubernetes reports it
  int signal = 0;     // terminating signal, 0 when it exited normally
};

// Reaps the child `pid` if it has exited (WNOHANG). std::nullopt while it runs. A pid that is
// not our child (adopted) gives std::nullopt too; use ProcessStartTime for those.
std::optional<ExitInfo> TryReap(pid_t pid);

struct ReapedChild {
  pid_t pid = 0;
  ExitInfo exit;
};
// Reaps one exited child, whichever it is (WNOHANG); std::nullopt when none has exited. For a
// process that reaps all its children in one place, such as a child subreaper (which also
// inherits orphans). Do not mix with TryReap on the same children.
std::optional<ReapedChild> ReapAnyChild();

// The live (not zombie) processes whose parent is this process: its children and, for a child
// subreaper (PR_SET_CHILD_SUBREAPER), the orphans re-parented to it. Scans /proc.
std::vector<pid_t> ChildProcesses();

// kill(-pgid, sig); true when at least one member received it.
bool SignalGroup(pid_t pgid, int sig);
// True while a live (not zombie) process of the group exists. Scans /proc.
bool GroupAlive(pid_t pgid);

// Stops process groups: SIGTERM to each, in the order given, then SIGKILL to those that still
// have a live process once `grace` has passed. Returns the groups that were killed. Blocks until
// every group is gone or the grace period is over (polling every 50 ms); reaps nothing.
std::vector<pid_t> StopGroups(const std::vector<pid_t>& groups, std::chrono::milliseconds grace);

// The process groups of every live process whose environment has an entry beginning with
// `entry_prefix` ("NAME=value-prefix"). Scans /proc; processes it may not read are skipped.
std::vector<pid_t> ProcessGroupsWithEnv(const std::string& entry_prefix);

// Runs `argv` to completion with a deadline (for exec probes): its own process group, killed
// with SIGKILL at the deadline. Returns the exit code; DeadlineExceeded on timeout.
Result<int> RunWithTimeout(const ProcessSpec& spec, int timeout_ms);

}  // namespace ballast::nodeagent
