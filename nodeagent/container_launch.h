#pragma once

// What one container of a pod is started with (its ContainerLaunch: argv, environment in
// Kubernetes' order, ports, limits, log files, user) and what its probes see (ProbeContext),
// derived from the pod's state and the node. Pure: the executor (pods.h) does what touches the
// system (user database, directories, file owners, cgroups) around them.

#include <cstdint>
#include <string>

#include "agentapi/protocol.h"
#include "nodeagent/cgroups.h"
#include "nodeagent/confinement.h"
#include "nodeagent/pod_state.h"
#include "nodeagent/probes.h"
#include "nodeagent/runtime.h"

namespace ballast::nodeagent {

// The node's side of every launch.
struct LaunchNode {
  std::string node_name;
  std::string node_address;  // where pods' ports and probes bind
  std::string agent_path;    // PATH handed to process pods
  std::string pods_root;     // canonical work_dir/pods: marks pod processes (BALLAST_POD_DIR)
  std::string pull_policy;   // overrides every container's imagePullPolicy unless ""
  bool agent_is_root = false;
  uid_t agent_uid = 0;  // who the agent runs as: its pods too, when it is not root
  gid_t agent_gid = 0;
};

// The launch of container `c` of `pod`. Process pods run in the pod's work directory with the
// agent's PATH; image pods keep the image's PATH, HOME and working directory, and see their own
// container ports. The user and group are the container's runAsUser and runAsGroup, else the
// pod's (a process pod's only when the agent runs as root). The group of a process pod's user
// (runAsUser without runAsGroup) is the caller's to look up; the directories and cgroup files
// are the caller's to prepare.
ContainerLaunch BuildLaunch(const PodState& pod, const ContainerState& c, const LaunchNode& node);

// Why container `c` of `pod` may not start as it is configured (kubelet's
// CreateContainerConfigError): "" when it may. A configMap or secret volume it mounts whose
// object or `items` key is missing (and not optional), or whose subPath holds nothing, with
// kubelet's words. A container with runAsNonRoot whose user is root:
// runAsUser 0; on the process runtime also no runAsUser while the agent runs as root (an image
// runtime checks the image's user itself). On the process runtime, what it cannot honour:
// readOnlyRootFilesystem; and, when the agent does not run as root, a runAsUser or runAsGroup
// other than its own, capabilities.add and allowPrivilegeEscalation: true.
std::string ContainerConfigError(const PodState& pod, const ContainerState& c,
                                 const LaunchNode& node);

// The ConfigMap or Secret `kind`/`name` the reconciler sent with the pod; null when it did not
// (the object does not exist).
const agentapi::PodConfigSource* ConfigSource(const PodState& pod, const std::string& kind,
                                              const std::string& name);

// The pod's securityContext.fsGroup, when it is one (0 to 2^31-1): the group of its volumes and
// a supplementary group of its containers, as in Kubernetes.
std::optional<gid_t> FsGroup(const model::PodSpec& spec);

// Container `c`'s mounts of the pod's configMap and secret volumes (mounts of other types of
// volume are left out: ballast does not mount them), each with the host path it shows:
// node.pods_root/<pod dir>/volumes/<volume>[/<subPath>]. The docker runtime bind-mounts them
// (BuildLaunch), the process runtime links them below the pod's work directory.
std::vector<VolumeBind> ConfigVolumeMounts(const PodState& pod, const ContainerState& c,
                                           const LaunchNode& node);

// Where container `c`'s probes go. The caller sets `exec` for image pods (probes exec inside the
// container).
ProbeContext BuildProbeContext(const PodState& pod, const ContainerState& c,
                               const LaunchNode& node);

// pod_dir/logs/<container>.<stream>.log, stream "stdout" or "stderr".
std::string ContainerLogPath(const std::string& pod_dir, const std::string& container,
                             const char* stream);

// The pod's cgroup limits: the sum of its containers' memory and cpu limits, and the pod's pids
// limit (model::PodPidsLimit: `ballast.dev/pids-limit`, 4096 by default).
CgroupLimits PodLimits(const agentapi::DesiredPod& desired);

}  // namespace ballast::nodeagent
