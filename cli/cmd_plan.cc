// `ballast plan PATH [--against STATE.json]`: the offline plan of a manifest tree, against
// nothing (everything is a create) or against a recorded state.
// `ballast plan [--server URL]`: the plan of a running reconciler (GET /api/v1/plan, whose body
// is diff::ToJson of its plan), rendered here.
// Exit 0 no changes, 1 changes, 2 error (bad flags, unreadable or invalid input, unreachable
// server, or a change the API server would refuse).

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

#include "cli/age_identity_flag.h"
#include "cli/commands.h"
#include "cli/flags.h"
#include "cli/manifest_files.h"
#include "diff/plan.h"
#include "diff/redact.h"
#include "diff/render.h"
#include "diff/render_markdown.h"
#include "diff/state.h"
#include "model/config_refs.h"
#include "model/manifest.h"
#include "net/client.h"
#include "reconciler/identity.h"
#include "sources/git/ref_reader.h"

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

// A pull-request comment: secret values never in it, whoever runs the command.
void PrintMarkdown(const diff::Plan& plan) {
  std::fputs(diff::RenderMarkdown(diff::Redacted(plan)).c_str(), stdout);
}

void Print(const diff::Plan& plan, const model::Json& as_json, bool json_output, bool verbose) {
  if (json_output) {
    std::printf("%s\n", as_json.dump(2, ' ', false, model::Json::error_handler_t::replace).c_str());
  } else {
    diff::TextOptions to;
    to.verbose = verbose;
    std::fputs(diff::RenderText(plan, to).c_str(), stdout);
  }
}

int ExitCode(const diff::Plan& plan) {
  if (plan.has_refused()) {
    std::fprintf(stderr, "error: %d change(s) refused: see \"update refused\" above\n",
                 plan.counts().refused);
    return 2;
  }
  return plan.has_changes() ? 1 : 0;
}

int RunRemotePlan(const FlagSet& flags, const std::string& output) {
  net::ClientOptions options;
  auto token = ClientToken(flags);
  if (!token.ok()) {
    std::fprintf(stderr, "error: %s\n", token.status().message().c_str());
    return 2;
  }
  options.bearer_token = *token;

  options.max_body_bytes = kMaxStateBytes;
  net::HttpClient client(options);
  std::string url = flags.Get("server");
  while (!url.empty() && url.back() == '/') url.pop_back();
  url += "/api/v1/plan";
  const bool want_diff = flags.GetBool("diff");
  if (want_diff) url += "?diff=true";
  auto response = client.Get(url);
  if (!response.ok()) {
    std::fprintf(stderr, "error: %s\n", response.status().message().c_str());
    return 2;
  }
  auto body = response->JsonBody();
  if (response->status != 200) {
    std::string why = response->body.substr(0, 300);
    if (body.ok() && body->is_object() && body->contains("error") && (*body)["error"].is_string()) {
      why = (*body)["error"].get<std::string>();
    }
    std::fprintf(stderr, "error: GET %s: HTTP %d: %s\n", url.c_str(), response->status,
                 why.c_str());
    return 2;
  }
  if (!body.ok()) {
    std::fprintf(stderr, "error: GET %s: %s\n", url.c_str(), body.status().message().c_str());
    return 2;
  }
  auto plan = diff::PlanFromJson(*body);
  if (!plan.ok()) {
    std::fprintf(stderr, "error: GET %s: %s\n", url.c_str(), plan.status().message().c_str());
    return 2;
  }
  if (output == "markdown") {
    PrintMarkdown(*plan);
    return ExitCode(*plan);
  }
  const bool json_output = output == "json";
  // Every status output shows the pin: the plan is then against the pinned entry, not git.
  if (!json_output && body->contains("pinned") && (*body)["pinned"].is_number_integer()) {
    std::printf("Pinned to history entry #%lld: auto-sync paused until `ballast unpin`.\n",
                static_cast<long long>((*body)["pinned"].get<int64_t>()));
  }
  Print(*plan, *body, json_output, flags.GetBool("verbose"));
  if (want_diff && !json_output && (*body)["objects"].is_array()) {
    for (const auto& o : (*body)["objects"]) {
      auto d = o.find("diff");
      if (d != o.end() && d->is_string())
        std::fputs(("\n" + d->get<std::string>()).c_str(), stdout);
    }
  }
  return ExitCode(*plan);
}

// --ignore-differences into `options`; false, after saying why, when it is malformed.
bool ReadIgnoreFlag(const FlagSet& flags, diff::PlanOptions* options) {
  if (!flags.IsSet("ignore-differences")) return true;
  auto rules = diff::ParseIgnoreRules(flags.Get("ignore-differences"));
  if (!rules.ok()) {
    std::fprintf(stderr, "error: --ignore-differences: %s\n", rules.status().message().c_str());
    return false;
  }
  options->ignore_differences = std::move(*rules);
  return true;
}

// A plan computed here (from files or revisions) in `output`'s format; returns the exit code.
int PrintComputedPlan(const diff::Plan& computed, const FlagSet& flags, const std::string& output) {
  if (output == "markdown") {
    PrintMarkdown(computed);
    return ExitCode(computed);
  }
  // A Secret's values are not printed (a terminal is read over shoulders and kept in CI logs).
  const diff::Plan plan = diff::WithoutSecretData(computed);
  diff::JsonOptions jo;
  jo.include_diff = flags.GetBool("diff");
  Print(plan, output == "json" ? diff::ToJson(plan, jo) : model::Json(), output == "json",
        flags.GetBool("verbose"));
  if (output != "json" && flags.GetBool("diff")) {
    for (const auto& o : plan.objects) {
      if (o.is_change()) std::fputs(("\n" + diff::RenderUnifiedDiff(o)).c_str(), stdout);
    }
  }
  return ExitCode(plan);
}

// `ballast plan PATH`: the manifests under PATH against --against (or nothing).
int RunLocalPlan(const FlagSet& flags, const std::string& output) {
  diff::PlanOptions options;
  if (!ReadIgnoreFlag(flags, &options)) return 2;

  auto age = AgeKeyringFromFlag(flags);
  if (!age.ok()) {
    std::fprintf(stderr, "error: %s\n", age.status().message().c_str());
    return 2;
  }
  auto read = ReadApplication(flags.positional()[0], 4u << 20, age->get());
  if (!read.ok()) {
    std::fprintf(stderr, "error: %s\n", read.status().message().c_str());
    return 2;
  }
  model::ManifestSet desired = std::move(*read);
  for (auto& d : model::CheckNamespaces(desired.manifests)) {
    desired.diagnostics.push_back(std::move(d));
  }
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

  // Both sides' config hashes under one key of this run's (the server's own is not known here):
  // a Deployment rolls in this plan exactly when the values its environment reads differ.
  const std::string key = reconciler::RandomToken();
  model::BindConfigHashes(&desired.manifests, key);
  model::BindConfigHashes(&state.objects, key);
  diff::Plan plan = diff::ComputePlan(desired.manifests, state.objects,
                                      state.live ? &*state.live : nullptr, options);
  return PrintComputedPlan(plan, flags, output);
}

// `ballast plan --base REF --head REF [REPO]`: what merging a pull request would change, from
// two revisions of a local repository (no checkout needed; REPO defaults to ".").
int RunRefPlan(const FlagSet& flags, const std::string& output) {
  const std::string repo = flags.positional().empty() ? "." : flags.positional()[0];
  git::RefReadOptions read;
  read.path = flags.Get("path");
  auto age = AgeKeyringFromFlag(flags);
  if (!age.ok()) {
    std::fprintf(stderr, "error: %s\n", age.status().message().c_str());
    return 2;
  }
  read.sops = age->get();
  model::ManifestSet sides[2];
  const std::string refs[2] = {flags.Get("base"), flags.Get("head")};
  for (int i = 0; i < 2; ++i) {
    auto side = git::ReadApplicationAtRef(repo, refs[i], read);
    if (!side.ok()) {
      std::fprintf(stderr, "error: --%s: %s\n", i == 0 ? "base" : "head",
                   side.status().message().c_str());
      return 2;
    }
    sides[i] = std::move(*side);
    for (auto& d : model::CheckNamespaces(sides[i].manifests)) {
      sides[i].diagnostics.push_back(std::move(d));
    }
    for (const auto& d : sides[i].diagnostics) std::fprintf(stderr, "%s\n", d.ToString().c_str());
  }
  if (!sides[1].ok()) {
    std::fprintf(stderr, "error: %zu invalid manifest(s) at %s: no plan\n",
                 model::CountErrors(sides[1].diagnostics), refs[1].c_str());
    return 2;
  }
  // An invalid base (its errors printed above) is planned against what of it did parse.
  diff::PlanOptions options;
  if (!ReadIgnoreFlag(flags, &options)) return 2;
  const std::string key = reconciler::RandomToken();
  for (auto& side : sides) model::BindConfigHashes(&side.manifests, key);
  diff::Plan plan = diff::ComputePlan(sides[1].manifests, sides[0].manifests, nullptr, options);
  return PrintComputedPlan(plan, flags, output);
}

}  // namespace

int RunPlan(const Args& args) {
  FlagSet flags(
      "ballast plan [flags] PATH | ballast plan [--server URL] | "
      "ballast plan --base REF --head REF [REPO]",
      "Show what applying the manifests under PATH (a file or a directory, read recursively)\n"
      "would change: creates, updates (in place or rolling), deletes, refused changes, and,\n"
      "given live nodes and pods in the state, the drift of what runs. Offline.\n"
      "STATE.json is {\"objects\": [manifests as JSON], \"nodes\": [...], \"pods\": [...]},\n"
      "every key optional (see diff/README.md).\n"
      "Without PATH, show the plan of a running reconciler (--server).\n"
      "With --base and --head, plan revision --head of the git repository REPO against\n"
      "revision --base (what merging a pull request would change; -o markdown for its comment).\n"
      "Exit 0 when there is nothing to change, 1 when there is, 2 on an error (including a\n"
      "change the API server would refuse, such as a Deployment selector change).");
  flags.AddString("against", "", "", "recorded state to plan against (STATE.json)");
  flags.AddString("output", "o", "text",
                  "output format: text, json, or markdown (a pull-request comment: a table per "
                  "kind, each object's diff folded, secret values redacted)");
  flags.AddString("format", "", "", "the same as --output");
  flags.AddString("base", "", "",
                  "with --head: plan REF --head against this revision of the git repository "
                  "REPO (default .), e.g. a pull request's target branch");
  flags.AddString("head", "", "", "with --base: the revision to plan (e.g. the pull request's)");
  flags.AddString("path", "", "", "with --base/--head: the application's folder in REPO");
  flags.AddString("ignore-differences", "", "",
                  "comma-separated [Kind:]/json/pointer entries to leave out of the comparison");
  flags.AddBool("diff", "", "also show the unified diff of each changed object (json: \"diff\")");
  flags.AddBool("verbose", "v", "also list unchanged objects");
  AddServerFlag(flags, "without PATH: the reconciler whose plan to show (env BALLAST_SERVER)");
  flags.AddString("token-file", "", "",
                  "without PATH: file holding the API bearer token (env BALLAST_TOKEN)");
  AddAgeIdentityFlag(flags);
  if (auto rc = ParseOrExit(flags, args)) return *rc;
  const std::string output = flags.IsSet("format") ? flags.Get("format") : flags.Get("output");
  const char* usage_error = nullptr;
  if (flags.IsSet("format") && flags.IsSet("output") && flags.Get("output") != output) {
    usage_error = "error: --format and --output say different things";
  } else if (output != "text" && output != "json" && output != "markdown") {
    usage_error = "error: --output must be text, json or markdown";
  } else if (flags.IsSet("base") != flags.IsSet("head") ||
             (flags.IsSet("base") && (flags.Get("base").empty() || flags.Get("head").empty()))) {
    usage_error = "error: --base and --head go together, each naming a revision";
  } else if (flags.IsSet("base") &&
             (flags.IsSet("server") || flags.IsSet("against") || flags.IsSet("token-file"))) {
    usage_error =
        "error: --base/--head plan two revisions of a repository: no --server, "
        "--against or --token-file";
  } else if (flags.IsSet("path") && !flags.IsSet("base")) {
    usage_error = "error: --path goes with --base/--head";
  } else if (flags.positional().size() > 1) {
    usage_error = "error: at most one PATH";
  } else if (flags.positional().empty() && !flags.IsSet("base") &&
             (flags.IsSet("against") || flags.IsSet("ignore-differences"))) {
    usage_error = "error: --against and --ignore-differences need a PATH";
  } else if (!flags.positional().empty() && (flags.IsSet("server") || flags.IsSet("token-file"))) {
    usage_error = "error: --server and --token-file show a server's plan: give no PATH";
  }
  if (usage_error != nullptr) {
    std::fprintf(stderr, "%s\n\n%s", usage_error, flags.Help().c_str());
    return 2;
  }
  if (flags.IsSet("base") || flags.IsSet("head")) return RunRefPlan(flags, output);
  if (flags.positional().empty()) return RunRemotePlan(flags, output);

  return RunLocalPlan(flags, output);
}

}  // namespace ballast::cli
