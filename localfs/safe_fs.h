#pragma once

// File operations in directories that someone less privileged can write, for a process that
// runs as root: a pod's work directory is its user's, and a symlink or hard link it plants must
// not turn the agent's chown, append, truncate or removal into one of a file elsewhere (say
// /etc/shadow). Every name here is one path component resolved relative to a directory
// descriptor (openat and friends), never following a symlink (O_NOFOLLOW); files are checked
// with fstat on the descriptor that is then used, and owners are changed with fchown on it.
// Every descriptor is O_CLOEXEC and owned by a UniqueFd.
//
// Also the checks a process makes before it trusts a file: owned by its own user, not writable
// by group or others.
//
// Thread-safe as far as the file system is; no state of its own.

#include <sys/stat.h>
#include <sys/types.h>

#include <cstddef>
#include <string>
#include <vector>

#include "model/status.h"

namespace ballast::localfs {

// An owned file descriptor, closed on destruction. Move-only.
class UniqueFd {
 public:
  UniqueFd() = default;
  explicit UniqueFd(int fd) : fd_(fd) {}
  ~UniqueFd() { reset(); }
  UniqueFd(UniqueFd&& other) noexcept : fd_(other.release()) {}
  UniqueFd& operator=(UniqueFd&& other) noexcept {
    if (this != &other) reset(other.release());
    return *this;
  }
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;

  int get() const { return fd_; }
  bool valid() const { return fd_ >= 0; }
  // Gives up ownership: the caller closes the descriptor.
  int release() {
    const int fd = fd_;
    fd_ = -1;
    return fd;
  }
  // Closes the descriptor held (if any) and holds `fd`.
  void reset(int fd = -1);

 private:
  int fd_ = -1;
};

// A directory opened with O_DIRECTORY | O_NOFOLLOW, and its path. The path is for messages only:
// everything below goes through the descriptor, so renaming or replacing the path afterwards
// changes nothing.
struct Dir {
  UniqueFd fd;
  std::string path;
};

// Opens the directory `path`. Its last component must not be a symlink (the components above
// are the caller's to trust). Errors name the path; FailedPrecondition when it is a symlink or
// not a directory.
Result<Dir> OpenDir(const std::string& path);

// Opens directory `name` (one component, no '/') in `parent`, not following a symlink.
Result<Dir> OpenDirAt(const Dir& parent, const std::string& name);

// Creates directory `name` in `parent` with exactly `mode` when it does not exist, and opens it
// as OpenDirAt does. `*created` (when not null) says whether it was made by this call. An
// existing directory keeps its mode and owner.
Result<Dir> MakeDirAt(const Dir& parent, const std::string& name, mode_t mode,
                      bool* created = nullptr);

// Creates the directory `path` (mode `mode`) and its missing parents (mode `parent_mode`), like
// mkdir -p, then opens it as OpenDir does. An existing directory is opened as it is.
Result<Dir> MakeDirs(const std::string& path, mode_t mode, mode_t parent_mode);

// Opens the regular file `name` in `parent` for appending (O_WRONLY | O_APPEND), creating it with
// exactly `mode` when it does not exist. Refuses (FailedPrecondition, naming the file) a symlink,
// anything but a regular file, and a file with more than one link (a hard link to a file
// elsewhere, such as one an unprivileged user linked to before protected_hardlinks).
Result<UniqueFd> OpenAppendAt(const Dir& parent, const std::string& name, mode_t mode);

// Opens the regular file `name` in `parent` with `flags` (O_RDONLY or O_RDWR, no O_CREAT), with
// the same refusals as OpenAppendAt. NotFound when it does not exist.
Result<UniqueFd> OpenFileAt(const Dir& parent, const std::string& name, int flags);

// As OpenFileAt, for a path whose last component must not be a symlink.
Result<UniqueFd> OpenFile(const std::string& path, int flags);

// Replaces `name` in `parent` with a copy of what `from` holds (read from offset 0), written to
// a new file (mode `mode`) beside it and renamed over `name`: whatever was at `name` (a symlink
// included) is replaced, never written through.
Status CopyToAt(int from, const Dir& parent, const std::string& name, mode_t mode);

// Gives the directory `dir` to `uid`:`gid` (fchown), unless a third user (neither this process's
// nor `uid`) owns it: one that was not made for that user is left as it is.
Status GiveDirTo(const Dir& dir, uid_t uid, gid_t gid);

// The names in `dir`, "." and ".." left out, in no particular order.
Result<std::vector<std::string>> ListDirAt(const Dir& dir);

// Removes `name` in `parent` and, when it is a directory, everything below it, without ever
// following a symlink (a symlink is removed, not its target). A missing `name` is fine.
Status RemoveTreeAt(const Dir& parent, const std::string& name);

// "uid 65534, mode 0755": who owns `st` and its permission bits, for messages.
std::string DescribeOwner(const struct stat& st);

// Ok when `st` (of `path`, named in the error) is owned by `uid` and not writable by its group
// or others; else PermissionDenied saying what was found.
Status CheckPrivate(const struct stat& st, const std::string& path, uid_t uid);

}  // namespace ballast::localfs
