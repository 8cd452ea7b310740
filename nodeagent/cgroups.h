#pragma once

// Resource limits for pods through cgroups: v2 (memory.max, cpu.max, pids.max) or, on v1 hosts,
// the memory, cpu and pids hierarchies. Where nothing is writable the agent runs pods
// unconfined and reports limits as not enforced. Groups live under ballast/<agent name>/<pod>.

#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "model/status.h"

namespace ballast::nodeagent {

struct CgroupLimits {
  int64_t memory_bytes = 0;  // 0: unlimited
  int64_t cpu_millis = 0;    // 0: unlimited; 500 = half a CPU
  int64_t pids = 0;          // 0: unlimited
};

class Cgroups {
 public:
  enum class Mode { kNone, kV1, kV2 };

  // Probes `root` (normally /sys/fs/cgroup) and creates ballast/<agent_name> where it can.
  static std::unique_ptr<Cgroups> Detect(const std::string& agent_name,
                                         const std::string& root = "/sys/fs/cgroup");

  Mode mode() const { return mode_; }
  bool enforced() const { return mode_ != Mode::kNone; }
  // "cgroup v2", "cgroup v1 (memory, cpu, pids)" or the reason limits are not enforced.
  const std::string& description() const { return description_; }

  // Creates the pod's group(s) and writes the limits. Returns the cgroup.procs files a new
  // process must join. Empty when not enforced.
  Result<std::vector<std::string>> Create(const std::string& pod_id, const CgroupLimits& limits);
  // OOM kills recorded for the pod's memory group so far.
  int64_t OomKills(const std::string& pod_id) const;
  // The pids in the pod's group(s).
  std::vector<pid_t> Pids(const std::string& pod_id) const;
  // SIGKILLs every process in the pod's group(s).
  void KillAll(const std::string& pod_id) const;
  // Removes the pod's group(s), which must hold no process, waiting up to 1 s for processes that
  // were just killed (KillAll) to leave them.
  void Remove(const std::string& pod_id) const;

 private:
  std::vector<std::string> Dirs(const std::string& pod_id) const;  // one per hierarchy

  Mode mode_ = Mode::kNone;
  std::string description_;
  std::vector<std::string> bases_;  // v2: one; v1: memory, cpu, pids (those writable)
  std::string memory_base_;
};

}  // namespace ballast::nodeagent
