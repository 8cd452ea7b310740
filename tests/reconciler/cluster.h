#pragma once

// A real cluster for end-to-end tests: a bare manifest repository (file path or git daemon),
// `ballast serve` on 127.0.0.1 with a port chosen at run time, and `ballast agent`s on
// 127.0.0.2, 127.0.0.3, ... Every process is stopped (with its pods) on destruction.

#include <signal.h>

#include <chrono>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "net/client.h"
#include "tests/git/git_servers.h"

namespace ballast::reconciler::testing {

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

// A Deployment of `ballast demo-app` answering `message`, plus a Service on `service_port`.
inline std::string WebManifest(const std::string& message, int replicas, int service_port,
                               const std::string& extra_annotations = "") {
  std::string m = R"(apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
)" + extra_annotations +
                  R"(spec:
  replicas: )" + std::to_string(replicas) +
                  R"(
  selector:
    matchLabels: {app: web}
  strategy:
    rollingUpdate: {maxSurge: 1, maxUnavailable: 0}
  template:
    metadata:
      labels: {app: web}
    spec:
      terminationGracePeriodSeconds: 2
      containers:
        - name: web
          command: [")" BALLAST_BINARY R"(", "demo-app"]
          args: ["--message", ")" +
                  message + R"("]
          ports: [{name: http, containerPort: 8080}]
          readinessProbe:
            httpGet: {path: /healthz, port: http}
            periodSeconds: 1
---
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  selector: {app: web}
  ports: [{name: http, port: )" +
                  std::to_string(service_port) + R"(, targetPort: http}]
)";
  return m;
}

struct ServeOptions {
  std::string repo_url;  // empty: the farm's bare path
  std::vector<std::string> extra;
};

class Cluster {
 public:
  Cluster() { farm_.CreateBare("manifests"); }
  ~Cluster() {
    agents_.clear();
    serve_.reset();
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
    bool up = WaitFor(
        [&] {
          std::string log = ReadFile(serve_log_);
          auto at = log.find("listening on ");
          if (at == std::string::npos) return false;
          auto end = log.find('\n', at);
          if (end == std::string::npos) return false;
          url = log.substr(at + 13, end - at - 13);
          return true;
        },
        std::chrono::seconds(30));
    if (!up) return false;
    url_ = url;
    port_ = std::stoi(url.substr(url.rfind(':') + 1));
    return true;
  }

  void KillServe() {
    if (serve_) kill(serve_->pid(), SIGKILL);
    serve_.reset();
  }
  void StopServe() { serve_.reset(); }

  bool StartAgents(int n, const std::vector<std::string>& extra = {}) {
    for (int i = 0; i < n; ++i) {
      std::string name = "n" + std::to_string(i + 2);
      std::vector<std::string> argv = {BALLAST_BINARY, "agent",
                                       "--server",     url_,
                                       "--name",       name,
                                       "--address",    "127.0.0." + std::to_string(i + 2),
                                       "--work-dir",   dir_ / ("agent-" + name),
                                       "--heartbeat",  "1",
                                       "--cpu",        "4",
                                       "--memory",     "4Gi",
                                       "--no-cgroups", "--stop-pods-on-exit"};
      argv.insert(argv.end(), extra.begin(), extra.end());
      auto p = std::make_unique<ChildProcess>();
      if (!p->Start(argv, dir_ / ("agent-" + name + ".log"))) return false;
      agents_.push_back(std::move(p));
    }
    return true;
  }

  pid_t AgentPid(size_t i) const { return agents_.at(i)->pid(); }

  Json Get(const std::string& path) {
    net::HttpClient client;
    auto r = client.Get(url_ + path);
    if (!r.ok() || r->status != 200) return nullptr;
    auto j = r->JsonBody();
    return j.ok() ? *j : Json(nullptr);
  }
  Result<net::ClientResponse> Post(const std::string& path, const Json& body,
                                   const std::string& token = "", net::Headers headers = {}) {
    net::ClientOptions o;
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
  std::vector<std::unique_ptr<ChildProcess>> agents_;
  std::string url_;
  std::string serve_log_;
  int serve_starts_ = 0;
  int port_ = 0;
};

}  // namespace ballast::reconciler::testing
