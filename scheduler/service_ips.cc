#include "scheduler/service_ips.h"

#include <array>
#include <cstdint>
#include <set>

namespace ballast::scheduler {
namespace {

constexpr uint32_t kRangeBase = (127u << 24) | (128u << 16);  // 127.128.0.0
constexpr uint32_t kRangeSize = 1u << 23;                     // /9

// FNV-1a, 64 bits: fixed by its definition, so addresses never change with the compiler or the
// standard library (std::hash may).
uint64_t Fnv1a(const std::string& text) {
  uint64_t h = 14695981039346656037ull;
  for (unsigned char c : text) {
    h ^= c;
    h *= 1099511628211ull;
  }
  return h;
}

std::string Format(uint32_t a) {
  return std::to_string(a >> 24) + "." + std::to_string((a >> 16) & 0xff) + "." +
         std::to_string((a >> 8) & 0xff) + "." + std::to_string(a & 0xff);
}

bool Usable(uint32_t offset) {
  const uint32_t host = offset & 0xff;
  return host != 0 && host != 0xff;
}

// The offset after `offset` in the range that is usable, wrapping around.
uint32_t Next(uint32_t offset) {
  do {
    offset = (offset + 1) % kRangeSize;
  } while (!Usable(offset));
  return offset;
}

uint32_t HashedOffset(const std::string& key) {
  uint32_t offset = static_cast<uint32_t>(Fnv1a(key) % kRangeSize);
  return Usable(offset) ? offset : Next(offset);
}

std::string Key(const model::Service& s) { return s.metadata.namespace_ + "/" + s.metadata.name; }

// spec.clusterIP as written ("" when absent or not a string).
std::string Requested(const model::Service& s) {
  auto it = s.spec.extra.find("clusterIP");
  if (it == s.spec.extra.end() || !it->is_string()) return "";
  return it->get<std::string>();
}

}  // namespace

bool IsLoopbackIPv4(const std::string& address) {
  std::array<int, 4> parts{};
  size_t part = 0, digits = 0;
  for (char c : address) {
    if (c == '.') {
      if (digits == 0 || ++part == parts.size()) return false;
      digits = 0;
    } else if (c >= '0' && c <= '9') {
      if (++digits > 3) return false;
      parts[part] = parts[part] * 10 + (c - '0');
      if (parts[part] > 255) return false;
    } else {
      return false;
    }
  }
  return part == 3 && digits > 0 && parts[0] == 127;
}

std::string HashedClusterIP(const std::string& namespace_, const std::string& name) {
  return Format(kRangeBase + HashedOffset(namespace_ + "/" + name));
}

std::map<std::string, std::string> AllocateClusterIPs(
    const std::vector<const model::Service*>& services) {
  std::map<std::string, const model::Service*> by_key;  // namespace/name order
  for (const model::Service* s : services) by_key.emplace(Key(*s), s);

  std::map<std::string, std::string> out;
  std::set<std::string> taken;
  // First the addresses asked for, so that an allocated one never takes them.
  for (const auto& [key, s] : by_key) {
    const std::string want = Requested(*s);
    if (want == kClusterIPNone) {
      out[key] = "";
    } else if (IsLoopbackIPv4(want) && taken.insert(want).second) {
      out[key] = want;
    }
  }
  for (const auto& [key, s] : by_key) {
    if (out.count(key)) continue;
    uint32_t offset = HashedOffset(key);
    // 2^23 addresses: a free one is always found long before the range is exhausted.
    for (uint32_t tries = 0; tries < kRangeSize; ++tries, offset = Next(offset)) {
      if (taken.insert(Format(kRangeBase + offset)).second) break;
    }
    out[key] = Format(kRangeBase + offset);
  }
  return out;
}

}  // namespace ballast::scheduler
