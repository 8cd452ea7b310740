#include "net/gzip.h"

#include <boost/beast/zlib/deflate_stream.hpp>
#include <boost/crc.hpp>
#include <cctype>
#include <cstdint>

#include "net/http.h"

namespace ballast::net {
namespace {

void AppendLe32(uint32_t v, std::string* out) {
  for (int i = 0; i < 4; ++i) out->push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

}  // namespace

std::string Gzip(std::string_view data) {
  namespace zlib = boost::beast::zlib;
  // Header: magic, deflate, no flags, no mtime, no extra flags, OS unknown.
  std::string out("\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff", 10);
  const size_t header = out.size();
  zlib::deflate_stream deflate;
  deflate.reset(6, 15, 8, zlib::Strategy::normal);
  out.resize(header + deflate.upper_bound(data.size()) + 64);
  zlib::z_params zs;
  zs.next_in = data.data();
  zs.avail_in = data.size();
  zs.next_out = out.data() + header;
  zs.avail_out = out.size() - header;
  for (;;) {
    boost::system::error_code ec;
    deflate.write(zs, zlib::Flush::finish, ec);
    if (ec == zlib::error::end_of_stream) break;
    if (ec && ec != zlib::error::need_buffers) return {};  // cannot happen with valid input
    // Out of room (upper_bound is conservative, so this is a safety net): grow and go on.
    size_t used = header + zs.total_out;
    out.resize(out.size() * 2);
    zs.next_out = out.data() + used;
    zs.avail_out = out.size() - used;
  }
  out.resize(header + zs.total_out);
  boost::crc_32_type crc;
  crc.process_bytes(data.data(), data.size());
  AppendLe32(crc.checksum(), &out);
  AppendLe32(static_cast<uint32_t>(data.size()), &out);  // ISIZE: the length mod 2^32
  return out;
}

bool AcceptsGzip(std::string_view accept_encoding) {
  while (!accept_encoding.empty()) {
    size_t comma = accept_encoding.find(',');
    std::string_view item = accept_encoding.substr(0, comma);
    accept_encoding =
        comma == std::string_view::npos ? std::string_view() : accept_encoding.substr(comma + 1);
    size_t semi = item.find(';');
    std::string_view coding = Trim(item.substr(0, semi));
    if (!EqualsIgnoreCase(coding, "gzip") && !EqualsIgnoreCase(coding, "x-gzip") && coding != "*")
      continue;
    if (semi == std::string_view::npos) return true;
    std::string_view param = Trim(item.substr(semi + 1));
    if (param.size() < 2 || std::tolower(static_cast<unsigned char>(param[0])) != 'q' ||
        param[1] != '=') {
      return true;
    }
    std::string_view q = Trim(param.substr(2));
    // q=0, q=0.0, q=0.000: refused; anything else accepts.
    bool zero = !q.empty() && q[0] == '0';
    for (size_t i = 1; zero && i < q.size(); ++i) zero = q[i] == '.' || q[i] == '0';
    if (!zero) return true;
  }
  return false;
}

}  // namespace ballast::net
