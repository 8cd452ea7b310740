#include "net/http.h"

#include <cctype>
#include <charconv>
#include <fstream>
#include <sstream>

#include <openssl/crypto.h>

#include "model/digest.h"

namespace ballast::net {

std::string OpenSslVersion() { return OpenSSL_version(OPENSSL_VERSION_STRING); }

namespace {

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

int HttpStatusFor(StatusCode code) {
  switch (code) {
    case StatusCode::kOk:
      return 200;
    case StatusCode::kInvalidArgument:
      return 400;
    case StatusCode::kNotFound:
      return 404;
    case StatusCode::kAlreadyExists:
      return 409;
    case StatusCode::kFailedPrecondition:
      return 409;
    case StatusCode::kPermissionDenied:
      return 403;
    case StatusCode::kUnavailable:
      return 503;
    case StatusCode::kDeadlineExceeded:
      return 504;
    case StatusCode::kAborted:
      return 409;
    case StatusCode::kResourceExhausted:
      return 413;
    case StatusCode::kInternal:
      return 500;
  }
  return 500;
}

}  // namespace

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(a[i])) !=
        std::tolower(static_cast<unsigned char>(b[i]))) {
      return false;
    }
  }
  return true;
}

const std::string* FindHeader(const Headers& headers, std::string_view name) {
  for (const auto& [k, v] : headers) {
    if (EqualsIgnoreCase(k, name)) return &v;
  }
  return nullptr;
}

std::string Request::Query(std::string_view name, std::string fallback) const {
  for (const auto& [k, v] : query) {
    if (k == name) return v;
  }
  return fallback;
}

Result<int64_t> Request::QueryInt(std::string_view name, int64_t fallback, int64_t min,
                                  int64_t max) const {
  const std::string text = Query(name, "\x01");
  if (text == "\x01") return fallback;
  int64_t value = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size() || value < min || value > max) {
    return InvalidArgument("query parameter " + std::string(name) + ": \"" + text +
                           "\" is not a whole number from " + std::to_string(min) + " to " +
                           std::to_string(max));
  }
  return value;
}

Response TextResponse(int status, std::string body) {
  Response r;
  r.status = status;
  r.body = std::move(body);
  return r;
}

Response JsonResponse(int status, const Json& body) {
  Response r;
  r.status = status;
  r.content_type = "application/json";
  r.body = body.dump(-1, ' ', false, Json::error_handler_t::replace);
  r.body += '\n';
  return r;
}

Response ErrorResponse(int status, const std::string& message) {
  return JsonResponse(status, Json{{"error", message}});
}

Response StatusResponse(const Status& status) {
  if (status.ok()) return JsonResponse(200, Json::object());
  return JsonResponse(HttpStatusFor(status.code()),
                      Json{{"error", status.message()}, {"code", StatusCodeName(status.code())}});
}

Result<Json> ParseJsonBody(const Request& request) {
  Json j = Json::parse(request.body, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) {
    return InvalidArgument(request.method + " " + request.path + ": body is not valid JSON");
  }
  return j;
}

bool CheckBearer(const Request& request, const std::string& token) {
  if (token.empty()) return true;
  const std::string* auth = request.Header("Authorization");
  if (auth == nullptr) return false;
  static constexpr std::string_view kPrefix = "Bearer ";
  if (auth->size() < kPrefix.size() ||
      !EqualsIgnoreCase(std::string_view(*auth).substr(0, 7), kPrefix)) {
    return false;
  }
  std::string_view given = std::string_view(*auth).substr(kPrefix.size());
  // Constant time over the expected token's length.
  unsigned char diff = given.size() == token.size() ? 0 : 1;
  for (size_t i = 0; i < token.size(); ++i) {
    unsigned char g = i < given.size() ? static_cast<unsigned char>(given[i]) : 0;
    diff |= g ^ static_cast<unsigned char>(token[i]);
  }
  return diff == 0;
}

Response UnauthorizedResponse() {
  Response r = ErrorResponse(401, "missing or wrong bearer token");
  r.headers.emplace_back("WWW-Authenticate", "Bearer");
  return r;
}

std::string PercentDecode(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (c == '%' && i + 2 < text.size()) {
      int hi = HexValue(text[i + 1]), lo = HexValue(text[i + 2]);
      if (hi >= 0 && lo >= 0) {
        out.push_back(static_cast<char>(hi * 16 + lo));
        i += 2;
        continue;
      }
    }
    out.push_back(c == '+' ? ' ' : c);
  }
  return out;
}

std::string PercentEncode(std::string_view text) {
  static const char* kHex = "0123456789ABCDEF";
  std::string out;
  for (char ch : text) {
    auto c = static_cast<unsigned char>(ch);
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out.push_back(ch);
    } else {
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 15]);
    }
  }
  return out;
}

std::vector<std::pair<std::string, std::string>> ParseQuery(std::string_view query) {
  std::vector<std::pair<std::string, std::string>> out;
  while (!query.empty()) {
    size_t amp = query.find('&');
    std::string_view part = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
    if (part.empty()) continue;
    size_t eq = part.find('=');
    if (eq == std::string_view::npos) {
      out.emplace_back(PercentDecode(part), "");
    } else {
      out.emplace_back(PercentDecode(part.substr(0, eq)), PercentDecode(part.substr(eq + 1)));
    }
  }
  return out;
}

std::string Url::HostPort() const {
  bool v6 = host.find(':') != std::string::npos;
  return (v6 ? "[" + host + "]" : host) + ":" + std::to_string(port);
}

Result<Url> ParseUrl(std::string_view url) {
  Url out;
  size_t sep = url.find("://");
  if (sep == std::string_view::npos) {
    return InvalidArgument("URL \"" + std::string(url) + "\" has no scheme (http:// or https://)");
  }
  out.scheme = std::string(url.substr(0, sep));
  for (auto& c : out.scheme) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (out.scheme != "http" && out.scheme != "https") {
    return InvalidArgument("URL \"" + std::string(url) + "\": unsupported scheme \"" + out.scheme +
                           "\"");
  }
  std::string_view rest = url.substr(sep + 3);
  size_t slash = rest.find_first_of("/?");
  std::string_view authority = rest.substr(0, slash);
  out.target = slash == std::string_view::npos ? "/" : std::string(rest.substr(slash));
  if (!out.target.empty() && out.target[0] == '?') out.target = "/" + out.target;
  if (authority.find('@') != std::string_view::npos) {
    return InvalidArgument("URL \"" + std::string(url) +
                           "\": credentials in URLs are not supported");
  }
  std::string_view port_text;
  if (!authority.empty() && authority[0] == '[') {
    size_t close = authority.find(']');
    if (close == std::string_view::npos) {
      return InvalidArgument("URL \"" + std::string(url) + "\": unterminated IPv6 address");
    }
    out.host = std::string(authority.substr(1, close - 1));
    std::string_view after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after[0] != ':') return InvalidArgument("URL \"" + std::string(url) + "\": bad host");
      port_text = after.substr(1);
    }
  } else {
    size_t colon = authority.rfind(':');
    out.host = std::string(authority.substr(0, colon));
    if (colon != std::string_view::npos) port_text = authority.substr(colon + 1);
  }
  if (out.host.empty()) return InvalidArgument("URL \"" + std::string(url) + "\" has no host");
  if (port_text.empty()) {
    out.port = out.tls() ? 443 : 80;
  } else {
    int port = 0;
    for (char c : port_text) {
      if (c < '0' || c > '9' || port > 65535) {
        return InvalidArgument("URL \"" + std::string(url) + "\": bad port");
      }
      port = port * 10 + (c - '0');
    }
    if (port <= 0 || port > 65535) {
      return InvalidArgument("URL \"" + std::string(url) + "\": bad port");
    }
    out.port = static_cast<uint16_t>(port);
  }
  return out;
}

Result<std::string> ReadTokenFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) return NotFound("token file " + path + ": cannot be read");
  std::string line;
  std::getline(in, line);
  size_t b = line.find_first_not_of(" \t\r\n");
  size_t e = line.find_last_not_of(" \t\r\n");
  if (b == std::string::npos) return InvalidArgument("token file " + path + " is empty");
  return line.substr(b, e - b + 1);
}

std::string DeriveToken(std::string_view secret, std::string_view purpose) {
  if (secret.empty()) return "";
  return model::HmacSha256Hex(secret, purpose);
}

}  // namespace ballast::net
