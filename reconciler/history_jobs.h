#pragma once

// The reconciler's work on its history (STATE_DIR/history.git) and through the manifest
// repository: recording each applied sync, reading entries back (start-up, the API, diffs),
// rollback (a commit pushed to the tracked branch), pinning, and the auto-rollback of a
// Deployment that missed its progress deadline.
//
// Every method blocks on libgit2 and runs on the service's worker thread (reconciler/worker.h),
// never on the loop thread. The HistoryStore is thread-safe; the GitSource is used from the
// worker only. The PinStore owns the pin file.

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "clock/clock.h"
#include "model/manifest.h"
#include "model/status.h"
#include "reconciler/controller.h"
#include "reconciler/pin_store.h"
#include "sources/git/git_source.h"
#include "sources/git/history_store.h"

namespace ballast::reconciler {

// One `history` item as the API lists it (and the status page shows it).
model::Json HistoryItemJson(const git::HistoryEntry& entry);

// What start-up restores: the newest entry's applied state, older entries' objects (their pod
// templates, to adopt the pods of a rollout that was under way), and the pin.
struct StartupHistory {
  int64_t latest = 0;  // 0: history is empty
  AppliedState applied;
  std::vector<model::Manifest> older_objects;
  std::optional<int64_t> pinned;
  AppliedState pinned_state;  // when pinned
};

// An entry's objects, parsed back, and the source commit it ran.
struct EntryObjects {
  int64_t id = 0;
  std::string revision;
  std::vector<model::Manifest> objects;
  std::vector<model::SourceFile> source_files;
};

class HistoryJobs {
 public:
  HistoryJobs(git::HistoryStore* history, git::GitSource* source, PinStore* pins,
              git::SourceConfig source_config, const Clock* clock)
      : history_(history),
        source_(source),
        pins_(pins),
        source_config_(std::move(source_config)),
        clock_(clock) {}

  Result<StartupHistory> LoadAtStart();
  // Records an applied sync; the entry's id.
  Result<int64_t> Append(const HistoryAppend& append);
  // Newest first, entries older than `before` (0: from the newest), at most `limit`.
  Result<model::Json> ListJson(int64_t before, size_t limit);
  Result<EntryObjects> ReadObjects(int64_t id);
  // An entry restored through the manifest repository.
  struct Restored {
    int64_t id = 0;
    std::string revision;  // the source commit the entry ran
    git::RestoreResult result;
  };
  // Commits entry `id`'s source files to the tracked branch and pushes (`requested_by` goes in
  // the commit message). PermissionDenied for a read-only remote, with the way out named.
  Result<Restored> Rollback(int64_t id, const std::string& requested_by);
  // Pins entry `id`: its state, to hold instead of the source.
  Result<AppliedState> Pin(int64_t id);
  Status Unpin();
  // Restores the newest entry that ran `a.to_revision` of `a.key`. NotFound when no entry of the
  // last 100 did.
  Result<Restored> AutoRollback(const reconciler::AutoRollback& a);

 private:
  Result<git::RestoreResult> Restore(const git::HistoryEntryContents& contents,
                                     const std::string& requested_by);

  git::HistoryStore* const history_;
  git::GitSource* const source_;
  PinStore* const pins_;
  const git::SourceConfig source_config_;
  const Clock* const clock_;
};

}  // namespace ballast::reconciler
