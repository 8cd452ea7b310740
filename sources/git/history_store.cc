#include "sources/git/history_store.h"

#include <algorithm>
#include <set>
#include <system_error>

#include "failpoint/failpoint.h"
#include "log/log.h"
#include "model/codec.h"
#include "model/sops.h"
#include "sources/git/libgit2_util.h"
#include "sources/git/loose_objects.h"

namespace ballast::git {

using internal::BlobPtr;
using internal::CommitPtr;
using internal::DiffPtr;
using internal::Libgit2Error;
using internal::OidHex;
using internal::PatchPtr;
using internal::RepoPtr;
using internal::TreeEntryPtr;
using internal::TreePtr;
using model::Json;

namespace {

constexpr char kBranch[] = "refs/heads/main";
constexpr char kSyncFile[] = "sync.json";
constexpr size_t kMaxSyncJsonBytes = 16u << 20;

std::string SafeComponent(std::string s) {
  if (s.empty()) return "_";
  for (char& c : s) {
    if (c == '/' || c == '\0') c = '_';
  }
  if (s == "." || s == ".." || s == ".git") s = "_" + s;
  return s;
}

Json RecordToJson(int64_t id, const HistoryRecord& r) {
  return Json{{"id", id},
              {"source",
               {{"url", RedactUrl(r.source_url)},
                {"ref", r.source_ref},
                {"path", r.source_path},
                {"revision", r.source_sha}}},
              {"time", r.time},
              {"trigger", r.trigger},
              {"result", r.result},
              {"plan", r.plan_summary},
              {"historyRewrite", r.history_rewrite},
              {"message", r.message}};
}

HistoryRecord RecordFromJson(const Json& j) {
  HistoryRecord r;
  const Json& s = j.value("source", Json::object());
  r.source_url = s.value("url", "");
  r.source_ref = s.value("ref", "");
  r.source_path = s.value("path", "");
  r.source_sha = s.value("revision", "");
  r.time = j.value("time", "");
  r.trigger = j.value("trigger", "");
  r.result = j.value("result", "");
  r.plan_summary = j.value("plan", Json::object());
  r.history_rewrite = j.value("historyRewrite", false);
  r.message = j.value("message", "");
  return r;
}

}  // namespace

std::string HistoryObjectPath(const model::ObjectKey& key) {
  return SafeComponent(key.kind) + "/" +
         SafeComponent(key.namespace_.empty() ? "_cluster" : key.namespace_) + "/" +
         SafeComponent(key.name) + ".yaml";
}

std::string HistoryDiff::ToString() const {
  std::string out;
  for (const auto& c : changes) out += c.patch;
  return out;
}

class HistoryStore::Impl {
 public:
  explicit Impl(RepoPtr repo) : repo_(std::move(repo)) {}

  // The head commit (null when the history is empty) and its entry id.
  Status Head(CommitPtr* commit, int64_t* id) const {
    git_oid oid;
    int rc = git_reference_name_to_id(&oid, repo_.get(), kBranch);
    if (rc == GIT_ENOTFOUND) {
      commit->reset();
      *id = 0;
      return Status::Ok();
    }
    if (rc != 0) return Libgit2Error(rc, "history: read " + std::string(kBranch));
    git_commit* raw = nullptr;
    if (rc = git_commit_lookup(&raw, repo_.get(), &oid); rc != 0) {
      return Libgit2Error(rc, "history: read head commit");
    }
    commit->reset(raw);
    auto record = ReadSyncJson(raw);
    if (!record.ok()) return record.status();
    *id = record->value("id", int64_t{0});
    if (*id <= 0) return Internal("history: head commit " + OidHex(oid) + " has no entry id");
    return Status::Ok();
  }

  Result<Json> ReadSyncJson(const git_commit* commit) const {
    auto content = ReadFile(commit, kSyncFile);
    if (!content.ok()) return content.status();
    Json j = Json::parse(*content, nullptr, /*allow_exceptions=*/false);
    if (j.is_discarded() || !j.is_object()) {
      return Internal("history: sync.json of " + OidHex(*git_commit_id(commit)) + " is not JSON");
    }
    return j;
  }

  Result<std::string> ReadFile(const git_commit* commit, const char* path) const {
    git_tree* raw_tree = nullptr;
    if (int rc = git_commit_tree(&raw_tree, commit); rc != 0) {
      return Libgit2Error(rc, "history: read tree");
    }
    TreePtr tree(raw_tree);
    git_tree_entry* raw_entry = nullptr;
    if (int rc = git_tree_entry_bypath(&raw_entry, tree.get(), path); rc != 0) {
      return Libgit2Error(
          rc, std::string("history: ") + path + " of " + OidHex(*git_commit_id(commit)));
    }
    TreeEntryPtr entry(raw_entry);
    return ReadBlob(*git_tree_entry_id(entry.get()), path, kMaxSyncJsonBytes);
  }

  Result<std::string> ReadBlob(const git_oid& id, const std::string& what, size_t limit) const {
    git_blob* raw = nullptr;
    if (int rc = git_blob_lookup(&raw, repo_.get(), &id); rc != 0) {
      return Libgit2Error(rc, "history: read " + what);
    }
    BlobPtr blob(raw);
    auto size = static_cast<size_t>(git_blob_rawsize(blob.get()));
    if (size > limit) return ResourceExhausted("history: " + what + " is over the size limit");
    return std::string(static_cast<const char*>(git_blob_rawcontent(blob.get())), size);
  }

  // The commit of entry `id`: entry ids equal depth on `main`.
  Result<CommitPtr> CommitFor(int64_t id) const {
    CommitPtr head;
    int64_t head_id = 0;
    if (Status s = Head(&head, &head_id); !s.ok()) return s;
    if (id < 1 || id > head_id) {
      return NotFound("history entry #" + std::to_string(id) + " does not exist (newest is #" +
                      std::to_string(head_id) + ")");
    }
    CommitPtr current = std::move(head);
    for (int64_t i = head_id; i > id; --i) {
      git_commit* parent = nullptr;
      if (int rc = git_commit_parent(&parent, current.get(), 0); rc != 0) {
        return Libgit2Error(rc, "history: walk to entry #" + std::to_string(id));
      }
      current.reset(parent);
    }
    return current;
  }

  Result<HistoryEntry> EntryOf(const git_commit* commit) const {
    auto j = ReadSyncJson(commit);
    if (!j.ok()) return j.status();
    HistoryEntry e;
    e.id = j->value("id", int64_t{0});
    e.commit = OidHex(*git_commit_id(commit));
    e.record = RecordFromJson(*j);
    return e;
  }

  Result<HistoryEntry> Append(const HistoryRecord& record,
                              const std::vector<model::SourceFile>& source_files,
                              const std::vector<const model::Manifest*>& objects) {
    CommitPtr head;
    int64_t head_id = 0;
    if (Status s = Head(&head, &head_id); !s.ok()) return s;
    const int64_t id = head_id + 1;

    std::vector<std::string> storage;  // owns generated contents for the TreeFile views
    storage.reserve(objects.size() + 1);
    std::vector<internal::TreeFile> files;
    files.reserve(source_files.size() + objects.size() + 1);
    for (const auto& f : source_files) files.push_back({"source/" + f.path, f.content});
    std::set<std::string> seen;
    std::vector<std::string> object_paths;
    object_paths.reserve(objects.size());
    for (const model::Manifest* m : objects) {
      std::string path = "objects/" + HistoryObjectPath(m->key());
      if (!seen.insert(path).second) continue;
      // An object opened from a SOPS file is kept as one again, for the same recipients: its
      // values never reach history.git in the clear (source/ holds the file as git had it).
      storage.push_back(m->sops ? model::SealSops(model::ToJson(*m), *m->sops) : model::ToYaml(*m));
      object_paths.push_back(std::move(path));
    }
    for (size_t i = 0; i < object_paths.size(); ++i) {
      files.push_back({object_paths[i], storage[i]});
    }
    storage.push_back(RecordToJson(id, record).dump(2) + "\n");
    files.push_back({kSyncFile, storage.back()});

    auto tree_id = internal::WriteTree(repo_.get(), files);
    if (!tree_id.ok()) return tree_id.status().WithContext("history: append");
    git_tree* raw_tree = nullptr;
    if (int rc = git_tree_lookup(&raw_tree, repo_.get(), &*tree_id); rc != 0) {
      return Libgit2Error(rc, "history: append");
    }
    TreePtr tree(raw_tree);
    git_signature* raw_sig = nullptr;
    if (int rc = git_signature_now(&raw_sig, "ballast", "ballast@localhost"); rc != 0) {
      return Libgit2Error(rc, "history: signature");
    }
    internal::SignaturePtr sig(raw_sig);
    std::string sha7 = record.source_sha.substr(0, 7);
    std::string message = "#" + std::to_string(id) + " " + record.trigger + ": " + record.result +
                          " at source " + sha7 + "\n\nsource: " + RedactUrl(record.source_url) +
                          " " + record.source_ref + " " + record.source_path +
                          "\nrevision: " + record.source_sha + "\ntime: " + record.time + "\n";
    if (record.history_rewrite) message += "history-rewrite: true\n";
    if (!record.message.empty()) message += "\n" + record.message + "\n";
    const git_commit* parents[] = {head.get()};
    git_oid commit_id;
    if (int rc = git_commit_create(&commit_id, repo_.get(), nullptr, sig.get(), sig.get(), nullptr,
                                   message.c_str(), tree.get(), head ? 1 : 0, parents);
        rc != 0) {
      return Libgit2Error(rc, "history: write commit");
    }
    // Last step, and the only one that makes the entry visible.
    if (Status s = failpoint::Hit("history-append-before-ref"); !s.ok()) return s;
    git_reference* raw_ref = nullptr;
    int rc = head ? git_reference_create_matching(&raw_ref, repo_.get(), kBranch, &commit_id, 1,
                                                  git_commit_id(head.get()), "append")
                  : git_reference_create(&raw_ref, repo_.get(), kBranch, &commit_id, 0, "append");
    if (rc == GIT_EMODIFIED || rc == GIT_EEXISTS) {
      return Aborted("history: another writer appended concurrently; entry #" + std::to_string(id) +
                     " not written");
    }
    if (rc != 0) return Libgit2Error(rc, "history: move " + std::string(kBranch));
    git_reference_free(raw_ref);
    // Crash or sleep only: the entry is written, an error here would be a lie.
    (void)failpoint::Hit("history-append-after-ref");
    HistoryEntry entry;
    entry.id = id;
    entry.commit = OidHex(commit_id);
    entry.record = record;
    entry.record.source_url = RedactUrl(record.source_url);
    return entry;
  }

  Result<std::vector<HistoryEntry>> List(int64_t before_id, size_t limit) const {
    std::vector<HistoryEntry> out;
    CommitPtr head;
    int64_t head_id = 0;
    if (Status s = Head(&head, &head_id); !s.ok()) return s;
    if (head_id == 0 || limit == 0) return out;
    int64_t start = before_id <= 0 ? head_id : std::min(head_id, before_id - 1);
    if (start < 1) return out;
    auto commit = CommitFor(start);
    if (!commit.ok()) return commit.status();
    CommitPtr current = std::move(*commit);
    while (current && out.size() < limit) {
      auto e = EntryOf(current.get());
      if (!e.ok()) return e.status();
      out.push_back(std::move(*e));
      if (git_commit_parentcount(current.get()) == 0) break;
      git_commit* parent = nullptr;
      if (int rc = git_commit_parent(&parent, current.get(), 0); rc != 0) {
        return Libgit2Error(rc, "history: list");
      }
      current.reset(parent);
    }
    return out;
  }

  Status ReadFolder(const git_tree* root, const char* folder,
                    std::vector<model::SourceFile>* out) const {
    git_tree_entry* raw_entry = nullptr;
    int rc = git_tree_entry_bypath(&raw_entry, root, folder);
    if (rc == GIT_ENOTFOUND) return Status::Ok();
    if (rc != 0) return Libgit2Error(rc, std::string("history: read ") + folder);
    TreeEntryPtr entry(raw_entry);
    git_tree* raw_sub = nullptr;
    if (rc = git_tree_lookup(&raw_sub, repo_.get(), git_tree_entry_id(entry.get())); rc != 0) {
      return Libgit2Error(rc, std::string("history: read ") + folder);
    }
    TreePtr sub(raw_sub);
    std::vector<internal::TreeBlob> blobs;
    if (Status s = internal::ListBlobs(repo_.get(), sub.get(), "", &blobs, 1u << 20); !s.ok()) {
      return s;
    }
    std::sort(blobs.begin(), blobs.end(),
              [](const auto& a, const auto& b) { return a.path < b.path; });
    for (const auto& b : blobs) {
      auto content = ReadBlob(b.id, b.path, uint64_t{1} << 30);
      if (!content.ok()) return content.status();
      out->push_back({b.path, std::move(*content)});
    }
    return Status::Ok();
  }

  Result<HistoryEntryContents> Read(int64_t id) const {
    auto commit = CommitFor(id);
    if (!commit.ok()) return commit.status();
    HistoryEntryContents contents;
    auto entry = EntryOf(commit->get());
    if (!entry.ok()) return entry.status();
    contents.entry = std::move(*entry);
    git_tree* raw_tree = nullptr;
    if (int rc = git_commit_tree(&raw_tree, commit->get()); rc != 0) {
      return Libgit2Error(rc, "history: read tree");
    }
    TreePtr tree(raw_tree);
    if (Status s = ReadFolder(tree.get(), "source", &contents.source_files); !s.ok()) return s;
    if (Status s = ReadFolder(tree.get(), "objects", &contents.objects); !s.ok()) return s;
    return contents;
  }

  Result<HistoryDiff> Diff(int64_t from, int64_t to) const {
    auto a = CommitFor(from);
    if (!a.ok()) return a.status();
    auto b = CommitFor(to);
    if (!b.ok()) return b.status();
    git_tree* raw_a = nullptr;
    git_tree* raw_b = nullptr;
    if (int rc = git_commit_tree(&raw_a, a->get()); rc != 0) return Libgit2Error(rc, "history");
    TreePtr tree_a(raw_a);
    if (int rc = git_commit_tree(&raw_b, b->get()); rc != 0) return Libgit2Error(rc, "history");
    TreePtr tree_b(raw_b);
    git_diff_options options;
    git_diff_options_init(&options, GIT_DIFF_OPTIONS_VERSION);
    git_diff* raw_diff = nullptr;
    if (int rc =
            git_diff_tree_to_tree(&raw_diff, repo_.get(), tree_a.get(), tree_b.get(), &options);
        rc != 0) {
      return Libgit2Error(rc, "history: diff");
    }
    DiffPtr diff(raw_diff);
    HistoryDiff out;
    out.from = from;
    out.to = to;
    size_t n = git_diff_num_deltas(diff.get());
    for (size_t i = 0; i < n; ++i) {
      const git_diff_delta* delta = git_diff_get_delta(diff.get(), i);
      HistoryFileChange change;
      change.path =
          delta->status == GIT_DELTA_DELETED ? delta->old_file.path : delta->new_file.path;
      if (change.path == kSyncFile) continue;
      change.kind = delta->status == GIT_DELTA_ADDED     ? HistoryFileChange::Kind::kAdded
                    : delta->status == GIT_DELTA_DELETED ? HistoryFileChange::Kind::kDeleted
                                                         : HistoryFileChange::Kind::kModified;
      git_patch* raw_patch = nullptr;
      if (int rc = git_patch_from_diff(&raw_patch, diff.get(), i); rc != 0) {
        return Libgit2Error(rc, "history: diff " + change.path);
      }
      PatchPtr patch(raw_patch);
      git_buf buf = GIT_BUF_INIT;
      if (patch && git_patch_to_buf(&buf, patch.get()) == 0) {
        change.patch.assign(buf.ptr, buf.size);
      }
      git_buf_dispose(&buf);
      out.changes.push_back(std::move(change));
    }
    std::sort(out.changes.begin(), out.changes.end(),
              [](const auto& x, const auto& y) { return x.path < y.path; });
    return out;
  }

 private:
  RepoPtr repo_;
};

HistoryStore::HistoryStore(std::filesystem::path dir, std::unique_ptr<Impl> impl)
    : dir_(std::move(dir)), impl_(std::move(impl)) {}
HistoryStore::~HistoryStore() = default;

Result<std::unique_ptr<HistoryStore>> HistoryStore::Open(const std::filesystem::path& dir) {
  internal::EnsureLibgit2();
  std::error_code ec;
  git_repository* raw = nullptr;
  const std::string path = dir.string();
  if (std::filesystem::exists(dir / "HEAD", ec)) {
    // Before libgit2 reads any: a truncated loose object would hang it (loose_objects.h).
    if (Status s = internal::VerifyLooseObjects(dir); !s.ok()) return s.WithContext("history");
    if (int rc = git_repository_open_bare(&raw, path.c_str()); rc != 0) {
      return Libgit2Error(rc, "history: open " + path);
    }
    // A writer that crashed while moving the ref leaves its lock behind; this process is the
    // only writer, so any lock now is stale.
    for (const char* lock : {"refs/heads/main.lock", "packed-refs.lock", "HEAD.lock"}) {
      if (std::filesystem::remove(dir / lock, ec)) {
        LogEvent(LogLevel::kWarn, "history_stale_lock_removed", {{"path", (dir / lock).string()}});
      }
    }
  } else {
    // Created beside its final name and renamed into place, so a crash during creation leaves
    // either no repository or a whole one (a leftover from an earlier crash is removed here).
    if (std::filesystem::exists(dir, ec)) {
      if (!std::filesystem::is_empty(dir, ec)) {
        return FailedPrecondition("history: " + path +
                                  " exists and is not a git repository; refusing to touch it");
      }
      std::filesystem::remove(dir, ec);
    }
    std::filesystem::path staging = dir;
    staging += ".creating";
    std::filesystem::remove_all(staging, ec);
    std::filesystem::create_directories(dir.parent_path().empty() ? "." : dir.parent_path(), ec);
    git_repository_init_options options;
    git_repository_init_options_init(&options, GIT_REPOSITORY_INIT_OPTIONS_VERSION);
    options.flags = GIT_REPOSITORY_INIT_BARE | GIT_REPOSITORY_INIT_MKPATH;
    options.initial_head = "main";
    options.description = "ballast history: one commit per applied sync";
    if (int rc = git_repository_init_ext(&raw, staging.string().c_str(), &options); rc != 0) {
      return Libgit2Error(rc, "history: create " + path);
    }
    git_repository_free(raw);
    raw = nullptr;
    std::filesystem::rename(staging, dir, ec);
    if (ec) return Internal("history: create " + path + ": " + ec.message());
    if (int rc = git_repository_open_bare(&raw, path.c_str()); rc != 0) {
      return Libgit2Error(rc, "history: open " + path);
    }
  }
  auto impl = std::make_unique<Impl>(RepoPtr(raw));
  return std::unique_ptr<HistoryStore>(new HistoryStore(dir, std::move(impl)));
}

Result<HistoryEntry> HistoryStore::Append(const HistoryRecord& record,
                                          const std::vector<model::SourceFile>& source_files,
                                          const std::vector<const model::Manifest*>& objects) {
  std::lock_guard lock(mu_);
  return impl_->Append(record, source_files, objects);
}

Result<HistoryEntry> HistoryStore::Append(const HistoryRecord& record,
                                          const std::vector<model::SourceFile>& source_files,
                                          const std::vector<model::Manifest>& objects) {
  std::vector<const model::Manifest*> pointers;
  pointers.reserve(objects.size());
  for (const model::Manifest& m : objects) pointers.push_back(&m);
  return Append(record, source_files, pointers);
}

Result<std::vector<HistoryEntry>> HistoryStore::List(int64_t before_id, size_t limit) const {
  std::lock_guard lock(mu_);
  return impl_->List(before_id, limit);
}

Result<int64_t> HistoryStore::LatestId() const {
  std::lock_guard lock(mu_);
  CommitPtr head;
  int64_t id = 0;
  if (Status s = impl_->Head(&head, &id); !s.ok()) return s;
  return id;
}

Result<HistoryEntryContents> HistoryStore::Read(int64_t id) const {
  std::lock_guard lock(mu_);
  return impl_->Read(id);
}

Result<HistoryDiff> HistoryStore::Diff(int64_t from, int64_t to) const {
  std::lock_guard lock(mu_);
  return impl_->Diff(from, to);
}

}  // namespace ballast::git
