#include "nodeagent/process.h"

#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <set>
#include <sstream>
#include <thread>

namespace ballast::nodeagent {
namespace {

// Async-signal-safe decimal formatting for the child.
size_t FormatPid(pid_t pid, char* buf) {
  char tmp[24];
  size_t n = 0;
  auto v = static_cast<unsigned long>(pid);
  do {
    tmp[n++] = static_cast<char>('0' + v % 10);
    v /= 10;
  } while (v != 0);
  for (size_t i = 0; i < n; ++i) buf[i] = tmp[n - 1 - i];
  return n;
}

[[noreturn]] void ChildFail(int err_fd, int err) {
  ssize_t ignored = ::write(err_fd, &err, sizeof err);
  (void)ignored;
  ::_exit(127);
}

struct Fd {
  int fd = -1;
  Fd() = default;
  explicit Fd(int f) : fd(f) {}
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
};

}  // namespace

Result<std::string> ResolveExecutable(const std::string& name, const std::string& path_env) {
  if (name.empty()) return InvalidArgument("empty command");
  auto is_exec = [](const std::string& p) {
    struct stat st;
    return ::stat(p.c_str(), &st) == 0 && S_ISREG(st.st_mode) && ::access(p.c_str(), X_OK) == 0;
  };
  if (name.find('/') != std::string::npos) {
    if (is_exec(name)) return name;
    return NotFound("executable \"" + name + "\" not found or not executable");
  }
  std::stringstream dirs(path_env.empty() ? "/usr/local/bin:/usr/bin:/bin" : path_env);
  std::string dir;
  while (std::getline(dirs, dir, ':')) {
    std::string candidate = (dir.empty() ? "." : dir) + "/" + name;
    if (is_exec(candidate)) return candidate;
  }
  return NotFound("executable \"" + name + "\" not found in $PATH");
}

namespace {

// What the child of SpawnProcess needs, prepared before fork (the child may only make
// async-signal-safe calls).
struct ChildSetup {
  const ProcessSpec* spec = nullptr;
  pid_t parent = 0;
  int in = -1, out = -1, err = -1;
  const std::vector<int>* cgroup_fds = nullptr;
  const PreparedConfinement* confinement = nullptr;  // null: none
  int error_pipe = -1;  // the child writes its errno here when it fails before exec
  char* const* argv = nullptr;
  char* const* envp = nullptr;
};

[[noreturn]] void RunChild(const ChildSetup& c) {
  const ProcessSpec& spec = *c.spec;
  if (::setsid() < 0) ChildFail(c.error_pipe, errno);
  if (spec.parent_death_signal != 0) {
    if (::prctl(PR_SET_PDEATHSIG, spec.parent_death_signal) != 0) ChildFail(c.error_pipe, errno);
    // The parent may have died before prctl: then nobody would ever send the signal.
    if (::getppid() != c.parent) ChildFail(c.error_pipe, ESRCH);
  }
  for (int fd : *c.cgroup_fds) {
    char buf[24];
    size_t n = FormatPid(::getpid(), buf);
    if (::write(fd, buf, n) < 0) ChildFail(c.error_pipe, errno);
  }
  if (::dup2(c.in, 0) < 0 || ::dup2(c.out, 1) < 0 || ::dup2(c.err, 2) < 0) {
    ChildFail(c.error_pipe, errno);
  }
  sigset_t all;
  sigemptyset(&all);
  ::sigprocmask(SIG_SETMASK, &all, nullptr);
  for (int s = 1; s < NSIG; ++s) {
    if (s != SIGKILL && s != SIGSTOP) ::signal(s, SIG_DFL);
  }
  if (c.confinement != nullptr) {
    if (int e = c.confinement->BeforeUserChange(); e != 0) ChildFail(c.error_pipe, e);
  }
  if (spec.uid || spec.gid) {
    gid_t gid = spec.gid.value_or(static_cast<gid_t>(spec.uid.value_or(0)));
    if (::setgroups(spec.groups.size(), spec.groups.empty() ? nullptr : spec.groups.data()) != 0 ||
        ::setgid(gid) != 0 || (spec.uid && ::setuid(*spec.uid) != 0)) {
      ChildFail(c.error_pipe, errno);
    }
  }
  if (c.confinement != nullptr) {
    if (int e = c.confinement->AfterUserChange(); e != 0) ChildFail(c.error_pipe, e);
  }
  if (!spec.cwd.empty() && ::chdir(spec.cwd.c_str()) != 0) ChildFail(c.error_pipe, errno);
  // Everything above 2 closes on exec (the error pipe included).
  ::close_range(3, ~0U, CLOSE_RANGE_CLOEXEC);
  ::execve(spec.executable.c_str(), c.argv, c.envp);
  ChildFail(c.error_pipe, errno);
}

// `path` opened for appending (created 0640), never through a symlink, and only a regular file;
// /dev/null for "". -1 with errno set when it cannot be.
int OpenLogFile(const std::string& path) {
  if (path.empty()) return ::open("/dev/null", O_WRONLY | O_CLOEXEC);
  // O_NONBLOCK: a FIFO put there cannot block the open; cleared below.
  Fd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC,
               0640));
  struct stat st {};
  if (fd.fd < 0 || ::fstat(fd.fd, &st) != 0) return -1;
  if (!S_ISREG(st.st_mode)) {
    errno = EINVAL;
    return -1;
  }
  if (::fcntl(fd.fd, F_SETFL, O_APPEND) != 0) return -1;
  const int out = fd.fd;
  fd.fd = -1;
  return out;
}

// Descriptors closed on every path out.
struct FdList {
  std::vector<int> fds;
  ~FdList() {
    for (int fd : fds) ::close(fd);
  }
};

}  // namespace

Result<pid_t> SpawnProcess(const ProcessSpec& spec) {
  if (spec.argv.empty()) return InvalidArgument("no argv");
  std::vector<char*> argv;
  for (const auto& a : spec.argv) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  std::vector<char*> envp;
  for (const auto& e : spec.env) envp.push_back(const_cast<char*>(e.c_str()));
  envp.push_back(nullptr);

  Fd in(::open("/dev/null", O_RDONLY | O_CLOEXEC));
  if (in.fd < 0) return Internal(std::string("open /dev/null: ") + std::strerror(errno));
  // A pod's log files come open (the agent opened them relative to the pod's directory).
  Fd out(spec.stdout_fd >= 0 ? -1 : OpenLogFile(spec.stdout_path));
  Fd err(spec.stderr_fd >= 0 ? -1 : OpenLogFile(spec.stderr_path));
  const int out_fd = spec.stdout_fd >= 0 ? spec.stdout_fd : out.fd;
  const int err_fd = spec.stderr_fd >= 0 ? spec.stderr_fd : err.fd;
  if (out_fd < 0 || err_fd < 0) {
    const std::string& path = out_fd < 0 ? spec.stdout_path : spec.stderr_path;
    return Internal("open " + path + " for " + spec.executable + ": " + std::strerror(errno));
  }
  FdList cgroups;
  for (const auto& f : spec.cgroup_procs_files) {
    int fd = ::open(f.c_str(), O_WRONLY | O_CLOEXEC);
    if (fd < 0) return Internal("open " + f + ": " + std::strerror(errno));
    cgroups.fds.push_back(fd);
  }
  std::unique_ptr<PreparedConfinement> confinement;
  if (spec.confinement) {
    auto prepared = PreparedConfinement::Prepare(*spec.confinement);
    if (!prepared.ok()) return prepared.status();
    confinement = std::move(*prepared);
  }
  int pipe_fds[2];
  if (::pipe2(pipe_fds, O_CLOEXEC) != 0)
    return Internal(std::string("pipe: ") + std::strerror(errno));
  Fd err_read(pipe_fds[0]), err_write(pipe_fds[1]);

  const ChildSetup setup{&spec,        ::getpid(),        in.fd,        out_fd,      err_fd,
                         &cgroups.fds, confinement.get(), err_write.fd, argv.data(), envp.data()};
  pid_t pid = ::fork();
  if (pid < 0) return Internal(std::string("fork: ") + std::strerror(errno));
  if (pid == 0) RunChild(setup);
  ::close(err_write.fd);
  err_write.fd = -1;
  int child_errno = 0;
  ssize_t n;
  do {
    n = ::read(err_read.fd, &child_errno, sizeof child_errno);
  } while (n < 0 && errno == EINTR);
  if (n > 0) {
    int status;
    ::waitpid(pid, &status, 0);
    return Status(StatusCode::kFailedPrecondition,
                  "start " + spec.executable + ": " + std::strerror(child_errno));
  }
  return pid;
}

uint64_t ProcessStartTime(pid_t pid) {
  if (pid <= 0) return 0;
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  if (!std::getline(in, line)) return 0;
  // The command name (field 2) may hold spaces and parentheses: parse after the last ')'.
  size_t close = line.rfind(')');
  if (close == std::string::npos) return 0;
  std::istringstream rest(line.substr(close + 2));
  std::string field;
  char state = 0;
  rest >> state;
  if (state == 'Z' || state == 'X') return 0;
  // Fields 4..21 then starttime (22): 18 fields after the state.
  for (int i = 0; i < 18; ++i) rest >> field;
  uint64_t start = 0;
  rest >> start;
  return start;
}

namespace {

ExitInfo ExitInfoOf(int wait_status) {
  ExitInfo info;
  if (WIFEXITED(wait_status)) {
    info.exit_code = WEXITSTATUS(wait_status);
  } else if (WIFSIGNALED(wait_status)) {
    info.signal = WTERMSIG(wait_status);
    info.exit_code = 128 + info.signal;
  }
  return info;
}

// waitpid(pid, WNOHANG), retried on EINTR: the reaped pid, or 0 / -1 as waitpid.
pid_t WaitNoHang(pid_t pid, int* status) {
  pid_t r;
  do {
    r = ::waitpid(pid, status, WNOHANG);
  } while (r < 0 && errno == EINTR);
  return r;
}

}  // namespace

std::optional<ExitInfo> TryReap(pid_t pid) {
  int status = 0;
  if (WaitNoHang(pid, &status) != pid) return std::nullopt;
  return ExitInfoOf(status);
}

std::optional<ReapedChild> ReapAnyChild() {
  int status = 0;
  const pid_t pid = WaitNoHang(-1, &status);
  if (pid <= 0) return std::nullopt;
  return ReapedChild{pid, ExitInfoOf(status)};
}

bool SignalGroup(pid_t pgid, int sig) { return pgid > 1 && ::kill(-pgid, sig) == 0; }

namespace {

struct ProcStat {
  char state = 0;
  pid_t ppid = 0;
  pid_t pgrp = 0;
  bool live() const { return state != 0 && state != 'Z' && state != 'X'; }
};

// State, parent and process group of /proc/PID/stat (`proc_dir`); state 0 when unreadable.
ProcStat ReadProcStat(const std::filesystem::path& proc_dir) {
  std::ifstream in(proc_dir / "stat");
  std::string line;
  ProcStat st;
  if (!std::getline(in, line)) return st;
  // The command name (field 2) may hold spaces and parentheses: parse after the last ')'.
  size_t close = line.rfind(')');
  if (close == std::string::npos) return st;
  std::istringstream rest(line.substr(close + 2));
  if (!(rest >> st.state >> st.ppid >> st.pgrp)) st.state = 0;
  return st;
}

bool IsPidDir(const std::filesystem::path& p) {
  const std::string name = p.filename().string();
  return !name.empty() && name[0] >= '1' && name[0] <= '9';
}

}  // namespace

bool GroupAlive(pid_t pgid) {
  if (pgid <= 1 || ::kill(-pgid, 0) != 0) return false;
  // kill() also reaches zombies that nobody reaped yet; those are dead for our purpose.
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator("/proc", ec)) {
    if (!IsPidDir(entry.path())) continue;
    const ProcStat st = ReadProcStat(entry.path());
    if (st.live() && st.pgrp == pgid) return true;
  }
  return false;
}

std::vector<pid_t> ChildProcesses() {
  std::vector<pid_t> out;
  const pid_t self = ::getpid();
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator("/proc", ec)) {
    if (!IsPidDir(entry.path())) continue;
    const ProcStat st = ReadProcStat(entry.path());
    if (st.live() && st.ppid == self) {
      out.push_back(static_cast<pid_t>(std::stol(entry.path().filename().string())));
    }
  }
  return out;
}

std::vector<pid_t> StopGroups(const std::vector<pid_t>& groups, std::chrono::milliseconds grace) {
  for (pid_t group : groups) SignalGroup(group, SIGTERM);
  const auto deadline = std::chrono::steady_clock::now() + grace;
  std::vector<pid_t> alive = groups;
  while (true) {
    std::erase_if(alive, [](pid_t group) { return !GroupAlive(group); });
    if (alive.empty() || std::chrono::steady_clock::now() >= deadline) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  for (pid_t group : alive) SignalGroup(group, SIGKILL);
  return alive;
}

std::vector<pid_t> ProcessGroupsWithEnv(const std::string& entry_prefix) {
  std::set<pid_t> groups;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator("/proc", ec)) {
    if (!IsPidDir(entry.path())) continue;
    std::ifstream env_in(entry.path() / "environ", std::ios::binary);
    bool match = false;
    for (std::string item; !match && std::getline(env_in, item, '\0');) {
      match = item.compare(0, entry_prefix.size(), entry_prefix) == 0;
    }
    if (!match) continue;
    const ProcStat st = ReadProcStat(entry.path());
    if (st.live() && st.pgrp > 1) groups.insert(st.pgrp);
  }
  return {groups.begin(), groups.end()};
}

Result<int> RunWithTimeout(const ProcessSpec& spec, int timeout_ms) {
  auto pid = SpawnProcess(spec);
  if (!pid.ok()) return pid.status();
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  auto pause = std::chrono::milliseconds(1);
  while (true) {
    if (auto exit = TryReap(*pid)) {
      SignalGroup(*pid, SIGKILL);  // leftovers of the group
      return exit->exit_code;
    }
    if (std::chrono::steady_clock::now() >= deadline) {
      SignalGroup(*pid, SIGKILL);
      int status;
      ::waitpid(*pid, &status, 0);
      return Status(StatusCode::kDeadlineExceeded,
                    spec.executable + " timed out after " + std::to_string(timeout_ms) + " ms");
    }
    std::this_thread::sleep_for(pause);
    pause = std::min(pause * 2, std::chrono::milliseconds(20));
  }
}

}  // namespace ballast::nodeagent
