#pragma once

// Secret values taken out of a plan, for whoever may read the plan but not the secrets
// (the viewer role, reconciler/identity.h). Pure.
//
// Secret values are: the `value` of every item of an `env` list (a container's environment,
// wherever the workload puts its containers), and every value under `data` and `stringData` of
// a Secret. Names stay, so a reader still sees which variable changed: a value that is the same
// on both sides reads "<redacted>", one that differs (or is new) "<redacted: changed>", in the
// field changes, the normalized documents, the unified diffs and the text rendered from them.

#include <string_view>

#include "diff/plan.h"
#include "model/object.h"

namespace ballast::diff {

inline constexpr std::string_view kRedacted = "<redacted>";
inline constexpr std::string_view kRedactedChanged = "<redacted: changed>";

// Replaces the secret values of a manifest-shaped document (an object's JSON) with kRedacted.
// `secret_kind`: the document is a Secret (its data and stringData go too).
void RedactDocument(model::Json& doc, bool secret_kind);

// The plan with every secret value replaced.
Plan Redacted(Plan plan);

// The plan with the values of Secret objects replaced, environment values kept: what those who
// may see environment values are shown. A Secret's data is shown to nobody, as Argo CD shows it.
Plan WithoutSecretData(Plan plan);

}  // namespace ballast::diff
