// What a container's securityContext and its pod's pids limit turn into on a node, without
// processes: the user and group it runs as (the container's over the pod's), the capability sets
// and no_new_privs the process runtime applies, what the docker runtime is given, and the
// containers refused before they start (CreateContainerConfigError).

#include <gtest/gtest.h>

#include "nodeagent/container_launch.h"
#include "nodeagent/process_runtime.h"

namespace ballast::nodeagent {
namespace {

PodState Pod(const std::string& runtime, model::SecurityContext container_sc = {},
             model::PodSecurityContext pod_sc = {}) {
  model::Container c;
  c.name = "app";
  c.command = {"/bin/app"};
  c.security_context = std::move(container_sc);
  PodState pod;
  pod.id = "default_web-1";
  pod.runtime = runtime;
  pod.dir = "/work/pods/default_web-1";
  pod.desired.name = "web-1";
  pod.desired.template_.spec.containers = {c};
  pod.desired.template_.spec.security_context = std::move(pod_sc);
  ContainerState cs;
  cs.spec = c;
  pod.containers = {cs};
  return pod;
}

LaunchNode Node(bool root) {
  LaunchNode n;
  n.node_name = "n1";
  n.agent_is_root = root;
  n.agent_uid = root ? 0 : 1000;
  n.agent_gid = root ? 0 : 1000;
  return n;
}

model::SecurityContext Caps(std::vector<std::string> add, std::vector<std::string> drop) {
  model::SecurityContext sc;
  sc.capabilities = model::Capabilities{std::move(add), std::move(drop)};
  return sc;
}

constexpr CapabilityMask kNetBindService = CapabilityMask{1} << 10;
constexpr CapabilityMask kNetRaw = CapabilityMask{1} << 13;

TEST(SecurityContextTest, TheContainersUserAndGroupOverrideThePods) {
  model::PodSecurityContext pod_sc;
  pod_sc.run_as_user = 1000;
  pod_sc.run_as_group = 1000;
  model::SecurityContext sc;
  sc.run_as_user = 2000;
  PodState pod = Pod("process", sc, pod_sc);
  ContainerLaunch l = BuildLaunch(pod, pod.containers[0], Node(true));
  EXPECT_EQ(l.uid, uid_t{2000});
  EXPECT_EQ(l.gid, gid_t{1000});
  // Without root the agent cannot switch users: a process pod runs as the agent (an image pod
  // still names its user to the engine).
  EXPECT_FALSE(BuildLaunch(pod, pod.containers[0], Node(false)).uid.has_value());
  PodState image = Pod("docker", sc, pod_sc);
  EXPECT_EQ(BuildLaunch(image, image.containers[0], Node(false)).uid, uid_t{2000});
}

TEST(SecurityContextTest, ThePidsLimitIsThePodsAnnotationOr4096) {
  PodState pod = Pod("process");
  EXPECT_EQ(PodLimits(pod.desired).pids, 4096);
  EXPECT_EQ(BuildLaunch(pod, pod.containers[0], Node(true)).pids_limit, 4096);
  pod.desired.template_.annotations["ballast.dev/pids-limit"] = "64";
  EXPECT_EQ(PodLimits(pod.desired).pids, 64);
  EXPECT_EQ(BuildLaunch(pod, pod.containers[0], Node(true)).pids_limit, 64);
  pod.desired.template_.annotations["ballast.dev/pids-limit"] = "lots";  // validation refuses it
  EXPECT_EQ(PodLimits(pod.desired).pids, 4096);
}

TEST(SecurityContextTest, ProcessPodsGetDockersDefaultCapabilitiesAndNoNewPrivileges) {
  PodState pod = Pod("process");
  ContainerLaunch l = BuildLaunch(pod, pod.containers[0], Node(true));
  EXPECT_TRUE(l.no_new_privileges);
  // As root (no runAsUser, the agent is root): Docker's default set, held and bounding.
  Confinement root = ProcessConfinement(l, /*agent_is_root=*/true);
  EXPECT_EQ(root.bounding, 0xa80425fbULL);
  EXPECT_EQ(root.capabilities, 0xa80425fbULL);
  EXPECT_FALSE(root.ambient);
  EXPECT_TRUE(root.no_new_privs);
  // As another user: the same bounding set, no capability held.
  l.uid = 1000;
  Confinement user = ProcessConfinement(l, true);
  EXPECT_EQ(user.bounding, 0xa80425fbULL);
  EXPECT_EQ(user.capabilities, 0u);
  EXPECT_FALSE(user.ambient);
}

TEST(SecurityContextTest, CapabilitiesAreDroppedAndAddedAsContainerdDoes) {
  // Names as manifests write them (sock-shop: `drop: [all]`).
  PodState pod = Pod("process", Caps({"NET_BIND_SERVICE"}, {"all"}));
  ContainerLaunch l = BuildLaunch(pod, pod.containers[0], Node(true));
  EXPECT_EQ(l.cap_add, std::vector<std::string>{"CAP_NET_BIND_SERVICE"});
  EXPECT_EQ(l.cap_drop, std::vector<std::string>{"ALL"});
  l.uid = 10001;
  Confinement user = ProcessConfinement(l, true);
  EXPECT_EQ(user.bounding, kNetBindService);
  EXPECT_EQ(user.capabilities, kNetBindService);  // raised as an ambient capability
  EXPECT_TRUE(user.ambient);

  Confinement no_raw = ContainerConfinement({}, {"CAP_NET_RAW"}, false, true);
  EXPECT_EQ(no_raw.bounding, 0xa80425fbULL & ~kNetRaw);
  EXPECT_EQ(no_raw.capabilities, no_raw.bounding);
  Confinement all = ContainerConfinement({"ALL"}, {"CAP_NET_RAW"}, false, true);
  EXPECT_EQ(all.bounding, ((CapabilityMask{1} << 41) - 1) & ~kNetRaw);
  Confinement none = ContainerConfinement({}, {"ALL"}, false, true);
  EXPECT_EQ(none.bounding, 0u);
  EXPECT_EQ(none.capabilities, 0u);
  EXPECT_FALSE(
      ContainerConfinement({}, {}, /*allow_privilege_escalation=*/true, true).no_new_privs);
}

TEST(SecurityContextTest, RunAsNonRootRefusesAContainerThatWouldRunAsRoot) {
  model::SecurityContext sc;
  sc.run_as_non_root = true;
  PodState pod = Pod("process", sc);
  // No runAsUser and a root agent: it would run as root.
  std::string why = ContainerConfigError(pod, pod.containers[0], Node(true));
  EXPECT_NE(why.find("container has runAsNonRoot and will run as root"), std::string::npos) << why;
  EXPECT_NE(why.find("(pod: \"default/web-1\", container: app)"), std::string::npos) << why;
  // An agent that is not root runs it as its own user, which is not root.
  EXPECT_EQ(ContainerConfigError(pod, pod.containers[0], Node(false)), "");
  // The pod's runAsUser is enough; the container's runAsUser 0 is not.
  model::PodSecurityContext pod_sc;
  pod_sc.run_as_user = 1000;
  PodState with_user = Pod("process", sc, pod_sc);
  EXPECT_EQ(ContainerConfigError(with_user, with_user.containers[0], Node(true)), "");
  sc.run_as_user = 0;
  PodState as_root = Pod("docker", sc, pod_sc);
  EXPECT_NE(ContainerConfigError(as_root, as_root.containers[0], Node(true))
                .find("container's runAsUser breaks non-root policy"),
            std::string::npos);
  // An image pod without runAsUser: the docker runtime checks the image's user.
  model::SecurityContext image_sc;
  image_sc.run_as_non_root = true;
  PodState image = Pod("docker", image_sc);
  EXPECT_EQ(ContainerConfigError(image, image.containers[0], Node(true)), "");
  EXPECT_TRUE(BuildLaunch(image, image.containers[0], Node(true)).run_as_non_root);
}

TEST(SecurityContextTest, WhatTheProcessRuntimeCannotHonourIsRefused) {
  model::SecurityContext read_only;
  read_only.read_only_root_filesystem = true;
  PodState process = Pod("process", read_only);
  EXPECT_NE(ContainerConfigError(process, process.containers[0], Node(true))
                .find("readOnlyRootFilesystem cannot be honoured by the process runtime"),
            std::string::npos);
  PodState image = Pod("docker", read_only);
  EXPECT_EQ(ContainerConfigError(image, image.containers[0], Node(true)), "");
  EXPECT_TRUE(BuildLaunch(image, image.containers[0], Node(true)).read_only_root_filesystem);

  // An agent that is not root runs its pods as itself: another user or group is refused.
  model::SecurityContext other_user;
  other_user.run_as_user = 2000;
  PodState user = Pod("process", other_user);
  EXPECT_EQ(ContainerConfigError(user, user.containers[0], Node(true)), "");
  EXPECT_NE(
      ContainerConfigError(user, user.containers[0], Node(false))
          .find("runAsUser and runAsGroup cannot be honoured: the agent does not run as root, "
                "so its pods run as its own user 1000 and group 1000"),
      std::string::npos);
  other_user.run_as_user = 1000;  // its own
  PodState own = Pod("process", other_user);
  EXPECT_EQ(ContainerConfigError(own, own.containers[0], Node(false)), "");
  model::SecurityContext other_group;
  other_group.run_as_group = 5;
  PodState group = Pod("process", other_group);
  EXPECT_NE(ContainerConfigError(group, group.containers[0], Node(false)), "");
  PodState in_image = Pod("docker", other_user);  // the engine switches users, not the agent
  EXPECT_EQ(ContainerConfigError(in_image, in_image.containers[0], Node(false)), "");

  // An agent that is not root has no capabilities to give, and needs no_new_privs for seccomp.
  PodState add = Pod("process", Caps({"NET_ADMIN"}, {}));
  EXPECT_EQ(ContainerConfigError(add, add.containers[0], Node(true)), "");
  EXPECT_NE(ContainerConfigError(add, add.containers[0], Node(false)).find("capabilities.add"),
            std::string::npos);
  model::SecurityContext escalate;
  escalate.allow_privilege_escalation = true;
  PodState esc = Pod("process", escalate);
  EXPECT_EQ(ContainerConfigError(esc, esc.containers[0], Node(true)), "");
  EXPECT_FALSE(BuildLaunch(esc, esc.containers[0], Node(true)).no_new_privileges);
  EXPECT_NE(ContainerConfigError(esc, esc.containers[0], Node(false))
                .find("allowPrivilegeEscalation: true cannot be honoured"),
            std::string::npos);
}

}  // namespace
}  // namespace ballast::nodeagent
