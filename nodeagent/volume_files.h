#pragma once

// A configMap or secret volume on disk, written as kubelet's atomic writer does, so that a
// process reading it never sees half of an update:
//
//   volumes/<volume>/..<digest>/        the files (subdirectories for paths with '/')
//   volumes/<volume>/..data -> ..<digest>
//   volumes/<volume>/<top> -> ..data/<top>   one link per first path component
//
// An update writes a new ..<digest> directory beside the old one, then renames a new symlink
// over ..data (one atomic step: a reader sees the old files or the new ones), then removes the
// user-visible links that went away and the old directory. The digest covers every path, mode,
// value and the group, so writing what is already there does nothing.
//
// The volumes directory is the agent's (a pod cannot write it); a pod's view of a volume goes
// through LinkMount, which makes a symlink below the pod's work directory (which the pod owns)
// through descriptors that never follow a symlink (localfs/safe_fs.h).
//
// Threading: none of its own; called from the supervision thread (PodManager).

#include <sys/types.h>

#include <optional>
#include <string>
#include <vector>

#include "localfs/safe_fs.h"
#include "model/status.h"
#include "nodeagent/config_volumes.h"

namespace ballast::nodeagent {

// Who may read a volume: the directories get `dir_mode` (and the files their own modes), owned
// by the agent's user and by `group` when set.
struct VolumeAccess {
  mode_t dir_mode = 0750;
  std::optional<gid_t> group;
  bool group_reads = false;  // files get group read whatever their mode (an fsGroup's)
  // Keys the digest that names the data directories (volume_files.cc), so that a name, which
  // error messages may show, tells nothing about a secret's value. Any secret of the agent's.
  std::string digest_key;
};

// Makes volumes/`name` hold exactly `files` (see above). `volumes`: the pod's volumes
// directory. An error names the file and leaves the previous contents in place.
Status WriteVolume(const localfs::Dir& volumes, const std::string& name,
                   const std::vector<VolumeFile>& files, const VolumeAccess& access);

// The process runtime's mount: `mount_path` (absolute or not) is taken below `work`, the pod's
// work directory, as the container's root: its missing directories are made (0755, given to
// `uid`:`gid` when `uid` is set, as the working directory is) and its last component becomes a
// symlink to `target`. A symlink already there is replaced; anything else (a file or directory
// the pod made) is an error naming it, and nothing is replaced. A symlink on the way is never
// followed.
Status LinkMount(const localfs::Dir& work, const std::string& mount_path, const std::string& target,
                 std::optional<uid_t> uid, std::optional<gid_t> gid);

}  // namespace ballast::nodeagent
