#include "sources/git/ref_reader.h"

#include <git2.h>

#include <algorithm>

#include "model/kustomize.h"
#include "sources/git/libgit2_util.h"
#include "sources/git/loose_objects.h"

namespace ballast::git {

using internal::BlobPtr;
using internal::Libgit2Error;
using internal::ObjectPtr;
using internal::RepoPtr;
using internal::TreeEntryPtr;
using internal::TreePtr;

namespace {

struct RepoTree {
  RepoPtr repo;
  TreePtr root;
};

// The repository at or above `repo_path`, and the tree of `ref` in it.
Result<RepoTree> OpenTreeAtRef(const std::string& repo_path, const std::string& ref) {
  internal::EnsureLibgit2();
  git_repository* raw_repo = nullptr;
  if (int rc = git_repository_open_ext(&raw_repo, repo_path.c_str(), 0, nullptr); rc != 0) {
    return Libgit2Error(rc, "open repository " + repo_path);
  }
  RepoPtr repo(raw_repo);
  if (Status s = internal::VerifyLooseObjects(git_repository_commondir(repo.get())); !s.ok()) {
    return s;
  }
  git_object* raw_object = nullptr;
  if (git_revparse_single(&raw_object, repo.get(), ref.c_str()) != 0) {
    return NotFound("revision \"" + ref + "\" not found in the repository at " + repo_path);
  }
  ObjectPtr object(raw_object);
  git_object* raw_root = nullptr;
  if (int rc = git_object_peel(&raw_root, object.get(), GIT_OBJECT_TREE); rc != 0) {
    return Libgit2Error(rc, "revision \"" + ref + "\" has no tree");
  }
  return RepoTree{std::move(repo), TreePtr(reinterpret_cast<git_tree*>(raw_root))};
}

}  // namespace

Result<model::ManifestSet> ReadApplicationAtRef(const std::string& repo_path,
                                                const std::string& ref,
                                                const RefReadOptions& options) {
  auto opened = OpenTreeAtRef(repo_path, ref);
  if (!opened.ok()) return opened.status();
  std::string path = options.path;
  while (!path.empty() && path.back() == '/') path.pop_back();
  while (!path.empty() && path.front() == '/') path.erase(0, 1);
  const model::KustomizeReader reader = internal::TreeFileReader(
      opened->repo.get(), opened->root.get(), ref, options.max_file_bytes, options.max_total_bytes);
  model::ParseLimits limits;
  limits.max_file_bytes = options.max_file_bytes;
  limits.sops = options.sops;
  if (!model::FindKustomization(path, reader).empty()) {
    return model::RenderKustomization(path, reader, "", limits);
  }
  auto files = ReadManifestsAtRef(repo_path, ref, options);
  if (!files.ok()) return files.status();
  return model::ParseManifests(*files, limits);
}

Result<std::vector<model::SourceFile>> ReadManifestsAtRef(const std::string& repo_path,
                                                          const std::string& ref,
                                                          const RefReadOptions& options) {
  auto opened = OpenTreeAtRef(repo_path, ref);
  if (!opened.ok()) return opened.status();
  RepoPtr repo = std::move(opened->repo);
  TreePtr root = std::move(opened->root);

  std::string path = options.path;
  while (!path.empty() && path.back() == '/') path.pop_back();
  while (!path.empty() && path.front() == '/') path.erase(0, 1);
  std::vector<internal::TreeBlob> blobs;
  TreePtr subtree;
  const git_tree* tree = root.get();
  if (!path.empty()) {
    git_tree_entry* raw_entry = nullptr;
    if (git_tree_entry_bypath(&raw_entry, root.get(), path.c_str()) != 0) {
      return NotFound(ref + ":" + path + ": no such file or folder");
    }
    TreeEntryPtr entry(raw_entry);
    if (git_tree_entry_filemode(entry.get()) == GIT_FILEMODE_LINK) {
      return InvalidArgument(ref + ":" + path + " is a symbolic link: name what it points to");
    }
    if (git_tree_entry_type(entry.get()) == GIT_OBJECT_BLOB) {
      if (!model::IsManifestFileName(path)) {
        return InvalidArgument(ref + ":" + path + " is not a manifest (.yaml, .yml or .json)");
      }
      blobs.push_back({"", *git_tree_entry_id(entry.get())});
      tree = nullptr;
    } else if (git_tree_entry_type(entry.get()) == GIT_OBJECT_TREE) {
      git_tree* raw_sub = nullptr;
      if (int rc = git_tree_lookup(&raw_sub, repo.get(), git_tree_entry_id(entry.get())); rc != 0) {
        return Libgit2Error(rc, "read " + ref + ":" + path);
      }
      subtree.reset(raw_sub);
      tree = subtree.get();
    } else {
      return InvalidArgument(ref + ":" + path + " is neither a folder nor a file");
    }
  }
  if (tree != nullptr) {
    if (Status s = internal::ListBlobs(repo.get(), tree, "", &blobs, options.max_files); !s.ok()) {
      return s.WithContext("read " + ref + ":" + (path.empty() ? "/" : path));
    }
  }
  std::sort(blobs.begin(), blobs.end(),
            [](const auto& a, const auto& b) { return a.path < b.path; });

  git_odb* raw_odb = nullptr;
  if (int rc = git_repository_odb(&raw_odb, repo.get()); rc != 0) {
    return Libgit2Error(rc, "open the object database of " + repo_path);
  }
  internal::OdbPtr odb(raw_odb);
  std::vector<model::SourceFile> files;
  uint64_t total = 0;
  for (const auto& b : blobs) {
    const std::string in_repo = b.path.empty() ? path : path.empty() ? b.path : path + "/" + b.path;
    if (!b.path.empty() && !model::IsManifestFileName(b.path)) continue;
    // The size from the object header first: an oversized blob is refused unread (a few MiB
    // of a pull request can inflate to gigabytes).
    size_t size = 0;
    git_object_t type = GIT_OBJECT_INVALID;
    if (int rc = git_odb_read_header(&size, &type, odb.get(), &b.id); rc != 0) {
      return Libgit2Error(rc, "read " + ref + ":" + in_repo);
    }
    if (size > options.max_file_bytes) {
      return ResourceExhausted(ref + ":" + in_repo + " is " + std::to_string(size) +
                               " bytes, more than the " + std::to_string(options.max_file_bytes) +
                               " a manifest file may have");
    }
    total += size;
    if (total > options.max_total_bytes) {
      return ResourceExhausted("the manifests under " + ref + ":" + (path.empty() ? "/" : path) +
                               " exceed " + std::to_string(options.max_total_bytes) + " bytes");
    }
    git_blob* raw_blob = nullptr;
    if (int rc = git_blob_lookup(&raw_blob, repo.get(), &b.id); rc != 0) {
      return Libgit2Error(rc, "read " + ref + ":" + in_repo);
    }
    BlobPtr blob(raw_blob);
    const auto read = std::min<size_t>(static_cast<size_t>(git_blob_rawsize(blob.get())), size);
    files.push_back(
        {in_repo, std::string(static_cast<const char*>(git_blob_rawcontent(blob.get())), read)});
  }
  return files;
}

}  // namespace ballast::git
