#pragma once

// The commit message of a rollback: the one place that writes it (GitSource::Restore) and the
// one that reads it back (the reconciler names a revision's trigger "rollback #N" or
// "auto-rollback #N" from it) share this format:
//
//   Roll back to #12 (source 4f2a9c1)
//
//   Requested-by: auto-rollback of Deployment/default/web (ProgressDeadlineExceeded)
//
// Pure: no git here, only the text.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace ballast::git {

struct RestoreMessage {
  int64_t entry_id = 0;
  std::string source_sha;    // Format writes its first 7 characters; Parse gives those back
  std::string requested_by;  // "api", "auto-rollback of Deployment/default/web (...)"; "unknown"

  // Requested by the reconciler itself (a Deployment past its progress deadline).
  bool automatic() const;
  std::string Format() const;
  // The message of a commit GitSource::Restore wrote, or nullopt for any other message (a
  // user's commit that only mentions a rollback, a revert of one).
  static std::optional<RestoreMessage> Parse(std::string_view message);
};

}  // namespace ballast::git
