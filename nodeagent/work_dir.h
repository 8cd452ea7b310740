#pragma once

// The agent's work directory: where it is unless --work-dir says, what is in it, who may own
// what. Two trees, one the agent's alone and one its pods can write:
//
//   WORK_DIR/                           the agent's user's, created 0700; search permission (x,
//                                       never w) is added for others once a pod runs as
//                                       another user, so that the pod reaches its directory
//   WORK_DIR/ballast.lock               one agent per directory (cli/dir_lock.h)
//   WORK_DIR/state/                     the agent's alone, 0700: what it runs as root
//   WORK_DIR/state/pods/<pod>/pod.json  each pod's record (pod_store.h), 0600 under 0700
//   WORK_DIR/pods/                      the agent's, 0711
//   WORK_DIR/pods/<pod>/                the agent's, 0711 (<pod>: PodDirName, pod_store.h)
//   WORK_DIR/pods/<pod>/logs/           the agent's, 0750: containers' stdout and stderr (0640)
//   WORK_DIR/pods/<pod>/work/           the pod's user's: its HOME and working directory
//
// Whoever can write the state tree chooses what the agent runs, as root: the agent refuses to
// start when WORK_DIR or anything under state/ is not owned by its own user or is writable by
// group or others. Nothing under pods/<pod>/work is trusted; the agent touches it only through
// descriptors that never follow a symlink (pod_files.h).

#include <sys/types.h>

#include <string>

#include "model/status.h"

namespace ballast::nodeagent {

// WORK_DIR/state/pods: the pods' records.
std::string RecordsDir(const std::string& work_dir);
// WORK_DIR/pods: the pods' own files.
std::string PodsDir(const std::string& work_dir);

// Where the agent of node `node_name` keeps its state unless told: /var/lib/ballast/agent/NAME
// for root (`euid` 0); for any other user $XDG_STATE_HOME/ballast/agent/NAME
// (`xdg_state_home`, when absolute), else $HOME/.local/state/ballast/agent/NAME (`home`), never
// a shared, predictable place such as /tmp. InvalidArgument when the node name cannot be a
// directory name ("", ".", "..", a '/') or there is no home to put it in.
Result<std::string> DefaultWorkDir(const std::string& node_name, uid_t euid,
                                   const char* xdg_state_home, const char* home);

// Creates `dir` when it is missing (0700; missing parents 0755) and checks it: a directory, not
// a symlink, owned by this process's user and not writable by group or others. The error
// (PermissionDenied or FailedPrecondition) names the path, the owner and the mode found.
Status CreateWorkDir(const std::string& dir);

// CreateWorkDir, then the trees inside: state/ and state/pods (0700) and pods/ (0711) are
// created when missing; the records an older agent kept as pods/<pod>/pod.json move to
// state/pods/<pod>/ when they and their directory are this user's and not writable by others,
// else the error names the record (the pod may have written it). Then every directory and file
// under state/, and ballast.lock, is checked as CreateWorkDir checks `dir` (a symlink there is
// refused too), and loses any group and other permissions (pod.json 0600, directories 0700).
// REQUIRES: the caller holds the directory's lock (cli/dir_lock.h), or no other agent uses it.
Status PrepareWorkDir(const std::string& dir);

// Adds search permission for group and others to `dir` (WORK_DIR) when it lacks it, so that a
// pod running as another user reaches WORK_DIR/pods/<pod>/work. Never adds read or write.
Status AllowTraversal(const std::string& dir);

}  // namespace ballast::nodeagent
