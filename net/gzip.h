#pragma once

// gzip for response bodies (Content-Encoding: gzip). No Boost in this header.

#include <string>
#include <string_view>

namespace ballast::net {

// `data` as one gzip member (RFC 1952): deflate at level 6 (Boost.Beast's port of zlib), CRC-32
// and length trailer. Any gzip reader (browsers, curl --compressed, `gzip -d`) reads it back.
std::string Gzip(std::string_view data);

// True when an Accept-Encoding value accepts gzip: a "gzip" or "x-gzip" coding (or "*") whose
// q-value is not 0.
bool AcceptsGzip(std::string_view accept_encoding);

}  // namespace ballast::net
