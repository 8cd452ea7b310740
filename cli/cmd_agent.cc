// `ballast agent`: the node agent. Registers with the reconciler, runs the node's pods as
// processes, serves the Services, and keeps everything running while the reconciler is away.

#include <pwd.h>
#include <signal.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <sstream>
#include <string>

#include "cli/commands.h"
#include "cli/dir_lock.h"
#include "cli/flags.h"
#include "cli/process_limits.h"
#include "cli/stop_signals.h"
#include "log/log.h"
#include "net/http.h"
#include "nodeagent/agent.h"
#include "nodeagent/work_dir.h"

namespace ballast::cli {
namespace {

bool ParseLabels(const std::string& text, model::StringMap* out) {
  std::stringstream ss(text);
  std::string item;
  while (std::getline(ss, item, ',')) {
    if (item.empty()) continue;
    auto eq = item.find('=');
    if (eq == std::string::npos || eq == 0) return false;
    (*out)[item.substr(0, eq)] = item.substr(eq + 1);
  }
  return true;
}

// "key=value:Effect,key2:Effect"
bool ParseTaints(const std::string& text, std::vector<model::Taint>* out) {
  std::stringstream ss(text);
  std::string item;
  while (std::getline(ss, item, ',')) {
    if (item.empty()) continue;
    auto colon = item.rfind(':');
    if (colon == std::string::npos) return false;
    model::Taint t;
    t.effect = item.substr(colon + 1);
    std::string kv = item.substr(0, colon);
    auto eq = kv.find('=');
    t.key = kv.substr(0, eq);
    if (eq != std::string::npos) t.value = kv.substr(eq + 1);
    if (t.key.empty() || t.effect.empty()) return false;
    out->push_back(std::move(t));
  }
  return true;
}

FlagSet AgentFlags() {
  FlagSet flags("ballast agent --server URL --name NAME [flags]",
                "Run the node agent: register with the reconciler, run this node's pods as "
                "processes or containers, proxy the Services, report status. Pods keep running "
                "when the agent "
                "stops and are adopted when it starts again.");
  flags.AddString("server", "", "http://127.0.0.1:7070", "reconciler URL (http:// or https://)");
  flags.AddString("name", "", "", "node name (required)");
  flags.AddString("address", "", "127.0.0.1", "IP the pods and Service proxies listen on");
  flags.AddString("cpu", "", "", "CPU capacity (default: the machine's CPUs)");
  flags.AddString("memory", "", "", "memory capacity, e.g. 4Gi (default: the machine's memory)");
  flags.AddString("labels", "", "", "node labels k=v,k2=v2");
  flags.AddString("taints", "", "", "node taints key=value:Effect,...");
  flags.AddString("work-dir", "", "",
                  "directory for pods, logs and state, only this user's (default "
                  "/var/lib/ballast/agent/NAME as root, else "
                  "$XDG_STATE_HOME or ~/.local/state + /ballast/agent/NAME)");
  flags.AddString("token-file", "", "",
                  "file holding the reconciler's join token (or a token of its token file); "
                  "the node then keeps a credential of its own in its work directory");
  flags.AddBool("insecure", "",
                "allow an --address beyond loopback with no --token-file (an open reconciler)");
  flags.AddString("ca-file", "", "", "PEM CA bundle to verify an https reconciler");
  flags.AddString("tls-cert", "", "",
                  "client certificate for a reconciler with --tls-client-ca (mutual TLS; "
                  "O=system:nodes, CN=system:node:NAME): the node's identity, no token needed");
  flags.AddString("tls-key", "", "", "... and its PEM key");
  flags.AddString("heartbeat", "", "10", "heartbeat period in seconds");
  flags.AddString("logs-port", "", "0",
                  "port of the pod log server on --address (0: any free port, -1: none)");
  flags.AddString("log-format", "", "text", "text (key=value) or json");
  flags.AddString("log-level", "", "info", "debug, info, warn or error");
  flags.AddBool("stop-pods-on-exit", "", "stop every pod when the agent stops");
  flags.AddBool("no-cgroups", "", "do not use cgroups even where writable");
  flags.AddString("runtime", "", "process",
                  "process (commands), docker (images through the Docker Engine API; pods "
                  "with a command and no image still run as processes) or auto (docker when "
                  "--docker-socket answers)");
  flags.AddString("docker-socket", "", "/var/run/docker.sock",
                  "unix socket of dockerd or `podman system service`");
  flags.AddString("image-pull-policy", "", "",
                  "Never, IfNotPresent or Always for every container (default: each "
                  "container's imagePullPolicy)");
  return flags;
}

// The agent's options from its flags; InvalidArgument names the flag.
Result<nodeagent::AgentOptions> AgentOptionsFromFlags(const FlagSet& flags) {
  nodeagent::AgentOptions o;
  o.server_url = flags.Get("server");
  o.name = flags.Get("name");
  o.address = flags.Get("address");
  o.cpu = flags.Get("cpu");
  o.memory = flags.Get("memory");
  o.work_dir = flags.Get("work-dir");
  o.ca_file = flags.Get("ca-file");
  o.cert_file = flags.Get("tls-cert");
  o.key_file = flags.Get("tls-key");
  if (o.cert_file.empty() != o.key_file.empty()) {
    return InvalidArgument("--tls-cert and --tls-key go together");
  }
  o.stop_pods_on_exit = flags.GetBool("stop-pods-on-exit");
  o.enable_cgroups = !flags.GetBool("no-cgroups");
  o.heartbeat_seconds = std::atoi(flags.Get("heartbeat").c_str());
  o.logs_port = std::atoi(flags.Get("logs-port").c_str());
  o.runtime = flags.Get("runtime");
  o.docker_socket = flags.Get("docker-socket");
  o.image_pull_policy = flags.Get("image-pull-policy");
  if (o.runtime != "process" && o.runtime != "docker" && o.runtime != "auto") {
    return InvalidArgument("--runtime wants process, docker or auto");
  }
  if (!o.image_pull_policy.empty() && o.image_pull_policy != "Never" &&
      o.image_pull_policy != "IfNotPresent" && o.image_pull_policy != "Always") {
    return InvalidArgument("--image-pull-policy wants Never, IfNotPresent or Always");
  }
  if (o.name.empty()) return InvalidArgument("--name is required");
  if (o.work_dir.empty()) {
    const char* home = std::getenv("HOME");
    if (home == nullptr || home[0] == '\0') {
      if (passwd* pw = ::getpwuid(::geteuid())) home = pw->pw_dir;
    }
    auto dir = nodeagent::DefaultWorkDir(o.name, ::geteuid(), std::getenv("XDG_STATE_HOME"), home);
    if (!dir.ok()) return dir.status();
    o.work_dir = *dir;
  }
  o.log = [](std::string_view event, const std::vector<std::pair<std::string, std::string>>& f) {
    LogEvent(LogLevel::kInfo, event, f);
  };
  if (!ParseLabels(flags.Get("labels"), &o.labels)) {
    return InvalidArgument("--labels wants k=v,k2=v2");
  }
  if (!ParseTaints(flags.Get("taints"), &o.taints)) {
    return InvalidArgument("--taints wants key=value:Effect,...");
  }
  if (o.heartbeat_seconds <= 0) {
    return InvalidArgument("--heartbeat wants a positive number of seconds");
  }
  return o;
}

// The safe default: pods' services and logs on an address other machines reach, with no token
// to join with, means the reconciler is open too; refused unless --insecure. Plain http to a
// reconciler elsewhere carries the node's credential and its pods' secrets in the clear: said.
Status CheckExposure(const FlagSet& flags, const nodeagent::AgentOptions& o) {
  if (!IsLoopbackHost(o.address) && o.token.empty() && o.cert_file.empty()) {
    if (!flags.GetBool("insecure")) {
      return Status(StatusCode::kFailedPrecondition,
                    "--address " + o.address +
                        " is reachable from other machines, and no --token-file is given: the "
                        "reconciler must then be open to anyone. Give the reconciler's join "
                        "token (see SECURITY.md), or pass --insecure to accept that");
    }
    LogEvent(LogLevel::kWarn, "insecure",
             {{"address", o.address}, {"why", "--insecure: no token, reachable beyond loopback"}});
  }
  auto url = net::ParseUrl(o.server_url);
  if (url.ok() && !url->tls() && !IsLoopbackHost(url->host)) {
    LogEvent(LogLevel::kWarn, "plain_http",
             {{"server", o.server_url},
              {"why",
               "the node's credential and its pods' secrets cross the network "
               "unencrypted; serve the reconciler over https"}});
  }
  return Status::Ok();
}

}  // namespace

int RunAgent(const Args& args) {
  FlagSet flags = AgentFlags();
  if (auto rc = ParseOrExit(flags, args)) return *rc;
  auto options = AgentOptionsFromFlags(flags);
  if (!options.ok()) {
    std::fprintf(stderr, "ballast agent: %s (see ballast agent --help)\n",
                 options.status().message().c_str());
    return 2;
  }
  nodeagent::AgentOptions o = std::move(*options);
  if (!ConfigureLogging(flags.Get("log-format"), flags.Get("log-level"))) {
    std::fprintf(stderr,
                 "ballast agent: --log-format must be text or json, --log-level "
                 "debug|info|warn|error\n");
    return 2;
  }
  auto token = SecretFromFlag(flags, "token-file");
  if (!token.ok()) {
    std::fprintf(stderr, "ballast agent: %s\n", token.status().message().c_str());
    return 1;
  }
  o.token = *token;
  if (Status s = CheckExposure(flags, o); !s.ok()) {
    std::fprintf(stderr, "ballast agent: %s\n", s.message().c_str());
    return 1;
  }

  // Created 0700 when missing; refused when another user owns it or can write it (what is in it
  // runs as this user). The state inside is checked by Agent::Start, under the lock.
  if (Status s = nodeagent::CreateWorkDir(o.work_dir); !s.ok()) {
    std::fprintf(stderr, "ballast agent: --work-dir: %s\n", s.message().c_str());
    return 1;
  }
  std::string lock_error;
  if (!LockDirectory(o.work_dir, "ballast agent", &lock_error)) {
    std::fprintf(stderr, "ballast agent: --work-dir: %s\n", lock_error.c_str());
    return 1;
  }

  sigset_t stop_signals = BlockStopSignals();
  RaiseOpenFileLimit();

  SystemClock clock;
  nodeagent::Agent agent(o, clock);
  if (Status s = agent.Start(); !s.ok()) {
    // Agent::Start's errors already begin with "agent: ".
    std::fprintf(stderr, "ballast %s\n", s.message().c_str());
    return 1;
  }
  model::Node node = agent.NodeInfo();
  LogEvent(LogLevel::kInfo, "agent_started",
           {{"node", o.name},
            {"address", o.address},
            {"server", o.server_url},
            {"work_dir", o.work_dir},
            {"adopted", std::to_string(agent.adopted())},
            {"limits", node.limits_enforced ? "enforced" : "not enforced"},
            {"runtimes",
             [&] {
               std::string r;
               for (const auto& x : node.runtimes) r += (r.empty() ? "" : ",") + x;
               return r;
             }()},
            {"logs", agent.api_url()}});
  int sig = 0;
  sigwait(&stop_signals, &sig);
  LogEvent(
      LogLevel::kInfo, "agent_stopping",
      {{"signal", std::to_string(sig)}, {"stop_pods", o.stop_pods_on_exit ? "true" : "false"}});
  agent.Stop();
  return 0;
}

}  // namespace ballast::cli
