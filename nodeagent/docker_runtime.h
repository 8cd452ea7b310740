#pragma once

// The Docker Engine API runtime: a pod's container is a container of its image, run by dockerd
// or `podman system service` through DockerClient (API v1.41 over the engine's unix socket).
//
// - Names are deterministic per pod, container and restart ("ballast_<container>_<pod>_
//   <namespace>_<restart>"); labels (ballast.dev/node, pod-namespace, pod-name, pod-revision,
//   container, restart) tie each container to its pod, so a restarted agent adopts it and
//   removes the ones no pod knows any more.
// - Ports are published on the node address (PortBindings to the allocated host ports), so
//   replicas on one node never collide; the agent probes and proxies the host ports.
// - Start is asynchronous (ContainerCreating): a watcher thread per container checks or pulls
//   the image (pull policy Never fails at once with ErrImageNeverPull, a failed pull is
//   ErrImagePull), creates and starts the container, streams its logs (multiplexed stdout/
//   stderr) into the pod's log files, waits for its exit and inspects it.
// - Limits: memory -> HostConfig.Memory, cpu -> NanoCpus, the pod's pids limit -> PidsLimit
//   (per container).
// - securityContext: runAsUser/runAsGroup -> User; capabilities -> CapAdd/CapDrop (on the
//   engine's default set); no_new_privs unless allowPrivilegeEscalation: true -> SecurityOpt
//   "no-new-privileges"; readOnlyRootFilesystem -> ReadonlyRootfs. runAsNonRoot without
//   runAsUser is checked against the image's user before the container is created, as kubelet
//   does (CreateContainerConfigError when it is root or not numeric).

#include <atomic>
#include <condition_variable>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "nodeagent/docker_client.h"
#include "nodeagent/runtime.h"

namespace ballast::nodeagent {

struct DockerRuntimeOptions {
  std::string socket_path = "/var/run/docker.sock";
  std::string node_name = "node";
  int call_timeout_ms = 30'000;   // every API call but pulls and streams
  int pull_timeout_ms = 600'000;  // one image pull
};

class DockerRuntime : public ContainerRuntime {
 public:
  explicit DockerRuntime(DockerRuntimeOptions options);
  // Stops watching (joins the watcher threads); the containers keep running.
  ~DockerRuntime() override;
  DockerRuntime(const DockerRuntime&) = delete;
  DockerRuntime& operator=(const DockerRuntime&) = delete;

  // The engine answers /_ping.
  Status Ping() const { return client_.Ping(); }
  const DockerClient& client() const { return client_; }

  static std::string ContainerName(const ContainerLaunch& launch);

  std::string name() const override { return "docker"; }
  // InvalidArgument without an image; everything else happens on the watcher thread.
  Result<ContainerRef> Start(const ContainerLaunch& launch) override;
  ContainerObservation Observe(ContainerRef& ref) override;
  // Sent as POST /containers/{id}/kill?signal=... (queued, see Release); a signal that arrives
  // while the container is still being created stops it from starting.
  void Signal(const ContainerRef& ref, int signal) override;
  // Finds the container by name; its logs are followed again from the time the pod's log files
  // were last written.
  bool Adopt(ContainerRef& ref, const ContainerLaunch& launch) override;
  // Stops watching and removes the container (force). Like Signal, done in order on the
  // runtime's engine thread, so that stopping many pods does not hold up the supervision loop
  // (podman takes 100-300 ms per call); a Start of the same name waits for it.
  void Release(const ContainerRef& ref) override;
  // POST /containers/{id}/exec, then /exec/{id}/start (bounded by timeout_ms), then the exit
  // code from /exec/{id}/json.
  ProbeOutcome Exec(const ContainerRef& ref, const ProcessSpec& base,
                    const std::vector<std::string>& command, int timeout_ms) override;
  // Removes containers labelled with this node whose names are not in `known` (nor watched).
  void RemoveOrphans(const std::set<std::string>& known) override;

 private:
  struct Watcher;
  void Run(Watcher& w, bool adopting, int64_t logs_since_ns);
  Status CreateAndStart(Watcher& w);
  Status EnsureImage(Watcher& w, std::string* reason);
  // With runAsNonRoot (or runAsGroup) and no runAsUser: reads the image's user; an error with
  // `reason` kCreateContainerConfigError when runAsNonRoot cannot hold.
  Status CheckUser(Watcher& w, std::string* reason);
  // Copies the container's output into the pod's log files until the stream ends or *cancel.
  void FollowLogs(Watcher& w, int64_t since_ns, const std::atomic<bool>* cancel);
  // Blocks until the container is not running; its exit as inspected, or nothing once released.
  std::optional<ContainerObservation> WaitForExit(Watcher& w);
  void Fail(Watcher& w, const std::string& reason, const std::string& message);
  std::shared_ptr<Watcher> Find(const std::string& id);
  struct EngineTask {
    std::string name;
    int signal = 0;  // 0: remove the container
    std::shared_ptr<Watcher> watcher;
  };
  void Queue(EngineTask task);
  void EngineLoop();

  DockerRuntimeOptions options_;
  DockerClient client_;
  std::mutex mu_;                                             // guards the fields below
  std::map<std::string, std::shared_ptr<Watcher>> watchers_;  // by container name
  std::deque<EngineTask> tasks_;                              // queued kills and removals, in order
  std::string task_running_;                                  // name of the task being run
  std::condition_variable tasks_cv_;
  bool stopping_ = false;
  std::thread engine_thread_;  // last: started once the fields above exist
};

}  // namespace ballast::nodeagent
