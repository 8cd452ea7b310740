#include "nodeagent/confinement.h"

#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sched.h>
#include <seccomp.h>
#include <sys/capability.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "model/object.h"

namespace ballast::nodeagent {
namespace {

constexpr CapabilityMask Bit(int capability) { return CapabilityMask{1} << capability; }

CapabilityMask AllCapabilities() {
  const size_t n = model::CapabilityNames().size();
  return n >= 64 ? ~CapabilityMask{0} : Bit(static_cast<int>(n)) - 1;
}

CapabilityMask MaskOf(const std::string& canonical_name) {
  const auto& names = model::CapabilityNames();
  for (size_t i = 0; i < names.size() && i < 64; ++i) {
    if (names[i] == canonical_name) return Bit(static_cast<int>(i));
  }
  return 0;
}

// A system call the filter answers with `error` unless the container keeps one of the
// capabilities that Docker's default profile (moby/profiles seccomp/default.json) allows it
// with. Our own list: the calls that profile does not allow, as a deny list (calls the kernel
// adds later are allowed, where Docker's allow list refuses them).
struct DeniedCall {
  const char* name;
  int allowed_with = -1;       // a capability that allows it; -1: none does
  int also_allowed_with = -1;  // a second one
  int error = EPERM;
};

constexpr DeniedCall kDeniedCalls[] = {
    // Never allowed: kernel replacement and modules' old interface, keyrings (not namespaced),
    // swap, io_uring (bypasses this filter), userfaultfd (exploit primitive), pivot_root,
    // obsolete and unimplemented calls.
    {"_sysctl"},
    {"add_key"},
    {"afs_syscall"},
    {"bdflush"},
    {"create_module"},
    {"get_kernel_syms"},
    {"getpmsg"},
    {"idle"},
    {"io_uring_enter"},
    {"io_uring_register"},
    {"io_uring_setup"},
    {"kexec_file_load"},
    {"kexec_load"},
    {"keyctl"},
    {"migrate_pages"},
    {"move_pages"},
    {"nfsservctl"},
    {"pivot_root"},
    {"putpmsg"},
    {"query_module"},
    {"request_key"},
    {"security"},
    {"swapoff"},
    {"swapon"},
    {"sysfs"},
    {"tuxcall"},
    {"uselib"},
    {"userfaultfd"},
    {"ustat"},
    {"vm86"},
    {"vm86old"},
    {"vserver"},
    // Allowed with a capability the container keeps.
    {"acct", CAP_SYS_PACCT},
    {"bpf", CAP_SYS_ADMIN, CAP_BPF},
    {"chroot", CAP_SYS_CHROOT},
    {"clock_settime", CAP_SYS_TIME},
    {"clock_settime64", CAP_SYS_TIME},
    {"settimeofday", CAP_SYS_TIME},
    {"stime", CAP_SYS_TIME},
    // glibc falls back to clone, whose namespace flags the rules below check.
    {"clone3", CAP_SYS_ADMIN, -1, ENOSYS},
    {"delete_module", CAP_SYS_MODULE},
    {"finit_module", CAP_SYS_MODULE},
    {"init_module", CAP_SYS_MODULE},
    {"fanotify_init", CAP_SYS_ADMIN},
    {"fsconfig", CAP_SYS_ADMIN},
    {"fsmount", CAP_SYS_ADMIN},
    {"fsopen", CAP_SYS_ADMIN},
    {"fspick", CAP_SYS_ADMIN},
    {"lookup_dcookie", CAP_SYS_ADMIN},
    {"mount", CAP_SYS_ADMIN},
    {"mount_setattr", CAP_SYS_ADMIN},
    {"move_mount", CAP_SYS_ADMIN},
    {"open_tree", CAP_SYS_ADMIN},
    {"quotactl", CAP_SYS_ADMIN},
    {"quotactl_fd", CAP_SYS_ADMIN},
    {"setdomainname", CAP_SYS_ADMIN},
    {"sethostname", CAP_SYS_ADMIN},
    {"setns", CAP_SYS_ADMIN},
    {"umount", CAP_SYS_ADMIN},
    {"umount2", CAP_SYS_ADMIN},
    {"unshare", CAP_SYS_ADMIN},
    {"perf_event_open", CAP_SYS_ADMIN, CAP_PERFMON},
    {"syslog", CAP_SYS_ADMIN, CAP_SYSLOG},
    {"get_mempolicy", CAP_SYS_NICE},
    {"mbind", CAP_SYS_NICE},
    {"set_mempolicy", CAP_SYS_NICE},
    {"set_mempolicy_home_node", CAP_SYS_NICE},
    {"iopl", CAP_SYS_RAWIO},
    {"ioperm", CAP_SYS_RAWIO},
    {"kcmp", CAP_SYS_PTRACE},
    {"pidfd_getfd", CAP_SYS_PTRACE},
    {"process_madvise", CAP_SYS_PTRACE},
    {"open_by_handle_at", CAP_DAC_READ_SEARCH},
    {"reboot", CAP_SYS_BOOT},
    {"vhangup", CAP_SYS_TTY_CONFIG},
    // Not filtered, as in Docker's profile on kernels since 4.8: ptrace, process_vm_readv and
    // process_vm_writev. Not filtered unlike Docker's: personality (its allowed values cannot be
    // written as a deny rule with libseccomp 2.5, one comparison per argument), and the i386
    // entry points that duplicate allowed calls (signal, sigaction, readdir, olduname, nice).
};

// clone's flags that make new namespaces: refused without CAP_SYS_ADMIN, as by Docker.
constexpr uint64_t kNamespaceFlags[] = {CLONE_NEWNS,   CLONE_NEWCGROUP, CLONE_NEWUTS, CLONE_NEWIPC,
                                        CLONE_NEWUSER, CLONE_NEWPID,    CLONE_NEWNET};
// Socket families Docker refuses: AF_ALG (38) and AF_VSOCK (40).
constexpr uint64_t kDeniedSocketFamilies[] = {38, 40};

struct FilterContext {
  scmp_filter_ctx ctx = nullptr;
  ~FilterContext() {
    if (ctx != nullptr) seccomp_release(ctx);
  }
};

Status SeccompError(const char* what, int rc) {
  return Internal(std::string("seccomp: ") + what + ": " + std::strerror(-rc));
}

// The filter's program for a container that keeps `kept` capabilities, for this architecture and
// its 32-bit compatibility ones (as Docker lists them).
Result<std::vector<unsigned char>> CompileFilter(CapabilityMask kept) {
  FilterContext f;
  f.ctx = seccomp_init(SCMP_ACT_ALLOW);
  if (f.ctx == nullptr) return Internal("seccomp: seccomp_init failed");
  const uint32_t native = seccomp_arch_native();
  std::vector<uint32_t> compat;
  if (native == SCMP_ARCH_X86_64) compat = {SCMP_ARCH_X86, SCMP_ARCH_X32};
  if (native == SCMP_ARCH_AARCH64) compat = {SCMP_ARCH_ARM};
  for (uint32_t arch : compat) {
    int rc = seccomp_arch_add(f.ctx, arch);
    if (rc != 0 && rc != -EEXIST) return SeccompError("add architecture", rc);
  }
  auto keeps = [&](int capability) { return capability >= 0 && (kept & Bit(capability)) != 0; };
  for (const DeniedCall& call : kDeniedCalls) {
    if (keeps(call.allowed_with) || keeps(call.also_allowed_with)) continue;
    const int nr = seccomp_syscall_resolve_name(call.name);
    if (nr == __NR_SCMP_ERROR) continue;  // not a call of these architectures
    int rc = seccomp_rule_add(f.ctx, SCMP_ACT_ERRNO(call.error), nr, 0);
    if (rc != 0) return SeccompError(call.name, rc);
  }
  if (!keeps(CAP_SYS_ADMIN)) {
    const bool s390 = native == SCMP_ARCH_S390 || native == SCMP_ARCH_S390X;
    const unsigned flags_arg = s390 ? 1 : 0;  // s390's clone takes the flags second
    for (uint64_t flag : kNamespaceFlags) {
      int rc = seccomp_rule_add(f.ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(clone), 1,
                                SCMP_CMP(flags_arg, SCMP_CMP_MASKED_EQ, flag, flag));
      if (rc != 0) return SeccompError("clone", rc);
    }
  }
  for (uint64_t family : kDeniedSocketFamilies) {
    // datum_b given (unused by SCMP_CMP_EQ): clang warns of a missing field initializer.
    int rc = seccomp_rule_add(f.ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(socket), 1,
                              SCMP_A0(SCMP_CMP_EQ, family, 0));
    if (rc != 0) return SeccompError("socket", rc);
  }
  // libseccomp 2.5 exports to a descriptor only: a memory file, read back.
  int fd = ::memfd_create("ballast-seccomp", MFD_CLOEXEC);
  if (fd < 0) return Internal(std::string("memfd_create: ") + std::strerror(errno));
  std::vector<unsigned char> program;
  int rc = seccomp_export_bpf(f.ctx, fd);
  if (rc == 0 && ::lseek(fd, 0, SEEK_SET) == 0) {
    unsigned char buf[4096];
    ssize_t n;
    while ((n = ::read(fd, buf, sizeof buf)) > 0) program.insert(program.end(), buf, buf + n);
  }
  ::close(fd);
  if (rc != 0) return SeccompError("export", rc);
  if (program.empty() || program.size() % sizeof(sock_filter) != 0) {
    return Internal("seccomp: the exported filter is not a BPF program");
  }
  return program;
}

}  // namespace

Confinement ContainerConfinement(const std::vector<std::string>& add,
                                 const std::vector<std::string>& drop,
                                 bool allow_privilege_escalation, bool runs_as_root) {
  auto has_all = [](const std::vector<std::string>& names) {
    for (const auto& n : names) {
      if (n == "ALL") return true;
    }
    return false;
  };
  CapabilityMask set = kDefaultCapabilities;
  CapabilityMask added = 0;
  if (has_all(add)) set = added = AllCapabilities();
  if (has_all(drop)) set = 0;
  for (const auto& n : add) {
    set |= MaskOf(n);
    added |= MaskOf(n);
  }
  for (const auto& n : drop) set &= ~MaskOf(n);
  Confinement c;
  c.bounding = set;
  c.capabilities = runs_as_root ? set : (added & set);
  c.ambient = !runs_as_root && c.capabilities != 0;
  c.no_new_privs = !allow_privilege_escalation;
  return c;
}

Result<std::unique_ptr<PreparedConfinement>> PreparedConfinement::Prepare(
    const Confinement& confinement) {
  std::unique_ptr<PreparedConfinement> p(new PreparedConfinement());
  p->confinement_ = confinement;
  p->last_capability_ = static_cast<int>(cap_max_bits()) - 1;
  cap_t own = cap_get_proc();
  if (own == nullptr) return Internal(std::string("cap_get_proc: ") + std::strerror(errno));
  cap_flag_value_t setpcap = CAP_CLEAR;
  cap_get_flag(own, CAP_SETPCAP, CAP_EFFECTIVE, &setpcap);
  cap_free(own);
  p->may_drop_bounding_ = setpcap == CAP_SET;

  cap_t sets = cap_init();
  if (sets == nullptr) return Internal(std::string("cap_init: ") + std::strerror(errno));
  p->capabilities_ = sets;
  for (int c = 0; c <= p->last_capability_ && c < 64; ++c) {
    if ((confinement.capabilities & Bit(c)) == 0) continue;
    cap_value_t value = c;
    for (cap_flag_t flag : {CAP_EFFECTIVE, CAP_PERMITTED})
      cap_set_flag(sets, flag, 1, &value, CAP_SET);
    if (confinement.ambient) cap_set_flag(sets, CAP_INHERITABLE, 1, &value, CAP_SET);
  }
  auto filter = CompileFilter(confinement.bounding);
  if (!filter.ok()) return filter.status();
  p->filter_ = std::move(*filter);
  return p;
}

PreparedConfinement::~PreparedConfinement() {
  if (capabilities_ != nullptr) cap_free(capabilities_);
}

namespace {

int LoadFilter(const std::vector<unsigned char>& program) {
  sock_fprog prog{};
  prog.len = static_cast<unsigned short>(program.size() / sizeof(sock_filter));
  prog.filter = reinterpret_cast<sock_filter*>(const_cast<unsigned char*>(program.data()));
  return ::prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog, 0, 0) == 0 ? 0 : errno;
}

}  // namespace

int PreparedConfinement::BeforeUserChange() const {
  if (may_drop_bounding_) {
    for (int c = 0; c <= last_capability_; ++c) {
      if (c < 64 && (confinement_.bounding & Bit(c)) != 0) continue;
      if (cap_drop_bound(c) != 0) return errno;
    }
  }
  if (confinement_.ambient && ::prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) != 0) return errno;
  if (!confinement_.no_new_privs) return LoadFilter(filter_);
  return 0;
}

int PreparedConfinement::AfterUserChange() const {
  if (cap_set_proc(static_cast<cap_t>(capabilities_)) != 0) return errno;
  if (cap_reset_ambient() != 0) return errno;
  if (confinement_.ambient) {
    for (int c = 0; c <= last_capability_ && c < 64; ++c) {
      if ((confinement_.capabilities & Bit(c)) != 0 && cap_set_ambient(c, CAP_SET) != 0) {
        return errno;
      }
    }
  }
  if (!confinement_.no_new_privs) return 0;  // the filter is loaded already
  if (::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) return errno;
  return LoadFilter(filter_);
}

}  // namespace ballast::nodeagent
