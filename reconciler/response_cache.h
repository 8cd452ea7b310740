#pragma once

// Serialized API documents (status, deployments, pods, nodes, ...) kept between changes of the
// reconciler's state, so that a GET is answered on a server thread without waiting for the
// reconcile loop, with a strong ETag for conditional requests (If-None-Match -> 304).
//
// Freshness is the writer's job: the loop thread, the only one that changes the controller,
// invalidates or replaces a document before it answers a request or ships a decision that
// depends on the change, so a reader never gets a document older than something it could have
// seen elsewhere. A document may also carry an expiry (for fields computed from the clock).
//
// Thread-safe: Put / Invalidate / Hot from the loop thread, Lookup from any thread.

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace ballast::reconciler {

class ResponseCache {
 public:
  struct Document {
    std::shared_ptr<const std::string> body;  // shared by every response that sends it
    std::string etag;                         // strong, quoted: "\"0123456789abcdef\""
  };

  // The current document for `key`; nullopt when it was never stored, was invalidated, or has
  // expired. Counts as a use for Hot().
  std::optional<Document> Lookup(const std::string& key, int64_t now_ms);
  // Stores a freshly rendered document and returns it. When the bytes equal the previous
  // document's, the previous one (same ETag, same buffer) stays. `expires_at_ms` 0: valid until
  // invalidated.
  Document Put(const std::string& key, std::string body, int64_t expires_at_ms = 0);
  // The gzip variant of `doc` (the current document of `key`), compressed on first use and kept
  // with it; its ETag is doc's with "-gz" inside the quotes. When `key` moved on meanwhile, the
  // variant is returned but not kept.
  Document Gzipped(const std::string& key, const Document& doc);
  void Invalidate(const std::string& key);
  void InvalidateAll();
  // Keys looked up within the last `window_ms`: documents somebody polls, worth rendering again
  // as soon as the state changes rather than on the next request.
  std::vector<std::string> Hot(int64_t now_ms, int64_t window_ms) const;

 private:
  struct Slot {
    Document doc;
    Document gzip;  // of doc, once asked for
    bool valid = false;
    int64_t expires_at_ms = 0;
    int64_t last_lookup_ms = 0;
  };
  mutable std::mutex mu_;  // guards slots_
  std::map<std::string, Slot, std::less<>> slots_;
};

// The strong entity tag of `body`: a 64-bit FNV-1a hash in hex, quoted.
std::string EntityTag(std::string_view body);

// The ETag of the gzip variant of the document tagged `etag`: "-gz" inside the quotes.
std::string GzipEntityTag(std::string_view etag);

// True when an If-None-Match header value names `etag`: "*", or a comma-separated list of
// tags, where a weak tag (W/"...") matches its strong twin (RFC 9110 weak comparison, which
// If-None-Match uses).
bool IfNoneMatch(std::string_view header, std::string_view etag);

}  // namespace ballast::reconciler
