#include "reconciler/webhook.h"

#include <algorithm>

#include <openssl/crypto.h>

#include "model/digest.h"

namespace ballast::reconciler {

bool ConstantTimeEquals(const std::string& a, const std::string& b) {
  if (a.size() != b.size()) return false;
  return CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

std::string HmacSha256Hex(const std::string& key, const std::string& data) {
  return model::HmacSha256Hex(key, data);
}

bool VerifyGithubSignature(const std::string& secret, const std::string& body,
                           const std::string& header) {
  const std::string expected = "sha256=" + HmacSha256Hex(secret, body);
  return ConstantTimeEquals(expected, header);
}

WebhookVerdict WebhookVerifier::Verify(const net::Request& request, int64_t now_ms) {
  if (request.body.size() > options_.max_bytes) return WebhookVerdict::kTooLarge;
  if (options_.secret.empty()) {
    const double capacity = std::max(1, options_.unsigned_per_minute);
    std::lock_guard<std::mutex> lock(mu_);
    if (tokens_ < 0) {
      tokens_ = capacity;
    } else {
      tokens_ = std::min(capacity,
                         tokens_ + static_cast<double>(now_ms - refilled_ms_) * capacity / 60000.0);
    }
    refilled_ms_ = now_ms;
    if (tokens_ < 1) return WebhookVerdict::kRateLimited;
    tokens_ -= 1;
    return WebhookVerdict::kAccepted;
  }
  bool ok = false;
  if (const auto* sig = request.Header("X-Hub-Signature-256")) {
    ok = VerifyGithubSignature(options_.secret, request.body, *sig);
  } else if (const auto* gitea = request.Header("X-Gitea-Signature")) {
    ok = ConstantTimeEquals(HmacSha256Hex(options_.secret, request.body), *gitea);
  } else if (const auto* token = request.Header("X-Gitlab-Token")) {
    ok = ConstantTimeEquals(options_.secret, *token);
  }
  return ok ? WebhookVerdict::kAccepted : WebhookVerdict::kUnauthorized;
}

}  // namespace ballast::reconciler
