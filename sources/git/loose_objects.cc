#include "sources/git/loose_objects.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <array>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <string>
#include <string_view>

namespace ballast::git::internal {
namespace {

bool IsHex(std::string_view s) {
  for (char c : s) {
    if (!std::isxdigit(static_cast<unsigned char>(c)) ||
        std::isupper(static_cast<unsigned char>(c)))
      return false;
  }
  return true;
}

// What is wrong with the loose object in `path` ("" when nothing).
std::string CheckObject(const std::filesystem::path& path) {
  // Non-blocking and checked to be a plain file: a FIFO under an object's name must not hang
  // the start either.
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
  if (fd < 0) return std::string("cannot open: ") + std::strerror(errno);
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    return "not a regular file";
  }
  z_stream z{};
  if (inflateInit(&z) != Z_OK) {
    ::close(fd);
    return "zlib: cannot start";
  }
  std::array<unsigned char, 16 * 1024> in{}, out{};
  std::string header;  // "type size", until the NUL
  bool in_header = true;
  uint64_t body = 0;
  int rc = Z_OK;
  std::string problem;
  while (rc != Z_STREAM_END && problem.empty()) {
    const ssize_t n = ::read(fd, in.data(), in.size());
    if (n < 0) {
      problem = std::string("read: ") + std::strerror(errno);
      break;
    }
    if (n == 0) {
      problem = "truncated: the compressed stream ends early";
      break;
    }
    z.next_in = in.data();
    z.avail_in = static_cast<uInt>(n);
    while (z.avail_in > 0 && rc != Z_STREAM_END) {
      z.next_out = out.data();
      z.avail_out = static_cast<uInt>(out.size());
      rc = inflate(&z, Z_NO_FLUSH);
      if (rc != Z_OK && rc != Z_STREAM_END && rc != Z_BUF_ERROR) {
        problem = std::string("not a zlib stream (") + (z.msg ? z.msg : "inflate failed") + ")";
        break;
      }
      const size_t produced = out.size() - z.avail_out;
      size_t i = 0;
      for (; in_header && i < produced; ++i) {
        if (out[i] == 0) {
          in_header = false;
        } else if (header.size() < 32) {
          header.push_back(static_cast<char>(out[i]));
        } else {
          problem = "no object header";
          break;
        }
      }
      if (!problem.empty()) break;
      body += produced - i;
      if (rc == Z_BUF_ERROR && produced == 0) break;  // needs more input
    }
    if (rc == Z_STREAM_END && z.avail_in > 0) problem = "bytes after the compressed stream";
  }
  inflateEnd(&z);
  ::close(fd);
  if (!problem.empty()) return problem;
  const size_t space = header.find(' ');
  uint64_t size = 0;
  const std::string_view type = std::string_view(header).substr(0, space);
  const char* digits = header.data() + (space == std::string::npos ? header.size() : space + 1);
  const auto [end, ec] = std::from_chars(digits, header.data() + header.size(), size);
  if (in_header || space == std::string::npos || ec != std::errc() ||
      end != header.data() + header.size() ||
      (type != "blob" && type != "tree" && type != "commit" && type != "tag")) {
    return "no object header";
  }
  if (size != body) {
    return "header says " + std::to_string(size) + " bytes, " + std::to_string(body) + " follow";
  }
  return "";
}

}  // namespace

Status VerifyLooseObjects(const std::filesystem::path& git_dir, size_t* checked) {
  size_t count = 0;
  std::error_code ec;
  const std::filesystem::path objects = git_dir / "objects";
  for (std::filesystem::directory_iterator dir(objects, ec), end; !ec && dir != end;
       dir.increment(ec)) {
    const std::string fan = dir->path().filename().string();
    if (fan.size() != 2 || !IsHex(fan) || !dir->is_directory(ec)) continue;
    for (std::filesystem::directory_iterator f(dir->path(), ec), fend; !ec && f != fend;
         f.increment(ec)) {
      const std::string rest = f->path().filename().string();
      if (rest.size() != 38 || !IsHex(rest)) continue;  // temporary files of a write
      ++count;
      if (std::string problem = CheckObject(f->path()); !problem.empty()) {
        return FailedPrecondition(f->path().string() + ": corrupt object " + fan + rest + ": " +
                                  problem + "; restore " + git_dir.string() +
                                  " from a backup, or move it aside to " + "start a new history");
      }
    }
  }
  if (ec && ec != std::errc::no_such_file_or_directory) {
    return FailedPrecondition(objects.string() + ": " + ec.message());
  }
  if (checked != nullptr) *checked = count;
  return Status::Ok();
}

}  // namespace ballast::git::internal
