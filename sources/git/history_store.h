#pragma once

// The history store: STATE_DIR/history.git, a bare repository with one commit per applied sync
// on branch `main`. Each commit's tree holds
//   source/…                               the files under the tracked path, byte for byte
//   objects/<kind>/<namespace>/<name>.yaml the normalized objects (model::ToYaml; an object
//                                          opened from a SOPS file sealed again, model::SealSops)
//   sync.json                              the record of the sync (HistoryRecord + id)
// so `git log` / `git show` on it read as an audit trail.
//
// Entries are numbered 1, 2, 3, … in append order; an entry's id is its depth on `main`, so the
// counter lives in the commits themselves and advances exactly when the ref moves. Append writes
// every object first and moves the ref last (compare-and-swap on the old head), so a crash at
// any point leaves the repository fsck-clean and without a half entry.

#include <cstdint>
#include <filesystem>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "model/manifest.h"
#include "model/object.h"
#include "model/status.h"

namespace ballast::git {

// What the caller records about one applied sync.
struct HistoryRecord {
  std::string source_url;  // credentials in the URL are masked before storing
  std::string source_ref;
  std::string source_path;
  std::string source_sha;  // full commit id of the manifest repository
  std::string time;        // RFC 3339, from the caller's clock
  std::string trigger;     // "poll", "webhook", "api", "rollback #3", …
  std::string result;      // "Succeeded", "Failed", …
  model::Json plan_summary = model::Json::object();
  bool history_rewrite = false;  // the source commit did not descend from the previous one
  std::string message;           // free text, e.g. the source commit's summary
  friend bool operator==(const HistoryRecord&, const HistoryRecord&) = default;
};

struct HistoryEntry {
  int64_t id = 0;
  std::string commit;  // the history.git commit id
  HistoryRecord record;
};

struct HistoryEntryContents {
  HistoryEntry entry;
  std::vector<model::SourceFile> source_files;  // paths relative to source/, sorted
  std::vector<model::SourceFile> objects;       // paths relative to objects/, sorted
};

struct HistoryFileChange {
  enum class Kind { kAdded, kDeleted, kModified };
  std::string path;  // "source/web.yaml", "objects/Deployment/default/web.yaml"
  Kind kind = Kind::kModified;
  std::string patch;  // unified diff of this file
};

struct HistoryDiff {
  int64_t from = 0;
  int64_t to = 0;
  std::vector<HistoryFileChange> changes;  // sorted by path; sync.json is left out
  std::string ToString() const;            // all patches, concatenated
};

// Thread-safe. Assumes it is the only writer of `dir` (one reconciler owns the state directory):
// Open() clears ref locks left by a crashed writer.
class HistoryStore {
 public:
  // Opens `dir` (e.g. STATE_DIR/history.git), creating a bare repository if missing.
  static Result<std::unique_ptr<HistoryStore>> Open(const std::filesystem::path& dir);
  ~HistoryStore();

  // Records one applied sync. `source_files` are relative to the tracked path; `objects` are
  // stored as objects/<kind>/<namespace>/<name>.yaml (the first of duplicate keys wins).
  Result<HistoryEntry> Append(const HistoryRecord& record,
                              const std::vector<model::SourceFile>& source_files,
                              const std::vector<const model::Manifest*>& objects);
  Result<HistoryEntry> Append(const HistoryRecord& record,
                              const std::vector<model::SourceFile>& source_files,
                              const std::vector<model::Manifest>& objects);

  // Newest first: up to `limit` entries with id < `before_id` (0: start at the newest).
  Result<std::vector<HistoryEntry>> List(int64_t before_id = 0, size_t limit = 50) const;

  // The newest entry's id; 0 when the history is empty.
  Result<int64_t> LatestId() const;

  // One entry with its files. kNotFound for an id that does not exist.
  Result<HistoryEntryContents> Read(int64_t id) const;

  // What changed from entry `from` to entry `to` (source files and objects).
  Result<HistoryDiff> Diff(int64_t from, int64_t to) const;

  const std::filesystem::path& dir() const { return dir_; }

 private:
  class Impl;
  HistoryStore(std::filesystem::path dir, std::unique_ptr<Impl> impl);
  std::filesystem::path dir_;
  std::unique_ptr<Impl> impl_;
  mutable std::mutex mu_;  // serializes all access to impl_
};

// The path of an object inside history entries: "Deployment/default/web.yaml".
std::string HistoryObjectPath(const model::ObjectKey& key);

}  // namespace ballast::git
