#pragma once

// Real git servers for the tests, on loopback ports chosen at run time: git daemon, git
// http-backend behind lighttpd (http and https), and sshd. Each owns a temporary directory and
// stops its processes (the whole process group) in its destructor, also when a test fails.

#include <sys/types.h>

#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace ballast::git::testing {

// A fresh directory under $TMPDIR, removed with everything in it on destruction.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::filesystem::path& path() const { return path_; }
  std::string operator/(const std::string& name) const { return (path_ / name).string(); }

 private:
  std::filesystem::path path_;
};

struct ShellResult {
  int exit_code = -1;
  std::string output;  // stdout and stderr
};

// Runs `script` with /bin/sh -c (set -e) in `cwd`. Never throws.
ShellResult Sh(const std::string& script, const std::string& cwd = "");
// Quotes one shell word.
std::string Quote(const std::string& s);

// A child process in its own process group; stopped (SIGTERM, then SIGKILL) on destruction.
class ChildProcess {
 public:
  ChildProcess() = default;
  ~ChildProcess();
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;
  // Starts argv[0] (a full path) with stdout/stderr appended to `log_file`.
  bool Start(const std::vector<std::string>& argv, const std::string& log_file);
  bool Running();
  void Stop();
  pid_t pid() const { return pid_; }

 private:
  pid_t pid_ = -1;
};

// Bare repositories under one root, and a work clone per repository to make commits with the
// git command line (the way users push).
class RepoFarm {
 public:
  RepoFarm();
  const std::filesystem::path& root() const { return dir_.path(); }
  // Creates root/<name> (bare, default branch main) and returns its path.
  std::string CreateBare(const std::string& name);
  // Writes `files` (path → content; an empty optional deletes), commits, pushes to main (or
  // `branch`), and returns the new commit id. With `force`, first drops the branch's last commit
  // (a rewrite), then force-pushes.
  std::string Commit(const std::string& name,
                     const std::map<std::string, std::optional<std::string>>& files,
                     const std::string& message, bool force = false,
                     const std::string& branch = "main");
  // Runs a git command in the work clone of `name`; returns its trimmed output.
  std::string Git(const std::string& name, const std::string& args);
  std::string BarePath(const std::string& name) const { return (dir_.path() / name).string(); }

 private:
  std::string WorkPath(const std::string& name) const;
  TempDir dir_;
  TempDir work_;
};

class GitDaemon {
 public:
  // Serves every repository under `base` on git://127.0.0.1:<port>/<name>.
  bool Start(const std::filesystem::path& base, bool enable_receive_pack);
  // The server gone (SIGTERM), and back on the same port.
  void Stop() { process_.Stop(); }
  bool Restart() { return process_.Start(argv_, dir_ / "daemon.log"); }
  std::string Url(const std::string& name) const;
  int port() const { return port_; }

 private:
  TempDir dir_;
  ChildProcess process_;
  std::vector<std::string> argv_;
  int port_ = 0;
};

// git http-backend behind lighttpd with basic authentication for every request.
class HttpGitServer {
 public:
  static constexpr char kUser[] = "ballast";
  static constexpr char kPassword[] = "s3cret-token";
  bool Start(const std::filesystem::path& base, bool https);
  // http(s)://localhost:<port>/git/<name>
  std::string Url(const std::string& name) const;
  std::string ca_file() const { return dir_ / "ca.pem"; }
  std::string log() const;

 private:
  TempDir dir_;
  ChildProcess process_;
  int port_ = 0;
  bool https_ = false;
};

class SshServer {
 public:
  bool Start();
  // ssh://<user>@127.0.0.1:<port><absolute path>
  std::string Url(const std::string& absolute_path) const;
  std::string client_key() const { return dir_ / "client_key"; }
  std::string host_fingerprint() const { return fingerprint_; }
  int port() const { return port_; }
  // The line a known_hosts file holds for this server: "[127.0.0.1]:<port> ssh-ed25519 AAAA...",
  // as `ssh-keyscan -p <port> 127.0.0.1` prints it.
  std::string known_hosts_line() const;
  std::string error() const { return error_; }
  std::string log() const;

 private:
  TempDir dir_;
  ChildProcess process_;
  int port_ = 0;
  std::string fingerprint_;
  std::string user_;
  std::string error_;
};

}  // namespace ballast::git::testing
