#include "tests/support/git_servers.h"

#include <fcntl.h>
#include <pwd.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <random>
#include <sstream>
#include <thread>

#include "tests/support/ports.h"

namespace ballast::git::testing {
namespace fs = std::filesystem;

TempDir::TempDir() {
  const char* base = std::getenv("TMPDIR");
  std::string pattern = std::string(base != nullptr ? base : "/tmp") + "/ballast-git-XXXXXX";
  std::vector<char> buf(pattern.begin(), pattern.end());
  buf.push_back('\0');
  if (mkdtemp(buf.data()) != nullptr) path_ = buf.data();
}

TempDir::~TempDir() {
  std::error_code ec;
  if (!path_.empty()) fs::remove_all(path_, ec);
}

std::string Quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) {
    if (c == '\'') {
      out += "'\\''";
    } else {
      out += c;
    }
  }
  return out + "'";
}

ShellResult Sh(const std::string& script, const std::string& cwd) {
  // The developer's own git configuration (signing, hooks, default branch) stays out.
  std::string command = "set -e; export GIT_CONFIG_NOSYSTEM=1 GIT_CONFIG_GLOBAL=/dev/null; ";
  if (!cwd.empty()) command += "cd " + Quote(cwd) + "; ";
  command += script;
  std::string full = "/bin/sh -c " + Quote(command) + " 2>&1 </dev/null";
  ShellResult result;
  FILE* pipe = popen(full.c_str(), "r");
  if (pipe == nullptr) return result;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof(buf), pipe)) > 0) result.output.append(buf, n);
  int status = pclose(pipe);
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return result;
}

ChildProcess::~ChildProcess() { Stop(); }

bool ChildProcess::Start(const std::vector<std::string>& argv, const std::string& log_file) {
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  int log = open(log_file.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  pid_t pid = fork();
  if (pid < 0) return false;
  if (pid == 0) {
    setpgid(0, 0);
    int devnull = open("/dev/null", O_RDONLY);
    dup2(devnull, 0);
    if (log >= 0) {
      dup2(log, 1);
      dup2(log, 2);
    }
    execv(args[0], args.data());
    _exit(127);
  }
  setpgid(pid, pid);
  if (log >= 0) close(log);
  pid_ = pid;
  return true;
}

bool ChildProcess::Running() {
  if (pid_ <= 0) return false;
  int status = 0;
  if (waitpid(pid_, &status, WNOHANG) == pid_) {
    pid_ = -1;
    return false;
  }
  return true;
}

void ChildProcess::Stop() {
  if (pid_ <= 0) return;
  kill(-pid_, SIGTERM);
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  int status = 0;
  while (waitpid(pid_, &status, WNOHANG) == 0) {
    if (std::chrono::steady_clock::now() > deadline) {
      kill(-pid_, SIGKILL);
      waitpid(pid_, &status, 0);
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  kill(-pid_, SIGKILL);  // stragglers of the group (daemon children, CGIs)
  pid_ = -1;
}

namespace {
constexpr char kGitIdentity[] =
    "GIT_AUTHOR_NAME=tester GIT_AUTHOR_EMAIL=tester@example.com "
    "GIT_COMMITTER_NAME=tester GIT_COMMITTER_EMAIL=tester@example.com ";

std::string Trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}
}  // namespace

RepoFarm::RepoFarm() = default;

std::string RepoFarm::WorkPath(const std::string& name) const {
  return (work_.path() / name).string();
}

std::string RepoFarm::CreateBare(const std::string& name) {
  std::string bare = BarePath(name);
  Sh("git init -q --bare -b main " + Quote(bare) + " && git -C " + Quote(bare) +
     " config receive.denyNonFastForwards false" + " && git -C " + Quote(bare) +
     " config http.receivepack true" + " && git init -q -b main " + Quote(WorkPath(name)) +
     " && git -C " + Quote(WorkPath(name)) + " remote add origin " + Quote(bare));
  return bare;
}

std::string RepoFarm::Commit(const std::string& name,
                             const std::map<std::string, std::optional<std::string>>& files,
                             const std::string& message, bool force, const std::string& branch) {
  std::string work = WorkPath(name);
  Sh("git fetch -q origin && (git checkout -q -B " + Quote(branch) + " origin/" + Quote(branch) +
         " 2>/dev/null || git checkout -q -B " + Quote(branch) + ")",
     work);
  if (force) Sh("git reset -q --hard HEAD~1", work);
  for (const auto& [path, content] : files) {
    fs::path p = fs::path(work) / path;
    if (!content) {
      std::error_code ec;
      fs::remove(p, ec);
      continue;
    }
    fs::create_directories(p.parent_path());
    std::ofstream(p, std::ios::binary) << *content;
  }
  auto r = Sh(std::string("git add -A && ") + kGitIdentity + "git commit -q --allow-empty -m " +
                  Quote(message) + " && git push -q " + (force ? "-f " : "") +
                  "origin HEAD:" + Quote(branch) + " && git rev-parse HEAD",
              work);
  std::string out = Trim(r.output);
  return out.substr(out.rfind('\n') == std::string::npos ? 0 : out.rfind('\n') + 1);
}

std::string RepoFarm::Git(const std::string& name, const std::string& args) {
  return Trim(Sh(std::string(kGitIdentity) + "git " + args, WorkPath(name)).output);
}

namespace {

// Starts a server on a port picked at run time: `start(port)` configures and starts `process`.
// Another process may take the port before the server binds it, so up to five ports are tried
// until the server accepts connections. Leaves the port that answered in `*port`.
bool StartOnFreePort(ChildProcess& process, int* port, const std::function<bool(int)>& start) {
  for (int attempt = 0; attempt < 5; ++attempt) {
    *port = ballast::testing::PickFreePort();
    if (!start(*port)) return false;
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (std::chrono::steady_clock::now() < deadline && process.Running()) {
      if (ballast::testing::WaitForPort(*port, std::chrono::seconds(1)) && process.Running()) {
        return true;
      }
    }
    process.Stop();  // the port was taken meanwhile: try another
  }
  return false;
}

}  // namespace

bool GitDaemon::Start(const fs::path& base, bool enable_receive_pack) {
  return StartOnFreePort(process_, &port_, [&](int port) {
    std::vector<std::string> argv = {"/usr/bin/git",
                                     "daemon",
                                     "--listen=127.0.0.1",
                                     "--port=" + std::to_string(port),
                                     "--base-path=" + base.string(),
                                     "--export-all",
                                     "--reuseaddr",
                                     "--informative-errors"};
    if (enable_receive_pack) argv.push_back("--enable=receive-pack");
    argv.push_back(base.string());
    argv_ = argv;
    return process_.Start(argv, dir_ / "daemon.log");
  });
}

std::string GitDaemon::Url(const std::string& name) const {
  return "git://127.0.0.1:" + std::to_string(port_) + "/" + name;
}

bool HttpGitServer::Start(const fs::path& base, bool https) {
  https_ = https;
  const std::string d = dir_.path().string();
  std::ofstream(dir_ / "users") << kUser << ":" << kPassword << "\n";
  if (https) {
    auto r =
        Sh("openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes "
           "-keyout ca.key -out ca.pem -days 2 -subj /CN=ballast-test-ca >/dev/null 2>&1 && "
           "openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout server.key "
           "-out server.csr -subj /CN=localhost >/dev/null 2>&1 && "
           "printf 'subjectAltName=DNS:localhost\\nbasicConstraints=CA:FALSE\\n"
           "extendedKeyUsage=serverAuth\\n' > ext.cnf && "
           "openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial "
           "-out server.pem -days 2 -extfile ext.cnf >/dev/null 2>&1",
           d);
    if (r.exit_code != 0) return false;
  }
  return StartOnFreePort(process_, &port_, [&](int port) {
    std::ostringstream conf;
    conf << "server.modules = (\"mod_auth\", \"mod_authn_file\", \"mod_alias\", "
            "\"mod_setenv\", \"mod_cgi\""
         << (https ? ", \"mod_openssl\"" : "") << ")\n"
         << "server.document-root = \"" << d << "\"\n"
         << "server.bind = \"127.0.0.1\"\n"
         << "server.port = " << port << "\n"
         << "server.errorlog = \"" << d << "/error.log\"\n"
         << "alias.url = (\"/git\" => \"/usr/lib/git-core/git-http-backend\")\n"
         << "$HTTP[\"url\"] =~ \"^/git\" {\n"
         << "  cgi.assign = (\"\" => \"\")\n"
         << "  setenv.add-environment = (\"GIT_PROJECT_ROOT\" => \"" << base.string()
         << "\", \"GIT_HTTP_EXPORT_ALL\" => \"\")\n"
         << "}\n"
         << "auth.backend = \"plain\"\n"
         << "auth.backend.plain.userfile = \"" << d << "/users\"\n"
         << "auth.require = (\"/git\" => (\"method\" => \"basic\", \"realm\" => \"git\", "
            "\"require\" => \"valid-user\"))\n";
    if (https) {
      conf << "ssl.engine = \"enable\"\n"
           << "ssl.pemfile = \"" << d << "/server.pem\"\n"
           << "ssl.privkey = \"" << d << "/server.key\"\n";
    }
    std::ofstream(dir_ / "lighttpd.conf") << conf.str();
    return process_.Start({"/usr/sbin/lighttpd", "-D", "-f", dir_ / "lighttpd.conf"},
                          dir_ / "lighttpd.log");
  });
}

std::string HttpGitServer::Url(const std::string& name) const {
  return std::string(https_ ? "https" : "http") + "://localhost:" + std::to_string(port_) +
         "/git/" + name;
}

std::string HttpGitServer::log() const {
  return Sh("cat lighttpd.log error.log 2>/dev/null || true", dir_.path().string()).output;
}

bool SshServer::Start() {
  const std::string d = dir_.path().string();
  const passwd* pw = getpwuid(getuid());
  user_ = pw != nullptr ? pw->pw_name : "root";
  if (getuid() == 0) {
    std::error_code ec;
    fs::create_directories("/run/sshd", ec);  // sshd's privilege separation directory
  }
  auto r =
      Sh("ssh-keygen -q -t ed25519 -N '' -f host_key && ssh-keygen -q -t ed25519 -N '' -f "
         "client_key && cp client_key.pub authorized_keys && chmod 600 authorized_keys && "
         "ssh-keygen -l -E sha256 -f host_key.pub | cut -d' ' -f2",
         d);
  if (r.exit_code != 0) {
    error_ = "ssh-keygen: " + r.output;
    return false;
  }
  fingerprint_ = r.output.substr(0, r.output.find('\n'));
  bool started = StartOnFreePort(process_, &port_, [&](int port) {
    std::ofstream(dir_ / "sshd_config")
        << "Port " << port << "\nListenAddress 127.0.0.1\nHostKey " << d
        << "/host_key\nAuthorizedKeysFile " << d
        << "/authorized_keys\nStrictModes no\nUsePAM no\nPasswordAuthentication no\n"
           "KbdInteractiveAuthentication no\nPubkeyAuthentication yes\n"
           "PermitRootLogin prohibit-password\nPidFile none\nLogLevel VERBOSE\n";
    return process_.Start({"/usr/sbin/sshd", "-D", "-e", "-f", dir_ / "sshd_config"},
                          dir_ / "sshd.log");
  });
  if (!started) error_ = "sshd did not start: " + log();
  return started;
}

std::string SshServer::Url(const std::string& absolute_path) const {
  return "ssh://" + user_ + "@127.0.0.1:" + std::to_string(port_) + absolute_path;
}

std::string SshServer::known_hosts_line() const {
  std::string key = Sh("cut -d' ' -f1,2 host_key.pub", dir_.path().string()).output;
  while (!key.empty() && key.back() == '\n') key.pop_back();
  return std::string("[127.0.0.1]:").append(std::to_string(port_)).append(" ").append(key);
}

std::string SshServer::log() const {
  return Sh("cat sshd.log 2>/dev/null || true", dir_.path().string()).output;
}

}  // namespace ballast::git::testing

// libgit2 1.5.1 as Debian builds it leaks the PCRE2 match data of every regex it runs (config
// and refspec parsing); that is libgit2's, not ballast's, so LeakSanitizer is told to skip it.
extern "C" const char* __lsan_default_suppressions() {  // NOLINT: sanitizer hook
  return "leak:libpcre2-8.so\n";
}
