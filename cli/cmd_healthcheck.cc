// `ballast healthcheck`: exits 0 when a reconciler answers GET /healthz with 200, 1 otherwise.
// What a container's HEALTHCHECK or a systemd ExecStartPost runs: the image has no curl.

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "cli/commands.h"
#include "cli/flags.h"
#include "net/client.h"

namespace ballast::cli {

int RunHealthcheck(const Args& args) {
  FlagSet flags("ballast healthcheck [--server URL] [--timeout SECONDS]",
                "Exit 0 when the reconciler at --server answers GET /healthz with 200, else print "
                "why and exit 1.");
  AddServerFlag(flags);
  flags.AddString("ca-file", "", "", "https: PEM CA bundle (default: the system's)");
  flags.AddString("timeout", "", "5", "seconds to wait for the answer");
  if (auto rc = ParseOrExit(flags, args)) return *rc;
  char* end = nullptr;
  const long seconds = std::strtol(flags.Get("timeout").c_str(), &end, 10);
  if (end == flags.Get("timeout").c_str() || *end != '\0' || seconds < 1 || seconds > 3600) {
    std::fprintf(stderr, "error: --timeout: \"%s\" is not a number of seconds (1-3600)\n",
                 flags.Get("timeout").c_str());
    return 2;
  }
  std::string base = flags.Get("server");
  while (!base.empty() && base.back() == '/') base.pop_back();
  net::ClientOptions options;
  options.ca_file = flags.Get("ca-file");
  options.timeout = std::chrono::seconds(seconds);
  options.max_body_bytes = 4096;
  net::HttpClient client(options);
  auto resp = client.Get(base + "/healthz");
  if (!resp.ok()) {
    std::fprintf(stderr, "unhealthy: %s\n", resp.status().message().c_str());
    return 1;
  }
  if (resp->status != 200) {
    std::fprintf(stderr, "unhealthy: GET %s/healthz answered %d\n", base.c_str(), resp->status);
    return 1;
  }
  std::printf("ok\n");
  return 0;
}

}  // namespace ballast::cli
