#include "nodeagent/work_dir.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "localfs/safe_fs.h"

namespace ballast::nodeagent {
namespace {

using localfs::Dir;

constexpr char kLegacyRecord[] = "pod.json";
constexpr char kLockFile[] = "ballast.lock";
// state/pods/<pod>/pod.json and its temporary files: anything deeper is not the agent's.
constexpr int kMaxStateDepth = 8;

Status WorkDirSystemError(const std::string& step, const std::string& path, int error) {
  return Unavailable(step + " " + path + ": " + std::strerror(error));
}

std::string Uid() { return std::to_string(::geteuid()); }

// Why a state file or directory may not be trusted, and what to do about it.
Status Untrusted(const Status& why) {
  return Status(why.code(), "state " + why.message() +
                                "; the agent runs what its state says as root, so only its own "
                                "user may write it: check it, then remove it or chown it to uid " +
                                Uid() + " with no group or other write permission");
}

Result<Dir> OpenOwnWorkDir(const std::string& dir) {
  auto opened = localfs::MakeDirs(dir, 0700, 0755);
  if (!opened.ok()) return opened.status().WithContext("work directory");
  struct stat st {};
  if (::fstat(opened->fd.get(), &st) != 0) return WorkDirSystemError("fstat", dir, errno);
  if (Status s = localfs::CheckPrivate(st, dir, ::geteuid()); !s.ok()) {
    return Status(s.code(), "work directory " + s.message() +
                                "; whoever can write it chooses what the agent runs as root: give "
                                "the agent a directory of its own (--work-dir), or chown it to "
                                "uid " +
                                Uid() + " and chmod it 0700");
  }
  return opened;
}

// Moves pods/<name>/pod.json, where agents before the state/ tree kept it, to
// state/pods/<name>/pod.json, when nobody but this user can have written it.
Status MigrateLegacyRecord(const Dir& pods, const Dir& records, const std::string& name) {
  auto old_dir = localfs::OpenDirAt(pods, name);
  if (!old_dir.ok()) return Status::Ok();  // not a pod directory: not a record either
  struct stat st {};
  if (::fstatat(old_dir->fd.get(), kLegacyRecord, &st, AT_SYMLINK_NOFOLLOW) != 0) {
    if (errno == ENOENT) return Status::Ok();
    return WorkDirSystemError("stat", old_dir->path + "/" + kLegacyRecord, errno);
  }
  const std::string path = old_dir->path + "/" + kLegacyRecord;
  const std::string advice = "; it holds " + path +
                             ", an older agent's pod record, which may have been rewritten by "
                             "the pod: check it, then remove it (its pod is started afresh) or "
                             "chown the directory to uid " +
                             Uid();
  struct stat dir_st {};
  if (::fstat(old_dir->fd.get(), &dir_st) != 0) {
    return WorkDirSystemError("fstat", old_dir->path, errno);
  }
  if (Status s = localfs::CheckPrivate(dir_st, old_dir->path, ::geteuid()); !s.ok()) {
    return Status(s.code(), s.message() + advice);
  }
  auto file = localfs::OpenFileAt(*old_dir, kLegacyRecord, O_RDONLY);
  if (!file.ok()) return Untrusted(file.status());
  struct stat file_st {};
  if (::fstat(file->get(), &file_st) != 0) return WorkDirSystemError("fstat", path, errno);
  if (Status s = localfs::CheckPrivate(file_st, path, ::geteuid()); !s.ok()) return Untrusted(s);
  auto target = localfs::MakeDirAt(records, name, 0700);
  if (!target.ok()) return target.status();
  if (::fchmod(file->get(), 0600) != 0) return WorkDirSystemError("chmod", path, errno);
  // A record already in state/ is older than this one (an older agent ran after a newer one).
  if (::renameat(old_dir->fd.get(), kLegacyRecord, target->fd.get(), kLegacyRecord) != 0) {
    return WorkDirSystemError("move " + path + " to", target->path, errno);
  }
  if (::fsync(target->fd.get()) != 0 || ::fsync(old_dir->fd.get()) != 0) {
    return WorkDirSystemError("fsync", target->path, errno);
  }
  return Status::Ok();
}

// Everything under `dir` is this user's and nobody else's; group and other permissions go.
Status CheckStateTree(const Dir& dir, int depth) {
  auto names = localfs::ListDirAt(dir);
  if (!names.ok()) return names.status();
  for (const std::string& name : *names) {
    const std::string path = dir.path + "/" + name;
    struct stat st {};
    if (::fstatat(dir.fd.get(), name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
      if (errno == ENOENT) continue;
      return WorkDirSystemError("stat", path, errno);
    }
    if (S_ISLNK(st.st_mode)) {
      return Untrusted(FailedPrecondition(path + " is a symlink (" + localfs::DescribeOwner(st) +
                                          "), not a file of the agent's"));
    }
    if (!S_ISDIR(st.st_mode) && !S_ISREG(st.st_mode)) {
      return Untrusted(FailedPrecondition(path + " is neither a file nor a directory"));
    }
    if (Status s = localfs::CheckPrivate(st, path, ::geteuid()); !s.ok()) return Untrusted(s);
    if ((st.st_mode & 077) != 0 &&
        ::fchmodat(dir.fd.get(), name.c_str(), st.st_mode & 0700, 0) != 0) {
      return WorkDirSystemError("chmod", path, errno);
    }
    if (!S_ISDIR(st.st_mode)) continue;
    if (depth >= kMaxStateDepth) {
      return Untrusted(FailedPrecondition(path + " is deeper than the agent's state goes"));
    }
    auto sub = localfs::OpenDirAt(dir, name);
    if (!sub.ok()) return Untrusted(sub.status());
    if (Status s = CheckStateTree(*sub, depth + 1); !s.ok()) return s;
  }
  return Status::Ok();
}

// `name` in `dir`, when it exists, is this user's and not writable by others.
Status CheckOwnFile(const Dir& dir, const std::string& name) {
  const std::string path = dir.path + "/" + name;
  struct stat st {};
  if (::fstatat(dir.fd.get(), name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
    if (errno == ENOENT) return Status::Ok();
    return WorkDirSystemError("stat", path, errno);
  }
  if (S_ISLNK(st.st_mode)) return Untrusted(FailedPrecondition(path + " is a symlink"));
  if (Status s = localfs::CheckPrivate(st, path, ::geteuid()); !s.ok()) return Untrusted(s);
  return Status::Ok();
}

}  // namespace

std::string RecordsDir(const std::string& work_dir) { return work_dir + "/state/pods"; }
std::string PodsDir(const std::string& work_dir) { return work_dir + "/pods"; }

Result<std::string> DefaultWorkDir(const std::string& node_name, uid_t euid,
                                   const char* xdg_state_home, const char* home) {
  if (node_name.empty() || node_name == "." || node_name == ".." ||
      node_name.find('/') != std::string::npos) {
    return InvalidArgument("node name \"" + node_name +
                           "\" cannot name a directory: give --work-dir");
  }
  std::string base;
  if (euid == 0) {
    base = "/var/lib";
  } else if (xdg_state_home != nullptr && xdg_state_home[0] == '/') {
    base = xdg_state_home;
  } else if (home != nullptr && home[0] == '/') {
    base = home;
    base += "/.local/state";
  } else {
    return InvalidArgument(
        "no home directory ($HOME) to keep the agent's state in: give "
        "--work-dir");
  }
  base += "/ballast/agent/";
  base += node_name;
  return base;
}

Status CreateWorkDir(const std::string& dir) {
  auto opened = OpenOwnWorkDir(dir);
  return opened.ok() ? Status::Ok() : opened.status();
}

Status PrepareWorkDir(const std::string& dir) {
  auto work = OpenOwnWorkDir(dir);
  if (!work.ok()) return work.status();
  auto state = localfs::MakeDirAt(*work, "state", 0700);
  if (!state.ok()) return state.status();
  auto records = localfs::MakeDirAt(*state, "pods", 0700);
  if (!records.ok()) return records.status();
  auto pods = localfs::MakeDirAt(*work, "pods", 0711);
  if (!pods.ok()) return pods.status();
  struct stat st {};
  if (::fstat(pods->fd.get(), &st) != 0) return WorkDirSystemError("fstat", pods->path, errno);
  if (Status s = localfs::CheckPrivate(st, pods->path, ::geteuid()); !s.ok()) {
    return Untrusted(s);
  }
  auto names = localfs::ListDirAt(*pods);
  if (!names.ok()) return names.status();
  for (const std::string& name : *names) {
    if (Status s = MigrateLegacyRecord(*pods, *records, name); !s.ok()) return s;
  }
  if (Status s = CheckOwnFile(*work, kLockFile); !s.ok()) return s;
  for (const Dir* d : {&*state, &*records}) {
    if (::fstat(d->fd.get(), &st) != 0) return WorkDirSystemError("fstat", d->path, errno);
    if (Status s = localfs::CheckPrivate(st, d->path, ::geteuid()); !s.ok()) return Untrusted(s);
    if ((st.st_mode & 077) != 0 && ::fchmod(d->fd.get(), 0700) != 0) {
      return WorkDirSystemError("chmod", d->path, errno);
    }
  }
  return CheckStateTree(*state, 0);
}

Status AllowTraversal(const std::string& dir) {
  auto opened = localfs::OpenDir(dir);
  if (!opened.ok()) return opened.status();
  struct stat st {};
  if (::fstat(opened->fd.get(), &st) != 0) return WorkDirSystemError("fstat", dir, errno);
  const mode_t search = S_IXGRP | S_IXOTH;
  if ((st.st_mode & search) == search) return Status::Ok();
  if (::fchmod(opened->fd.get(), (st.st_mode & 07777) | search) != 0) {
    return WorkDirSystemError("chmod", dir, errno);
  }
  return Status::Ok();
}

}  // namespace ballast::nodeagent
