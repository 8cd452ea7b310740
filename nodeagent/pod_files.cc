#include "nodeagent/pod_files.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <utility>
#include <vector>

#include "nodeagent/config_volumes.h"
#include "nodeagent/pod_store.h"

namespace ballast::nodeagent {
namespace {

using localfs::Dir;

Status PodFileError(const std::string& step, const std::string& path, int error) {
  return Unavailable(step + " " + path + ": " + std::strerror(error));
}

// Directory `name` in `parent` (the agent's tree), made when missing; one that is not the
// agent's alone, or not a directory, is removed without being followed and made again.
Result<Dir> AgentDirAt(const Dir& parent, const std::string& name, mode_t mode) {
  bool created = false;
  auto dir = localfs::MakeDirAt(parent, name, mode, &created);
  if (dir.ok() && !created) {
    struct stat st {};
    if (::fstat(dir->fd.get(), &st) != 0) return PodFileError("fstat", dir->path, errno);
    if (localfs::CheckPrivate(st, dir->path, ::geteuid()).ok()) return dir;
  } else if (dir.ok() || dir.status().code() != StatusCode::kFailedPrecondition) {
    return dir;
  }
  if (Status s = localfs::RemoveTreeAt(parent, name); !s.ok()) return s;
  return localfs::MakeDirAt(parent, name, mode);
}

}  // namespace

struct PodFiles::Opened {
  Dir pod;
  Dir logs;
  Dir work;
};

PodFiles::PodFiles(std::string pods_dir)
    : pods_dir_(std::move(pods_dir)), pods_(localfs::MakeDirs(pods_dir_, 0711, 0700)) {}

std::string PodFiles::DirOf(const std::string& pod_id) const {
  return pods_dir_ + "/" + PodDirName(pod_id);
}

Result<PodFiles::Opened> PodFiles::Open(const std::string& pod_id) const {
  if (!pods_.ok()) return pods_.status();
  auto pod = AgentDirAt(*pods_, PodDirName(pod_id), 0711);
  if (!pod.ok()) return pod.status();
  auto logs = AgentDirAt(*pod, "logs", 0750);
  if (!logs.ok()) return logs.status();
  auto work = localfs::MakeDirAt(*pod, "work", 0700);
  if (!work.ok()) return work.status();
  return Opened{std::move(*pod), std::move(*logs), std::move(*work)};
}

Status PodFiles::Create(const std::string& pod_id) const {
  auto opened = Open(pod_id);
  return opened.ok() ? Status::Ok() : opened.status();
}

Result<PodFiles::ContainerFiles> PodFiles::PrepareContainer(
    const std::string& pod_id, const std::string& working_dir, const std::string& stdout_name,
    const std::string& stderr_name, std::optional<uid_t> uid, std::optional<gid_t> gid) const {
  auto opened = Open(pod_id);
  if (!opened.ok()) return opened.status();
  const gid_t group = gid.value_or(static_cast<gid_t>(uid.value_or(0)));
  if (uid) {
    if (Status s = localfs::GiveDirTo(opened->work, *uid, group); !s.ok()) return s;
  }
  Dir cwd = std::move(opened->work);
  for (const std::string& part : PathComponents(working_dir)) {
    auto next = localfs::MakeDirAt(cwd, part, 0755);
    if (!next.ok()) return next.status().WithContext("working directory");
    if (uid) {
      if (Status s = localfs::GiveDirTo(*next, *uid, group); !s.ok()) return s;
    }
    cwd = std::move(*next);
  }
  ContainerFiles files;
  auto out = localfs::OpenAppendAt(opened->logs, stdout_name, 0640);
  if (!out.ok()) return out.status();
  auto err = localfs::OpenAppendAt(opened->logs, stderr_name, 0640);
  if (!err.ok()) return err.status();
  files.stdout_fd = std::move(*out);
  files.stderr_fd = std::move(*err);
  return files;
}

Status PodFiles::RotateLog(const std::string& pod_id, const std::string& name,
                           int64_t max_bytes) const {
  if (!pods_.ok()) return pods_.status();
  auto pod = localfs::OpenDirAt(*pods_, PodDirName(pod_id));
  if (!pod.ok()) return pod.status().code() == StatusCode::kNotFound ? Status::Ok() : pod.status();
  auto logs = localfs::OpenDirAt(*pod, "logs");
  if (!logs.ok()) {
    return logs.status().code() == StatusCode::kNotFound ? Status::Ok() : logs.status();
  }
  auto file = localfs::OpenFileAt(*logs, name, O_RDWR);
  if (!file.ok()) {
    return file.status().code() == StatusCode::kNotFound ? Status::Ok() : file.status();
  }
  struct stat st {};
  if (::fstat(file->get(), &st) != 0) return PodFileError("fstat", logs->path + "/" + name, errno);
  if (st.st_size <= max_bytes) return Status::Ok();
  if (Status s = localfs::CopyToAt(file->get(), *logs, name + ".1", 0640); !s.ok()) return s;
  if (::ftruncate(file->get(), 0) != 0) {
    return PodFileError("truncate", logs->path + "/" + name, errno);
  }
  return Status::Ok();
}

std::string PodFiles::VolumeDirOf(const std::string& pod_id, const std::string& name) const {
  return DirOf(pod_id) + "/volumes/" + name;
}

Status PodFiles::WriteVolume(const std::string& pod_id, const std::string& name,
                             const std::vector<VolumeFile>& files, const VolumeAccess& access,
                             bool traversable) const {
  auto opened = Open(pod_id);
  if (!opened.ok()) return opened.status();
  const mode_t mode = traversable ? 0711 : 0700;
  auto volumes = AgentDirAt(opened->pod, "volumes", mode);
  if (!volumes.ok()) return volumes.status();
  struct stat st {};
  if (::fstat(volumes->fd.get(), &st) != 0) return PodFileError("fstat", volumes->path, errno);
  if ((st.st_mode & 07777) != mode && ::fchmod(volumes->fd.get(), mode) != 0) {
    return PodFileError("chmod", volumes->path, errno);
  }
  return nodeagent::WriteVolume(*volumes, name, files, access);
}

Status PodFiles::LinkMount(const std::string& pod_id, const std::string& mount_path,
                           const std::string& target, std::optional<uid_t> uid,
                           std::optional<gid_t> gid) const {
  auto opened = Open(pod_id);
  if (!opened.ok()) return opened.status();
  return nodeagent::LinkMount(opened->work, mount_path, target, uid, gid);
}

Status PodFiles::Remove(const std::string& pod_id) const {
  if (!pods_.ok()) return pods_.status();
  return localfs::RemoveTreeAt(*pods_, PodDirName(pod_id));
}

}  // namespace ballast::nodeagent
