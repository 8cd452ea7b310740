#include "model/rfc3339.h"

#include <algorithm>
#include <chrono>
#include <cstdio>

namespace ballast::model {

std::string FormatRfc3339(int64_t ms) {
  // Floor division, so that times before the epoch format too.
  int64_t secs = ms / 1000 - (ms % 1000 < 0 ? 1 : 0);
  int64_t days = secs / 86400 - (secs % 86400 < 0 ? 1 : 0);
  int64_t rem = secs - days * 86400;
  // Keep the year within what year_month_day holds (+-32767).
  days = std::clamp<int64_t>(days, -11'000'000, 11'000'000);
  const std::chrono::year_month_day ymd{
      std::chrono::sys_days{std::chrono::days{static_cast<int32_t>(days)}}};
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%04d-%02u-%02uT%02d:%02d:%02dZ", static_cast<int>(ymd.year()),
                static_cast<unsigned>(ymd.month()), static_cast<unsigned>(ymd.day()),
                static_cast<int>(rem / 3600), static_cast<int>(rem / 60 % 60),
                static_cast<int>(rem % 60));
  return buf;
}

}  // namespace ballast::model
