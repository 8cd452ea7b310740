#include "cli/dir_lock.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <string>

namespace ballast::cli {

bool LockDirectory(const std::string& dir, const std::string& holder, std::string* error) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) {
    *error = "cannot create " + dir + ": " + ec.message();
    return false;
  }
  const std::string path = (std::filesystem::path(dir) / "ballast.lock").string();
  // Never through a symlink: the lock file is written (its holder's pid) by whoever runs this.
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0644);
  if (fd < 0) {
    *error = "cannot open " + path + ": " + std::strerror(errno);
    return false;
  }
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    const int err = errno;
    char buf[64] = {};
    ssize_t n = ::pread(fd, buf, sizeof buf - 1, 0);
    std::string pid = n > 0 ? std::string(buf, static_cast<size_t>(n)) : "";
    while (!pid.empty() && (pid.back() == '\n' || pid.back() == ' ')) pid.pop_back();
    ::close(fd);
    if (err == EWOULDBLOCK) {
      *error = dir + " is in use by another " + holder + (pid.empty() ? "" : " (pid " + pid + ")") +
               "; stop it first, or give this one a directory of its own";
    } else {
      *error = "cannot lock " + path + ": " + std::strerror(err);
    }
    return false;
  }
  const std::string me = std::to_string(::getpid()) + "\n";
  if (::ftruncate(fd, 0) != 0 || ::pwrite(fd, me.data(), me.size(), 0) < 0) {
    // The lock holds without the pid; only the message of a second process would lack it.
  }
  return true;  // fd stays open (and locked) until the process exits
}

}  // namespace ballast::cli
