#include "localfs/safe_fs.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>
#include <random>
#include <vector>

namespace ballast::localfs {
namespace {

// Deeper trees are left in place (with an error) rather than holding a descriptor per level
// without bound: a pod can nest directories as deep as it likes.
constexpr int kMaxRemoveDepth = 256;
constexpr int kMaxRemovePasses = 16;

std::string Join(const std::string& dir, const std::string& name) {
  if (dir.empty()) return name;
  std::string out = dir;
  if (out.back() != '/') out += '/';
  out += name;
  return out;
}

Status SystemError(const std::string& step, const std::string& path, int error) {
  std::string message = step;
  message += ' ';
  message += path;
  message += ": ";
  message += std::strerror(error);
  if (error == ENOENT) return NotFound(message);
  if (error == EACCES || error == EPERM || error == EROFS) return PermissionDenied(message);
  if (error == ENOSPC || error == EDQUOT) return ResourceExhausted(message);
  return Unavailable(message);
}

// Why `name` in `dir_fd` could not be opened without following it (ELOOP, ENOTDIR, ENXIO...).
Status NotFollowed(int dir_fd, const std::string& name, const std::string& path, int error,
                   bool want_directory) {
  struct stat st {};
  if (::fstatat(dir_fd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0) {
    if (S_ISLNK(st.st_mode)) {
      return FailedPrecondition(path + " is a symlink; not followed");
    }
    const bool right_type = want_directory ? S_ISDIR(st.st_mode) : S_ISREG(st.st_mode);
    if (!right_type) {
      return FailedPrecondition(path + " is not a " +
                                (want_directory ? "directory" : "regular file"));
    }
  }
  return SystemError("open", path, error);
}

bool IsNotFollowedError(int error) {
  return error == ELOOP || error == ENOTDIR || error == ENXIO || error == EMLINK;
}

bool IsOneComponent(const std::string& name) {
  return !name.empty() && name != "." && name != ".." && name.find('/') == std::string::npos;
}

Status BadName(const std::string& dir, const std::string& name) {
  return InvalidArgument("\"" + name + "\" in " + dir + " is not a single file name");
}

// A regular file with one link, opened as `fd`, else why not; clears O_NONBLOCK (used only to
// not block on a FIFO planted at its name).
Status CheckRegular(int fd, const std::string& path) {
  struct stat st {};
  if (::fstat(fd, &st) != 0) return SystemError("fstat", path, errno);
  if (!S_ISREG(st.st_mode)) {
    return FailedPrecondition(path + " is not a regular file");
  }
  if (st.st_nlink != 1) {
    return FailedPrecondition(path + " has " + std::to_string(st.st_nlink) +
                              " hard links (it may be another file's); not used");
  }
  const int flags = ::fcntl(fd, F_GETFL);
  if (flags < 0 || ::fcntl(fd, F_SETFL, flags & ~O_NONBLOCK) != 0) {
    return SystemError("fcntl", path, errno);
  }
  return Status::Ok();
}

std::string RandomSuffix() {
  static thread_local std::mt19937_64 rng{std::random_device{}()};
  static constexpr char kHex[] = "0123456789abcdef";
  std::string s = ".tmp-";
  for (uint64_t v = rng(), i = 0; i < 12; ++i, v >>= 4) s += kHex[v & 15];
  return s;
}

struct DirCloser {
  void operator()(DIR* d) const { ::closedir(d); }
};

Status RemoveTreeIn(int parent_fd, const std::string& parent_path, const std::string& name,
                    int depth) {
  const std::string path = Join(parent_path, name);
  if (::unlinkat(parent_fd, name.c_str(), 0) == 0) return Status::Ok();
  if (errno == ENOENT) return Status::Ok();
  if (errno != EISDIR && errno != EPERM) return SystemError("remove", path, errno);
  if (depth >= kMaxRemoveDepth) {
    return FailedPrecondition("remove " + path + ": nested deeper than " +
                              std::to_string(kMaxRemoveDepth) + " directories; left in place");
  }
  const int fd = ::openat(parent_fd, name.c_str(),
                          O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) {
    if (errno == ENOENT) return Status::Ok();
    return SystemError("open", path, errno);
  }
  std::unique_ptr<DIR, DirCloser> dir(::fdopendir(fd));
  if (!dir) {
    const int error = errno;
    ::close(fd);
    return SystemError("read", path, error);
  }
  // Entries removed while reading may make readdir skip others: read again until it is empty,
  // a bounded number of times (a process still writing there cannot keep the caller here).
  bool removed = true;
  for (int pass = 0; removed && pass < kMaxRemovePasses; ++pass) {
    removed = false;
    ::rewinddir(dir.get());
    while (dirent* e = ::readdir(dir.get())) {
      const std::string child = e->d_name;
      if (child == "." || child == "..") continue;
      if (Status s = RemoveTreeIn(::dirfd(dir.get()), path, child, depth + 1); !s.ok()) return s;
      removed = true;
    }
  }
  dir.reset();
  if (::unlinkat(parent_fd, name.c_str(), AT_REMOVEDIR) != 0 && errno != ENOENT) {
    return SystemError("remove", path, errno);
  }
  return Status::Ok();
}

}  // namespace

void UniqueFd::reset(int fd) {
  if (fd_ >= 0) ::close(fd_);
  fd_ = fd;
}

Result<Dir> OpenDir(const std::string& given) {
  // "dir/" would resolve a symlink at "dir": the last component is opened without the slash.
  std::string path = given;
  while (path.size() > 1 && path.back() == '/') path.pop_back();
  const int fd = ::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) {
    const int error = errno;
    if (IsNotFollowedError(error)) return NotFollowed(AT_FDCWD, path, path, error, true);
    return SystemError("open", path, error);
  }
  return Dir{UniqueFd(fd), path};
}

Result<Dir> OpenDirAt(const Dir& parent, const std::string& name) {
  if (!IsOneComponent(name)) return BadName(parent.path, name);
  const std::string path = Join(parent.path, name);
  const int fd =
      ::openat(parent.fd.get(), name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) {
    const int error = errno;
    if (IsNotFollowedError(error)) return NotFollowed(parent.fd.get(), name, path, error, true);
    return SystemError("open", path, error);
  }
  return Dir{UniqueFd(fd), path};
}

Result<Dir> MakeDirAt(const Dir& parent, const std::string& name, mode_t mode, bool* created) {
  if (!IsOneComponent(name)) return BadName(parent.path, name);
  bool made = ::mkdirat(parent.fd.get(), name.c_str(), mode) == 0;
  if (!made && errno != EEXIST) return SystemError("create", Join(parent.path, name), errno);
  auto dir = OpenDirAt(parent, name);
  if (!dir.ok()) return dir.status();
  // mkdirat applied the umask; the mode asked for is the mode meant.
  if (made && ::fchmod(dir->fd.get(), mode) != 0) return SystemError("chmod", dir->path, errno);
  if (created != nullptr) *created = made;
  return dir;
}

Result<Dir> MakeDirs(const std::string& given, mode_t mode, mode_t parent_mode) {
  std::string path = given;
  while (path.size() > 1 && path.back() == '/') path.pop_back();
  if (path.empty()) return InvalidArgument("empty directory path");
  for (size_t slash = path.find('/', 1); slash != std::string::npos;
       slash = path.find('/', slash + 1)) {
    const std::string parent = path.substr(0, slash);
    if (::mkdir(parent.c_str(), parent_mode) != 0 && errno != EEXIST) {
      return SystemError("create", parent, errno);
    }
  }
  const bool made = ::mkdir(path.c_str(), mode) == 0;
  if (!made && errno != EEXIST) return SystemError("create", path, errno);
  auto dir = OpenDir(path);
  if (!dir.ok()) return dir.status();
  if (made && ::fchmod(dir->fd.get(), mode) != 0) return SystemError("chmod", path, errno);
  return dir;
}

Result<UniqueFd> OpenAppendAt(const Dir& parent, const std::string& name, mode_t mode) {
  if (!IsOneComponent(name)) return BadName(parent.path, name);
  const std::string path = Join(parent.path, name);
  constexpr int kFlags = O_WRONLY | O_APPEND | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK;
  UniqueFd fd(::openat(parent.fd.get(), name.c_str(), kFlags | O_CREAT | O_EXCL, mode));
  if (fd.valid()) {
    if (::fchmod(fd.get(), mode) != 0) return SystemError("chmod", path, errno);
    if (Status s = CheckRegular(fd.get(), path); !s.ok()) return s;
    return fd;
  }
  if (errno != EEXIST) return SystemError("create", path, errno);
  return OpenFileAt(parent, name, O_WRONLY | O_APPEND);  // kFlags, as an existing file
}

Result<UniqueFd> OpenFileAt(const Dir& parent, const std::string& name, int flags) {
  if (!IsOneComponent(name)) return BadName(parent.path, name);
  const std::string path = Join(parent.path, name);
  UniqueFd fd(::openat(parent.fd.get(), name.c_str(), flags | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK));
  if (!fd.valid()) {
    const int error = errno;
    if (IsNotFollowedError(error)) return NotFollowed(parent.fd.get(), name, path, error, false);
    return SystemError("open", path, error);
  }
  if (Status s = CheckRegular(fd.get(), path); !s.ok()) return s;
  return fd;
}

Result<UniqueFd> OpenFile(const std::string& path, int flags) {
  UniqueFd fd(::open(path.c_str(), flags | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK));
  if (!fd.valid()) {
    const int error = errno;
    if (IsNotFollowedError(error)) return NotFollowed(AT_FDCWD, path, path, error, false);
    return SystemError("open", path, error);
  }
  if (Status s = CheckRegular(fd.get(), path); !s.ok()) return s;
  return fd;
}

Status CopyToAt(int from, const Dir& parent, const std::string& name, mode_t mode) {
  if (!IsOneComponent(name)) return BadName(parent.path, name);
  const std::string tmp = "." + name + RandomSuffix();
  const std::string tmp_path = Join(parent.path, tmp);
  UniqueFd to(::openat(parent.fd.get(), tmp.c_str(),
                       O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode));
  if (!to.valid()) return SystemError("create", tmp_path, errno);
  auto fail = [&](const std::string& step, const std::string& path, int error) {
    ::unlinkat(parent.fd.get(), tmp.c_str(), 0);
    return SystemError(step, path, error);
  };
  if (::fchmod(to.get(), mode) != 0) return fail("chmod", tmp_path, errno);
  char buf[64 * 1024];
  for (off_t offset = 0;;) {
    const ssize_t n = ::pread(from, buf, sizeof buf, offset);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return fail("read for", Join(parent.path, name), errno);
    if (n == 0) break;
    for (ssize_t done = 0; done < n;) {
      const ssize_t w = ::write(to.get(), buf + done, static_cast<size_t>(n - done));
      if (w < 0 && errno == EINTR) continue;
      if (w < 0) return fail("write", tmp_path, errno);
      done += w;
    }
    offset += n;
  }
  if (::renameat(parent.fd.get(), tmp.c_str(), parent.fd.get(), name.c_str()) != 0) {
    return fail("rename to", Join(parent.path, name), errno);
  }
  return Status::Ok();
}

Result<std::vector<std::string>> ListDirAt(const Dir& dir) {
  // fdopendir takes the descriptor it is given: read through a second one.
  const int fd = ::openat(dir.fd.get(), ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return SystemError("open", dir.path, errno);
  std::unique_ptr<DIR, DirCloser> d(::fdopendir(fd));
  if (!d) {
    const int error = errno;
    ::close(fd);
    return SystemError("read", dir.path, error);
  }
  std::vector<std::string> names;
  while (dirent* e = ::readdir(d.get())) {
    const std::string name = e->d_name;
    if (name != "." && name != "..") names.push_back(name);
  }
  return names;
}

Status GiveDirTo(const Dir& dir, uid_t uid, gid_t gid) {
  struct stat st {};
  if (::fstat(dir.fd.get(), &st) != 0) return SystemError("fstat", dir.path, errno);
  if (st.st_uid != ::geteuid() && st.st_uid != uid) return Status::Ok();
  if ((st.st_uid != uid || st.st_gid != gid) && ::fchown(dir.fd.get(), uid, gid) != 0) {
    return SystemError("chown", dir.path, errno);
  }
  return Status::Ok();
}

Status RemoveTreeAt(const Dir& parent, const std::string& name) {
  if (!IsOneComponent(name)) return BadName(parent.path, name);
  return RemoveTreeIn(parent.fd.get(), parent.path, name, 0);
}

std::string DescribeOwner(const struct stat& st) {
  char mode[8];
  std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(st.st_mode & 07777));
  std::string out = "uid ";
  out += std::to_string(st.st_uid);
  out += ", mode ";
  out += mode;
  return out;
}

Status CheckPrivate(const struct stat& st, const std::string& path, uid_t uid) {
  if (st.st_uid != uid) {
    return PermissionDenied(path + " is owned by another user (" + DescribeOwner(st) +
                            "), not by this process's user (uid " + std::to_string(uid) + ")");
  }
  if ((st.st_mode & (S_IWGRP | S_IWOTH)) != 0) {
    return PermissionDenied(path + " is writable by its group or by others (" + DescribeOwner(st) +
                            ")");
  }
  return Status::Ok();
}

}  // namespace ballast::localfs
