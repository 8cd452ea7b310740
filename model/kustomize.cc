#include "model/kustomize.h"

#include <algorithm>
#include <map>
#include <memory>
#include <set>

#include "model/base64.h"
#include "model/decode_internal.h"
#include "model/digest.h"
#include "model/sops.h"
#include "model/yaml_tree.h"

namespace ballast::model {
namespace {

constexpr const char* kKustomizationNames[] = {"kustomization.yaml", "kustomization.yml",
                                               "Kustomization"};

// Fields of a Kustomization (or Component) ballast renders; anything else is refused.
const std::set<std::string> kSupportedFields = {"apiVersion",
                                                "kind",
                                                "metadata",
                                                "resources",
                                                "bases",
                                                "components",
                                                "namespace",
                                                "namePrefix",
                                                "nameSuffix",
                                                "commonLabels",
                                                "labels",
                                                "commonAnnotations",
                                                "images",
                                                "replicas",
                                                "configMapGenerator",
                                                "secretGenerator",
                                                "generatorOptions",
                                                "patches",
                                                "patchesStrategicMerge",
                                                "patchesJson6902",
                                                "sortOptions"};

// Kinds without a namespace, which namespace: leaves alone.
const std::set<std::string> kClusterScoped = {"Namespace",
                                              "ClusterRole",
                                              "ClusterRoleBinding",
                                              "CustomResourceDefinition",
                                              "PersistentVolume",
                                              "StorageClass",
                                              "PriorityClass",
                                              "IngressClass",
                                              "RuntimeClass",
                                              "MutatingWebhookConfiguration",
                                              "ValidatingWebhookConfiguration",
                                              "APIService",
                                              "Node",
                                              "CSIDriver",
                                              "VolumeSnapshotClass"};

// One object on its way through the kustomizations.
struct Resource {
  Json obj;
  SourceRef where;
  std::shared_ptr<const FieldPositions> positions;  // of its document; null when generated
  std::string prefix;                               // "items[3]" for an item of a List
  bool needs_hash = false;                          // a generated ConfigMap or Secret
  std::vector<std::string> earlier_names;  // before prefixes and suffixes: patches may use them
  std::optional<SopsEnvelope> sops;        // opened from a SOPS file (model/sops.h)
};

// Two SOPS envelopes protect values alike: the same data key and the same recipients.
bool SameProtection(const SopsEnvelope& a, const SopsEnvelope& b) {
  if (a.data_key != b.data_key || a.age.size() != b.age.size()) return false;
  for (size_t i = 0; i < a.age.size(); ++i) {
    if (a.age[i].recipient != b.age[i].recipient) return false;
  }
  return true;
}

std::string Str(const Json& j, const char* key) {
  auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : "";
}
std::string Kind(const Resource& r) { return Str(r.obj, "kind"); }
std::string Name(const Resource& r) {
  auto m = r.obj.find("metadata");
  return m != r.obj.end() && m->is_object() ? Str(*m, "name") : "";
}
std::string Namespace(const Resource& r) {
  auto m = r.obj.find("metadata");
  std::string ns = m != r.obj.end() && m->is_object() ? Str(*m, "namespace") : "";
  return ns;
}
// Its metadata, when it is an object (anything else is left to decoding to report).
Json* Meta(Resource& r) {
  if (!r.obj.is_object()) return nullptr;
  auto m = r.obj.find("metadata");
  return m != r.obj.end() && m->is_object() ? &*m : nullptr;
}
void SetName(Resource& r, const std::string& name) {
  Json* m = Meta(r);
  if (m == nullptr) return;
  r.earlier_names.push_back(Str(*m, "name"));
  (*m)["name"] = name;
}
// Whether `name` matches `pattern`, a patch target's name or namespace: kustomize reads them as
// anchored regular expressions. Supported: literal text, `.` (any character) and `.*`
// (anything), with optional ^ and $; nullopt for anything else (refused, never guessed).
// Iterative wildcard matching: no backtracking blow-up whatever the pattern.
std::optional<bool> PatternMatches(std::string pattern, const std::string& name) {
  if (!pattern.empty() && pattern.front() == '^') pattern.erase(0, 1);
  if (!pattern.empty() && pattern.back() == '$') pattern.pop_back();
  std::string glob;  // '*' for ".*", '?' for '.', else literal
  for (size_t i = 0; i < pattern.size(); ++i) {
    const char c = pattern[i];
    if (c == '.' && i + 1 < pattern.size() && pattern[i + 1] == '*') {
      glob += '*';
      ++i;
    } else if (c == '.') {
      glob += '?';
    } else if (std::string_view("[](){}*+?|\\^$").find(c) != std::string_view::npos) {
      return std::nullopt;
    } else {
      glob += c;
    }
  }
  size_t p = 0, n = 0, star = std::string::npos, mark = 0;
  while (n < name.size()) {
    if (p < glob.size() && (glob[p] == '?' || glob[p] == name[n])) {
      ++p;
      ++n;
    } else if (p < glob.size() && glob[p] == '*') {
      star = p++;
      mark = n;
    } else if (star != std::string::npos) {
      p = star + 1;
      n = ++mark;
    } else {
      return false;
    }
  }
  while (p < glob.size() && glob[p] == '*') ++p;
  return p == glob.size();
}

// Whether `r` is named `name` now or was before a prefix or suffix, as kustomize matches
// patch targets and replicas by an object's original name too.
bool HasName(const Resource& r, const std::string& name) {
  return Name(r) == name ||
         std::find(r.earlier_names.begin(), r.earlier_names.end(), name) != r.earlier_names.end();
}
bool Bool(const Json& j, const char* key) {
  auto it = j.find(key);
  return it != j.end() && it->is_boolean() && it->get<bool>();
}

// "a/b/../c" relative to `dir`, normalised; nullopt when it climbs above the root.
std::optional<std::string> JoinPath(const std::string& dir, const std::string& rel) {
  std::vector<std::string> parts;
  auto push = [&](const std::string& path) -> bool {
    size_t start = 0;
    while (start <= path.size()) {
      size_t slash = path.find('/', start);
      if (slash == std::string::npos) slash = path.size();
      std::string part = path.substr(start, slash - start);
      start = slash + 1;
      if (part.empty() || part == ".") continue;
      if (part == "..") {
        if (parts.empty()) return false;
        parts.pop_back();
        continue;
      }
      parts.push_back(std::move(part));
    }
    return true;
  };
  if (!rel.empty() && rel[0] == '/') return std::nullopt;
  if (!push(dir) || !push(rel)) return std::nullopt;
  std::string out;
  for (const auto& p : parts) out += (out.empty() ? "" : "/") + p;
  return out;
}

// Whether `path` is `dir` or below it (both normalised): kustomize's load restriction for the
// files a kustomization reads (resource files, generator files, patches); folders of other
// kustomizations (bases) may be anywhere in the repository.
bool InOrBelow(const std::string& dir, const std::string& path) {
  return dir.empty() || path == dir || path.rfind(dir + "/", 0) == 0;
}

// The nodes of `j` (objects, arrays, scalars), counted without recursion up to `cap` + 1.
size_t CountNodes(const Json& j, size_t cap) {
  std::vector<const Json*> stack{&j};
  size_t n = 0;
  while (!stack.empty() && n <= cap) {
    const Json* c = stack.back();
    stack.pop_back();
    ++n;
    if (c->is_structured()) {
      for (const Json& e : *c) stack.push_back(&e);
    }
  }
  return n;
}

bool IsRemote(const std::string& s) {
  return s.find("://") != std::string::npos || s.rfind("github.com/", 0) == 0 ||
         s.rfind("git@", 0) == 0 || s.rfind("gitlab.com/", 0) == 0 ||
         s.rfind("bitbucket.org/", 0) == 0;
}

// Go's json.Marshal of a map: keys sorted, <, > and & escaped as \u003c, \u003e, \u0026.
std::string GoJson(const Json& j) {
  std::string s = j.dump(-1, ' ', false, Json::error_handler_t::replace);
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    if (c == '<') {
      out += "\\u003c";
    } else if (c == '>') {
      out += "\\u003e";
    } else if (c == '&') {
      out += "\\u0026";
    } else {
      out += c;
    }
  }
  return out;
}

// The pod specs in an object of a workload kind, as kustomize's field specs find them.
std::vector<Json*> PodSpecs(Json& obj) {
  std::vector<Json*> out;
  const std::string kind = Str(obj, "kind");
  auto at = [&](std::initializer_list<const char*> path) -> Json* {
    Json* cur = &obj;
    for (const char* p : path) {
      if (!cur->is_object()) return nullptr;
      auto it = cur->find(p);
      if (it == cur->end()) return nullptr;
      cur = &*it;
    }
    return cur->is_object() ? cur : nullptr;
  };
  Json* spec = nullptr;
  if (kind == "Pod") {
    spec = at({"spec"});
  } else if (kind == "CronJob") {
    spec = at({"spec", "jobTemplate", "spec", "template", "spec"});
  } else if (kind == "Deployment" || kind == "StatefulSet" || kind == "DaemonSet" ||
             kind == "ReplicaSet" || kind == "Job" || kind == "ReplicationController") {
    spec = at({"spec", "template", "spec"});
  }
  if (spec != nullptr) out.push_back(spec);
  return out;
}

// Calls f(name) for every reference to a ConfigMap (`kind` "ConfigMap") or Secret by name in a
// pod spec, as kustomize's name reference config lists them.
template <typename F>
void ForEachConfigRef(Json& pod_spec, const std::string& kind, F&& f) {
  const bool cm = kind == "ConfigMap";
  auto visit = [&](Json& holder, const char* field) {
    if (holder.is_object()) {
      auto it = holder.find(field);
      if (it != holder.end() && it->is_string()) f(*it);
    }
  };
  for (const char* list : {"containers", "initContainers", "ephemeralContainers"}) {
    auto cs = pod_spec.find(list);
    if (cs == pod_spec.end() || !cs->is_array()) continue;
    for (Json& c : *cs) {
      if (!c.is_object()) continue;
      if (auto env = c.find("env"); env != c.end() && env->is_array()) {
        for (Json& e : *env) {
          if (!e.is_object()) continue;
          auto vf = e.find("valueFrom");
          if (vf == e.end() || !vf->is_object()) continue;
          auto ref = vf->find(cm ? "configMapKeyRef" : "secretKeyRef");
          if (ref != vf->end()) visit(*ref, "name");
        }
      }
      if (auto ef = c.find("envFrom"); ef != c.end() && ef->is_array()) {
        for (Json& e : *ef) {
          if (!e.is_object()) continue;
          auto ref = e.find(cm ? "configMapRef" : "secretRef");
          if (ref != e.end()) visit(*ref, "name");
        }
      }
    }
  }
  if (auto vs = pod_spec.find("volumes"); vs != pod_spec.end() && vs->is_array()) {
    for (Json& v : *vs) {
      if (!v.is_object()) continue;
      if (auto src = v.find(cm ? "configMap" : "secret"); src != v.end()) {
        visit(*src, cm ? "name" : "secretName");
      }
      auto projected = v.find("projected");
      if (projected == v.end() || !projected->is_object()) continue;
      auto sources = projected->find("sources");
      if (sources == projected->end() || !sources->is_array()) continue;
      for (Json& s : *sources) {
        if (!s.is_object()) continue;
        if (auto src = s.find(cm ? "configMap" : "secret"); src != s.end()) visit(*src, "name");
      }
    }
  }
  if (!cm) {
    if (auto ips = pod_spec.find("imagePullSecrets"); ips != pod_spec.end() && ips->is_array()) {
      for (Json& s : *ips) visit(s, "name");
    }
  }
}

// Sets every entry of `values` in the map at `path` below `holder`, as a kustomize field spec
// does: a missing map on the way is made when `create`, else nothing is set; anything that is
// not a map is left alone.
void PutAll(Json& holder, std::initializer_list<const char*> path, bool create,
            const std::map<std::string, std::string>& values) {
  Json* cur = &holder;
  for (const char* p : path) {
    if (!cur->is_object()) return;
    auto it = cur->find(p);
    if (it == cur->end() || it->is_null()) {
      if (!create) return;
      (*cur)[p] = Json::object();
      it = cur->find(p);
    }
    cur = &*it;
  }
  if (!cur->is_object()) return;
  for (const auto& [k, v] : values) (*cur)[k] = v;
}

// kustomize's label field specs: where commonLabels (and labels with includeSelectors) go.
// `selectors`: selectors too; `templates`: pod template labels too.
void AddLabels(Json& obj, const std::map<std::string, std::string>& labels, bool selectors,
               bool templates) {
  auto put = [&](Json& holder, std::initializer_list<const char*> path, bool create) {
    PutAll(holder, path, create, labels);
  };
  put(obj, {"metadata", "labels"}, true);
  const std::string kind = Str(obj, "kind");
  if (kind == "Service" || kind == "ReplicationController") {
    if (selectors) put(obj, {"spec", "selector"}, true);
    if (kind == "ReplicationController" && (selectors || templates)) {
      put(obj, {"spec", "template", "metadata", "labels"}, true);
    }
  } else if (kind == "Deployment" || kind == "ReplicaSet" || kind == "DaemonSet" ||
             kind == "StatefulSet") {
    if (selectors) put(obj, {"spec", "selector", "matchLabels"}, true);
    if (selectors || templates) put(obj, {"spec", "template", "metadata", "labels"}, true);
  } else if (kind == "Job") {
    if (selectors) put(obj, {"spec", "selector", "matchLabels"}, false);
    if (selectors || templates) put(obj, {"spec", "template", "metadata", "labels"}, true);
  } else if (kind == "CronJob") {
    if (selectors) put(obj, {"spec", "jobTemplate", "spec", "selector", "matchLabels"}, false);
    if (selectors || templates) {
      put(obj, {"spec", "jobTemplate", "metadata", "labels"}, true);
      put(obj, {"spec", "jobTemplate", "spec", "template", "metadata", "labels"}, true);
    }
  } else if (kind == "PodDisruptionBudget") {
    if (selectors) put(obj, {"spec", "selector", "matchLabels"}, false);
  } else if (kind == "NetworkPolicy") {
    if (selectors) put(obj, {"spec", "podSelector", "matchLabels"}, false);
  }
}

void AddAnnotations(Json& obj, const std::map<std::string, std::string>& annotations) {
  auto put = [&](std::initializer_list<const char*> path, bool create) {
    PutAll(obj, path, create, annotations);
  };
  put({"metadata", "annotations"}, true);
  const std::string kind = Str(obj, "kind");
  if (kind == "Deployment" || kind == "ReplicaSet" || kind == "DaemonSet" ||
      kind == "StatefulSet" || kind == "Job" || kind == "ReplicationController") {
    put({"spec", "template", "metadata", "annotations"}, true);
  } else if (kind == "CronJob") {
    put({"spec", "jobTemplate", "metadata", "annotations"}, true);
    put({"spec", "jobTemplate", "spec", "template", "metadata", "annotations"}, true);
  }
}

// The merge key of a list field in a strategic merge patch, "" for a list replaced whole.
std::string MergeKey(const std::string& field, const Json& items) {
  if (field == "containers" || field == "initContainers" || field == "ephemeralContainers" ||
      field == "env" || field == "volumes" || field == "imagePullSecrets") {
    return "name";
  }
  if (field == "volumeMounts") return "mountPath";
  if (field == "ports") {
    for (const auto& i : items) {
      if (i.is_object() && i.contains("containerPort")) return "containerPort";
    }
    return "port";
  }
  return "";
}

// Kubernetes' strategic merge of `patch` into `dst` for the lists ballast knows (MergeKey),
// with `$patch: replace|delete` and null deleting a field. False when `dst` is to be deleted.
bool StrategicMerge(Json& dst, const Json& patch) {
  if (!patch.is_object() || !dst.is_object()) {
    dst = patch;
    return true;
  }
  if (auto d = patch.find("$patch"); d != patch.end() && d->is_string()) {
    if (*d == "delete") return false;
    if (*d == "replace") {
      dst = patch;
      dst.erase("$patch");
      return true;
    }
  }
  for (const auto& [k, v] : patch.items()) {
    if (k == "$patch" || k.rfind("$setElementOrder/", 0) == 0) continue;
    if (v.is_null()) {
      dst.erase(k);
      continue;
    }
    auto it = dst.find(k);
    if (it == dst.end()) {
      Json clean = v;
      dst[k] = std::move(clean);
      continue;
    }
    if (v.is_object() && it->is_object()) {
      if (!StrategicMerge(*it, v)) dst.erase(k);
      continue;
    }
    // A list item `$patch: replace` makes the patch's list the whole list.
    if (v.is_array()) {
      const bool replace = std::any_of(v.begin(), v.end(), [](const Json& p) {
        return p.is_object() && Str(p, "$patch") == "replace";
      });
      if (replace) {
        Json out = Json::array();
        for (const Json& p : v) {
          if (!(p.is_object() && Str(p, "$patch") == "replace")) out.push_back(p);
        }
        *it = std::move(out);
        continue;
      }
    }
    const std::string key = v.is_array() && it->is_array() ? MergeKey(k, v) : "";
    if (key.empty()) {
      *it = v;
      continue;
    }
    // Merge by key: the patch's items in its order (merged into the existing one of the same
    // key), then the existing items it does not name. Indexed, so a long list merges in
    // n log n.
    std::map<std::string, const Json*> existing_by_key;
    for (const Json& e : *it) {
      if (e.is_object() && e.contains(key)) existing_by_key.emplace(e[key].dump(), &e);
    }
    Json out = Json::array();
    std::set<std::string> named;
    for (const Json& p : v) {
      if (!p.is_object() || !p.contains(key)) {
        out.push_back(p);
        continue;
      }
      const std::string id = p[key].dump();
      named.insert(id);
      auto existing = existing_by_key.find(id);
      if (existing == existing_by_key.end()) {
        if (Str(p, "$patch") == "delete") continue;
        out.push_back(p);
        continue;
      }
      Json merged = *existing->second;
      if (StrategicMerge(merged, p)) out.push_back(std::move(merged));
    }
    for (const Json& e : *it) {
      if (e.is_object() && e.contains(key) && named.count(e[key].dump()) > 0) continue;
      out.push_back(e);
    }
    *it = std::move(out);
  }
  return true;
}

// An image reference: "r/nginx:1.2@sha256:..." -> {"r/nginx", "1.2", "sha256:..."}.
struct ImageRef {
  std::string name, tag, digest;
  std::string ToString() const {
    return name + (tag.empty() ? "" : ":" + tag) + (digest.empty() ? "" : "@" + digest);
  }
};
ImageRef SplitImage(const std::string& image) {
  ImageRef ref;
  std::string rest = image;
  if (auto at = rest.find('@'); at != std::string::npos) {
    ref.digest = rest.substr(at + 1);
    rest = rest.substr(0, at);
  }
  const size_t slash = rest.rfind('/');
  const size_t colon = rest.rfind(':');
  if (colon != std::string::npos && (slash == std::string::npos || colon > slash)) {
    ref.tag = rest.substr(colon + 1);
    rest = rest.substr(0, colon);
  }
  ref.name = std::move(rest);
  return ref;
}

class Renderer {
 public:
  Renderer(const KustomizeReader& read, std::string display_root, const ParseLimits& limits,
           const KustomizeLimits& bounds)
      : read_(read), display_root_(std::move(display_root)), limits_(limits), bounds_(bounds) {}

  std::vector<Diagnostic>& diagnostics() { return diags_; }

  // Builds the kustomization of `dir` into `acc` (a Component transforms what `acc` holds).
  bool Build(const std::string& dir, std::vector<Resource>* acc, bool component,
             const SourceRef& from);

  // The hash suffix of generated objects, and the references to them (the top level's last
  // step, as kustomize takes it).
  void ApplyHashes(std::vector<Resource>* acc) {
    std::map<std::tuple<std::string, std::string, std::string>, std::string> renamed;
    for (Resource& r : *acc) {
      if (!r.needs_hash) continue;
      const std::string name = Name(r) + "-" + KustomizeHash(r.obj);
      renamed[{Kind(r), Namespace(r), Name(r)}] = name;
      SetName(r, name);
    }
    Rename(acc, renamed);
  }

 private:
  std::string Display(const std::string& path) const {
    if (display_root_.empty()) return path;
    if (path.empty()) return display_root_;
    return display_root_.back() == '/' ? display_root_ + path : display_root_ + "/" + path;
  }
  void Error(const SourceRef& where, const std::string& field, std::string message) {
    Diagnostic d;
    d.where = where;
    d.field = field;
    d.message = std::move(message);
    diags_.push_back(std::move(d));
  }
  SourceRef At(const std::string& file, const FieldPositions& positions,
               const std::string& field) const {
    auto [line, column] = positions.Lookup(field);
    return SourceRef{Display(file), line, column};
  }

  // The documents of a file as resources.
  bool LoadFile(const std::string& path, const std::string& content, std::vector<Resource>* out,
                const SourceRef& from);
  Result<std::optional<std::string>> Read(const std::string& path) {
    auto r = read_(path);
    if (r.ok() && *r) {
      total_bytes_ += (*r)->size();
      if (total_bytes_ > bounds_.max_total_bytes) {
        return ResourceExhausted("the files kustomize reads exceed " +
                                 std::to_string(bounds_.max_total_bytes) + " bytes");
      }
    }
    return r;
  }

  // Generators: configMapGenerator or secretGenerator entries of a kustomization in `dir`.
  void Generate(const std::string& dir, const std::string& file, const FieldPositions& pos,
                const Json& list, const std::string& field, const Json& options,
                std::vector<Resource>* acc);
  // patches, patchesStrategicMerge, patchesJson6902.
  // patchesStrategicMerge and patches, or (`json6902`) patchesJson6902.
  void Patch(const std::string& dir, const std::string& file, const FieldPositions& pos,
             const Json& k, bool json6902, std::vector<Resource>* acc);
  bool ApplyPatch(const Json& patch, bool json6902, const Json& target, const SourceRef& at,
                  const std::string& field, std::vector<Resource>* acc);

  // Renames among `acc` ({kind, namespace, old name} -> new name) and the references to them.
  static void Rename(
      std::vector<Resource>* acc,
      const std::map<std::tuple<std::string, std::string, std::string>, std::string>& renamed) {
    if (renamed.empty()) return;
    for (Resource& r : *acc) {
      const std::string ns = Namespace(r);
      for (Json* spec : PodSpecs(r.obj)) {
        for (const char* kind : {"ConfigMap", "Secret"}) {
          ForEachConfigRef(*spec, kind, [&](Json& name) {
            auto it = renamed.find({kind, ns, name.get<std::string>()});
            if (it != renamed.end()) name = it->second;
          });
        }
      }
      const std::string kind = Kind(r);
      if (kind == "HorizontalPodAutoscaler") {
        auto spec = r.obj.find("spec");
        if (spec != r.obj.end() && spec->is_object()) {
          auto ref = spec->find("scaleTargetRef");
          if (ref != spec->end() && ref->is_object()) {
            auto it = renamed.find({Str(*ref, "kind"), ns, Str(*ref, "name")});
            if (it != renamed.end()) (*ref)["name"] = it->second;
          }
        }
      }
    }
  }

  const KustomizeReader& read_;
  std::string display_root_;
  ParseLimits limits_;
  KustomizeLimits bounds_;
  std::vector<Diagnostic> diags_;
  std::vector<std::string> stack_;  // directories being built, for cycles
  size_t built_ = 0;
  size_t objects_ = 0;  // loaded and generated, against bounds_.max_objects
  size_t nodes_ = 0;    // loaded, against bounds_.max_total_nodes
  std::set<std::string> loaded_files_;
  size_t total_bytes_ = 0;
};

bool Renderer::LoadFile(const std::string& path, const std::string& content,
                        std::vector<Resource>* out, const SourceRef& from) {
  if (content.size() > limits_.max_file_bytes) {
    Error(from, "",
          Display(path) + " is larger than the limit of " + std::to_string(limits_.max_file_bytes) +
              " bytes");
    return false;
  }
  if (!loaded_files_.insert(path).second) {
    Error(from, "",
          Display(path) +
              " is listed twice in this kustomization tree: its objects "
              "would be defined twice");
    return false;
  }
  YamlParseResult parsed = ParseYamlDocuments(Display(path), content, limits_);
  for (auto& e : parsed.errors) diags_.push_back(std::move(e));
  // SOPS files are opened before kustomize changes anything their MAC covers.
  std::vector<std::optional<SopsEnvelope>> envelopes;
  OpenSopsDocuments(Display(path), content, limits_, parsed, &envelopes, &diags_);
  for (const YamlDocument& doc : parsed.documents) {
    nodes_ += CountNodes(doc.root, bounds_.max_total_nodes);
    objects_ += 1;
  }
  if (nodes_ > bounds_.max_total_nodes || objects_ > bounds_.max_objects) {
    Error(from, "",
          "the kustomization tree holds more than " + std::to_string(bounds_.max_total_nodes) +
              " values or " + std::to_string(bounds_.max_objects) + " objects: refused");
    return false;
  }
  for (size_t index = 0; index < parsed.documents.size(); ++index) {
    YamlDocument& doc = parsed.documents[index];
    auto positions = std::make_shared<const FieldPositions>(std::move(doc.positions));
    const SourceRef where{Display(path), doc.line, doc.column};
    if (!doc.root.is_object()) {
      Error(where, "", "not an object: a resource of a kustomization must be a Kubernetes object");
      continue;
    }
    if (doc.root.value("kind", Json()) == "List" && doc.root.contains("items") &&
        doc.root["items"].is_array()) {
      for (size_t i = 0; i < doc.root["items"].size(); ++i) {
        const std::string prefix = IndexPath("items", i);
        auto [line, column] = positions->Lookup(prefix);
        out->push_back({doc.root["items"][i],
                        SourceRef{Display(path), line, column},
                        positions,
                        prefix,
                        false,
                        {},
                        envelopes[index]});
      }
      continue;
    }
    out->push_back({std::move(doc.root), where, positions, "", false, {}, envelopes[index]});
  }
  return parsed.errors.empty();
}

bool Renderer::Build(const std::string& dir, std::vector<Resource>* acc, bool component,
                     const SourceRef& from) {
  if (++built_ > bounds_.max_kustomizations) {
    Error(from, "",
          "more than " + std::to_string(bounds_.max_kustomizations) + " kustomizations: refused");
    return false;
  }
  if (std::find(stack_.begin(), stack_.end(), dir) != stack_.end()) {
    std::string cycle;
    for (const auto& d : stack_) cycle += (d.empty() ? "." : d) + " -> ";
    Error(from, "", "kustomizations include each other: " + cycle + (dir.empty() ? "." : dir));
    return false;
  }
  const std::string name = FindKustomization(dir, read_);
  if (name.empty()) {
    Error(from, "", "no kustomization.yaml in " + Display(dir.empty() ? "." : dir));
    return false;
  }
  const std::string file = dir.empty() ? name : dir + "/" + name;
  auto content = Read(file);
  if (!content.ok() || !*content) {
    Error(from, "", content.ok() ? "cannot read " + Display(file) : content.status().message());
    return false;
  }
  YamlParseResult parsed = ParseYamlDocuments(Display(file), **content, limits_);
  if (!parsed.errors.empty()) {
    for (auto& e : parsed.errors) diags_.push_back(std::move(e));
    return false;
  }
  if (parsed.documents.size() != 1 || !parsed.documents[0].root.is_object()) {
    Error(SourceRef{Display(file), 1, 1}, "", "a kustomization is one YAML mapping");
    return false;
  }
  const Json& k = parsed.documents[0].root;
  const FieldPositions& pos = parsed.documents[0].positions;
  stack_.push_back(dir);
  struct Pop {
    std::vector<std::string>& s;
    ~Pop() { s.pop_back(); }
  } pop{stack_};
  const size_t errors_before = CountErrors(diags_);

  const std::string kind = Str(k, "kind");
  if (component && kind != "Component") {
    Error(At(file, pos, "kind"), "kind",
          "Invalid value: \"" + kind + "\": a component's kustomization has kind Component");
  } else if (!component && !kind.empty() && kind != "Kustomization") {
    Error(At(file, pos, "kind"), "kind",
          "Invalid value: \"" + kind +
              "\": expected Kustomization (a Component is listed under "
              "components)");
  }
  for (const auto& [field, value] : k.items()) {
    if (kSupportedFields.count(field) == 0) {
      Error(At(file, pos, field), field,
            "unsupported kustomization field \"" + field +
                "\": ballast renders resources, components, namespace, namePrefix, nameSuffix, "
                "commonLabels, labels, commonAnnotations, images, replicas, configMapGenerator, "
                "secretGenerator, generatorOptions, patches, patchesStrategicMerge and "
                "patchesJson6902; remove it or render the manifests before committing them");
    }
  }
  auto list = [&](const char* field) -> const Json* {
    auto it = k.find(field);
    if (it == k.end() || it->is_null()) return nullptr;
    if (!it->is_array()) {
      Error(At(file, pos, field), field, "Invalid type: expected array");
      return nullptr;
    }
    if (it->size() > bounds_.max_entries) {
      Error(At(file, pos, field), field,
            "Too many: " + std::to_string(it->size()) + ": must have at most " +
                std::to_string(bounds_.max_entries) + " entries");
      return nullptr;
    }
    return &*it;
  };
  auto string_map = [&](const char* field) {
    std::map<std::string, std::string> out;
    auto it = k.find(field);
    if (it == k.end() || it->is_null()) return out;
    if (!it->is_object()) {
      Error(At(file, pos, field), field, "Invalid type: expected map of strings");
      return out;
    }
    for (const auto& [key, v] : it->items()) {
      if (v.is_string()) {
        out[key] = v.get<std::string>();
      } else {
        // As kustomize refuses it (`1.10` would otherwise become "1.1").
        Error(At(file, pos, ChildPath(field, key)), ChildPath(field, key),
              "Invalid type: expected string (quote it)");
      }
    }
    return out;
  };

  for (const char* field : {"namespace", "namePrefix", "nameSuffix"}) {
    auto it = k.find(field);
    if (it != k.end() && !it->is_null() && !it->is_string()) {
      Error(At(file, pos, field), field, "Invalid type: expected string");
    }
  }
  std::vector<Resource> local;
  std::vector<Resource>* out = component ? acc : &local;

  // resources (and the older bases).
  for (const char* field : {"resources", "bases"}) {
    const Json* entries = list(field);
    if (entries == nullptr) continue;
    for (size_t i = 0; i < entries->size(); ++i) {
      const std::string fp = IndexPath(field, i);
      const SourceRef at = At(file, pos, fp);
      const Json& e = (*entries)[i];
      if (!e.is_string()) {
        Error(at, fp, "Invalid type: expected string");
        continue;
      }
      const std::string rel = e.get<std::string>();
      if (IsRemote(rel)) {
        Error(at, fp,
              "remote resource \"" + rel +
                  "\" refused: ballast renders what the repository holds (vendor the "
                  "base into it)");
        continue;
      }
      auto path = JoinPath(dir, rel);
      if (!path) {
        Error(at, fp, "resource \"" + rel + "\" is outside the repository");
        continue;
      }
      auto data = Read(*path);
      if (!data.ok()) {
        Error(at, fp, data.status().message());
        continue;
      }
      if (*data) {
        if (!InOrBelow(dir, *path)) {
          Error(at, fp,
                "resource file \"" + rel +
                    "\" is not in or below the kustomization's folder (kustomize refuses "
                    "it too; a base is a folder with its own kustomization)");
          continue;
        }
        LoadFile(*path, **data, out, at);
        continue;
      }
      if (FindKustomization(*path, read_).empty()) {
        Error(at, fp,
              "resource \"" + rel + "\" (" + Display(*path) +
                  ") is neither a file nor a directory with a kustomization.yaml");
        continue;
      }
      std::vector<Resource> sub;
      if (Build(*path, &sub, false, at)) {
        for (auto& r : sub) out->push_back(std::move(r));
      }
    }
  }

  // Generators, then components (kustomize 5.1 and later: a component transforms what this
  // kustomization generates too).
  Json options = Json::object();
  if (auto go = k.find("generatorOptions"); go != k.end() && go->is_object()) options = *go;
  for (const char* field : {"configMapGenerator", "secretGenerator"}) {
    if (const Json* entries = list(field)) Generate(dir, file, pos, *entries, field, options, out);
  }
  // components: each transforms what is there so far.
  if (const Json* entries = list("components")) {
    for (size_t i = 0; i < entries->size(); ++i) {
      const std::string fp = IndexPath("components", i);
      const SourceRef at = At(file, pos, fp);
      const Json& e = (*entries)[i];
      if (!e.is_string() || IsRemote(e.get<std::string>())) {
        Error(at, fp, e.is_string() ? "remote component refused" : "Invalid type: expected string");
        continue;
      }
      auto path = JoinPath(dir, e.get<std::string>());
      if (!path) {
        Error(at, fp, "component outside the repository");
        continue;
      }
      Build(*path, out, true, at);
    }
  }

  Patch(dir, file, pos, k, false, out);

  // namespace
  if (auto ns = k.find("namespace"); ns != k.end() && ns->is_string() && !ns->empty()) {
    for (Resource& r : *out) {
      if (kClusterScoped.count(Kind(r)) > 0) continue;
      if (Json* m = Meta(r)) (*m)["namespace"] = *ns;
    }
  }
  // namePrefix, nameSuffix, and the references that follow.
  const std::string prefix = Str(k, "namePrefix"), suffix = Str(k, "nameSuffix");
  std::map<std::tuple<std::string, std::string, std::string>, std::string> renamed;
  if (!prefix.empty() || !suffix.empty()) {
    for (Resource& r : *out) {
      if (Kind(r) == "Namespace" || Kind(r) == "CustomResourceDefinition" || !Meta(r)) continue;
      const std::string old = Name(r);
      SetName(r, prefix + old + suffix);
      renamed[{Kind(r), Namespace(r), old}] = prefix + old + suffix;
    }
    Rename(out, renamed);
  }
  // commonLabels, labels, commonAnnotations.
  if (auto labels = string_map("commonLabels"); !labels.empty()) {
    for (Resource& r : *out) AddLabels(r.obj, labels, true, true);
  }
  if (const Json* entries = list("labels")) {
    for (size_t i = 0; i < entries->size(); ++i) {
      const Json& e = (*entries)[i];
      const std::string fp = IndexPath("labels", i);
      if (!e.is_object()) {
        Error(At(file, pos, fp), fp, "Invalid type: expected object");
        continue;
      }
      std::map<std::string, std::string> pairs;
      for (const auto& [key, v] : e.items()) {
        if (key == "pairs" && v.is_object()) {
          for (const auto& [pk, pv] : v.items()) {
            if (pv.is_string()) {
              pairs[pk] = pv.get<std::string>();
            } else {
              Error(At(file, pos, ChildPath(ChildPath(fp, "pairs"), pk)),
                    ChildPath(ChildPath(fp, "pairs"), pk),
                    "Invalid type: expected string (quote it)");
            }
          }
        } else if (key != "includeSelectors" && key != "includeTemplates") {
          Error(At(file, pos, ChildPath(fp, key)), ChildPath(fp, key),
                "unsupported field \"" + key + "\" of labels (fields: refused)");
        }
      }
      const bool selectors = Bool(e, "includeSelectors");
      const bool templates = Bool(e, "includeTemplates");
      for (Resource& r : *out) AddLabels(r.obj, pairs, selectors, templates);
    }
  }
  if (auto annotations = string_map("commonAnnotations"); !annotations.empty()) {
    for (Resource& r : *out) AddAnnotations(r.obj, annotations);
  }
  // patchesJson6902 after the names, labels and annotations, as kustomize orders them.
  Patch(dir, file, pos, k, true, out);
  // replicas: by the name an object has, or had before a prefix or suffix.
  if (const Json* entries = list("replicas")) {
    for (size_t i = 0; i < entries->size(); ++i) {
      const Json& e = (*entries)[i];
      const std::string fp = IndexPath("replicas", i);
      auto count = e.is_object() ? e.find("count") : e.end();
      if (!e.is_object() || Str(e, "name").empty() || count == e.end() ||
          !count->is_number_integer()) {
        Error(At(file, pos, fp), fp, "Required value: replicas needs a name and an integer count");
        continue;
      }
      for (Resource& r : *out) {
        if (!HasName(r, Str(e, "name"))) continue;
        const std::string kind = Kind(r);
        auto spec = r.obj.find("spec");
        if ((kind == "Deployment" || kind == "StatefulSet" || kind == "ReplicaSet" ||
             kind == "ReplicationController") &&
            spec != r.obj.end() && spec->is_object()) {
          (*spec)["replicas"] = *count;
        }
      }
    }
  }
  // images: the entries by image name, then one pass over every container.
  if (const Json* entries = list("images")) {
    std::map<std::string, const Json*> by_name;
    for (size_t i = 0; i < entries->size(); ++i) {
      const Json& e = (*entries)[i];
      const std::string fp = IndexPath("images", i);
      if (!e.is_object() || Str(e, "name").empty()) {
        Error(At(file, pos, fp), fp, "Required value: an image needs a name");
        continue;
      }
      bool ok = true;
      for (const auto& [key, v] : e.items()) {
        if (key != "name" && key != "newName" && key != "newTag" && key != "digest") {
          Error(At(file, pos, ChildPath(fp, key)), ChildPath(fp, key),
                "unsupported field \"" + key + "\" of images (refused, not ignored)");
          ok = false;
        } else if (!v.is_string()) {
          Error(At(file, pos, ChildPath(fp, key)), ChildPath(fp, key),
                "Invalid type: expected string (quote a tag such as \"1.10\")");
          ok = false;
        }
      }
      if (ok) by_name.emplace(Str(e, "name"), &e);
    }
    for (Resource& r : *out) {
      for (Json* spec : PodSpecs(r.obj)) {
        for (const char* field : {"containers", "initContainers"}) {
          auto cs = spec->find(field);
          if (cs == spec->end() || !cs->is_array()) continue;
          for (Json& c : *cs) {
            if (!c.is_object() || !c.contains("image") || !c["image"].is_string()) continue;
            ImageRef image = SplitImage(c["image"].get<std::string>());
            auto it = by_name.find(image.name);
            if (it == by_name.end()) continue;
            const Json& e = *it->second;
            if (e.contains("newName")) image.name = Str(e, "newName");
            if (e.contains("newTag")) {
              image.tag = Str(e, "newTag");
              image.digest.clear();
            }
            if (e.contains("digest")) {
              image.digest = Str(e, "digest");
              if (!e.contains("newTag")) image.tag.clear();
            }
            c["image"] = image.ToString();
          }
        }
      }
    }
  }
  if (!component) {
    for (auto& r : local) acc->push_back(std::move(r));
  }
  return CountErrors(diags_) == errors_before;
}

void Renderer::Generate(const std::string& dir, const std::string& file, const FieldPositions& pos,
                        const Json& entries, const std::string& field, const Json& options,
                        std::vector<Resource>* acc) {
  const bool secret = field == "secretGenerator";
  for (size_t i = 0; i < entries.size(); ++i) {
    const std::string fp = IndexPath(field, i);
    const SourceRef at = At(file, pos, fp);
    const Json& g = entries[i];
    if (!g.is_object() || Str(g, "name").empty()) {
      Error(at, fp, "Required value: a generator needs a name");
      continue;
    }
    for (const auto& [key, v] : g.items()) {
      static const std::set<std::string> known = {
          "name", "namespace", "behavior", "literals", "files", "envs", "env", "options", "type"};
      if (known.count(key) == 0) {
        Error(At(file, pos, ChildPath(fp, key)), ChildPath(fp, key),
              "unsupported field \"" + key + "\" of " + field);
      }
    }
    std::map<std::string, std::string> data;  // plain values
    std::optional<SopsEnvelope> sops;         // a SOPS dotenv's, for history's seal
    bool ok = true;
    auto add = [&](const std::string& key, const std::string& value, const std::string& where) {
      if (!data.emplace(key, value).second) {
        Error(At(file, pos, where), where, "Duplicate value: key \"" + key + "\"");
        ok = false;
      }
    };
    auto strings = [&](const char* f, auto&& each) {
      auto it = g.find(f);
      if (it == g.end() || it->is_null()) return;
      if (it->is_string() && std::string(f) == "env") {
        each(it->get<std::string>(), ChildPath(fp, f));
        return;
      }
      if (!it->is_array()) {
        Error(At(file, pos, ChildPath(fp, f)), ChildPath(fp, f), "Invalid type: expected array");
        ok = false;
        return;
      }
      for (size_t j = 0; j < it->size(); ++j) {
        const std::string ep = IndexPath(ChildPath(fp, f), j);
        if (!(*it)[j].is_string()) {
          Error(At(file, pos, ep), ep, "Invalid type: expected string");
          ok = false;
          continue;
        }
        each((*it)[j].get<std::string>(), ep);
      }
    };
    strings("literals", [&](const std::string& lit, const std::string& ep) {
      const size_t eq = lit.find('=');
      if (eq == std::string::npos || eq == 0) {
        Error(At(file, pos, ep), ep, "Invalid value: \"" + lit + "\": a literal is KEY=VALUE");
        ok = false;
        return;
      }
      std::string value = lit.substr(eq + 1);
      if (value.size() >= 2 && (value.front() == '"' || value.front() == '\'') &&
          value.back() == value.front()) {
        value = value.substr(1, value.size() - 2);
      }
      add(lit.substr(0, eq), value, ep);
    });
    auto read_file = [&](const std::string& rel, const std::string& ep,
                         bool sops_dotenv_ok = false) -> std::optional<std::string> {
      auto path = JoinPath(dir, rel);
      if (!path || !InOrBelow(dir, *path)) {
        Error(At(file, pos, ep), ep,
              "file \"" + rel +
                  "\" is not in or below the kustomization's folder (kustomize refuses it too)");
        ok = false;
        return std::nullopt;
      }
      auto data = Read(*path);
      if (!data.ok() || !*data) {
        Error(At(file, pos, ep), ep,
              data.ok() ? "file \"" + rel + "\" not found (" + Display(*path) + ")"
                        : data.status().message());
        ok = false;
        return std::nullopt;
      }
      // A generator source sops encrypted (dotenv, JSON, YAML) is not opened here: its
      // ciphertext would become the values.
      if ((*data)->find("ENC[AES256_GCM,") != std::string::npos &&
          !(sops_dotenv_ok && IsSopsDotenv(**data))) {
        Error(At(file, pos, ep), ep,
              "file \"" + rel +
                  "\" is SOPS-encrypted: ballast opens SOPS-encrypted Secret resources, not "
                  "generator sources; list the encrypted Secret under resources");
        ok = false;
        return std::nullopt;
      }
      return std::move(**data);
    };
    strings("files", [&](const std::string& spec, const std::string& ep) {
      std::string key = spec, rel = spec;
      if (auto eq = spec.find('='); eq != std::string::npos) {
        key = spec.substr(0, eq);
        rel = spec.substr(eq + 1);
      } else {
        key = rel.substr(rel.rfind('/') + 1);
      }
      if (auto content = read_file(rel, ep)) add(key, *content, ep);
    });
    auto envs = [&](const std::string& rel, const std::string& ep) {
      auto content = read_file(rel, ep, secret);
      if (!content) return;
      if (IsSopsDotenv(*content)) {
        // A dotenv sops encrypted, behind a secretGenerator (as Flux opens them): its pairs,
        // and the Secret it makes is sealed in history like an opened one.
        auto refuse = [&](const std::string& message) {
          Error(At(file, pos, ep), ep, message);
          ok = false;
        };
        if (limits_.sops == nullptr) {
          return refuse("file \"" + rel +
                        "\" is SOPS-encrypted: give an age identity that opens it "
                        "(--age-identity-file)");
        }
        auto opened = OpenSopsDotenv(*content, *limits_.sops);
        if (!opened.ok()) return refuse("SOPS: " + rel + ": " + opened.status().message());
        // History seals the Secret for one file's recipients: values from files that
        // other keys protect would reach whoever holds this one.
        if (sops && !SameProtection(*sops, opened->envelope)) {
          return refuse("SOPS: " + rel +
                        " is encrypted with another data key than this Secret's other values: "
                        "one Secret's values come from files of one key (history seals them so)");
        }
        for (const auto& [k, v] : opened->pairs) add(k, v, ep);
        sops = std::move(opened->envelope);
        return;
      }
      size_t start = 0;
      while (start < content->size()) {
        size_t nl = content->find('\n', start);
        if (nl == std::string::npos) nl = content->size();
        std::string line = content->substr(start, nl - start);
        start = nl + 1;
        if (!line.empty() && line.back() == '\r') line.pop_back();
        const size_t first = line.find_first_not_of(" \t");
        if (first == std::string::npos || line[first] == '#') continue;
        const size_t eq = line.find('=');
        if (eq == std::string::npos) continue;  // kustomize reads KEY alone from its env: not here
        std::string key = line.substr(0, eq);
        key.erase(0, key.find_first_not_of(" \t"));
        add(key, line.substr(eq + 1), ep);
      }
    };
    strings("envs", envs);
    strings("env", envs);
    if (!ok) continue;

    Json obj = {{"apiVersion", "v1"},
                {"kind", secret ? "Secret" : "ConfigMap"},
                {"metadata", {{"name", Str(g, "name")}}}};
    if (!Str(g, "namespace").empty()) obj["metadata"]["namespace"] = Str(g, "namespace");
    Json d = Json::object();
    for (const auto& [key, value] : data) {
      d[key] = secret ? Base64Encode(value) : value;
    }
    obj["data"] = std::move(d);
    if (secret) obj["type"] = Str(g, "type").empty() ? "Opaque" : Str(g, "type");
    // Options: the generator's over generatorOptions.
    Json merged = options;
    if (auto o = g.find("options"); o != g.end() && o->is_object()) {
      for (const auto& [key, v] : o->items()) merged[key] = v;
    }
    bool hash = true;
    for (const auto& [key, v] : merged.items()) {
      if (key == "disableNameSuffixHash") {
        hash = !v.is_boolean() || !v.get<bool>();
      } else if (key == "labels" || key == "annotations") {
        if (!v.is_object()) continue;
        for (const auto& [lk, lv] : v.items()) {
          if (lv.is_string()) {
            obj["metadata"][key][lk] = lv.get<std::string>();
          } else {
            Error(At(file, pos, fp), fp,
                  "Invalid type: " + key + " \"" + lk + "\" expected string (quote it)");
          }
        }
      } else if (key == "immutable") {
        if (v.is_boolean()) obj["immutable"] = v;
      } else {
        Error(At(file, pos, fp), fp, "unsupported generator option \"" + key + "\"");
      }
    }
    const std::string behavior = Str(g, "behavior").empty() ? "create" : Str(g, "behavior");
    Resource made{std::move(obj), at, nullptr, "", hash, {}, std::move(sops)};
    if (behavior == "create") {
      if (++objects_ > bounds_.max_objects) {
        Error(at, fp,
              "more than " + std::to_string(bounds_.max_objects) +
                  " objects in the kustomization tree: refused");
        return;
      }
      acc->push_back(std::move(made));
      continue;
    }
    if (behavior != "merge" && behavior != "replace") {
      Error(At(file, pos, ChildPath(fp, "behavior")), ChildPath(fp, "behavior"),
            "Unsupported value: \"" + behavior +
                "\": supported values: \"create\", \"merge\", "
                "\"replace\"");
      continue;
    }
    Resource* existing = nullptr;
    for (Resource& r : *acc) {
      if (Kind(r) == Kind(made) && Name(r) == Name(made) &&
          (Namespace(made).empty() || Namespace(r) == Namespace(made))) {
        existing = &r;
      }
    }
    if (existing == nullptr) {
      Error(at, fp,
            "behavior " + behavior + ": no " + Kind(made) + " \"" + Name(made) +
                "\" from a base to " + behavior);
      continue;
    }
    auto existing_data = existing->obj.find("data");
    if (behavior == "replace" || existing_data == existing->obj.end() ||
        !existing_data->is_object()) {
      existing->obj["data"] = made.obj["data"];
    } else if (Meta(*existing) == nullptr) {
      Error(at, fp, "behavior merge: the base's " + Kind(made) + " has no metadata to merge into");
      continue;
    } else {
      for (const auto& [key, v] : made.obj["data"].items()) existing->obj["data"][key] = v;
      if (made.obj["metadata"].contains("labels")) {
        for (const auto& [lk, lv] : made.obj["metadata"]["labels"].items())
          existing->obj["metadata"]["labels"][lk] = lv;
      }
      if (made.obj["metadata"].contains("annotations")) {
        for (const auto& [lk, lv] : made.obj["metadata"]["annotations"].items())
          existing->obj["metadata"]["annotations"][lk] = lv;
      }
    }
    existing->needs_hash = existing->needs_hash && hash;
    existing->where = at;
    // Values from a SOPS dotenv are sealed in history with the object they went into; values
    // that two different keys protect cannot share one object's seal.
    if (made.sops && existing->sops && !SameProtection(*made.sops, *existing->sops)) {
      Error(at, fp,
            "SOPS: behavior " + behavior +
                " would put values that another data key protects "
                "into " +
                Kind(made) + " \"" + Name(made) +
                "\" (history seals one object for one file's recipients)");
      continue;
    }
    if (made.sops && !existing->sops) existing->sops = std::move(made.sops);
  }
}

bool Renderer::ApplyPatch(const Json& patch, bool json6902, const Json& target, const SourceRef& at,
                          const std::string& field, std::vector<Resource>* acc) {
  // The target: given, or (a strategic merge patch) the patch's own kind and name.
  std::string kind, name, ns, group, version, label_selector;
  if (target.is_object()) {
    for (const auto& [key, v] : target.items()) {
      static const std::set<std::string> known = {"group", "version",   "kind",
                                                  "name",  "namespace", "labelSelector"};
      if (known.count(key) == 0) {
        Error(at, ChildPath(field, "target." + key),
              "unsupported target field \"" + key + "\" (refused, not ignored)");
        return false;
      }
    }
    kind = Str(target, "kind");
    name = Str(target, "name");
    ns = Str(target, "namespace");
    group = Str(target, "group");
    version = Str(target, "version");
    label_selector = Str(target, "labelSelector");
  } else if (!json6902 && patch.is_object()) {
    kind = Str(patch, "kind");
    if (auto m = patch.find("metadata"); m != patch.end() && m->is_object()) {
      name = Str(*m, "name");
      ns = Str(*m, "namespace");
    }
  } else {
    Error(at, field, "Required value: a JSON 6902 patch needs a target");
    return false;
  }
  for (const auto& [what, pattern] :
       {std::pair<const char*, const std::string*>{"name", &name}, {"namespace", &ns}}) {
    if (!pattern->empty() && !PatternMatches(*pattern, "")) {
      Error(at, ChildPath(field, std::string("target.") + what),
            "Unsupported value: \"" + *pattern +
                "\": a target's regular expression may use only `.` and `.*` (refused, not "
                "guessed)");
      return false;
    }
  }
  std::map<std::string, std::string> selector;
  size_t start = 0;
  while (start < label_selector.size()) {
    size_t comma = label_selector.find(',', start);
    if (comma == std::string::npos) comma = label_selector.size();
    const std::string term = label_selector.substr(start, comma - start);
    start = comma + 1;
    const size_t eq = term.find('=');
    if (eq == std::string::npos || term.find('!') != std::string::npos) {
      Error(at, ChildPath(field, "target.labelSelector"),
            "Unsupported value: \"" + label_selector + "\": only key=value terms are supported");
      return false;
    }
    selector[term.substr(0, eq)] = term.substr(term[eq + 1] == '=' ? eq + 2 : eq + 1);
  }
  size_t matched = 0;
  for (auto it = acc->begin(); it != acc->end();) {
    Resource& r = *it;
    const std::string api = Str(r.obj, "apiVersion");
    const std::string r_group =
        api.find('/') == std::string::npos ? "" : api.substr(0, api.find('/'));
    const std::string r_version =
        api.substr(api.find('/') == std::string::npos ? 0 : api.find('/') + 1);
    bool name_match = name.empty();
    for (size_t n = 0; !name_match && n <= r.earlier_names.size(); ++n) {
      const std::string candidate = n < r.earlier_names.size() ? r.earlier_names[n] : Name(r);
      name_match = PatternMatches(name, candidate).value_or(false);
    }
    bool match = (kind.empty() || Kind(r) == kind) && name_match &&
                 (ns.empty() || PatternMatches(ns, Namespace(r)).value_or(false)) &&
                 (group.empty() || r_group == group) && (version.empty() || r_version == version);
    if (match && !selector.empty()) {
      const Json* meta = Meta(r);
      auto labels = meta != nullptr ? meta->find("labels") : Json::const_iterator();
      for (const auto& [lk, lv] : selector) {
        if (meta == nullptr || labels == meta->end() || !labels->is_object() ||
            Str(*labels, lk.c_str()) != lv) {
          match = false;
        }
      }
    }
    if (!match) {
      ++it;
      continue;
    }
    ++matched;
    if (json6902 && r.sops) {
      // test, copy and move read values: on a Secret opened from a SOPS file, a patch from
      // someone without the key could learn them or carry them where they are shown.
      Error(at, field,
            "a JSON 6902 patch cannot apply to " + Kind(r) + " \"" + Name(r) +
                "\": it was opened from a SOPS-encrypted file, and such a patch could read its "
                "values; change the encrypted file instead");
      return false;
    }
    if (json6902) {
      // One operation at a time, each result held to the limits of a file: `copy` can double
      // an object (or its depth) at every step.
      for (const Json& op : patch) {
        try {
          Json next = r.obj.patch(Json::array({op}));
          if (Status s = CheckJsonDepth(next, limits_); !s.ok()) {
            Error(at, field,
                  "JSON patch makes " + Kind(r) + " \"" + Name(r) + "\" too deep: " + s.message());
            return false;
          }
          if (CountNodes(next, limits_.max_nodes_per_file) > limits_.max_nodes_per_file) {
            Error(at, field,
                  "JSON patch makes " + Kind(r) + " \"" + Name(r) + "\" larger than a file may be");
            return false;
          }
          r.obj = std::move(next);
        } catch (const Json::exception& e) {
          Error(at, field,
                "JSON patch does not apply to " + Kind(r) + " \"" + Name(r) + "\": " + e.what());
          return false;
        }
      }
    } else {
      Json p = patch;
      p.erase("apiVersion");
      p.erase("kind");
      if (p.contains("metadata") && p["metadata"].is_object()) {
        p["metadata"].erase("name");
        p["metadata"].erase("namespace");
      }
      if (!StrategicMerge(r.obj, p)) {
        it = acc->erase(it);
        continue;
      }
    }
    ++it;
  }
  if (matched == 0) {
    Error(at, field,
          "the patch matches no object (kind \"" + kind + "\", name \"" + name +
              "\"): a patch that changes nothing is an error, as kustomize reports it");
    return false;
  }
  return true;
}

void Renderer::Patch(const std::string& dir, const std::string& file, const FieldPositions& pos,
                     const Json& k, bool json6902, std::vector<Resource>* acc) {
  // The patch's text, from `patch` or `path` (or, in patchesStrategicMerge, a string that is
  // either), parsed; JSON 6902 when it is a list. A file of patchesStrategicMerge may hold
  // several.
  auto load = [&](const Json& entry, const std::string& fp, std::vector<Json>* out) -> bool {
    std::string text, origin = Display(file);
    std::string path_text;
    if (entry.is_string()) {
      const std::string& e = entry.get_ref<const std::string&>();
      const bool one_line = e.find('\n') == std::string::npos;
      auto ends = [&](const char* ext) {
        const std::string x(ext);
        return e.size() > x.size() && e.compare(e.size() - x.size(), x.size(), x) == 0;
      };
      if (one_line && (ends(".yaml") || ends(".yml") || ends(".json"))) {
        path_text = e;
      } else {
        text = e;
      }
    } else if (entry.contains("patch") && entry["patch"].is_string()) {
      text = entry["patch"].get<std::string>();
    } else if (entry.contains("path") && entry["path"].is_string()) {
      path_text = entry["path"].get<std::string>();
    } else {
      Error(At(file, pos, fp), fp, "Required value: a patch needs `patch` or `path`");
      return false;
    }
    if (!path_text.empty()) {
      auto path = JoinPath(dir, path_text);
      if (!path || !InOrBelow(dir, *path)) {
        Error(At(file, pos, fp), fp,
              "patch file \"" + path_text +
                  "\" is not in or below the kustomization's folder (kustomize refuses it too)");
        return false;
      }
      auto data = Read(*path);
      if (!data.ok() || !*data) {
        Error(At(file, pos, fp), fp,
              data.ok() ? "patch file \"" + path_text + "\" not found" : data.status().message());
        return false;
      }
      text = std::move(**data);
      origin = Display(*path);
    }
    YamlParseResult parsed = ParseYamlDocuments(origin, text, limits_);
    if (!parsed.errors.empty()) {
      for (auto& e : parsed.errors) {
        const SourceRef at = At(file, pos, fp);
        e.message = "in the patch at " + at.file + ":" + std::to_string(at.line) + ": " + e.message;
        diags_.push_back(std::move(e));
      }
      return false;
    }
    if (parsed.documents.empty()) {
      Error(At(file, pos, fp), fp, "the patch is empty");
      return false;
    }
    for (const YamlDocument& d : parsed.documents) {
      if (HasSopsMetadata(d.root)) {
        Error(At(file, pos, fp), fp,
              "the patch is SOPS-encrypted: ballast opens SOPS-encrypted Secret resources, not "
              "patches (its ciphertext would become the values); list the encrypted Secret "
              "under resources");
        return false;
      }
    }
    for (auto& d : parsed.documents) out->push_back(std::move(d.root));
    return true;
  };
  auto run = [&](const char* field, bool force_json) {
    auto it = k.find(field);
    if (it == k.end() || it->is_null()) return;
    if (!it->is_array()) {
      Error(At(file, pos, field), field, "Invalid type: expected array");
      return;
    }
    for (size_t i = 0; i < it->size(); ++i) {
      const std::string fp = IndexPath(field, i);
      const Json& entry = (*it)[i];
      if (entry.is_object()) {
        for (const auto& [key, v] : entry.items()) {
          if (key != "patch" && key != "path" && key != "target" && key != "options") {
            Error(At(file, pos, ChildPath(fp, key)), ChildPath(fp, key),
                  "unknown field \"" + key + "\" of a patch");
          }
          if (key == "options" && v.is_object() && !v.empty()) {
            Error(At(file, pos, ChildPath(fp, key)), ChildPath(fp, key),
                  "patch options are not supported (refused, not ignored)");
          }
        }
      }
      std::vector<Json> patches;
      if (!load(entry, fp, &patches)) continue;
      const Json target = entry.is_object() ? entry.value("target", Json()) : Json();
      for (const Json& patch : patches) {
        ApplyPatch(patch, force_json || patch.is_array(), target, At(file, pos, fp), fp, acc);
      }
    }
  };
  if (json6902) {
    run("patchesJson6902", true);
  } else {
    run("patchesStrategicMerge", false);
    run("patches", false);
  }
}

}  // namespace

std::string KustomizeHash(const Json& object) {
  Json m = Json::object();
  const std::string kind = Str(object, "kind");
  m["kind"] = kind;
  m["name"] = "";
  m["data"] =
      object.contains("data") && object["data"].is_object() ? object["data"] : Json::object();
  if (kind == "ConfigMap") {
    if (object.contains("binaryData") && object["binaryData"].is_object() &&
        !object["binaryData"].empty()) {
      m["binaryData"] = object["binaryData"];
    }
  } else {
    m["type"] = Str(object, "type");
  }
  const std::string hex = Sha256Hex(GoJson(m));
  std::string out = hex.substr(0, 10);
  for (char& c : out) {
    switch (c) {
      case '0':
        c = 'g';
        break;
      case '1':
        c = 'h';
        break;
      case '3':
        c = 'k';
        break;
      case 'a':
        c = 'm';
        break;
      case 'e':
        c = 't';
        break;
      default:
        break;
    }
  }
  return out;
}

std::string FindKustomization(const std::string& dir, const KustomizeReader& read) {
  for (const char* name : kKustomizationNames) {
    auto r = read(dir.empty() ? name : dir + "/" + name);
    if (r.ok() && *r) return name;
  }
  return "";
}

ManifestSet RenderKustomization(const std::string& dir, const KustomizeReader& read,
                                const std::string& display_root, const ParseLimits& limits,
                                const KustomizeLimits& bounds) {
  Renderer renderer(read, display_root, limits, bounds);
  std::vector<Resource> acc;
  ManifestSet set;
  const SourceRef root{display_root.empty()
                           ? (dir.empty() ? "." : dir)
                           : (dir.empty() ? display_root : display_root + "/" + dir),
                       1, 1};
  try {
    renderer.Build(dir, &acc, false, root);
    renderer.ApplyHashes(&acc);
  } catch (const std::bad_alloc&) {
    Diagnostic d;
    d.where = root;
    d.message = "kustomization could not be rendered: out of memory";
    renderer.diagnostics().push_back(std::move(d));
    acc.clear();
  } catch (const Json::exception& e) {
    // Every access above checks types first; this is a last line, never a crash.
    Diagnostic d;
    d.where = root;
    d.message = std::string("kustomization could not be rendered: ") + e.what();
    renderer.diagnostics().push_back(std::move(d));
    acc.clear();
  }
  set.diagnostics = std::move(renderer.diagnostics());
  for (Resource& r : acc) {
    if (Status s = CheckJsonDepth(r.obj, limits); !s.ok()) {
      Diagnostic d;
      d.where = r.where;
      d.message = s.message();
      set.diagnostics.push_back(std::move(d));
      continue;
    }
    if (r.sops && (Str(r.obj, "kind") != "Secret" || Str(r.obj, "apiVersion") != "v1")) {
      Diagnostic d;
      d.where = r.where;
      d.field = "kind";
      d.message =
          "SOPS: only Secrets (v1) are opened from SOPS-encrypted files, and this one "
          "is no longer a Secret after the kustomization";
      set.diagnostics.push_back(std::move(d));
      continue;
    }
    Manifest m;
    m.source = r.where;
    m.sops = std::move(r.sops);
    Reporter reporter(r.positions.get(), r.where, &set.diagnostics, r.prefix);
    if (DecodeObject(r.obj, reporter, &m)) set.manifests.push_back(std::move(m));
  }
  std::vector<const Manifest*> pointers;
  for (const auto& m : set.manifests) pointers.push_back(&m);
  for (auto& d : CheckDuplicates(pointers)) set.diagnostics.push_back(std::move(d));
  return set;
}

}  // namespace ballast::model
