#pragma once

// The flags that say how `ballast serve` reaches its manifest repository beyond --repo: the
// https password or token and the ssh key, by file, so that no secret is ever on the command
// line (where any local user reads it in /proc/PID/cmdline), and what to trust (CA file,
// known_hosts).

#include "cli/flags.h"
#include "model/status.h"
#include "sources/git/remote.h"

namespace ballast::cli {

// Adds --git-username, --git-password-file, --git-ssh-key, --git-known-hosts, --git-ca-file.
void AddGitRemoteFlags(FlagSet& flags);

// Fills `remote` (whose url is set) from those flags. Every file named must be readable now
// (InvalidArgument names the flag); the secret files are read again at every fetch, so a
// rotated token is picked up, and their contents are never kept, logged or shown. Without
// --git-known-hosts, ~/.ssh/known_hosts and /etc/ssh/ssh_known_hosts (those that exist) are
// used, as ssh does. Logs a warning when the URL itself holds a password or token.
Status GitRemoteFromFlags(const FlagSet& flags, git::RemoteConfig* remote);

}  // namespace ballast::cli
