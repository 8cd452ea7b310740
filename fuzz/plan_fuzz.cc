// The plan between two revisions of random manifests (the input split at the first 0 byte:
// what was applied, what git wants now), rendered as people read it (text, unified diffs,
// redacted) and as the API serves it: no crash, and the JSON parses back into a plan.

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "diff/plan.h"
#include "diff/redact.h"
#include "diff/render.h"
#include "model/manifest.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  const size_t cut = text.find('\0');
  const std::string_view before = text.substr(0, cut);
  const std::string_view after = cut == std::string_view::npos ? "" : text.substr(cut + 1);
  auto applied = ballast::model::ParseManifests({{"applied.yaml", std::string(before)}});
  auto desired = ballast::model::ParseManifests({{"desired.yaml", std::string(after)}});
  if (!applied.ok() || !desired.ok()) return 0;  // a revision with errors is never planned
  const auto plan = ballast::diff::ComputePlan(desired.manifests, applied.manifests, nullptr);
  (void)ballast::diff::RenderText(plan);
  for (const auto& object : plan.objects) (void)ballast::diff::RenderUnifiedDiff(object);
  const auto redacted = ballast::diff::Redacted(plan);
  (void)ballast::diff::RenderText(redacted);
  ballast::diff::JsonOptions options;
  options.include_diff = true;
  const auto json = ballast::diff::ToJson(plan, options);
  auto back = ballast::diff::PlanFromJson(ballast::model::Json::parse(json.dump()));
  if (!back.ok() || back->objects.size() != plan.objects.size()) __builtin_trap();
  return 0;
}
