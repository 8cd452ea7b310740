// The one Beast translation unit of the client. Each request runs on a private io_context on
// the calling thread; a single deadline on the tcp_stream covers every step.

#include "net/client.h"

#include <openssl/ssl.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <mutex>
#include <set>

#include "net/await.h"

namespace ballast::net {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;

struct HttpClient::Impl {
  explicit Impl(ClientOptions o) : options(std::move(o)) {}
  ClientOptions options;
  std::mutex mu;  // guards the fields below
  bool cancelled = false;
  std::set<asio::io_context*> in_flight;
  std::optional<ssl::context> tls;  // built on first https use
  Status tls_status;
};

namespace {

// Waits for one step on `ioc`; nullopt when the client was cancelled. Never restarts the
// context: once Cancel() stopped it, every later step returns at once.
template <class Start>
std::optional<beast::error_code> Step(asio::io_context& ioc, Start&& start) {
  return Await(std::forward<Start>(start), [&](const bool& done) {
    while (!done && ioc.run_one() > 0) {
    }
  });
}

// The status of a failed step: the client's cancel, the deadline, or the network's error.
Status StepFailure(const std::optional<beast::error_code>& ec, const std::string& what,
                   const std::string& step) {
  if (!ec) return Aborted(what + ": client cancelled");
  if (*ec == beast::error::timeout) {
    return Status(StatusCode::kDeadlineExceeded, what + ": " + step + " timed out");
  }
  return Unavailable(what + ": " + step + ": " + ec->message());
}

template <class Stream>
Result<ClientResponse> Exchange(asio::io_context& ioc, Stream& stream,
                                const http::request<http::string_body>& req, size_t max_body,
                                const std::string& what) {
  auto ec = Step(ioc, [&](auto handler) { http::async_write(stream, req, handler); });
  if (!ec || *ec) return StepFailure(ec, what, "write");
  beast::flat_buffer buffer;
  http::response_parser<http::string_body> parser;
  parser.body_limit(max_body);
  parser.header_limit(64 * 1024);
  ec = Step(ioc, [&](auto handler) { http::async_read(stream, buffer, parser, handler); });
  if (ec && *ec == http::error::body_limit) {
    return ResourceExhausted(what + ": response larger than " + std::to_string(max_body) +
                             " bytes");
  }
  if (!ec || *ec) return StepFailure(ec, what, "read");
  ClientResponse out;
  auto& msg = parser.get();
  out.status = static_cast<int>(msg.result_int());
  for (const auto& f : msg)
    out.headers.emplace_back(std::string(f.name_string()), std::string(f.value()));
  out.body = std::move(msg.body());
  return out;
}

}  // namespace

Result<Json> ClientResponse::JsonBody() const {
  Json j = Json::parse(body, nullptr, false);
  if (j.is_discarded()) return InvalidArgument("response body is not valid JSON");
  return j;
}

HttpClient::HttpClient(ClientOptions options) : impl_(std::make_unique<Impl>(std::move(options))) {}
HttpClient::~HttpClient() = default;

void HttpClient::Cancel() {
  std::lock_guard<std::mutex> lock(impl_->mu);
  impl_->cancelled = true;
  for (auto* ioc : impl_->in_flight) ioc->stop();
}

Result<ClientResponse> HttpClient::Get(const std::string& url) {
  ClientRequest r;
  r.url = url;
  return Do(r);
}

Result<ClientResponse> HttpClient::PostJson(const std::string& url, const Json& body) {
  ClientRequest r;
  r.method = "POST";
  r.url = url;
  r.body = body.dump(-1, ' ', false, Json::error_handler_t::replace);
  r.content_type = "application/json";
  return Do(r);
}

Result<ClientResponse> HttpClient::Do(const ClientRequest& request) {
  const std::string what = request.method + " " + request.url;
  auto url = ParseUrl(request.url);
  if (!url.ok()) return url.status();
  auto timeout = request.timeout.value_or(impl_->options.timeout);
  auto deadline = std::chrono::steady_clock::now() + timeout;

  asio::io_context ioc;
  {
    std::lock_guard<std::mutex> lock(impl_->mu);
    if (impl_->cancelled) return Aborted(what + ": client cancelled");
    impl_->in_flight.insert(&ioc);
    if (url->tls() && !impl_->tls && impl_->tls_status.ok()) {
      impl_->tls.emplace(ssl::context::tls_client);
      beast::error_code ec;
      if (impl_->options.ca_file.empty()) {
        impl_->tls->set_default_verify_paths(ec);
      } else {
        impl_->tls->load_verify_file(impl_->options.ca_file, ec);
      }
      if (ec) {
        impl_->tls_status =
            InvalidArgument("CA file \"" + impl_->options.ca_file + "\": " + ec.message());
      }
      impl_->tls->set_verify_mode(ssl::verify_peer);
      if (!impl_->options.cert_file.empty() && impl_->tls_status.ok()) {
        impl_->tls->use_certificate_chain_file(impl_->options.cert_file, ec);
        if (!ec) impl_->tls->use_private_key_file(impl_->options.key_file, ssl::context::pem, ec);
        if (ec) {
          impl_->tls_status =
              InvalidArgument("client certificate \"" + impl_->options.cert_file + "\" or key \"" +
                              impl_->options.key_file + "\": " + ec.message());
        }
      }
    }
  }
  struct Unregister {
    Impl* impl;
    asio::io_context* ioc;
    ~Unregister() {
      std::lock_guard<std::mutex> lock(impl->mu);
      impl->in_flight.erase(ioc);
    }
  } unregister{impl_.get(), &ioc};
  if (url->tls() && !impl_->tls_status.ok()) return impl_->tls_status;

  http::request<http::string_body> req;
  req.method_string(request.method);
  req.target(url->target);
  req.version(11);
  req.set(http::field::host, url->HostPort());
  req.set(http::field::user_agent, impl_->options.user_agent);
  req.set(http::field::connection, "close");
  if (!impl_->options.bearer_token.empty()) {
    req.set(http::field::authorization, "Bearer " + impl_->options.bearer_token);
  }
  for (const auto& [k, v] : request.headers) req.set(k, v);
  if (!request.body.empty() || request.method == "POST" || request.method == "PUT") {
    if (!request.content_type.empty()) req.set(http::field::content_type, request.content_type);
    req.body() = request.body;
  }
  req.prepare_payload();

  // Resolve: numeric addresses directly, names through the resolver.
  beast::error_code ec;
  std::vector<tcp::endpoint> endpoints;
  auto addr = asio::ip::make_address(url->host, ec);
  if (!ec) {
    endpoints.emplace_back(addr, url->port);
  } else {
    tcp::resolver resolver(ioc);
    asio::steady_timer timer(ioc, deadline);
    timer.async_wait([&](beast::error_code e) {
      if (!e) resolver.cancel();
    });
    auto resolved = Step(ioc, [&](auto handler) {
      resolver.async_resolve(url->host, std::to_string(url->port),
                             [&, handler](beast::error_code e, tcp::resolver::results_type r) {
                               for (const auto& entry : r) endpoints.push_back(entry.endpoint());
                               handler(e);
                             });
    });
    timer.cancel();
    if (!resolved) return StepFailure(resolved, what, "resolve");
    if (*resolved || endpoints.empty())
      return Unavailable(what + ": resolve " + url->host + ": " + resolved->message());
  }

  auto result = [&]() -> Result<ClientResponse> {
    beast::tcp_stream tcp_stream(ioc);
    tcp_stream.expires_at(deadline);
    auto connected = Step(ioc, [&](auto handler) { tcp_stream.async_connect(endpoints, handler); });
    if (!connected || *connected) {
      return StepFailure(connected, what, "connect " + url->HostPort());
    }
    tcp_stream.socket().set_option(tcp::no_delay(true), ec);
    if (!url->tls()) {
      return Exchange(ioc, tcp_stream, req, impl_->options.max_body_bytes, what);
    }
    beast::ssl_stream<beast::tcp_stream> stream(std::move(tcp_stream), *impl_->tls);
    if (!SSL_set_tlsext_host_name(stream.native_handle(), url->host.c_str())) {
      // An IP literal is not a valid SNI name; verification below still checks it.
    }
    stream.set_verify_callback(ssl::host_name_verification(url->host));
    auto shaken =
        Step(ioc, [&](auto handler) { stream.async_handshake(ssl::stream_base::client, handler); });
    if (!shaken || *shaken) return StepFailure(shaken, what, "TLS handshake");
    return Exchange(ioc, stream, req, impl_->options.max_body_bytes, what);
  }();
  if (!result.ok()) {
    std::lock_guard<std::mutex> lock(impl_->mu);
    if (impl_->cancelled) return Aborted(what + ": client cancelled");
  }
  return result;
}

}  // namespace ballast::net
