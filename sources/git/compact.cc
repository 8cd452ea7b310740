#include "sources/git/compact.h"

#include <filesystem>
#include <string>
#include <system_error>
#include <vector>

#include "sources/git/libgit2_util.h"

namespace ballast::git::internal {
namespace {

namespace fs = std::filesystem;

using PackbuilderPtr =
    std::unique_ptr<git_packbuilder, Deleter<git_packbuilder, git_packbuilder_free>>;
using RefIteratorPtr =
    std::unique_ptr<git_reference_iterator,
                    Deleter<git_reference_iterator, git_reference_iterator_free>>;

// "pack-<hex>" of each pack file in `dir`.
std::vector<std::string> PackNames(const fs::path& dir) {
  std::vector<std::string> out;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    const std::string name = e.path().filename().string();
    if (name.starts_with("pack-") && name.ends_with(".pack")) {
      out.push_back(name.substr(0, name.size() - 5));
    }
  }
  return out;
}

}  // namespace

Result<bool> CompactPacks(git_repository* repo, size_t max_packs) {
  const fs::path dir = fs::path(git_repository_path(repo)) / "objects" / "pack";
  const std::vector<std::string> before = PackNames(dir);
  if (before.size() <= max_packs) return false;

  git_packbuilder* raw_pb = nullptr;
  if (int rc = git_packbuilder_new(&raw_pb, repo); rc != 0) return Libgit2Error(rc, "compact");
  PackbuilderPtr pb(raw_pb);
  // Every ref's object with what it references (a tag object and its target), then the history
  // of every commit reachable from a ref.
  git_reference_iterator* raw_it = nullptr;
  if (int rc = git_reference_iterator_new(&raw_it, repo); rc != 0) {
    return Libgit2Error(rc, "compact: list refs");
  }
  RefIteratorPtr it(raw_it);
  git_revwalk* raw_walk = nullptr;
  if (int rc = git_revwalk_new(&raw_walk, repo); rc != 0) return Libgit2Error(rc, "compact");
  RevwalkPtr walk(raw_walk);
  git_reference* raw_ref = nullptr;
  int rc = 0;
  while ((rc = git_reference_next(&raw_ref, it.get())) == 0) {
    ReferencePtr ref(raw_ref);
    git_reference* raw_resolved = nullptr;
    if (git_reference_resolve(&raw_resolved, ref.get()) != 0) continue;  // a dangling symref
    ReferencePtr resolved(raw_resolved);
    const git_oid* target = git_reference_target(resolved.get());
    if (target == nullptr) continue;
    if (int r = git_packbuilder_insert_recur(pb.get(), target, nullptr); r != 0) {
      return Libgit2Error(r, "compact: " + std::string(git_reference_name(ref.get())));
    }
    git_object* raw_commit = nullptr;
    if (git_reference_peel(&raw_commit, resolved.get(), GIT_OBJECT_COMMIT) == 0) {
      ObjectPtr commit(raw_commit);
      if (int r = git_revwalk_push(walk.get(), git_object_id(commit.get())); r != 0) {
        return Libgit2Error(r, "compact: walk");
      }
    }
  }
  if (rc != GIT_ITEROVER) return Libgit2Error(rc, "compact: list refs");
  if (int r = git_packbuilder_insert_walk(pb.get(), walk.get()); r != 0) {
    return Libgit2Error(r, "compact: walk");
  }
  if (int r = git_packbuilder_write(pb.get(), dir.c_str(), 0, nullptr, nullptr); r != 0) {
    return Libgit2Error(r, "compact: write pack");
  }
  const std::string kept = std::string("pack-") + git_packbuilder_name(pb.get());
  for (const std::string& name : before) {
    std::error_code ec;
    if (name == kept || fs::exists(dir / (name + ".keep"), ec)) continue;  // as git gc keeps it
    for (const char* ext : {".pack", ".idx", ".rev"}) fs::remove(dir / (name + ext), ec);
  }
  return true;
}

}  // namespace ballast::git::internal
