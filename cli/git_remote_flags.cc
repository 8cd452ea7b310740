#include "cli/git_remote_flags.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "cli/flags.h"
#include "log/log.h"

namespace ballast::cli {
namespace {

// The file a flag names can be opened for reading now; the error names the flag.
Status CheckReadable(const std::string& flag, const std::string& path) {
  if (access(path.c_str(), R_OK) != 0) {
    return InvalidArgument("--" + flag + ": cannot read " + path + ": " + std::strerror(errno));
  }
  return Status::Ok();
}

std::vector<std::string> DefaultKnownHostsFiles() {
  std::vector<std::string> candidates;
  if (const char* home = std::getenv("HOME"); home != nullptr && *home != '\0') {
    candidates.push_back(std::string(home).append("/.ssh/known_hosts"));
  }
  candidates.emplace_back("/etc/ssh/ssh_known_hosts");
  std::vector<std::string> found;
  for (const std::string& c : candidates) {
    if (access(c.c_str(), R_OK) == 0) found.push_back(c);
  }
  return found;
}

}  // namespace

void AddGitRemoteFlags(FlagSet& flags) {
  flags.AddString("git-username", "", "",
                  "https user name (default: the one in --repo, else \"git\")");
  flags.AddString("git-password-file", "", "",
                  "https: file whose first line is the password or access token (read at every "
                  "fetch; never put it in --repo, where ps shows it)");
  flags.AddString("git-ssh-key", "", "",
                  "ssh:// and user@host:path: private key file without passphrase (public key: "
                  "KEY.pub, else derived from the key)");
  flags.AddString("git-known-hosts", "", "",
                  "ssh: known_hosts file the host's key must be listed in (default: "
                  "~/.ssh/known_hosts and /etc/ssh/ssh_known_hosts, those that exist). libgit2 "
                  "1.5 checks no host key itself: a host in none of them is refused");
  flags.AddString("git-ca-file", "", "",
                  "https: PEM file of the CA certificates to trust instead of the system's");
}

Status GitRemoteFromFlags(const FlagSet& flags, git::RemoteConfig* remote) {
  remote->username = flags.Get("git-username");
  if (const std::string& path = flags.Get("git-password-file"); !path.empty()) {
    // Read once so that a wrong file stops the start; the value is dropped here.
    if (auto secret = SecretFromFlag(flags, "git-password-file"); !secret.ok()) {
      return InvalidArgument(secret.status().message());
    }
    remote->password_file = path;
    WarnIfOthersCanRead(path, "--git-password-file");
  }
  if (const std::string& path = flags.Get("git-ssh-key"); !path.empty()) {
    if (Status s = CheckReadable("git-ssh-key", path); !s.ok()) return s;
    remote->ssh_key_file = path;
    WarnIfOthersCanRead(path, "--git-ssh-key");
  }
  if (const std::string& path = flags.Get("git-known-hosts"); !path.empty()) {
    if (Status s = CheckReadable("git-known-hosts", path); !s.ok()) return s;
    remote->known_hosts_files = {path};
  } else {
    remote->known_hosts_files = DefaultKnownHostsFiles();
  }
  if (const std::string& path = flags.Get("git-ca-file"); !path.empty()) {
    if (Status s = CheckReadable("git-ca-file", path); !s.ok()) return s;
    remote->ca_file = path;
  }
  if (git::UrlHasCredentials(remote->url)) {
    std::string scheme = remote->url.substr(0, remote->url.find("://"));
    for (char& ch : scheme) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    const bool http = scheme == "http" || scheme == "https";
    LogEvent(LogLevel::kWarn, "git_credentials_in_url",
             {{"repo", git::RedactUrl(remote->url)},
              {"why", http ? "--repo holds a password or token, which every local user can read "
                             "in ps and /proc/PID/cmdline: put it in a file only ballast can "
                             "read and give --git-password-file (and --git-username)"
                           : "--repo holds a password, which every local user can read in ps "
                             "and /proc/PID/cmdline: give --git-ssh-key instead"}});
  }
  return Status::Ok();
}

}  // namespace ballast::cli
