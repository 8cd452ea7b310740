#pragma once

// A pod's own files under WORK_DIR/pods/<pod> (work_dir.h): its directory, its containers' log
// files and their rotation, its work directory (its user's), and their removal. The agent, as
// root, reaches them only through descriptors from the pods directory down, one component at a
// time, never following a symlink (localfs/safe_fs.h): a pod owns its work directory and may put
// anything there, and that must never turn into a chown, write or removal of a file elsewhere.
// The pod directory and logs/ are the agent's (a pod cannot write them); the log files are
// opened by the agent and inherited by the containers.
//
// Threading: none of its own; called from the supervision thread (PodManager).

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>

#include <vector>

#include "localfs/safe_fs.h"
#include "model/status.h"
#include "nodeagent/volume_files.h"

namespace ballast::nodeagent {

class PodFiles {
 public:
  // `pods_dir`: WORK_DIR/pods, created (0711) when missing and held open from here on.
  explicit PodFiles(std::string pods_dir);

  // pods_dir/<PodDirName(pod_id)> (pod_store.h).
  std::string DirOf(const std::string& pod_id) const;

  // Creates the pod's directory (0711) with logs/ (0750) and work/ (0700) when missing. A pod
  // directory or logs/ that is not the agent's alone (an older agent gave pods' directories to
  // their users), or is a symlink, is removed (never followed) and made again.
  Status Create(const std::string& pod_id) const;

  // What a container of the process runtime starts with.
  struct ContainerFiles {
    localfs::UniqueFd stdout_fd;  // its log files, open for appending (0640, the agent's)
    localfs::UniqueFd stderr_fd;
  };
  // Before a container of `pod_id` starts: Create(); work/ and the directories of
  // `working_dir` (relative to work/; created 0755 when missing) given to `uid`:`gid` (`gid`
  // defaults to `uid`) when `uid` is set, except a directory a third user owns; the log files
  // logs/`stdout_name` and logs/`stderr_name` opened. An error names the file and why: a symlink
  // anywhere on the way is never followed, and the container does not start.
  Result<ContainerFiles> PrepareContainer(const std::string& pod_id, const std::string& working_dir,
                                          const std::string& stdout_name,
                                          const std::string& stderr_name, std::optional<uid_t> uid,
                                          std::optional<gid_t> gid) const;

  // When logs/`name` of the pod holds more than `max_bytes`: copies it to logs/`name`.1 (a new
  // file renamed over the old copy) and truncates it; the container keeps appending through its
  // descriptor. A missing file is fine.
  Status RotateLog(const std::string& pod_id, const std::string& name, int64_t max_bytes) const;

  // DirOf(pod_id)/volumes/`name`: where the pod's configMap or secret volume `name` is.
  std::string VolumeDirOf(const std::string& pod_id, const std::string& name) const;

  // Makes VolumeDirOf(pod_id, name) hold `files` (WriteVolume, volume_files.h). volumes/ is the
  // agent's, 0711 when `traversable` (a process pod's user reaches its files through it), else
  // 0700 (a container reaches its volumes through bind mounts only).
  Status WriteVolume(const std::string& pod_id, const std::string& name,
                     const std::vector<VolumeFile>& files, const VolumeAccess& access,
                     bool traversable) const;

  // The process runtime's view of a mounted volume: LinkMount (volume_files.h) below the pod's
  // work directory.
  Status LinkMount(const std::string& pod_id, const std::string& mount_path,
                   const std::string& target, std::optional<uid_t> uid,
                   std::optional<gid_t> gid) const;

  // Removes the pod's directory and everything in it.
  Status Remove(const std::string& pod_id) const;

 private:
  struct Opened;
  Result<Opened> Open(const std::string& pod_id) const;

  std::string pods_dir_;
  Result<localfs::Dir> pods_;  // or why WORK_DIR/pods cannot be opened
};

}  // namespace ballast::nodeagent
