#pragma once

// Time for the reconciler, injected so that rollouts, node grace periods and back-off are tested
// without sleeping (LevelDB Env / Envoy TimeSource shape).

#include <atomic>
#include <chrono>
#include <cstdint>

namespace ballast::reconciler {

class Clock {
 public:
  virtual ~Clock() = default;
  // Milliseconds since the Unix epoch: what agents report (readySince) is on the same scale.
  virtual int64_t NowMs() const = 0;
};

class SystemClock final : public Clock {
 public:
  int64_t NowMs() const override {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
  }
};

// A clock that moves only when told to. Thread-safe.
class FakeClock final : public Clock {
 public:
  explicit FakeClock(int64_t start_ms = 1'700'000'000'000) : now_(start_ms) {}
  int64_t NowMs() const override { return now_.load(); }
  void Advance(int64_t ms) { now_ += ms; }

 private:
  std::atomic<int64_t> now_;
};

}  // namespace ballast::reconciler
