// The HTTP server and client against each other over real loopback sockets.

#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <mutex>
#include <thread>

#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "net/client.h"
#include "net/gzip.h"
#include "net/http.h"
#include "net/router.h"
#include "net/server.h"
#include "tests/support/ports.h"

namespace ballast::net {
namespace {

using namespace std::chrono_literals;

// A Responder sink that records what it got.
struct Captured : Responder::Sink {
  std::vector<Response> got;
  void Deliver(Response r) override { got.push_back(std::move(r)); }
};

Response Dispatch(const Router& router, const std::string& method, const std::string& path) {
  auto sink = std::make_shared<Captured>();
  Request req;
  req.method = method;
  req.path = path;
  router.Dispatch(req, Responder(sink));
  EXPECT_EQ(sink->got.size(), 1u);
  return sink->got.empty() ? Response{} : sink->got[0];
}

TEST(RouterTest, ExactPrefixNotFoundAndMethodNotAllowed) {
  Router router;
  router.HandleSync("GET", "/healthz", [](const Request&) { return TextResponse(200, "ok"); });
  router.HandleSync("GET", "/api/v1/pods/*",
                    [](const Request& r) { return TextResponse(200, "pod " + r.path); });
  router.HandleSync("GET", "/api/v1/pods/special",
                    [](const Request&) { return TextResponse(200, "exact"); });
  router.HandleSync("POST", "/api/v1/sync",
                    [](const Request&) { return TextResponse(202, "queued"); });
  EXPECT_EQ(Dispatch(router, "GET", "/healthz").body, "ok");
  EXPECT_EQ(Dispatch(router, "GET", "/api/v1/pods/web-1").body, "pod /api/v1/pods/web-1");
  EXPECT_EQ(Dispatch(router, "GET", "/api/v1/pods/special").body, "exact");
  EXPECT_EQ(Dispatch(router, "GET", "/api/v1/pods").status, 404);
  Response r = Dispatch(router, "GET", "/api/v1/sync");
  EXPECT_EQ(r.status, 405);
  ASSERT_NE(FindHeader(r.headers, "allow"), nullptr);
  EXPECT_EQ(*FindHeader(r.headers, "allow"), "POST");
  EXPECT_EQ(Dispatch(router, "HEAD", "/healthz").status, 200);
}

TEST(RouterTest, DroppedResponderAnswers500AndThrowingHandlerToo) {
  Router router;
  router.Handle("GET", "/forget", [](const Request&, Responder) {});
  router.Handle("GET", "/throw",
                [](const Request&, Responder) { throw std::runtime_error("boom"); });
  EXPECT_EQ(Dispatch(router, "GET", "/forget").status, 500);
  Response r = Dispatch(router, "GET", "/throw");
  EXPECT_EQ(r.status, 500);
  EXPECT_NE(r.body.find("boom"), std::string::npos);
}

TEST(HttpTest, UrlsQueriesAndTokens) {
  auto u = ParseUrl("https://127.0.0.1:8443/api/v1/x?a=1");
  ASSERT_TRUE(u.ok());
  EXPECT_TRUE(u->tls());
  EXPECT_EQ(u->host, "127.0.0.1");
  EXPECT_EQ(u->port, 8443);
  EXPECT_EQ(u->target, "/api/v1/x?a=1");
  EXPECT_EQ(ParseUrl("http://example.com")->port, 80);
  EXPECT_EQ(ParseUrl("http://[::1]:9/")->host, "::1");
  EXPECT_FALSE(ParseUrl("ftp://x/").ok());
  EXPECT_FALSE(ParseUrl("http://h:99999/").ok());
  EXPECT_FALSE(ParseUrl("127.0.0.1:80").ok());
  auto q = ParseQuery("node=a%20b&wait=30&flag&x=1+2");
  ASSERT_EQ(q.size(), 4u);
  EXPECT_EQ(q[0].second, "a b");
  EXPECT_EQ(q[3].second, "1 2");
  EXPECT_EQ(PercentDecode(PercentEncode("a/b c&d=é")), "a/b c&d=é");
  EXPECT_EQ(PercentDecode("%4"), "%4");

  Request req;
  EXPECT_TRUE(CheckBearer(req, ""));
  EXPECT_FALSE(CheckBearer(req, "s3cret"));
  req.headers.emplace_back("authorization", "Bearer s3cret");
  EXPECT_TRUE(CheckBearer(req, "s3cret"));
  EXPECT_FALSE(CheckBearer(req, "s3cre"));
  EXPECT_FALSE(CheckBearer(req, "s3cretX"));
}

ClientOptions MakeOptions(const std::function<void(ClientOptions&)>& set) {
  ClientOptions o;
  set(o);
  return o;
}

class ServerTest : public ::testing::Test {
 protected:
  void StartServer(ServerOptions options = {}) {
    Router router;
    router.HandleSync("GET", "/hello", [](const Request& r) {
      return JsonResponse(200, Json{{"hello", r.Query("name", "world")}});
    });
    router.HandleSync("POST", "/echo", [](const Request& r) {
      auto j = ParseJsonBody(r);
      if (!j.ok()) return StatusResponse(j.status());
      return JsonResponse(200, *j);
    });
    router.HandleSync("POST", "/secret", [](const Request& r) {
      if (!CheckBearer(r, "tok")) return UnauthorizedResponse();
      return TextResponse(200, "in");
    });
    // A shared (cached) body, and 304 for If-None-Match: "v1".
    router.HandleSync("GET", "/doc", [](const Request& r) {
      static const auto kBody = std::make_shared<const std::string>("{\"doc\":1}");
      Response resp;
      resp.headers.emplace_back("ETag", "\"v1\"");
      if (const auto* inm = r.Header("If-None-Match"); inm != nullptr && *inm == "\"v1\"") {
        resp.status = 304;
        return resp;
      }
      resp.content_type = "application/json";
      resp.shared_body = kBody;
      return resp;
    });
    router.Handle("GET", "/wait", [this](const Request&, Responder res) {
      std::lock_guard<std::mutex> lock(mu_);
      waiting_.push_back(std::move(res));
    });
    server_ = std::make_unique<HttpServer>(options);
    ASSERT_TRUE(server_->Start(std::move(router)).ok());
  }

  size_t Waiting() {
    std::lock_guard<std::mutex> lock(mu_);
    return waiting_.size();
  }
  void WaitForWaiting(size_t n) {
    for (int i = 0; i < 3000 && Waiting() < n; ++i) std::this_thread::sleep_for(10ms);
    ASSERT_GE(Waiting(), n);
  }

  std::mutex mu_;
  std::vector<Responder> waiting_;
  std::unique_ptr<HttpServer> server_;
};

TEST_F(ServerTest, JsonRoundTripKeepAliveAndErrors) {
  StartServer();
  HttpClient client;
  auto r = client.Get(server_->url() + "/hello?name=ballast");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->JsonBody()->at("hello"), "ballast");
  auto e = client.PostJson(server_->url() + "/echo", Json{{"a", {1, 2, 3}}});
  ASSERT_TRUE(e.ok());
  EXPECT_EQ(e->JsonBody()->at("a").size(), 3u);
  ClientRequest bad;
  bad.method = "POST";
  bad.url = server_->url() + "/echo";
  bad.body = "{not json";
  EXPECT_EQ(client.Do(bad)->status, 400);
  EXPECT_EQ(client.Get(server_->url() + "/nope")->status, 404);
  EXPECT_EQ(client.PostJson(server_->url() + "/secret", Json::object())->status, 401);
  HttpClient authed(MakeOptions([](ClientOptions& o) { o.bearer_token = "tok"; }));
  EXPECT_EQ(authed.PostJson(server_->url() + "/secret", Json::object())->status, 200);
}

TEST_F(ServerTest, BodyLimitGives413) {
  ServerOptions o;
  o.max_body_bytes = 1000;
  StartServer(o);
  HttpClient client;
  ClientRequest big;
  big.method = "POST";
  big.url = server_->url() + "/echo";
  big.body = "\"" + std::string(5000, 'x') + "\"";
  auto r = client.Do(big);
  // The server answers 413 and closes; depending on timing the client sees the 413 or a reset
  // while still writing. Either way it must not hang and must not be a 200.
  if (r.ok()) {
    EXPECT_EQ(r->status, 413);
  } else {
    EXPECT_EQ(r.status().code(), StatusCode::kUnavailable) << r.status().ToString();
  }
}

TEST_F(ServerTest, LongPollCompletesFromAnotherThread) {
  StartServer();
  HttpClient client;
  std::thread completer([this] {
    WaitForWaiting(1);
    std::lock_guard<std::mutex> lock(mu_);
    waiting_[0].Send(TextResponse(200, "later"));
  });
  auto r = client.Get(server_->url() + "/wait");
  completer.join();
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->body, "later");
}

TEST_F(ServerTest, ClientTimeoutAndCancel) {
  StartServer();
  HttpClient client(MakeOptions([](ClientOptions& o) { o.timeout = 300ms; }));
  auto r = client.Get(server_->url() + "/wait");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kDeadlineExceeded) << r.status().ToString();

  HttpClient patient(MakeOptions([](ClientOptions& o) { o.timeout = 60s; }));
  std::thread canceller([&] {
    WaitForWaiting(2);
    patient.Cancel();
  });
  auto c = patient.Get(server_->url() + "/wait");
  canceller.join();
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().code(), StatusCode::kAborted) << c.status().ToString();
  EXPECT_EQ(patient.Get(server_->url() + "/hello").status().code(), StatusCode::kAborted);
}

TEST_F(ServerTest, StopEndsPendingLongPollsAndRefusesAfterwards) {
  StartServer();
  std::string url = server_->url();
  HttpClient client(MakeOptions([](ClientOptions& o) { o.timeout = 60s; }));
  std::thread stopper([this] {
    WaitForWaiting(1);
    server_->Stop();
  });
  auto r = client.Get(url + "/wait");
  stopper.join();
  EXPECT_FALSE(r.ok());
  auto after = client.Get(url + "/hello");
  ASSERT_FALSE(after.ok());
  EXPECT_EQ(after.status().code(), StatusCode::kUnavailable);
  // A response for the stopped server is dropped, not crashed on.
  std::lock_guard<std::mutex> lock(mu_);
  waiting_[0].Send(TextResponse(200, "too late"));
}

TEST_F(ServerTest, SlowClientIsDisconnectedAfterReadTimeout) {
  ServerOptions o;
  o.read_timeout = 300ms;
  StartServer(o);
  int fd = ballast::testing::ConnectLoopback(server_->port());
  ASSERT_GE(fd, 0);
  std::string partial = "GET /hello HTTP/1.1\r\nHost: x\r\n";
  ASSERT_EQ(::write(fd, partial.data(), partial.size()), static_cast<ssize_t>(partial.size()));
  timeval tv{30, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  char buf[64];
  auto start = std::chrono::steady_clock::now();
  ssize_t n = ::read(fd, buf, sizeof buf);
  EXPECT_LE(n, 0);  // closed by the server, not by our 30 s guard
  EXPECT_LT(std::chrono::steady_clock::now() - start, 25s);
  ::close(fd);
}

// Reads from `fd` until what arrived ends with `last_body` (or the socket closes or 10 s pass).
std::string ReadResponses(int fd, const std::string& last_body) {
  timeval tv{10, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  std::string got;
  char buf[4096];
  while (got.size() < last_body.size() ||
         got.compare(got.size() - last_body.size(), last_body.size(), last_body) != 0) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n <= 0) break;
    got.append(buf, static_cast<size_t>(n));
  }
  return got;
}

TEST_F(ServerTest, SharedBodyAndNotModifiedOnOneKeptAliveConnection) {
  StartServer();
  HttpClient client;
  auto r = client.Get(server_->url() + "/doc");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->body, "{\"doc\":1}");
  ASSERT_NE(FindHeader(r->headers, "ETag"), nullptr);
  EXPECT_EQ(*FindHeader(r->headers, "ETag"), "\"v1\"");
  // Raw: a 304 (no body, no Content-Length) then a 200 on the same connection, pipelined.
  int fd = ballast::testing::ConnectLoopback(server_->port());
  ASSERT_GE(fd, 0);
  std::string requests =
      "GET /doc HTTP/1.1\r\nHost: x\r\nIf-None-Match: \"v1\"\r\n\r\n"
      "GET /doc HTTP/1.1\r\nHost: x\r\n\r\n";
  ASSERT_EQ(::write(fd, requests.data(), requests.size()), static_cast<ssize_t>(requests.size()));
  std::string got = ReadResponses(fd, "{\"doc\":1}");
  ::close(fd);
  size_t first = got.find("HTTP/1.1 304");
  size_t second = got.find("HTTP/1.1 200");
  ASSERT_NE(first, std::string::npos) << got;
  ASSERT_NE(second, std::string::npos) << got;
  EXPECT_LT(first, second);
  std::string not_modified = got.substr(first, second - first);
  EXPECT_EQ(not_modified.find("Content-Length"), std::string::npos) << not_modified;
  EXPECT_NE(not_modified.find("ETag: \"v1\""), std::string::npos) << not_modified;
  EXPECT_NE(got.find("Content-Length: 9"), std::string::npos) << got;
}

// What `gzip -dc` (the real tool) reads back from `data`.
std::string Gunzip(const std::string& data) {
  std::string path = std::filesystem::temp_directory_path() /
                     ("ballast-gzip-" + std::to_string(::getpid()) + ".gz");
  {
    FILE* f = std::fopen(path.c_str(), "wb");
    std::fwrite(data.data(), 1, data.size(), f);
    std::fclose(f);
  }
  std::string out;
  FILE* p = ::popen(("gzip -dc " + path).c_str(), "r");
  char buf[65536];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  EXPECT_EQ(::pclose(p), 0) << "gzip -dc failed";
  std::filesystem::remove(path);
  return out;
}

TEST(GzipTest, GzipReadsBackWithTheGzipTool) {
  EXPECT_EQ(Gunzip(Gzip("")), "");
  EXPECT_EQ(Gunzip(Gzip("{\"a\":1}\n")), "{\"a\":1}\n");
  std::string doc;
  for (int i = 0; i < 20000; ++i) {
    doc +=
        "{\"kind\":\"Deployment\",\"name\":\"app" + std::to_string(i) + "\",\"sync\":\"Synced\"},";
  }
  std::string gz = Gzip(doc);
  EXPECT_LT(gz.size(), doc.size() / 10);
  EXPECT_EQ(Gunzip(gz), doc);
  std::string noise;
  uint32_t x = 12345;
  for (int i = 0; i < 300000; ++i) {
    x = x * 1103515245 + 12345;
    noise.push_back(static_cast<char>(x >> 24));
  }
  EXPECT_EQ(Gunzip(Gzip(noise)), noise);  // incompressible: grows a little, still reads back
}

TEST(GzipTest, AcceptEncoding) {
  EXPECT_TRUE(AcceptsGzip("gzip"));
  EXPECT_TRUE(AcceptsGzip("gzip, deflate, br"));
  EXPECT_TRUE(AcceptsGzip("br;q=1.0, GZIP;q=0.5"));
  EXPECT_TRUE(AcceptsGzip("x-gzip"));
  EXPECT_TRUE(AcceptsGzip("*"));
  EXPECT_FALSE(AcceptsGzip(""));
  EXPECT_FALSE(AcceptsGzip("identity"));
  EXPECT_FALSE(AcceptsGzip("deflate, br"));
  EXPECT_FALSE(AcceptsGzip("gzip;q=0"));
  EXPECT_FALSE(AcceptsGzip("gzip; q=0.000, br"));
  EXPECT_FALSE(AcceptsGzip("gzipped"));
}

TEST(ClientTest, RefusedIsUnavailableAndNamesTheUrl) {
  const int port = ballast::testing::PickFreePort();  // nothing listens there
  ASSERT_GT(port, 0);
  HttpClient client;
  std::string url = "http://127.0.0.1:" + std::to_string(port) + "/x";
  auto r = client.Get(url);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kUnavailable);
  EXPECT_NE(r.status().message().find(url), std::string::npos);
}

// https with a throw-away CA made by the openssl command line tool.
TEST(TlsTest, VerifiesAgainstCaFile) {
  auto dir =
      std::filesystem::temp_directory_path() / ("ballast-net-tls-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  std::string d = dir.string();
  std::string cmd =
      "cd " + d +
      " && openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days 2 "
      "-subj /CN=ballast-test-ca >/dev/null 2>&1"
      " && openssl req -newkey rsa:2048 -nodes -keyout server.key -out server.csr "
      "-subj /CN=127.0.0.1 >/dev/null 2>&1"
      " && printf 'subjectAltName=IP:127.0.0.1\\n' > ext.cnf"
      " && openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial "
      "-out server.pem -days 2 -extfile ext.cnf >/dev/null 2>&1";
  ASSERT_EQ(std::system(cmd.c_str()), 0) << "openssl could not make test certificates";
  ServerOptions o;
  o.tls_cert_file = d + "/server.pem";
  o.tls_key_file = d + "/server.key";
  HttpServer server(o);
  Router router;
  router.HandleSync("GET", "/hi", [](const Request&) { return TextResponse(200, "secure"); });
  ASSERT_TRUE(server.Start(std::move(router)).ok());
  EXPECT_EQ(server.url().rfind("https://", 0), 0u);

  HttpClient trusted(MakeOptions([&](ClientOptions& o) { o.ca_file = d + "/ca.pem"; }));
  auto r = trusted.Get(server.url() + "/hi");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->body, "secure");

  HttpClient untrusted;  // system store: does not know our CA
  auto u = untrusted.Get(server.url() + "/hi");
  ASSERT_FALSE(u.ok());
  EXPECT_EQ(u.status().code(), StatusCode::kUnavailable);

  HttpClient bad_ca(MakeOptions([&](ClientOptions& o) { o.ca_file = d + "/missing.pem"; }));
  EXPECT_EQ(bad_ca.Get(server.url() + "/hi").status().code(), StatusCode::kInvalidArgument);
  server.Stop();
  std::filesystem::remove_all(dir);
}

std::string ReadAll(const std::string& path) {
  std::ifstream in(path);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

// Signs with the CA at `ca` (ca.pem, ca.key in `dir`) a certificate for a fresh key whose subject
// is `entries` (NID, value) in order, written as `name`.pem and `name`.key. Values go in as
// UTF8Strings as they are: the openssl tool refuses a common name over 64 bytes, a certificate
// need not.
bool SignRawSubject(const std::string& dir, const std::string& ca, const std::string& name,
                    const std::vector<std::pair<int, std::string>>& entries) {
  auto read_file = [](const std::string& path) { return std::fopen(path.c_str(), "r"); };
  FILE* f = read_file(dir + "/" + ca + ".pem");
  if (f == nullptr) return false;
  X509* ca_cert = PEM_read_X509(f, nullptr, nullptr, nullptr);
  std::fclose(f);
  f = read_file(dir + "/" + ca + ".key");
  if (f == nullptr) return false;
  EVP_PKEY* ca_key = PEM_read_PrivateKey(f, nullptr, nullptr, nullptr);
  std::fclose(f);
  EVP_PKEY* key = EVP_RSA_gen(2048);
  X509* cert = X509_new();
  bool ok = ca_cert != nullptr && ca_key != nullptr && key != nullptr && cert != nullptr;
  if (ok) {
    X509_set_version(cert, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(cert), 4242);
    X509_gmtime_adj(X509_getm_notBefore(cert), -60);
    X509_gmtime_adj(X509_getm_notAfter(cert), 86400);
    X509_set_pubkey(cert, key);
    X509_NAME* subject = X509_get_subject_name(cert);
    for (const auto& [nid, value] : entries) {
      ok = ok && X509_NAME_add_entry_by_NID(subject, nid, V_ASN1_UTF8STRING,
                                            reinterpret_cast<const unsigned char*>(value.data()),
                                            static_cast<int>(value.size()), -1, 0) == 1;
    }
    ok = ok && X509_set_issuer_name(cert, X509_get_subject_name(ca_cert)) == 1 &&
         X509_sign(cert, ca_key, EVP_sha256()) > 0;
  }
  if (ok) {
    FILE* out = std::fopen((dir + "/" + name + ".pem").c_str(), "w");
    ok = out != nullptr && PEM_write_X509(out, cert) == 1;
    if (out != nullptr) std::fclose(out);
    out = std::fopen((dir + "/" + name + ".key").c_str(), "w");
    ok = ok && out != nullptr &&
         PEM_write_PrivateKey(out, key, nullptr, nullptr, 0, nullptr, nullptr) == 1;
    if (out != nullptr) std::fclose(out);
  }
  X509_free(cert);
  EVP_PKEY_free(key);
  EVP_PKEY_free(ca_key);
  X509_free(ca_cert);
  return ok;
}

// Mutual TLS: a client certificate signed by the client CA reaches the handler as the peer's
// name and organizations; none is allowed (the handler sees no peer); one signed by another CA
// (or self-signed with the right name) fails the handshake.
TEST(TlsTest, ClientCertificatesAreVerifiedAndNamed) {
  auto dir =
      std::filesystem::temp_directory_path() / ("ballast-net-mtls-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  std::string d = dir.string();
  const std::vector<std::string> steps = {
      "openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days 2 "
      "-subj /CN=server-ca",
      "openssl req -newkey rsa:2048 -nodes -keyout server.key -out server.csr -subj /CN=127.0.0.1",
      "printf 'subjectAltName=IP:127.0.0.1\\n' > ext.cnf",
      "openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out server.pem "
      "-days 2 -extfile ext.cnf",
      "openssl req -x509 -newkey rsa:2048 -nodes -keyout clients.key -out clients.pem -days 2 "
      "-subj /CN=client-ca",
      "openssl req -newkey rsa:2048 -nodes -keyout node.key -out node.csr "
      "-subj '/O=system:nodes/O=extra/CN=system:node:a'",
      "openssl x509 -req -in node.csr -CA clients.pem -CAkey clients.key -CAcreateserial "
      "-out node.pem -days 2",
      "openssl req -x509 -newkey rsa:2048 -nodes -keyout forged.key -out forged.pem -days 2 "
      "-subj '/O=system:nodes/CN=system:node:a'",
      // A node certificate that is a CA itself, and the admin certificate it signs.
      "printf 'basicConstraints=critical,CA:TRUE\\n' > ca.cnf",
      "openssl req -newkey rsa:2048 -nodes -keyout rogue.key -out rogue.csr "
      "-subj '/O=system:nodes/CN=system:node:b'",
      "openssl x509 -req -in rogue.csr -CA clients.pem -CAkey clients.key -CAcreateserial "
      "-out rogue.pem -days 2 -extfile ca.cnf",
      "openssl req -newkey rsa:2048 -nodes -keyout minted.key -out minted.csr "
      "-subj '/O=admin/CN=mallory'",
      "openssl x509 -req -in minted.csr -CA rogue.pem -CAkey rogue.key -CAcreateserial "
      "-out minted-leaf.pem -days 2",
      "cat minted-leaf.pem rogue.pem > minted.pem",
  };
  std::string cmd = "cd " + d;
  for (const auto& step : steps) cmd += " && " + step + " 2>/dev/null";
  ASSERT_EQ(std::system(cmd.c_str()), 0) << "openssl could not make test certificates";
  // Two common names, the first longer than any name may be (253 bytes).
  ASSERT_TRUE(SignRawSubject(d, "clients", "twocn",
                             {{NID_organizationName, "system:nodes"},
                              {NID_commonName, std::string(300, 'x')},
                              {NID_commonName, "system:node:a"}}));
  ServerOptions o;
  o.tls_cert_file = d + "/server.pem";
  o.tls_key_file = d + "/server.key";
  o.tls_client_ca_file = d + "/clients.pem";
  HttpServer server(o);
  Router router;
  router.HandleSync("GET", "/who", [](const Request& req) {
    if (!req.peer_certificate) return TextResponse(200, "nobody");
    std::string out = req.peer_certificate->common_name;
    for (const auto& org : req.peer_certificate->organizations) out += " " + org;
    return TextResponse(200, out);
  });
  ASSERT_TRUE(server.Start(std::move(router)).ok());

  // GET /who as the holder of certificate `who` ("" for none).
  auto who = [&](const std::string& who) {
    HttpClient client(MakeOptions([&](ClientOptions& c) {
      c.ca_file = d + "/ca.pem";
      if (!who.empty()) {
        c.cert_file = d + "/" + who + ".pem";
        c.key_file = d + "/" + who + ".key";
      }
    }));
    return client.Get(server.url() + "/who");
  };
  auto r = who("node");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->body, "system:node:a system:nodes extra");
  auto a = who("");
  ASSERT_TRUE(a.ok()) << a.status().ToString();
  EXPECT_EQ(a->body, "nobody");
  auto f = who("forged");
  EXPECT_FALSE(f.ok()) << "a certificate the client CA did not sign is refused: " << f->body;
  auto m = who("minted");
  EXPECT_FALSE(m.ok()) << "a certificate from a client certificate is refused: " << m->body;
  auto t = who("twocn");
  ASSERT_TRUE(t.ok()) << t.status().ToString();
  EXPECT_EQ(t->body, "") << "an unreadable name hides nothing: no name, no organization";

  // A client that tries to resume its session on the next connection (browsers, curl) is not
  // refused: no session is kept to resume, every connection is a full handshake, and the
  // certificate is checked again each time.
  const std::string port = std::to_string(server.port());
  for (const std::string version : {"-tls1_2", "-tls1_3"}) {
    const std::string out = d + "/reconnect" + version + ".txt";
    EXPECT_EQ(std::system(("cd " + d + " && openssl s_client -connect 127.0.0.1:" + port +
                           " -CAfile ca.pem -cert node.pem -key node.key -reconnect " + version +
                           " </dev/null >" + out + " 2>&1")
                              .c_str()),
              0);
    const std::string text = ReadAll(out);
    EXPECT_EQ(text.find("Reused,"), std::string::npos) << text;
    EXPECT_NE(text.find("New,"), std::string::npos) << text;
  }

  HttpClient no_key(MakeOptions([&](ClientOptions& c) {
    c.ca_file = d + "/ca.pem";
    c.cert_file = d + "/node.pem";
    c.key_file = d + "/missing.key";
  }));
  EXPECT_EQ(no_key.Get(server.url() + "/who").status().code(), StatusCode::kInvalidArgument);
  server.Stop();

  ServerOptions plain;
  plain.tls_client_ca_file = d + "/clients.pem";
  EXPECT_EQ(HttpServer(plain).Start(Router()).code(), StatusCode::kInvalidArgument)
      << "a client CA without TLS is a configuration error";
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace ballast::net
