#pragma once

// Probe actions with Kubernetes' semantics (httpGet: 200-399 succeeds; tcpSocket: connect
// succeeds; exec: exit code 0), each bounded by the probe's timeoutSeconds, and the small worker
// pool that runs them off the agent's supervision thread.

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "model/object.h"
#include "nodeagent/process.h"

namespace ballast::nodeagent {

struct ProbeOutcome {
  bool success = false;
  std::string message;  // why it failed
};

// Where a container's probes go: the node address and the host ports its declared ports map to.
struct ProbeContext {
  std::string host;
  std::map<std::string, int32_t> ports_by_name;  // container port name -> host port
  std::map<int32_t, int32_t> ports_by_number;    // containerPort -> host port
  ProcessSpec exec_base;                         // env, cwd, uid for exec probes
  // When set, exec probes run through it (inside a container) instead of as a local process.
  std::function<ProbeOutcome(const std::vector<std::string>& command, int timeout_ms)> exec;
};

// An exec probe as a local process: `command` with `base`'s env, cwd and user, killed at the
// deadline; exit code 0 succeeds.
ProbeOutcome RunExecProbe(const ProcessSpec& base, const std::vector<std::string>& command,
                          int timeout_ms);

// Resolves a probe port (number or name) to the host port: declared ports map to their host
// port, other numbers are used as is. 0 for an unknown name.
int32_t ResolveProbePort(const model::IntOrString& port, const ProbeContext& context);

// Runs the probe's action once. Blocks for at most about timeoutSeconds.
ProbeOutcome RunProbe(const model::Probe& probe, const ProbeContext& context);

// A fixed pool of threads running queued jobs in order. Thread-safe.
class WorkerPool {
 public:
  explicit WorkerPool(int threads);
  ~WorkerPool();  // finishes running jobs, drops queued ones, joins
  void Submit(std::function<void()> job);

 private:
  void Loop();
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> jobs_;
  bool stopping_ = false;
  std::vector<std::thread> threads_;
};

}  // namespace ballast::nodeagent
