#pragma once

// The agent's record of each pod, WORK_DIR/pods/<namespace>_<name>/pod.json: what a restarted
// agent needs to adopt the pod's containers (pid and process start time, or container id) and
// to report the pod as before (restarts, last exit, readiness, ports, Service environment).
// The format is kept across agent versions, so that an upgraded agent adopts the pods an older
// one started. Records are written durably (localfs/durable_file.h): a crash leaves the old
// record or the new one, never a torn one.
//
// The codec (RecordOf, ApplyRecord, Encode/DecodePodRecord) is pure; PodStore does the file
// system. Threading: none of its own; callers serialise access to one pod's record.

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "agentapi/protocol.h"
#include "model/object.h"
#include "model/status.h"
#include "nodeagent/pod_state.h"
#include "nodeagent/runtime.h"

namespace ballast::nodeagent {

struct ContainerRecord {
  std::string name;
  ContainerRef ref;  // pid and startTicks (process runtime), containerId (docker)
  int32_t restarts = 0;
  int32_t last_exit_code = 0;
  std::string last_reason;
  bool started = true;  // startup probe passed (absent in a record: true)
  bool ready = false;
  bool ran_before = false;
  int64_t started_wall_ms = 0;
  friend bool operator==(const ContainerRecord&, const ContainerRecord&) = default;
};

struct PodRecord {
  agentapi::DesiredPod desired;
  std::string runtime = "process";
  std::map<std::string, int32_t> host_ports;
  std::map<int32_t, int32_t> ports_by_number;
  model::StringMap service_env;
  int64_t created_wall_ms = 0;
  bool cgroup = false;
  bool terminating = false;
  std::vector<ContainerRecord> containers;
  friend bool operator==(const PodRecord&, const PodRecord&) = default;

  // The first record of the container called `name`; null when there is none.
  const ContainerRecord* container(const std::string& name) const;
};

// What is recorded of `pod`.
PodRecord RecordOf(const PodState& pod);

// Puts what `record` says into `pod`, a pod made by PodLifecycle::NewPod from the record's
// desired pod and runtime: ports, Service environment, creation time, cgroup, terminating, and
// for each recorded container its restarts, last exit and the readiness of its last run. The
// containers' refs stay for the caller to adopt (PodLifecycle::OnAdopted / OnLost).
void ApplyRecord(const PodRecord& record, PodState& pod);

// pod.json's text, and back. Decoding never throws: a malformed record is an InvalidArgument
// naming what is wrong.
std::string EncodePodRecord(const PodRecord& record);
Result<PodRecord> DecodePodRecord(std::string_view text);

class PodStore {
 public:
  // Pods' directories are in `pods_dir` (work_dir/pods).
  explicit PodStore(std::string pods_dir);

  // Replaces the pod's record (in pod.dir) durably. On error the previous record is untouched;
  // the error names the file and the step that failed.
  Status Save(const PodState& pod) const;

  struct Entry {
    std::string dir;           // the pod's directory
    Result<PodRecord> record;  // or why it cannot be read
  };
  // The record of every pod directory, in no particular order.
  std::vector<Entry> LoadAll() const;

  // Removes the pod's record durably (a crash after this never brings the pod back), then its
  // directory with its logs.
  Status Remove(const std::string& pod_dir) const;

 private:
  std::string pods_dir_;
};

}  // namespace ballast::nodeagent
