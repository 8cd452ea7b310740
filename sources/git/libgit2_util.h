#pragma once

// Private to sources/git: the libgit2 adapter. RAII handles, one-time initialization, and the
// conversion of libgit2 error codes into Status values. Never include this from a public header;
// no libgit2 type crosses the module boundary.

#include <git2.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "model/status.h"
#include "sources/git/remote.h"

namespace ballast::git::internal {

// Initializes libgit2 once per process (thread-safe); later calls are no-ops.
void EnsureLibgit2();

template <typename T, void (*Free)(T*)>
struct Deleter {
  void operator()(T* p) const {
    if (p != nullptr) Free(p);
  }
};
using RepoPtr = std::unique_ptr<git_repository, Deleter<git_repository, git_repository_free>>;
using RemotePtr = std::unique_ptr<git_remote, Deleter<git_remote, git_remote_free>>;
using ObjectPtr = std::unique_ptr<git_object, Deleter<git_object, git_object_free>>;
using CommitPtr = std::unique_ptr<git_commit, Deleter<git_commit, git_commit_free>>;
using TreePtr = std::unique_ptr<git_tree, Deleter<git_tree, git_tree_free>>;
using TreeEntryPtr = std::unique_ptr<git_tree_entry, Deleter<git_tree_entry, git_tree_entry_free>>;
using BlobPtr = std::unique_ptr<git_blob, Deleter<git_blob, git_blob_free>>;
using ReferencePtr = std::unique_ptr<git_reference, Deleter<git_reference, git_reference_free>>;
using TreeBuilderPtr =
    std::unique_ptr<git_treebuilder, Deleter<git_treebuilder, git_treebuilder_free>>;
using SignaturePtr = std::unique_ptr<git_signature, Deleter<git_signature, git_signature_free>>;
using RevwalkPtr = std::unique_ptr<git_revwalk, Deleter<git_revwalk, git_revwalk_free>>;
using DiffPtr = std::unique_ptr<git_diff, Deleter<git_diff, git_diff_free>>;
using PatchPtr = std::unique_ptr<git_patch, Deleter<git_patch, git_patch_free>>;
using OdbPtr = std::unique_ptr<git_odb, Deleter<git_odb, git_odb_free>>;

// The Status for a failed libgit2 call: `what` + libgit2's last error message, with a code
// chosen from the libgit2 error code and class (network → Unavailable, auth → PermissionDenied,
// not found → NotFound, non-fast-forward → Aborted, anything else → Internal).
Status Libgit2Error(int rc, std::string_view what);

// True when the last libgit2 error (class) points at the local repository (object database,
// refs, zlib, indexer) rather than at the network or the remote.
bool IsLocalStorageError(int error_class);

// A remote for `url` in `repo`, as git_remote_create_anonymous makes one but without applying
// `url.<base>.insteadOf` from git config: the URL given is the URL used. (libgit2 1.5 matches
// that setting with a regular expression that leaks ~20 KiB per config entry when it does not
// match — libgit2 PR #6382, fixed in 1.6 — which grew `ballast serve` by ~7 MiB/min polling
// every second.)
int CreateRemote(git_remote** out, git_repository* repo, const std::string& url);

std::string OidHex(const git_oid& oid);
Result<git_oid> ParseOid(std::string_view hex);

// "SHA256:<base64 without padding>", as `ssh-keygen -l -E sha256` prints it.
std::string Sha256Fingerprint(const unsigned char (&hash)[32]);

// The state the libgit2 callbacks (credentials, certificate check, progress) share during one
// remote operation. The callbacks record why they aborted in `failure`, which then explains the
// libgit2 error better than libgit2's own message.
struct CallbackState {
  const RemoteConfig* config = nullptr;
  int credential_attempts = 0;
  Status failure;
  std::chrono::steady_clock::time_point deadline;
  uint64_t max_bytes = 0;
  // Per-ref rejection reasons from a push ("non-fast-forward", "fetch first", ...).
  std::map<std::string, std::string> push_rejections;
  // Set by the socket watchdog when it cut a connection of this operation at its deadline.
  std::atomic<bool> timed_out{false};
};

// Callbacks wired to `state` (which must outlive the operation).
git_remote_callbacks MakeCallbacks(CallbackState* state);

// Runs before a network operation on `config`: installs the CA file for https (libgit2 keeps it
// process-wide; the returned lock serializes operations that need a different one) and arms the
// deadline. The returned object must stay alive during the operation.
class RemoteOperation {
 public:
  explicit RemoteOperation(const RemoteConfig& config);
  ~RemoteOperation();
  RemoteOperation(const RemoteOperation&) = delete;
  RemoteOperation& operator=(const RemoteOperation&) = delete;

  CallbackState* state() { return &state_; }
  const git_remote_callbacks* callbacks() const { return &callbacks_; }

  // The error of a failed call: the callbacks' reason when they aborted it, else libgit2's.
  // The message always names the remote URL.
  Status Error(int rc, std::string_view what) const;

 private:
  CallbackState state_;
  CallbackState* previous_operation_ = nullptr;
  git_remote_callbacks callbacks_;
  std::unique_lock<std::mutex> ca_lock_;
};

// A file to write into a tree: path relative to the tree root ("a/b.yaml"), bytes.
struct TreeFile {
  std::string path;
  std::string_view content;
};

// Writes blobs and trees for `files` and returns the root tree id. Paths must be relative,
// '/'-separated, without '.', '..' or empty components. An empty list gives the empty tree.
Result<git_oid> WriteTree(git_repository* repo, const std::vector<TreeFile>& files);

// Returns `base` (may be null: empty) with the entry at `path` (components separated by '/',
// empty = the root itself) replaced by the tree `subtree`; a null subtree or the empty tree
// removes the entry.
Result<git_oid> ReplaceSubtree(git_repository* repo, const git_tree* base, std::string_view path,
                               const git_oid* subtree);

// Every regular file under `tree` (recursively; symbolic links left out), path relative to it,
// with its blob id. ResourceExhausted past `max_files` files and folders visited (a folder
// listed twice counts twice) or folders nested deeper than 128.
struct TreeBlob {
  std::string path;
  git_oid id;
};
Status ListBlobs(git_repository* repo, const git_tree* tree, const std::string& prefix,
                 std::vector<TreeBlob>* out, size_t max_files);

// A reader of the files of `root` by path (model/kustomize.h's KustomizeReader): nullopt for a
// missing path, a folder or a symbolic link (never followed); ResourceExhausted for a file over
// `max_file_bytes` or once the files read together pass `max_total_bytes`. `where` names the
// revision in errors. `repo` and `root` must outlive the reader.
std::function<Result<std::optional<std::string>>(const std::string&)> TreeFileReader(
    git_repository* repo, const git_tree* root, std::string where, size_t max_file_bytes,
    uint64_t max_total_bytes);

}  // namespace ballast::git::internal
