#pragma once

// Time for the reconciler and the agent, injected so that rollouts, back-off, probes, node
// grace periods and heartbeat deadlines are tested without sleeping (LevelDB Env / Envoy
// TimeSource shape).
//
// Two readings, never mixed:
//   NowMs()  — monotonic milliseconds (arbitrary origin): every deadline, timeout, back-off,
//              liveness and ordering decision. A jump of the wall clock does not move it.
//   WallMs() — milliseconds since the Unix epoch: only what is shown to people or recorded for
//              them (history entry times, "last heartbeat", a pod's age).
// Times that cross a process boundary (an agent's readySince) are wall times of the sender and
// are turned into the receiver's monotonic scale at the boundary, by their age.

#include <atomic>
#include <chrono>
#include <cstdint>

namespace ballast {

class Clock {
 public:
  virtual ~Clock() = default;
  virtual int64_t NowMs() const = 0;
  virtual int64_t WallMs() const = 0;
};

class SystemClock final : public Clock {
 public:
  int64_t NowMs() const override {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::steady_clock::now().time_since_epoch())
        .count();
  }
  int64_t WallMs() const override {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
  }
};

// A clock that moves only when told to; both readings move together unless the wall clock is
// set (a jump). Thread-safe.
class FakeClock final : public Clock {
 public:
  explicit FakeClock(int64_t start_ms = 1'000'000) : now_(start_ms) {}
  int64_t NowMs() const override { return now_.load(); }
  int64_t WallMs() const override { return kWallOrigin + now_.load() + wall_offset_.load(); }
  void Advance(int64_t ms) { now_ += ms; }
  // A step of the wall clock alone (NTP, an operator, a VM resumed): monotonic time stays.
  void JumpWall(int64_t ms) { wall_offset_ += ms; }

  static constexpr int64_t kWallOrigin = 1'700'000'000'000;

 private:
  std::atomic<int64_t> now_;
  std::atomic<int64_t> wall_offset_{0};
};

// Seconds elapsed since `t0`, for duration metrics (which measure the process, not the clock
// the logic runs on).
inline double SecondsSince(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace ballast
