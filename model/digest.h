#pragma once

// SHA-256 and HMAC-SHA256 as lower-case hex, for every module that names or keys something by
// a digest (config hashes, webhook signatures, token hashes, derived tokens). Pure; OpenSSL
// computes them.

#include <string>
#include <string_view>

namespace ballast::model {

std::string Sha256Hex(std::string_view data);
std::string HmacSha256Hex(std::string_view key, std::string_view data);

}  // namespace ballast::model
