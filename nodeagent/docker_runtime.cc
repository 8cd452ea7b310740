#include "nodeagent/docker_runtime.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstring>

namespace ballast::nodeagent {

using model::Json;

// One container's life as the engine sees it, observed by its watcher thread.
struct DockerRuntime::Watcher {
  ContainerLaunch launch;
  std::string name;
  std::atomic<bool> cancel{false};       // stop watching (Release, shutdown)
  std::atomic<bool> stop_before{false};  // a signal arrived before the container started
  std::atomic<bool> started{false};
  std::atomic<bool> killed{false};  // the agent sent SIGKILL (not an OOM kill)
  std::string image_user;           // the image's user, when CheckUser needed it
  std::mutex mu;                    // guards observation
  ContainerObservation observation;
  std::thread thread;
};

namespace {

constexpr char kLabelNode[] = "ballast.dev/node";
// How long a stopped container's log stream may take to deliver its last lines.
constexpr std::chrono::seconds kLogDrain{2};

// "registry/name:tag" -> {"registry/name", "tag"}; a digest stays whole with no tag.
std::pair<std::string, std::string> SplitImage(const std::string& image) {
  if (image.find('@') != std::string::npos) return {image, ""};
  auto slash = image.rfind('/');
  auto colon = image.rfind(':');
  if (colon != std::string::npos && (slash == std::string::npos || colon > slash)) {
    return {image.substr(0, colon), image.substr(colon + 1)};
  }
  return {image, "latest"};
}

// The top-level objects of a stream of concatenated JSON objects ("{..}{..}" or one per line).
std::vector<std::string> SplitJsonObjects(std::string_view text) {
  std::vector<std::string> out;
  int depth = 0;
  bool in_string = false, escaped = false;
  size_t begin = 0;
  for (size_t i = 0; i < text.size(); ++i) {
    char ch = text[i];
    if (in_string) {
      if (escaped) {
        escaped = false;
      } else if (ch == '\\') {
        escaped = true;
      } else if (ch == '"') {
        in_string = false;
      }
    } else if (ch == '"') {
      in_string = true;
    } else if (ch == '{') {
      if (depth++ == 0) begin = i;
    } else if (ch == '}' && depth > 0 && --depth == 0) {
      out.emplace_back(text.substr(begin, i - begin + 1));
    }
  }
  return out;
}

int OpenLog(const std::string& path) {
  // The pod's logs directory is the agent's (pod_files.h); never through a symlink all the same.
  return ::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0640);
}

void WriteAll(int fd, std::string_view data) {
  while (fd >= 0 && !data.empty()) {
    ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;
    data.remove_prefix(static_cast<size_t>(n));
  }
}

// Strips the "2026-11-25T19:41:26.123Z " prefix that timestamps=1 adds to every log line.
std::string_view StripTimestamp(std::string_view line) {
  if (line.size() > 20 && line[4] == '-' && line[10] == 'T') {
    auto space = line.find(' ');
    if (space != std::string_view::npos) line.remove_prefix(space + 1);
  }
  return line;
}

const char* SignalName(int signal) {
  switch (signal) {
    case SIGKILL:
      return "SIGKILL";
    case SIGINT:
      return "SIGINT";
    case SIGHUP:
      return "SIGHUP";
    default:
      return "SIGTERM";
  }
}

}  // namespace

DockerRuntime::DockerRuntime(DockerRuntimeOptions options)
    : options_(std::move(options)), client_(options_.socket_path) {
  engine_thread_ = std::thread([this] { EngineLoop(); });
}

DockerRuntime::~DockerRuntime() {
  std::map<std::string, std::shared_ptr<Watcher>> watchers;
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;  // the engine thread finishes the tasks already queued
    watchers.swap(watchers_);
  }
  tasks_cv_.notify_all();
  engine_thread_.join();
  for (auto& [name, w] : watchers) w->cancel = true;
  for (auto& [name, w] : watchers) {
    if (w->thread.joinable()) w->thread.join();
  }
}

std::string DockerRuntime::ContainerName(const ContainerLaunch& launch) {
  // The shape of Kubernetes' dockershim names (k8s_<container>_<pod>_<namespace>_..._<attempt>);
  // pod and container names are DNS labels, valid in container names.
  return "ballast_" + launch.container + "_" + launch.pod_name + "_" + launch.pod_namespace + "_" +
         std::to_string(launch.restart);
}

std::shared_ptr<DockerRuntime::Watcher> DockerRuntime::Find(const std::string& id) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = watchers_.find(id);
  return it == watchers_.end() ? nullptr : it->second;
}

Result<ContainerRef> DockerRuntime::Start(const ContainerLaunch& launch) {
  if (launch.image.empty()) {
    return InvalidArgument("container " + launch.container + ": the docker runtime needs an image");
  }
  auto w = std::make_shared<Watcher>();
  w->launch = launch;
  w->name = ContainerName(launch);
  if (Find(w->name)) Release(ContainerRef{w->name, 0, 0, false});
  {
    // A removal of this name still queued (an earlier attempt of the same restart) must not
    // remove the container about to be created.
    std::unique_lock<std::mutex> lock(mu_);
    tasks_cv_.wait(lock, [&] {
      return task_running_ != w->name &&
             std::none_of(tasks_.begin(), tasks_.end(),
                          [&](const EngineTask& t) { return t.name == w->name; });
    });
    watchers_[w->name] = w;
  }
  w->thread = std::thread([this, w] { Run(*w, false, 0); });
  ContainerRef ref;
  ref.id = w->name;
  return ref;
}

bool DockerRuntime::Adopt(ContainerRef& ref, const ContainerLaunch& launch) {
  if (ref.id.empty()) return false;
  auto info =
      client_.CallJson("GET", "/containers/" + ref.id + "/json", nullptr, options_.call_timeout_ms);
  if (!info.ok()) return false;
  // Follow the logs again from where the pod's log files stopped (the engine's `since` has
  // one-second resolution: lines of that last second may appear twice).
  int64_t since_ns = 0;
  for (const auto& path : {launch.stdout_path, launch.stderr_path}) {
    struct stat st;
    if (::lstat(path.c_str(), &st) == 0) {
      since_ns = std::max<int64_t>(since_ns,
                                   int64_t{st.st_mtim.tv_sec} * 1'000'000'000 + st.st_mtim.tv_nsec);
    }
  }
  auto w = std::make_shared<Watcher>();
  w->launch = launch;
  w->name = ref.id;
  w->started = true;
  {
    std::lock_guard<std::mutex> lock(w->mu);
    w->observation.phase = ContainerObservation::Phase::kRunning;
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    watchers_[w->name] = w;
  }
  w->thread = std::thread([this, w, since_ns] { Run(*w, true, since_ns); });
  ref.adopted = true;
  return true;
}

ContainerObservation DockerRuntime::Observe(ContainerRef& ref) {
  auto w = Find(ref.id);
  if (!w) {
    ContainerObservation o;
    o.phase = ContainerObservation::Phase::kExited;
    o.known = false;
    return o;
  }
  std::lock_guard<std::mutex> lock(w->mu);
  return w->observation;
}

void DockerRuntime::Signal(const ContainerRef& ref, int signal) {
  auto w = Find(ref.id);
  if (!w) return;
  if (!w->started) {
    w->stop_before = true;  // the watcher checks it before and right after starting
    return;
  }
  if (signal == SIGKILL) w->killed = true;
  Queue({ref.id, signal, nullptr});
}

void DockerRuntime::Release(const ContainerRef& ref) {
  if (ref.id.empty()) return;
  std::shared_ptr<Watcher> w;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = watchers_.find(ref.id);
    if (it != watchers_.end()) {
      w = it->second;
      w->cancel = true;
      watchers_.erase(it);
    }
  }
  Queue({ref.id, 0, w});
}

void DockerRuntime::Queue(EngineTask task) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    tasks_.push_back(std::move(task));
  }
  tasks_cv_.notify_all();
}

void DockerRuntime::EngineLoop() {
  std::unique_lock<std::mutex> lock(mu_);
  while (true) {
    tasks_cv_.wait(lock, [&] { return stopping_ || !tasks_.empty(); });
    if (tasks_.empty()) return;  // stopping, nothing left
    EngineTask task = std::move(tasks_.front());
    tasks_.pop_front();
    task_running_ = task.name;
    lock.unlock();
    DockerRequest r;
    r.method = task.signal == 0 ? "DELETE" : "POST";
    r.path = task.signal == 0
                 ? "/containers/" + task.name + "?force=true&v=true"
                 : "/containers/" + task.name + "/kill?signal=" + SignalName(task.signal);
    r.timeout_ms = options_.call_timeout_ms;
    if (task.signal == 0 && task.watcher && task.watcher->thread.joinable()) {
      task.watcher->thread.join();
    }
    // Errors change nothing: a container that is gone or not running any more is what a kill
    // or a removal wants, and the watcher reports what really happened.
    (void)client_.Call(r);
    lock.lock();
    task_running_.clear();
    tasks_cv_.notify_all();
  }
}

void DockerRuntime::Fail(Watcher& w, const std::string& reason, const std::string& message) {
  std::lock_guard<std::mutex> lock(w.mu);
  w.observation.phase = ContainerObservation::Phase::kStartFailed;
  w.observation.reason = reason;
  w.observation.message = message;
}

Status DockerRuntime::EnsureImage(Watcher& w, std::string* reason) {
  const std::string& image = w.launch.image;
  auto inspect =
      client_.CallJson("GET", "/images/" + image + "/json", nullptr, options_.call_timeout_ms);
  bool present = inspect.ok();
  if (!present && inspect.status().code() != StatusCode::kNotFound) return inspect.status();
  const std::string& policy = w.launch.pull_policy;
  if (present && policy != "Always") return Status::Ok();
  if (!present && policy == "Never") {
    *reason = "ErrImageNeverPull";
    return FailedPrecondition("Container image \"" + image +
                              "\" is not present with pull policy of Never");
  }
  auto [repo, tag] = SplitImage(image);
  DockerRequest r;
  r.method = "POST";
  r.path = "/images/create?fromImage=" + QueryEscape(repo) +
           (tag.empty() ? "" : "&tag=" + QueryEscape(tag));
  r.timeout_ms = options_.pull_timeout_ms;
  std::string progress, error;
  auto status = client_.Stream(
      r, nullptr,
      [&](std::string_view piece) {
        progress.append(piece);
        if (progress.size() > 1024 * 1024) progress.erase(0, progress.size() - 64 * 1024);
        return true;
      },
      &w.cancel);
  // The answer is a stream of JSON objects; a failure is one with "error" (status stays 200).
  for (const auto& text : SplitJsonObjects(progress)) {
    Json j = Json::parse(text, nullptr, false);
    if (j.is_object() && j.contains("error") && j["error"].is_string()) {
      error = j["error"].get<std::string>();
    }
  }
  if (status.ok() && *status != 200) {
    error = DockerError("docker POST /images/create", *status, progress).message();
  } else if (!status.ok()) {
    error = status.status().message();
  }
  if (error.empty()) return Status::Ok();
  *reason = "ErrImagePull";
  return Unavailable("Failed to pull image \"" + image + "\": " + error);
}

Status DockerRuntime::CheckUser(Watcher& w, std::string* reason) {
  const ContainerLaunch& l = w.launch;
  if (l.uid || (!l.run_as_non_root && !l.gid)) return Status::Ok();
  // The image's user decides: Config.User is "", "name", "uid", or any of them with ":group".
  auto inspect =
      client_.CallJson("GET", "/images/" + l.image + "/json", nullptr, options_.call_timeout_ms);
  if (!inspect.ok()) return inspect.status();
  std::string user = inspect->value("Config", Json::object()).value("User", "");
  user = user.substr(0, user.find(':'));
  w.image_user = user.empty() ? "0" : user;
  if (!l.run_as_non_root) return Status::Ok();
  const std::string where =
      " (pod: \"" + l.pod_namespace + "/" + l.pod_name + "\", container: " + l.container + ")";
  const bool numeric = std::all_of(w.image_user.begin(), w.image_user.end(),
                                   [](char c) { return c >= '0' && c <= '9'; });
  // kubelet's verifyRunAsNonRoot, with its messages.
  if (!numeric) {
    *reason = kCreateContainerConfigError;
    return FailedPrecondition("container has runAsNonRoot and image has non-numeric user (" +
                              w.image_user + "), cannot verify user is non-root" + where);
  }
  if (w.image_user.find_first_not_of('0') == std::string::npos) {
    *reason = kCreateContainerConfigError;
    return FailedPrecondition("container has runAsNonRoot and image will run as root" + where);
  }
  return Status::Ok();
}

Status DockerRuntime::CreateAndStart(Watcher& w) {
  const ContainerLaunch& l = w.launch;
  Json labels{
      {kLabelNode, options_.node_name},       {"ballast.dev/pod-namespace", l.pod_namespace},
      {"ballast.dev/pod-name", l.pod_name},   {"ballast.dev/pod-revision", l.revision},
      {"ballast.dev/container", l.container}, {"ballast.dev/restart", std::to_string(l.restart)}};
  Json body{{"Image", l.image}, {"Env", l.env}, {"Labels", labels}, {"Tty", false}};
  if (!l.hostname.empty()) body["Hostname"] = l.hostname;
  // Kubernetes: command replaces the entrypoint (and then the image's cmd is not used), args
  // replace the cmd.
  if (!l.command.empty()) {
    body["Entrypoint"] = l.command;
    body["Cmd"] = l.args;
  } else if (!l.args.empty()) {
    body["Cmd"] = l.args;
  }
  if (!l.working_dir.empty()) body["WorkingDir"] = l.working_dir;
  if (l.uid || l.gid) {
    // runAsGroup alone keeps the image's user (CheckUser read it).
    std::string user = l.uid ? std::to_string(*l.uid) : w.image_user;
    if (l.gid) user += ":" + std::to_string(*l.gid);
    body["User"] = user;
  }
  Json host{{"RestartPolicy", {{"Name", "no"}}}};
  if (!l.ports.empty()) {
    Json exposed = Json::object(), bindings = Json::object();
    for (const auto& p : l.ports) {
      std::string key = std::to_string(p.container_port) + "/tcp";
      exposed[key] = Json::object();
      bindings[key] =
          Json::array({{{"HostIp", l.host_ip}, {"HostPort", std::to_string(p.host_port)}}});
    }
    body["ExposedPorts"] = exposed;
    host["PortBindings"] = bindings;
  }
  if (l.memory_bytes > 0) host["Memory"] = l.memory_bytes;
  if (l.cpu_millis > 0) host["NanoCpus"] = l.cpu_millis * 1'000'000;
  if (l.pids_limit > 0) host["PidsLimit"] = l.pids_limit;
  // securityContext: the engine starts from its default capabilities and seccomp profile, as
  // the process runtime does.
  if (!l.cap_add.empty()) host["CapAdd"] = l.cap_add;
  if (!l.cap_drop.empty()) host["CapDrop"] = l.cap_drop;
  if (l.no_new_privileges) host["SecurityOpt"] = Json::array({"no-new-privileges"});
  if (l.read_only_root_filesystem) host["ReadonlyRootfs"] = true;
  if (!l.groups.empty()) {
    Json groups = Json::array();
    for (gid_t g : l.groups) groups.push_back(std::to_string(g));
    host["GroupAdd"] = std::move(groups);
  }
  if (!l.binds.empty()) {
    Json mounts = Json::array();
    for (const auto& b : l.binds) {
      mounts.push_back({{"Type", "bind"},
                        {"Source", b.source},
                        {"Target", b.target},
                        {"ReadOnly", b.read_only}});
    }
    host["Mounts"] = std::move(mounts);
  }
  body["HostConfig"] = host;

  auto created =
      client_.CallJson("POST", "/containers/create?name=" + w.name, body, options_.call_timeout_ms);
  if (!created.ok() && created.status().code() == StatusCode::kAlreadyExists) {
    // Left by an agent that died between creating it and recording it: it is ours, replace it.
    DockerRequest r;
    r.method = "DELETE";
    r.path = "/containers/" + w.name + "?force=true&v=true";
    r.timeout_ms = options_.call_timeout_ms;
    (void)client_.Call(r);
    created = client_.CallJson("POST", "/containers/create?name=" + w.name, body,
                               options_.call_timeout_ms);
  }
  if (!created.ok()) return created.status();
  if (w.stop_before) return Aborted("stopped before it started");
  auto started = client_.CallJson("POST", "/containers/" + w.name + "/start", nullptr,
                                  options_.call_timeout_ms);
  if (!started.ok()) return started.status();
  return Status::Ok();
}

void DockerRuntime::FollowLogs(Watcher& w, int64_t since_ns, const std::atomic<bool>* cancel) {
  int out = OpenLog(w.launch.stdout_path);
  int err = OpenLog(w.launch.stderr_path);
  DockerRequest r;
  r.path = "/containers/" + w.name + "/logs?follow=true&stdout=true&stderr=true&timestamps=true";
  if (since_ns > 0) r.path += "&since=" + std::to_string(since_ns / 1'000'000'000);
  r.timeout_ms = 0;  // as long as the container runs; `cancel` ends it sooner
  MultiplexedStreamDecoder decoder;
  (void)client_.Stream(
      r, nullptr,
      [&](std::string_view piece) {
        decoder.Feed(piece, [&](int stream, std::string_view payload) {
          WriteAll(stream == 2 ? err : out, StripTimestamp(payload));
        });
        return true;
      },
      cancel);
  if (out >= 0) ::close(out);
  if (err >= 0) ::close(err);
}

void DockerRuntime::Run(Watcher& w, bool adopting, int64_t logs_since_ns) {
  if (!adopting) {
    std::string reason;
    if (Status s = EnsureImage(w, &reason); !s.ok()) return Fail(w, reason, s.message());
    if (Status s = CheckUser(w, &reason); !s.ok()) return Fail(w, reason, s.message());
    if (w.cancel) return;
    if (w.stop_before) return Fail(w, "", "stopped before it started");
    if (Status s = CreateAndStart(w); !s.ok()) return Fail(w, "", s.message());
    w.started = true;
    {
      std::lock_guard<std::mutex> lock(w.mu);
      w.observation.phase = ContainerObservation::Phase::kRunning;
    }
    // A stop that raced with the start.
    if (w.stop_before) Signal(ContainerRef{w.name, 0, 0, false}, SIGTERM);
  }
  // The logs are followed on a thread of their own while this one waits for the exit: podman
  // can keep a follow stream open after its container stopped, and an exit must be seen
  // whatever the log stream does. Once the container stopped, the stream has a little time to
  // deliver its last lines before it is cut, so that they are in the files when the exit is.
  struct LogFollower {
    std::atomic<bool> cancel{false};
    std::atomic<bool> done{false};
    std::thread thread;
    ~LogFollower() {
      cancel = true;
      if (thread.joinable()) thread.join();
    }
  } logs;
  logs.thread = std::thread([this, &w, &logs, logs_since_ns] {
    FollowLogs(w, logs_since_ns, &logs.cancel);
    logs.done = true;
  });
  std::optional<ContainerObservation> exit = WaitForExit(w);
  if (!exit) return;  // released: ~LogFollower cuts the stream
  const auto drain_until = std::chrono::steady_clock::now() + kLogDrain;
  while (!logs.done && !w.cancel && std::chrono::steady_clock::now() < drain_until) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  logs.cancel = true;
  logs.thread.join();
  std::lock_guard<std::mutex> lock(w.mu);
  w.observation = *exit;
}

std::optional<ContainerObservation> DockerRuntime::WaitForExit(Watcher& w) {
  while (!w.cancel) {
    DockerRequest r;
    r.method = "POST";
    r.path = "/containers/" + w.name + "/wait?condition=not-running";
    r.timeout_ms = 0;
    std::string body;
    auto status = client_.Stream(
        r, nullptr,
        [&](std::string_view piece) {
          body.append(piece);
          return body.size() < 64 * 1024;
        },
        &w.cancel);
    if (w.cancel) return std::nullopt;
    auto info = client_.CallJson("GET", "/containers/" + w.name + "/json", nullptr,
                                 options_.call_timeout_ms);
    ContainerObservation o;
    o.phase = ContainerObservation::Phase::kExited;
    if (info.ok()) {
      const Json state = info->value("State", Json::object());
      if (state.value("Running", false)) continue;  // wait ended early (engine restart)
      o.exit_code = state.value("ExitCode", 0);
      o.signal = o.exit_code > 128 ? o.exit_code - 128 : 0;
      // podman 4.3 never sets State.OOMKilled (its cgroupfs manager does not read the memory
      // cgroup's oom_kill count), so a SIGKILL exit (137) of a container with a memory limit
      // that the agent did not kill itself is taken as an OOM kill, as the kernel's OOM killer
      // is the only other sender of SIGKILL to it.
      if (state.value("OOMKilled", false) ||
          (o.exit_code == 128 + SIGKILL && w.launch.memory_bytes > 0 && !w.killed)) {
        o.reason = "OOMKilled";
      }
      std::string error = state.value("Error", "");
      if (!error.empty()) o.message = error;
    } else if (status.ok()) {
      Json j = Json::parse(body, nullptr, false);
      if (j.is_object() && j.contains("StatusCode") && j["StatusCode"].is_number_integer()) {
        o.exit_code = j["StatusCode"].get<int>();
      } else {
        o.known = false;
      }
    } else {
      o.known = false;
    }
    return o;
  }
  return std::nullopt;
}

ProbeOutcome DockerRuntime::Exec(const ContainerRef& ref, const ProcessSpec&,
                                 const std::vector<std::string>& command, int timeout_ms) {
  if (command.empty()) return {false, "exec: empty command"};
  auto exec = client_.CallJson(
      "POST", "/containers/" + ref.id + "/exec",
      Json{{"Cmd", command}, {"AttachStdout", true}, {"AttachStderr", true}, {"Tty", false}},
      timeout_ms);
  if (!exec.ok()) return {false, "exec: " + exec.status().message()};
  std::string id = exec->value("Id", "");
  if (id.empty()) return {false, "exec: the engine returned no exec id"};
  DockerRequest r;
  r.method = "POST";
  r.path = "/exec/" + id + "/start";
  r.body = Json{{"Detach", false}, {"Tty", false}}.dump();
  r.timeout_ms = timeout_ms;
  std::string output;
  MultiplexedStreamDecoder decoder;
  auto started = client_.Stream(
      r, nullptr,
      [&](std::string_view piece) {
        decoder.Feed(piece, [&](int, std::string_view payload) {
          if (output.size() < 4096) output.append(payload);
        });
        return true;
      },
      nullptr);
  if (!started.ok()) return {false, "exec: " + started.status().message()};
  if (*started != 200) return {false, "exec: " + DockerError("start", *started, "").message()};
  auto info = client_.CallJson("GET", "/exec/" + id + "/json", nullptr, options_.call_timeout_ms);
  if (!info.ok()) return {false, "exec: " + info.status().message()};
  int code = info->value("ExitCode", -1);
  if (code == 0) return {true, ""};
  while (!output.empty() && output.back() == '\n') output.pop_back();
  return {false, "exec: command exited with " + std::to_string(code) +
                     (output.empty() ? "" : ": " + output)};
}

void DockerRuntime::RemoveOrphans(const std::set<std::string>& known) {
  Json filters{{"label", Json::array({std::string(kLabelNode) + "=" + options_.node_name})}};
  auto list =
      client_.CallJson("GET", "/containers/json?all=true&filters=" + QueryEscape(filters.dump()),
                       nullptr, options_.call_timeout_ms);
  if (!list.ok() || !list->is_array()) return;
  for (const auto& c : *list) {
    std::string name;
    if (c.contains("Names") && c["Names"].is_array() && !c["Names"].empty()) {
      name = c["Names"][0].get<std::string>();
      if (!name.empty() && name[0] == '/') name.erase(0, 1);
    }
    if (name.empty() || known.count(name) > 0 || Find(name)) continue;
    DockerRequest r;
    r.method = "DELETE";
    r.path = "/containers/" + name + "?force=true&v=true";
    r.timeout_ms = options_.call_timeout_ms;
    (void)client_.Call(r);
  }
}

}  // namespace ballast::nodeagent
