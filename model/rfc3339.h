#pragma once

// Times as the Kubernetes API writes them: RFC 3339 in UTC, to the second. Pure formatting of a
// value (no clock): what the API documents, the history records and the rollout conditions show.

#include <cstdint>
#include <string>

namespace ballast::model {

// Milliseconds since the epoch as "2026-11-25T17:36:36Z" (floored to the second; times before
// the epoch format too; any int64_t gives a string, the year clamped to +-32767).
std::string FormatRfc3339(int64_t ms);

}  // namespace ballast::model
