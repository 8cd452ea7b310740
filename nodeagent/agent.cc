#include "nodeagent/agent.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <thread>
#include <utility>

#include "localfs/safe_fs.h"
#include "model/quantity.h"
#include "nodeagent/work_dir.h"

namespace ballast::nodeagent {
namespace {

// kubernetes.io/os and kubernetes.io/arch (and their deprecated beta.kubernetes.io twins, still
// used by older manifests) with Go's GOOS/GOARCH names, as the kubelet reports them.
std::vector<std::pair<std::string, std::string>> WellKnownPlatformLabels() {
  struct utsname u {};
  std::string os = "linux";
  std::string arch;
  if (::uname(&u) == 0) {
    os = u.sysname;
    std::transform(os.begin(), os.end(), os.begin(),
                   [](unsigned char ch) { return static_cast<char>(std::tolower(ch)); });
    const std::string machine = u.machine;
    if (machine == "x86_64") {
      arch = "amd64";
    } else if (machine == "aarch64" || machine == "arm64") {
      arch = "arm64";
    } else if (machine.rfind("armv", 0) == 0) {
      arch = "arm";
    } else if (machine == "i386" || machine == "i686") {
      arch = "386";
    } else {
      arch = machine;  // ppc64le, s390x, riscv64 have the same name in Go
    }
  }
  std::vector<std::pair<std::string, std::string>> labels = {{"kubernetes.io/os", os},
                                                             {"beta.kubernetes.io/os", os}};
  if (!arch.empty()) {
    labels.emplace_back("kubernetes.io/arch", arch);
    labels.emplace_back("beta.kubernetes.io/arch", arch);
  }
  return labels;
}

net::ClientOptions ClientOptionsFor(const AgentOptions& o) {
  net::ClientOptions c;
  c.ca_file = o.ca_file;  // the bearer: NodeIdentity, per call
  c.cert_file = o.cert_file;
  c.key_file = o.key_file;
  c.timeout = std::chrono::seconds(10);
  c.user_agent = std::string("ballast-agent/") + kAgentVersion;
  return c;
}

}  // namespace

Agent::Agent(AgentOptions options, const Clock& clock)
    : options_(std::move(options)),
      clock_(clock),
      client_(ClientOptionsFor(options_)),
      identity_(options_.token, options_.work_dir + "/state/node-credential", options_.name,
                options_.server_url, !options_.cert_file.empty()) {}

Agent::~Agent() { Stop(); }

Status Agent::Start() {
  if (options_.name.empty()) return InvalidArgument("agent: --name is required");
  if (options_.work_dir.empty()) return InvalidArgument("agent: --work-dir is required");
  if (!options_.server_url.empty()) {
    auto url = net::ParseUrl(options_.server_url);
    if (!url.ok()) return url.status().WithContext("agent: --server");
  }
  // What is in the work directory runs as this user: nobody else may have written it.
  if (Status s = PrepareWorkDir(options_.work_dir); !s.ok()) return s.WithContext("agent");
  identity_.Load();
  auto probe = FreePort(options_.address);
  if (!probe.ok()) return probe.status().WithContext("agent: --address");
  if (Status s = DescribeNode(); !s.ok()) return s;
  if (options_.enable_cgroups) cgroups_ = Cgroups::Detect(options_.name);
  node_.limits_enforced = cgroups_ && cgroups_->enforced();
  if (Status s = StartRuntimes(); !s.ok()) return s;

  PodManagerOptions pm;
  pm.image_runtime = docker_.get();
  pm.prefer_images = docker_ != nullptr;
  pm.pull_policy = options_.image_pull_policy;
  pm.node_name = options_.name;
  pm.node_address = options_.address;
  pm.work_dir = options_.work_dir;
  pm.log_max_bytes = options_.log_max_bytes;
  pm.backoff = options_.crash_backoff;
  pm.log = options_.log;
  pods_ = std::make_unique<PodManager>(pm, clock_, cgroups_.get());
  adopted_ = pods_->Restore();
  if (options_.logs_port >= 0) {
    net::ServerOptions so;
    so.address = options_.address;
    so.port = static_cast<uint16_t>(options_.logs_port);
    api_ = std::make_unique<net::HttpServer>(so);
    net::Router router;
    router.HandleSync("GET", "/api/v1/logs/*",
                      [this](const net::Request& r) { return ServeLogs(r); });
    if (Status s = api_->Start(std::move(router)); !s.ok())
      return s.WithContext("agent: log server");
    node_.labels["ballast.dev/agent-api"] = api_->url();
  }
  proxy_ = std::make_unique<ServiceProxy>(options_.address);
  if (Status s = proxy_->Start(); !s.ok()) return s;
  heartbeat_seconds_ = std::max(1, options_.heartbeat_seconds);

  started_ = true;
  threads_.emplace_back([this] { SuperviseLoop(); });
  if (!options_.server_url.empty()) {
    threads_.emplace_back([this] { SyncLoop(); });
    threads_.emplace_back([this] { HeartbeatLoop(); });
  }
  return Status::Ok();
}

Status Agent::DescribeNode() {
  node_.name = options_.name;
  node_.address = options_.address;
  node_.labels = options_.labels;
  node_.labels["kubernetes.io/hostname"] = options_.name;
  // The well-known labels the kubelet sets, so manifests written for Kubernetes (nodeSelector
  // kubernetes.io/os: linux is common) place unchanged. A --labels value wins.
  for (const auto& [key, value] : WellKnownPlatformLabels()) node_.labels.emplace(key, value);
  node_.taints = options_.taints;
  auto cpu = options_.cpu.empty()
                 ? model::Quantity::FromUnits(std::max(1u, std::thread::hardware_concurrency()))
                 : model::Quantity::Parse(options_.cpu);
  if (!cpu.ok()) return cpu.status().WithContext("agent: --cpu");
  Result<model::Quantity> memory =
      options_.memory.empty()
          ? Result<model::Quantity>(model::Quantity::FromUnits(
                static_cast<int64_t>(::sysconf(_SC_PHYS_PAGES)) * ::sysconf(_SC_PAGESIZE),
                model::Quantity::Format::kBinarySI))
          : model::Quantity::Parse(options_.memory);
  if (!memory.ok()) return memory.status().WithContext("agent: --memory");
  node_.capacity = {{"cpu", *cpu}, {"memory", *memory}};
  node_.allocatable = node_.capacity;
  node_.ready = true;
  node_.agent_version = kAgentVersion;
  return Status::Ok();
}

Status Agent::StartRuntimes() {
  if (options_.runtime != "process" && options_.runtime != "docker" && options_.runtime != "auto") {
    return InvalidArgument("agent: --runtime must be process, docker or auto, not \"" +
                           options_.runtime + "\"");
  }
  if (!options_.image_pull_policy.empty() && options_.image_pull_policy != "Never" &&
      options_.image_pull_policy != "IfNotPresent" && options_.image_pull_policy != "Always") {
    return InvalidArgument("agent: --image-pull-policy must be Never, IfNotPresent or Always");
  }
  node_.runtimes = {"process"};
  if (options_.runtime == "process") return Status::Ok();
  DockerRuntimeOptions dro;
  dro.socket_path = options_.docker_socket;
  dro.node_name = options_.name;
  auto docker = std::make_unique<DockerRuntime>(dro);
  Status ping = docker->Ping();
  if (ping.ok()) {
    docker_ = std::move(docker);
    node_.runtimes.push_back("docker");
  } else if (options_.runtime == "docker") {
    return ping.WithContext("agent: --runtime docker (--docker-socket " + options_.docker_socket +
                            ")");
  }
  return Status::Ok();
}

void Agent::Stop() {
  if (!started_) return;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_) return;
    stopping_ = true;
  }
  cv_.notify_all();
  client_.Cancel();
  for (auto& t : threads_) t.join();
  threads_.clear();
  proxy_->Stop();
  if (api_) api_->Stop();
  if (options_.stop_pods_on_exit) {
    pods_->StopAll();
    while (!pods_->Empty()) {
      pods_->Tick();
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  }
}

net::Response Agent::ServeLogs(const net::Request& r) const {
  // The reconciler reads logs with the token it handed this node for that alone
  // (agentapi/protocol.h).
  if (!identity_.AllowsLogs(r)) return net::UnauthorizedResponse();
  // /api/v1/logs/NAMESPACE/POD/CONTAINER; names are DNS labels, so no '/' or '..' inside.
  std::string rest = r.path.substr(std::string("/api/v1/logs/").size());
  std::vector<std::string> parts;
  size_t start = 0;
  while (start <= rest.size()) {
    size_t slash = rest.find('/', start);
    parts.push_back(
        rest.substr(start, slash == std::string::npos ? std::string::npos : slash - start));
    if (slash == std::string::npos) break;
    start = slash + 1;
  }
  if (parts.size() != 3)
    return net::ErrorResponse(400, "want /api/v1/logs/NAMESPACE/POD/CONTAINER");
  for (const auto& p : parts) {
    if (p.empty() || p == "." || p == ".." || p.find('\\') != std::string::npos) {
      return net::ErrorResponse(400, "bad name in " + r.path);
    }
  }
  std::string stream = r.Query("stream", "stdout");
  if (stream != "stdout" && stream != "stderr")
    return net::ErrorResponse(400, "stream is stdout or stderr");
  int64_t tail = 1 << 20;
  try {
    tail = std::clamp<int64_t>(std::stoll(r.Query("tailBytes", "1048576")), 0, 1 << 20);
  } catch (const std::exception&) {
    return net::ErrorResponse(400, "tailBytes must be an integer");
  }
  const std::string path = PodsDir(options_.work_dir) + "/" +
                           PodDirName(parts[0] + "_" + parts[1]) + "/logs/" + parts[2] + "." +
                           stream + ".log";
  // Never through a symlink: the agent may read what the pod may not.
  auto file = localfs::OpenFile(path, O_RDONLY);
  struct stat st {};
  if (!file.ok() || ::fstat(file->get(), &st) != 0) {
    return net::ErrorResponse(404, "no logs for " + parts[0] + "/" + parts[1] + "/" + parts[2]);
  }
  const int64_t from = std::max<int64_t>(0, st.st_size - tail);
  std::string body(static_cast<size_t>(st.st_size - from), '\0');
  const ssize_t n = ::pread(file->get(), body.data(), body.size(), from);
  body.resize(n > 0 ? static_cast<size_t>(n) : 0);
  return net::TextResponse(200, std::move(body));
}

model::Node Agent::NodeInfo() const {
  model::Node n = node_;
  n.last_heartbeat_ms = clock_.WallMs();
  return n;
}

bool Agent::Sleep(int64_t ms) {
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait_for(lock, std::chrono::milliseconds(ms), [&] { return stopping_; });
  return !stopping_;
}

void Agent::SuperviseLoop() {
  std::vector<std::string> proxy_errors;  // last logged: each distinct set is logged once
  uint64_t drain_generation = 0;          // of the proxy's drain report last sent at once
  while (true) {
    std::optional<agentapi::DesiredState> apply;
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait_for(lock, std::chrono::milliseconds(50), [&] { return stopping_ || has_desired_; });
      if (stopping_) return;
      if (has_desired_) {
        apply = std::move(desired_);
        has_desired_ = false;
      }
    }
    if (apply) {
      pods_->SetDesired(apply->pods, apply->services);
      proxy_->Update(apply->services, apply->version);
      version_ = apply->version;
    }
    // A Service address the proxy cannot listen on (another process holds CLUSTER_IP:port or
    // the node's port): say which and why, once, instead of refusing connections silently.
    if (auto errors = proxy_->Errors(); errors != proxy_errors) {
      if (options_.log) {
        for (const auto& e : errors) {
          if (std::find(proxy_errors.begin(), proxy_errors.end(), e) == proxy_errors.end()) {
            options_.log("service_listen_failed", {{"node", options_.name}, {"error", e}});
          }
        }
      }
      proxy_errors = std::move(errors);
    }
    // An endpoint left the proxy's lists, or the connections still going to one closed: the
    // reconciler waits for that to stop a pod (reconciler/drain.cc), so it hears at once.
    const uint64_t generation = proxy_->drain_report().generation;
    if (pods_->Tick() || std::exchange(drain_generation, generation) != generation) {
      {
        std::lock_guard<std::mutex> lock(mu_);
        heartbeat_now_ = true;
      }
      cv_.notify_all();
    }
  }
}

Result<net::ClientResponse> Agent::CallServer(net::ClientRequest request) {
  const bool with_credential = identity_.HasCredential();
  if (const std::string bearer = identity_.Bearer(); !bearer.empty()) {
    request.headers.emplace_back("Authorization", "Bearer " + bearer);
  }
  auto res = client_.Do(request);
  if (res.ok() && (res->status == 401 || res->status == 403) && with_credential) {
    // The reconciler restarted and forgot this node's credential (or it is another node's):
    // register again with the join token.
    identity_.Forget();
    registered_ = false;
  }
  return res;
}

Status Agent::Register() {
  agentapi::RegisterRequest request;
  request.node = NodeInfo();
  net::ClientRequest call;
  call.method = "POST";
  call.url = options_.server_url + agentapi::kRegisterPath;
  call.body = ToJson(request).dump();
  call.content_type = "application/json";
  const bool had_credential = identity_.HasCredential();
  auto res = CallServer(call);
  if (had_credential && res.ok() && (res->status == 401 || res->status == 403)) {
    res = CallServer(call);  // the kept credential was refused: once more with the join token
  }
  Status failed;
  Result<agentapi::RegisterResponse> answer = Unavailable("no answer");
  if (!res.ok()) {
    failed = res.status();
  } else if (res->status != 200) {
    // The reconciler's reason, e.g. another agent holding this --name.
    auto j = res->JsonBody();
    std::string why = j.ok() && j->is_object() && j->contains("error") && (*j)["error"].is_string()
                          ? (*j)["error"].get<std::string>()
                          : res->body.substr(0, 200);
    if (res->status == 401)
      why += " (check --token-file: the reconciler's join token or a token of its token file)";
    // An answer (not Unavailable): retried with the full back-off, not at reconnect speed.
    failed = Status(StatusCode::kFailedPrecondition, "register " + options_.name + " at " +
                                                         options_.server_url + ": HTTP " +
                                                         std::to_string(res->status) + ": " + why);
  } else {
    auto j = res->JsonBody();
    answer = j.ok() ? agentapi::RegisterResponseFromJson(*j)
                    : Result<agentapi::RegisterResponse>(j.status());
    if (!answer.ok()) {
      failed =
          answer.status().WithContext("register " + options_.name + " at " + options_.server_url);
    }
  }
  if (!failed.ok()) {
    // Once per distinct error (both loops retry with back-off): say why this node is not in.
    std::lock_guard<std::mutex> lock(register_error_mu_);
    if (failed.message() != last_register_error_ && options_.log) {
      options_.log("register_failed", {{"node", options_.name}, {"error", failed.message()}});
    }
    last_register_error_ = failed.message();
    return failed;
  }
  {
    std::lock_guard<std::mutex> lock(register_error_mu_);
    last_register_error_.clear();
  }
  if (const int hb = answer->heartbeat_seconds; hb > 0 && options_.heartbeat_seconds == 10) {
    heartbeat_seconds_ = hb;
  }
  if (Status kept = identity_.Adopt(*answer); !kept.ok() && options_.log) {
    // Still registered: only a restart of this agent would need the join token again.
    options_.log("credential_not_kept", {{"node", options_.name}, {"error", kept.message()}});
  }
  registered_ = true;
  if (options_.log)
    options_.log("registered", {{"node", options_.name}, {"server", options_.server_url}});
  return Status::Ok();
}

int64_t Agent::RetryDelayMs(int64_t retry, const Status& why) const {
  return why.code() == StatusCode::kUnavailable ? std::min(retry, options_.reconnect_ms) : retry;
}

void Agent::SyncLoop() {
  int64_t retry = options_.retry_initial_ms;
  auto fail = [&](const Status& why = Status::Ok()) {
    bool go_on = Sleep(RetryDelayMs(retry, why));
    retry = std::min(retry * 2, options_.retry_max_ms);
    return go_on;
  };
  while (true) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (stopping_) return;
    }
    if (!registered_) {
      if (Status s = Register(); !s.ok()) {
        if (!fail(s)) return;
        continue;
      }
    }
    net::ClientRequest req;
    req.url = options_.server_url + agentapi::kDesiredPath +
              "?node=" + net::PercentEncode(options_.name) +
              "&version=" + std::to_string(version_.load()) +
              "&wait=" + std::to_string(options_.long_poll_seconds);
    req.timeout = std::chrono::seconds(options_.long_poll_seconds + 15);
    auto res = CallServer(req);
    if (!res.ok()) {
      if (res.status().code() == StatusCode::kAborted) return;
      // The server may have restarted with versions of its own: ask for its current state
      // at once next time rather than waiting for a version that means something else there.
      version_ = 0;
      if (!fail(res.status())) return;
      continue;
    }
    if (res->status == 404 || res->status == 401 || res->status == 403) registered_ = false;
    if (res->status != 200) {
      if (!fail()) return;
      continue;
    }
    auto j = res->JsonBody();
    auto state =
        j.ok() ? agentapi::DesiredStateFromJson(*j) : Result<agentapi::DesiredState>(j.status());
    if (!state.ok()) {
      // A desired state this agent cannot read (another protocol version, a malformed answer)
      // changes nothing here: the pods keep running as they are. Said once per distinct error.
      if (state.status().message() != last_desired_error_ && options_.log) {
        options_.log("desired_refused",
                     {{"node", options_.name}, {"error", state.status().message()}});
      }
      last_desired_error_ = state.status().message();
      if (!fail()) return;
      continue;
    }
    last_desired_error_.clear();
    retry = options_.retry_initial_ms;
    if (state->version == version_.load() && version_.load() != 0) continue;
    if (options_.log) {
      options_.log("desired_received", {{"version", std::to_string(state->version)},
                                        {"pods", std::to_string(state->pods.size())},
                                        {"services", std::to_string(state->services.size())}});
    }
    {
      std::lock_guard<std::mutex> lock(mu_);
      desired_ = std::move(*state);
      has_desired_ = true;
      version_ = desired_.version;  // the next poll waits for a newer one
    }
    cv_.notify_all();
  }
}

void Agent::HeartbeatLoop() {
  int64_t retry = options_.retry_initial_ms;
  while (true) {
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait_for(lock, std::chrono::seconds(heartbeat_seconds_.load()),
                   [&] { return stopping_ || heartbeat_now_; });
      if (stopping_) return;
      heartbeat_now_ = false;
    }
    if (!registered_) {
      if (Status s = Register(); !s.ok()) {
        if (!Sleep(RetryDelayMs(retry, s))) return;
        retry = std::min(retry * 2, options_.retry_max_ms);
        continue;
      }
    }
    agentapi::Heartbeat hb;
    hb.node = NodeInfo();
    hb.pods = pods_->Status();
    auto drain = proxy_->drain_report();
    hb.services_version = drain.services_version;
    hb.draining_endpoints = std::move(drain.draining);
    // Bounded as the reconciler wants it (more would have the whole heartbeat refused); the
    // rest wait for their pods' grace periods.
    if (hb.draining_endpoints.size() > agentapi::kMaxDrainingEndpoints) {
      hb.draining_endpoints.resize(agentapi::kMaxDrainingEndpoints);
    }
    net::ClientRequest call;
    call.method = "POST";
    call.url = options_.server_url + agentapi::kHeartbeatPath;
    call.body = ToJson(hb).dump();
    call.content_type = "application/json";
    auto res = CallServer(std::move(call));
    if (res.ok() && res->status == 404) registered_ = false;
    if (!res.ok() || res->status != 200) {
      if (res.ok() || res.status().code() != StatusCode::kAborted) {
        if (!Sleep(RetryDelayMs(retry, res.status()))) return;
        retry = std::min(retry * 2, options_.retry_max_ms);
        std::lock_guard<std::mutex> lock(mu_);
        heartbeat_now_ = true;  // report as soon as it is back
      }
      continue;
    }
    retry = options_.retry_initial_ms;
  }
}

}  // namespace ballast::nodeagent
