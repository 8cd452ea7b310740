#include "localfs/durable_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <random>

#include "failpoint/failpoint.h"

namespace ballast::localfs {
namespace {

namespace fs = std::filesystem;

Status Errno(const std::string& step, const fs::path& path, int error) {
  const std::string message = step + " " + path.string() + ": " + std::strerror(error);
  if (error == ENOSPC || error == EDQUOT) return ResourceExhausted(message);
  if (error == EACCES || error == EPERM || error == EROFS) return PermissionDenied(message);
  if (error == ENOENT) return NotFound(message);
  return Unavailable(message);
}

// Closes the descriptor on every path out.
struct Fd {
  int fd = -1;
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
};

Status SyncDirectory(const fs::path& dir) {
  Fd d{::open(dir.empty() ? "." : dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC)};
  if (d.fd < 0) return Errno("open directory", dir, errno);
  if (::fsync(d.fd) != 0) return Errno("fsync directory", dir, errno);
  return Status::Ok();
}

std::string TempSuffix() {
  static thread_local std::mt19937_64 rng{std::random_device{}()};
  static constexpr char kHex[] = "0123456789abcdef";
  std::string s = ".tmp-";
  for (uint64_t v = rng(), i = 0; i < 12; ++i, v >>= 4) s += kHex[v & 15];
  return s;
}

// Temporary files of earlier writes of `path` that a crash left behind (writes of one path are
// serialised by their callers, so no other write is under way).
void RemoveStaleTemps(const fs::path& path) {
  const std::string prefix = path.filename().string() + ".tmp-";
  std::error_code ec;
  for (fs::directory_iterator it(path.parent_path().empty() ? "." : path.parent_path(), ec), end;
       !ec && it != end; it.increment(ec)) {
    const std::string name = it->path().filename().string();
    if (name.size() == prefix.size() + 12 && name.compare(0, prefix.size(), prefix) == 0) {
      ::unlink(it->path().c_str());
    }
  }
}

}  // namespace

Status WriteFileAtomically(const fs::path& path, std::string_view content, mode_t mode) {
  RemoveStaleTemps(path);
  const fs::path tmp = path.string() + TempSuffix();
  {
    // O_EXCL | O_NOFOLLOW: never write through something planted at the temporary name.
    Fd f{::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode)};
    if (f.fd < 0) return Errno("create", tmp, errno);
    // A kill -9 at a byte offset of the write (failpoint state-write-torn=crash-after(N)).
    if (const auto cut = failpoint::CrashAfterBytes("state-write-torn")) {
      content = content.substr(0, std::min(*cut, content.size()));
      (void)!::write(f.fd, content.data(), content.size());
      failpoint::Crash("state-write-torn");
    }
    size_t done = 0;
    while (done < content.size()) {
      const ssize_t n = ::write(f.fd, content.data() + done, content.size() - done);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) {
        const int error = errno;
        ::unlink(tmp.c_str());
        return Errno("write", tmp, error);
      }
      done += static_cast<size_t>(n);
    }
    if (::fsync(f.fd) != 0) {
      const int error = errno;
      ::unlink(tmp.c_str());
      return Errno("fsync", tmp, error);
    }
  }
  if (Status s = failpoint::Hit("state-write-before-rename"); !s.ok()) {
    ::unlink(tmp.c_str());
    return s;
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    const int error = errno;
    ::unlink(tmp.c_str());
    return Errno("rename to", path, error);
  }
  (void)failpoint::Hit("state-write-after-rename");  // crash or sleep: the file is written
  return SyncDirectory(path.parent_path());
}

Result<std::string> ReadSmallFile(const fs::path& path, size_t max_bytes) {
  Fd f{::open(path.c_str(), O_RDONLY | O_CLOEXEC)};
  if (f.fd < 0) return Errno("open", path, errno);
  std::string out;
  char buf[8192];
  for (;;) {
    const ssize_t n = ::read(f.fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Errno("read", path, errno);
    if (n == 0) break;
    if (out.size() + static_cast<size_t>(n) > max_bytes) {
      return ResourceExhausted("read " + path.string() + ": larger than " +
                               std::to_string(max_bytes) + " bytes");
    }
    out.append(buf, static_cast<size_t>(n));
  }
  return out;
}

Status RemoveFileDurably(const fs::path& path) {
  if (::unlink(path.c_str()) != 0) {
    if (errno == ENOENT) return Status::Ok();
    return Errno("remove", path, errno);
  }
  return SyncDirectory(path.parent_path());
}

}  // namespace ballast::localfs
