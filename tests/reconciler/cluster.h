#pragma once

// A real cluster for end-to-end tests: a bare manifest repository (file path or git daemon),
// `ballast serve` on 127.0.0.1 with a port chosen at run time, and `ballast agent`s on
// 127.0.0.2, 127.0.0.3, ... Every process is stopped (with its pods) on destruction.

#include <signal.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "net/client.h"
#include "tests/support/git_servers.h"
#include "tests/support/manifests.h"
#include "tests/support/ports.h"

namespace ballast::reconciler::testing {

using ballast::testing::PickFreePort;
using ballast::testing::WebManifest;
using ballast::testing::WebSpec;
using git::testing::ChildProcess;
using git::testing::RepoFarm;
using git::testing::TempDir;
using Json = net::Json;

inline std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Polls `cond` every 100 ms until it holds or `timeout` passes.
inline bool WaitFor(const std::function<bool()>& cond,
                    std::chrono::seconds timeout = std::chrono::seconds(60)) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (cond()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return cond();
}

class Cluster {
 public:
  Cluster() { farm_.CreateBare("manifests"); }
  ~Cluster() {
    agents_.clear();
    serve_.reset();
    KillLeftoverPods();
  }

  RepoFarm& farm() { return farm_; }
  const TempDir& dir() const { return dir_; }
  std::string Commit(const std::map<std::string, std::optional<std::string>>& files,
                     const std::string& message) {
    return farm_.Commit("manifests", files, message);
  }

  // Starts `ballast serve`; `port` 0 picks one (kept for restarts). Waits for "listening on".
  bool StartServe(const std::vector<std::string>& extra, const std::string& repo_url = "") {
    std::vector<std::string> argv = {
        BALLAST_BINARY, "serve",
        "--repo",       repo_url.empty() ? farm_.BarePath("manifests") : repo_url,
        "--listen",     "127.0.0.1:" + std::to_string(port_),
        "--state-dir",  dir_ / "state",
        "--poll",       "1",
        "--log-level",  "debug"};
    argv.insert(argv.end(), extra.begin(), extra.end());
    serve_log_ = dir_ / ("serve-" + std::to_string(++serve_starts_) + ".log");
    serve_ = std::make_unique<ChildProcess>();
    if (!serve_->Start(argv, serve_log_)) return false;
    std::string url;
    bool exited = false;  // refused to start: no need to wait on
    bool up = WaitFor(
        [&] {
          std::string log = ReadFile(serve_log_);
          auto at = log.find("listening on ");
          if (at == std::string::npos) return exited = !serve_->Running();
          auto end = log.find('\n', at);
          if (end == std::string::npos) return false;
          url = log.substr(at + 13, end - at - 13);
          return true;
        },
        std::chrono::seconds(30));
    if (!up || exited) return false;
    url_ = url;
    port_ = std::stoi(url.substr(url.rfind(':') + 1));
    return true;
  }

  void KillServe() {
    if (serve_) kill(serve_->pid(), SIGKILL);
    serve_.reset();
  }
  void StopServe() { serve_.reset(); }
  bool ServeRunning() { return serve_ && serve_->Running(); }
  pid_t ServePid() const { return serve_->pid(); }

  // Starts `n` more agents, "n2" on 127.0.0.2, "n3" on 127.0.0.3, ...
  bool StartAgents(int n, const std::vector<std::string>& extra = {}) {
    for (int i = 0; i < n; ++i) {
      const size_t index = agents_.size();
      const std::string name = AgentName(index);
      std::vector<std::string> argv = {BALLAST_BINARY, "agent",
                                       "--server",     url_,
                                       "--name",       name,
                                       "--address",    AgentAddress(index),
                                       "--work-dir",   dir_ / ("agent-" + name),
                                       "--heartbeat",  "1",
                                       "--cpu",        "4",
                                       "--memory",     "4Gi",
                                       "--no-cgroups", "--stop-pods-on-exit"};
      argv.insert(argv.end(), extra.begin(), extra.end());
      agent_argv_.push_back(argv);
      agents_.push_back(nullptr);
      if (!StartAgent(index)) return false;
    }
    return true;
  }
  // Agent `i` is node "n<i+2>" on 127.0.0.<i+2>. (Appended rather than `"n" + std::to_string()`:
  // GCC 12 at -O3 warns -Wrestrict on `const char* + std::string&&`, GCC bug 105651.)
  static std::string AgentName(size_t i) { return std::string("n").append(std::to_string(i + 2)); }
  static std::string AgentAddress(size_t i) {
    return std::string("127.0.0.").append(std::to_string(i + 2));
  }
  // kill -9 of agent `i` ("n<i+2>"): its pods keep running (own sessions), nobody reports them.
  void KillAgent(size_t i) {
    if (agents_.at(i)) kill(agents_[i]->pid(), SIGKILL);
    agents_[i].reset();
  }
  // Starts agent `i` again with the same name, address and work directory.
  bool StartAgent(size_t i) {
    auto p = std::make_unique<ChildProcess>();
    const std::string name = AgentName(i);
    if (!p->Start(agent_argv_.at(i), dir_ / ("agent-" + name + ".log"))) return false;
    agents_[i] = std::move(p);
    return true;
  }

  pid_t AgentPid(size_t i) const { return agents_.at(i)->pid(); }
  bool AgentRunning(size_t i) { return agents_.at(i) && agents_[i]->Running(); }
  // Processes working under one of this cluster's agent directories: the pods' processes.
  std::vector<pid_t> PodProcesses() const {
    namespace fs = std::filesystem;
    const std::string prefix = dir_ / "agent-";
    std::vector<pid_t> out;
    std::error_code ec;
    for (const auto& entry : fs::directory_iterator("/proc", ec)) {
      const std::string pid = entry.path().filename();
      if (pid.find_first_not_of("0123456789") != std::string::npos) continue;
      std::error_code link_ec;
      auto cwd = fs::read_symlink(entry.path() / "cwd", link_ec);
      if (!link_ec && cwd.string().rfind(prefix, 0) == 0) out.push_back(std::stoi(pid));
    }
    return out;
  }
  // SIGTERM to agent `i`, waits for it to exit.
  void StopAgent(size_t i) { agents_.at(i).reset(); }
  std::string AgentLog(size_t i) const { return dir_ / ("agent-" + AgentName(i) + ".log"); }

  // The token reads present (Get, Status, ...): for a reconciler started with a token file.
  void set_read_token(std::string token) { read_token_ = std::move(token); }
  // What reads and posts connect with (https: the CA, a client certificate).
  void set_client_options(net::ClientOptions o) { client_options_ = std::move(o); }
  Json Get(const std::string& path) {
    net::ClientOptions o = client_options_;
    o.bearer_token = read_token_;
    net::HttpClient client(o);
    auto r = client.Get(url_ + path);
    if (!r.ok() || r->status != 200) return nullptr;
    auto j = r->JsonBody();
    return j.ok() ? *j : Json(nullptr);
  }
  Result<net::ClientResponse> Post(const std::string& path, const Json& body,
                                   const std::string& token = "", net::Headers headers = {}) {
    net::ClientOptions o = client_options_;
    o.bearer_token = token;
    net::HttpClient client(o);
    net::ClientRequest req;
    req.method = "POST";
    req.url = url_ + path;
    req.body = body.dump();
    req.content_type = "application/json";
    req.headers = std::move(headers);
    return client.Do(req);
  }

  // Ready, non-terminating pods of Deployment web: name -> revision.
  std::map<std::string, std::string> ReadyPods() {
    std::map<std::string, std::string> out;
    Json pods = Get("/api/v1/pods");
    if (pods.is_null()) return out;
    for (const auto& p : pods["items"]) {
      if (p["ready"].get<bool>() && !p.value("terminating", false)) {
        out[p["name"].get<std::string>()] = p["revision"].get<std::string>();
      }
    }
    return out;
  }
  int PodCount() {
    Json pods = Get("/api/v1/pods");
    return pods.is_null() ? -1 : static_cast<int>(pods["items"].size());
  }
  std::string DeploymentRevision() {
    Json d = Get("/api/v1/deployments");
    if (d.is_null() || d["items"].empty()) return "";
    return d["items"][0]["revision"].get<std::string>();
  }
  // True once `replicas` pods of the Deployment's current revision are ready and no other pod
  // is listed.
  bool RolledOut(int replicas) {
    std::string rev = DeploymentRevision();
    auto ready = ReadyPods();
    if (rev.empty() || static_cast<int>(ready.size()) != replicas || PodCount() != replicas) {
      return false;
    }
    for (const auto& [name, r] : ready) {
      if (r != rev) return false;
    }
    return true;
  }
  Json Status() { return Get("/api/v1/status"); }

  // Runs the ballast CLI; returns exit code and output.
  git::testing::ShellResult Cli(const std::string& args) {
    return git::testing::Sh(std::string(BALLAST_BINARY) + " " + args + " --server " + url_);
  }

  const std::string& url() const { return url_; }
  const std::string& serve_log() const { return serve_log_; }
  std::string Logs() {
    std::string out = "--- serve log (" + serve_log_ + "):\n" + ReadFile(serve_log_);
    for (int i = 2; i < 2 + static_cast<int>(agents_.size()); ++i) {
      std::string f = dir_ / ("agent-n" + std::to_string(i) + ".log");
      std::string a = ReadFile(f);
      if (a.size() > 4000) a = a.substr(a.size() - 4000);
      out += "--- " + f + ":\n" + a;
    }
    return out;
  }

 private:
  TempDir dir_;
  RepoFarm farm_;
  std::unique_ptr<ChildProcess> serve_;
  // Pods whose agent was killed (or a test that failed before restarting it) outlive their
  // agent: every process still working under one of this cluster's agent directories is ended.
  void KillLeftoverPods() {
    for (pid_t pid : PodProcesses()) kill(pid, SIGKILL);
  }

  std::vector<std::unique_ptr<ChildProcess>> agents_;
  std::vector<std::vector<std::string>> agent_argv_;
  std::string url_;
  std::string read_token_;
  net::ClientOptions client_options_;
  std::string serve_log_;
  int serve_starts_ = 0;
  int port_ = 0;
};

// What a user polling `ballast get pods` sees, over time: GET /api/v1/nodes and then
// GET /api/v1/pods, back to back from a thread of its own, until Stop(). Answers that fail (a
// reconciler being restarted) are skipped.
struct PodSample {
  int64_t asked_ms = 0;  // steady clock, when the nodes were asked for
  int64_t taken_ms = 0;  // steady clock, when the pods answer arrived
  // Every node listed has reported its pods to this reconciler (after a restart, the pods of a
  // node that has not reported yet are missing from the list, not gone).
  bool complete = false;
  Json nodes;  // the items of /api/v1/nodes
  Json pods;   // the items of /api/v1/pods
};

class PodSampler {
 public:
  static int64_t SteadyNowMs() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::steady_clock::now().time_since_epoch())
        .count();
  }

  // `nodes`: how many nodes the cluster has (a sample is complete once all of them reported).
  PodSampler(std::string url, size_t nodes) : url_(std::move(url)), nodes_(nodes) {
    thread_ = std::thread([this] { Run(); });
  }
  ~PodSampler() { Stop(); }
  PodSampler(const PodSampler&) = delete;
  PodSampler& operator=(const PodSampler&) = delete;

  // Stops sampling and returns every sample, oldest first.
  std::vector<PodSample> Stop() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stop_ = true;
    }
    if (thread_.joinable()) thread_.join();
    std::lock_guard<std::mutex> lock(mu_);
    return samples_;
  }

 private:
  void Run() {
    net::ClientOptions o;
    o.timeout = std::chrono::seconds(5);
    net::HttpClient client(o);
    for (;;) {
      {
        std::lock_guard<std::mutex> lock(mu_);
        if (stop_) return;
      }
      const int64_t asked = SteadyNowMs();
      auto nodes = client.Get(url_ + "/api/v1/nodes");
      auto pods = client.Get(url_ + "/api/v1/pods");
      if (nodes.ok() && pods.ok() && nodes->status == 200 && pods->status == 200) {
        auto nj = nodes->JsonBody();
        auto pj = pods->JsonBody();
        if (nj.ok() && pj.ok()) {
          PodSample sample;
          sample.asked_ms = asked;
          sample.taken_ms = SteadyNowMs();
          sample.complete = (*nj)["items"].size() == nodes_;
          for (const auto& n : (*nj)["items"]) {
            if (!n.value("podsReported", false)) sample.complete = false;
          }
          sample.nodes = (*nj)["items"];
          sample.pods = (*pj)["items"];
          std::lock_guard<std::mutex> lock(mu_);
          samples_.push_back(std::move(sample));
        }
      } else {
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  }

  std::string url_;
  size_t nodes_;
  std::thread thread_;
  std::mutex mu_;
  bool stop_ = false;               // guarded by mu_
  std::vector<PodSample> samples_;  // guarded by mu_
};

// The rolling-update bounds of Kubernetes for a Deployment of `replicas` with resolved `max_surge`
// and `max_unavailable`, on one listing of its pods:
//   ready pods that are not terminating   >= replicas - max_unavailable
//   pods that are not terminating         <= replicas + max_surge
// A pod being stopped still exists: the list shows it (`terminating`, "Terminating" in
// `ballast get pods`, as kubectl shows a pod with a deletion timestamp) until its agent reports
// it gone. As in Kubernetes, it counts in neither bound: the Deployment controller leaves pods
// with a deletion timestamp out of a ReplicaSet's replicas and of the available count, so during a
// rollout `kubectl get pods` can list replicas + maxSurge pods plus the ones still terminating.
// Returns "" when the bounds hold, else what broke them.
inline std::string BoundsViolation(const Json& pods, const std::string& deployment, int replicas,
                                   int max_surge, int max_unavailable) {
  int live = 0, ready = 0;
  std::string names;
  for (const auto& p : pods) {
    if (p.value("deployment", "") != deployment) continue;
    const bool terminating = p.value("terminating", false);
    names.append(" ").append(p.value("name", "")).append("(").append(p.value("revision", ""));
    names.append(terminating ? ",terminating" : "").append(p.value("ready", false) ? ",ready" : "");
    names.append(")");
    if (terminating) continue;
    ++live;
    if (p.value("ready", false)) ++ready;
  }
  std::string why;
  if (ready < replicas - max_unavailable) {
    why = std::to_string(ready) + " ready < " + std::to_string(replicas - max_unavailable);
  }
  if (live > replicas + max_surge) {
    why += (why.empty() ? "" : ", ") + std::to_string(live) + " pods > " +
           std::to_string(replicas + max_surge);
  }
  return why.empty() ? "" : why + ":" + names;
}

// What a user would take for a restarted pod, over all samples: a restart count above 0 or a
// container whose start time changed. Returns "" when there is none.
inline std::string RestartedPods(const std::vector<PodSample>& samples) {
  std::map<std::string, int64_t> started;  // pod/container -> startedAtMs
  for (const auto& s : samples) {
    for (const auto& p : s.pods) {
      const std::string name = p.value("name", "");
      if (p.value("restarts", 0) != 0) return name + " restarted: " + p.dump();
      for (const auto& c : p.value("containers", Json::array())) {
        int64_t at = c.value("startedAtMs", int64_t{0});
        if (at == 0) continue;
        auto [it, fresh] = started.emplace(name + "/" + c.value("name", ""), at);
        if (!fresh && it->second != at) {
          return name + " was started again: startedAtMs " + std::to_string(it->second) + " then " +
                 std::to_string(at);
        }
      }
    }
  }
  return "";
}

// A stop is final: a pod once shown as terminating is never shown as running on afterwards.
// Returns "" when that holds.
inline std::string UnstoppedPods(const std::vector<PodSample>& samples) {
  std::set<std::string> terminating;
  for (const auto& s : samples) {
    for (const auto& p : s.pods) {
      const std::string name = p.value("name", "");
      if (p.value("terminating", false)) {
        terminating.insert(name);
      } else if (terminating.count(name)) {
        return name + " was terminating and is not any more";
      }
    }
  }
  return "";
}

// GET `path` of the Service on `port` through node 0's proxy: the body of a 200, else "".
inline std::string Fetch(int port, const std::string& path = "/") {
  net::ClientOptions o;
  o.timeout = std::chrono::seconds(5);
  net::HttpClient client(o);
  auto r = client.Get("http://" + Cluster::AgentAddress(0) + ":" + std::to_string(port) + path);
  return r.ok() && r->status == 200 ? r->body : "";
}

// True when the Service on `port` answers with `message` (demo-app's body starts with its
// message; the pod name after it is random and may hold any short string, such as "v2").
inline bool Serves(int port, const std::string& message) {
  return Fetch(port).rfind(message, 0) == 0;
}

}  // namespace ballast::reconciler::testing
