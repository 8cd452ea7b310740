#pragma once

// The manifest source: one remote, one ref, one path. Each Poll() fetches into a bare clone in
// the state directory, resolves the ref and reads every file under the path straight from the
// object database at that commit (no checkout), then parses the manifest files among them.
// Parsed files are cached by (path, blob id), so a commit that changes one file re-parses one.
//
// Errors (unreachable remote, refused credentials, unknown ref, missing path) come back as a
// Status naming the remote and the cause; none is fatal, the next Poll() tries again. A corrupt
// local clone is deleted and cloned again within the same Poll().
//
// Typical use (the reconciler, on a worker thread since Poll() blocks on the network):
//   GitSource source({.remote = {.url = url, .password_file = token_file},
//                     .ref = "main", .path = "deploy", .clone_dir = state_dir / "source.git"});
//   auto snap = source.Poll();
//   if (!snap.ok())            -> report snap.status(); keep running the last good state
//   else if (!snap->changed)   -> nothing new
//   else if (!snap->tree->ok())-> report snap->tree->diagnostics (file:line:col)
//   else                       -> plan snap->tree->manifests; after applying,
//                                 history.Append(record, snap->tree->files, snap->tree->manifests)
//   rollback: history.Read(id) -> source.Restore({.entry_id = id, .source_sha = ...,
//                                                  .files = contents.source_files, ...})

#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "model/manifest.h"
#include "model/status.h"
#include "sources/git/remote.h"

namespace ballast::git {

struct SourceConfig {
  RemoteConfig remote;
  // A branch ("main", "refs/heads/main"), a tag ("v1.2", "refs/tags/v1.2"), a full 40-hex
  // commit id, or "HEAD" (the remote's default branch, looked up at every poll).
  std::string ref = "main";
  // Folder inside the repository whose files are read ("" or "." = the whole tree).
  std::string path;
  // Where the bare clone lives (created if missing), e.g. STATE_DIR/source.git.
  std::filesystem::path clone_dir;
  model::ParseLimits parse_limits;
  size_t max_files = 100000;  // files and folders under the path (a folder listed twice: twice)
  uint64_t max_total_bytes = uint64_t{512} << 20;
  // Objects (documents) in one revision; beyond it the revision is refused whole, as one with
  // too many files is, and the last good state keeps running (serve --max-objects).
  size_t max_objects = 100000;
};

struct CommitInfo {
  std::string sha;  // full 40-hex id
  std::string author_name;
  std::string author_email;
  int64_t time = 0;             // author time, seconds since the epoch (UTC)
  int time_offset_minutes = 0;  // author's UTC offset
  std::string message;          // full message
  std::string Summary() const;  // first line of the message
  std::string ShortSha() const { return sha.substr(0, 7); }
};

// What the source holds at one commit. Immutable once built; shared between snapshots.
struct SourceTree {
  // Every regular file under the tracked path, byte for byte, path relative to the tracked path
  // ("apps/web.yaml"), sorted by path. Non-manifest files (README.md) are included.
  std::vector<model::SourceFile> files;
  // Manifests parsed from the files whose names pass model::IsManifestFileName, in file order.
  // Their SourceRef::file is the path from the repository root, as a user would look it up.
  // The pointers point into `parsed_files` and live as long as this SourceTree (hold the
  // shared_ptr); unchanged files share their parse results across snapshots, so a new commit
  // costs no copy of the unchanged objects.
  std::vector<const model::Manifest*> manifests;
  // Per-file diagnostics plus duplicate objects across files.
  std::vector<model::Diagnostic> diagnostics;
  // One parse result per manifest file, in file order (owner of what `manifests` points to).
  std::vector<std::shared_ptr<const model::FileParseResult>> parsed_files;
  bool ok() const { return model::CountErrors(diagnostics) == 0; }
};

struct SourceSnapshot {
  CommitInfo commit;
  std::shared_ptr<const SourceTree> tree;  // never null in a returned snapshot
  // False when the commit is the one the previous Poll() of this object returned (the tree is
  // then the very same object).
  bool changed = true;
  // The commit polled before this one (empty on the first poll of this clone) and whether the
  // new commit does not descend from it (a force-push or a ref moved backwards). Remembered in
  // the clone, so it also holds across restarts.
  std::string previous_sha;
  bool history_rewritten = false;
  // The local clone was unreadable and has been cloned again during this poll.
  bool recloned = false;
};

// Input of a rollback: put an earlier state of the tracked path back on the tracked branch.
struct RestoreRequest {
  int64_t entry_id = 0;                  // history entry number, for the commit message
  std::string source_sha;                // the source commit that entry recorded, for the message
  std::vector<model::SourceFile> files;  // the entry's files, relative to the tracked path
  std::string requested_by;  // who asked ("api token", "alice"), recorded in the message
  std::string author_name = "ballast";
  std::string author_email = "ballast@localhost";
  // Test seam: runs after the rollback commit is built and before it is pushed.
  std::function<void()> before_push;
};

struct RestoreResult {
  std::string commit;         // the commit now at the head of the branch
  std::string previous_head;  // the head it was built on
  bool pushed = false;        // false when the branch already had exactly these files
  int attempts = 1;           // 2 when a concurrent push forced one rebuild
};

// Thread-compatible: one thread at a time (the reconciler runs it off its event loop).
class GitSource {
 public:
  explicit GitSource(SourceConfig config);
  ~GitSource();
  GitSource(const GitSource&) = delete;
  GitSource& operator=(const GitSource&) = delete;

  // Fetches and reads the tracked path at the resolved commit.
  Result<SourceSnapshot> Poll();

  // Commits `request.files` as the content of the tracked path on top of the branch head, with
  // the message "Roll back to #N (source abc1234)" and who asked, and pushes it. On a rejection
  // because someone pushed meanwhile, fetches and rebuilds once (then kAborted). A read-only
  // remote or refused credentials fail with kPermissionDenied and change nothing remotely.
  // REQUIRES: the ref is a branch (kFailedPrecondition otherwise).
  Result<RestoreResult> Restore(const RestoreRequest& request);

  const SourceConfig& config() const { return config_; }

  // How many files have been parsed since construction (cache misses), for tests and metrics.
  uint64_t files_parsed() const;

 private:
  class Impl;
  SourceConfig config_;
  std::unique_ptr<Impl> impl_;
};

// The version of the libgit2 this process runs, e.g. "1.5.1".
std::string Libgit2Version();

}  // namespace ballast::git
