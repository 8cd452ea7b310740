#include "nodeagent/volume_files.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <set>

#include "model/digest.h"

namespace ballast::nodeagent {
namespace {

using localfs::Dir;
using localfs::UniqueFd;

constexpr char kDataLink[] = "..data";
constexpr char kDataLinkTmp[] = "..data_tmp";

Status VolumeError(const std::string& step, const std::string& path, int error) {
  return Unavailable(step + " " + path + ": " + std::strerror(error));
}

// The target of symlink `name` in `dir`; "" when it is missing or not a symlink.
std::string ReadLinkAt(const Dir& dir, const std::string& name) {
  char buf[4096];
  const ssize_t n = ::readlinkat(dir.fd.get(), name.c_str(), buf, sizeof buf);
  if (n <= 0 || static_cast<size_t>(n) >= sizeof buf) return "";
  return std::string(buf, static_cast<size_t>(n));
}

// Gives what `fd` (a file or directory the agent just made) is to `group` with `mode`.
Status SetAccess(int fd, const std::string& path, mode_t mode, std::optional<gid_t> group) {
  if (group && ::fchown(fd, static_cast<uid_t>(-1), *group) != 0) {
    return VolumeError("chown", path, errno);
  }
  if (::fchmod(fd, mode) != 0) return VolumeError("chmod", path, errno);
  return Status::Ok();
}

Status WriteAll(int fd, const std::string& data, const std::string& path) {
  size_t done = 0;
  while (done < data.size()) {
    const ssize_t n = ::write(fd, data.data() + done, data.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return VolumeError("write", path, errno);
    done += static_cast<size_t>(n);
  }
  if (::fsync(fd) != 0) return VolumeError("fsync", path, errno);
  return Status::Ok();
}

// One file below `root` (the new data directory), its directories made on the way.
Status WriteFile(const Dir& root, const VolumeFile& file, const VolumeAccess& access) {
  const std::vector<std::string> parts = PathComponents(file.path);
  if (parts.empty()) return InvalidArgument("volume file \"" + file.path + "\" names no file");
  Dir holder;
  const Dir* at = &root;
  for (size_t i = 0; i + 1 < parts.size(); ++i) {
    bool created = false;
    auto next = localfs::MakeDirAt(*at, parts[i], access.dir_mode, &created);
    if (!next.ok()) return next.status();
    if (created) {
      if (Status s = SetAccess(next->fd.get(), next->path, access.dir_mode, access.group);
          !s.ok()) {
        return s;
      }
    }
    holder = std::move(*next);
    at = &holder;
  }
  const std::string path = at->path + "/" + parts.back();
  const mode_t mode = static_cast<mode_t>(file.mode) | (access.group_reads ? S_IRGRP : 0);
  UniqueFd fd(::openat(at->fd.get(), parts.back().c_str(),
                       O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode));
  if (!fd.valid()) return VolumeError("create", path, errno);
  if (Status s = SetAccess(fd.get(), path, mode, access.group); !s.ok()) {
    return s;
  }
  return WriteAll(fd.get(), file.data, path);
}

// What the data directory is named: a digest of everything written, so that the same contents
// give the same name and rewriting them is seen to be needless.
std::string DataDirName(const std::vector<VolumeFile>& files, const VolumeAccess& access) {
  std::string canonical = std::to_string(access.dir_mode) + " " +
                          (access.group ? std::to_string(*access.group) : std::string("-")) +
                          (access.group_reads ? " g+r" : "") + "\n";
  for (const auto& f : files) {
    canonical += model::Sha256Hex(f.path) + " " + std::to_string(f.mode) + " " +
                 model::Sha256Hex(f.data) + "\n";
  }
  return std::string("..").append(model::HmacSha256Hex(access.digest_key, canonical).substr(0, 32));
}

// Replaces whatever `name` in `dir` is with a symlink to `target`.
Status PlaceLink(const Dir& dir, const std::string& name, const std::string& target) {
  if (ReadLinkAt(dir, name) == target) return Status::Ok();
  if (Status s = localfs::RemoveTreeAt(dir, name); !s.ok()) return s;
  if (::symlinkat(target.c_str(), dir.fd.get(), name.c_str()) != 0) {
    return VolumeError("symlink", dir.path + "/" + name, errno);
  }
  return Status::Ok();
}

// Removes from `dir` what neither the data directory `data_name` nor the links `tops` are: the
// old contents after a swap (again on the next write if a removal failed).
Status RemoveStale(const Dir& dir, const std::string& data_name,
                   const std::set<std::string>& tops) {
  auto names = localfs::ListDirAt(dir);
  if (!names.ok()) return names.status();
  for (const auto& n : *names) {
    const bool kubelets = n.rfind("..", 0) == 0;
    if (kubelets ? (n == kDataLink || n == data_name) : tops.count(n) > 0) continue;
    if (Status s = localfs::RemoveTreeAt(dir, n); !s.ok()) return s;
  }
  if (::fsync(dir.fd.get()) != 0) return VolumeError("fsync", dir.path, errno);
  return Status::Ok();
}

}  // namespace

Status WriteVolume(const Dir& volumes, const std::string& name,
                   const std::vector<VolumeFile>& files, const VolumeAccess& access) {
  auto dir = localfs::MakeDirAt(volumes, name, access.dir_mode);
  if (!dir.ok()) return dir.status();
  if (Status s = SetAccess(dir->fd.get(), dir->path, access.dir_mode, access.group); !s.ok()) {
    return s;
  }
  const std::string data_name = DataDirName(files, access);
  std::set<std::string> tops;
  for (const auto& f : files) {
    if (auto parts = PathComponents(f.path); !parts.empty()) tops.insert(parts.front());
  }
  struct stat st {};
  if (ReadLinkAt(*dir, kDataLink) == data_name &&
      ::fstatat(dir->fd.get(), data_name.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0 &&
      S_ISDIR(st.st_mode)) {
    return RemoveStale(*dir, data_name, tops);  // already what it should be
  }
  // A directory of this name is a leftover of an interrupted write: start it again.
  if (Status s = localfs::RemoveTreeAt(*dir, data_name); !s.ok()) return s;
  auto data = localfs::MakeDirAt(*dir, data_name, access.dir_mode);
  if (!data.ok()) return data.status();
  if (Status s = SetAccess(data->fd.get(), data->path, access.dir_mode, access.group); !s.ok()) {
    return s;
  }
  for (const auto& f : files) {
    if (Status s = WriteFile(*data, f, access); !s.ok()) return s;
  }
  if (::fsync(data->fd.get()) != 0) return VolumeError("fsync", data->path, errno);
  // The links the new contents add; those of the old ones dangle until the swap.
  for (const auto& top : tops) {
    if (Status s = PlaceLink(*dir, top, std::string(kDataLink) + "/" + top); !s.ok()) return s;
  }
  // The swap: one rename, so that a reader sees all of the old files or all of the new ones.
  if (Status s = PlaceLink(*dir, kDataLinkTmp, data_name); !s.ok()) return s;
  if (::renameat(dir->fd.get(), kDataLinkTmp, dir->fd.get(), kDataLink) != 0) {
    return VolumeError("rename", dir->path + "/" + kDataLinkTmp, errno);
  }
  return RemoveStale(*dir, data_name, tops);  // what the old contents had and the new do not
}

Status LinkMount(const Dir& work, const std::string& mount_path, const std::string& target,
                 std::optional<uid_t> uid, std::optional<gid_t> gid) {
  const std::vector<std::string> parts = PathComponents(mount_path);
  if (parts.empty()) {
    return InvalidArgument("mountPath \"" + mount_path +
                           "\" would replace the pod's work directory, which the process "
                           "runtime uses as the container's root");
  }
  const gid_t group = gid.value_or(static_cast<gid_t>(uid.value_or(0)));
  Dir holder;
  const Dir* at = &work;
  for (size_t i = 0; i + 1 < parts.size(); ++i) {
    auto next = localfs::MakeDirAt(*at, parts[i], 0755);
    if (!next.ok()) return next.status().WithContext("mountPath " + mount_path);
    if (uid) {
      if (Status s = localfs::GiveDirTo(*next, *uid, group); !s.ok()) return s;
    }
    holder = std::move(*next);
    at = &holder;
  }
  const std::string& last = parts.back();
  const std::string path = at->path + "/" + last;
  struct stat st {};
  if (::fstatat(at->fd.get(), last.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0) {
    if (S_ISLNK(st.st_mode)) {
      if (ReadLinkAt(*at, last) == target) return Status::Ok();
      if (::unlinkat(at->fd.get(), last.c_str(), 0) != 0) {
        return VolumeError("remove", path, errno);
      }
    } else if (!S_ISDIR(st.st_mode) || ::unlinkat(at->fd.get(), last.c_str(), AT_REMOVEDIR) != 0) {
      // Only an empty directory gives way: what the pod keeps there is its own.
      return FailedPrecondition("mountPath " + mount_path + ": " + path +
                                " exists and is not ballast's link to the volume: not replaced "
                                "(remove it)");
    }
  } else if (errno != ENOENT) {
    return VolumeError("stat", path, errno);
  }
  // The link stays root's: the pod may still remove it (its directory is its own), and a chown
  // by name could be raced into one of a hard link the pod put in its place.
  if (::symlinkat(target.c_str(), at->fd.get(), last.c_str()) != 0) {
    return VolumeError("symlink", path, errno);
  }
  return Status::Ok();
}

}  // namespace ballast::nodeagent
