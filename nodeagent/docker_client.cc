// The one Beast translation unit of the Docker client. Each call runs on a private io_context on
// the calling thread, in steps of at most 100 ms so that the deadline and the cancel flag are
// honoured without a second thread.

#include "nodeagent/docker_client.h"

#include <boost/asio/local/stream_protocol.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <chrono>
#include <optional>

#include "net/await.h"

namespace ballast::nodeagent {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using local = asio::local::stream_protocol;
using Clock = std::chrono::steady_clock;

namespace {

enum class Step { kDone, kTimeout, kCancelled };

// One connection's io_context and socket, run step by step.
class Connection {
 public:
  Connection(int timeout_ms, const std::atomic<bool>* cancel)
      : socket_(ioc_),
        cancel_(cancel),
        deadline_(timeout_ms > 0 ? std::optional<Clock::time_point>(
                                       Clock::now() + std::chrono::milliseconds(timeout_ms))
                                 : std::nullopt) {}

  local::socket& socket() { return socket_; }

  // Starts one operation and runs it to completion (see Run); its error in `ec`.
  template <class Start>
  Step Await(Start&& start, beast::error_code* ec) {
    Step step = Step::kDone;
    auto result =
        net::Await(std::forward<Start>(start), [&](const bool& done) { step = Run(done); });
    *ec = result.value_or(beast::error_code{});
    return step;
  }

  // Runs the io_context until `done`, the deadline or cancellation (which close the socket so
  // the pending operation completes, then drain it).
  Step Run(const bool& done) {
    ioc_.restart();
    while (!done) {
      bool cancelled = cancel_ != nullptr && cancel_->load();
      bool late = deadline_ && Clock::now() >= *deadline_;
      if (cancelled || late) {
        beast::error_code ignored;
        socket_.close(ignored);
        ioc_.restart();
        ioc_.run();
        return cancelled ? Step::kCancelled : Step::kTimeout;
      }
      auto slice = std::chrono::milliseconds(100);
      if (deadline_) {
        slice = std::min(slice, std::chrono::duration_cast<std::chrono::milliseconds>(
                                    *deadline_ - Clock::now()) +
                                    std::chrono::milliseconds(1));
      }
      if (ioc_.run_one_for(slice) == 0 && ioc_.stopped()) ioc_.restart();
    }
    return Step::kDone;
  }

 private:
  asio::io_context ioc_;
  local::socket socket_;
  const std::atomic<bool>* cancel_;
  std::optional<Clock::time_point> deadline_;
};

// Shared by Call and Stream: sends the request, then reads the header and the body piece by
// piece into `sink`.
Result<int> Exchange(const std::string& socket_path, const std::string& target,
                     const DockerRequest& request, const std::function<void(int)>& on_status,
                     const DockerBodySink& sink, const std::atomic<bool>* cancel,
                     std::optional<size_t> max_body) {
  const std::string what = "docker " + request.method + " " + request.path;
  Connection conn(request.timeout_ms, cancel);
  auto failed = [&](Step step, const beast::error_code& ec, const char* during) -> Status {
    if (step == Step::kTimeout) {
      return Status(StatusCode::kDeadlineExceeded,
                    what + ": timed out after " + std::to_string(request.timeout_ms) + " ms");
    }
    if (step == Step::kCancelled) return Aborted(what + ": cancelled");
    return Unavailable(what + ": " + during + ": " + ec.message());
  };

  beast::error_code ec;
  Step step = conn.Await(
      [&](auto handler) { conn.socket().async_connect(local::endpoint(socket_path), handler); },
      &ec);
  if (step != Step::kDone || ec) {
    Status s = failed(step, ec, "connect");
    if (step == Step::kDone)
      s = Unavailable(what + ": connect " + socket_path + ": " + ec.message());
    return s;
  }

  http::request<http::string_body> req;
  req.method_string(request.method);
  req.target(target);
  req.version(11);
  req.set(http::field::host, "docker");
  req.set(http::field::user_agent, "ballast");
  req.set(http::field::connection, "close");
  if (!request.body.empty() || request.method == "POST" || request.method == "PUT") {
    if (!request.body.empty()) req.set(http::field::content_type, request.content_type);
    req.body() = request.body;
  }
  req.prepare_payload();
  step = conn.Await([&](auto handler) { http::async_write(conn.socket(), req, handler); }, &ec);
  if (step != Step::kDone || ec) return failed(step, ec, "write");

  beast::flat_buffer buffer;
  http::response_parser<http::buffer_body> parser;
  parser.header_limit(64 * 1024);
  if (max_body) {
    parser.body_limit(*max_body);
  } else {
    parser.body_limit(boost::none);
  }
  step = conn.Await(
      [&](auto handler) { http::async_read_header(conn.socket(), buffer, parser, handler); }, &ec);
  if (step == Step::kDone && ec == http::error::body_limit) {
    return ResourceExhausted(what + ": response larger than " +
                             std::to_string(max_body.value_or(0)) + " bytes");
  }
  if (step != Step::kDone || ec) return failed(step, ec, "read header");
  int status = static_cast<int>(parser.get().result_int());
  if (on_status) on_status(status);

  std::string piece(64 * 1024, '\0');
  while (!parser.is_done()) {
    parser.get().body().data = piece.data();
    parser.get().body().size = piece.size();
    step = conn.Await(
        [&](auto handler) { http::async_read_some(conn.socket(), buffer, parser, handler); }, &ec);
    if (step != Step::kDone) return failed(step, ec, "read body");
    if (ec == http::error::need_buffer) ec = {};
    if (ec == http::error::body_limit) {
      return ResourceExhausted(what + ": response larger than " +
                               std::to_string(max_body.value_or(0)) + " bytes");
    }
    size_t n = piece.size() - parser.get().body().size;
    if (n > 0 && !sink(std::string_view(piece.data(), n))) return status;
    if (ec) return failed(step, ec, "read body");
  }
  return status;
}

}  // namespace

DockerClient::DockerClient(std::string socket_path, std::string api_version)
    : socket_path_(std::move(socket_path)), prefix_("/" + std::move(api_version)) {}

Result<DockerResponse> DockerClient::Call(const DockerRequest& request) const {
  DockerResponse out;
  auto status = Exchange(
      socket_path_, prefix_ + request.path, request, nullptr,
      [&](std::string_view piece) {
        out.body.append(piece);
        return true;
      },
      nullptr, request.max_body);
  if (!status.ok()) return status.status();
  out.status = *status;
  return out;
}

Result<int> DockerClient::Stream(const DockerRequest& request,
                                 const std::function<void(int)>& on_status,
                                 const DockerBodySink& sink,
                                 const std::atomic<bool>* cancel) const {
  return Exchange(socket_path_, prefix_ + request.path, request, on_status, sink, cancel,
                  std::nullopt);
}

Status DockerError(const std::string& what, int status, std::string_view body) {
  std::string message;
  model::Json j = model::Json::parse(body, nullptr, false);
  if (j.is_object() && j.contains("message") && j["message"].is_string()) {
    message = j["message"].get<std::string>();
  } else {
    message = std::string(body.substr(0, 200));
    while (!message.empty() && (message.back() == '\n' || message.back() == '\r')) {
      message.pop_back();
    }
  }
  std::string text = what + ": " + std::to_string(status) + " " + message;
  if (status == 404) return NotFound(text);
  if (status == 409) return Status(StatusCode::kAlreadyExists, text);
  if (status == 400) return InvalidArgument(text);
  if (status >= 500) return Internal(text);
  return FailedPrecondition(text);
}

Result<model::Json> DockerClient::CallJson(const std::string& method, const std::string& path,
                                           const model::Json& body, int timeout_ms) const {
  DockerRequest r;
  r.method = method;
  r.path = path;
  if (!body.is_null()) r.body = body.dump(-1, ' ', false, model::Json::error_handler_t::replace);
  r.timeout_ms = timeout_ms;
  auto resp = Call(r);
  if (!resp.ok()) return resp.status();
  std::string what = "docker " + method + " " + path;
  if (resp->status < 200 || resp->status >= 300) return DockerError(what, resp->status, resp->body);
  if (resp->body.empty()) return model::Json(nullptr);
  model::Json j = model::Json::parse(resp->body, nullptr, false);
  if (j.is_discarded()) return Internal(what + ": answer is not JSON");
  return j;
}

Status DockerClient::Ping(int timeout_ms) const {
  DockerRequest r;
  r.path = "/_ping";
  r.timeout_ms = timeout_ms;
  r.max_body = 1024;
  // _ping is also served without the version prefix; older engines want it that way.
  auto status = Exchange(
      socket_path_, "/_ping", r, nullptr, [](std::string_view) { return true; }, nullptr,
      r.max_body);
  if (!status.ok()) return status.status();
  if (*status != 200) return Unavailable("docker GET /_ping: " + std::to_string(*status));
  return Status::Ok();
}

void MultiplexedStreamDecoder::Feed(std::string_view data, const FrameSink& sink) {
  buffer_.append(data);
  size_t at = 0;
  while (buffer_.size() - at >= 8) {
    const auto* h = reinterpret_cast<const unsigned char*>(buffer_.data() + at);
    uint32_t size = (uint32_t{h[4]} << 24) | (uint32_t{h[5]} << 16) | (uint32_t{h[6]} << 8) | h[7];
    if (buffer_.size() - at - 8 < size) break;
    sink(h[0], std::string_view(buffer_.data() + at + 8, size));
    at += 8 + size;
  }
  buffer_.erase(0, at);
}

std::string QueryEscape(std::string_view value) {
  static const char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char ch : value) {
    if (std::isalnum(ch) || ch == '-' || ch == '_' || ch == '.' || ch == '~') {
      out.push_back(static_cast<char>(ch));
    } else {
      out.push_back('%');
      out.push_back(kHex[ch >> 4]);
      out.push_back(kHex[ch & 15]);
    }
  }
  return out;
}

}  // namespace ballast::nodeagent
