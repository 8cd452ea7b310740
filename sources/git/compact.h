#pragma once

// Keeping a repository ballast writes to from growing without bound: every fetch of a small push
// adds a pack file, and libgit2 keeps each one open and searches each one for every object
// (found by the soak: 150 descriptors and 3x the memory after 5 minutes of a push every 2 s).
// Once there are more than `max_packs`, they are written again as one (git_packbuilder, every
// object reachable from every ref, annotated tags included) and the old ones removed, as
// `git gc` does. libgit2 has no gc of its own.

#include <cstddef>

#include <git2.h>

#include "model/status.h"

namespace ballast::git::internal {

// True when the packs were compacted: the caller must open the repository again (the handle
// still maps the removed files). A failure leaves every pack in place (the new one, if written,
// only duplicates objects).
Result<bool> CompactPacks(git_repository* repo, size_t max_packs);

}  // namespace ballast::git::internal
