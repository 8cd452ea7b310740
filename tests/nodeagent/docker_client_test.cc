// The Docker client's HTTP framing against a real unix-socket server written here: each
// request path gets a hand-written raw answer (Content-Length, empty 204, chunked in pieces
// sent over time, a body ended by closing the connection, an engine error, silence).

#include "nodeagent/docker_client.h"

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <map>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "test_util.h"

namespace ballast::nodeagent {
namespace {

using namespace std::chrono_literals;

// Answers each connection by the request's path: a list of raw pieces written with a pause
// between them, then the connection is closed (or held open for "/silent").
class RawServer {
 public:
  explicit RawServer(std::string path) : path_(std::move(path)) {
    fd_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::snprintf(addr.sun_path, sizeof addr.sun_path, "%s", path_.c_str());
    EXPECT_EQ(::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
    EXPECT_EQ(::listen(fd_, 16), 0);
    thread_ = std::thread([this] { Loop(); });
  }
  ~RawServer() {
    stopping_ = true;
    ::shutdown(fd_, SHUT_RDWR);
    ::close(fd_);
    thread_.join();
    for (auto& t : connections_) t.join();
  }
  void Answer(const std::string& path, std::vector<std::string> pieces) { answers_[path] = pieces; }
  std::string last_request() {
    std::lock_guard<std::mutex> lock(mu_);
    return last_request_;
  }

 private:
  void Loop() {
    while (!stopping_) {
      int c = ::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (c < 0) return;
      connections_.emplace_back([this, c] { Serve(c); });
    }
  }
  void Serve(int c) {
    std::string request;
    char buf[4096];
    while (request.find("\r\n\r\n") == std::string::npos) {
      ssize_t n = ::read(c, buf, sizeof buf);
      if (n <= 0) break;
      request.append(buf, static_cast<size_t>(n));
    }
    auto cl = request.find("Content-Length: ");
    if (cl != std::string::npos) {
      size_t want = std::stoul(request.substr(cl + 16));
      size_t have = request.size() - request.find("\r\n\r\n") - 4;
      while (have < want) {
        ssize_t n = ::read(c, buf, sizeof buf);
        if (n <= 0) break;
        request.append(buf, static_cast<size_t>(n));
        have += static_cast<size_t>(n);
      }
    }
    {
      std::lock_guard<std::mutex> lock(mu_);
      last_request_ = request;
    }
    std::string target = request.substr(request.find(' ') + 1);
    target = target.substr(0, target.find(' '));
    auto it = answers_.find(target);
    if (it != answers_.end()) {
      for (size_t i = 0; i < it->second.size(); ++i) {
        if (i > 0) std::this_thread::sleep_for(50ms);
        const auto& piece = it->second[i];
        if (::send(c, piece.data(), piece.size(), MSG_NOSIGNAL) < 0) break;
      }
    }
    if (target == "/v1.41/silent") {
      while (!stopping_ && ::read(c, buf, sizeof buf) > 0) {
      }
    }
    ::close(c);
  }

  std::string path_;
  int fd_ = -1;
  std::atomic<bool> stopping_{false};
  std::map<std::string, std::vector<std::string>> answers_;
  std::thread thread_;
  std::vector<std::thread> connections_;
  std::mutex mu_;
  std::string last_request_;
};

class DockerClientTest : public ::testing::Test {
 protected:
  testing::TempDir dir_;
  std::string socket_ = dir_.path() + "/engine.sock";
  RawServer server_{socket_};
  DockerClient client_{socket_};
};

TEST_F(DockerClientTest, ContentLengthBodyAndTheRequestSent) {
  server_.Answer("/v1.41/containers/create?name=web",
                 {"HTTP/1.1 201 Created\r\nContent-Type: application/json\r\n"
                  "Content-Length: 27\r\n\r\n",
                  "{\"Id\":\"abc\",\"Warnings\":[]}\n"});
  auto r = client_.CallJson("POST", "/containers/create?name=web", model::Json{{"Image", "bb"}});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ((*r)["Id"], "abc");
  std::string req = server_.last_request();
  EXPECT_EQ(req.rfind("POST /v1.41/containers/create?name=web HTTP/1.1\r\n", 0), 0u) << req;
  EXPECT_NE(req.find("Content-Type: application/json"), std::string::npos);
  EXPECT_NE(req.find("\r\n\r\n{\"Image\":\"bb\"}"), std::string::npos);
}

TEST_F(DockerClientTest, EmptyNoContentAnswer) {
  server_.Answer("/v1.41/containers/web/start",
                 {"HTTP/1.1 204 No Content\r\nApi-Version: 1.41\r\n\r\n"});
  auto r = client_.CallJson("POST", "/containers/web/start");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_TRUE(r->is_null());
  EXPECT_NE(server_.last_request().find("Content-Length: 0"), std::string::npos);
}

TEST_F(DockerClientTest, ChunkedBodyArrivingInPieces) {
  server_.Answer("/v1.41/containers/web/wait",
                 {"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", "7\r\n{\"Sta", "tu\r\n",
                  "18\r\nsCode\":137,\"Error\":null}\r\n", "0\r\n\r\n"});
  std::vector<std::string> pieces;
  DockerRequest r;
  r.method = "POST";
  r.path = "/containers/web/wait";
  int seen_status = 0;
  auto status = client_.Stream(
      r, [&](int s) { seen_status = s; },
      [&](std::string_view p) {
        pieces.emplace_back(p);
        return true;
      },
      nullptr);
  ASSERT_TRUE(status.ok()) << status.status().ToString();
  EXPECT_EQ(*status, 200);
  EXPECT_EQ(seen_status, 200);
  std::string body;
  for (const auto& p : pieces) body += p;
  EXPECT_EQ(body, "{\"StatusCode\":137,\"Error\":null}");
  EXPECT_GE(pieces.size(), 2u) << "handed over as it arrived, not at the end";
}

TEST_F(DockerClientTest, MultiplexedLogStreamSplitAcrossChunks) {
  // stdout "hello\n", stderr "oops\n", stdout "bye\n" — frames cut at awkward places.
  std::string frames = std::string("\x01\0\0\0\0\0\0\x06hello\n", 14) +
                       std::string("\x02\0\0\0\0\0\0\x05oops\n", 13) +
                       std::string(
                           "\x01\0\0\0\0\0\0\x04"
                           "bye\n",
                           12);
  auto chunk = [](const std::string& s) {
    char size[16];
    std::snprintf(size, sizeof size, "%zx\r\n", s.size());
    return std::string(size) + s + "\r\n";
  };
  server_.Answer(
      "/v1.41/containers/web/logs?follow=true",
      {"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", chunk(frames.substr(0, 3)),
       chunk(frames.substr(3, 15)), chunk(frames.substr(18)), "0\r\n\r\n"});
  DockerRequest r;
  r.path = "/containers/web/logs?follow=true";
  MultiplexedStreamDecoder decoder;
  std::string out, err;
  auto status = client_.Stream(
      r, nullptr,
      [&](std::string_view p) {
        decoder.Feed(p, [&](int stream, std::string_view payload) {
          (stream == 2 ? err : out).append(payload);
        });
        return true;
      },
      nullptr);
  ASSERT_TRUE(status.ok()) << status.status().ToString();
  EXPECT_EQ(out, "hello\nbye\n");
  EXPECT_EQ(err, "oops\n");
  EXPECT_EQ(decoder.pending(), 0u);
}

TEST_F(DockerClientTest, BodyEndedByClosingTheConnection) {
  // An attached exec answers with a raw stream and no length: it ends when the engine closes.
  server_.Answer("/v1.41/exec/e1/start",
                 {"HTTP/1.1 200 OK\r\nContent-Type: application/vnd.docker.raw-stream\r\n\r\n",
                  std::string("\x01\0\0\0\0\0\0\x03ok\n", 11)});
  DockerRequest r;
  r.method = "POST";
  r.path = "/exec/e1/start";
  auto resp = client_.Call(r);
  ASSERT_TRUE(resp.ok()) << resp.status().ToString();
  EXPECT_EQ(resp->status, 200);
  EXPECT_EQ(resp->body.size(), 11u);
}

TEST_F(DockerClientTest, EngineErrorsNameTheEndpointAndTheEngineMessage) {
  server_.Answer("/v1.41/containers/create?name=x",
                 {"HTTP/1.1 404 Not Found\r\nContent-Type: application/json\r\n"
                  "Content-Length: 62\r\n\r\n"
                  "{\"cause\":\"image not known\",\"message\":\"no such image: bb:v9\"}\n\n"});
  auto r = client_.CallJson("POST", "/containers/create?name=x", model::Json{{"Image", "bb:v9"}});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kNotFound);
  EXPECT_EQ(r.status().message(),
            "docker POST /containers/create?name=x: 404 no such image: bb:v9");
}

TEST_F(DockerClientTest, TimeoutAndCancelAndNoEngine) {
  DockerRequest r;
  r.path = "/silent";
  r.timeout_ms = 200;
  auto resp = client_.Call(r);
  ASSERT_FALSE(resp.ok());
  EXPECT_EQ(resp.status().code(), StatusCode::kDeadlineExceeded);
  EXPECT_NE(resp.status().message().find("docker GET /silent: timed out"), std::string::npos);

  std::atomic<bool> cancel{false};
  r.timeout_ms = 0;
  std::thread canceller([&] {
    std::this_thread::sleep_for(100ms);
    cancel = true;
  });
  auto streamed = client_.Stream(
      r, nullptr, [](std::string_view) { return true; }, &cancel);
  canceller.join();
  ASSERT_FALSE(streamed.ok());
  EXPECT_EQ(streamed.status().code(), StatusCode::kAborted);

  DockerClient nowhere(dir_.path() + "/missing.sock");
  Status ping = nowhere.Ping(500);
  EXPECT_EQ(ping.code(), StatusCode::kUnavailable);
  EXPECT_NE(ping.message().find("missing.sock"), std::string::npos) << ping.message();
}

TEST_F(DockerClientTest, OversizedBodyIsRefused) {
  std::string big(5000, 'x');
  server_.Answer("/v1.41/big", {"HTTP/1.1 200 OK\r\nContent-Length: 5000\r\n\r\n", big});
  DockerRequest r;
  r.path = "/big";
  r.max_body = 1000;
  auto resp = client_.Call(r);
  ASSERT_FALSE(resp.ok());
  EXPECT_EQ(resp.status().code(), StatusCode::kResourceExhausted);
}

}  // namespace
}  // namespace ballast::nodeagent
