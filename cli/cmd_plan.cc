// `ballast plan PATH [--against STATE.json]`: the offline plan of a manifest tree, against
// nothing (everything is a create) or against a recorded state. Exit 0 no changes, 1 changes,
// 2 error (bad flags, unreadable or invalid input, or a change the API server would refuse).

#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include "cli/commands.h"
#include "cli/flags.h"
#include "cli/manifest_files.h"
#include "diff/plan.h"
#include "diff/render.h"
#include "diff/state.h"
#include "model/manifest.h"

namespace ballast::cli {
namespace {

constexpr size_t kMaxStateBytes = size_t{256} << 20;

Result<std::string> ReadStateFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return NotFound(path + ": cannot open");
  std::string data;
  char buf[1 << 16];
  while (in.read(buf, sizeof buf) || in.gcount() > 0) {
    data.append(buf, static_cast<size_t>(in.gcount()));
    if (data.size() > kMaxStateBytes) {
      return ResourceExhausted(path + ": larger than " + std::to_string(kMaxStateBytes >> 20) +
                               " MiB");
    }
  }
  if (in.bad()) return Unavailable(path + ": read error");
  return data;
}

Result<diff::RecordedState> LoadState(const std::string& path) {
  auto data = ReadStateFile(path);
  if (!data.ok()) return data.status();
  model::Json j = model::Json::parse(*data, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return InvalidArgument(path + ": not valid JSON");
  return diff::StateFromJson(j, path);
}

}  // namespace

int RunPlan(const Args& args) {
  FlagSet flags(
      "ballast plan [flags] PATH",
      "Show what applying the manifests under PATH (a file or a directory, read recursively)\n"
      "would change: creates, updates (in place or rolling), deletes, refused changes, and,\n"
      "given live nodes and pods in the state, the drift of what runs. Offline.\n"
      "STATE.json is {\"objects\": [manifests as JSON], \"nodes\": [...], \"pods\": [...]},\n"
      "every key optional (see diff/README.md).\n"
      "Exit 0 when there is nothing to change, 1 when there is, 2 on an error (including a\n"
      "change the API server would refuse, such as a Deployment selector change).");
  flags.AddString("against", "", "", "recorded state to plan against (STATE.json)");
  flags.AddString("output", "o", "text", "output format: text or json");
  flags.AddString("ignore-differences", "", "",
                  "comma-separated [Kind:]/json/pointer entries to leave out of the comparison");
  flags.AddBool("diff", "", "also show the unified diff of each changed object (json: \"diff\")");
  flags.AddBool("verbose", "v", "also list unchanged objects");
  if (auto rc = ParseOrExit(flags, args)) return *rc;
  const std::string output = flags.Get("output");
  if (flags.positional().size() != 1 || (output != "text" && output != "json")) {
    std::fprintf(stderr, "%s\n\n%s",
                 flags.positional().size() != 1 ? "error: exactly one PATH is required"
                                                : "error: --output must be text or json",
                 flags.Help().c_str());
    return 2;
  }

  diff::PlanOptions options;
  if (flags.IsSet("ignore-differences")) {
    auto rules = diff::ParseIgnoreRules(flags.Get("ignore-differences"));
    if (!rules.ok()) {
      std::fprintf(stderr, "error: --ignore-differences: %s\n", rules.status().message().c_str());
      return 2;
    }
    options.ignore_differences = std::move(*rules);
  }

  auto files = ReadManifestTree(flags.positional()[0]);
  if (!files.ok()) {
    std::fprintf(stderr, "error: %s\n", files.status().message().c_str());
    return 2;
  }
  model::ManifestSet desired = model::ParseManifests(*files);
  for (const auto& d : desired.diagnostics) {
    std::fprintf(stderr, "%s\n", d.ToString().c_str());
  }
  if (!desired.ok()) {
    std::fprintf(stderr, "error: %zu invalid manifest(s): no plan\n",
                 model::CountErrors(desired.diagnostics));
    return 2;
  }

  diff::RecordedState state;
  if (flags.IsSet("against")) {
    auto loaded = LoadState(flags.Get("against"));
    if (!loaded.ok()) {
      std::fprintf(stderr, "error: %s\n", loaded.status().message().c_str());
      return 2;
    }
    state = std::move(*loaded);
  }

  diff::Plan plan = diff::ComputePlan(desired.manifests, state.objects,
                                      state.live ? &*state.live : nullptr, options);
  if (output == "json") {
    diff::JsonOptions jo;
    jo.include_diff = flags.GetBool("diff");
    std::printf(
        "%s\n",
        diff::ToJson(plan, jo).dump(2, ' ', false, model::Json::error_handler_t::replace).c_str());
  } else {
    diff::TextOptions to;
    to.verbose = flags.GetBool("verbose");
    std::fputs(diff::RenderText(plan, to).c_str(), stdout);
    if (flags.GetBool("diff")) {
      for (const auto& o : plan.objects) {
        if (o.is_change()) std::fputs(("\n" + diff::RenderUnifiedDiff(o)).c_str(), stdout);
      }
    }
  }
  if (plan.has_refused()) {
    std::fprintf(stderr, "error: %d change(s) refused: see \"update refused\" above\n",
                 plan.counts().refused);
    return 2;
  }
  return plan.has_changes() ? 1 : 0;
}

}  // namespace ballast::cli
