#pragma once

// The bodies the reconciler's own POST routes accept, decoded and checked on the HTTP thread
// before any work is queued: a type or parse error is InvalidArgument naming the field (a 400),
// never an exception. Pure; fuzzed by fuzz/json_bodies_fuzz.cc.

#include <cstdint>

#include "model/status.h"
#include "net/http.h"

namespace ballast::reconciler {

// POST /api/v1/sync: {"dryRun": bool} or empty.
struct SyncBody {
  bool dry_run = false;
};
Result<SyncBody> ParseSyncBody(const net::Request& request);

// POST /api/v1/rollback: {"id": positive integer, "pin": bool}.
struct RollbackBody {
  int64_t id = 0;
  bool pin = false;
};
Result<RollbackBody> ParseRollbackBody(const net::Request& request);

}  // namespace ballast::reconciler
