#pragma once

// Kubernetes' CrashLoopBackOff for one container: the delay before restart N is 10 s doubling up
// to 300 s; a run of 10 minutes or more resets it. Pure: times are passed in.

#include <algorithm>
#include <cstdint>

namespace ballast::nodeagent {

struct BackoffPolicy {
  int64_t initial_ms = 10'000;
  int64_t max_ms = 300'000;
  int64_t reset_after_ms = 600'000;
};

class CrashLoopBackoff {
 public:
  explicit CrashLoopBackoff(BackoffPolicy policy = {}) : policy_(policy) {}

  // The container that started at `started_ms` exited at `exited_ms`: returns how long to wait
  // before starting it again.
  int64_t NextDelay(int64_t started_ms, int64_t exited_ms) {
    if (exited_ms - started_ms >= policy_.reset_after_ms) next_ms_ = 0;
    next_ms_ = next_ms_ == 0 ? policy_.initial_ms : std::min(next_ms_ * 2, policy_.max_ms);
    return next_ms_;
  }
  // The delay the last NextDelay returned (0 before any exit).
  int64_t current_ms() const { return next_ms_; }

 private:
  BackoffPolicy policy_;
  int64_t next_ms_ = 0;
};

}  // namespace ballast::nodeagent
