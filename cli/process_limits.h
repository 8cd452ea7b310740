#pragma once

// The long-running servers (serve, agent) hold one descriptor per connection, and their
// connection caps (net::ServerOptions::max_connections, nodeagent::ProxyOptions) are meant to
// bind before the open-file limit does. The common soft limit of 1,024 would bind first, so
// they raise the soft limit to the hard one at start, as Go's runtime does for every program.

#include <sys/resource.h>

namespace ballast::cli {

// Raises RLIMIT_NOFILE's soft limit to its hard limit. Best effort: a failure changes nothing.
inline void RaiseOpenFileLimit() {
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) != 0 || limit.rlim_cur >= limit.rlim_max) return;
  limit.rlim_cur = limit.rlim_max;
  setrlimit(RLIMIT_NOFILE, &limit);
}

}  // namespace ballast::cli
