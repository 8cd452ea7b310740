// `ballast dev`: the playground in one command. Seeds (or reuses) a manifest repository with a
// work tree from examples/repo, starts `ballast serve` (auto sync) and N `ballast agent`s on
// 127.0.0.2, 127.0.0.3, ... as children of this binary, installs a post-commit hook that pokes
// the webhook, and on SIGINT/SIGTERM stops everything: every child runs in its own process
// group, gets SIGTERM then SIGKILL, and this process is a child subreaper so pods whose agent
// died are found and stopped too.

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "cli/commands.h"
#include "cli/flags.h"
#include "nodeagent/process.h"

extern char** environ;

namespace ballast::cli {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

// A child process group of `ballast dev`: the reconciler or an agent.
struct Child {
  std::string name;
  pid_t pid = -1;  // also its process group id
  fs::path log;
  bool exited = false;
  int exit_code = 0;
};

std::string SelfExe() {
  std::error_code ec;
  auto p = fs::read_symlink("/proc/self/exe", ec);
  return ec ? std::string("ballast") : p.string();
}

// This process's environment, with PATH set to `path` when it is not empty.
std::vector<std::string> Environment(const std::string& path = "") {
  std::vector<std::string> env;
  for (char** e = environ; e != nullptr && *e != nullptr; ++e) {
    if (path.empty() || std::strncmp(*e, "PATH=", 5) != 0) env.emplace_back(*e);
  }
  if (!path.empty()) env.push_back("PATH=" + path);
  return env;
}

std::string PathVariable() {
  const char* path = std::getenv("PATH");
  return path ? path : "";
}

// Starts `exe args...` as a process group of its own (nodeagent/process.h) with stdout and
// stderr appended to `log`. If `ballast dev` dies without stopping it (SIGKILL), it gets
// SIGTERM.
Result<pid_t> Spawn(const std::string& exe, const std::vector<std::string>& args,
                    const fs::path& log, const std::vector<std::string>& env, const fs::path& cwd) {
  nodeagent::ProcessSpec spec;
  spec.executable = exe;
  spec.argv = {exe};
  spec.argv.insert(spec.argv.end(), args.begin(), args.end());
  spec.env = env;
  spec.cwd = cwd.string();
  spec.stdout_path = spec.stderr_path = log.string();
  spec.parent_death_signal = SIGTERM;
  return nodeagent::SpawnProcess(spec);
}

// Runs a command to completion (git), output to `log`. True on exit status 0.
bool RunTool(const std::vector<std::string>& args, const fs::path& cwd, const fs::path& log) {
  auto exe = nodeagent::ResolveExecutable(args.at(0), PathVariable());
  if (!exe.ok()) return false;
  nodeagent::ProcessSpec spec;
  spec.executable = *exe;
  spec.argv = args;
  spec.env = Environment();
  spec.cwd = cwd.string();
  spec.stdout_path = spec.stderr_path = log.string();
  constexpr int kToolTimeoutMs = 5 * 60 * 1000;  // git on local repositories: seconds
  auto exit_code = nodeagent::RunWithTimeout(spec, kToolTimeoutMs);
  return exit_code.ok() && *exit_code == 0;
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

// Reaps every child that has exited (orphans re-parented here included) and notes the exits of
// `children`.
void Reap(std::vector<Child>& children) {
  while (auto reaped = nodeagent::ReapAnyChild()) {
    for (auto& c : children) {
      if (c.pid == reaped->pid) {
        c.exited = true;
        c.exit_code = reaped->exit.exit_code;
      }
    }
  }
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

// Pods of an agent that died were re-parented here (PR_SET_CHILD_SUBREAPER): their process
// groups get SIGTERM, then SIGKILL after 5 s; whatever is left of them, SIGKILL.
void StopOrphans() {
  std::vector<pid_t> groups;
  for (pid_t p : nodeagent::ChildProcesses()) {
    const pid_t group = getpgid(p);
    if (group > 1 && group != getpgrp() &&
        std::find(groups.begin(), groups.end(), group) == groups.end()) {
      groups.push_back(group);
    }
  }
  nodeagent::StopGroups(groups, std::chrono::seconds(5));
  const auto deadline = Clock::now() + std::chrono::seconds(5);
  for (auto left = nodeagent::ChildProcesses(); !left.empty() && Clock::now() < deadline;
       left = nodeagent::ChildProcesses()) {
    for (pid_t p : left) kill(p, SIGKILL);
    while (nodeagent::ReapAnyChild()) {
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  while (nodeagent::ReapAnyChild()) {
  }
}

// SIGTERM to every child's group (agents first, so they stop their pods while the reconciler
// is still up), SIGKILL to those still running after 15 s, then the same for adopted orphans.
void StopEverything(std::vector<Child>& children) {
  Reap(children);
  std::vector<pid_t> groups;
  for (auto it = children.rbegin(); it != children.rend(); ++it) {
    if (!it->exited) groups.push_back(it->pid);
  }
  for (pid_t killed : nodeagent::StopGroups(groups, std::chrono::seconds(15))) {
    for (const auto& c : children) {
      if (c.pid == killed) {
        std::fprintf(stderr, "ballast dev: %s did not stop in 15 s, killing it\n", c.name.c_str());
      }
    }
  }
  WaitAllExited(children, std::chrono::seconds(5));
  StopOrphans();
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

// The running playground: the reconciler and the agents as child process groups of this
// process, which takes the stop signals synchronously.
struct Playground {
  fs::path dir;
  fs::path logs;
  std::string exe;               // this binary
  std::vector<std::string> env;  // the children's environment
  sigset_t stop;                 // SIGINT, SIGTERM, SIGHUP: blocked, taken with sigtimedwait
  std::string listen;            // --listen, named when its port is taken
  fs::path serve_log;
  std::vector<Child> children;  // the reconciler first
};

// Waits up to `ms` for a stop signal; true when one came.
bool StopRequested(const sigset_t& stop, long ms) {
  timespec ts{ms / 1000, (ms % 1000) * 1'000'000};
  return sigtimedwait(&stop, nullptr, &ts) > 0;
}

// The start failed: says why, with the end of the reconciler's log, and stops what runs.
int FailStart(Playground& p, const std::string& why) {
  std::fflush(stdout);  // what was said before comes first, also into a file or a pipe
  std::fprintf(stderr, "ballast dev: %s\n", why.c_str());
  std::fprintf(stderr, "--- %s (last lines)\n%s", p.serve_log.c_str(),
               Tail(p.serve_log, 15).c_str());
  if (ReadFile(p.serve_log).find("Address already in use") != std::string::npos) {
    std::fprintf(stderr,
                 "ballast dev: %s is taken by another process: pass --listen HOST:PORT with "
                 "another port, or --listen 127.0.0.1:0 for any free one\n",
                 p.listen.c_str());
  }
  StopEverything(p.children);
  return 1;
}

// Starts the reconciler on the playground's repository and waits until its API answers.
// Returns 0 with its URL, else the exit code (everything stopped).
int StartReconciler(Playground& p, const fs::path& remote, const fs::path& state,
                    const std::string& poll, std::string* url) {
  p.serve_log = p.logs / "serve.log";
  std::error_code ec;
  fs::remove(p.serve_log, ec);
  auto pid = Spawn(
      p.exe,
      {"serve", "--repo", remote.string(), "--branch", "main", "--listen", p.listen, "--state-dir",
       state.string(), "--sync", "auto", "--poll", poll, "--heartbeat", "2", "--node-grace", "10"},
      p.serve_log, p.env, p.dir);
  if (!pid.ok()) {
    std::fprintf(stderr, "ballast dev: cannot start the reconciler: %s\n",
                 pid.status().message().c_str());
    return 1;
  }
  p.children.push_back(Child{"reconciler", *pid, p.serve_log});
  // The reconciler prints "listening on URL" once its API is up (port 0 resolved).
  auto deadline = Clock::now() + std::chrono::seconds(60);
  while (url->empty()) {
    Reap(p.children);
    if (p.children[0].exited) return FailStart(p, "the reconciler exited during start-up");
    std::string out = ReadFile(p.serve_log);
    auto at = out.find("listening on ");
    if (at != std::string::npos) {
      auto eol = out.find('\n', at);
      if (eol != std::string::npos) *url = out.substr(at + 13, eol - at - 13);
    }
    if (Clock::now() > deadline) return FailStart(p, "the reconciler did not start in 60 s");
    if (StopRequested(p.stop, 100)) {
      StopEverything(p.children);
      return 130;
    }
  }
  std::string host;
  int port = 0;
  std::string host_port = url->substr(url->find("://") + 3);
  if (auto slash = host_port.find('/'); slash != std::string::npos) host_port.resize(slash);
  if (!ParseHostPort(host_port, &host, &port)) return FailStart(p, "cannot read the URL " + *url);
  while (HttpStatus(host, port, "/healthz") != 200) {
    Reap(p.children);
    if (p.children[0].exited) return FailStart(p, "the reconciler exited during start-up");
    if (Clock::now() > deadline)
      return FailStart(p, "the reconciler does not answer " + *url + "/healthz");
    if (StopRequested(p.stop, 200)) {
      StopEverything(p.children);
      return 130;
    }
  }
  return 0;
}

// Starts `count` agents, node-1 on `first` and the next ones on the addresses after it.
// Returns 0, else the exit code (everything stopped).
int StartAgents(Playground& p, long count, in_addr first, const std::string& url) {
  for (long i = 1; i <= count; ++i) {
    std::string name = "node-" + std::to_string(i);
    in_addr a{htonl(ntohl(first.s_addr) + static_cast<uint32_t>(i - 1))};
    char text[INET_ADDRSTRLEN] = {};
    inet_ntop(AF_INET, &a, text, sizeof text);
    std::string address = text;
    // Each agent's own work directory, 0700 whatever the umask (an agent refuses one its group
    // or others can write: it runs what it finds there).
    fs::path work = p.dir / "agents" / name;
    std::error_code ec;
    fs::create_directories(work, ec);
    fs::permissions(work, fs::perms::owner_all, fs::perm_options::replace, ec);
    fs::path log = p.logs / (name + ".log");
    auto pid = Spawn(
        p.exe,
        {"agent", "--server", url, "--name", name, "--address", address, "--work-dir",
         work.string(), "--heartbeat", "2", "--stop-pods-on-exit", "--cpu", "2", "--memory", "2Gi"},
        log, p.env, p.dir);
    if (!pid.ok())
      return FailStart(p, "cannot start agent " + name + ": " + pid.status().message());
    p.children.push_back(Child{name, *pid, log});
  }
  return 0;
}

// Creates (or reuses) the playground's repository `repo` with its remote `remote` from the seed
// manifests, and settles what the children run with (this binary, their PATH). Returns 0, else
// the exit code (printed why).
int OpenPlayground(Playground& p, const fs::path& repo, const fs::path& remote,
                   const std::string& seed_flag) {
  std::error_code ec;
  fs::create_directories(p.logs, ec);
  if (ec) {
    std::fprintf(stderr, "ballast dev: cannot create %s: %s\n", p.logs.c_str(),
                 ec.message().c_str());
    return 1;
  }
  auto seed = FindSeed(seed_flag);
  if (!seed && !fs::exists(repo / ".git", ec)) {
    std::fprintf(stderr,
                 "ballast dev: examples/repo not found (run from the ballast source tree or pass "
                 "--seed DIR)\n");
    return 1;
  }
  bool created = false;
  std::string err =
      PreparePlayground(repo, remote, seed.value_or(fs::path()), p.logs / "git.log", &created);
  if (!err.empty()) {
    std::fprintf(stderr, "ballast dev: %s\n", err.c_str());
    return 1;
  }
  std::printf("ballast dev: %s playground repository %s\n", created ? "created" : "reusing",
              repo.c_str());

  auto exe = nodeagent::ResolveExecutable(SelfExe(), PathVariable());
  if (!exe.ok()) {
    std::fprintf(stderr, "ballast dev: %s\n", exe.status().message().c_str());
    return 1;
  }
  p.exe = *exe;
  const std::string old_path = PathVariable();
  // Pods run `ballast demo-app`: this binary's folder comes first on their PATH.
  p.env = Environment(fs::path(p.exe).parent_path().string() + ":" +
                      (old_path.empty() ? "/usr/bin:/bin" : old_path));
  return 0;
}

// Runs until a stop signal or a child's death, then stops everything. The exit code.
int RunUntilStopped(Playground& p) {
  int sig = 0;
  for (;;) {
    timespec ts{0, 500'000'000};
    sig = sigtimedwait(&p.stop, nullptr, &ts);
    if (sig > 0) break;
    Reap(p.children);
    bool died = false;
    for (const auto& c : p.children) {
      if (c.exited) {
        std::fprintf(stderr, "ballast dev: %s exited (status %d); see %s\n", c.name.c_str(),
                     c.exit_code, c.log.c_str());
        died = true;
      }
    }
    if (died) break;
  }
  std::printf("\nballast dev: stopping the agents, their pods and the reconciler\n");
  std::fflush(stdout);
  StopEverything(p.children);
  std::printf("ballast dev: stopped\n");
  return sig > 0 ? 0 : 1;
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

  Playground p;
  // Stop signals are taken synchronously below; children get a clean mask before exec.
  sigemptyset(&p.stop);
  sigaddset(&p.stop, SIGINT);
  sigaddset(&p.stop, SIGTERM);
  sigaddset(&p.stop, SIGHUP);
  sigprocmask(SIG_BLOCK, &p.stop, nullptr);
  signal(SIGPIPE, SIG_IGN);
  prctl(PR_SET_CHILD_SUBREAPER, 1);

  p.dir = fs::absolute(flags.Get("dir"));
  p.logs = p.dir / "logs";
  p.listen = flags.Get("listen");
  fs::path repo = p.dir / "manifests", remote = p.dir / "manifests.git";
  if (int rc = OpenPlayground(p, repo, remote, flags.Get("seed")); rc != 0) return rc;
  std::string url;
  if (int rc = StartReconciler(p, remote, p.dir / "state", flags.Get("poll"), &url); rc != 0) {
    return rc;
  }
  if (std::string err = InstallHook(repo, url); !err.empty()) return FailStart(p, err);
  if (int rc = StartAgents(p, agents, first, url); rc != 0) return rc;

  std::error_code ec;
  fs::path rel = fs::relative(repo, fs::current_path(), ec);
  std::string shown = ec || rel.empty() ? repo.string() : rel.string();
  std::printf(
      "ballast dev: reconciler on %s (auto sync), %ld agent%s from %s, logs in %s\n\n"
      "Next: edit %s/web.yaml, git commit, watch %s\n"
      "  cd %s && $EDITOR web.yaml && git commit -am \"web: new message\"\n"
      "Ctrl-C stops everything.\n",
      url.c_str(), agents, agents == 1 ? "" : "s", flags.Get("first-address").c_str(),
      p.logs.c_str(), shown.c_str(), url.c_str(), shown.c_str());
  std::fflush(stdout);
  return RunUntilStopped(p);
}

}  // namespace ballast::cli
