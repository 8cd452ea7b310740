#pragma once

// What the process runtime applies to a container's processes between fork and exec, so that a
// process pod is held as a container engine holds a container with Docker's defaults:
//   - capabilities (libcap): the bounding set is Docker's default set with the container's
//     `drop` and `add` applied; a container that runs as root holds that set, one that runs as
//     another user holds only the capabilities it adds (raised as ambient capabilities, so that
//     they survive exec);
//   - no_new_privs (PR_SET_NO_NEW_PRIVS) unless allowPrivilegeEscalation is true: setuid
//     programs and file capabilities then grant nothing;
//   - a seccomp filter (libseccomp) that answers EPERM to the system calls Docker's default
//     profile does not allow (kexec, kernel modules, mount, new namespaces, keyrings, bpf,
//     io_uring, ...), those Docker allows with a capability only when the container keeps it.
// The filter is compiled before fork (libseccomp allocates); the child makes system calls only.

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "model/status.h"

namespace ballast::nodeagent {

// Bit n stands for capability n (CAP_CHOWN is 0).
using CapabilityMask = uint64_t;

// Docker's default capabilities: CHOWN, DAC_OVERRIDE, FOWNER, FSETID, KILL, SETGID, SETUID,
// SETPCAP, NET_BIND_SERVICE, NET_RAW, SYS_CHROOT, MKNOD, AUDIT_WRITE, SETFCAP (0xa80425fb).
inline constexpr CapabilityMask kDefaultCapabilities = 0xa80425fbULL;

struct Confinement {
  CapabilityMask bounding = kDefaultCapabilities;  // kept in the bounding set
  CapabilityMask capabilities = 0;  // held after exec: permitted and effective (a subset of
                                    // `bounding`)
  bool ambient = false;             // raised as ambient capabilities (a user other than root)
  bool no_new_privs = true;
  friend bool operator==(const Confinement&, const Confinement&) = default;
};

// The confinement of a container. `add` and `drop` are canonical names ("CAP_NET_RAW", "ALL":
// model::CanonicalCapability), applied to Docker's default set as containerd applies them: "ALL"
// in `add`, then "ALL" in `drop`, then each added name, then each dropped one (a name both added
// and dropped is dropped; validation refuses that). `runs_as_root`: the process runs as uid 0.
// Pure.
Confinement ContainerConfinement(const std::vector<std::string>& add,
                                 const std::vector<std::string>& drop,
                                 bool allow_privilege_escalation, bool runs_as_root);

// A Confinement made ready for one child: the seccomp filter compiled for the capabilities the
// container keeps, the capability state built. Prepared in the parent before fork; applied in the
// child, whose calls below make system calls only (async-signal-safe).
class PreparedConfinement {
 public:
  // Internal when libseccomp or libcap fail.
  static Result<std::unique_ptr<PreparedConfinement>> Prepare(const Confinement& confinement);
  ~PreparedConfinement();
  PreparedConfinement(const PreparedConfinement&) = delete;
  PreparedConfinement& operator=(const PreparedConfinement&) = delete;

  // In the child, around its change of user (setgroups, setgid, setuid), in this order. Each
  // returns 0, or the errno of the step that failed.
  // Before: drops what the bounding set does not keep (when this process may: CAP_SETPCAP),
  // keeps capabilities across setuid when ambient ones are to be raised, and loads the seccomp
  // filter now when no_new_privs is not to be set (loading it then needs CAP_SYS_ADMIN, which
  // only the user before the change has).
  int BeforeUserChange() const;
  // After: sets the capability sets, raises the ambient ones, sets no_new_privs and loads the
  // seccomp filter (unless already loaded).
  int AfterUserChange() const;

 private:
  PreparedConfinement() = default;

  Confinement confinement_;
  bool may_drop_bounding_ = false;     // this process holds CAP_SETPCAP
  int last_capability_ = 0;            // the kernel's highest capability number
  void* capabilities_ = nullptr;       // cap_t: the sets AfterUserChange installs
  std::vector<unsigned char> filter_;  // struct sock_filter[], as seccomp_export_bpf writes it
};

}  // namespace ballast::nodeagent
