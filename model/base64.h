#pragma once

// Standard base64 (RFC 4648 §4, with padding), as Kubernetes stores Secret data and ConfigMap
// binaryData. Pure; OpenSSL does the coding.

#include <optional>
#include <string>
#include <string_view>

namespace ballast::model {

std::string Base64Encode(std::string_view bytes);

// The bytes, or nullopt for text that is not canonical padded base64. Line breaks ("\n",
// "\r") are skipped, as Go's decoder (the API server's) skips them; anything else outside the
// alphabet, a length that is not a multiple of 4, or padding before the end is refused.
// `*error_offset` (when given) is set to the offset of the first offending character, for
// "illegal base64 data at input byte N".
std::optional<std::string> Base64Decode(std::string_view text, size_t* error_offset = nullptr);

}  // namespace ballast::model
