#pragma once

// Renderings of a Plan: text for people (in the spirit of `nomad job plan`), a unified diff of
// the normalized YAML per object (status page), and JSON for the API. Pure.

#include <string>

#include "diff/plan.h"
#include "model/object.h"

namespace ballast::diff {

struct TextOptions {
  bool verbose = false;  // also list unchanged, unsupported and in-sync objects
};

// One block per object that changes or drifts (all objects when verbose):
//
//   +/- Deployment default/api (update: forces rolling update, 1 change)
//       +/- spec.template.spec.containers[api].image: "app:1" => "app:2"
//           revision: bcdfghjklm => 2456789bcd
//
// then "Scheduler dry-run:" and a closing "Plan: ..." count line.
std::string RenderText(const Plan& plan, const TextOptions& options = {});

// One object's block of RenderText: its header line and what changes, each line ending in
// "\n".
std::string RenderObjectText(const ObjectPlan& object);

// RenderText's closing line, without "\n": "Plan: 1 to create, 2 to update (1 rolling), 0 to
// delete; 3 unchanged." or "No changes: 5 unchanged."
std::string RenderSummaryLine(const Plan& plan);

// The unified diff (3 lines of context) of the object's normalized YAML, applied side as
// "a/<Kind>/<namespace>/<name>", desired side as "b/..."; "" when both sides are equal.
std::string RenderUnifiedDiff(const ObjectPlan& object);

struct JsonOptions {
  bool include_diff = false;       // add "diff": unified diff text to each changed object
  bool include_documents = false;  // add "old"/"new": the normalized documents
  // Leave out objects that are in sync (unchanged, no drift, no warning); the summary still
  // counts them. Unsupported and prune-skipped objects are always listed.
  bool out_of_sync_only = false;
};

// {"changed": bool, "liveKnown": bool, "summary": {...}, "objects": [...],
//  "schedulerDryRun": null | {"allPlaced": bool, "notes": [...]}}. Documented in
// diff/README.md.
model::Json ToJson(const Plan& plan, const JsonOptions& options = {});

// The inverse of ToJson, for clients that render a plan they received (`ballast plan` against
// a server). Objects keep their documents only when they were included. Errors name the entry.
Result<Plan> PlanFromJson(const model::Json& json);

// The text a field value is shown as: strings JSON-quoted, numbers and booleans plain,
// lists and objects as compact JSON.
std::string FormatValue(const model::Json& value);

}  // namespace ballast::diff
