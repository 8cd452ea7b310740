#include "sources/git/git_source.h"

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <map>
#include <optional>
#include <system_error>
#include <thread>
#include <unordered_map>
#include <utility>

#include "failpoint/failpoint.h"
#include "log/log.h"
#include "model/kustomize.h"
#include "sources/git/compact.h"
#include "sources/git/libgit2_util.h"
#include "sources/git/loose_objects.h"
#include "sources/git/restore_message.h"

namespace ballast::git {

using internal::BlobPtr;
using internal::CommitPtr;
using internal::Libgit2Error;
using internal::ObjectPtr;
using internal::OdbPtr;
using internal::OidHex;
using internal::ReferencePtr;
using internal::RemoteOperation;
using internal::RemotePtr;
using internal::RepoPtr;
using internal::TreeEntryPtr;
using internal::TreePtr;

namespace {

constexpr char kLastSeenRef[] = "refs/ballast/last-seen";
constexpr char kRestoreRef[] = "refs/ballast/restore";

bool IsFullSha(std::string_view s) {
  return s.size() == GIT_OID_HEXSZ &&
         std::all_of(s.begin(), s.end(), [](char c) { return std::isxdigit(c) != 0; });
}

std::string NormalizePath(std::string path) {
  while (path.starts_with("./")) path = path.substr(2);
  while (!path.empty() && path.front() == '/') path.erase(path.begin());
  while (!path.empty() && path.back() == '/') path.pop_back();
  if (path == ".") path.clear();
  return path;
}

std::string Redacted(const RemoteConfig& remote) { return RedactUrl(remote.url); }

// `result` with an error message that cannot show the secret in the remote's URL: messages
// name the remote redacted, and this also covers what libgit2 wrote itself (it may quote the
// URL it was given).
template <typename T>
Result<T> WithUrlSecretsRedacted(Result<T> result, const RemoteConfig& remote) {
  if (result.ok()) return result;
  return Status(result.status().code(), RedactUrlSecrets(result.status().message(), remote.url));
}

// The directory a local remote (a path or a file:// URL) names; nullopt for network URLs.
std::optional<std::string> LocalRepositoryPath(const std::string& url) {
  if (url.starts_with("file://")) return url.substr(7);
  if (url.starts_with("/") || url.starts_with("./") || url.starts_with("../")) return url;
  return std::nullopt;
}

CommitInfo ToCommitInfo(const git_commit* commit) {
  CommitInfo info;
  info.sha = OidHex(*git_commit_id(commit));
  if (const git_signature* a = git_commit_author(commit); a != nullptr) {
    info.author_name = a->name != nullptr ? a->name : "";
    info.author_email = a->email != nullptr ? a->email : "";
    info.time = a->when.time;
    info.time_offset_minutes = a->when.offset;
  }
  const char* message = git_commit_message(commit);
  info.message = message != nullptr ? message : "";
  return info;
}

// Why a step failed, and whether the local clone is to blame (then it is cloned again).
struct StepError {
  Status status;
  bool local = false;
};

}  // namespace

std::string CommitInfo::Summary() const { return message.substr(0, message.find('\n')); }

class GitSource::Impl {
 public:
  explicit Impl(const SourceConfig& config) : config_(config), path_(NormalizePath(config.path)) {}

  Result<SourceSnapshot> Poll();
  Result<RestoreResult> Restore(const RestoreRequest& request);
  uint64_t files_parsed = 0;

 private:
  struct Fetched {
    git_oid commit;
    std::string remote_ref;  // "refs/heads/main", "refs/tags/v1", or "" for a commit id
  };

  Status Open();
  Status Wipe();
  // More than kMaxPacks pack files (one per fetch): written again as one, the clone reopened.
  // A failure to compact is logged and changes nothing; an error only when the clone could not
  // be opened again.
  Status CompactIfNeeded();
  Result<SourceSnapshot> PollOnce(StepError* error);
  bool Fetch(Fetched* out, StepError* error);
  bool ReadTree(const git_commit* commit, std::shared_ptr<const SourceTree>* out, StepError* error);
  bool HasObject(const git_oid& oid);
  std::string Where() const { return Redacted(config_.remote); }

  const SourceConfig& config_;
  const std::string path_;
  RepoPtr repo_;
  std::string last_sha_;
  bool recloned_ = false;  // the clone was recreated during the current Poll()
  std::shared_ptr<const SourceTree> last_tree_;
  // Caches keyed by blob id (raw 20 bytes): file bytes, and parse results by (path, blob id).
  std::unordered_map<std::string, std::shared_ptr<const std::string>> blobs_;
  std::map<std::pair<std::string, std::string>, std::shared_ptr<const model::FileParseResult>>
      parsed_;
};

GitSource::GitSource(SourceConfig config)
    : config_(std::move(config)), impl_(std::make_unique<Impl>(config_)) {}
GitSource::~GitSource() = default;
Result<SourceSnapshot> GitSource::Poll() {
  if (Status s = failpoint::Hit("fetch"); !s.ok()) return s;
  return WithUrlSecretsRedacted(impl_->Poll(), config_.remote);
}
Result<RestoreResult> GitSource::Restore(const RestoreRequest& request) {
  return WithUrlSecretsRedacted(impl_->Restore(request), config_.remote);
}
uint64_t GitSource::files_parsed() const { return impl_->files_parsed; }

Status GitSource::Impl::Open() {
  internal::EnsureLibgit2();
  if (repo_) return Status::Ok();
  const std::string dir = config_.clone_dir.string();
  if (dir.empty()) return InvalidArgument("git source " + Where() + ": no clone directory set");
  std::error_code ec;
  git_repository* raw = nullptr;
  if (std::filesystem::exists(config_.clone_dir, ec) &&
      !std::filesystem::is_empty(config_.clone_dir, ec)) {
    // A damaged loose object would hang libgit2 (loose_objects.h): the clone is only a cache
    // of the remote, so it is cloned again.
    const Status objects = internal::VerifyLooseObjects(config_.clone_dir);
    int rc = objects.ok() ? git_repository_open_bare(&raw, dir.c_str()) : GIT_ERROR;
    if (!objects.ok()) git_error_set_str(GIT_ERROR_ODB, objects.message().c_str());
    if (rc == 0) {
      // Opening is lazy: read the config and HEAD now so a damaged clone is caught here.
      RepoPtr repo(raw);
      git_config* config = nullptr;
      rc = git_repository_config_snapshot(&config, repo.get());
      git_config_free(config);
      if (rc == 0 && git_repository_head_unborn(repo.get()) >= 0) {
        repo_ = std::move(repo);
        return Status::Ok();
      }
    }
    LogEvent(LogLevel::kWarn, "git_clone_unreadable",
             {{"dir", dir}, {"error", Libgit2Error(rc, "open").message()}, {"action", "reclone"}});
    if (Status s = Wipe(); !s.ok()) return s;
    recloned_ = true;
  }
  std::filesystem::create_directories(config_.clone_dir, ec);
  if (int rc = git_repository_init(&raw, dir.c_str(), /*is_bare=*/1); rc != 0) {
    return Libgit2Error(rc, "create clone " + dir);
  }
  repo_.reset(raw);
  return Status::Ok();
}

Status GitSource::Impl::Wipe() {
  repo_.reset();
  last_tree_.reset();
  std::error_code ec;
  // Only ever delete what looks like a git directory: a misconfigured clone_dir pointing at
  // someone's files is refused instead.
  const auto& dir = config_.clone_dir;
  if (!std::filesystem::is_empty(dir, ec) && !std::filesystem::exists(dir / "HEAD", ec) &&
      !std::filesystem::exists(dir / "objects", ec) && !std::filesystem::exists(dir / "refs", ec)) {
    return FailedPrecondition("clone directory " + dir.string() +
                              " is not a git repository; refusing to delete it");
  }
  std::filesystem::remove_all(config_.clone_dir, ec);
  if (ec) {
    return Internal("cannot remove local clone " + config_.clone_dir.string() + ": " +
                    ec.message());
  }
  return Status::Ok();
}

bool GitSource::Impl::HasObject(const git_oid& oid) {
  git_odb* raw = nullptr;
  if (git_repository_odb(&raw, repo_.get()) != 0) return false;
  OdbPtr odb(raw);
  return git_odb_exists(odb.get(), &oid) == 1;
}

bool GitSource::Impl::Fetch(Fetched* out, StepError* error) {
  RemoteOperation op(config_.remote);
  git_remote* raw = nullptr;
  if (int rc = internal::CreateRemote(&raw, repo_.get(), config_.remote.url); rc != 0) {
    const git_error* e = git_error_last();
    error->local = e != nullptr && internal::IsLocalStorageError(e->klass);
    error->status = op.Error(rc, "bad remote");
    return false;
  }
  RemotePtr remote(raw);
  if (int rc =
          git_remote_connect(remote.get(), GIT_DIRECTION_FETCH, op.callbacks(), nullptr, nullptr);
      rc != 0) {
    error->status = op.Error(rc, "connect to");
    // Whatever fails while connecting is the remote's side (refused, unresolvable, gone).
    if (error->status.code() == StatusCode::kInternal) {
      error->status = Unavailable(error->status.message());
    }
    // libgit2 says "unsupported URL protocol" for a local path that does not exist (a typo in
    // --repo, a repository moved away): say what is wrong instead.
    if (auto local = LocalRepositoryPath(config_.remote.url)) {
      std::error_code ec;
      if (!std::filesystem::exists(*local, ec)) {
        error->status =
            Unavailable("connect to " + Redacted(config_.remote) + ": no repository at " + *local +
                        " (no such file or directory)");
      }
    }
    return false;
  }
  const git_remote_head** heads = nullptr;
  size_t count = 0;
  if (int rc = git_remote_ls(&heads, &count, remote.get()); rc != 0) {
    error->status = op.Error(rc, "list refs of");
    return false;
  }

  std::vector<std::string> refspecs;
  git_oid target;
  const std::string& ref = config_.ref;
  if (IsFullSha(ref)) {
    git_oid_fromstr(&target, ref.c_str());
    out->remote_ref.clear();
    refspecs = {"+refs/heads/*:refs/remotes/origin/*", "+refs/tags/*:refs/tags/*"};
  } else {
    std::vector<std::string> candidates;
    if (ref == "HEAD") {
      // The remote's default branch, by name, so a rollback can push to it.
      git_buf branch = GIT_BUF_INIT;
      if (git_remote_default_branch(&branch, remote.get()) != 0) {
        error->status = NotFound("the remote " + Where() + " has no default branch (HEAD)");
        return false;
      }
      candidates = {std::string(branch.ptr, branch.size)};
      git_buf_dispose(&branch);
    } else if (ref.starts_with("refs/")) {
      candidates = {ref};
    } else {
      candidates = {"refs/heads/" + ref, "refs/tags/" + ref};
    }
    const git_remote_head* found = nullptr;
    for (const std::string& c : candidates) {
      for (size_t i = 0; i < count && found == nullptr; ++i) {
        if (c == heads[i]->name) found = heads[i];
      }
      if (found != nullptr) break;
    }
    if (found == nullptr) {
      error->status = NotFound("ref '" + ref + "' not found in " + Where());
      return false;
    }
    target = found->oid;
    out->remote_ref = found->name;
    refspecs = {"+" + out->remote_ref + ":refs/ballast/fetched"};
  }

  if (!HasObject(target)) {
    std::vector<char*> specs;
    for (std::string& s : refspecs) specs.push_back(s.data());
    git_strarray array{specs.data(), specs.size()};
    git_fetch_options options;
    git_fetch_options_init(&options, GIT_FETCH_OPTIONS_VERSION);
    options.callbacks = *op.callbacks();
    options.download_tags = GIT_REMOTE_DOWNLOAD_TAGS_NONE;
    if (int rc = git_remote_download(remote.get(), &array, &options); rc != 0) {
      const git_error* e = git_error_last();
      error->local =
          op.state()->failure.ok() && e != nullptr && internal::IsLocalStorageError(e->klass);
      error->status = op.Error(rc, "fetch from");
      return false;
    }
    if (!HasObject(target)) {
      error->status = NotFound("commit " + ref + " not found in " + Where());
      return false;
    }
  }
  git_remote_disconnect(remote.get());

  git_object* obj = nullptr;
  if (int rc = git_object_lookup(&obj, repo_.get(), &target, GIT_OBJECT_ANY); rc != 0) {
    error->status = Libgit2Error(rc, "read " + OidHex(target) + " fetched from " + Where());
    error->local = true;
    return false;
  }
  ObjectPtr object(obj);
  git_object* peeled = nullptr;
  if (int rc = git_object_peel(&peeled, object.get(), GIT_OBJECT_COMMIT); rc != 0) {
    error->status = NotFound("ref '" + ref + "' of " + Where() + " does not name a commit");
    return false;
  }
  out->commit = *git_object_id(peeled);
  git_object_free(peeled);
  return true;
}

bool GitSource::Impl::ReadTree(const git_commit* commit, std::shared_ptr<const SourceTree>* out,
                               StepError* error) {
  const std::string sha = OidHex(*git_commit_id(commit));
  git_tree* raw_root = nullptr;
  if (int rc = git_commit_tree(&raw_root, commit); rc != 0) {
    error->status = Libgit2Error(rc, "read tree of " + sha);
    error->local = true;
    return false;
  }
  TreePtr root(raw_root);
  TreePtr sub;
  const git_tree* tree = root.get();
  std::vector<internal::TreeBlob> blobs;
  if (!path_.empty()) {
    git_tree_entry* raw_entry = nullptr;
    int rc = git_tree_entry_bypath(&raw_entry, root.get(), path_.c_str());
    if (rc == GIT_ENOTFOUND) {
      error->status =
          NotFound("path '" + path_ + "' does not exist at commit " + sha + " of " + Where());
      return false;
    }
    if (rc != 0) {
      error->status = Libgit2Error(rc, "read path " + path_ + " at " + sha);
      error->local = true;
      return false;
    }
    TreeEntryPtr entry(raw_entry);
    if (git_tree_entry_type(entry.get()) == GIT_OBJECT_BLOB) {
      std::string name = path_.substr(path_.rfind('/') + 1);
      blobs.push_back({name, *git_tree_entry_id(entry.get())});
      tree = nullptr;
    } else if (git_tree_entry_type(entry.get()) == GIT_OBJECT_TREE) {
      git_tree* raw_sub = nullptr;
      if (rc = git_tree_lookup(&raw_sub, repo_.get(), git_tree_entry_id(entry.get())); rc != 0) {
        error->status = Libgit2Error(rc, "read tree " + path_ + " at " + sha);
        error->local = true;
        return false;
      }
      sub.reset(raw_sub);
      tree = sub.get();
    } else {
      error->status = NotFound("path '" + path_ + "' at commit " + sha + " of " + Where() +
                               " is neither a folder nor a file");
      return false;
    }
  }
  if (tree != nullptr) {
    Status s = internal::ListBlobs(repo_.get(), tree, "", &blobs, config_.max_files);
    if (!s.ok()) {
      error->local = s.code() != StatusCode::kResourceExhausted;
      error->status = s.WithContext("read " + (path_.empty() ? "/" : path_) + " at " + sha);
      return false;
    }
  }
  std::sort(blobs.begin(), blobs.end(),
            [](const auto& a, const auto& b) { return a.path < b.path; });

  auto result = std::make_shared<SourceTree>();
  result->files.reserve(blobs.size());
  decltype(blobs_) blobs_next;
  decltype(parsed_) parsed_next;
  uint64_t total = 0;
  OdbPtr odb;
  if (git_odb* raw_odb = nullptr; git_repository_odb(&raw_odb, repo_.get()) == 0)
    odb.reset(raw_odb);
  struct PendingParse {
    size_t slot;
    std::string display;
    std::shared_ptr<const std::string> content;
  };
  std::vector<PendingParse> pending;
  std::vector<std::pair<std::string, std::string>> parsed_keys;
  for (const internal::TreeBlob& b : blobs) {
    std::string key(reinterpret_cast<const char*>(b.id.id), GIT_OID_RAWSZ);
    std::shared_ptr<const std::string> content;
    if (auto it = blobs_.find(key); it != blobs_.end()) {
      content = it->second;
    } else {
      // The size from the object header first, so an oversized blob is refused unread.
      size_t size = 0;
      git_object_t type = GIT_OBJECT_INVALID;
      if (odb && git_odb_read_header(&size, &type, odb.get(), &b.id) == 0 &&
          total + size > config_.max_total_bytes) {
        error->status =
            ResourceExhausted("files under '" + path_ + "' at " + sha + " of " + Where() +
                              " exceed " + std::to_string(config_.max_total_bytes) + " bytes (" +
                              b.path + " is " + std::to_string(size) + " bytes)");
        return false;
      }
      git_blob* raw_blob = nullptr;
      if (int rc = git_blob_lookup(&raw_blob, repo_.get(), &b.id); rc != 0) {
        error->status = Libgit2Error(rc, "read " + b.path + " at " + sha);
        error->local = true;
        return false;
      }
      BlobPtr blob(raw_blob);
      size = static_cast<size_t>(git_blob_rawsize(blob.get()));
      content = std::make_shared<const std::string>(
          static_cast<const char*>(git_blob_rawcontent(blob.get())), size);
    }
    total += content->size();
    if (total > config_.max_total_bytes) {
      error->status =
          ResourceExhausted("files under '" + path_ + "' at " + sha + " of " + Where() +
                            " exceed " + std::to_string(config_.max_total_bytes) + " bytes");
      return false;
    }
    blobs_next.emplace(key, content);
    result->files.push_back({b.path, *content});

    if (!model::IsManifestFileName(b.path)) continue;
    // Diagnostics name the file from the repository root.
    std::string display = tree == nullptr ? path_ : path_.empty() ? b.path : path_ + "/" + b.path;
    auto cache_key = std::make_pair(display, key);
    if (auto it = parsed_.find(cache_key); it != parsed_.end()) {
      result->parsed_files.push_back(it->second);
    } else {
      result->parsed_files.push_back(nullptr);
      pending.push_back({result->parsed_files.size() - 1, std::move(display), content});
    }
    parsed_keys.push_back(std::move(cache_key));
  }

  // A kustomization at the root of the path: the application is what it renders (its bases may
  // be anywhere in the repository), not every file below the path.
  if (tree != nullptr) {
    const model::KustomizeReader reader = internal::TreeFileReader(
        repo_.get(), root.get(), sha, config_.parse_limits.max_file_bytes, config_.max_total_bytes);
    if (!model::FindKustomization(path_, reader).empty()) {
      model::KustomizeLimits bounds;
      bounds.max_total_bytes = config_.max_total_bytes;
      bounds.max_objects = config_.max_objects;
      model::ManifestSet rendered =
          model::RenderKustomization(path_, reader, "", config_.parse_limits, bounds);
      auto parsed = std::make_shared<model::FileParseResult>();
      parsed->manifests = std::move(rendered.manifests);
      parsed->diagnostics = std::move(rendered.diagnostics);
      result->parsed_files = {parsed};
      parsed_keys = {{"kustomize:" + path_, sha}};
      pending.clear();
    }
  }

  // Cache misses are parsed in parallel: model functions are pure, and a cold clone of a large
  // repository is dominated by parsing.
  auto parse = [&](size_t i) {
    const PendingParse& p = pending[i];
    result->parsed_files[p.slot] = std::make_shared<const model::FileParseResult>(
        model::ParseManifestFile(p.display, *p.content, config_.parse_limits));
  };
  size_t workers = std::min<size_t>(std::max(1u, std::thread::hardware_concurrency()), 8);
  if (pending.size() < 64) workers = 1;
  if (workers <= 1) {
    for (size_t i = 0; i < pending.size(); ++i) parse(i);
  } else {
    std::atomic<size_t> next{0};
    std::vector<std::thread> threads;
    for (size_t w = 0; w < workers; ++w) {
      threads.emplace_back([&] {
        for (size_t i = next++; i < pending.size(); i = next++) parse(i);
      });
    }
    for (auto& t : threads) t.join();
  }
  files_parsed += pending.size();

  size_t objects = 0;
  for (const auto& parsed : result->parsed_files) objects += parsed->manifests.size();
  if (objects > config_.max_objects) {
    error->status =
        ResourceExhausted("files under '" + path_ + "' at " + sha + " of " + Where() + " hold " +
                          std::to_string(objects) + " objects, more than the limit of " +
                          std::to_string(config_.max_objects) + " (serve --max-objects)");
    return false;
  }
  result->manifests.reserve(objects);
  for (size_t i = 0; i < result->parsed_files.size(); ++i) {
    const auto& parsed = result->parsed_files[i];
    parsed_next.emplace(std::move(parsed_keys[i]), parsed);
    for (const model::Manifest& m : parsed->manifests) result->manifests.push_back(&m);
    result->diagnostics.insert(result->diagnostics.end(), parsed->diagnostics.begin(),
                               parsed->diagnostics.end());
  }
  auto duplicates = model::CheckDuplicates(result->manifests);
  result->diagnostics.insert(result->diagnostics.end(), duplicates.begin(), duplicates.end());
  auto namespaces = model::CheckNamespaces(result->manifests);
  result->diagnostics.insert(result->diagnostics.end(), namespaces.begin(), namespaces.end());
  blobs_ = std::move(blobs_next);
  parsed_ = std::move(parsed_next);
  *out = std::move(result);
  return true;
}

Status GitSource::Impl::CompactIfNeeded() {
  constexpr size_t kMaxPacks = 32;
  auto compacted = internal::CompactPacks(repo_.get(), kMaxPacks);
  if (!compacted.ok()) {
    LogEvent(LogLevel::kWarn, "git_compact_failed",
             {{"dir", config_.clone_dir.string()}, {"error", compacted.status().message()}});
    return Status::Ok();
  }
  if (!*compacted) return Status::Ok();
  repo_.reset();
  if (Status s = Open(); !s.ok()) return s.WithContext("reopen after compacting");
  LogEvent(LogLevel::kInfo, "git_packs_compacted", {{"dir", config_.clone_dir.string()}});
  return Status::Ok();
}

Result<SourceSnapshot> GitSource::Impl::PollOnce(StepError* error) {
  if (Status s = Open(); !s.ok()) {
    error->status = s;
    error->local = false;
    return s;
  }
  Fetched fetched;
  if (!Fetch(&fetched, error)) return error->status;
  if (Status s = CompactIfNeeded(); !s.ok()) {
    error->status = s;
    error->local = true;
    return s;
  }

  git_commit* raw_commit = nullptr;
  if (int rc = git_commit_lookup(&raw_commit, repo_.get(), &fetched.commit); rc != 0) {
    error->status = Libgit2Error(rc, "read commit " + OidHex(fetched.commit));
    error->local = true;
    return error->status;
  }
  CommitPtr commit(raw_commit);
  SourceSnapshot snapshot;
  snapshot.commit = ToCommitInfo(commit.get());

  // The commit seen last: this object's memory, else the clone's.
  std::string previous = last_sha_;
  if (previous.empty()) {
    git_oid seen;
    if (git_reference_name_to_id(&seen, repo_.get(), kLastSeenRef) == 0) previous = OidHex(seen);
  }
  snapshot.previous_sha = previous;

  if (!previous.empty() && previous == snapshot.commit.sha && last_tree_ != nullptr) {
    snapshot.changed = false;
    snapshot.tree = last_tree_;
    return snapshot;
  }
  if (!previous.empty() && previous != snapshot.commit.sha) {
    git_oid old;
    git_oid_fromstr(&old, previous.c_str());
    snapshot.history_rewritten =
        !HasObject(old) || git_graph_descendant_of(repo_.get(), &fetched.commit, &old) != 1;
    if (snapshot.history_rewritten) {
      LogEvent(LogLevel::kWarn, "git_history_rewritten",
               {{"remote", Where()},
                {"ref", config_.ref},
                {"commit", snapshot.commit.sha},
                {"previous", previous}});
    }
  }
  if (!ReadTree(commit.get(), &snapshot.tree, error)) return error->status;

  git_reference* raw_ref = nullptr;
  if (int rc = git_reference_create(&raw_ref, repo_.get(), kLastSeenRef, &fetched.commit,
                                    /*force=*/1, "poll");
      rc != 0) {
    error->status = Libgit2Error(rc, "record the polled commit in the clone");
    error->local = true;
    return error->status;
  }
  git_reference_free(raw_ref);
  last_sha_ = snapshot.commit.sha;
  last_tree_ = snapshot.tree;
  return snapshot;
}

Result<SourceSnapshot> GitSource::Impl::Poll() {
  recloned_ = false;
  StepError error;
  auto result = PollOnce(&error);
  if (result.ok()) result->recloned = recloned_;
  if (result.ok() || !error.local) return result;
  LogEvent(LogLevel::kWarn, "git_clone_corrupt",
           {{"dir", config_.clone_dir.string()},
            {"error", RedactUrlSecrets(error.status.message(), config_.remote.url)},
            {"action", "reclone"}});
  if (Status s = Wipe(); !s.ok()) return s;
  StepError second;
  result = PollOnce(&second);
  if (result.ok()) result->recloned = true;
  return result;
}

Result<RestoreResult> GitSource::Impl::Restore(const RestoreRequest& request) {
  if (Status s = Open(); !s.ok()) return s;
  std::vector<internal::TreeFile> files;
  files.reserve(request.files.size());
  for (const model::SourceFile& f : request.files) files.push_back({f.path, f.content});
  const std::string message =
      RestoreMessage{request.entry_id, request.source_sha, request.requested_by}.Format();

  RestoreResult result;
  for (int attempt = 1; attempt <= 2; ++attempt) {
    result.attempts = attempt;
    StepError error;
    Fetched fetched;
    if (!Fetch(&fetched, &error)) return error.status.WithContext("roll back");
    if (!fetched.remote_ref.starts_with("refs/heads/")) {
      return FailedPrecondition("roll back needs the source to track a branch; ref '" +
                                config_.ref + "' of " + Where() + " is not one");
    }
    git_commit* raw_head = nullptr;
    if (int rc = git_commit_lookup(&raw_head, repo_.get(), &fetched.commit); rc != 0) {
      return Libgit2Error(rc, "read head of " + fetched.remote_ref);
    }
    CommitPtr head(raw_head);
    git_tree* raw_tree = nullptr;
    if (int rc = git_commit_tree(&raw_tree, head.get()); rc != 0) {
      return Libgit2Error(rc, "read tree of " + fetched.remote_ref);
    }
    TreePtr head_tree(raw_tree);
    auto subtree = internal::WriteTree(repo_.get(), files);
    if (!subtree.ok()) return subtree.status().WithContext("roll back");
    auto new_tree_id = internal::ReplaceSubtree(repo_.get(), head_tree.get(), path_, &*subtree);
    if (!new_tree_id.ok()) return new_tree_id.status().WithContext("roll back");
    result.previous_head = OidHex(fetched.commit);
    if (git_oid_equal(&*new_tree_id, git_tree_id(head_tree.get()))) {
      result.commit = result.previous_head;
      result.pushed = false;
      return result;
    }
    git_tree* raw_new_tree = nullptr;
    if (int rc = git_tree_lookup(&raw_new_tree, repo_.get(), &*new_tree_id); rc != 0) {
      return Libgit2Error(rc, "read the rollback tree");
    }
    TreePtr new_tree(raw_new_tree);
    git_signature* raw_sig = nullptr;
    if (int rc =
            git_signature_now(&raw_sig, request.author_name.c_str(), request.author_email.c_str());
        rc != 0) {
      return Libgit2Error(rc, "roll back: author signature");
    }
    internal::SignaturePtr sig(raw_sig);
    const git_commit* parents[] = {head.get()};
    git_oid commit_id;
    if (int rc = git_commit_create(&commit_id, repo_.get(), nullptr, sig.get(), sig.get(), nullptr,
                                   message.c_str(), new_tree.get(), 1, parents);
        rc != 0) {
      return Libgit2Error(rc, "roll back: create commit");
    }
    git_reference* raw_ref = nullptr;
    if (int rc = git_reference_create(&raw_ref, repo_.get(), kRestoreRef, &commit_id, 1, "restore");
        rc != 0) {
      return Libgit2Error(rc, "roll back: create ref");
    }
    git_reference_free(raw_ref);

    if (request.before_push) request.before_push();
    if (Status s = failpoint::Hit("restore-before-push"); !s.ok()) return s;

    RemoteOperation op(config_.remote);
    git_remote* raw_remote = nullptr;
    if (int rc = internal::CreateRemote(&raw_remote, repo_.get(), config_.remote.url); rc != 0) {
      return op.Error(rc, "roll back: bad remote");
    }
    RemotePtr remote(raw_remote);
    std::string spec = std::string(kRestoreRef) + ":" + fetched.remote_ref;
    char* specs[] = {spec.data()};
    git_strarray array{specs, 1};
    git_push_options options;
    git_push_options_init(&options, GIT_PUSH_OPTIONS_VERSION);
    options.callbacks = *op.callbacks();
    int rc = git_remote_push(remote.get(), &array, &options);
    // Taken before any other libgit2 call replaces the last error.
    Status push_error = rc != 0 ? op.Error(rc, "roll back: push to") : Status::Ok();
    std::string libgit2_reason;
    if (const git_error* e = git_error_last(); rc != 0 && e != nullptr && e->message != nullptr) {
      libgit2_reason = e->message;
    }
    git_reference* restore_ref = nullptr;
    if (git_reference_lookup(&restore_ref, repo_.get(), kRestoreRef) == 0) {
      git_reference_delete(restore_ref);
      git_reference_free(restore_ref);
    }
    const auto& rejections = op.state()->push_rejections;
    if (rc == 0 && rejections.empty()) {
      result.commit = OidHex(commit_id);
      result.pushed = true;
      LogEvent(LogLevel::kInfo, "git_rollback_pushed",
               {{"entry", std::to_string(request.entry_id)},
                {"remote", Where()},
                {"ref", fetched.remote_ref},
                {"commit", result.commit}});
      return result;
    }
    std::string reason;
    if (!rejections.empty()) {
      reason = rejections.begin()->second;
    } else {
      reason = libgit2_reason;
    }
    bool moved = rc == GIT_ENONFASTFORWARD ||
                 reason.find("non-fast-forward") != std::string::npos ||
                 reason.find("fetch first") != std::string::npos ||
                 reason.find("stale") != std::string::npos ||
                 reason.find("failed to lock") != std::string::npos ||
                 reason.find("cannot lock") != std::string::npos;
    if (moved) {
      if (attempt == 1) {
        LogEvent(LogLevel::kInfo, "git_rollback_push_raced",
                 {{"remote", Where()},
                  {"reason", RedactUrlSecrets(reason, config_.remote.url)},
                  {"action", "rebuild on the new head"}});
        continue;
      }
      return Aborted("roll back: push to " + Where() + " " + fetched.remote_ref +
                     " rejected twice because the branch moved meanwhile: " + reason);
    }
    if (!op.state()->failure.ok())
      return op.state()->failure.WithContext("roll back: push to " + Where());
    std::string lower = reason;
    std::transform(lower.begin(), lower.end(), lower.begin(), ::tolower);
    if (!rejections.empty() || lower.find("denied") != std::string::npos ||
        lower.find("not enabled") != std::string::npos || lower.find("403") != std::string::npos ||
        lower.find("401") != std::string::npos || lower.find("read-only") != std::string::npos ||
        lower.find("forbidden") != std::string::npos || rc == GIT_EAUTH) {
      return PermissionDenied("roll back: push to " + Where() + " " + fetched.remote_ref +
                              " refused: " + reason);
    }
    return push_error;
  }
  return Aborted("roll back: unreachable");
}

std::string Libgit2Version() {
  int major = 0, minor = 0, revision = 0;
  git_libgit2_version(&major, &minor, &revision);
  std::string out = std::to_string(major);
  out.append(".").append(std::to_string(minor)).append(".").append(std::to_string(revision));
  return out;
}

}  // namespace ballast::git
