#include "model/base64.h"

#include <openssl/evp.h>

namespace ballast::model {
namespace {

bool InAlphabet(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' ||
         c == '/';
}

}  // namespace

std::string Base64Encode(std::string_view bytes) {
  std::string out(4 * ((bytes.size() + 2) / 3) + 1, '\0');
  const int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                reinterpret_cast<const unsigned char*>(bytes.data()),
                                static_cast<int>(bytes.size()));
  out.resize(n < 0 ? 0 : static_cast<size_t>(n));
  return out;
}

std::optional<std::string> Base64Decode(std::string_view text, size_t* error_offset) {
  std::string clean;
  clean.reserve(text.size());
  size_t padding = 0;
  auto fail = [&](size_t offset) -> std::optional<std::string> {
    if (error_offset != nullptr) *error_offset = offset;
    return std::nullopt;
  };
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (c == '\n' || c == '\r') continue;
    if (c == '=') {
      ++padding;
    } else if (padding > 0 || !InAlphabet(c)) {
      return fail(i);
    }
    clean.push_back(c);
  }
  if (padding > 2 || clean.size() % 4 != 0) return fail(text.size());
  if (clean.empty()) return std::string();
  std::string out(clean.size() / 4 * 3, '\0');
  const int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                reinterpret_cast<const unsigned char*>(clean.data()),
                                static_cast<int>(clean.size()));
  if (n < 0 || static_cast<size_t>(n) < padding) return fail(0);
  out.resize(static_cast<size_t>(n) - padding);
  return out;
}

}  // namespace ballast::model
