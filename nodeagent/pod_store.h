#pragma once

// The agent's record of each pod, WORK_DIR/state/pods/<pod>/pod.json (work_dir.h): what a
// restarted agent needs to adopt the pod's containers (pid and process start time, or container
// id) and to report the pod as before (restarts, last exit, readiness, ports, Service
// environment). The format is kept across agent versions, so that an upgraded agent adopts the
// pods an older one started. Records are written durably (localfs/durable_file.h): a crash
// leaves the old record or the new one, never a torn one. A record holds the pod's environment
// values (secrets): it is 0600 in directories 0700, and a record this process's user does not
// own, or that others may write, is never trusted (the agent runs what it says as root).
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

// The name of the pod's directories (WORK_DIR/pods/<name>, WORK_DIR/state/pods/<name>): the pod's
// id when it is at most 200 bytes of letters, digits, '.', '-' and '_'; else its first 183
// bytes (any other byte as '_'), '-' and 16 hex digits of a hash (FNV-1a, 64 bits) of the whole
// id. So a 253-character pod name, with the suffixes files get beside it, stays within NAME_MAX
// (255), and no id can name a path ("/", "..").
std::string PodDirName(std::string_view pod_id);

// pod.json's text, and back. Decoding never throws: a malformed record is an InvalidArgument
// naming what is wrong.
std::string EncodePodRecord(const PodRecord& record);
Result<PodRecord> DecodePodRecord(std::string_view text);

class PodStore {
 public:
  // Records are in `records_dir` (WORK_DIR/state/pods), each in a directory of its own.
  explicit PodStore(std::string records_dir);

  // records_dir/<PodDirName(pod_id)>/pod.json
  std::string RecordPath(const std::string& pod_id) const;

  // Replaces the pod's record durably (0600; its directories are created 0700 when missing). On
  // error the previous record is untouched; the error names the file and the step that failed.
  Status Save(const PodState& pod) const;

  struct Entry {
    std::string path;          // the record's file
    Result<PodRecord> record;  // or why it cannot be read, or is not trusted
  };
  // The record of every pod directory, in no particular order. A record that is a symlink, is
  // not this process's user's or is writable by its group or others is PermissionDenied or
  // FailedPrecondition, naming the owner and mode found.
  std::vector<Entry> LoadAll() const;

  // Removes the pod's record durably (a crash after this never brings the pod back), then its
  // directory. The pod's own files (pod_files.h) are not the store's.
  Status Remove(const std::string& pod_id) const;

 private:
  std::string records_dir_;
};

}  // namespace ballast::nodeagent
