#include "sources/git/libgit2_util.h"

#include <git2/sys/stream.h>
#include <libssh2.h>
#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <fcntl.h>
#include <algorithm>
#include <cctype>
#include <cerrno>
#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <optional>
#include <sstream>
#include <thread>

#include "log/log.h"

namespace ballast::git::internal {
namespace {

std::once_flag g_init_once;

// libgit2 keeps the TLS trust store process-wide; this remembers which CA file is installed.
std::mutex g_ca_mutex;
std::string g_ca_installed;  // "" = libgit2's default
bool g_ca_changed = false;

constexpr char kEmptyTreeHex[] = "4b825dc642cb6eb9a060e54bf8d69288fbee4904";

std::string LastErrorMessage() {
  const git_error* e = git_error_last();
  return e != nullptr && e->message != nullptr ? e->message : "unknown libgit2 error";
}

int LastErrorClass() {
  const git_error* e = git_error_last();
  return e != nullptr ? e->klass : GIT_ERROR_NONE;
}

Result<std::string> ReadSecretFile(const std::string& path) {
  std::error_code ec;
  auto size = std::filesystem::file_size(path, ec);
  if (ec) return NotFound("cannot read credentials file " + path + ": " + ec.message());
  if (size > 64 * 1024) return ResourceExhausted("credentials file " + path + " is over 64 KiB");
  std::ifstream in(path, std::ios::binary);
  std::string line;
  std::getline(in, line);
  auto begin = line.find_first_not_of(" \t\r\n");
  auto end = line.find_last_not_of(" \t\r\n");
  if (begin == std::string::npos) return InvalidArgument("credentials file " + path + " is empty");
  return line.substr(begin, end - begin + 1);
}

bool IsSshUrl(std::string_view url) {
  if (url.starts_with("ssh://") || url.starts_with("git+ssh://") || url.starts_with("ssh+git://"))
    return true;
  // scp-like user@host:path (no scheme, a ':' before any '/').
  if (url.find("://") != std::string_view::npos) return false;
  auto colon = url.find(':');
  auto slash = url.find('/');
  return colon != std::string_view::npos && (slash == std::string_view::npos || colon < slash) &&
         colon > 1;
}

int CredentialsCallback(git_credential** out, const char* url, const char* username_from_url,
                        unsigned int allowed, void* payload) {
  auto* state = static_cast<CallbackState*>(payload);
  const RemoteConfig& c = *state->config;
  std::string from_url = username_from_url != nullptr ? username_from_url : "";
  bool ssh = IsSshUrl(c.url);
  std::string user = ssh ? (!from_url.empty() ? from_url : c.username)
                         : (!c.username.empty() ? c.username : from_url);
  if (user.empty()) user = "git";

  if (allowed & GIT_CREDENTIAL_USERNAME) return git_credential_username_new(out, user.c_str());

  if (++state->credential_attempts > 1) {
    state->failure = PermissionDenied("authentication refused by " + RedactUrl(url) +
                                      " for user '" + user + "'");
    return GIT_EAUTH;
  }
  if ((allowed & GIT_CREDENTIAL_SSH_KEY) && !c.ssh_key_file.empty()) {
    std::string pub = c.ssh_public_key_file;
    if (pub.empty() && std::filesystem::exists(c.ssh_key_file + ".pub"))
      pub = c.ssh_key_file + ".pub";
    if (!std::filesystem::exists(c.ssh_key_file)) {
      state->failure = NotFound("ssh key file " + c.ssh_key_file + " does not exist");
      return GIT_EAUTH;
    }
    return git_credential_ssh_key_new(out, user.c_str(), pub.empty() ? nullptr : pub.c_str(),
                                      c.ssh_key_file.c_str(), nullptr);
  }
  if ((allowed & GIT_CREDENTIAL_USERPASS_PLAINTEXT) && !c.password_file.empty()) {
    auto secret = ReadSecretFile(c.password_file);
    if (!secret.ok()) {
      state->failure = secret.status();
      return GIT_EAUTH;
    }
    return git_credential_userpass_plaintext_new(out, user.c_str(), secret->c_str());
  }
  state->failure = PermissionDenied(RedactUrl(url) +
                                    " asks for credentials and none of the kind it accepts are "
                                    "configured (" +
                                    (ssh ? "an ssh key file" : "a password or token file") + ")");
  return GIT_EAUTH;
}

std::string NormalizeFingerprint(std::string fp) {
  if (fp.starts_with("SHA256:")) fp = fp.substr(7);
  while (!fp.empty() && (fp.back() == '=' || fp.back() == ' ' || fp.back() == '\n')) fp.pop_back();
  return fp;
}

// The port of an ssh:// URL (22 when it names none, and for scp-like user@host:path).
int SshPort(std::string_view url) {
  auto scheme = url.find("://");
  if (scheme == std::string_view::npos) return 22;
  std::string_view authority = url.substr(scheme + 3);
  authority = authority.substr(0, authority.find('/'));
  if (auto at = authority.rfind('@'); at != std::string_view::npos) {
    authority = authority.substr(at + 1);
  }
  if (auto bracket = authority.rfind(']'); bracket != std::string_view::npos) {
    authority = authority.substr(bracket + 1);  // [IPv6]:port
  }
  auto colon = authority.rfind(':');
  if (colon == std::string_view::npos) return 22;
  int port = 0;
  for (char ch : authority.substr(colon + 1)) {
    if (ch < '0' || ch > '9' || port > 65535) return 22;
    port = port * 10 + (ch - '0');
  }
  return port > 0 && port <= 65535 ? port : 22;
}

// The key type as known_hosts and ssh-keyscan spell it, and libssh2's known-hosts bit for it.
struct SshKeyType {
  const char* name;
  int known_host_bits;
};
SshKeyType KeyTypeOf(git_cert_ssh_raw_type_t type) {
  switch (type) {
    case GIT_CERT_SSH_RAW_TYPE_RSA:
      return {"ssh-rsa", LIBSSH2_KNOWNHOST_KEY_SSHRSA};
    case GIT_CERT_SSH_RAW_TYPE_DSS:
      return {"ssh-dss", LIBSSH2_KNOWNHOST_KEY_SSHDSS};
    case GIT_CERT_SSH_RAW_TYPE_KEY_ECDSA_256:
      return {"ecdsa-sha2-nistp256", LIBSSH2_KNOWNHOST_KEY_ECDSA_256};
    case GIT_CERT_SSH_RAW_TYPE_KEY_ECDSA_384:
      return {"ecdsa-sha2-nistp384", LIBSSH2_KNOWNHOST_KEY_ECDSA_384};
    case GIT_CERT_SSH_RAW_TYPE_KEY_ECDSA_521:
      return {"ecdsa-sha2-nistp521", LIBSSH2_KNOWNHOST_KEY_ECDSA_521};
    case GIT_CERT_SSH_RAW_TYPE_KEY_ED25519:
      return {"ssh-ed25519", LIBSSH2_KNOWNHOST_KEY_ED25519};
    default:
      return {"unknown", LIBSSH2_KNOWNHOST_KEY_UNKNOWN};
  }
}

// A libssh2 known-hosts collection; libssh2 wants a session to hang it on, which never connects.
class KnownHosts {
 public:
  KnownHosts() : session_(libssh2_session_init()) {
    if (session_ != nullptr) hosts_ = libssh2_knownhost_init(session_);
  }
  ~KnownHosts() {
    if (hosts_ != nullptr) libssh2_knownhost_free(hosts_);
    if (session_ != nullptr) libssh2_session_free(session_);
  }
  KnownHosts(const KnownHosts&) = delete;
  KnownHosts& operator=(const KnownHosts&) = delete;
  LIBSSH2_KNOWNHOSTS* get() const { return hosts_; }

 private:
  LIBSSH2_SESSION* session_ = nullptr;
  LIBSSH2_KNOWNHOSTS* hosts_ = nullptr;
};

constexpr uintmax_t kMaxKnownHostsBytes = 16 << 20;

// libssh2's verdict (LIBSSH2_KNOWNHOST_CHECK_*) on `key` for host:port from the known_hosts
// file at `path`, read line by line so that a line libssh2 cannot read (a marker, an unknown key
// type) skips that line rather than the rest of the file, as libssh2_knownhost_readfile would.
Result<int> CheckKnownHostsFile(const std::string& path, const std::string& host, int port,
                                const git_cert_hostkey& key) {
  std::error_code ec;
  const uintmax_t size = std::filesystem::file_size(path, ec);
  if (ec) return NotFound("cannot read known_hosts file " + path + ": " + ec.message());
  if (size > kMaxKnownHostsBytes) {
    return ResourceExhausted("known_hosts file " + path + " is over 16 MiB");
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) return NotFound("cannot read known_hosts file " + path + ": " + std::strerror(errno));
  KnownHosts known;
  if (known.get() == nullptr) return Internal("libssh2 could not allocate a known-hosts list");
  std::string line;
  while (std::getline(in, line)) {
    libssh2_knownhost_readline(known.get(), line.c_str(), line.size(),
                               LIBSSH2_KNOWNHOST_FILE_OPENSSH);
  }
  libssh2_knownhost* entry = nullptr;
  const int type = LIBSSH2_KNOWNHOST_TYPE_PLAIN | LIBSSH2_KNOWNHOST_KEYENC_RAW |
                   KeyTypeOf(key.raw_type).known_host_bits;
  // Port 22 is looked up by the plain name only, as ssh does.
  int rc = libssh2_knownhost_checkp(known.get(), host.c_str(), port == 22 ? -1 : port, key.hostkey,
                                    key.hostkey_len, type, &entry);
  if (rc == LIBSSH2_KNOWNHOST_CHECK_FAILURE) {
    return Internal("libssh2 could not check the host key against " + path);
  }
  return rc;
}

// Whether the ssh host key `key` that `host` offered passes the checks `c` configures (see
// RemoteConfig: the pinned fingerprint, the known_hosts files). PermissionDenied says why not.
Status CheckSshHostKey(const RemoteConfig& c, const std::string& host,
                       const git_cert_hostkey& key) {
  const std::string offered =
      (key.type & GIT_CERT_SSH_SHA256) ? Sha256Fingerprint(key.hash_sha256) : "(no SHA256)";
  const bool raw = (key.type & GIT_CERT_SSH_RAW) != 0;
  const int port = SshPort(c.url);
  const std::string name = port == 22 ? host : "[" + host + "]:" + std::to_string(port);
  const std::string described =
      std::string(raw ? KeyTypeOf(key.raw_type).name : "key") + " " + offered;
  if (c.ssh_host_fingerprint.empty() && c.known_hosts_files.empty()) {
    return PermissionDenied("ssh host key of " + name + " cannot be verified: no known_hosts " +
                            "file is configured (--git-known-hosts) and no fingerprint is " +
                            "pinned (the host offered " + described + ")");
  }
  if (!c.ssh_host_fingerprint.empty() &&
      NormalizeFingerprint(offered) != NormalizeFingerprint(c.ssh_host_fingerprint)) {
    return PermissionDenied("ssh host key of " + name + " does not match the pinned " +
                            c.ssh_host_fingerprint + " (the host offered " + described + ")");
  }
  if (c.known_hosts_files.empty()) return Status::Ok();
  if (!raw) {
    return PermissionDenied("ssh host key of " + name +
                            " cannot be checked against known_hosts: libgit2 did not pass the "
                            "key itself");
  }
  std::string files;
  for (const std::string& file : c.known_hosts_files) {
    auto verdict = CheckKnownHostsFile(file, host, port, key);
    if (!verdict.ok()) return verdict.status().WithContext("ssh host key of " + name);
    if (*verdict == LIBSSH2_KNOWNHOST_CHECK_MATCH) return Status::Ok();
    if (*verdict == LIBSSH2_KNOWNHOST_CHECK_MISMATCH) {
      return PermissionDenied(
          "ssh host key of " + name + " (" + described + ") is not the one " + file +
          " lists for it: the host's key has changed, or someone is in between "
          "(man-in-the-middle). Not connecting; if the change is expected, replace the host's "
          "line in " +
          file);
    }
    files += (files.empty() ? "" : ", ") + file;
  }
  return PermissionDenied("ssh host " + name + " is not in the known_hosts file " + files +
                          " (it offered " + described +
                          "): add its key there once you have checked that fingerprint, e.g. "
                          "with ssh-keyscan -p " +
                          std::to_string(port) + " " + host);
}

int CertificateCheckCallback(git_cert* cert, int valid, const char* host, void* payload) {
  auto* state = static_cast<CallbackState*>(payload);
  const RemoteConfig& c = *state->config;
  std::string h = host != nullptr ? host : "?";
  if (cert->cert_type == GIT_CERT_HOSTKEY_LIBSSH2) {
    const auto& key = *reinterpret_cast<const git_cert_hostkey*>(cert);
    if (c.insecure_skip_verify) {
      std::string offered =
          (key.type & GIT_CERT_SSH_SHA256) ? Sha256Fingerprint(key.hash_sha256) : "(no SHA256)";
      LogEvent(LogLevel::kWarn, "git_insecure_host_key_accepted",
               {{"host", h}, {"fingerprint", offered}});
      return 0;
    }
    if (Status verdict = CheckSshHostKey(c, h, key); !verdict.ok()) {
      state->failure = verdict;
      return GIT_ECERTIFICATE;
    }
    return 0;
  }
  if (valid) return 0;
  if (c.insecure_skip_verify) {
    LogEvent(LogLevel::kWarn, "git_insecure_certificate_accepted", {{"host", h}});
    return 0;
  }
  state->failure = PermissionDenied(
      "TLS certificate of " + h + " is not trusted" +
      (c.ca_file.empty() ? std::string(" (configure a CA file)") : " by CA file " + c.ca_file));
  return GIT_ECERTIFICATE;
}

bool PastDeadline(CallbackState* state) {
  if (std::chrono::steady_clock::now() <= state->deadline) return false;
  state->failure = {
      StatusCode::kDeadlineExceeded,
      "operation took longer than " + std::to_string(state->config->timeout.count()) + "s"};
  return true;
}

int TransferProgressCallback(const git_indexer_progress* stats, void* payload) {
  auto* state = static_cast<CallbackState*>(payload);
  if (state->max_bytes != 0 && stats->received_bytes > state->max_bytes) {
    state->failure =
        ResourceExhausted("remote sent more than " + std::to_string(state->max_bytes) + " bytes");
    return -1;
  }
  return PastDeadline(state) ? -1 : 0;
}

int SidebandCallback(const char*, int, void* payload) {
  return PastDeadline(static_cast<CallbackState*>(payload)) ? -1 : 0;
}

int PushTransferCallback(unsigned int, unsigned int, size_t, void* payload) {
  return PastDeadline(static_cast<CallbackState*>(payload)) ? -1 : 0;
}

int PushUpdateReferenceCallback(const char* refname, const char* status, void* payload) {
  auto* state = static_cast<CallbackState*>(payload);
  if (status != nullptr) state->push_rejections[refname] = status;
  return 0;
}

// The operation running on this thread, so sockets opened for it honour its deadline.
thread_local CallbackState* t_operation = nullptr;

// ---- A socket stream with timeouts --------------------------------------------------------
// libgit2 1.5 has no connect or read timeout. ballast registers its own plain socket stream
// (libgit2 layers TLS and the git, http and ssh transports on it) whose connect, reads and
// writes wait at most until the current operation's deadline. The first members mirror
// libgit2's internal git_socket_stream, because its ssh transport reads the descriptor from
// there.
struct TimedSocketStream {
  git_stream parent;
  char* host;
  char* port;
  int s;
  CallbackState* operation;  // the operation that opened it (may be null)
};

// Cuts (shutdown, not close) every connection still open at its operation's deadline. The
// poll-based waits below already bound git:// and http(s); this also bounds ssh, where libssh2
// reads the socket itself. Only sockets this file opened are ever touched, and a socket is
// unregistered under the lock before it is closed, so a reused descriptor is never cut.
// Its thread starts with the first connection and is joined when the process's statics are
// destroyed (after main returns, when every owner of a git operation has joined its threads).
class SocketWatchdog {
 public:
  ~SocketWatchdog() {
    {
      std::lock_guard lock(mu_);
      stopping_ = true;
    }
    cv_.notify_one();
    if (thread_.joinable()) thread_.join();
  }
  void Add(TimedSocketStream* st, std::chrono::steady_clock::time_point deadline) {
    std::lock_guard lock(mu_);
    live_[st] = deadline;
    if (!thread_.joinable()) thread_ = std::thread([this] { Run(); });
    cv_.notify_one();
  }
  void Remove(TimedSocketStream* st) {
    std::lock_guard lock(mu_);
    live_.erase(st);
  }
  void Forget(CallbackState* operation) {
    std::lock_guard lock(mu_);
    for (auto& [st, deadline] : live_) {
      if (st->operation == operation) st->operation = nullptr;
    }
  }

 private:
  void Run() {
    std::unique_lock lock(mu_);
    while (!stopping_) {
      auto now = std::chrono::steady_clock::now();
      auto next = now + std::chrono::hours(1);
      for (auto it = live_.begin(); it != live_.end();) {
        if (it->second <= now) {
          shutdown(it->first->s, SHUT_RDWR);
          if (it->first->operation != nullptr) it->first->operation->timed_out = true;
          it = live_.erase(it);
        } else {
          next = std::min(next, it->second);
          ++it;
        }
      }
      cv_.wait_until(lock, next);
    }
  }

  std::mutex mu_;
  std::condition_variable cv_;
  std::map<TimedSocketStream*, std::chrono::steady_clock::time_point> live_;
  bool stopping_ = false;
  std::thread thread_;  // guarded by mu_ until joined
};

SocketWatchdog& Watchdog() {
  static SocketWatchdog watchdog;
  return watchdog;
}

int RemainingMs(std::chrono::steady_clock::time_point* deadline) {
  *deadline = t_operation != nullptr ? t_operation->deadline
                                     : std::chrono::steady_clock::now() + std::chrono::seconds(120);
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                  *deadline - std::chrono::steady_clock::now())
                  .count();
  return static_cast<int>(std::clamp<int64_t>(left, 0, 24 * 3600 * 1000));
}

int StreamTimeout(TimedSocketStream* st, const char* doing) {
  std::string message = std::string("timed out ") + doing + " " + st->host + ":" + st->port;
  if (t_operation != nullptr) {
    t_operation->failure = {
        StatusCode::kDeadlineExceeded,
        message + " (limit " + std::to_string(t_operation->config->timeout.count()) + "s)"};
  }
  git_error_set_str(GIT_ERROR_NET, message.c_str());
  return -1;
}

// Waits for `events` on the socket until the deadline: 1 ready, 0 timed out, -1 error.
int WaitSocket(int fd, short events) {
  std::chrono::steady_clock::time_point deadline;
  for (;;) {
    pollfd p{fd, events, 0};
    int rc = poll(&p, 1, RemainingMs(&deadline));
    if (rc > 0) return 1;
    if (rc == 0) return 0;
    if (errno != EINTR) return -1;
  }
}

int StreamConnect(git_stream* stream) {
  auto* st = reinterpret_cast<TimedSocketStream*>(stream);
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* info = nullptr;
  if (int rc = getaddrinfo(st->host, st->port, &hints, &info); rc != 0) {
    std::string m =
        std::string("failed to resolve address for ") + st->host + ": " + gai_strerror(rc);
    git_error_set_str(GIT_ERROR_NET, m.c_str());
    return -1;
  }
  std::string last_error = "no address";
  for (addrinfo* a = info; a != nullptr; a = a->ai_next) {
    int fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, a->ai_protocol);
    if (fd < 0) continue;
    int rc = connect(fd, a->ai_addr, a->ai_addrlen);
    if (rc != 0 && errno == EINPROGRESS) {
      int ready = WaitSocket(fd, POLLOUT);
      if (ready == 0) {
        close(fd);
        freeaddrinfo(info);
        return StreamTimeout(st, "connecting to");
      }
      int err = 0;
      socklen_t len = sizeof(err);
      getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
      rc = ready > 0 && err == 0 ? 0 : -1;
      if (err != 0) errno = err;
    }
    if (rc == 0) {
      // Blocking from here on: reads and writes wait through WaitSocket first.
      fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
      st->s = fd;
      st->operation = t_operation;
      std::chrono::steady_clock::time_point deadline;
      RemainingMs(&deadline);
      Watchdog().Add(st, deadline);
      freeaddrinfo(info);
      return 0;
    }
    last_error = std::strerror(errno);
    close(fd);
  }
  freeaddrinfo(info);
  std::string m =
      std::string("failed to connect to ") + st->host + ":" + st->port + ": " + last_error;
  git_error_set_str(GIT_ERROR_NET, m.c_str());
  return -1;
}

ssize_t StreamRead(git_stream* stream, void* data, size_t len) {
  auto* st = reinterpret_cast<TimedSocketStream*>(stream);
  int ready = WaitSocket(st->s, POLLIN);
  if (ready == 0) return StreamTimeout(st, "reading from");
  ssize_t n;
  do {
    n = recv(st->s, data, len, 0);
  } while (n < 0 && errno == EINTR);
  if (ready < 0 || n < 0) {
    std::string m =
        std::string("error receiving data from ") + st->host + ": " + std::strerror(errno);
    git_error_set_str(GIT_ERROR_NET, m.c_str());
    return -1;
  }
  return n;
}

ssize_t StreamWrite(git_stream* stream, const char* data, size_t len, int) {
  auto* st = reinterpret_cast<TimedSocketStream*>(stream);
  int ready = WaitSocket(st->s, POLLOUT);
  if (ready == 0) return StreamTimeout(st, "sending to");
  ssize_t n;
  do {
    n = send(st->s, data, len, MSG_NOSIGNAL);
  } while (n < 0 && errno == EINTR);
  if (ready < 0 || n < 0) {
    std::string m = std::string("error sending data to ") + st->host + ": " + std::strerror(errno);
    git_error_set_str(GIT_ERROR_NET, m.c_str());
    return -1;
  }
  return n;
}

int StreamClose(git_stream* stream) {
  auto* st = reinterpret_cast<TimedSocketStream*>(stream);
  Watchdog().Remove(st);
  if (st->s >= 0) close(st->s);
  st->s = -1;
  return 0;
}

void StreamFree(git_stream* stream) {
  auto* st = reinterpret_cast<TimedSocketStream*>(stream);
  StreamClose(stream);
  std::free(st->host);
  std::free(st->port);
  delete st;
}

int StreamInit(git_stream** out, const char* host, const char* port) {
  auto* st = new TimedSocketStream{};
  st->parent.version = GIT_STREAM_VERSION;
  st->parent.connect = StreamConnect;
  st->parent.read = StreamRead;
  st->parent.write = StreamWrite;
  st->parent.close = StreamClose;
  st->parent.free = StreamFree;
  st->host = strdup(host != nullptr ? host : "");
  st->port = strdup(port != nullptr ? port : "");
  st->s = -1;
  *out = &st->parent;
  return 0;
}

}  // namespace

void EnsureLibgit2() {
  std::call_once(g_init_once, [] {
    git_libgit2_init();
    // Objects and refs reach the disk before a ref points at them: a crash never leaves a ref
    // to a missing object.
    git_libgit2_opts(GIT_OPT_ENABLE_FSYNC_GITDIR, 1);
    git_libgit2_opts(GIT_OPT_SET_USER_AGENT, "ballast");
    // At most this many pack files open at once (libgit2's default is no limit); compaction
    // (compact.h) keeps their number small anyway.
    git_libgit2_opts(GIT_OPT_SET_MWINDOW_FILE_LIMIT, size_t{128});
    // libgit2 caches parsed objects up to 256 MiB by default; the reconciler reads each revision
    // once (its parse results are cached apart), so a small cache loses nothing.
    git_libgit2_opts(GIT_OPT_SET_CACHE_MAX_SIZE, ssize_t{32} << 20);
    static git_stream_registration registration = {GIT_STREAM_VERSION, StreamInit, nullptr};
    if (git_stream_register(GIT_STREAM_STANDARD, &registration) != 0) {
      LogEvent(LogLevel::kWarn, "git_stream_timeouts_unavailable", {{"error", LastErrorMessage()}});
    }
  });
}

Status Libgit2Error(int rc, std::string_view what) {
  std::string message = std::string(what) + ": " + LastErrorMessage();
  int klass = LastErrorClass();
  switch (rc) {
    case GIT_ENOTFOUND:
      return NotFound(message);
    case GIT_EAUTH:
    case GIT_ECERTIFICATE:
      return PermissionDenied(message);
    case GIT_ENONFASTFORWARD:
      return Aborted(message);
    default:
      break;
  }
  if (klass == GIT_ERROR_NET || klass == GIT_ERROR_SSH || klass == GIT_ERROR_HTTP ||
      klass == GIT_ERROR_SSL) {
    if (message.find("401") != std::string::npos || message.find("403") != std::string::npos ||
        message.find("authentication") != std::string::npos) {
      return PermissionDenied(message);
    }
    return Unavailable(message);
  }
  return Internal(message);
}

bool IsLocalStorageError(int error_class) {
  switch (error_class) {
    case GIT_ERROR_ODB:
    case GIT_ERROR_ZLIB:
    case GIT_ERROR_OBJECT:
    case GIT_ERROR_REFERENCE:
    case GIT_ERROR_REPOSITORY:
    case GIT_ERROR_INDEXER:
    case GIT_ERROR_CONFIG:
    case GIT_ERROR_TREE:
    case GIT_ERROR_SHA:
      return true;
    default:
      return false;
  }
}

int CreateRemote(git_remote** out, git_repository* repo, const std::string& url) {
  git_remote_create_options options;
  git_remote_create_options_init(&options, GIT_REMOTE_CREATE_OPTIONS_VERSION);
  options.repository = repo;
  options.flags = GIT_REMOTE_CREATE_SKIP_INSTEADOF;
  return git_remote_create_with_opts(out, url.c_str(), &options);
}

std::string OidHex(const git_oid& oid) {
  char buf[GIT_OID_HEXSZ + 1];
  git_oid_tostr(buf, sizeof(buf), &oid);
  return buf;
}

Result<git_oid> ParseOid(std::string_view hex) {
  git_oid oid;
  if (hex.size() != GIT_OID_HEXSZ)
    return InvalidArgument("not a full object id: " + std::string(hex));
  if (git_oid_fromstrn(&oid, hex.data(), hex.size()) != 0) {
    return InvalidArgument("not a full object id: " + std::string(hex));
  }
  return oid;
}

std::string Sha256Fingerprint(const unsigned char (&hash)[32]) {
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out = "SHA256:";
  uint32_t acc = 0;
  int bits = 0;
  for (unsigned char b : hash) {
    acc = (acc << 8) | b;
    bits += 8;
    while (bits >= 6) {
      bits -= 6;
      out += kAlphabet[(acc >> bits) & 0x3f];
    }
  }
  if (bits > 0) out += kAlphabet[(acc << (6 - bits)) & 0x3f];
  return out;  // no '=' padding, like ssh-keygen
}

git_remote_callbacks MakeCallbacks(CallbackState* state) {
  git_remote_callbacks callbacks;
  git_remote_init_callbacks(&callbacks, GIT_REMOTE_CALLBACKS_VERSION);
  callbacks.credentials = CredentialsCallback;
  callbacks.certificate_check = CertificateCheckCallback;
  callbacks.transfer_progress = TransferProgressCallback;
  callbacks.sideband_progress = SidebandCallback;
  callbacks.push_transfer_progress = PushTransferCallback;
  callbacks.push_update_reference = PushUpdateReferenceCallback;
  callbacks.payload = state;
  return callbacks;
}

RemoteOperation::RemoteOperation(const RemoteConfig& config) {
  EnsureLibgit2();
  state_.config = &config;
  state_.deadline = std::chrono::steady_clock::now() + config.timeout;
  state_.max_bytes = config.max_fetch_bytes;
  callbacks_ = MakeCallbacks(&state_);
  previous_operation_ = t_operation;
  t_operation = &state_;
  if (config.insecure_skip_verify) {
    LogEvent(LogLevel::kWarn, "git_insecure_verification_disabled",
             {{"remote", RedactUrl(config.url)}});
  }
  if (config.url.starts_with("https://") && (!config.ca_file.empty() || g_ca_changed)) {
    ca_lock_ = std::unique_lock<std::mutex>(g_ca_mutex);
    if (g_ca_installed != config.ca_file) {
      if (!config.ca_file.empty()) {
        git_libgit2_opts(GIT_OPT_SET_SSL_CERT_LOCATIONS, config.ca_file.c_str(), nullptr);
      } else if (std::filesystem::exists("/etc/ssl/certs/ca-certificates.crt")) {
        git_libgit2_opts(GIT_OPT_SET_SSL_CERT_LOCATIONS, "/etc/ssl/certs/ca-certificates.crt",
                         nullptr);
      } else {
        git_libgit2_opts(GIT_OPT_SET_SSL_CERT_LOCATIONS, nullptr, "/etc/ssl/certs");
      }
      g_ca_installed = config.ca_file;
      g_ca_changed = true;
    }
  }
}

RemoteOperation::~RemoteOperation() {
  Watchdog().Forget(&state_);
  t_operation = previous_operation_;
}

Status RemoteOperation::Error(int rc, std::string_view what) const {
  std::string context = std::string(what) + " " + RedactUrl(state_.config->url);
  if (!state_.failure.ok()) return state_.failure.WithContext(context);
  if (state_.timed_out) {
    return Status(StatusCode::kDeadlineExceeded,
                  "timed out after " + std::to_string(state_.config->timeout.count()) + "s")
        .WithContext(context);
  }
  Status error = Libgit2Error(rc, context);
  return Status(error.code(), RedactUrlSecrets(error.message(), state_.config->url));
}

namespace {

struct TreeNode {
  std::map<std::string, TreeNode> dirs;
  std::map<std::string, std::string_view> files;
};

bool ValidComponent(std::string_view c) {
  return !c.empty() && c != "." && c != ".." && c != ".git" &&
         c.find('\0') == std::string_view::npos;
}

std::vector<std::string_view> SplitPath(std::string_view path) {
  std::vector<std::string_view> parts;
  size_t start = 0;
  while (start <= path.size()) {
    size_t end = path.find('/', start);
    if (end == std::string_view::npos) end = path.size();
    if (end > start) parts.push_back(path.substr(start, end - start));
    start = end + 1;
  }
  return parts;
}

Result<git_oid> WriteNode(git_repository* repo, const TreeNode& node) {
  git_treebuilder* raw = nullptr;
  if (int rc = git_treebuilder_new(&raw, repo, nullptr); rc != 0) {
    return Libgit2Error(rc, "create tree");
  }
  TreeBuilderPtr builder(raw);
  for (const auto& [name, content] : node.files) {
    git_oid blob;
    if (int rc = git_blob_create_from_buffer(&blob, repo, content.data(), content.size());
        rc != 0) {
      return Libgit2Error(rc, "write blob " + name);
    }
    if (int rc =
            git_treebuilder_insert(nullptr, builder.get(), name.c_str(), &blob, GIT_FILEMODE_BLOB);
        rc != 0) {
      return Libgit2Error(rc, "add " + name + " to tree");
    }
  }
  for (const auto& [name, child] : node.dirs) {
    auto sub = WriteNode(repo, child);
    if (!sub.ok()) return sub.status();
    if (int rc =
            git_treebuilder_insert(nullptr, builder.get(), name.c_str(), &*sub, GIT_FILEMODE_TREE);
        rc != 0) {
      return Libgit2Error(rc, "add " + name + "/ to tree");
    }
  }
  git_oid out;
  if (int rc = git_treebuilder_write(&out, builder.get()); rc != 0) {
    return Libgit2Error(rc, "write tree");
  }
  return out;
}

bool IsEmptyTree(const git_oid& oid) {
  git_oid empty;
  git_oid_fromstr(&empty, kEmptyTreeHex);
  return git_oid_equal(&oid, &empty) != 0;
}

Result<git_oid> ReplaceAt(git_repository* repo, const git_tree* base,
                          const std::vector<std::string_view>& parts, size_t index,
                          const git_oid* subtree) {
  git_treebuilder* raw = nullptr;
  if (int rc = git_treebuilder_new(&raw, repo, base); rc != 0) {
    return Libgit2Error(rc, "create tree");
  }
  TreeBuilderPtr builder(raw);
  std::string name(parts[index]);
  git_oid replacement;
  bool remove = false;
  if (index + 1 == parts.size()) {
    if (subtree == nullptr || IsEmptyTree(*subtree)) {
      remove = true;
    } else {
      replacement = *subtree;
    }
  } else {
    TreePtr child;
    const git_tree_entry* existing = git_treebuilder_get(builder.get(), name.c_str());
    if (existing != nullptr && git_tree_entry_type(existing) == GIT_OBJECT_TREE) {
      git_tree* t = nullptr;
      if (int rc = git_tree_lookup(&t, repo, git_tree_entry_id(existing)); rc != 0) {
        return Libgit2Error(rc, "read tree " + name);
      }
      child.reset(t);
    }
    auto sub = ReplaceAt(repo, child.get(), parts, index + 1, subtree);
    if (!sub.ok()) return sub.status();
    if (IsEmptyTree(*sub)) {
      remove = true;
    } else {
      replacement = *sub;
    }
  }
  if (remove) {
    if (git_treebuilder_get(builder.get(), name.c_str()) != nullptr) {
      if (int rc = git_treebuilder_remove(builder.get(), name.c_str()); rc != 0) {
        return Libgit2Error(rc, "remove " + name + " from tree");
      }
    }
  } else if (int rc = git_treebuilder_insert(nullptr, builder.get(), name.c_str(), &replacement,
                                             GIT_FILEMODE_TREE);
             rc != 0) {
    return Libgit2Error(rc, "add " + name + "/ to tree");
  }
  git_oid out;
  if (int rc = git_treebuilder_write(&out, builder.get()); rc != 0) {
    return Libgit2Error(rc, "write tree");
  }
  return out;
}

}  // namespace

Result<git_oid> WriteTree(git_repository* repo, const std::vector<TreeFile>& files) {
  TreeNode root;
  for (const TreeFile& f : files) {
    auto parts = SplitPath(f.path);
    if (parts.empty() || f.path.starts_with('/')) {
      return InvalidArgument("bad file path '" + f.path + "'");
    }
    TreeNode* node = &root;
    for (size_t i = 0; i < parts.size(); ++i) {
      if (!ValidComponent(parts[i])) return InvalidArgument("bad file path '" + f.path + "'");
      std::string name(parts[i]);
      if (i + 1 == parts.size()) {
        if (node->dirs.count(name) != 0 || !node->files.emplace(name, f.content).second) {
          return InvalidArgument("file path '" + f.path + "' given twice or as file and folder");
        }
      } else {
        if (node->files.count(name) != 0) {
          return InvalidArgument("file path '" + f.path + "' given as file and folder");
        }
        node = &node->dirs[name];
      }
    }
  }
  return WriteNode(repo, root);
}

Result<git_oid> ReplaceSubtree(git_repository* repo, const git_tree* base, std::string_view path,
                               const git_oid* subtree) {
  auto parts = SplitPath(path);
  for (auto p : parts) {
    if (!ValidComponent(p)) return InvalidArgument("bad path '" + std::string(path) + "'");
  }
  if (parts.empty()) {
    if (subtree != nullptr) return *subtree;
    return WriteNode(repo, TreeNode{});
  }
  return ReplaceAt(repo, base, parts, 0, subtree);
}

namespace {

// Folders deeper than this are refused (the recursion below is bounded by it).
constexpr int kMaxTreeDepth = 128;

Status ListBlobsIn(git_repository* repo, const git_tree* tree, const std::string& prefix,
                   std::vector<TreeBlob>* out, size_t max_files, int depth, size_t* visited) {
  if (depth > kMaxTreeDepth) {
    return ResourceExhausted("folders nested deeper than " + std::to_string(kMaxTreeDepth) +
                             " at " + prefix);
  }
  size_t count = git_tree_entrycount(tree);
  for (size_t i = 0; i < count; ++i) {
    const git_tree_entry* e = git_tree_entry_byindex(tree, i);
    std::string path = prefix + git_tree_entry_name(e);
    git_object_t type = git_tree_entry_type(e);
    if (type != GIT_OBJECT_TREE &&
        (type != GIT_OBJECT_BLOB || git_tree_entry_filemode(e) == GIT_FILEMODE_LINK)) {
      continue;
    }
    // Files and folders both count: a tree may list one folder many times, and folders
    // repeated in folders would be visited 2^depth times without yielding a file.
    if (++*visited > max_files) {
      return ResourceExhausted("more than " + std::to_string(max_files) + " files and folders");
    }
    if (type == GIT_OBJECT_TREE) {
      git_tree* sub = nullptr;
      if (int rc = git_tree_lookup(&sub, repo, git_tree_entry_id(e)); rc != 0) {
        return Libgit2Error(rc, "read tree " + path);
      }
      TreePtr owned(sub);
      Status s = ListBlobsIn(repo, sub, path + "/", out, max_files, depth + 1, visited);
      if (!s.ok()) return s;
    } else {
      out->push_back({path, *git_tree_entry_id(e)});
    }
  }
  return Status::Ok();
}

}  // namespace

Status ListBlobs(git_repository* repo, const git_tree* tree, const std::string& prefix,
                 std::vector<TreeBlob>* out, size_t max_files) {
  size_t visited = out->size();
  return ListBlobsIn(repo, tree, prefix, out, max_files, 0, &visited);
}

std::function<Result<std::optional<std::string>>(const std::string&)> TreeFileReader(
    git_repository* repo, const git_tree* root, std::string where, size_t max_file_bytes,
    uint64_t max_total_bytes) {
  auto total = std::make_shared<uint64_t>(0);
  return [=](const std::string& p) -> Result<std::optional<std::string>> {
    git_tree_entry* raw_entry = nullptr;
    if (git_tree_entry_bypath(&raw_entry, root, p.c_str()) != 0) {
      return std::optional<std::string>();
    }
    TreeEntryPtr entry(raw_entry);
    if (git_tree_entry_type(entry.get()) != GIT_OBJECT_BLOB ||
        git_tree_entry_filemode(entry.get()) == GIT_FILEMODE_LINK) {
      return std::optional<std::string>();  // a folder, or a symbolic link: not followed
    }
    git_blob* raw_blob = nullptr;
    if (int rc = git_blob_lookup(&raw_blob, repo, git_tree_entry_id(entry.get())); rc != 0) {
      return Libgit2Error(rc, "read " + where + ":" + p);
    }
    BlobPtr blob(raw_blob);
    const auto size = static_cast<size_t>(git_blob_rawsize(blob.get()));
    if (size > max_file_bytes) {
      return ResourceExhausted(where + ":" + p + " is " + std::to_string(size) +
                               " bytes, more than the " + std::to_string(max_file_bytes) +
                               " a file may have");
    }
    *total += size;
    if (*total > max_total_bytes) {
      return ResourceExhausted("the files read at " + where + " exceed " +
                               std::to_string(max_total_bytes) + " bytes");
    }
    return std::optional<std::string>(
        std::string(static_cast<const char*>(git_blob_rawcontent(blob.get())), size));
  };
}

}  // namespace ballast::git::internal

namespace ballast::git {
namespace {

// Where the secret of a URL's user part is: [begin, begin + size) of the URL.
struct UrlSecret {
  size_t begin = 0;
  size_t size = 0;
};

bool StartsWithNoCase(std::string_view s, std::string_view prefix) {
  return s.size() >= prefix.size() &&
         std::equal(prefix.begin(), prefix.end(), s.begin(),
                    [](char a, char b) { return std::tolower(a) == std::tolower(b); });
}

// The secret in `url`'s user part: the password of user:password@, or over http(s) a bare user
// part (an access token). Scheme URLs: the user part ends at the last '@' before the path (a
// password may hold an unescaped '@'); scp-like user@host:path, at the first '@'.
std::optional<UrlSecret> FindUrlSecret(std::string_view url) {
  size_t start = 0;
  size_t at = std::string_view::npos;
  if (auto scheme = url.find("://"); scheme != std::string_view::npos) {
    start = scheme + 3;
    size_t authority_end = url.find_first_of("/?#", start);
    at = url.substr(0, authority_end).rfind('@');
    if (at != std::string_view::npos && at < start) at = std::string_view::npos;
  } else {
    at = url.substr(0, url.find('/')).find('@');
  }
  if (at == std::string_view::npos) return std::nullopt;
  UrlSecret secret;
  if (auto colon = url.find(':', start); colon < at) {
    secret = {colon + 1, at - colon - 1};
  } else if (StartsWithNoCase(url, "http://") || StartsWithNoCase(url, "https://")) {
    secret = {start, at - start};
  }  // else an ssh user name, which is no secret
  if (secret.size == 0) return std::nullopt;
  return secret;
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  c = static_cast<char>(std::tolower(c));
  return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

std::string PercentDecoded(std::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size() && HexValue(s[i + 1]) >= 0 && HexValue(s[i + 2]) >= 0) {
      out += static_cast<char>(HexValue(s[i + 1]) * 16 + HexValue(s[i + 2]));
      i += 2;
    } else {
      out += s[i];
    }
  }
  return out;
}

void ReplaceEvery(std::string* text, std::string_view what, std::string_view with) {
  if (what.empty()) return;
  for (size_t at = text->find(what); at != std::string::npos;
       at = text->find(what, at + with.size())) {
    text->replace(at, what.size(), with);
  }
}

}  // namespace

std::string RedactUrl(std::string_view url) {
  std::string u(url);
  if (auto secret = FindUrlSecret(url)) u.replace(secret->begin, secret->size, "***");
  return u;
}

bool UrlHasCredentials(std::string_view url) { return FindUrlSecret(url).has_value(); }

std::string RedactUrlSecrets(std::string_view text, std::string_view url) {
  std::string out(text);
  auto secret = FindUrlSecret(url);
  if (!secret) return out;
  ReplaceEvery(&out, url, RedactUrl(url));
  const std::string_view raw = url.substr(secret->begin, secret->size);
  ReplaceEvery(&out, raw, "***");
  ReplaceEvery(&out, PercentDecoded(raw), "***");
  return out;
}

}  // namespace ballast::git
