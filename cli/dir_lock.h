#pragma once

// One process per state directory: `ballast serve` holds its --state-dir and `ballast agent` its
// --work-dir with an exclusive flock on DIR/ballast.lock, so a second reconciler cannot write the
// same history.git and a second agent cannot adopt (and then stop) another agent's pods. The
// kernel drops the lock when the process ends, even by kill -9: a restart never finds it stale.

#include <string>

namespace ballast::cli {

// Creates `dir` if needed and locks it for the life of the process (the descriptor is kept
// open). On failure returns false and sets `*error` to a sentence naming the directory and,
// when another process holds it, that process's pid and command (`holder`, e.g. "ballast serve").
bool LockDirectory(const std::string& dir, const std::string& holder, std::string* error);

}  // namespace ballast::cli
