#pragma once

// The pinned history entry (`ballast rollback ID --pin`), kept in STATE_DIR/pin so that it
// survives restarts. The only code that touches that file.
//
// Thread-safe: the API's worker writes it, start-up reads it, `unpin` clears it; one mutex
// orders them. Every write is durable (localfs::WriteFileAtomically): after a crash the file
// holds the old pin or the new one.

#include <cstdint>
#include <filesystem>
#include <mutex>
#include <optional>

#include "model/status.h"

namespace ballast::reconciler {

class PinStore {
 public:
  explicit PinStore(std::filesystem::path file) : file_(std::move(file)) {}

  // The pinned entry, or nullopt when none is. A file that does not hold a positive entry id is
  // an error that names it (never read as "no pin": that would resume auto-sync unasked).
  Result<std::optional<int64_t>> Load() const;
  // Pins entry `id` (> 0).
  Status Store(int64_t id);
  // Unpins (no pin is fine).
  Status Clear();

  const std::filesystem::path& file() const { return file_; }

 private:
  mutable std::mutex mu_;
  const std::filesystem::path file_;
};

}  // namespace ballast::reconciler
