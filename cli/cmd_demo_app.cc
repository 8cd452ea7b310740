// `ballast demo-app`: a small HTTP workload built into the binary, so examples and tests run
// anywhere. Serves "/" (a message, the pod name and revision), "/healthz" and "/env/NAME" (a
// Service environment variable), with switches to fail readiness, crash, hold memory, answer
// slowly, or exit the moment SIGTERM arrives (as many apps do, dropping what is in flight).

#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "cli/commands.h"
#include "cli/flags.h"
#include "cli/stop_signals.h"
#include "net/server.h"

namespace ballast::cli {
namespace {

std::string Env(const char* name, const std::string& fallback = "") {
  const char* v = std::getenv(name);
  return v && *v ? v : fallback;
}

// What the demo app answers (see the command's help).
struct DemoApp {
  std::string message, pod, revision;
  std::string message_file;  // read at each request when set (a mounted ConfigMap's file)
  int ready_after = 0;
  int latency_ms = 0;  // "/" answers after this long
  std::shared_ptr<std::atomic<bool>> failing;
  std::chrono::steady_clock::time_point start;
};

net::Router DemoRoutes(const DemoApp& app) {
  net::Router router;
  const std::string message = app.message, pod = app.pod, revision = app.revision;
  const std::string message_file = app.message_file;
  const int ready_after = app.ready_after;
  const int latency_ms = app.latency_ms;
  const auto failing = app.failing;
  const auto start = app.start;
  router.HandleSync("GET", "/", [=](const net::Request&) {
    if (latency_ms > 0) std::this_thread::sleep_for(std::chrono::milliseconds(latency_ms));
    std::string text = message;
    if (!message_file.empty()) {
      std::ifstream in(message_file, std::ios::binary);
      if (!in) return net::TextResponse(500, "cannot read " + message_file + "\n");
      text.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
      text.resize(std::min<size_t>(text.size(), 4096));
      while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.pop_back();
    }
    return net::TextResponse(200, text + " pod=" + pod + " revision=" + revision + "\n");
  });
  router.HandleSync("GET", "/healthz", [=](const net::Request&) {
    bool warming = std::chrono::steady_clock::now() - start < std::chrono::seconds(ready_after);
    if (failing->load() || warming) return net::TextResponse(503, "failing\n");
    return net::TextResponse(200, "ok\n");
  });
  // Only the Service environment (<SVC>_SERVICE_HOST, ..._PORT): enough to see where a pod
  // was told its Services are, without exposing anything else a pod may hold in its env.
  router.HandleSync("GET", "/env/*", [](const net::Request& r) {
    const std::string name = r.path.substr(std::strlen("/env/"));
    if (name.find("_SERVICE_") == std::string::npos) {
      return net::TextResponse(403, "only Service variables (NAME_SERVICE_...)\n");
    }
    const char* value = std::getenv(name.c_str());
    if (value == nullptr) return net::TextResponse(404, name + " is not set\n");
    return net::TextResponse(200, std::string(value) + "\n");
  });
  const std::string pid = std::to_string(getpid());
  router.HandleSync("GET", "/pid",
                    [=](const net::Request&) { return net::TextResponse(200, pid + "\n"); });
  router.HandleSync("POST", "/admin/fail", [=](const net::Request&) {
    failing->store(true);
    return net::TextResponse(200, "failing\n");
  });
  router.HandleSync("POST", "/admin/recover", [=](const net::Request&) {
    failing->store(false);
    return net::TextResponse(200, "ok\n");
  });
  router.HandleSync("POST", "/admin/crash", [](const net::Request&) -> net::Response {
    std::fprintf(stderr, "demo-app: crashing on request\n");
    std::_Exit(1);
  });

  return router;
}

}  // namespace

int RunDemoApp(const Args& args) {
  FlagSet flags(
      "ballast demo-app [flags]",
      "Serve a demo HTTP app on $HOST:$PORT: / answers the message, pod name and "
      "revision; /healthz answers 200 (503 while failing); /pid the process id (to tell a "
      "restarted pod from the same one); /env/NAME the value of a Service environment variable "
      "(NAME contains _SERVICE_, e.g. /env/API_SERVICE_HOST; 404 when unset). POST /admin/fail and "
      "/admin/recover switch /healthz, POST /admin/crash exits 1.");
  flags.AddString("message", "m", Env("MESSAGE", "hello from ballast"), "message served at /");
  flags.AddString("message-file", "", "",
                  "serve this file's contents (its first 4 KiB, read at each request) instead of "
                  "the message");
  flags.AddString("listen", "", "", "HOST:PORT (default $HOST:$PORT, else 127.0.0.1:8080)");
  flags.AddBool("fail-readiness", "", "answer /healthz with 503 from the start");
  flags.AddString("crash-after", "", "0", "exit 1 after this many seconds (0: never)");
  flags.AddString("ready-after", "", "0", "answer /healthz with 503 for this many seconds");
  flags.AddString("allocate-mb", "", "0", "allocate and touch this many MiB at start");
  flags.AddString("latency-ms", "", "0", "answer / after this many milliseconds (0-10000)");
  flags.AddBool("exit-on-sigterm", "",
                "exit the moment SIGTERM arrives, closing connections mid-request");
  if (auto rc = ParseOrExit(flags, args)) return *rc;

  std::string listen = flags.Get("listen");
  std::string host = Env("HOST", "127.0.0.1"), port = Env("PORT", "8080");
  if (!listen.empty()) {
    auto colon = listen.rfind(':');
    if (colon == std::string::npos) {
      std::fprintf(stderr, "demo-app: --listen wants HOST:PORT\n");
      return 2;
    }
    host = listen.substr(0, colon);
    port = listen.substr(colon + 1);
  }
  int crash_after = std::atoi(flags.Get("crash-after").c_str());
  int ready_after = std::atoi(flags.Get("ready-after").c_str());
  long allocate_mb = std::atol(flags.Get("allocate-mb").c_str());
  const int latency_ms = std::clamp(std::atoi(flags.Get("latency-ms").c_str()), 0, 10000);

  std::vector<char*> hold;
  for (long i = 0; i < allocate_mb; ++i) {
    auto* block = static_cast<char*>(std::malloc(1 << 20));
    if (block == nullptr) break;
    std::memset(block, static_cast<int>(i), 1 << 20);
    hold.push_back(block);
  }

  sigset_t stop_signals = BlockStopSignals();

  DemoApp app;
  app.message = flags.Get("message");
  app.message_file = flags.Get("message-file");
  app.pod = Env("BALLAST_POD_NAME", Env("HOSTNAME", "local"));
  app.revision = Env("BALLAST_REVISION", "none");
  app.ready_after = ready_after;
  app.latency_ms = latency_ms;
  app.failing = std::make_shared<std::atomic<bool>>(flags.GetBool("fail-readiness"));
  app.start = std::chrono::steady_clock::now();
  net::Router router = DemoRoutes(app);

  net::ServerOptions options;
  options.address = host;
  options.port = static_cast<uint16_t>(std::atoi(port.c_str()));
  if (latency_ms > 0) options.threads = 16;  // slow answers, several at once
  net::HttpServer server(options);
  if (Status s = server.Start(std::move(router)); !s.ok()) {
    std::fprintf(stderr, "demo-app: %s\n", s.ToString().c_str());
    return 1;
  }
  std::printf("demo-app: serving %s (pod %s, revision %s)\n", server.url().c_str(), app.pod.c_str(),
              app.revision.c_str());
  std::fflush(stdout);

  if (crash_after > 0) {
    timespec ts{crash_after, 0};
    if (sigtimedwait(&stop_signals, nullptr, &ts) < 0) {
      std::fprintf(stderr, "demo-app: crashing after %d s as asked\n", crash_after);
      std::_Exit(1);
    }
  } else {
    int sig = 0;
    sigwait(&stop_signals, &sig);
    if (sig == SIGTERM && flags.GetBool("exit-on-sigterm")) std::_Exit(0);
  }
  server.Stop();
  for (char* b : hold) std::free(b);
  std::printf("demo-app: stopped\n");
  return 0;
}

}  // namespace ballast::cli
