#pragma once

// Push webhooks from git hosts (POST /api/v1/webhook/git). A webhook only triggers a poll, so
// no field of its payload is used; what matters is who may trigger one. With a secret
// configured, a request must carry GitHub's X-Hub-Signature-256 (HMAC-SHA256 of the body),
// Gitea's X-Gitea-Signature (the same HMAC, hex) or GitLab's X-Gitlab-Token (the secret).
// Without a secret anyone may trigger a poll, so such webhooks are rate limited (a token bucket
// of `unsigned_per_minute`, as burst and refill per minute): beyond it, kRateLimited (429).
//
// Thread-safe.

#include <cstddef>
#include <cstdint>
#include <mutex>
#include <string>

#include "net/http.h"

namespace ballast::reconciler {

struct WebhookOptions {
  std::string secret;  // empty: no signature required
  size_t max_bytes = 1 << 20;
  int unsigned_per_minute = 12;  // without a secret: polls triggered per minute at most
};

enum class WebhookVerdict { kAccepted, kTooLarge, kUnauthorized, kRateLimited };

class WebhookVerifier {
 public:
  explicit WebhookVerifier(WebhookOptions options) : options_(std::move(options)) {}
  // `now_ms`: a monotonic clock (Clock::NowMs), for the rate limit.
  WebhookVerdict Verify(const net::Request& request, int64_t now_ms);

 private:
  const WebhookOptions options_;
  std::mutex mu_;       // guards the bucket
  double tokens_ = -1;  // < 0: full, not used yet
  int64_t refilled_ms_ = 0;
};

// GitHub's X-Hub-Signature-256 check: "sha256=" + hex HMAC-SHA256(secret, body), compared in
// constant time.
bool VerifyGithubSignature(const std::string& secret, const std::string& body,
                           const std::string& header);

// HMAC-SHA256 of `data` under `key`, lower-case hex.
std::string HmacSha256Hex(const std::string& key, const std::string& data);

// Equality that takes the same time wherever the strings differ.
bool ConstantTimeEquals(const std::string& a, const std::string& b);

}  // namespace ballast::reconciler
