#include "model/manifest.h"

#include <algorithm>
#include <map>
#include <set>
#include <string>
#include <tuple>
#include <utility>

#include "model/decode_internal.h"
#include "model/sops.h"
#include "model/yaml_tree.h"

namespace ballast::model {
namespace {

std::string_view BaseName(std::string_view path) {
  size_t slash = path.find_last_of('/');
  return slash == std::string_view::npos ? path : path.substr(slash + 1);
}

bool IsKustomizationFile(std::string_view path) {
  std::string_view base = BaseName(path);
  return base == "kustomization.yaml" || base == "kustomization.yml" || base == "Kustomization";
}

// kustomize's own file: listed as an unsupported Kustomization named after its folder.
Manifest KustomizationManifest(std::string_view path, const YamlDocument& doc) {
  UnsupportedObject u;
  u.kind = "Kustomization";
  u.api_version = "kustomize.config.k8s.io/v1beta1";
  if (auto it = doc.root.find("apiVersion"); it != doc.root.end() && it->is_string()) {
    u.api_version = it->get<std::string>();
  }
  std::string_view dir = path.substr(0, path.size() - BaseName(path).size());
  if (!dir.empty() && dir.back() == '/') dir.remove_suffix(1);
  std::string name(BaseName(dir));
  u.metadata.name = name.empty() || name == "." ? "kustomization" : name;
  u.raw = doc.root;
  Manifest m;
  m.api_version = u.api_version;
  m.value = std::move(u);
  return m;
}

}  // namespace

bool IsManifestFileName(std::string_view path) {
  auto ends_with = [&](std::string_view suffix) {
    return path.size() > suffix.size() && path.substr(path.size() - suffix.size()) == suffix;
  };
  return ends_with(".yaml") || ends_with(".yml") || ends_with(".json");
}

FileParseResult ParseManifestFile(std::string_view path, std::string_view content,
                                  const ParseLimits& limits) {
  FileParseResult result;
  const std::string file(path);
  if (content.size() > limits.max_file_bytes) {
    Diagnostic d;
    d.where = {file, 1, 1};
    d.message = "file is larger than the limit of " + std::to_string(limits.max_file_bytes) +
                " bytes; refused";
    result.diagnostics.push_back(std::move(d));
    return result;
  }
  YamlParseResult parsed = ParseYamlDocuments(path, content, limits);
  std::vector<std::optional<SopsEnvelope>> envelopes;
  OpenSopsDocuments(file, content, limits, parsed, &envelopes, &result.diagnostics);
  for (size_t index = 0; index < parsed.documents.size(); ++index) {
    YamlDocument& doc = parsed.documents[index];
    SourceRef where{file, doc.line, doc.column};
    const bool has_kind = doc.root.is_object() && doc.root.contains("kind");
    if (!has_kind && doc.root.is_object() && IsKustomizationFile(path)) {
      Manifest m = KustomizationManifest(path, doc);
      m.source = where;
      result.manifests.push_back(std::move(m));
      continue;
    }
    auto decode_one = [&](const Json& j, const SourceRef& at, const std::string& prefix) {
      Manifest m;
      m.source = at;
      Reporter reporter(&doc.positions, at, &result.diagnostics, prefix);
      const size_t diagnostics_before = result.diagnostics.size();
      m.sops = envelopes[index];
      if (DecodeObject(j, reporter, &m)) {
        result.manifests.push_back(std::move(m));
      } else if (limits.keep_invalid && j.is_object() && j.contains("kind") &&
                 j.contains("apiVersion") && !m.metadata().name.empty()) {
        for (size_t i = diagnostics_before; i < result.diagnostics.size(); ++i) {
          result.diagnostics[i].severity = Severity::kWarning;
        }
        result.manifests.push_back(std::move(m));
      }
    };
    const Json* items = nullptr;
    if (doc.root.is_object() && doc.root.value("kind", Json()) == "List") {
      auto it = doc.root.find("items");
      if (it != doc.root.end() && it->is_array()) items = &*it;
    }
    if (items == nullptr) {
      decode_one(doc.root, where, "");
      continue;
    }
    for (size_t i = 0; i < items->size(); ++i) {
      std::string prefix = IndexPath("items", i);
      auto [line, column] = doc.positions.Lookup(prefix);
      decode_one((*items)[i], SourceRef{file, line, column}, prefix);
    }
  }
  for (auto& e : parsed.errors) result.diagnostics.push_back(std::move(e));
  std::stable_sort(result.diagnostics.begin(), result.diagnostics.end(),
                   [](const Diagnostic& a, const Diagnostic& b) {
                     return std::tie(a.where.line, a.where.column) <
                            std::tie(b.where.line, b.where.column);
                   });
  return result;
}

std::vector<Diagnostic> CheckDuplicates(const std::vector<const Manifest*>& manifests) {
  std::vector<Diagnostic> out;
  std::map<ObjectKey, const Manifest*> seen;
  for (const Manifest* m : manifests) {
    ObjectKey key = m->key();
    if (key.name.empty()) continue;
    auto [it, inserted] = seen.emplace(key, m);
    if (inserted) continue;
    const SourceRef& first = it->second->source;
    Diagnostic d;
    d.where = m->source;
    d.field = "metadata.name";
    d.message = "duplicate object " + key.ToString() + ": also defined at " + first.file + ":" +
                std::to_string(first.line) + ":" + std::to_string(first.column);
    out.push_back(std::move(d));
  }
  // Every agent serves each Service at its own cluster IP, and also on the node's address at
  // its port (and nodePort). On the node's address one port can serve one Service only: the
  // first of its claimants by namespace/name. Say so, naming both places, so that users of the
  // node's address know which Service they reach there.
  struct PortUse {
    const Manifest* manifest;
    std::string field;
  };
  std::map<int32_t, PortUse> ports;             // the first use in file order
  std::map<int32_t, ObjectKey> served_on_node;  // the first claimant by namespace/name
  for (const Manifest* m : manifests) {
    const Service* svc = m->service();
    if (svc == nullptr) continue;
    for (const ServicePort& p : svc->spec.ports) {
      if (!p.protocol.empty() && p.protocol != "TCP") continue;
      for (int32_t port : {p.port, p.node_port}) {
        if (port <= 0) continue;
        auto [it, inserted] = served_on_node.emplace(port, m->key());
        if (!inserted && m->key() < it->second) it->second = m->key();
      }
    }
  }
  for (const Manifest* m : manifests) {
    const Service* svc = m->service();
    if (svc == nullptr) continue;
    for (size_t i = 0; i < svc->spec.ports.size(); ++i) {
      const ServicePort& p = svc->spec.ports[i];
      if (!p.protocol.empty() && p.protocol != "TCP") continue;
      const std::string at = "spec.ports[" + std::to_string(i) + "].";
      for (const auto& [port, field] :
           {std::pair{p.port, at + "port"}, std::pair{p.node_port, at + "nodePort"}}) {
        if (port <= 0) continue;
        auto [it, inserted] = ports.emplace(port, PortUse{m, field});
        if (inserted || it->second.manifest == m) continue;
        const Manifest& first = *it->second.manifest;
        const ObjectKey& served = served_on_node.at(port);
        const std::string number = std::to_string(port);
        Diagnostic d;
        d.severity = Severity::kWarning;
        d.where = m->source;
        d.field = field;
        d.message = "port " + number + " is also " + it->second.field + " of Service " +
                    first.key().namespace_ + "/" + first.key().name + " (" + first.source.file +
                    ":" + std::to_string(first.source.line) + ":" +
                    std::to_string(first.source.column) +
                    "): each Service is served at its own cluster IP, but on the node's address "
                    "port " +
                    number + " serves only Service " + served.namespace_ + "/" + served.name +
                    " (the first by namespace/name); reach the others at their cluster IP "
                    "(<NAME>_SERVICE_HOST, `ballast get services`)";
        out.push_back(std::move(d));
      }
    }
  }
  // Two Services asking for one cluster IP (spec.clusterIP 127.x.y.z, which ballast honours):
  // the first by namespace/name keeps it, the others get an address of their own.
  std::map<std::string, std::vector<const Manifest*>> asked;  // address -> Services, file order
  for (const Manifest* m : manifests) {
    const Service* svc = m->service();
    if (svc == nullptr) continue;
    auto ip = svc->spec.extra.find("clusterIP");
    if (ip == svc->spec.extra.end() || !ip->is_string()) continue;
    const std::string address = ip->get<std::string>();
    if (address.rfind("127.", 0) == 0) asked[address].push_back(m);
  }
  for (const auto& [address, users] : asked) {
    const Manifest* keeper =
        *std::min_element(users.begin(), users.end(),
                          [](const Manifest* a, const Manifest* b) { return a->key() < b->key(); });
    for (const Manifest* m : users) {
      if (m == keeper || m->key() == keeper->key()) continue;
      Diagnostic d;
      d.severity = Severity::kWarning;
      d.where = m->source;
      d.field = "spec.clusterIP";
      d.message = "cluster IP " + address + " is also asked for by Service " +
                  keeper->key().namespace_ + "/" + keeper->key().name + " (" + keeper->source.file +
                  ":" + std::to_string(keeper->source.line) + ":" +
                  std::to_string(keeper->source.column) +
                  "), which keeps it (the first by namespace/name); this Service gets an address "
                  "of its own (`ballast get services`)";
      out.push_back(std::move(d));
    }
  }
  return out;
}

std::vector<Diagnostic> CheckNamespaces(const std::vector<const Manifest*>& manifests) {
  std::vector<Diagnostic> out;
  // An object in a namespace that is neither in git nor one every cluster has: `kubectl apply`
  // answers `namespaces "X" not found`. Kinds ballast does not run are not applied, so not
  // checked.
  std::set<std::string> namespaces(std::begin(kDefaultNamespaces), std::end(kDefaultNamespaces));
  for (const Manifest* m : manifests) {
    if (m->namespace_object() != nullptr) namespaces.insert(m->metadata().name);
  }
  for (const Manifest* m : manifests) {
    if (!m->is_supported() || m->namespace_object() != nullptr) continue;
    const std::string& ns = m->metadata().namespace_;
    if (namespaces.count(ns)) continue;
    Diagnostic d;
    d.where = m->source;
    d.field = "metadata.namespace";
    d.message = "namespaces \"" + ns + "\" not found: " + m->key().ToString() +
                " is in a namespace that no Namespace object in git creates (add one: "
                "apiVersion: v1, kind: Namespace, metadata.name: " +
                ns + ")";
    out.push_back(std::move(d));
  }
  return out;
}

std::vector<Diagnostic> CheckNamespaces(const std::vector<Manifest>& manifests) {
  std::vector<const Manifest*> pointers;
  pointers.reserve(manifests.size());
  for (const Manifest& m : manifests) pointers.push_back(&m);
  return CheckNamespaces(pointers);
}

std::vector<Diagnostic> CheckDuplicates(const std::vector<Manifest>& manifests) {
  std::vector<const Manifest*> pointers;
  pointers.reserve(manifests.size());
  for (const Manifest& m : manifests) pointers.push_back(&m);
  return CheckDuplicates(pointers);
}

ManifestSet ParseManifests(const std::vector<SourceFile>& files, const ParseLimits& limits) {
  ManifestSet set;
  for (const SourceFile& f : files) {
    FileParseResult r = ParseManifestFile(f.path, f.content, limits);
    for (auto& m : r.manifests) set.manifests.push_back(std::move(m));
    for (auto& d : r.diagnostics) set.diagnostics.push_back(std::move(d));
  }
  for (auto& d : CheckDuplicates(set.manifests)) set.diagnostics.push_back(std::move(d));
  return set;
}

Status CheckJsonDepth(const Json& value, const ParseLimits& limits) {
  std::vector<std::pair<const Json*, int>> stack = {{&value, 1}};
  while (!stack.empty()) {
    auto [node, depth] = stack.back();
    stack.pop_back();
    if (!node->is_structured()) continue;
    if (depth > limits.max_depth) {
      return ResourceExhausted("JSON nested deeper than " + std::to_string(limits.max_depth) +
                               " levels; refused");
    }
    for (const Json& child : *node) stack.emplace_back(&child, depth + 1);
  }
  return Status::Ok();
}

Result<Manifest> DecodeManifest(const Json& object, const SourceRef& where,
                                std::vector<Diagnostic>* diagnostics) {
  if (Status s = CheckJsonDepth(object); !s.ok()) return s;
  std::vector<Diagnostic> local;
  std::vector<Diagnostic>* out = diagnostics != nullptr ? diagnostics : &local;
  size_t first = out->size();
  Manifest m;
  m.source = where;
  Reporter reporter(nullptr, where, out);
  if (!DecodeObject(object, reporter, &m)) {
    for (size_t i = first; i < out->size(); ++i) {
      if ((*out)[i].is_error()) return InvalidArgument((*out)[i].ToString());
    }
    return InvalidArgument("invalid object");
  }
  return m;
}

}  // namespace ballast::model
