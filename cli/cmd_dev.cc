// `ballast dev`: the playground in one command. Seeds (or reuses) a manifest repository with a
// work tree from examples/repo, starts `ballast serve` (auto sync) and N `ballast agent`s on
// 127.0.0.2, 127.0.0.3, ... as children of this binary, installs a post-commit hook that pokes
// the webhook, and on SIGINT/SIGTERM stops everything: every child runs in its own process
// group, gets SIGTERM then SIGKILL, and this process is a child subreaper so pods whose agent
// died are found and stopped too.

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "cli/commands.h"
#include "cli/flags.h"

namespace ballast::cli {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

struct Child {
  std::string name;
  pid_t pid = -1;  // also its process group id
  fs::path log;
  bool exited = false;
  int status = 0;
};

std::string SelfExe() {
  std::error_code ec;
  auto p = fs::read_symlink("/proc/self/exe", ec);
  return ec ? std::string("ballast") : p.string();
}

// Starts `exe args...` in its own process group with stdout and stderr appended to `log`.
// Returns -1 (and prints why) when fork fails.
pid_t Spawn(const std::string& exe, const std::vector<std::string>& args, const fs::path& log,
            const std::vector<std::string>& extra_env, const fs::path& cwd) {
  std::vector<std::string> argv_s = {exe};
  argv_s.insert(argv_s.end(), args.begin(), args.end());
  pid_t parent = getpid();
  pid_t pid = fork();
  if (pid < 0) {
    std::perror("ballast dev: fork");
    return -1;
  }
  if (pid == 0) {
    setpgid(0, 0);
    // If `ballast dev` dies without cleaning up (SIGKILL), the children stop too.
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (getppid() != parent) _exit(1);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    signal(SIGINT, SIG_DFL);
    signal(SIGTERM, SIG_DFL);
    signal(SIGPIPE, SIG_DFL);
    int fd = open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    int devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (fd < 0 || devnull < 0) _exit(127);
    dup2(devnull, 0);
    dup2(fd, 1);
    dup2(fd, 2);
    if (!cwd.empty() && chdir(cwd.c_str()) != 0) _exit(127);
    for (const auto& e : extra_env) putenv(const_cast<char*>(e.c_str()));
    std::vector<char*> argv;
    for (auto& a : argv_s) argv.push_back(a.data());
    argv.push_back(nullptr);
    execv(exe.c_str(), argv.data());
    _exit(127);
  }
  setpgid(pid, pid);  // both sides, so the group exists before anyone signals it
  return pid;
}

// Runs a command to completion (git), output to `log`. True on exit status 0.
bool RunTool(const std::vector<std::string>& args, const fs::path& cwd, const fs::path& log) {
  std::vector<std::string> argv_s = args;
  pid_t pid = fork();
  if (pid < 0) return false;
  if (pid == 0) {
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    int fd = open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd >= 0) {
      dup2(fd, 1);
      dup2(fd, 2);
    }
    if (chdir(cwd.c_str()) != 0) _exit(127);
    std::vector<char*> argv;
    for (auto& a : argv_s) argv.push_back(a.data());
    argv.push_back(nullptr);
    execvp(argv[0], argv.data());
    _exit(127);
  }
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

std::string ReadFile(const fs::path& p, size_t limit = 1 << 20) {
  std::ifstream in(p, std::ios::binary);
  std::string s(limit, '\0');
  in.read(s.data(), static_cast<std::streamsize>(limit));
  s.resize(static_cast<size_t>(in.gcount()));
  return s;
}

std::string Tail(const fs::path& p, size_t lines) {
  std::string s = ReadFile(p);
  size_t at = s.size();
  for (size_t n = 0; n <= lines && at > 0; ++n) {
    at = s.rfind('\n', at - 1);
    if (at == std::string::npos) return s;
  }
  return s.substr(at + 1);
}

// GET `path` on host:port with a short deadline; the HTTP status, or 0 when nothing answers.
int HttpStatus(const std::string& host, int port, const std::string& path) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return 0;
  timeval tv{2, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  int code = 0;
  if (inet_pton(AF_INET, host.c_str(), &addr.sin_addr) == 1 &&
      connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0) {
    std::string req =
        "GET " + path + " HTTP/1.1\r\nHost: " + host + "\r\nConnection: close\r\n\r\n";
    if (send(fd, req.data(), req.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(req.size())) {
      char buf[64] = {};
      ssize_t n = recv(fd, buf, sizeof buf - 1, 0);
      if (n > 12 && std::strncmp(buf, "HTTP/1.", 7) == 0) code = std::atoi(buf + 9);
    }
  }
  close(fd);
  return code;
}

void Reap(std::vector<Child>& children) {
  for (;;) {
    int status = 0;
    pid_t pid = waitpid(-1, &status, WNOHANG);
    if (pid <= 0) return;
    for (auto& c : children) {
      if (c.pid == pid) {
        c.exited = true;
        c.status = status;
      }
    }
  }
}

// Processes whose parent is this one (children, and orphans adopted as subreaper).
std::vector<pid_t> OwnChildren() {
  std::vector<pid_t> out;
  std::error_code ec;
  const pid_t self = getpid();
  for (const auto& entry : fs::directory_iterator("/proc", ec)) {
    const std::string name = entry.path().filename().string();
    if (name.empty() || name.find_first_not_of("0123456789") != std::string::npos) continue;
    std::string stat = ReadFile(entry.path() / "stat", 4096);
    size_t paren = stat.rfind(')');
    if (paren == std::string::npos) continue;
    std::istringstream rest(stat.substr(paren + 2));
    std::string state;
    pid_t ppid = 0;
    rest >> state >> ppid;
    if (ppid == self && state != "Z") out.push_back(static_cast<pid_t>(std::stol(name)));
  }
  return out;
}

bool WaitAllExited(std::vector<Child>& children, Clock::duration timeout) {
  auto deadline = Clock::now() + timeout;
  for (;;) {
    Reap(children);
    bool all = true;
    for (const auto& c : children) all = all && c.exited;
    if (all) return true;
    if (Clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
}

// SIGTERM to every child's group (agents first, so they stop their pods while the reconciler
// is still up), then SIGKILL what is left, then the same for adopted orphans.
void StopEverything(std::vector<Child>& children) {
  for (auto it = children.rbegin(); it != children.rend(); ++it) {
    if (!it->exited) kill(-it->pid, SIGTERM);
  }
  if (!WaitAllExited(children, std::chrono::seconds(15))) {
    for (auto& c : children) {
      if (!c.exited) {
        std::fprintf(stderr, "ballast dev: %s did not stop in 15 s, killing it\n", c.name.c_str());
        kill(-c.pid, SIGKILL);
      }
    }
    WaitAllExited(children, std::chrono::seconds(5));
  }
  // Orphans: pods of an agent that died, re-parented here (PR_SET_CHILD_SUBREAPER).
  for (int round = 0; round < 3; ++round) {
    auto orphans = OwnChildren();
    if (orphans.empty()) break;
    for (pid_t p : orphans) {
      pid_t group = getpgid(p);
      if (group > 1 && group != getpgrp()) kill(-group, round == 0 ? SIGTERM : SIGKILL);
      kill(p, round == 0 ? SIGTERM : SIGKILL);
    }
    auto deadline = Clock::now() + std::chrono::seconds(5);
    while (Clock::now() < deadline && !OwnChildren().empty()) {
      while (waitpid(-1, nullptr, WNOHANG) > 0) {
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  }
  while (waitpid(-1, nullptr, WNOHANG) > 0) {
  }
}

std::optional<fs::path> FindSeed(const std::string& flag) {
  std::vector<fs::path> candidates;
  if (!flag.empty()) {
    candidates.push_back(flag);
  } else {
    candidates.push_back(fs::current_path() / "examples" / "repo");
    fs::path exe = SelfExe();
    candidates.push_back(exe.parent_path().parent_path() / "examples" / "repo");
#ifdef BALLAST_EXAMPLES_DIR
    candidates.push_back(BALLAST_EXAMPLES_DIR);
#endif
  }
  for (const auto& c : candidates) {
    std::error_code ec;
    if (fs::is_directory(c, ec)) return fs::absolute(c);
  }
  return std::nullopt;
}

constexpr const char* kGit[] = {"git", "-c", "init.defaultBranch=main"};

std::vector<std::string> Git(std::initializer_list<std::string> args) {
  std::vector<std::string> v(std::begin(kGit), std::end(kGit));
  v.insert(v.end(), args.begin(), args.end());
  return v;
}

// Creates the playground (or reuses it): `remote` is a bare repository, what the reconciler
// follows (like a repository on a git host); `work` is a clone with a work tree whose
// post-commit hook pushes to it. Returns an error message or "".
std::string PreparePlayground(const fs::path& work, const fs::path& remote, const fs::path& seed,
                              const fs::path& log, bool* created) {
  std::error_code ec;
  *created = false;
  if (fs::exists(work / ".git", ec)) {
    if (!fs::exists(remote / "HEAD", ec)) {
      return remote.string() + " is missing: delete " + work.parent_path().string() +
             " to start afresh";
    }
    return "";
  }
  fs::create_directories(work, ec);
  if (ec) return "cannot create " + work.string() + ": " + ec.message();
  for (const auto& entry : fs::directory_iterator(seed, ec)) {
    if (!entry.is_regular_file()) continue;
    auto ext = entry.path().extension();
    if (ext != ".yaml" && ext != ".yml" && ext != ".md") continue;
    fs::copy_file(entry.path(), work / entry.path().filename(),
                  fs::copy_options::overwrite_existing, ec);
    if (ec) return "cannot copy " + entry.path().string() + ": " + ec.message();
  }
  fs::remove_all(remote, ec);
  fs::create_directories(remote, ec);
  if (!RunTool(Git({"init", "-q", "--bare"}), remote, log) ||
      !RunTool(Git({"init", "-q"}), work, log) ||
      !RunTool(Git({"checkout", "-q", "-b", "main"}), work, log) ||
      !RunTool(Git({"config", "user.name", "ballast dev"}), work, log) ||
      !RunTool(Git({"config", "user.email", "dev@ballast.invalid"}), work, log) ||
      !RunTool(Git({"add", "."}), work, log) ||
      !RunTool(Git({"commit", "-q", "-m", "Seed the playground from examples/repo"}), work, log) ||
      !RunTool(Git({"remote", "add", "origin", remote.string()}), work, log) ||
      !RunTool(Git({"push", "-q", "-u", "origin", "main"}), work, log)) {
    return "git failed in " + work.string() + " (see " + log.string() + "; is git installed?)";
  }
  *created = true;
  return "";
}

std::string InstallHook(const fs::path& repo, const std::string& url) {
  fs::path hook = repo / ".git" / "hooks" / "post-commit";
  std::error_code ec;
  fs::create_directories(hook.parent_path(), ec);
  std::ofstream out(hook, std::ios::trunc);
  out << "#!/bin/sh\n"
         "# Installed by `ballast dev`: publishes the commit to the playground's remote (what the\n"
         "# reconciler follows) and calls the reconciler's webhook (it also polls).\n"
         "if ! git push -q origin HEAD:main; then\n"
         "  echo 'ballast dev: push refused (the reconciler committed a rollback?):' \\\n"
         "       'git pull --rebase, then git push origin HEAD:main' >&2\n"
         "fi\n"
         "if command -v curl >/dev/null 2>&1; then\n"
         "  curl -fsS -m 5 -X POST -H 'Content-Type: application/json' -d '{}' \\\n"
         "    '"
      << url
      << "/api/v1/webhook/git' >/dev/null 2>&1 || true\n"
         "fi\n";
  out.close();
  if (!out) return "cannot write " + hook.string();
  fs::permissions(hook,
                  fs::perms::owner_all | fs::perms::group_read | fs::perms::group_exec |
                      fs::perms::others_read | fs::perms::others_exec,
                  ec);
  return "";
}

bool ParseHostPort(const std::string& text, std::string* host, int* port) {
  auto colon = text.rfind(':');
  if (colon == std::string::npos || colon == 0) return false;
  char* end = nullptr;
  long p = std::strtol(text.c_str() + colon + 1, &end, 10);
  if (*end != '\0' || p < 0 || p > 65535 || end == text.c_str() + colon + 1) return false;
  *host = text.substr(0, colon);
  *port = static_cast<int>(p);
  return true;
}

}  // namespace

int RunDev(const Args& args) {
  FlagSet flags(
      "ballast dev [--agents N] [--listen HOST:PORT] [--dir DIR]",
      "The playground: a manifest repository seeded from examples/repo in DIR/manifests (a real\n"
      "git repository with a work tree; reused when it exists), the reconciler in auto-sync mode\n"
      "and N agents on 127.0.0.2, 127.0.0.3, ... Edit, git commit, watch the status page.\n"
      "Ctrl-C stops everything. Logs go to DIR/logs.");
  flags.AddString("agents", "", "3", "how many agents (1-50)");
  flags.AddString("listen", "", "127.0.0.1:7070",
                  "where the reconciler serves (port 0: any free port)");
  flags.AddString("dir", "", ".ballast-dev", "playground directory");
  flags.AddString("seed", "", "",
                  "manifests to seed a new playground with (default examples/repo)");
  flags.AddString("poll", "", "5", "seconds between polls of the playground repository");
  flags.AddString("first-address", "", "127.0.0.2",
                  "loopback address of the first agent; the next ones follow");
  if (auto rc = ParseOrExit(flags, args)) return *rc;
  auto usage = [&](const std::string& message) {
    std::fprintf(stderr, "error: %s\n\n%s", message.c_str(), flags.Help().c_str());
    return 2;
  };
  if (!flags.positional().empty()) return usage("unexpected argument " + flags.positional()[0]);
  char* end = nullptr;
  long agents = std::strtol(flags.Get("agents").c_str(), &end, 10);
  if (*end != '\0' || agents < 1 || agents > 50) return usage("--agents wants 1 to 50");
  std::string host;
  int port = 0;
  if (!ParseHostPort(flags.Get("listen"), &host, &port)) return usage("--listen wants HOST:PORT");
  in_addr first{};
  if (inet_pton(AF_INET, flags.Get("first-address").c_str(), &first) != 1 ||
      (ntohl(first.s_addr) >> 24) != 127 || (ntohl(first.s_addr) & 0xff) + agents > 255) {
    return usage("--first-address wants a 127.x.y.z address with room for the agents");
  }

  // Stop signals are taken synchronously below; children get a clean mask before exec.
  sigset_t stop;
  sigemptyset(&stop);
  sigaddset(&stop, SIGINT);
  sigaddset(&stop, SIGTERM);
  sigaddset(&stop, SIGHUP);
  sigprocmask(SIG_BLOCK, &stop, nullptr);
  signal(SIGPIPE, SIG_IGN);
  prctl(PR_SET_CHILD_SUBREAPER, 1);

  std::error_code ec;
  fs::path dir = fs::absolute(flags.Get("dir"));
  fs::path repo = dir / "manifests", remote = dir / "manifests.git", logs = dir / "logs",
           state = dir / "state";
  fs::create_directories(logs, ec);
  if (ec) {
    std::fprintf(stderr, "ballast dev: cannot create %s: %s\n", logs.c_str(), ec.message().c_str());
    return 1;
  }
  auto seed = FindSeed(flags.Get("seed"));
  if (!seed && !fs::exists(repo / ".git", ec)) {
    std::fprintf(stderr,
                 "ballast dev: examples/repo not found (run from the ballast source tree or pass "
                 "--seed DIR)\n");
    return 1;
  }
  bool created = false;
  std::string err =
      PreparePlayground(repo, remote, seed.value_or(fs::path()), logs / "git.log", &created);
  if (!err.empty()) {
    std::fprintf(stderr, "ballast dev: %s\n", err.c_str());
    return 1;
  }
  std::printf("ballast dev: %s playground repository %s\n", created ? "created" : "reusing",
              repo.c_str());

  const std::string exe = SelfExe();
  const char* old_path = std::getenv("PATH");
  // Pods run `ballast demo-app`: this binary's folder comes first on their PATH.
  std::vector<std::string> env = {"PATH=" + fs::path(exe).parent_path().string() + ":" +
                                  (old_path ? old_path : "/usr/bin:/bin")};

  std::vector<Child> children;
  fs::path serve_log = logs / "serve.log";
  fs::remove(serve_log, ec);
  Child serve{"reconciler", -1, serve_log};
  serve.pid = Spawn(exe,
                    {"serve", "--repo", remote.string(), "--branch", "main", "--listen",
                     flags.Get("listen"), "--state-dir", state.string(), "--sync", "auto", "--poll",
                     flags.Get("poll"), "--heartbeat", "2", "--node-grace", "10"},
                    serve_log, env, dir);
  if (serve.pid < 0) return 1;
  children.push_back(serve);

  auto fail = [&](const std::string& why) {
    std::fflush(stdout);  // what was said before comes first, also into a file or a pipe
    std::fprintf(stderr, "ballast dev: %s\n", why.c_str());
    std::fprintf(stderr, "--- %s (last lines)\n%s", serve_log.c_str(), Tail(serve_log, 15).c_str());
    if (ReadFile(serve_log).find("Address already in use") != std::string::npos) {
      std::fprintf(stderr,
                   "ballast dev: %s is taken by another process: pass --listen HOST:PORT with "
                   "another port, or --listen 127.0.0.1:0 for any free one\n",
                   flags.Get("listen").c_str());
    }
    StopEverything(children);
    return 1;
  };

  // The reconciler prints "listening on URL" once its API is up (port 0 resolved).
  std::string url;
  auto deadline = Clock::now() + std::chrono::seconds(60);
  while (url.empty()) {
    Reap(children);
    if (children[0].exited) return fail("the reconciler exited during start-up");
    std::string out = ReadFile(serve_log);
    auto at = out.find("listening on ");
    if (at != std::string::npos) {
      auto eol = out.find('\n', at);
      if (eol != std::string::npos) url = out.substr(at + 13, eol - at - 13);
    }
    if (Clock::now() > deadline) return fail("the reconciler did not start in 60 s");
    timespec ts{0, 100'000'000};
    if (sigtimedwait(&stop, nullptr, &ts) > 0) {
      StopEverything(children);
      return 130;
    }
  }
  std::string url_host;
  int url_port = 0;
  {
    std::string hp = url.substr(url.find("://") + 3);
    if (auto slash = hp.find('/'); slash != std::string::npos) hp.resize(slash);
    if (!ParseHostPort(hp, &url_host, &url_port)) return fail("cannot read the URL " + url);
  }
  while (HttpStatus(url_host, url_port, "/healthz") != 200) {
    Reap(children);
    if (children[0].exited) return fail("the reconciler exited during start-up");
    if (Clock::now() > deadline) return fail("the reconciler does not answer " + url + "/healthz");
    timespec ts{0, 200'000'000};
    if (sigtimedwait(&stop, nullptr, &ts) > 0) {
      StopEverything(children);
      return 130;
    }
  }
  err = InstallHook(repo, url);
  if (!err.empty()) return fail(err);

  for (long i = 1; i <= agents; ++i) {
    std::string name = "node-" + std::to_string(i);
    in_addr a{htonl(ntohl(first.s_addr) + static_cast<uint32_t>(i - 1))};
    char text[INET_ADDRSTRLEN] = {};
    inet_ntop(AF_INET, &a, text, sizeof text);
    std::string address = text;
    fs::path work = dir / "agents" / name;
    fs::create_directories(work, ec);
    fs::path log = logs / (name + ".log");
    Child agent{name, -1, log};
    agent.pid = Spawn(
        exe,
        {"agent", "--server", url, "--name", name, "--address", address, "--work-dir",
         work.string(), "--heartbeat", "2", "--stop-pods-on-exit", "--cpu", "2", "--memory", "2Gi"},
        log, env, dir);
    if (agent.pid < 0) return fail("cannot start agent " + name);
    children.push_back(agent);
  }

  fs::path rel = fs::relative(repo, fs::current_path(), ec);
  std::string shown = ec || rel.empty() ? repo.string() : rel.string();
  std::printf(
      "ballast dev: reconciler on %s (auto sync), %ld agent%s from %s, logs in %s\n\n"
      "Next: edit %s/web.yaml, git commit, watch %s\n"
      "  cd %s && $EDITOR web.yaml && git commit -am \"web: new message\"\n"
      "Ctrl-C stops everything.\n",
      url.c_str(), agents, agents == 1 ? "" : "s", flags.Get("first-address").c_str(), logs.c_str(),
      shown.c_str(), url.c_str(), shown.c_str());
  std::fflush(stdout);

  int sig = 0;
  for (;;) {
    timespec ts{0, 500'000'000};
    sig = sigtimedwait(&stop, nullptr, &ts);
    if (sig > 0) break;
    Reap(children);
    bool died = false;
    for (const auto& c : children) {
      if (c.exited) {
        std::fprintf(stderr, "ballast dev: %s exited (status %d); see %s\n", c.name.c_str(),
                     c.status, c.log.c_str());
        died = true;
      }
    }
    if (died) break;
  }
  std::printf("\nballast dev: stopping the agents, their pods and the reconciler\n");
  std::fflush(stdout);
  StopEverything(children);
  std::printf("ballast dev: stopped\n");
  return sig > 0 ? 0 : 1;
}

}  // namespace ballast::cli
