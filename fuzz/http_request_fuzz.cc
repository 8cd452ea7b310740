// Raw bytes as a client sends them to a listener: Beast's request parser with the server's own
// limits (net::ServerOptions defaults), then what net/ does with what it parsed — the target's
// percent-decoding and query parsing, the headers' lookups, integer query parameters and the
// JSON body. Nothing may crash or read out of bounds whatever the bytes.

#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/string_body.hpp>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "net/gzip.h"
#include "net/http.h"
#include "net/server.h"

namespace http = boost::beast::http;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const ballast::net::ServerOptions limits;
  http::request_parser<http::string_body> parser;
  parser.header_limit(static_cast<uint32_t>(limits.max_header_bytes));
  parser.body_limit(limits.max_body_bytes);
  boost::beast::error_code ec;
  size_t used = 0;
  while (used < size && !parser.is_done()) {
    const size_t n = parser.put(boost::asio::buffer(data + used, size - used), ec);
    if (ec == http::error::need_more) break;
    if (ec) return 0;
    if (n == 0) break;
    used += n;
  }
  if (!parser.is_header_done()) return 0;
  auto& msg = parser.get();
  ballast::net::Request req;
  req.method = std::string(msg.method_string());
  req.target = std::string(msg.target());
  const std::string_view target = req.target;
  const size_t q = target.find('?');
  req.path = ballast::net::PercentDecode(target.substr(0, q));
  if (q != std::string_view::npos) req.query = ballast::net::ParseQuery(target.substr(q + 1));
  for (const auto& field : msg) {
    req.headers.emplace_back(std::string(field.name_string()), std::string(field.value()));
  }
  req.body = msg.body();
  (void)req.Header("Authorization");
  (void)req.Header("If-None-Match");
  (void)req.Query("node");
  (void)req.QueryInt("wait", 0, 0, 300);
  (void)req.QueryInt("version", 0, 0, INT64_MAX);
  (void)ballast::net::AcceptsGzip(req.Header("Accept-Encoding") ? *req.Header("Accept-Encoding")
                                                                : "");
  (void)ballast::net::ParseJsonBody(req);
  (void)ballast::net::CheckBearer(req, "t0ken");
  return 0;
}
