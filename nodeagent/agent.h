#pragma once

// `ballast agent` as a library: registers the node with the reconciler, heartbeats node and pod
// status, long-polls the node's desired pod set, converges the pods (PodManager) and serves the
// Services (ServiceProxy). Keeps its pods running while the reconciler is away (retrying with
// back-off) and adopts them again after its own restart.
//
// Threads: a supervision loop (pods), a sync loop (register + long-poll), a heartbeat loop, the
// proxy thread, probe workers. Start() and Stop() from one controlling thread.

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "agentapi/protocol.h"
#include "clock/clock.h"
#include "model/cluster.h"
#include "net/client.h"
#include "net/server.h"
#include "nodeagent/cgroups.h"
#include "nodeagent/docker_runtime.h"
#include "nodeagent/node_identity.h"
#include "nodeagent/pods.h"
#include "nodeagent/proxy.h"

namespace ballast::nodeagent {

inline constexpr char kAgentVersion[] = "0.1.0";

struct AgentOptions {
  std::string server_url;  // http(s)://host:port of the reconciler
  std::string name;
  std::string address = "127.0.0.1";
  std::string cpu;     // quantity; empty: the machine's CPUs
  std::string memory;  // quantity; empty: the machine's memory
  model::StringMap labels;
  std::vector<model::Taint> taints;
  std::string work_dir;
  // The join token (or a token of the reconciler's token file) the node registers with; once
  // registered it presents its own credential (nodeagent/node_identity.h). May be empty.
  std::string token;
  std::string ca_file;  // for https
  // https with mutual TLS: the node's client certificate and key (the reconciler's
  // --tls-client-ca signed it; subject O=system:nodes, CN=system:node:NAME). It identifies the
  // node instead of a join token.
  std::string cert_file;
  std::string key_file;
  int heartbeat_seconds = 10;
  int long_poll_seconds = 30;
  int64_t retry_initial_ms = 500;  // back-off when the reconciler is unreachable
  int64_t retry_max_ms = 10'000;
  // Retry period while the reconciler does not answer at all (connection refused: restarting).
  int64_t reconnect_ms = 1000;
  bool stop_pods_on_exit = false;
  // Serve pod logs at http://ADDRESS:PORT/api/v1/logs/NAMESPACE/POD/CONTAINER?stream=stdout|
  // stderr&tailBytes=N (bearer token as for the reconciler). -1: no log server, 0: any free port.
  // The URL is reported as the node label "ballast.dev/agent-api".
  int logs_port = 0;
  bool enable_cgroups = true;
  int64_t log_max_bytes = 10 * 1024 * 1024;
  BackoffPolicy crash_backoff;
  // Container runtime: "process" (commands only), "docker" (images through the Docker Engine
  // API at docker_socket; Start fails when it does not answer) or "auto" (docker when the
  // socket answers /_ping, else process). With docker the node reports runtimes
  // ["process", "docker"]: pods with a command and no image still run as processes.
  std::string runtime = "process";
  std::string docker_socket = "/var/run/docker.sock";
  std::string image_pull_policy;  // "", "Never", "IfNotPresent" or "Always" (overrides pods')
  EventLog log;                   // pod events and reconciler connectivity; may be empty
};

class Agent {
 public:
  // `clock` must outlive the agent.
  Agent(AgentOptions options, const Clock& clock);
  ~Agent();  // Stop()

  // Validates the options, restores pods from the work directory and starts the threads.
  Status Start();
  // Stops the threads; pods keep running unless stop_pods_on_exit (then they are stopped,
  // each within its grace period). Idempotent.
  void Stop();

  model::Node NodeInfo() const;
  std::vector<model::Pod> Pods() const { return pods_->Status(); }
  int adopted() const { return adopted_; }
  // Version of the last desired state applied (0 before the first).
  int64_t desired_version() const { return version_.load(); }
  const ServiceProxy& proxy() const { return *proxy_; }
  // "http://ADDRESS:PORT" of the log server, "" when there is none.
  std::string api_url() const { return api_ ? api_->url() : ""; }

 private:
  // Start(), in order: the node as registered (labels, capacity); the container runtimes.
  Status DescribeNode();
  Status StartRuntimes();
  void SuperviseLoop();
  void SyncLoop();
  void HeartbeatLoop();
  // How long to wait before trying the reconciler again after `why` failed a call, with the
  // back-off at `retry`: no answer at all (Unavailable: a reconciler restarting refuses
  // connections) is tried again within reconnect_ms, so that a restarted reconciler hears from
  // every node at once; an answer that is an error waits the whole back-off.
  int64_t RetryDelayMs(int64_t retry, const Status& why) const;
  Status Register();
  // A call to the reconciler with this node's identity (its credential once it has one). A 401
  // or 403 answer makes the node forget the credential and register again.
  Result<net::ClientResponse> CallServer(net::ClientRequest request);
  net::Response ServeLogs(const net::Request& request) const;
  // Waits up to `ms` unless stopping; returns false when stopping.
  bool Sleep(int64_t ms);

  AgentOptions options_;
  const Clock& clock_;
  model::Node node_;
  std::unique_ptr<Cgroups> cgroups_;
  std::unique_ptr<DockerRuntime> docker_;  // before pods_: outlives it
  std::unique_ptr<PodManager> pods_;
  std::unique_ptr<ServiceProxy> proxy_;
  net::HttpClient client_;
  NodeIdentity identity_;
  std::unique_ptr<net::HttpServer> api_;
  int adopted_ = 0;

  std::mutex mu_;  // guards the fields below
  std::condition_variable cv_;
  bool stopping_ = false;
  bool has_desired_ = false;
  agentapi::DesiredState desired_;
  bool heartbeat_now_ = false;
  std::atomic<bool> registered_{false};
  std::mutex register_error_mu_;     // guards last_register_error_
  std::string last_register_error_;  // logged once per distinct error
  std::string last_desired_error_;   // SyncLoop only: logged once per distinct error
  std::atomic<int64_t> version_{0};
  std::atomic<int> heartbeat_seconds_{10};

  std::vector<std::thread> threads_;
  bool started_ = false;
};

}  // namespace ballast::nodeagent
