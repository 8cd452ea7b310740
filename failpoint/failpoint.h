#pragma once

// Failpoints, as etcd's gofail has them: named places in the code where a test makes the
// process crash, fail or stall, to prove what survives. Compiled in, off by default; enabled
// only by the environment variable BALLAST_FAILPOINTS, read once:
//
//   BALLAST_FAILPOINTS="history-append-before-ref=crash;fetch=sleep(2000);pin-write=error"
//
// Actions: `crash` (SIGKILL to the process itself: a kill -9 or a power cut at exactly that
// point), `error` (the operation fails with Unavailable "failpoint NAME"), `sleep(MS)`, and for
// points that write, `crash-after(N)`: the writer writes N bytes, then crashes (a kill -9 at
// that byte offset). A point
// that is not named costs one lookup in an empty map. The points (docs/ARCHITECTURE.md lists
// them with what each proves):
//   state-write-torn (crash-after(N) only),
//   state-write-before-rename, state-write-after-rename   localfs::WriteFileAtomically
//   history-append-before-ref, history-append-after-ref    git::HistoryStore::Append
//   restore-before-push                                    git::GitSource::Restore
//   fetch                                                  git::GitSource::Poll
//   reconcile-before-ship                                  reconciler::ServiceLoop
//   agent-pod-start-before-record                          nodeagent::PodManager::Start
//   agent-restore-after-adopt                              nodeagent::PodManager::Restore

#include <cstddef>
#include <optional>
#include <string_view>

#include "model/status.h"

namespace ballast::failpoint {

// Evaluates point `name`: OK when it is not enabled (or sleeps, then OK); Unavailable for
// `error`; never returns for `crash`.
Status Hit(std::string_view name);

// For a point enabled as `crash-after(N)`: N, where the writer stops and calls Crash().
std::optional<size_t> CrashAfterBytes(std::string_view name);

// SIGKILL to this process, saying which point on stderr.
[[noreturn]] void Crash(std::string_view name);

// Reads BALLAST_FAILPOINTS again, for a test's forked child: only while one thread runs.
void ReloadForTesting();

}  // namespace ballast::failpoint
