#pragma once

// Durable writes of small state files (the reconciler's pin, the agent's pod records): the file
// is replaced so that a crash or power cut at any instant leaves either the old or the new
// content, never a torn one. Write to a temporary file beside it, fsync it, rename it over the
// target, fsync the directory.
//
// Thread-safe as far as the file system is: callers serialise writes to one path.

#include <sys/types.h>

#include <cstddef>
#include <filesystem>
#include <string>
#include <string_view>

#include "model/status.h"

namespace ballast::localfs {

// Replaces `path` with `content` (created with `mode`, before the umask). An error names the
// path and the step that failed (create, write, fsync, rename) with the system's reason; the
// old content is then untouched.
Status WriteFileAtomically(const std::filesystem::path& path, std::string_view content,
                           mode_t mode = 0600);

// The whole file; NotFound when it does not exist; ResourceExhausted when it holds more than
// `max_bytes`; other errors name the path.
Result<std::string> ReadSmallFile(const std::filesystem::path& path, size_t max_bytes = 1 << 20);

// Removes `path` (a missing file is fine) and fsyncs its directory, so the removal survives a
// crash.
Status RemoveFileDurably(const std::filesystem::path& path);

}  // namespace ballast::localfs
