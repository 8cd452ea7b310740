// Client subcommands against a running `ballast serve`: status, sync, history, rollback, unpin,
// get. `--server` (or BALLAST_SERVER, default http://127.0.0.1:7070), `--token-file` (or
// BALLAST_TOKEN). Exit 0 success, 1 failure (unreachable server, refused call), 2 usage.

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include "cli/commands.h"
#include "cli/flags.h"
#include "diff/render.h"
#include "net/client.h"
#include "net/http.h"

namespace ballast::cli {
namespace {

using Json = net::Json;

void AddClientFlags(FlagSet& flags) {
  AddServerFlag(flags);
  flags.AddString("token-file", "", "", "file holding the bearer token (env BALLAST_TOKEN)");
}

int Usage(const FlagSet& flags, const std::string& message) {
  std::fprintf(stderr, "error: %s\n\n%s", message.c_str(), flags.Help().c_str());
  return 2;
}

struct Call {
  int exit_code = 0;  // 0 when `json` holds a 2xx answer
  Json json;
};

// Where and how to call: the base URL (no trailing slash) and the bearer token, from the flags
// and the environment. exit_code 2 (the error printed) for a bad --server URL or token file.
struct Endpoint {
  int exit_code = 0;
  std::string base;
  net::ClientOptions options;
};

Endpoint ResolveEndpoint(const FlagSet& flags) {
  Endpoint e;
  e.options.timeout = std::chrono::seconds(30);
  auto token = ClientToken(flags);
  if (!token.ok()) {
    std::fprintf(stderr, "error: %s\n", token.status().message().c_str());
    e.exit_code = 2;
    return e;
  }
  e.options.bearer_token = *token;

  e.base = flags.Get("server");
  while (!e.base.empty() && e.base.back() == '/') e.base.pop_back();
  if (!net::ParseUrl(e.base).ok()) {
    std::fprintf(stderr, "error: --server %s: not an http(s) URL\n", e.base.c_str());
    e.exit_code = 2;
  }
  return e;
}

// Performs one API call; prints the error and sets exit_code 1 (or 2 for a bad --server URL /
// token file) when it fails.
Call Api(const FlagSet& flags, const std::string& method, const std::string& path,
         const Json& body = nullptr) {
  Call call;
  Endpoint endpoint = ResolveEndpoint(flags);
  if (endpoint.exit_code != 0) {
    call.exit_code = endpoint.exit_code;
    return call;
  }
  const net::ClientOptions& options = endpoint.options;
  const std::string& base = endpoint.base;
  net::HttpClient client(options);
  net::ClientRequest req;
  req.method = method;
  req.url = base + path;
  if (!body.is_null()) {
    req.body = body.dump();
    req.content_type = "application/json";
  }
  auto resp = client.Do(req);
  if (!resp.ok()) {
    std::fprintf(stderr, "error: %s\n", resp.status().message().c_str());
    call.exit_code = 1;
    return call;
  }
  auto json = resp->JsonBody();
  if (resp->status < 200 || resp->status >= 300) {
    std::string message = json.ok() && json->is_object() && json->contains("error")
                              ? (*json)["error"].get<std::string>()
                              : resp->body;
    std::fprintf(stderr, "error: %s %s: %d: %s\n", method.c_str(), path.c_str(), resp->status,
                 message.c_str());
    call.exit_code = 1;
    return call;
  }
  if (!json.ok()) {
    std::fprintf(stderr, "error: %s %s: answer is not JSON\n", method.c_str(), path.c_str());
    call.exit_code = 1;
    return call;
  }
  call.json = std::move(*json);
  return call;
}

std::string Str(const Json& j) {
  if (j.is_string()) return j.get<std::string>();
  if (j.is_null()) return "";
  return j.dump();
}

std::string Short(const std::string& sha) { return sha.substr(0, 12); }

// kubectl's READY column: ready containers / containers.
std::string PodReadyText(const Json& pod) {
  const Json& containers = pod.contains("containers") ? pod["containers"] : Json::array();
  if (containers.empty()) return pod.value("ready", false) ? "1/1" : "0/1";
  size_t ready = 0;
  for (const auto& c : containers) ready += c.value("ready", false) ? 1 : 0;
  return std::to_string(ready) + "/" + std::to_string(containers.size());
}

// kubectl's STATUS column: Terminating, else a waiting or terminated container's reason
// (CrashLoopBackOff, ContainerCreating, ImagePullBackOff, OOMKilled, ...), else the phase; a pod
// on a lost node is Unknown.
std::string PodStatusText(const Json& pod) {
  if (pod.value("terminating", false)) return "Terminating";
  if (pod.value("lost", false)) return "Unknown";
  if (pod.contains("containers")) {
    for (const auto& c : pod["containers"]) {
      const std::string state = c.value("state", "");
      const std::string reason = c.value("reason", "");
      if (state != "running" && !reason.empty()) return reason;
    }
  }
  return Str(pod["phase"]);
}

void PrintTable(const std::vector<std::string>& header,
                const std::vector<std::vector<std::string>>& rows) {
  std::vector<size_t> width(header.size(), 0);
  for (size_t i = 0; i < header.size(); ++i) width[i] = header[i].size();
  for (const auto& r : rows) {
    for (size_t i = 0; i < r.size() && i < width.size(); ++i) {
      width[i] = std::max(width[i], r[i].size());
    }
  }
  auto line = [&](const std::vector<std::string>& r) {
    std::string out;
    for (size_t i = 0; i < r.size(); ++i) {
      out += r[i];
      if (i + 1 < r.size()) out += std::string(width[i] - r[i].size() + 3, ' ');
    }
    while (!out.empty() && out.back() == ' ') out.pop_back();
    std::printf("%s\n", out.c_str());
  };
  line(header);
  for (const auto& r : rows) line(r);
}

bool OutputFlag(FlagSet& flags, bool allow_wide) {
  const std::string& o = flags.Get("output");
  return o == "text" || o == "json" || (allow_wide && o == "wide");
}

}  // namespace

int RunStatus(const Args& args) {
  FlagSet flags("ballast status [flags]",
                "Show the reconciler's status: source revision, sync, health, errors with their\n"
                "file:line:column, the pin, and each object's sync and health.");
  AddClientFlags(flags);
  flags.AddString("output", "o", "text", "text or json");
  if (auto rc = ParseOrExit(flags, args)) return *rc;
  if (!flags.positional().empty() || !OutputFlag(flags, false)) {
    return Usage(flags, "usage: ballast status [-o json]");
  }
  auto call = Api(flags, "GET", "/api/v1/status");
  if (call.exit_code != 0) return call.exit_code;
  const Json& s = call.json;
  if (flags.Get("output") == "json") {
    std::printf("%s\n", s.dump(2).c_str());
    return 0;
  }
  std::printf("Revision:  %s\n", Str(s["revision"]).c_str());
  // The commit's subject line, as the status page shows it: which change this revision is.
  if (s.contains("commit") && s["commit"].is_object()) {
    const std::string summary = Str(s["commit"].value("summary", Json()));
    const std::string author = Str(s["commit"].value("author", Json()));
    if (!summary.empty()) {
      std::printf("Commit:    %s%s\n", summary.c_str(),
                  author.empty() ? "" : (" (" + author + ")").c_str());
    }
  }
  std::printf("Applied:   %s\n", Str(s["appliedRevision"]).c_str());
  std::printf("Sync:      %s (%s)\n", Str(s["sync"]).c_str(), Str(s["syncPolicy"]).c_str());
  std::printf("Health:    %s\n", Str(s["health"]).c_str());
  if (!s["pinned"].is_null()) {
    std::printf("Pinned:    #%s (auto-sync paused; `ballast unpin` resumes it)\n",
                s["pinned"].dump().c_str());
  }
  if (s.contains("historyError") && !s["historyError"].is_null()) {
    std::printf(
        "History:   cannot record the applied state for %ss (no other revision is "
        "applied until it can): %s\n",
        s["historyError"]["ageSeconds"].dump().c_str(), Str(s["historyError"]["message"]).c_str());
  }
  if (s.contains("sourceError") && !s["sourceError"].is_null()) {
    std::printf("Source:    error for %ss: %s\n", s["sourceError"]["ageSeconds"].dump().c_str(),
                Str(s["sourceError"]["message"]).c_str());
  }
  if (!s["errors"].empty()) {
    std::printf("Errors:\n");
    for (const auto& e : s["errors"]) {
      std::string field = e.contains("field") ? Str(e["field"]) : "";
      std::printf("  %s:%s:%s: %s%s\n", Str(e["file"]).c_str(), e["line"].dump().c_str(),
                  e["column"].dump().c_str(), field.empty() ? "" : (field + ": ").c_str(),
                  Str(e["message"]).c_str());
    }
  }
  if (s.contains("warnings") && s["warnings"].is_array() && !s["warnings"].empty()) {
    std::printf("Warnings:\n");
    for (const auto& w : s["warnings"]) {
      const std::string field = Str(w.value("field", Json()));
      std::printf("  %s:%s:%s: %s%s\n", Str(w.value("file", Json())).c_str(),
                  w.value("line", Json()).dump().c_str(), w.value("column", Json()).dump().c_str(),
                  field.empty() ? "" : (field + ": ").c_str(),
                  Str(w.value("message", Json())).c_str());
    }
  }
  if (s.contains("objects") && !s["objects"].empty()) {
    std::printf("\n");
    std::vector<std::vector<std::string>> rows;
    for (const auto& o : s["objects"]) {
      rows.push_back({Str(o["kind"]), Str(o["namespace"]), Str(o["name"]), Str(o["sync"]),
                      Str(o["health"]), o.contains("message") ? Str(o["message"]) : ""});
    }
    PrintTable({"KIND", "NAMESPACE", "NAME", "SYNC", "HEALTH", "MESSAGE"}, rows);
  }
  return 0;
}

int RunSync(const Args& args) {
  FlagSet flags("ballast sync [--dry-run] [flags]",
                "Apply the current source revision (manual sync mode), or with --dry-run show\n"
                "the plan that applying would carry out.");
  AddClientFlags(flags);
  flags.AddBool("dry-run", "", "only show the plan");
  flags.AddString("output", "o", "text", "text or json");
  if (auto rc = ParseOrExit(flags, args)) return *rc;
  if (!flags.positional().empty() || !OutputFlag(flags, false)) {
    return Usage(flags, "usage: ballast sync [--dry-run] [-o json]");
  }
  bool dry = flags.GetBool("dry-run");
  auto call = Api(flags, "POST", "/api/v1/sync", Json{{"dryRun", dry}});
  if (call.exit_code != 0) return call.exit_code;
  if (flags.Get("output") == "json") {
    std::printf("%s\n", call.json.dump(2).c_str());
    return 0;
  }
  if (dry) {
    auto plan = diff::PlanFromJson(call.json);
    if (!plan.ok()) {
      std::fprintf(stderr, "error: %s\n", plan.status().message().c_str());
      return 1;
    }
    std::fputs(diff::RenderText(*plan).c_str(), stdout);
    return 0;
  }
  std::printf("applied revision %s\n", Str(call.json["revision"]).c_str());
  return 0;
}

int RunHistory(const Args& args) {
  FlagSet flags("ballast history [flags]", "List applied syncs, newest first.");
  AddClientFlags(flags);
  flags.AddString("output", "o", "text", "text or json");
  flags.AddString("limit", "", "50", "how many entries");
  if (auto rc = ParseOrExit(flags, args)) return *rc;
  if (!flags.positional().empty() || !OutputFlag(flags, false)) {
    return Usage(flags, "usage: ballast history [-o json]");
  }
  auto call = Api(flags, "GET", "/api/v1/history?limit=" + net::PercentEncode(flags.Get("limit")));
  if (call.exit_code != 0) return call.exit_code;
  if (flags.Get("output") == "json") {
    std::printf("%s\n", call.json.dump(2).c_str());
    return 0;
  }
  std::vector<std::vector<std::string>> rows;
  for (const auto& e : call.json["items"]) {
    rows.push_back({e["id"].dump(), Short(Str(e["revision"])), Str(e["time"]), Str(e["trigger"]),
                    Str(e["result"]), Str(e["message"])});
  }
  PrintTable({"ID", "REVISION", "TIME", "TRIGGER", "RESULT", "MESSAGE"}, rows);
  return 0;
}

int RunRollback(const Args& args) {
  FlagSet flags("ballast rollback ID [--pin|--dry-run] [flags]",
                "Restore history entry ID: commit its manifests to the manifest repository and\n"
                "push (auto-sync then applies them). With --pin, hold that entry without touching\n"
                "git (for a read-only remote): auto-sync pauses until `ballast unpin`.");
  AddClientFlags(flags);
  flags.AddBool("pin", "", "hold the entry instead of pushing to git");
  flags.AddBool("dry-run", "", "only show what the rollback would change against what runs now");
  if (auto rc = ParseOrExit(flags, args)) return *rc;
  if (flags.positional().size() != 1) return Usage(flags, "exactly one ID is required");
  int64_t id = 0;
  try {
    size_t pos = 0;
    id = std::stoll(flags.positional()[0], &pos);
    if (pos != flags.positional()[0].size() || id <= 0) throw std::invalid_argument("id");
  } catch (...) {
    return Usage(flags, "ID must be a positive integer");
  }
  if (flags.GetBool("dry-run")) {
    auto preview = Api(flags, "GET", "/api/v1/history/" + std::to_string(id) + "/diff");
    if (preview.exit_code != 0) return preview.exit_code;
    std::fputs(Str(preview.json["text"]).c_str(), stdout);
    return 0;
  }
  auto call =
      Api(flags, "POST", "/api/v1/rollback", Json{{"id", id}, {"pin", flags.GetBool("pin")}});
  if (call.exit_code != 0) return call.exit_code;
  if (flags.GetBool("pin")) {
    std::printf("pinned to #%lld (revision %s); auto-sync paused until `ballast unpin`\n",
                static_cast<long long>(id), Short(Str(call.json["revision"])).c_str());
  } else {
    std::printf("rolled back to #%lld: pushed %s (revision %s)\n", static_cast<long long>(id),
                Short(Str(call.json["commit"])).c_str(), Short(Str(call.json["revision"])).c_str());
  }
  return 0;
}

int RunUnpin(const Args& args) {
  FlagSet flags("ballast unpin [flags]", "Release the pinned history entry; auto-sync resumes.");
  AddClientFlags(flags);
  if (auto rc = ParseOrExit(flags, args)) return *rc;
  if (!flags.positional().empty()) return Usage(flags, "unpin takes no arguments");
  auto call = Api(flags, "POST", "/api/v1/unpin", Json::object());
  if (call.exit_code != 0) return call.exit_code;
  std::printf("unpinned; auto-sync resumed\n");
  return 0;
}

namespace {

// kubectl's columns for each kind `ballast get` lists (-o wide adds the last ones).
void PrintDeployments(const Json& items, bool wide) {
  std::vector<std::vector<std::string>> rows;
  for (const auto& d : items) {
    std::vector<std::string> r = {Str(d["namespace"]),
                                  Str(d["name"]),
                                  d["readyReplicas"].dump() + "/" + d["replicas"].dump(),
                                  d["updatedReplicas"].dump(),
                                  d["availableReplicas"].dump(),
                                  Str(d["sync"]),
                                  Str(d["health"])};
    if (wide) r.push_back(Str(d["revision"]));
    rows.push_back(r);
  }
  std::vector<std::string> h = {"NAMESPACE", "NAME", "READY", "UP-TO-DATE",
                                "AVAILABLE", "SYNC", "HEALTH"};
  if (wide) h.push_back("REVISION");
  PrintTable(h, rows);
}

void PrintServices(const Json& items, bool wide) {
  std::vector<std::vector<std::string>> rows;
  for (const auto& s : items) {
    std::string ports;
    for (const auto& p : s["ports"]) {
      if (!ports.empty()) ports += ",";
      // kubectl's PORT(S): "80:30080/TCP" when the port has a nodePort.
      const int64_t node_port = p.value("nodePort", int64_t{0});
      // Appended piece by piece: `":" + std::to_string(...)` trips GCC 12's -Wrestrict at -O3
      // (GCC bug 105651).
      ports += p["port"].dump();
      if (node_port > 0) ports.append(":").append(std::to_string(node_port));
      ports.append("/").append(Str(p["protocol"]));
    }
    // The API lists the endpoints of each port in turn: count and show each address once.
    std::vector<std::string> endpoints;
    for (const auto& x : s["endpoints"]) {
      if (std::find(endpoints.begin(), endpoints.end(), Str(x)) == endpoints.end()) {
        endpoints.push_back(Str(x));
      }
    }
    std::vector<std::string> r = {Str(s["namespace"]),
                                  Str(s["name"]),
                                  Str(s["type"]),
                                  s.contains("clusterIP") ? Str(s["clusterIP"]) : "<none>",
                                  ports,
                                  std::to_string(endpoints.size())};
    if (wide) {
      std::string e;
      for (const auto& x : endpoints) e += (e.empty() ? "" : ",") + x;
      r.push_back(e);
    }
    rows.push_back(r);
  }
  std::vector<std::string> h = {"NAMESPACE", "NAME", "TYPE", "CLUSTER-IP", "PORTS", "ENDPOINTS"};
  if (wide) h.push_back("ADDRESSES");
  PrintTable(h, rows);
}

void PrintPods(const Json& items, bool wide) {
  std::vector<std::vector<std::string>> rows;
  for (const auto& p : items) {
    std::vector<std::string> r = {Str(p["namespace"]), Str(p["name"]),       PodReadyText(p),
                                  PodStatusText(p),    p["restarts"].dump(), Str(p["node"])};
    if (wide) {
      r.push_back(Str(p["address"]));
      r.push_back(Str(p["revision"]));
    }
    rows.push_back(r);
  }
  std::vector<std::string> h = {"NAMESPACE", "NAME", "READY", "STATUS", "RESTARTS", "NODE"};
  if (wide) {
    h.push_back("ADDRESS");
    h.push_back("REVISION");
  }
  PrintTable(h, rows);
}

void PrintNodes(const Json& items, bool wide) {
  std::vector<std::vector<std::string>> rows;
  for (const auto& n : items) {
    std::vector<std::string> r = {Str(n["name"]), n["ready"].get<bool>() ? "Ready" : "NotReady",
                                  Str(n["address"]), n["pods"].dump()};
    if (wide) {
      std::string runtimes;
      if (n.contains("runtimes") && n["runtimes"].is_array()) {
        for (const auto& rt : n["runtimes"]) runtimes += (runtimes.empty() ? "" : ",") + Str(rt);
      }
      r.push_back(runtimes);
      r.push_back(Str(n["agentVersion"]));
      r.push_back(Str(n["lastHeartbeat"]));
    }
    rows.push_back(r);
  }
  std::vector<std::string> h = {"NAME", "STATUS", "ADDRESS", "PODS"};
  if (wide) {
    h.push_back("RUNTIMES");
    h.push_back("AGENT");
    h.push_back("LAST-HEARTBEAT");
  }
  PrintTable(h, rows);
}

}  // namespace

int RunGet(const Args& args) {
  FlagSet flags("ballast get deployments|services|pods|nodes [-o wide|json] [flags]",
                "List objects the reconciler runs, as kubectl lists them.");
  AddClientFlags(flags);
  flags.AddString("output", "o", "text", "text, wide or json");
  if (auto rc = ParseOrExit(flags, args)) return *rc;
  if (flags.positional().size() != 1 || !OutputFlag(flags, true)) {
    return Usage(flags, "usage: ballast get deployments|services|pods|nodes [-o wide|json]");
  }
  // Each kind with kubectl's names for it.
  static const std::vector<std::pair<std::vector<std::string>, void (*)(const Json&, bool)>>
      kKinds = {{{"deployments", "deployment", "deploy"}, &PrintDeployments},
                {{"services", "service", "svc"}, &PrintServices},
                {{"pods", "pod", "po"}, &PrintPods},
                {{"nodes", "node", "no"}, &PrintNodes}};
  const std::string& asked = flags.positional()[0];
  for (const auto& [names, print] : kKinds) {
    if (std::find(names.begin(), names.end(), asked) == names.end()) continue;
    auto call = Api(flags, "GET", "/api/v1/" + names[0]);
    if (call.exit_code != 0) return call.exit_code;
    const std::string& out = flags.Get("output");
    if (out == "json") {
      std::printf("%s\n", call.json.dump(2).c_str());
    } else {
      print(call.json["items"], out == "wide");
    }
    return 0;
  }
  return Usage(flags, "unknown kind \"" + asked + "\"");
}

int RunLogs(const Args& args) {
  FlagSet flags("ballast logs POD [-c CONTAINER] [--stderr] [--tail BYTES] [-f] [flags]",
                "Print a pod's log, read from its agent through the reconciler.");
  AddClientFlags(flags);
  flags.AddString("container", "c", "", "container (default: the pod's first)");
  flags.AddBool("stderr", "", "the stderr stream instead of stdout");
  flags.AddString("tail", "", "1048576", "at most this many bytes from the end");
  flags.AddBool("follow", "f", "keep printing what is appended (Ctrl-C to stop)");
  if (auto rc = ParseOrExit(flags, args)) return *rc;
  if (flags.positional().size() != 1) return Usage(flags, "exactly one POD is required");
  Endpoint endpoint = ResolveEndpoint(flags);
  if (endpoint.exit_code != 0) return endpoint.exit_code;
  const std::string& base = endpoint.base;
  std::string url = base + "/api/v1/logs/" + net::PercentEncode(flags.positional()[0]) +
                    "?stream=" + (flags.GetBool("stderr") ? "stderr" : "stdout") +
                    "&tailBytes=" + net::PercentEncode(flags.Get("tail"));
  if (!flags.Get("container").empty())
    url += "&container=" + net::PercentEncode(flags.Get("container"));
  net::HttpClient client(endpoint.options);
  std::string printed;
  for (;;) {
    auto r = client.Get(url);
    if (!r.ok()) {
      std::fprintf(stderr, "error: %s\n", r.status().message().c_str());
      return 1;
    }
    if (r->status != 200) {
      auto j = r->JsonBody();
      std::string message = j.ok() && j->is_object() && j->contains("error")
                                ? (*j)["error"].get<std::string>()
                                : r->body;
      std::fprintf(stderr, "error: logs %s: %d: %s\n", flags.positional()[0].c_str(), r->status,
                   message.c_str());
      return 1;
    }
    // Print what was not printed yet: the text after the longest tail of `printed` that the new
    // body starts with (the window slides as the log grows).
    const std::string& body = r->body;
    size_t skip = 0;
    if (!printed.empty()) {
      std::string tail = printed.substr(printed.size() - std::min<size_t>(printed.size(), 4096));
      auto at = body.rfind(tail);
      skip = at == std::string::npos ? 0 : at + tail.size();
    }
    std::fwrite(body.data() + skip, 1, body.size() - skip, stdout);
    std::fflush(stdout);
    if (body.size() > skip) printed = body;
    if (!flags.GetBool("follow")) return 0;
    std::this_thread::sleep_for(std::chrono::seconds(1));
  }
}

}  // namespace ballast::cli
