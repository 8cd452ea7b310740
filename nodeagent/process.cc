#include "nodeagent/process.h"

#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
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

Result<pid_t> SpawnProcess(const ProcessSpec& spec) {
  if (spec.argv.empty()) return InvalidArgument("no argv");
  std::vector<char*> argv;
  for (const auto& a : spec.argv) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  std::vector<char*> envp;
  for (const auto& e : spec.env) envp.push_back(const_cast<char*>(e.c_str()));
  envp.push_back(nullptr);

  auto open_log = [](const std::string& path) {
    if (path.empty()) return ::open("/dev/null", O_WRONLY | O_CLOEXEC);
    return ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
  };
  Fd in(::open("/dev/null", O_RDONLY | O_CLOEXEC));
  Fd out(open_log(spec.stdout_path));
  Fd err(open_log(spec.stderr_path));
  if (in.fd < 0 || out.fd < 0 || err.fd < 0) {
    return Internal("open log files for " + spec.executable + ": " + std::strerror(errno));
  }
  std::vector<int> cgroup_fds;
  for (const auto& f : spec.cgroup_procs_files) {
    int fd = ::open(f.c_str(), O_WRONLY | O_CLOEXEC);
    if (fd < 0) {
      for (int c : cgroup_fds) ::close(c);
      return Internal("open " + f + ": " + std::strerror(errno));
    }
    cgroup_fds.push_back(fd);
  }
  struct CloseAll {
    std::vector<int>& fds;
    ~CloseAll() {
      for (int c : fds) ::close(c);
    }
  } close_cgroups{cgroup_fds};
  int pipe_fds[2];
  if (::pipe2(pipe_fds, O_CLOEXEC) != 0)
    return Internal(std::string("pipe: ") + std::strerror(errno));
  Fd err_read(pipe_fds[0]), err_write(pipe_fds[1]);

  pid_t pid = ::fork();
  if (pid < 0) return Internal(std::string("fork: ") + std::strerror(errno));
  if (pid == 0) {
    // Child: only async-signal-safe calls from here to exec.
    if (::setsid() < 0) ChildFail(err_write.fd, errno);
    for (int c : cgroup_fds) {
      char buf[24];
      size_t n = FormatPid(::getpid(), buf);
      if (::write(c, buf, n) < 0) ChildFail(err_write.fd, errno);
    }
    if (::dup2(in.fd, 0) < 0 || ::dup2(out.fd, 1) < 0 || ::dup2(err.fd, 2) < 0) {
      ChildFail(err_write.fd, errno);
    }
    sigset_t all;
    sigemptyset(&all);
    ::sigprocmask(SIG_SETMASK, &all, nullptr);
    for (int s = 1; s < NSIG; ++s) {
      if (s != SIGKILL && s != SIGSTOP) ::signal(s, SIG_DFL);
    }
    if (spec.uid) {
      gid_t gid = spec.gid.value_or(static_cast<gid_t>(*spec.uid));
      if (::setgroups(0, nullptr) != 0 || ::setgid(gid) != 0 || ::setuid(*spec.uid) != 0) {
        ChildFail(err_write.fd, errno);
      }
    }
    if (!spec.cwd.empty() && ::chdir(spec.cwd.c_str()) != 0) ChildFail(err_write.fd, errno);
    // Everything above 2 closes on exec (the error pipe included).
    ::close_range(3, ~0U, CLOSE_RANGE_CLOEXEC);
    ::execve(spec.executable.c_str(), argv.data(), envp.data());
    ChildFail(err_write.fd, errno);
  }
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

std::optional<ExitInfo> TryReap(pid_t pid) {
  int status = 0;
  pid_t r;
  do {
    r = ::waitpid(pid, &status, WNOHANG);
  } while (r < 0 && errno == EINTR);
  if (r != pid) return std::nullopt;
  ExitInfo info;
  if (WIFEXITED(status)) {
    info.exit_code = WEXITSTATUS(status);
  } else if (WIFSIGNALED(status)) {
    info.signal = WTERMSIG(status);
    info.exit_code = 128 + info.signal;
  }
  return info;
}

bool SignalGroup(pid_t pgid, int sig) { return pgid > 1 && ::kill(-pgid, sig) == 0; }

namespace {

// State and process group of /proc/PID/stat (`proc_dir`); false when unreadable.
bool ReadStateAndGroup(const std::filesystem::path& proc_dir, char* state, pid_t* pgrp) {
  std::ifstream in(proc_dir / "stat");
  std::string line;
  if (!std::getline(in, line)) return false;
  // The command name (field 2) may hold spaces and parentheses: parse after the last ')'.
  size_t close = line.rfind(')');
  if (close == std::string::npos) return false;
  std::istringstream rest(line.substr(close + 2));
  pid_t ppid = 0;
  return static_cast<bool>(rest >> *state >> ppid >> *pgrp);
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
    char state = 0;
    pid_t pgrp = 0;
    if (ReadStateAndGroup(entry.path(), &state, &pgrp) && pgrp == pgid && state != 'Z' &&
        state != 'X') {
      return true;
    }
  }
  return false;
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
    char state = 0;
    pid_t pgrp = 0;
    if (match && ReadStateAndGroup(entry.path(), &state, &pgrp) && pgrp > 1 && state != 'Z' &&
        state != 'X') {
      groups.insert(pgrp);
    }
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
