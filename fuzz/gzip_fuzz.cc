// Response bodies are gzipped by net::Gzip (Beast's deflate): whatever the bytes, the result is
// a gzip stream that zlib — an independent implementation — inflates back to exactly them.

#include <zlib.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "net/gzip.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  const std::string packed = ballast::net::Gzip(input);
  z_stream z{};
  if (inflateInit2(&z, 16 + MAX_WBITS) != Z_OK) __builtin_trap();  // gzip wrapper
  std::string out(size + 1, '\0');
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(packed.data()));
  z.avail_in = static_cast<uInt>(packed.size());
  z.next_out = reinterpret_cast<Bytef*>(out.data());
  z.avail_out = static_cast<uInt>(out.size());
  const int rc = inflate(&z, Z_FINISH);
  const size_t produced = out.size() - z.avail_out;
  inflateEnd(&z);
  if (rc != Z_STREAM_END || produced != size || out.compare(0, size, input) != 0) {
    __builtin_trap();
  }
  return 0;
}
