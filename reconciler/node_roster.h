#pragma once

// The nodes this reconciler has known (STATE_DIR/nodes, one name per line), kept so that a
// restarted reconciler knows whom to wait for before it places anything: a node that ran pods
// and has not reported again yet is not a node without pods. The only code that touches that
// file.
//
// Thread-safe; every write is durable (localfs::WriteFileAtomically): after a crash the file
// holds the old roster or the new one.

#include <cstddef>
#include <filesystem>
#include <mutex>
#include <set>
#include <string>

#include "model/status.h"

namespace ballast::reconciler {

class NodeRoster {
 public:
  explicit NodeRoster(std::filesystem::path file) : file_(std::move(file)) {}

  // The names kept; none when the file does not exist. A file that is not a roster (a line that
  // is not a node name, more than `max_nodes` lines) is an error naming the file and the line.
  Result<std::set<std::string>> Load(size_t max_nodes = 10000) const;
  Status Store(const std::set<std::string>& nodes);

  const std::filesystem::path& file() const { return file_; }

 private:
  mutable std::mutex mu_;
  const std::filesystem::path file_;
};

}  // namespace ballast::reconciler
