// `ballast validate PATH...`: offline parse + validation, positioned errors, exit 1 on any error.

#include <cstdio>
#include <map>
#include <set>

#include "cli/age_identity_flag.h"
#include "cli/commands.h"
#include "cli/flags.h"
#include "cli/manifest_files.h"
#include "model/manifest.h"

namespace ballast::cli {
namespace {

std::string Plural(size_t n, const char* one, const char* many) {
  return std::to_string(n) + " " + (n == 1 ? one : many);
}

model::Json DiagnosticJson(const model::Diagnostic& d) {
  return {{"file", d.where.file},     {"line", d.where.line},
          {"column", d.where.column}, {"message", d.message},
          {"field", d.field},         {"severity", d.is_error() ? "error" : "warning"}};
}

// What the manifests hold, by what ballast does with them.
struct Census {
  size_t deployments = 0, services = 0, config_maps = 0, secrets = 0, namespaces = 0,
         unsupported = 0, errors = 0, warnings = 0;
  std::set<std::string> unsupported_kinds;
};

Census Count(const model::ManifestSet& set) {
  Census c;
  for (const auto& m : set.manifests) {
    if (m.deployment()) {
      ++c.deployments;
    } else if (m.service()) {
      ++c.services;
    } else if (m.config_map()) {
      ++c.config_maps;
    } else if (m.secret()) {
      ++c.secrets;
    } else if (m.namespace_object()) {
      ++c.namespaces;
    } else {
      ++c.unsupported;
      c.unsupported_kinds.insert(m.key().kind);
    }
  }
  c.errors = model::CountErrors(set.diagnostics);
  c.warnings = set.diagnostics.size() - c.errors;
  return c;
}

void PrintJson(const model::ManifestSet& set, const Census& c, bool verbose) {
  model::Json out = {{"ok", c.errors == 0},
                     {"deployments", c.deployments},
                     {"services", c.services},
                     {"configMaps", c.config_maps},
                     {"secrets", c.secrets},
                     {"namespaces", c.namespaces},
                     {"unsupported", c.unsupported},
                     {"errors", model::Json::array()},
                     {"warnings", model::Json::array()},
                     {"objects", model::Json::array()}};
  for (const auto& d : set.diagnostics) {
    out[d.is_error() ? "errors" : "warnings"].push_back(DiagnosticJson(d));
  }
  for (const auto& m : set.manifests) {
    auto key = m.key();
    model::Json o = {{"kind", key.kind},
                     {"namespace", key.namespace_},
                     {"name", key.name},
                     {"file", m.source.file},
                     {"line", m.source.line},
                     {"column", m.source.column},
                     {"supported", m.is_supported()}};
    if (verbose) o["ignoredFields"] = m.ignored_fields;
    out["objects"].push_back(std::move(o));
  }
  std::printf("%s\n", out.dump(2).c_str());
}

void PrintText(const model::ManifestSet& set, const Census& c, bool verbose) {
  for (const auto& d : set.diagnostics) std::printf("%s\n", d.ToString().c_str());
  for (const auto& m : set.manifests) {
    const auto key = m.key();
    std::string where =
        m.source.file + ":" + std::to_string(m.source.line) + ":" + std::to_string(m.source.column);
    if (!m.is_supported()) {
      std::printf("%s: unsupported: %s (%s) is kept but not run by ballast\n", where.c_str(),
                  key.ToString().c_str(), m.api_version.c_str());
    } else if (verbose) {
      std::printf("%s: %s\n", where.c_str(), key.ToString().c_str());
      for (const auto& f : m.ignored_fields) {
        std::printf("%s:   ignored: %s (kept, not used by ballast)\n", where.c_str(), f.c_str());
      }
    }
  }
  std::string summary = Plural(c.deployments, "deployment", "deployments") + ", " +
                        Plural(c.services, "service", "services") + ", ";
  // Shown when there are any: the line stays as it was for repositories without them.
  if (c.config_maps > 0) summary += Plural(c.config_maps, "configmap", "configmaps") + ", ";
  if (c.secrets > 0) summary += Plural(c.secrets, "secret", "secrets") + ", ";
  if (c.namespaces > 0) summary += Plural(c.namespaces, "namespace", "namespaces") + ", ";
  summary += std::to_string(c.unsupported) + " unsupported";
  if (!c.unsupported_kinds.empty()) {
    std::string kinds;
    for (const auto& k : c.unsupported_kinds) kinds += (kinds.empty() ? "" : ", ") + k;
    summary += " (" + kinds + ")";
  }
  summary += ", " + Plural(c.errors, "error", "errors");
  if (c.warnings > 0) summary += ", " + Plural(c.warnings, "warning", "warnings");
  std::printf("%s: %s\n", c.errors == 0 ? "ok" : "invalid", summary.c_str());
}

}  // namespace

int RunValidate(const Args& args) {
  FlagSet flags("ballast validate [flags] PATH...",
                "Parse and validate Kubernetes manifests (files or directories, read recursively)\n"
                "offline, as the API server would: every problem is printed as\n"
                "file:line:col: error: message (field path). Exit 0 when valid, 1 when not.");
  flags.AddString("output", "o", "text", "output format: text or json");
  flags.AddBool("verbose", "v", "also list every object and the fields ballast keeps but ignores");
  AddAgeIdentityFlag(flags);
  if (auto rc = ParseOrExit(flags, args)) return *rc;
  const std::string output = flags.Get("output");
  if (flags.positional().empty() || (output != "text" && output != "json")) {
    std::fprintf(stderr, "%s\n%s",
                 flags.positional().empty() ? "error: at least one PATH is required"
                                            : "error: --output must be text or json",
                 flags.Help().c_str());
    return 2;
  }

  auto age = AgeKeyringFromFlag(flags);
  if (!age.ok()) {
    std::fprintf(stderr, "error: %s\n", age.status().message().c_str());
    return 2;
  }
  model::ParseLimits limits;
  limits.sops = age->get();
  model::ManifestSet set;
  {
    // A PATH with a kustomization is what it renders; the other PATHs' files are read as one.
    std::vector<model::SourceFile> files;
    std::vector<model::ManifestSet> rendered;
    for (const auto& path : flags.positional()) {
      if (auto r = RenderIfKustomization(path, limits.max_file_bytes, limits.sops)) {
        rendered.push_back(std::move(*r));
        continue;
      }
      auto read = ReadManifestTree(path);
      if (!read.ok()) {
        std::fprintf(stderr, "error: %s\n", read.status().message().c_str());
        return 2;
      }
      for (auto& f : *read) files.push_back(std::move(f));
    }
    set = model::ParseManifests(files, limits);
    for (auto& r : rendered) {
      for (auto& m : r.manifests) set.manifests.push_back(std::move(m));
      for (auto& d : r.diagnostics) set.diagnostics.push_back(std::move(d));
    }
    for (auto& d : model::CheckNamespaces(set.manifests)) set.diagnostics.push_back(std::move(d));
  }

  const Census census = Count(set);
  if (output == "json") {
    PrintJson(set, census, flags.GetBool("verbose"));
  } else {
    PrintText(set, census, flags.GetBool("verbose"));
  }
  return census.errors == 0 ? 0 : 1;
}

}  // namespace ballast::cli
