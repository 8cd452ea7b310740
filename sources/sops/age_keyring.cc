#include "sources/sops/age_keyring.h"

#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <sstream>

extern char** environ;

namespace ballast::sops {
namespace {

constexpr size_t kMaxWrappedBytes = 8 << 10;  // armored X25519: ~350 bytes; ML-KEM: ~2.6 KB
constexpr size_t kMaxOutBytes = 64 << 10;
constexpr size_t kMaxCacheEntries = 4096;  // unwrapped keys
constexpr size_t kMaxFailures = 1024;      // stanzas age refused, kept apart from the keys
// New stanzas age cannot open (anyone can write them for a public recipient): at most this many
// runs of age a minute, then refused without one, so a flood of files costs seconds, not hours.
constexpr size_t kMaxFailedRunsPerMinute = 64;

struct Run {
  int exit_code = -1;
  std::string out;
  std::string err;
};

// `name` in the absolute directories of PATH (an empty or relative entry would make the
// current directory's files candidates), as the shell would find it; NotFound otherwise.
Result<std::string> FindTool(const std::string& name) {
  if (name.find('/') != std::string::npos) return name;
  const char* path = std::getenv("PATH");
  std::string dirs = path != nullptr ? path : "/usr/bin:/bin";
  size_t start = 0;
  while (start <= dirs.size()) {
    size_t end = dirs.find(':', start);
    if (end == std::string::npos) end = dirs.size();
    const std::string dir = dirs.substr(start, end - start);
    start = end + 1;
    if (dir.empty() || dir[0] != '/') continue;
    const std::string candidate = dir + "/" + name;
    struct stat st {};
    if (::stat(candidate.c_str(), &st) == 0 && S_ISREG(st.st_mode) &&
        ::access(candidate.c_str(), X_OK) == 0) {
      return candidate;
    }
  }
  return NotFound("cannot find " + name + " in PATH (Debian's package `age` provides it)");
}

// Runs `argv` (argv[0] an absolute path) with `input` on its stdin and `identity_fd` as its
// descriptor 3, in a bare environment (PATH only), and collects at most kMaxOutBytes of each
// output. Killed after `timeout_ms`.
Result<Run> RunTool(const std::vector<std::string>& argv, const std::string& input, int identity_fd,
                    int timeout_ms) {
  int in[2], out[2], err[2];
  if (::pipe2(in, O_CLOEXEC) != 0) return Unavailable(std::string("pipe: ") + strerror(errno));
  if (::pipe2(out, O_CLOEXEC) != 0) {
    ::close(in[0]);
    ::close(in[1]);
    return Unavailable(std::string("pipe: ") + strerror(errno));
  }
  if (::pipe2(err, O_CLOEXEC) != 0) {
    for (int fd : {in[0], in[1], out[0], out[1]}) ::close(fd);
    return Unavailable(std::string("pipe: ") + strerror(errno));
  }
  localfs::UniqueFd in_r(in[0]), in_w(in[1]), out_r(out[0]), out_w(out[1]), err_r(err[0]),
      err_w(err[1]);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, in_r.get(), 0);
  posix_spawn_file_actions_adddup2(&actions, out_w.get(), 1);
  posix_spawn_file_actions_adddup2(&actions, err_w.get(), 2);
  posix_spawn_file_actions_adddup2(&actions, identity_fd, 3);
  // Nothing else of this process's (listening sockets, state files) reaches the tool.
  posix_spawn_file_actions_addclosefrom_np(&actions, 4);
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  const char* path = std::getenv("PATH");
  std::string path_env = std::string("PATH=") + (path != nullptr ? path : "/usr/bin:/bin");
  char* envp[] = {path_env.data(), nullptr};
  pid_t pid = 0;
  int rc = ::posix_spawn(&pid, args[0], &actions, nullptr, args.data(), envp);
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0) {
    return Unavailable("cannot run " + argv[0] + ": " + strerror(rc) +
                       " (Debian's package `age` provides it)");
  }
  in_r.reset();
  out_w.reset();
  err_w.reset();
  Run run;
  size_t written = 0;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  bool timed_out = false;
  ::fcntl(in_w.get(), F_SETFL, O_NONBLOCK);
  if (input.empty()) in_w.reset();
  while (out_r.valid() || err_r.valid()) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                    deadline - std::chrono::steady_clock::now())
                    .count();
    if (left <= 0) {
      timed_out = true;
      break;
    }
    pollfd fds[3];
    int n = 0;
    int out_at = -1, err_at = -1, in_at = -1;
    if (out_r.valid()) fds[out_at = n++] = {out_r.get(), POLLIN, 0};
    if (err_r.valid()) fds[err_at = n++] = {err_r.get(), POLLIN, 0};
    if (in_w.valid()) fds[in_at = n++] = {in_w.get(), POLLOUT, 0};
    int ready = ::poll(fds, static_cast<nfds_t>(n), static_cast<int>(left));
    if (ready < 0 && errno != EINTR) break;
    if (ready <= 0) continue;
    if (in_at >= 0 && fds[in_at].revents != 0) {
      // A tool that exits before reading all of its input must not take this process down
      // with SIGPIPE: blocked for this write, and a pending one taken back.
      sigset_t pipe_only, old;
      sigemptyset(&pipe_only);
      sigaddset(&pipe_only, SIGPIPE);
      pthread_sigmask(SIG_BLOCK, &pipe_only, &old);
      ssize_t w = ::write(in_w.get(), input.data() + written, input.size() - written);
      const int write_errno = errno;
      if (w < 0 && write_errno == EPIPE) {
        const timespec zero{0, 0};
        sigtimedwait(&pipe_only, nullptr, &zero);
      }
      pthread_sigmask(SIG_SETMASK, &old, nullptr);
      errno = write_errno;
      if (w > 0) written += static_cast<size_t>(w);
      if (w < 0 && errno != EAGAIN && errno != EINTR) written = input.size();
      if (written == input.size()) in_w.reset();
    }
    auto drain = [&](localfs::UniqueFd& fd, std::string& into, int at) {
      if (at < 0 || fds[at].revents == 0) return;
      char buf[4096];
      ssize_t r = ::read(fd.get(), buf, sizeof buf);
      if (r > 0) {
        const size_t room = kMaxOutBytes - std::min(kMaxOutBytes, into.size());
        into.append(buf, std::min(static_cast<size_t>(r), room));
      } else if (r == 0 || (errno != EAGAIN && errno != EINTR)) {
        fd.reset();
      }
    };
    drain(out_r, run.out, out_at);
    drain(err_r, run.err, err_at);
  }
  if (timed_out) ::kill(pid, SIGKILL);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (timed_out) {
    return Status(StatusCode::kDeadlineExceeded,
                  argv[0] + " did not finish within " + std::to_string(timeout_ms) + " ms");
  }
  run.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return run;
}

std::string FirstLine(const std::string& s) {
  std::string line = s.substr(0, s.find('\n'));
  if (line.size() > 300) line.resize(300);
  return line;
}

std::string Join(const std::vector<std::string>& v) {
  std::string out;
  for (const auto& s : v) out += (out.empty() ? "" : ", ") + s;
  return out;
}

}  // namespace

Result<std::unique_ptr<AgeKeyring>> AgeKeyring::Open(const std::string& identity_file,
                                                     AgeOptions options) {
  auto fd = localfs::OpenFile(identity_file, O_RDONLY);
  if (!fd.ok()) return InvalidArgument("--age-identity-file: " + fd.status().message());
  struct stat st {};
  if (::fstat(fd->get(), &st) != 0) {
    return InvalidArgument("--age-identity-file: " + identity_file + ": " + strerror(errno));
  }
  if (st.st_uid != ::geteuid() && st.st_uid != 0) {
    return InvalidArgument("--age-identity-file: " + identity_file + " is owned by another user (" +
                           localfs::DescribeOwner(st) + ")");
  }
  if ((st.st_mode & (S_IRWXG | S_IRWXO)) != 0) {
    return InvalidArgument("--age-identity-file: " + identity_file +
                           " can be read or written by its group or others (" +
                           localfs::DescribeOwner(st) + "); chmod 600 it");
  }
  for (std::string* tool : {&options.age, &options.age_keygen}) {
    auto found = FindTool(*tool);
    if (!found.ok()) return Unavailable("--age-identity-file: " + found.status().message());
    *tool = std::move(*found);
  }
  std::unique_ptr<AgeKeyring> ring(new AgeKeyring(identity_file, std::move(*fd), options));
  auto run =
      RunTool({options.age_keygen, "-y", "/dev/fd/3"}, "", ring->fd_.get(), options.timeout_ms);
  if (!run.ok()) return run.status().WithContext("--age-identity-file");
  if (run->exit_code != 0) {
    return InvalidArgument("--age-identity-file: " + identity_file +
                           " holds no age identity that age-keygen reads: " + FirstLine(run->err));
  }
  std::istringstream lines(run->out);
  for (std::string line; std::getline(lines, line);) {
    if (line.rfind("age1", 0) == 0) ring->recipients_.push_back(line);
  }
  if (ring->recipients_.empty()) {
    return InvalidArgument("--age-identity-file: " + identity_file + " holds no age identity");
  }
  return ring;
}

Result<std::string> AgeKeyring::DataKey(const std::vector<model::SopsAgeStanza>& stanzas) const {
  std::vector<std::string> named;
  std::vector<const model::SopsAgeStanza*> ours;
  for (const auto& s : stanzas) {
    named.push_back(s.recipient);
    if (std::find(recipients_.begin(), recipients_.end(), s.recipient) != recipients_.end()) {
      ours.push_back(&s);
    }
  }
  if (ours.empty()) {
    return PermissionDenied("encrypted for " + Join(named) + "; the identity file " + path_ +
                            " holds " + Join(recipients_) + " only");
  }
  Status last = Status::Ok();
  for (const model::SopsAgeStanza* s : ours) {
    if (s->enc.size() > kMaxWrappedBytes) {
      last = InvalidArgument("the age stanza for " + s->recipient + " is larger than " +
                             std::to_string(kMaxWrappedBytes) + " bytes");
      continue;
    }
    {
      std::lock_guard lock(mu_);
      if (auto it = keys_.find(s->enc); it != keys_.end()) return it->second;
      if (auto it = failures_.find(s->enc); it != failures_.end()) {
        last = it->second;
        continue;
      }
    }
    {
      std::lock_guard lock(mu_);
      const auto now = std::chrono::steady_clock::now();
      while (!recent_failures_.empty() &&
             now - recent_failures_.front() > std::chrono::minutes(1)) {
        recent_failures_.pop_front();
      }
      if (recent_failures_.size() >= kMaxFailedRunsPerMinute) {
        return ResourceExhausted("more than " + std::to_string(kMaxFailedRunsPerMinute) +
                                 " age stanzas in the last minute named this identity's "
                                 "recipient and did not open: not trying more for now");
      }
    }
    auto run = RunTool({options_.age, "--decrypt", "--identity", "/dev/fd/3"}, s->enc, fd_.get(),
                       options_.timeout_ms);
    if (!run.ok()) return run.status();  // age missing or hung: not a property of this file
    Result<std::string> key =
        run->exit_code == 0 && run->out.size() == 32
            ? Result<std::string>(run->out)
            : Result<std::string>(PermissionDenied(
                  "age could not open the data key for " + s->recipient + ": " +
                  (run->exit_code == 0 ? "it is not 32 bytes" : FirstLine(run->err))));
    std::lock_guard lock(mu_);
    if (key.ok()) {
      if (keys_.size() >= kMaxCacheEntries) keys_.clear();
      keys_.emplace(s->enc, *key);
      return key;
    }
    if (failures_.size() >= kMaxFailures) failures_.clear();
    failures_.emplace(s->enc, key.status());
    recent_failures_.push_back(std::chrono::steady_clock::now());
    last = key.status();
  }
  return last;
}

}  // namespace ballast::sops
