// The one Beast translation unit of the server. Shape of Beast's advanced server example:
// a session per connection on a strand, parser limits, tcp_stream expiry for timeouts.

#include "net/server.h"

#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <atomic>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/http/span_body.hpp>
#include <boost/beast/ssl.hpp>
#include <map>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

namespace ballast::net {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;

namespace {

// After a failed accept (EMFILE, ENFILE, ENOBUFS, ENOMEM, ...), the listener stays readable:
// the next accept waits this long rather than failing again at once, in a loop.
constexpr auto kAcceptBackoff = std::chrono::milliseconds(100);
// A connection over max_connections is answered and closed within this time; at most
// kMaxRejections of them at once, those beyond are closed without an answer.
constexpr auto kRejectTimeout = std::chrono::seconds(1);
constexpr size_t kMaxRejections = 64;

class SessionBase {
 public:
  virtual ~SessionBase() = default;
  virtual void Close() = 0;
};

// Asks every client for a certificate issued directly by a CA of `ca_file` (PEM), and names
// those CAs in the handshake so that a client knows which of its certificates to send.
Status RequestClientCertificates(ssl::context& tls, const std::string& ca_file) {
  if (ca_file.empty()) return Status::Ok();
  SSL_CTX* ctx = tls.native_handle();
  beast::error_code ec;
  tls.load_verify_file(ca_file, ec);
  if (ec) return InvalidArgument("TLS client CA " + ca_file + ": " + ec.message());
  STACK_OF(X509_NAME)* names = SSL_load_client_CA_file(ca_file.c_str());
  if (names == nullptr) return InvalidArgument("TLS client CA " + ca_file + ": no certificate");
  SSL_CTX_set_client_CA_list(ctx, names);  // takes ownership
  // verify_peer without fail_if_no_peer_cert: a certificate is optional, a bad one is refused.
  tls.set_verify_mode(ssl::verify_peer);
  // No intermediates: a client certificate that is itself a CA cannot mint others (an admin's
  // from a node's). A CA of the file is an anchor even when it is not a root, so a dedicated
  // intermediate for ballast works.
  SSL_CTX_set_verify_depth(ctx, 0);
  X509_VERIFY_PARAM_set_flags(SSL_CTX_get0_param(ctx), X509_V_FLAG_PARTIAL_CHAIN);
  // No resumption: each connection shows its certificate again (one that expired is not
  // carried on by a resumed session), and a resumed handshake cannot fail for want of a
  // session id context.
  static constexpr unsigned char kContext[] = "ballast";
  SSL_CTX_set_session_id_context(ctx, kContext, sizeof kContext - 1);
  SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
  SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
  SSL_CTX_set_num_tickets(ctx, 0);
  return Status::Ok();
}

// The entries of `nid` in `name`, as UTF-8; nothing when one of them cannot be read or is longer
// than 253 bytes (no node or group name is), so that no entry is skipped unseen.
std::optional<std::vector<std::string>> NameEntries(X509_NAME* name, int nid) {
  std::vector<std::string> out;
  for (int i = X509_NAME_get_index_by_NID(name, nid, -1); i >= 0;
       i = X509_NAME_get_index_by_NID(name, nid, i)) {
    unsigned char* utf8 = nullptr;
    int n = ASN1_STRING_to_UTF8(&utf8, X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, i)));
    const bool good = n >= 0 && n <= 253;
    if (good) out.emplace_back(reinterpret_cast<const char*>(utf8), size_t(n));
    OPENSSL_free(utf8);
    if (!good) return std::nullopt;
  }
  return out;
}

// The client's certificate, when it sent one and it verified. A subject with other than one
// common name, or an entry that cannot be read, names no one (an empty PeerCertificate).
std::optional<PeerCertificate> VerifiedPeer(SSL* ssl) {
  X509* cert = SSL_get1_peer_certificate(ssl);
  if (cert == nullptr) return std::nullopt;
  std::optional<PeerCertificate> peer;
  if (SSL_get_verify_result(ssl) == X509_V_OK) {
    X509_NAME* subject = X509_get_subject_name(cert);
    auto cn = NameEntries(subject, NID_commonName);
    auto orgs = NameEntries(subject, NID_organizationName);
    peer.emplace();
    if (cn && orgs && cn->size() == 1) {
      peer->common_name = (*cn)[0];
      peer->organizations = std::move(*orgs);
    }
  }
  X509_free(cert);
  return peer;
}

}  // namespace

struct HttpServer::Impl : std::enable_shared_from_this<HttpServer::Impl> {
  explicit Impl(ServerOptions o)
      : options(std::move(o)),
        accept_strand(asio::make_strand(ioc)),
        acceptor(accept_strand),
        accept_retry(accept_strand) {}

  ServerOptions options;
  asio::io_context ioc;
  // The acceptor and its retry timer are used on this strand only.
  asio::strand<asio::io_context::executor_type> accept_strand;
  tcp::acceptor acceptor;
  asio::steady_timer accept_retry;
  std::optional<ssl::context> tls;
  Router router;
  std::vector<std::thread> threads;
  uint16_t port = 0;
  std::atomic<uint64_t> rejected{0};
  std::atomic<uint64_t> accept_failures{0};

  std::mutex mu;         // guards the fields below
  bool closing = false;  // Stop() began: new connections are dropped
  bool stopped = false;  // Stop() finished: nothing more is posted
  // Connections served (what max_connections caps), and those being answered 503.
  std::map<SessionBase*, std::weak_ptr<SessionBase>> sessions;
  std::map<SessionBase*, std::weak_ptr<SessionBase>> rejections;

  // Runs on accept_strand.
  void Accept();
  void OnAccept(beast::error_code ec, tcp::socket socket);
  void Serve(tcp::socket socket);

  // Posts `fn` to `executor` unless the server stopped (then drops it), so that nothing is
  // queued on an io_context that no thread will run again.
  template <class Executor, class Fn>
  void PostUnlessStopped(const Executor& executor, Fn&& fn) {
    std::lock_guard<std::mutex> lock(mu);
    if (stopped) return;
    asio::post(executor, std::forward<Fn>(fn));
  }
};

namespace {

template <class Stream>
class Session : public SessionBase, public std::enable_shared_from_this<Session<Stream>> {
 public:
  Session(std::shared_ptr<HttpServer::Impl> impl, Stream&& stream, std::string remote)
      : impl_(std::move(impl)), stream_(std::move(stream)), remote_(std::move(remote)) {}

  ~Session() override {
    std::lock_guard<std::mutex> lock(impl_->mu);
    impl_->sessions.erase(this);
  }

  void Start() {
    {
      std::lock_guard<std::mutex> lock(impl_->mu);
      if (impl_->closing) return;  // dropped with its socket
      impl_->sessions[this] = this->weak_from_this();
    }
    asio::dispatch(stream_.get_executor(), [self = this->shared_from_this()] { self->Begin(); });
  }

  void Close() override {
    asio::post(stream_.get_executor(), [self = this->shared_from_this()] {
      beast::error_code ec;
      beast::get_lowest_layer(self->stream_).socket().shutdown(tcp::socket::shutdown_both, ec);
      beast::get_lowest_layer(self->stream_).close();
    });
  }

  // Called through the Responder, from any thread.
  void Deliver(Response response) {
    auto self = this->shared_from_this();
    impl_->PostUnlessStopped(stream_.get_executor(), [self, r = std::move(response)]() mutable {
      self->Write(std::move(r));
    });
  }

 private:
  static constexpr bool kTls = !std::is_same_v<Stream, beast::tcp_stream>;

  void Begin() {
    if constexpr (kTls) {
      beast::get_lowest_layer(stream_).expires_after(impl_->options.read_timeout);
      stream_.async_handshake(ssl::stream_base::server,
                              [self = this->shared_from_this()](beast::error_code ec) {
                                if (ec) return;
                                self->peer_ = VerifiedPeer(self->stream_.native_handle());
                                self->Read();
                              });
    } else {
      Read();
    }
  }

  void Read() {
    parser_.emplace();
    parser_->header_limit(static_cast<uint32_t>(impl_->options.max_header_bytes));
    parser_->body_limit(impl_->options.max_body_bytes);
    beast::get_lowest_layer(stream_).expires_after(impl_->options.read_timeout);
    http::async_read(
        stream_, buffer_, *parser_,
        [self = this->shared_from_this()](beast::error_code ec, size_t) { self->OnRead(ec); });
  }

  void OnRead(beast::error_code ec) {
    if (ec == http::error::body_limit) {
      keep_alive_ = false;
      Write(ErrorResponse(413, "request body larger than " +
                                   std::to_string(impl_->options.max_body_bytes) + " bytes"));
      return;
    }
    if (ec == http::error::header_limit) {
      keep_alive_ = false;
      Write(ErrorResponse(431, "request headers too large"));
      return;
    }
    if (ec) return;  // end of stream, timeout, reset, malformed: drop the connection
    auto& msg = parser_->get();
    Request req;
    req.method = std::string(msg.method_string());
    req.target = std::string(msg.target());
    std::string_view target = req.target;
    size_t q = target.find('?');
    req.path = PercentDecode(target.substr(0, q));
    if (q != std::string_view::npos) req.query = ParseQuery(target.substr(q + 1));
    for (const auto& field : msg) {
      req.headers.emplace_back(std::string(field.name_string()), std::string(field.value()));
    }
    req.body = std::move(msg.body());
    req.remote = remote_;
    req.peer_certificate = peer_;
    keep_alive_ = msg.keep_alive();
    head_ = msg.method() == http::verb::head;
    version_ = msg.version();
    // The handler may answer later (long-poll): no read deadline while it works.
    beast::get_lowest_layer(stream_).expires_never();
    auto sink = std::make_shared<SessionSink>(this->shared_from_this());
    impl_->router.Dispatch(req, Responder(std::move(sink)));
  }

  void Write(Response r) {
    if (r.shared_body) {
      // A cached body: the response points into it, and the session holds it until written.
      shared_body_ = std::move(r.shared_body);
      auto& res = shared_res_.emplace();
      if (!head_) res.body() = {shared_body_->data(), shared_body_->size()};
      WriteMessage(res, r, shared_body_->size());
      return;
    }
    auto& res = res_.emplace();
    size_t size = r.body.size();
    if (!head_) res.body() = std::move(r.body);
    WriteMessage(res, r, size);
  }

  template <class Message>
  void WriteMessage(Message& res, const Response& r, size_t size) {
    res.version(version_);
    res.result(static_cast<unsigned>(r.status));
    res.set(http::field::server, "ballast");
    res.set(http::field::content_type, r.content_type);
    // Safe defaults for a browser on every answer of every listener: no MIME sniffing (a pod's
    // log served as text stays text), no framing, no referrer; a response may override them.
    res.set("X-Content-Type-Options", "nosniff");
    res.set("X-Frame-Options", "DENY");
    res.set("Referrer-Policy", "no-referrer");
    for (const auto& [k, v] : r.headers) res.set(k, v);
    res.keep_alive(keep_alive_);
    // 1xx, 204 and 304 carry no body and no Content-Length.
    const bool bodiless = (r.status >= 100 && r.status < 200) || r.status == 204 || r.status == 304;
    if (!bodiless) {
      res.prepare_payload();
      if (head_) res.content_length(size);
    }
    beast::get_lowest_layer(stream_).expires_after(impl_->options.write_timeout);
    http::async_write(
        stream_, res,
        [self = this->shared_from_this()](beast::error_code ec, size_t) { self->OnWrite(ec); });
  }

  void OnWrite(beast::error_code ec) {
    shared_res_.reset();
    shared_body_.reset();
    if (ec) return;
    if (!keep_alive_) {
      Shutdown();
      return;
    }
    Read();
  }

  void Shutdown() {
    if constexpr (kTls) {
      beast::get_lowest_layer(stream_).expires_after(std::chrono::seconds(5));
      stream_.async_shutdown([self = this->shared_from_this()](beast::error_code) {});
    } else {
      beast::error_code ec;
      stream_.socket().shutdown(tcp::socket::shutdown_send, ec);
    }
  }

  struct SessionSink : Responder::Sink {
    explicit SessionSink(std::shared_ptr<Session> s) : session(std::move(s)) {}
    void Deliver(Response response) override { session->Deliver(std::move(response)); }
    std::shared_ptr<Session> session;
  };

  std::shared_ptr<HttpServer::Impl> impl_;
  Stream stream_;
  std::string remote_;
  std::optional<PeerCertificate> peer_;  // set once the TLS handshake verified one
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  std::optional<http::response<http::string_body>> res_;
  std::optional<http::response<http::span_body<const char>>> shared_res_;
  std::shared_ptr<const std::string> shared_body_;
  bool keep_alive_ = false;
  bool head_ = false;
  unsigned version_ = 11;
};

// A connection over max_connections: answered 503 and closed, in at most kRejectTimeout.
class Rejection : public SessionBase, public std::enable_shared_from_this<Rejection> {
 public:
  Rejection(std::shared_ptr<HttpServer::Impl> impl, tcp::socket socket)
      : impl_(std::move(impl)), stream_(std::move(socket)) {}

  ~Rejection() override {
    std::lock_guard<std::mutex> lock(impl_->mu);
    impl_->rejections.erase(this);
  }

  // REQUIRES: impl_->mu held; the caller checked that closing is false.
  void Register() { impl_->rejections[this] = weak_from_this(); }

  void Start() {
    asio::dispatch(stream_.get_executor(), [self = shared_from_this()] { self->Write(); });
  }

  void Close() override {
    asio::post(stream_.get_executor(), [self = shared_from_this()] {
      beast::error_code ec;
      self->stream_.socket().shutdown(tcp::socket::shutdown_both, ec);
      self->stream_.close();
    });
  }

 private:
  static const std::string& Answer() {
    static const std::string kAnswer = [] {
      const std::string body = "{\"error\":\"too many connections\"}";
      return "HTTP/1.1 503 Service Unavailable\r\n"
             "Server: ballast\r\n"
             "Content-Type: application/json\r\n"
             "X-Content-Type-Options: nosniff\r\n"
             "X-Frame-Options: DENY\r\n"
             "Referrer-Policy: no-referrer\r\n"
             "Retry-After: 1\r\n"
             "Connection: close\r\n"
             "Content-Length: " +
             std::to_string(body.size()) + "\r\n\r\n" + body;
    }();
    return kAnswer;
  }

  void Write() {
    stream_.expires_after(kRejectTimeout);
    asio::async_write(stream_, asio::buffer(Answer()),
                      [self = shared_from_this()](beast::error_code ec, size_t) {
                        if (!ec) self->Linger();
                      });
  }

  // Reads (and drops) what the client sends until it closes or the deadline: closing with
  // unread bytes would reset the connection, and the reset could discard the 503 before the
  // client has read it.
  void Linger() {
    beast::error_code ec;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ec);
    Drain();
  }
  void Drain() {
    stream_.async_read_some(asio::buffer(scratch_),
                            [self = shared_from_this()](beast::error_code ec, size_t) {
                              if (!ec) self->Drain();
                            });
  }

  std::shared_ptr<HttpServer::Impl> impl_;
  beast::tcp_stream stream_;
  char scratch_[1024];
};

}  // namespace

void HttpServer::Impl::Accept() {
  acceptor.async_accept(asio::make_strand(ioc),
                        [self = shared_from_this()](beast::error_code ec, tcp::socket socket) {
                          self->OnAccept(ec, std::move(socket));
                        });
}

void HttpServer::Impl::OnAccept(beast::error_code ec, tcp::socket socket) {
  if (ec == asio::error::operation_aborted || !acceptor.is_open()) return;
  if (ec) {
    // Out of descriptors or memory, or another failure: the listener stays readable, so an
    // accept right away would fail again, in a loop. Pause; the connections we have are still
    // served, and as they close they free what the next accept needs.
    ++accept_failures;
    accept_retry.expires_after(kAcceptBackoff);
    accept_retry.async_wait([self = shared_from_this()](beast::error_code wait_ec) {
      if (!wait_ec && self->acceptor.is_open()) self->Accept();
    });
    return;
  }
  std::shared_ptr<Rejection> rejection;
  {
    std::lock_guard<std::mutex> lock(mu);
    if (closing) return;  // dropped with its socket
    if (sessions.size() >= std::max<size_t>(1, options.max_connections)) {
      ++rejected;
      // Answering https would need a handshake first: not for a connection we refuse.
      if (!tls && rejections.size() < kMaxRejections) {
        rejection = std::make_shared<Rejection>(shared_from_this(), std::move(socket));
        rejection->Register();
      } else {
        beast::error_code ignored;
        socket.close(ignored);
      }
    }
  }
  if (rejection) {
    rejection->Start();
  } else if (socket.is_open()) {
    Serve(std::move(socket));
  }
  Accept();
}

void HttpServer::Impl::Serve(tcp::socket socket) {
  beast::error_code ignored;
  auto ep = socket.remote_endpoint(ignored);
  std::string remote = ignored ? "" : ep.address().to_string() + ":" + std::to_string(ep.port());
  socket.set_option(tcp::no_delay(true), ignored);
  if (tls) {
    using S = beast::ssl_stream<beast::tcp_stream>;
    std::make_shared<Session<S>>(shared_from_this(), S(beast::tcp_stream(std::move(socket)), *tls),
                                 std::move(remote))
        ->Start();
  } else {
    std::make_shared<Session<beast::tcp_stream>>(
        shared_from_this(), beast::tcp_stream(std::move(socket)), std::move(remote))
        ->Start();
  }
}

HttpServer::HttpServer(ServerOptions options) : impl_(std::make_shared<Impl>(std::move(options))) {}

HttpServer::~HttpServer() { Stop(); }

Status HttpServer::Start(Router router) {
  Impl& im = *impl_;
  im.router = std::move(router);
  beast::error_code ec;
  auto addr = asio::ip::make_address(im.options.address, ec);
  if (ec) return InvalidArgument("listen address \"" + im.options.address + "\": " + ec.message());
  if (!im.options.tls_cert_file.empty() || !im.options.tls_key_file.empty()) {
    im.tls.emplace(ssl::context::tls_server);
    im.tls->set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 |
                        ssl::context::no_sslv3 | ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1);
    im.tls->use_certificate_chain_file(im.options.tls_cert_file, ec);
    if (ec)
      return InvalidArgument("TLS certificate " + im.options.tls_cert_file + ": " + ec.message());
    im.tls->use_private_key_file(im.options.tls_key_file, ssl::context::pem, ec);
    if (ec) return InvalidArgument("TLS key " + im.options.tls_key_file + ": " + ec.message());
    if (Status s = RequestClientCertificates(*im.tls, im.options.tls_client_ca_file); !s.ok()) {
      return s;
    }
  } else if (!im.options.tls_client_ca_file.empty()) {
    return InvalidArgument("a client CA (" + im.options.tls_client_ca_file +
                           ") needs TLS: a certificate and a key");
  }
  tcp::endpoint endpoint(addr, im.options.port);
  std::string where = im.options.address + ":" + std::to_string(im.options.port);
  im.acceptor.open(endpoint.protocol(), ec);
  if (!ec) im.acceptor.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) im.acceptor.bind(endpoint, ec);
  if (!ec) im.acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) return Unavailable("listen on " + where + ": " + ec.message());
  im.port = im.acceptor.local_endpoint().port();
  im.Accept();
  int n = std::max(1, im.options.threads);
  for (int i = 0; i < n; ++i) {
    im.threads.emplace_back([impl = impl_] { impl->ioc.run(); });
  }
  return Status::Ok();
}

void HttpServer::Stop() {
  Impl& im = *impl_;
  std::vector<std::shared_ptr<SessionBase>> live;
  {
    std::lock_guard<std::mutex> lock(im.mu);
    if (im.closing) return;
    im.closing = true;
    for (auto* connections : {&im.sessions, &im.rejections}) {
      for (auto& [ptr, weak] : *connections) {
        if (auto s = weak.lock()) live.push_back(std::move(s));
      }
    }
  }
  asio::post(im.accept_strand, [impl = impl_] {
    beast::error_code ec;
    impl->acceptor.close(ec);
    impl->accept_retry.cancel();
  });
  for (auto& s : live) s->Close();
  live.clear();
  // Threads return once every connection has wound down; a connection waiting on a long-poll
  // handler holds no pending operation, so this does not wait for handlers.
  for (auto& t : im.threads) {
    if (t.joinable()) t.join();
  }
  im.threads.clear();
  {
    std::lock_guard<std::mutex> lock(im.mu);
    im.stopped = true;
  }
  // Run what was posted between the last thread's exit and `stopped` (aborted operations).
  im.ioc.restart();
  im.ioc.run();
}

uint16_t HttpServer::port() const { return impl_->port; }
const std::string& HttpServer::address() const { return impl_->options.address; }
ServerCounters HttpServer::counters() const {
  return ServerCounters{impl_->rejected.load(), impl_->accept_failures.load()};
}

std::string HttpServer::url() const {
  bool v6 = impl_->options.address.find(':') != std::string::npos;
  std::string host = v6 ? "[" + impl_->options.address + "]" : impl_->options.address;
  return std::string(impl_->tls ? "https" : "http") + "://" + host + ":" + std::to_string(port());
}

}  // namespace ballast::net
