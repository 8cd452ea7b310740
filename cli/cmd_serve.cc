// `ballast serve`: the reconciler. Runs until SIGTERM or SIGINT, then stops cleanly.

#include <signal.h>

#include <cstdio>
#include <string>

#include "cli/age_identity_flag.h"
#include "cli/build_info.h"
#include "cli/commands.h"
#include "cli/dir_lock.h"
#include "cli/flags.h"
#include "cli/git_remote_flags.h"
#include "cli/process_limits.h"
#include "cli/stop_signals.h"
#include "log/log.h"
#include "net/http.h"
#include "reconciler/identity.h"
#include "reconciler/service.h"

namespace ballast::cli {
namespace {

bool ParseInt(const std::string& text, int min, int max, int* out) {
  try {
    size_t pos = 0;
    long v = std::stol(text, &pos);
    if (pos != text.size() || v < min || v > max) return false;
    *out = static_cast<int>(v);
    return true;
  } catch (...) {
    return false;
  }
}

// "HOST:PORT" (port 0: any free port).
bool ParseListen(const std::string& text, std::string* host, uint16_t* port) {
  auto colon = text.rfind(':');
  if (colon == std::string::npos || colon == 0) return false;
  int p = 0;
  if (!ParseInt(text.substr(colon + 1), 0, 65535, &p)) return false;
  *host = text.substr(0, colon);
  if (host->size() > 2 && host->front() == '[' && host->back() == ']') {
    *host = host->substr(1, host->size() - 2);
  }
  *port = static_cast<uint16_t>(p);
  return true;
}

FlagSet ServeFlags() {
  FlagSet flags(
      "ballast serve --repo URL|PATH [flags]",
      "Run the reconciler: poll the manifest repository, plan, roll out through the agents,\n"
      "record every applied sync in STATE_DIR/history.git, and serve the API and status page.\n"
      "Prints \"listening on URL\" once the API is up. Stops cleanly on SIGTERM or SIGINT.");
  flags.AddString("repo", "", "", "manifest repository: URL or local path (required)");
  flags.AddString("branch", "", "main", "branch, tag or commit to follow");
  flags.AddString("path", "", "", "folder inside the repository to read");
  AddGitRemoteFlags(flags);  // --git-username, --git-password-file, --git-ssh-key, ...
  AddAgeIdentityFlag(flags);
  flags.AddString("listen", "", "127.0.0.1:7070", "HOST:PORT to serve on (port 0: any free port)");
  flags.AddString("state-dir", "", "ballast-state", "where history.git and the clone live");
  flags.AddString("poll", "", "30", "seconds between polls of the repository");
  flags.AddString("max-objects", "", "100000",
                  "objects one revision may hold; a revision with more is refused whole");
  flags.AddString("sync", "", "auto", "auto: apply every new revision; manual: on `ballast sync`");
  flags.AddString("token-file", "", "",
                  "who may call: Kubernetes static-token CSV, token,user,uid,\"groups\" with "
                  "group admin, viewer or node (a file of one token: that admin)");
  flags.AddString("join-token-file", "", "",
                  "token agents register with (each then gets a credential of its own)");
  flags.AddString("anonymous", "", "none",
                  "role of requests without a token when tokens are configured: none or viewer");
  flags.AddBool("insecure", "",
                "allow listening beyond loopback with no credentials configured (anyone "
                "reaching the port then controls every node)");
  flags.AddString("webhook-secret-file", "", "", "secret for webhook signatures (GitHub, GitLab)");
  flags.AddString("tls-cert", "", "", "serve https with this PEM certificate");
  flags.AddString("tls-key", "", "", "... and this PEM key");
  flags.AddString("tls-client-ca", "", "",
                  "with --tls-cert: accept client certificates this PEM CA signed (mutual TLS; "
                  "organization admin, viewer or system:nodes, CN system:node:NAME for a node)");
  flags.AddString("log-format", "", "text", "text (key=value) or json");
  flags.AddString("log-level", "", "info", "debug, info, warn or error");
  flags.AddString("heartbeat", "", "10", "seconds between agent heartbeats");
  flags.AddString("node-grace", "", "40", "seconds without heartbeat before a node is NotReady");
  flags.AddString("node-toleration", "", "300",
                  "seconds a node may stay NotReady before its pods are replaced elsewhere");
  flags.AddString("adopt-wait", "", "5",
                  "seconds after a restart during which no pod is started (agents report first)");
  return flags;
}

// The reconciler's options from its flags (secrets aside); InvalidArgument names the flag.
Result<reconciler::ServiceOptions> ServeOptionsFromFlags(const FlagSet& flags) {
  reconciler::ServiceOptions o;
  o.version = BuildInfoJson(ThisBuild());
  o.source.remote.url = flags.Get("repo");
  o.source.ref = flags.Get("branch");
  o.source.path = flags.Get("path");
  o.state_dir = flags.Get("state-dir");
  if (!ParseListen(flags.Get("listen"), &o.http.address, &o.http.port)) {
    return InvalidArgument("--listen must be HOST:PORT");
  }
  o.http.threads = 2;
  o.http.tls_cert_file = flags.Get("tls-cert");
  o.http.tls_key_file = flags.Get("tls-key");
  o.http.tls_client_ca_file = flags.Get("tls-client-ca");
  if (o.http.tls_cert_file.empty() != o.http.tls_key_file.empty()) {
    return InvalidArgument("--tls-cert and --tls-key go together");
  }
  if (!o.http.tls_client_ca_file.empty() && o.http.tls_cert_file.empty()) {
    return InvalidArgument("--tls-client-ca needs --tls-cert and --tls-key");
  }
  int poll = 0, heartbeat = 0, grace = 0, toleration = 0, adopt = 0;
  if (!ParseInt(flags.Get("poll"), 1, 86400, &poll))
    return InvalidArgument("--poll must be 1..86400");
  if (!ParseInt(flags.Get("heartbeat"), 1, 3600, &heartbeat) ||
      !ParseInt(flags.Get("node-grace"), 1, 86400, &grace) ||
      !ParseInt(flags.Get("node-toleration"), 0, 86400, &toleration) ||
      !ParseInt(flags.Get("adopt-wait"), 0, 3600, &adopt)) {
    return InvalidArgument(
        "--heartbeat, --node-grace, --node-toleration, --adopt-wait take seconds");
  }
  o.poll_seconds = poll;
  int max_objects = 0;
  if (!ParseInt(flags.Get("max-objects"), 1, 10'000'000, &max_objects)) {
    return InvalidArgument("--max-objects must be 1..10000000");
  }
  o.source.max_objects = static_cast<size_t>(max_objects);
  o.controller.heartbeat_seconds = heartbeat;
  o.controller.node_lifecycle.grace_period_ms = int64_t{grace} * 1000;
  o.controller.node_lifecycle.toleration_ms = int64_t{toleration} * 1000;
  o.controller.adopt_wait_ms = int64_t{adopt} * 1000;
  if (flags.Get("sync") == "auto") {
    o.controller.sync = reconciler::SyncPolicy::kAuto;
  } else if (flags.Get("sync") == "manual") {
    o.controller.sync = reconciler::SyncPolicy::kManual;
  } else {
    return InvalidArgument("--sync must be auto or manual");
  }
  return o;
}

// The identities (--token-file, --join-token-file, --anonymous) and the webhook secret; then
// the safe default: beyond loopback, no credentials means no start, unless --insecure.
Status LoadCredentials(const FlagSet& flags, reconciler::ServiceOptions* o) {
  if (const std::string& path = flags.Get("token-file"); !path.empty()) {
    auto tokens = reconciler::ReadTokenFile(path);
    if (!tokens.ok()) {
      return Status(tokens.status().code(), "--token-file: " + tokens.status().message());
    }
    o->tokens = std::move(*tokens);
    WarnIfOthersCanRead(path, "--token-file");
  }
  auto join = SecretFromFlag(flags, "join-token-file");
  auto webhook = SecretFromFlag(flags, "webhook-secret-file");
  if (!join.ok()) return join.status();
  if (!webhook.ok()) return webhook.status();
  o->join_token = *join;
  o->webhook_secret = *webhook;
  if (!o->join_token.empty())
    WarnIfOthersCanRead(flags.Get("join-token-file"), "--join-token-file");
  auto anonymous = reconciler::ParseAnonymousRole(flags.Get("anonymous"));
  if (!anonymous.ok() || *anonymous == reconciler::Role::kAdmin) {
    return InvalidArgument("--anonymous must be none or viewer");
  }
  o->anonymous = *anonymous;
  const bool open =
      o->tokens.by_hash.empty() && o->join_token.empty() && o->http.tls_client_ca_file.empty();
  if (IsLoopbackHost(o->http.address)) return Status::Ok();
  if (open && !flags.GetBool("insecure")) {
    return Status(StatusCode::kFailedPrecondition,
                  "--listen " + flags.Get("listen") +
                      " is reachable from other machines, and no --token-file or "
                      "--join-token-file is given: anyone reaching the port could register a "
                      "node, read every secret and run code on every node. Give credentials "
                      "(see SECURITY.md), listen on 127.0.0.1, or pass --insecure to accept that");
  }
  o->insecure = open;
  if (open) {
    LogEvent(LogLevel::kWarn, "insecure",
             {{"listen", flags.Get("listen")},
              {"why", "--insecure: no credentials, reachable beyond loopback"}});
  }
  if (o->http.tls_cert_file.empty()) {
    LogEvent(LogLevel::kWarn, "plain_http",
             {{"listen", flags.Get("listen")},
              {"why",
               "tokens and secrets cross the network unencrypted; give --tls-cert and "
               "--tls-key"}});
  }
  return Status::Ok();
}

}  // namespace

int RunServe(const Args& args) {
  FlagSet flags = ServeFlags();
  if (auto rc = ParseOrExit(flags, args)) return *rc;

  auto usage = [&](const std::string& message) {
    std::fprintf(stderr, "error: %s\n\n%s", message.c_str(), flags.Help().c_str());
    return 2;
  };
  if (!flags.positional().empty()) return usage("unexpected argument " + flags.positional()[0]);
  if (flags.Get("repo").empty()) return usage("--repo is required");
  if (!ConfigureLogging(flags.Get("log-format"), flags.Get("log-level"))) {
    return usage("--log-format must be text or json, --log-level debug|info|warn|error");
  }
  auto options = ServeOptionsFromFlags(flags);
  if (!options.ok()) return usage(options.status().message());
  reconciler::ServiceOptions o = std::move(*options);
  if (Status s = GitRemoteFromFlags(flags, &o.source.remote); !s.ok()) {
    std::fprintf(stderr, "error: %s\n", s.message().c_str());
    return 2;
  }
  if (Status s = LoadCredentials(flags, &o); !s.ok()) {
    std::fprintf(stderr, "error: %s\n", s.message().c_str());
    return s.code() == StatusCode::kInvalidArgument ? 2 : 1;
  }
  auto age = AgeKeyringFromFlag(flags);  // outlives the service, which parses with it
  if (!age.ok()) {
    std::fprintf(stderr, "error: %s\n", age.status().message().c_str());
    return age.status().code() == StatusCode::kInvalidArgument ? 2 : 1;
  }
  o.source.parse_limits.sops = age->get();

  std::string lock_error;
  if (!LockDirectory(o.state_dir, "ballast serve", &lock_error)) {
    std::fprintf(stderr, "error: --state-dir: %s\n", lock_error.c_str());
    return 1;
  }

  sigset_t stop_signals = BlockStopSignals();
  RaiseOpenFileLimit();

  SystemClock clock;
  reconciler::Service service(std::move(o), &clock);
  if (Status st = service.Start(); !st.ok()) {
    std::fprintf(stderr, "error: %s\n", st.ToString().c_str());
    return 1;
  }
  std::printf("listening on %s\n", service.url().c_str());
  std::fflush(stdout);
  int sig = 0;
  sigwait(&stop_signals, &sig);
  LogEvent(LogLevel::kInfo, "stopping", {{"signal", sig == SIGTERM ? "SIGTERM" : "SIGINT"}});
  service.Stop();
  LogEvent(LogLevel::kInfo, "stopped");
  return 0;
}

}  // namespace ballast::cli
