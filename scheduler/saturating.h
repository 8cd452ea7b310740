#pragma once

// Time arithmetic on values that come from agents' reports (ready since, last heartbeat): added
// without overflowing, whatever they say.

#include <cstdint>
#include <limits>

namespace ballast::scheduler {

// a + b, clamped to int64_t's range instead of overflowing.
inline int64_t SaturatingAdd(int64_t a, int64_t b) {
  int64_t r;
  if (__builtin_add_overflow(a, b, &r)) {
    return b > 0 ? std::numeric_limits<int64_t>::max() : std::numeric_limits<int64_t>::min();
  }
  return r;
}

}  // namespace ballast::scheduler
