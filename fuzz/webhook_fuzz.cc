// A push webhook as a git host (or anyone) sends it: the headers GitHub, GitLab and Gitea sign
// with, and the body. The first byte picks the header and whether a secret is configured, the
// bytes up to the first newline are the header's value, the rest is the body. Never a crash,
// and never accepted with a secret unless the signature is right.

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "reconciler/webhook.h"

namespace {

constexpr const char* kHeaders[] = {"X-Hub-Signature-256", "X-Gitlab-Token", "X-Gitea-Signature",
                                    "X-Hub-Signature", "Content-Length"};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const uint8_t pick = data[0];
  std::string_view rest(reinterpret_cast<const char*>(data) + 1, size - 1);
  const size_t nl = rest.find('\n');
  const std::string_view value = rest.substr(0, nl);
  const std::string_view body = nl == std::string_view::npos ? "" : rest.substr(nl + 1);
  ballast::net::Request request;
  request.method = "POST";
  request.path = "/api/v1/webhook/git";
  request.headers = {{kHeaders[pick % 5], std::string(value)}};
  request.body = std::string(body);
  const bool with_secret = (pick & 0x80) != 0;
  ballast::reconciler::WebhookVerifier verifier(
      {with_secret ? "fuzz-s3cret" : "", /*max_bytes=*/4096, /*unsigned_per_minute=*/12});
  const auto verdict = verifier.Verify(request, /*now_ms=*/1000);
  // With a secret, acceptance needs the secret itself (GitLab) or its HMAC, which random bytes
  // do not find: an accepted request without either is a forgery that passed.
  if (with_secret && verdict == ballast::reconciler::WebhookVerdict::kAccepted &&
      value.find("fuzz-s3cret") == std::string_view::npos && value.size() < 64) {
    __builtin_trap();
  }
  return 0;
}
