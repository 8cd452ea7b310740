#include "reconciler/response_cache.h"

#include <cstdio>

#include "net/gzip.h"

namespace ballast::reconciler {

std::optional<ResponseCache::Document> ResponseCache::Lookup(const std::string& key,
                                                             int64_t now_ms) {
  std::lock_guard<std::mutex> lock(mu_);
  Slot& slot = slots_[key];
  slot.last_lookup_ms = now_ms;
  if (!slot.valid) return std::nullopt;
  if (slot.expires_at_ms != 0 && now_ms >= slot.expires_at_ms) return std::nullopt;
  return slot.doc;
}

ResponseCache::Document ResponseCache::Put(const std::string& key, std::string body,
                                           int64_t expires_at_ms) {
  std::string etag = EntityTag(body);
  std::lock_guard<std::mutex> lock(mu_);
  Slot& slot = slots_[key];
  if (!slot.doc.body || slot.doc.etag != etag || *slot.doc.body != body) {
    slot.doc.body = std::make_shared<const std::string>(std::move(body));
    slot.doc.etag = std::move(etag);
    slot.gzip = Document{};
  }
  slot.valid = true;
  slot.expires_at_ms = expires_at_ms;
  return slot.doc;
}

ResponseCache::Document ResponseCache::Gzipped(const std::string& key, const Document& doc) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = slots_.find(key);
    if (it != slots_.end() && it->second.doc.body == doc.body && it->second.gzip.body) {
      return it->second.gzip;
    }
  }
  // Compressed outside the lock: other readers go on meanwhile (two may compress the same
  // document once; the result is the same).
  Document gz;
  gz.body = std::make_shared<const std::string>(net::Gzip(*doc.body));
  gz.etag = GzipEntityTag(doc.etag);
  std::lock_guard<std::mutex> lock(mu_);
  auto it = slots_.find(key);
  if (it != slots_.end() && it->second.doc.body == doc.body) it->second.gzip = gz;
  return gz;
}

void ResponseCache::Invalidate(const std::string& key) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = slots_.find(key);
  if (it != slots_.end()) it->second.valid = false;
}

void ResponseCache::InvalidateAll() {
  std::lock_guard<std::mutex> lock(mu_);
  for (auto& [key, slot] : slots_) slot.valid = false;
}

std::vector<std::string> ResponseCache::Hot(int64_t now_ms, int64_t window_ms) const {
  std::vector<std::string> out;
  std::lock_guard<std::mutex> lock(mu_);
  for (const auto& [key, slot] : slots_) {
    if (slot.last_lookup_ms != 0 && now_ms - slot.last_lookup_ms <= window_ms) out.push_back(key);
  }
  return out;
}

std::string EntityTag(std::string_view body) {
  uint64_t h = 14695981039346656037ull;
  for (unsigned char c : body) {
    h ^= c;
    h *= 1099511628211ull;
  }
  char buf[24];
  std::snprintf(buf, sizeof buf, "\"%016llx\"", static_cast<unsigned long long>(h));
  return buf;
}

std::string GzipEntityTag(std::string_view etag) {
  if (etag.size() < 2 || etag.back() != '"') return std::string(etag) + "-gz";
  return std::string(etag.substr(0, etag.size() - 1)) + "-gz\"";
}

bool IfNoneMatch(std::string_view header, std::string_view etag) {
  size_t i = 0;
  while (i < header.size()) {
    while (i < header.size() && (header[i] == ' ' || header[i] == '\t' || header[i] == ',')) ++i;
    if (i >= header.size()) break;
    if (header[i] == '*') return true;
    if (header.substr(i, 2) == "W/") i += 2;
    if (i >= header.size() || header[i] != '"') return false;  // malformed: no match
    size_t end = header.find('"', i + 1);
    if (end == std::string_view::npos) return false;
    if (header.substr(i, end - i + 1) == etag) return true;
    i = end + 1;
  }
  return false;
}

}  // namespace ballast::reconciler
