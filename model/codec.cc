#include "model/codec.h"

#include <algorithm>
#include <cstdint>
#include <vector>

#include "model/base64.h"
#include "model/decode_internal.h"
#include "model/manifest.h"
#include "model/yaml_tree.h"

namespace ballast::model {
namespace {

Json IntOrStringJson(const IntOrString& v) {
  if (v.is_int()) return v.int_value();
  return v.str_value();
}

void MergeExtra(Json& j, const Json& extra) {
  if (!extra.is_object()) return;
  for (const auto& [k, v] : extra.items()) {
    if (!j.contains(k)) j[k] = v;
  }
}

Json ResourceListJson(const ResourceList& list) {
  Json j = Json::object();
  for (const auto& [k, q] : list) j[k] = q.ToString();
  return j;
}

// matchExpressions of a label selector or a node selector term (LabelSelectorRequirement,
// NodeSelectorRequirement); matchFields too.
template <typename Requirement>
Json RequirementsJson(const std::vector<Requirement>& requirements) {
  Json list = Json::array();
  for (const auto& e : requirements) {
    Json x = {{"key", e.key}, {"operator", e.op}};
    if (!e.values.empty()) x["values"] = e.values;
    list.push_back(std::move(x));
  }
  return list;
}

Json SelectorJson(const LabelSelector& s) {
  Json j = Json::object();
  if (!s.match_labels.empty()) j["matchLabels"] = s.match_labels;
  if (!s.match_expressions.empty()) j["matchExpressions"] = RequirementsJson(s.match_expressions);
  return j;
}

Json NodeSelectorTermJson(const NodeSelectorTerm& t) {
  Json j = Json::object();
  if (!t.match_expressions.empty()) j["matchExpressions"] = RequirementsJson(t.match_expressions);
  if (!t.match_fields.empty()) j["matchFields"] = RequirementsJson(t.match_fields);
  return j;
}

Json NodeAffinityJson(const NodeAffinity& a) {
  Json j = Json::object();
  if (a.required) {
    Json terms = Json::array();
    for (const auto& t : a.required->node_selector_terms) terms.push_back(NodeSelectorTermJson(t));
    j["requiredDuringSchedulingIgnoredDuringExecution"] = {{"nodeSelectorTerms", std::move(terms)}};
  }
  if (!a.preferred.empty()) {
    Json pref = Json::array();
    for (const auto& p : a.preferred) {
      pref.push_back({{"weight", p.weight}, {"preference", NodeSelectorTermJson(p.preference)}});
    }
    j["preferredDuringSchedulingIgnoredDuringExecution"] = std::move(pref);
  }
  return j;
}

Json MetaJson(const ObjectMeta& m) {
  Json j = {{"name", m.name}};
  if (!m.namespace_.empty()) j["namespace"] = m.namespace_;  // "": cluster-scoped
  if (!m.labels.empty()) j["labels"] = m.labels;
  if (!m.annotations.empty()) j["annotations"] = m.annotations;
  MergeExtra(j, m.extra);
  return j;
}

Json ProbeJson(const Probe& p) {
  Json j = Json::object();
  if (p.http_get) {
    Json h = {{"path", p.http_get->path},
              {"port", IntOrStringJson(p.http_get->port)},
              {"scheme", p.http_get->scheme}};
    if (!p.http_get->host.empty()) h["host"] = p.http_get->host;
    if (!p.http_get->http_headers.empty()) {
      Json headers = Json::array();
      for (const auto& hh : p.http_get->http_headers) {
        headers.push_back({{"name", hh.name}, {"value", hh.value}});
      }
      h["httpHeaders"] = std::move(headers);
    }
    j["httpGet"] = std::move(h);
  }
  if (p.tcp_socket) {
    Json t = {{"port", IntOrStringJson(p.tcp_socket->port)}};
    if (!p.tcp_socket->host.empty()) t["host"] = p.tcp_socket->host;
    j["tcpSocket"] = std::move(t);
  }
  if (p.exec) j["exec"] = {{"command", p.exec->command}};
  if (p.initial_delay_seconds != 0) j["initialDelaySeconds"] = p.initial_delay_seconds;
  j["timeoutSeconds"] = p.timeout_seconds;
  j["periodSeconds"] = p.period_seconds;
  j["successThreshold"] = p.success_threshold;
  j["failureThreshold"] = p.failure_threshold;
  if (p.termination_grace_period_seconds) {
    j["terminationGracePeriodSeconds"] = *p.termination_grace_period_seconds;
  }
  MergeExtra(j, p.extra);
  return j;
}

// The fields a pod's and a container's securityContext share, as given (unset ones absent).
template <typename Context>
void UsersJson(const Context& sc, Json* j) {
  if (sc.run_as_user) (*j)["runAsUser"] = *sc.run_as_user;
  if (sc.run_as_group) (*j)["runAsGroup"] = *sc.run_as_group;
  if (sc.run_as_non_root) (*j)["runAsNonRoot"] = *sc.run_as_non_root;
}

Json SecurityContextJson(const SecurityContext& sc) {
  Json j = Json::object();
  UsersJson(sc, &j);
  if (sc.capabilities) {
    Json caps = Json::object();
    if (!sc.capabilities->add.empty()) caps["add"] = sc.capabilities->add;
    if (!sc.capabilities->drop.empty()) caps["drop"] = sc.capabilities->drop;
    j["capabilities"] = std::move(caps);
  }
  if (sc.allow_privilege_escalation) j["allowPrivilegeEscalation"] = *sc.allow_privilege_escalation;
  if (sc.read_only_root_filesystem) j["readOnlyRootFilesystem"] = *sc.read_only_root_filesystem;
  if (sc.privileged) j["privileged"] = *sc.privileged;
  MergeExtra(j, sc.extra);
  return j;
}

Json ContainerJson(const Container& c) {
  Json j = {{"name", c.name}};
  if (!c.image.empty()) j["image"] = c.image;
  if (!c.command.empty()) j["command"] = c.command;
  if (!c.args.empty()) j["args"] = c.args;
  if (!c.working_dir.empty()) j["workingDir"] = c.working_dir;
  if (!c.env.empty()) {
    Json env = Json::array();
    for (const auto& e : c.env) {
      Json x = {{"name", e.name}};
      if (!e.value.empty()) x["value"] = e.value;
      if (!e.value_from.is_null()) x["valueFrom"] = e.value_from;
      env.push_back(std::move(x));
    }
    j["env"] = std::move(env);
  }
  if (!c.ports.empty()) {
    Json ports = Json::array();
    for (const auto& p : c.ports) {
      Json x = {{"containerPort", p.container_port}, {"protocol", p.protocol}};
      if (!p.name.empty()) x["name"] = p.name;
      if (p.host_port != 0) x["hostPort"] = p.host_port;
      MergeExtra(x, p.extra);
      ports.push_back(std::move(x));
    }
    j["ports"] = std::move(ports);
  }
  Json resources = Json::object();
  if (!c.resources.requests.empty()) resources["requests"] = ResourceListJson(c.resources.requests);
  if (!c.resources.limits.empty()) resources["limits"] = ResourceListJson(c.resources.limits);
  j["resources"] = std::move(resources);
  if (c.readiness_probe) j["readinessProbe"] = ProbeJson(*c.readiness_probe);
  if (c.liveness_probe) j["livenessProbe"] = ProbeJson(*c.liveness_probe);
  if (c.startup_probe) j["startupProbe"] = ProbeJson(*c.startup_probe);
  if (c.security_context) j["securityContext"] = SecurityContextJson(*c.security_context);
  MergeExtra(j, c.extra);
  return j;
}

Json AffinityTermJson(const PodAffinityTerm& t) {
  Json j = {{"labelSelector", SelectorJson(t.label_selector)}, {"topologyKey", t.topology_key}};
  if (!t.namespaces.empty()) j["namespaces"] = t.namespaces;
  return j;
}

Json PodSpecJson(const PodSpec& s) {
  Json containers = Json::array();
  for (const auto& c : s.containers) containers.push_back(ContainerJson(c));
  Json j = {{"containers", std::move(containers)},
            {"restartPolicy", s.restart_policy},
            {"terminationGracePeriodSeconds", s.termination_grace_period_seconds}};
  if (!s.node_selector.empty()) j["nodeSelector"] = s.node_selector;
  if (!s.tolerations.empty()) {
    Json tolerations = Json::array();
    for (const auto& t : s.tolerations) {
      Json x = {{"operator", t.op}};
      if (!t.key.empty()) x["key"] = t.key;
      if (!t.value.empty()) x["value"] = t.value;
      if (!t.effect.empty()) x["effect"] = t.effect;
      if (t.toleration_seconds) x["tolerationSeconds"] = *t.toleration_seconds;
      tolerations.push_back(std::move(x));
    }
    j["tolerations"] = std::move(tolerations);
  }
  if (s.affinity) {
    Json a = Json::object();
    if (s.affinity->node_affinity) a["nodeAffinity"] = NodeAffinityJson(*s.affinity->node_affinity);
    if (s.affinity->pod_anti_affinity) {
      const auto& anti = *s.affinity->pod_anti_affinity;
      Json pa = Json::object();
      if (!anti.required.empty()) {
        Json req = Json::array();
        for (const auto& t : anti.required) req.push_back(AffinityTermJson(t));
        pa["requiredDuringSchedulingIgnoredDuringExecution"] = std::move(req);
      }
      if (!anti.preferred.empty()) {
        Json pref = Json::array();
        for (const auto& w : anti.preferred) {
          pref.push_back({{"weight", w.weight}, {"podAffinityTerm", AffinityTermJson(w.term)}});
        }
        pa["preferredDuringSchedulingIgnoredDuringExecution"] = std::move(pref);
      }
      a["podAntiAffinity"] = std::move(pa);
    }
    MergeExtra(a, s.affinity->extra);
    j["affinity"] = std::move(a);
  }
  Json sc = Json::object();
  UsersJson(s.security_context, &sc);
  MergeExtra(sc, s.security_context.extra);
  j["securityContext"] = std::move(sc);
  MergeExtra(j, s.extra);
  return j;
}

Json TemplateJson(const PodTemplateSpec& t) {
  Json meta = Json::object();
  if (!t.labels.empty()) meta["labels"] = t.labels;
  if (!t.annotations.empty()) meta["annotations"] = t.annotations;
  MergeExtra(meta, t.metadata_extra);
  return {{"metadata", std::move(meta)}, {"spec", PodSpecJson(t.spec)}};
}

Json DeploymentJson(const Deployment& d) {
  const DeploymentSpec& s = d.spec;
  Json strategy = {{"type", s.strategy.type}};
  if (s.strategy.type == "RollingUpdate") {
    strategy["rollingUpdate"] = {{"maxSurge", IntOrStringJson(s.strategy.max_surge)},
                                 {"maxUnavailable", IntOrStringJson(s.strategy.max_unavailable)}};
  }
  Json spec = {{"replicas", s.replicas},
               {"selector", SelectorJson(s.selector)},
               {"template", TemplateJson(s.template_)},
               {"strategy", std::move(strategy)},
               {"revisionHistoryLimit", s.revision_history_limit},
               {"progressDeadlineSeconds", s.progress_deadline_seconds}};
  if (s.min_ready_seconds != 0) spec["minReadySeconds"] = s.min_ready_seconds;
  if (s.paused) spec["paused"] = true;
  MergeExtra(spec, s.extra);
  Json j = {{"apiVersion", "apps/v1"},
            {"kind", "Deployment"},
            {"metadata", MetaJson(d.metadata)},
            {"spec", std::move(spec)}};
  MergeExtra(j, d.extra);
  return j;
}

Json ServiceJson(const Service& svc) {
  const ServiceSpec& s = svc.spec;
  Json ports = Json::array();
  for (const auto& p : s.ports) {
    Json x = {
        {"port", p.port}, {"protocol", p.protocol}, {"targetPort", IntOrStringJson(p.target_port)}};
    if (!p.name.empty()) x["name"] = p.name;
    if (p.node_port != 0) x["nodePort"] = p.node_port;
    MergeExtra(x, p.extra);
    ports.push_back(std::move(x));
  }
  Json spec = {{"type", s.type}, {"ports", std::move(ports)}};
  if (!s.selector.empty()) spec["selector"] = s.selector;
  MergeExtra(spec, s.extra);
  Json j = {{"apiVersion", "v1"},
            {"kind", "Service"},
            {"metadata", MetaJson(svc.metadata)},
            {"spec", std::move(spec)}};
  MergeExtra(j, svc.extra);
  return j;
}

Json ConfigMapJson(const ConfigMap& cm) {
  Json j = {{"apiVersion", "v1"}, {"kind", "ConfigMap"}, {"metadata", MetaJson(cm.metadata)}};
  if (!cm.data.empty()) j["data"] = cm.data;
  if (!cm.binary_data.empty()) {
    Json b = Json::object();
    for (const auto& [k, v] : cm.binary_data) b[k] = Base64Encode(v);
    j["binaryData"] = std::move(b);
  }
  if (cm.immutable) j["immutable"] = *cm.immutable;
  MergeExtra(j, cm.extra);
  return j;
}

Json NamespaceJson(const Namespace& ns) {
  Json j = {{"apiVersion", "v1"}, {"kind", "Namespace"}, {"metadata", MetaJson(ns.metadata)}};
  MergeExtra(j, ns.extra);
  return j;
}

Json SecretJson(const Secret& s) {
  Json j = {{"apiVersion", "v1"},
            {"kind", "Secret"},
            {"metadata", MetaJson(s.metadata)},
            {"type", s.type}};
  if (!s.data.empty()) {
    Json d = Json::object();
    for (const auto& [k, v] : s.data) d[k] = Base64Encode(v);
    j["data"] = std::move(d);
  }
  if (s.immutable) j["immutable"] = *s.immutable;
  MergeExtra(j, s.extra);
  return j;
}

// Sorts an array of objects by a key derived from each element.
template <typename KeyFn>
void SortArray(Json* arr, KeyFn key) {
  if (arr == nullptr || !arr->is_array()) return;
  std::stable_sort(arr->begin(), arr->end(),
                   [&](const Json& a, const Json& b) { return key(a) < key(b); });
}

Json* Find(Json& j, std::initializer_list<const char*> path) {
  Json* cur = &j;
  for (const char* k : path) {
    if (!cur->is_object()) return nullptr;
    auto it = cur->find(k);
    if (it == cur->end()) return nullptr;
    cur = &*it;
  }
  return cur;
}

std::string NameOf(const Json& j) { return j.value("name", std::string()); }
std::string DumpOf(const Json& j) { return j.dump(); }

void CanonicalizePodSpec(Json* spec) {
  if (spec == nullptr) return;
  Json* containers = Find(*spec, {"containers"});
  if (containers != nullptr && containers->is_array()) {
    for (Json& c : *containers) {
      SortArray(Find(c, {"env"}), NameOf);
      SortArray(Find(c, {"ports"}), [](const Json& p) {
        return std::make_pair(p.value("containerPort", 0), p.value("protocol", std::string()));
      });
    }
  }
  SortArray(containers, NameOf);
  SortArray(Find(*spec, {"initContainers"}), NameOf);
  SortArray(Find(*spec, {"volumes"}), NameOf);
  SortArray(Find(*spec, {"tolerations"}), DumpOf);
}

void CanonicalizeTemplate(Json* t) {
  if (t == nullptr) return;
  CanonicalizePodSpec(Find(*t, {"spec"}));
}

uint64_t Fnv1a64(std::string_view s) {
  uint64_t h = 0xcbf29ce484222325ULL;
  for (unsigned char c : s) {
    h ^= c;
    h *= 0x100000001b3ULL;
  }
  return h;
}

// YAML emission.

bool NeedsQuotes(const std::string& s) {
  if (s.empty()) return true;
  if (!PlainScalarIsString(s)) return true;
  static const std::string_view kIndicators = "-?:,[]{}#&*!|>'\"%@`";
  if (kIndicators.find(s.front()) != std::string_view::npos) {
    // "-foo" and "key" starting with '-' followed by a non-space are plain-safe, but keep it
    // simple and predictable: quote.
    return true;
  }
  if (s.front() == ' ' || s.back() == ' ') return true;
  if (s.find(": ") != std::string::npos || s.find(" #") != std::string::npos) return true;
  if (s.back() == ':') return true;
  for (unsigned char c : s) {
    if (c < 0x20 || c == 0x7f) return true;
  }
  return false;
}

std::string Scalar(const Json& v) {
  if (v.is_string()) {
    const std::string& s = v.get_ref<const std::string&>();
    return NeedsQuotes(s) ? Json(s).dump() : s;
  }
  if (v.is_null()) return "null";
  return v.dump();
}

int KeyRank(const std::string& k) {
  static const char* kOrder[] = {"apiVersion", "kind", "metadata", "name", "namespace", "spec"};
  for (int i = 0; i < 6; ++i) {
    if (k == kOrder[i]) return i;
  }
  return 100;
}

std::vector<std::string> OrderedKeys(const Json& obj) {
  std::vector<std::string> keys;
  for (const auto& [k, v] : obj.items()) keys.push_back(k);
  std::stable_sort(keys.begin(), keys.end(), [](const std::string& a, const std::string& b) {
    int ra = KeyRank(a), rb = KeyRank(b);
    return ra != rb ? ra < rb : a < b;
  });
  return keys;
}

bool IsInline(const Json& v) { return !v.is_structured() || v.empty(); }

std::string InlineValue(const Json& v) {
  if (v.is_object()) return "{}";
  if (v.is_array()) return "[]";
  return Scalar(v);
}

void EmitMap(const Json& obj, int indent, std::string* out);
void EmitSeq(const Json& arr, int indent, std::string* out);

void EmitMap(const Json& obj, int indent, std::string* out) {
  for (const std::string& k : OrderedKeys(obj)) {
    const Json& v = obj[k];
    const std::string key = NeedsQuotes(k) ? Json(k).dump() : k;
    out->append(indent, ' ');
    // YAML allows an implicit key of at most 1024 characters: a longer one is written as an
    // explicit key ("? key" then ": value").
    const bool explicit_key = key.size() > 1000;
    if (explicit_key) {
      out->append("? ").append(key).push_back('\n');
      out->append(indent, ' ');
    } else {
      out->append(key);
    }
    out->push_back(':');
    if (IsInline(v)) {
      out->push_back(' ');
      out->append(InlineValue(v));
      out->push_back('\n');
    } else if (v.is_object()) {
      out->push_back('\n');
      EmitMap(v, indent + 2, out);
    } else {
      out->push_back('\n');
      EmitSeq(v, explicit_key ? indent + 2 : indent, out);
    }
  }
}

void EmitSeq(const Json& arr, int indent, std::string* out) {
  for (const Json& item : arr) {
    if (IsInline(item)) {
      out->append(indent, ' ');
      out->append("- ");
      out->append(InlineValue(item));
      out->push_back('\n');
    } else if (item.is_object()) {
      std::string body;
      EmitMap(item, indent + 2, &body);
      // The first key goes on the dash line.
      out->append(indent, ' ');
      out->append("- ");
      out->append(body.substr(indent + 2));
    } else {
      out->append(indent, ' ');
      out->append("-\n");
      EmitSeq(item, indent + 2, out);
    }
  }
}

}  // namespace

Json ToJson(const Manifest& manifest) {
  if (const Deployment* d = manifest.deployment()) return DeploymentJson(*d);
  if (const Service* s = manifest.service()) return ServiceJson(*s);
  if (const ConfigMap* cm = manifest.config_map()) return ConfigMapJson(*cm);
  if (const Secret* secret = manifest.secret()) return SecretJson(*secret);
  if (const Namespace* ns = manifest.namespace_object()) return NamespaceJson(*ns);
  return std::get<UnsupportedObject>(manifest.value).raw;
}

Json CanonicalJson(const Manifest& manifest) {
  Json j = ToJson(manifest);
  if (manifest.deployment() != nullptr) {
    CanonicalizeTemplate(Find(j, {"spec", "template"}));
    SortArray(Find(j, {"spec", "selector", "matchExpressions"}), DumpOf);
  } else if (manifest.service() != nullptr) {
    SortArray(Find(j, {"spec", "ports"}), [](const Json& p) {
      return std::make_pair(p.value("port", 0), p.value("protocol", std::string()));
    });
  }
  return j;
}

std::string ToYaml(const Json& value) {
  std::string out;
  if (value.is_object() && !value.empty()) {
    EmitMap(value, 0, &out);
  } else if (value.is_array() && !value.empty()) {
    EmitSeq(value, 0, &out);
  } else {
    out = InlineValue(value) + "\n";
  }
  return out;
}

std::string ToYaml(const Manifest& manifest) { return ToYaml(ToJson(manifest)); }

std::string PodTemplateHash(const PodTemplateSpec& template_spec) {
  Json t = TemplateJson(template_spec);
  CanonicalizeTemplate(&t);
  uint64_t h = Fnv1a64(t.dump());
  static constexpr char kAlphabet[] = "bcdfghjklmnpqrstvwxz2456789";
  std::string out;
  for (int i = 0; i < 10; ++i) {
    out.push_back(kAlphabet[h % 27]);
    h /= 27;
  }
  return out;
}

Json PodTemplateToJson(const PodTemplateSpec& template_spec) { return TemplateJson(template_spec); }

Result<PodTemplateSpec> PodTemplateFromJson(const Json& j) {
  if (Status s = CheckJsonDepth(j); !s.ok()) return s;
  std::vector<Diagnostic> diags;
  Reporter r(nullptr, SourceRef{"pod template", 0, 0}, &diags);
  PodTemplateSpec t;
  std::vector<std::string> ignored;
  if (!DecodePodTemplateSpec(j, "", r, &t, &ignored)) {
    for (const auto& d : diags) {
      if (d.is_error()) return InvalidArgument(d.field + ": " + d.message);
    }
  }
  return t;
}

}  // namespace ballast::model
