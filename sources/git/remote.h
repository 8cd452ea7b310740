#pragma once

// How ballast reaches a git remote: URL, credentials and trust settings. Shared by the manifest
// source (fetch, push for rollback). Plain values; no libgit2 types.

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

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
  // Pinned host key: "SHA256:..." exactly as `ssh-keygen -l -E sha256 -f key.pub` prints it.
  // libgit2 does not read known_hosts, so ssh remotes are refused without it (unless insecure).
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

// `url` without secrets, for messages and logs: http(s)://user:secret@host/… becomes
// http(s)://user:***@host/…, and a bare token in the user part (https://TOKEN@host/…) becomes
// https://***@host/…. An ssh user (ssh://git@host) is kept; other URLs are returned unchanged.
std::string RedactUrl(std::string_view url);

}  // namespace ballast::git
