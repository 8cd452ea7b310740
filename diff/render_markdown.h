#pragma once

// A plan as the body of a pull-request comment (GitHub / GitLab Markdown), for
// `ballast plan --format markdown`: a summary line and a table of changes per kind, then one
// folded section per object that changes or drifts, with its unified diff (or, for a plan read
// back from a server without its documents, its field changes), refusals, warnings and the
// scheduler's dry-run. Pure.
//
// The caller passes a plan whose secret values are already taken out (diff::Redacted): a
// comment is read by everyone who can read the pull request.

#include <string>

#include "diff/plan.h"

namespace ballast::diff {

struct MarkdownOptions {
  std::string title = "ballast plan";
  // Sections of at most this many lines of diff each; longer ones are cut with a note (GitHub
  // refuses comments over 65,536 characters).
  size_t max_diff_lines = 200;
  // The whole comment stays under this many bytes (GitHub's limit is 65,536 characters): what
  // does not fit is left out, and the comment says how much. A section is at most a quarter.
  size_t max_chars = 60000;
};

std::string RenderMarkdown(const Plan& plan, const MarkdownOptions& options = {});

}  // namespace ballast::diff
