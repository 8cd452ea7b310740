#pragma once

// How ballast reaches a git remote: URL, credentials and trust settings. Shared by the manifest
// source (fetch, push for rollback). Plain values; no libgit2 types.

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace ballast::git {

// Supported URLs: a local path, file://, git://, http://, https://, ssh://user@host[:port]/path
// and scp-like user@host:path.
struct RemoteConfig {
  std::string url;

  // http(s): basic credentials. `password_file` holds the password or an access token (first
  // line, surrounding whitespace trimmed). The user name comes from `username`, else from the
  // URL, else "git". Re-read at every operation so a rotated token is picked up.
  std::string username;
  std::string password_file;

  // ssh: the private key (ed25519 recommended; RSA keys fail against current OpenSSH because
  // libssh2 signs with SHA-1) and optionally its public key (default: `<key>.pub` if present).
  // The user is the one in the URL, else `username`, else "git".
  std::string ssh_key_file;
  std::string ssh_public_key_file;
  // The host key is checked against what is configured below: an ssh remote is refused unless
  // its key passes every check given, and refused when none is given (libgit2 1.5 checks no
  // host key itself; `insecure_skip_verify` aside).
  //
  // known_hosts files in OpenSSH's format (plain or hashed names, as ssh-keyscan and ssh write
  // them), read at every operation with libssh2's known-hosts functions, in order: the first
  // file that lists the host with the offered key accepts it; a file that lists the host with
  // another key of the same type refuses it (a changed key); a host listed in none is refused.
  // The host is looked up as "[host]:port" for a port other than 22, and by its plain name.
  // Lines libssh2 cannot read (@cert-authority, @revoked, unknown key types) are skipped, and
  // wildcard patterns never match: list the host by name.
  std::vector<std::string> known_hosts_files;
  // Pinned host key: "SHA256:..." exactly as `ssh-keygen -l -E sha256 -f key.pub` prints it.
  std::string ssh_host_fingerprint;

  // https: a PEM file with the CA certificates to trust instead of the system's.
  std::string ca_file;
  // Accept any TLS certificate and any ssh host key. Logged as a warning at every operation.
  bool insecure_skip_verify = false;

  // Bounds for one operation (a fetch or a push, connection included): its wall time, enforced
  // on connect, on every socket read and write and by a watchdog (kDeadlineExceeded), and the
  // bytes received (kResourceExhausted).
  std::chrono::seconds timeout{120};
  uint64_t max_fetch_bytes = uint64_t{2} << 30;  // 2 GiB
};

// `url` without secrets, for messages and logs: scheme://user:secret@host/… becomes
// scheme://user:***@host/… (any scheme, and scp-like user:secret@host:path), and a bare user
// part over http(s) (https://TOKEN@host/…), which is how access tokens are passed, becomes
// https://***@host/…. An ssh user (ssh://git@host, git@host:path) is kept; other URLs are
// returned unchanged.
std::string RedactUrl(std::string_view url);

// True when `url` carries a secret in its user part, i.e. when RedactUrl changes it.
bool UrlHasCredentials(std::string_view url);

// `text` (an error message, which libgit2 may have built from the URL) with `url` and the
// secret in its user part, as written and percent-decoded, replaced by what RedactUrl shows.
std::string RedactUrlSecrets(std::string_view text, std::string_view url);

}  // namespace ballast::git
