#pragma once

// Checking a repository's loose objects before libgit2 reads them. libgit2 1.5 (Debian 12's)
// loops forever inflating a truncated loose object (libgit2 issue #7342, fixed upstream in
// #7346 in 2026), and writes past its buffer for one whose header claims fewer bytes than it
// holds (issue #7177). A crash, a full disk or a bad disk can leave either in history.git, and
// the reconciler would hang at start at 100% CPU, deaf to SIGTERM. So every loose object is
// inflated here first, with zlib: its stream must end, and its header ("blob 123\0") must name
// the bytes that follow. Packs are left to libgit2, which checks them.

#include <cstddef>
#include <filesystem>

#include "model/status.h"

namespace ballast::git::internal {

// Ok, or FailedPrecondition naming the first bad object's file and what is wrong with it. `checked`
// (optional) receives how many objects were read.
Status VerifyLooseObjects(const std::filesystem::path& git_dir, size_t* checked = nullptr);

}  // namespace ballast::git::internal
