// Decoding JSON trees into typed objects with Kubernetes' defaults.

#include <algorithm>
#include <array>
#include <string_view>

#include "model/base64.h"
#include "model/decode_internal.h"

namespace ballast::model {

void Reporter::Add(Severity severity, const std::string& field, std::string message) {
  if (suppress_ && severity == Severity::kError) {
    for (const std::string& f : error_fields_) {
      if (field.rfind(f, 0) == 0 &&
          (field.size() == f.size() || field[f.size()] == '.' || field[f.size()] == '[')) {
        return;
      }
    }
  }
  if (severity == Severity::kError && !suppress_) error_fields_.push_back(field);
  Diagnostic d;
  d.severity = severity;
  d.where = document_;
  if (positions_ != nullptr) {
    std::string lookup = lookup_prefix_.empty() ? field
                         : field.empty()        ? lookup_prefix_
                                                : lookup_prefix_ + "." + field;
    auto [line, column] = positions_->Lookup(lookup);
    if (line > 0) {
      d.where.line = line;
      d.where.column = column;
    }
  }
  d.field = field;
  d.message = std::move(message);
  if (severity == Severity::kError) ++errors_;
  out_->push_back(std::move(d));
}

namespace {

const char* TypeName(const Json& j) {
  switch (j.type()) {
    case Json::value_t::null:
      return "null";
    case Json::value_t::object:
      return "object";
    case Json::value_t::array:
      return "array";
    case Json::value_t::string:
      return "string";
    case Json::value_t::boolean:
      return "boolean";
    case Json::value_t::number_integer:
    case Json::value_t::number_unsigned:
    case Json::value_t::number_float:
      return "number";
    default:
      return "value";
  }
}

std::string ScalarText(const Json& j) {
  if (j.is_string()) return j.get<std::string>();
  return j.dump();
}

// Field names Kubernetes defines at the levels ballast decodes. A key outside these lists is
// reported as an unknown field (a warning, as kubectl gives one), and kept all the same.
using Names = std::initializer_list<std::string_view>;
const Names kTopFields = {"apiVersion", "kind", "metadata", "spec", "status"};
const Names kMetaFields = {"annotations",
                           "creationTimestamp",
                           "deletionGracePeriodSeconds",
                           "deletionTimestamp",
                           "finalizers",
                           "generateName",
                           "generation",
                           "labels",
                           "managedFields",
                           "name",
                           "namespace",
                           "ownerReferences",
                           "resourceVersion",
                           "selfLink",
                           "uid"};
const Names kDeploymentSpecFields = {"minReadySeconds", "paused",   "progressDeadlineSeconds",
                                     "replicas",        "selector", "revisionHistoryLimit",
                                     "strategy",        "template"};
const Names kPodSpecFields = {"activeDeadlineSeconds",
                              "affinity",
                              "automountServiceAccountToken",
                              "containers",
                              "dnsConfig",
                              "dnsPolicy",
                              "enableServiceLinks",
                              "ephemeralContainers",
                              "hostAliases",
                              "hostIPC",
                              "hostNetwork",
                              "hostPID",
                              "hostUsers",
                              "hostname",
                              "imagePullSecrets",
                              "initContainers",
                              "nodeName",
                              "nodeSelector",
                              "os",
                              "overhead",
                              "preemptionPolicy",
                              "priority",
                              "priorityClassName",
                              "readinessGates",
                              "resourceClaims",
                              "restartPolicy",
                              "runtimeClassName",
                              "schedulerName",
                              "schedulingGates",
                              "securityContext",
                              "serviceAccount",
                              "serviceAccountName",
                              "setHostnameAsFQDN",
                              "shareProcessNamespace",
                              "subdomain",
                              "terminationGracePeriodSeconds",
                              "tolerations",
                              "topologySpreadConstraints",
                              "volumes"};
const Names kContainerFields = {"args",
                                "command",
                                "env",
                                "envFrom",
                                "image",
                                "imagePullPolicy",
                                "lifecycle",
                                "livenessProbe",
                                "name",
                                "ports",
                                "readinessProbe",
                                "resizePolicy",
                                "resources",
                                "restartPolicy",
                                "securityContext",
                                "startupProbe",
                                "stdin",
                                "stdinOnce",
                                "terminationMessagePath",
                                "terminationMessagePolicy",
                                "tty",
                                "volumeDevices",
                                "volumeMounts",
                                "workingDir"};
const Names kSecurityContextFields = {
    "allowPrivilegeEscalation", "appArmorProfile", "capabilities", "privileged", "procMount",
    "readOnlyRootFilesystem",   "runAsGroup",      "runAsNonRoot", "runAsUser",  "seLinuxOptions",
    "seccompProfile",           "windowsOptions"};
const Names kPodSecurityContextFields = {"appArmorProfile",
                                         "fsGroup",
                                         "fsGroupChangePolicy",
                                         "runAsGroup",
                                         "runAsNonRoot",
                                         "runAsUser",
                                         "seLinuxChangePolicy",
                                         "seLinuxOptions",
                                         "seccompProfile",
                                         "supplementalGroups",
                                         "supplementalGroupsPolicy",
                                         "sysctls",
                                         "windowsOptions"};
const Names kServiceSpecFields = {"allocateLoadBalancerNodePorts",
                                  "clusterIP",
                                  "clusterIPs",
                                  "externalIPs",
                                  "externalName",
                                  "externalTrafficPolicy",
                                  "healthCheckNodePort",
                                  "internalTrafficPolicy",
                                  "ipFamilies",
                                  "ipFamilyPolicy",
                                  "loadBalancerClass",
                                  "loadBalancerIP",
                                  "loadBalancerSourceRanges",
                                  "ports",
                                  "publishNotReadyAddresses",
                                  "selector",
                                  "sessionAffinity",
                                  "sessionAffinityConfig",
                                  "trafficDistribution",
                                  "type"};

// Walks one JSON object: typed readers consume known keys; Finish() keeps the rest in `extra`,
// lists them as ignored, and warns about names Kubernetes does not define at this level.
class ObjectReader {
 public:
  ObjectReader(const Json& j, std::string path, Reporter& r, std::vector<std::string>* ignored,
               Json* extra, const Names* known_names = nullptr)
      : j_(j),
        path_(std::move(path)),
        r_(r),
        ignored_(ignored),
        extra_(extra),
        known_names_(known_names) {
    ok_ = j.is_object();
    if (!ok_ && !j.is_null()) {
      r_.Error(path_, std::string("Invalid type: expected object, got ") + TypeName(j));
    }
  }

  bool ok() const { return ok_; }
  const std::string& path() const { return path_; }
  std::string Child(std::string_view key) const { return ChildPath(path_, key); }

  // The value at `key`, or nullptr when absent or null. Marks the key consumed.
  const Json* Take(std::string_view key) {
    if (!ok_) return nullptr;
    consumed_.push_back(key);
    auto it = j_.find(key);
    if (it == j_.end() || it->is_null()) return nullptr;
    return &*it;
  }

  bool String(std::string_view key, std::string* out) {
    const Json* v = Take(key);
    if (v == nullptr) return false;
    if (!v->is_string()) {
      TypeError(key, *v, "string");
      return false;
    }
    *out = v->get<std::string>();
    return true;
  }

  template <typename Int>
  bool Integer(std::string_view key, Int* out) {
    const Json* v = Take(key);
    if (v == nullptr) return false;
    if (!v->is_number_integer()) {
      TypeError(key, *v, "integer");
      return false;
    }
    int64_t x = v->get<int64_t>();
    if (x < int64_t(std::numeric_limits<Int>::min()) ||
        x > int64_t(std::numeric_limits<Int>::max())) {
      r_.Error(Child(key), "Invalid value: " + std::to_string(x) + ": out of range");
      return false;
    }
    *out = static_cast<Int>(x);
    return true;
  }

  bool Bool(std::string_view key, bool* out) {
    const Json* v = Take(key);
    if (v == nullptr) return false;
    if (!v->is_boolean()) {
      TypeError(key, *v, "boolean");
      return false;
    }
    *out = v->get<bool>();
    return true;
  }

  bool IntOrStr(std::string_view key, IntOrString* out) {
    const Json* v = Take(key);
    if (v == nullptr) return false;
    if (v->is_number_integer()) {
      *out = IntOrString(v->get<int64_t>());
    } else if (v->is_string()) {
      *out = IntOrString(v->get<std::string>());
    } else {
      TypeError(key, *v, "integer or string");
      return false;
    }
    return true;
  }

  bool StringList(std::string_view key, std::vector<std::string>* out) {
    const Json* v = Take(key);
    if (v == nullptr) return false;
    if (!v->is_array()) {
      TypeError(key, *v, "array of strings");
      return false;
    }
    out->clear();
    for (size_t i = 0; i < v->size(); ++i) {
      const Json& e = (*v)[i];
      if (!e.is_string()) {
        r_.Error(IndexPath(Child(key), i),
                 std::string("Invalid type: expected string, got ") + TypeName(e) + Hint(e));
        // Kept as text so that the list keeps its length: validation then does not report a
        // count ("must be specified single value") for what is a type error of one element.
        out->push_back(ScalarText(e));
        continue;
      }
      out->push_back(e.get<std::string>());
    }
    return true;
  }

  bool StrMap(std::string_view key, StringMap* out) {
    const Json* v = Take(key);
    if (v == nullptr) return false;
    if (!v->is_object()) {
      TypeError(key, *v, "object of strings");
      return false;
    }
    out->clear();
    for (const auto& [k, e] : v->items()) {
      if (e.is_null()) {
        (*out)[k] = "";
        continue;
      }
      if (!e.is_string()) {
        r_.Error(ChildPath(Child(key), k),
                 std::string("Invalid type: expected string, got ") + TypeName(e) + Hint(e));
        continue;
      }
      (*out)[k] = e.get<std::string>();
    }
    return true;
  }

  // For nested objects and arrays: calls f(value, path) when present.
  template <typename F>
  bool Nested(std::string_view key, F&& f) {
    const Json* v = Take(key);
    if (v == nullptr) return false;
    f(*v, Child(key));
    return true;
  }

  template <typename F>
  void Array(std::string_view key, F&& f) {
    const Json* v = Take(key);
    if (v == nullptr) return;
    if (!v->is_array()) {
      TypeError(key, *v, "array");
      return;
    }
    for (size_t i = 0; i < v->size(); ++i) f((*v)[i], IndexPath(Child(key), i));
  }

  void Finish() {
    if (!ok_) return;
    for (const auto& [k, v] : j_.items()) {
      if (std::find(consumed_.begin(), consumed_.end(), k) != consumed_.end()) continue;
      if (v.is_null()) continue;
      if (extra_ != nullptr) (*extra_)[k] = v;
      std::string path = Child(k);
      if (known_names_ != nullptr &&
          std::find(known_names_->begin(), known_names_->end(), k) == known_names_->end()) {
        r_.Warning(path, "unknown field \"" + k + "\" (kept, but Kubernetes would not know it)");
      }
      if (ignored_ != nullptr) ignored_->push_back(path);
    }
  }

  // Finish for objects whose every field changes what ballast does (node affinity): a key not
  // read is an error naming `what`, never silently dropped, since a misspelt one would change
  // where pods run.
  void FinishStrict(const char* what) {
    if (!ok_) return;
    for (const auto& [k, v] : j_.items()) {
      if (std::find(consumed_.begin(), consumed_.end(), k) != consumed_.end()) continue;
      if (v.is_null()) continue;
      r_.Error(Child(k), "unknown field \"" + k + "\" in " + what);
    }
  }

  void TypeError(std::string_view key, const Json& v, const char* expected) {
    r_.Error(Child(key),
             std::string("Invalid type: expected ") + expected + ", got " + TypeName(v) + Hint(v));
  }

  // From here on, type errors do not quote the value (a Secret's data, an env value): the
  // message says what was expected, never what a secret holds.
  void Quiet() { quiet_ = true; }

  std::string Hint(const Json& v) const {
    if (quiet_) return v.is_boolean() || v.is_number() ? " (quote it)" : "";
    return QuoteHint(v);
  }

  static std::string QuoteHint(const Json& v) {
    if (v.is_boolean() || v.is_number()) {
      return " (quote it: \"" + ScalarText(v) + "\")";
    }
    return "";
  }

 private:
  const Json& j_;
  std::string path_;
  Reporter& r_;
  std::vector<std::string>* ignored_;
  Json* extra_;
  const Names* known_names_;
  std::vector<std::string_view> consumed_;
  bool ok_ = false;
  bool quiet_ = false;
};

void DecodeMeta(const Json& j, const std::string& path, Reporter& r, ObjectMeta* out,
                std::vector<std::string>* ignored) {
  // Server-populated fields are dropped silently: they are not desired state.
  ObjectReader m(j, path, r, nullptr, &out->extra, &kMetaFields);
  m.String("name", &out->name);
  m.String("namespace", &out->namespace_);
  if (out->namespace_.empty()) out->namespace_ = "default";
  m.StrMap("labels", &out->labels);
  m.StrMap("annotations", &out->annotations);
  for (const char* k :
       {"uid", "resourceVersion", "generation", "creationTimestamp", "managedFields", "selfLink"}) {
    m.Take(k);
  }
  m.Finish();
  if (ignored != nullptr) {
    for (const auto& [k, v] : out->extra.items()) ignored->push_back(ChildPath(path, k));
  }
}

void DecodeSelector(const Json& j, const std::string& path, Reporter& r, LabelSelector* out) {
  ObjectReader s(j, path, r, nullptr, nullptr);
  s.StrMap("matchLabels", &out->match_labels);
  s.Array("matchExpressions", [&](const Json& e, const std::string& p) {
    LabelSelectorRequirement req;
    ObjectReader er(e, p, r, nullptr, nullptr);
    er.String("key", &req.key);
    er.String("operator", &req.op);
    er.StringList("values", &req.values);
    er.Finish();
    out->match_expressions.push_back(std::move(req));
  });
  s.Finish();
  // Unknown keys in a selector are an error: silently ignoring one would select too much.
  if (s.ok()) {
    for (const auto& [k, v] : j.items()) {
      if (k != "matchLabels" && k != "matchExpressions") {
        r.Error(ChildPath(path, k), "unknown field \"" + k + "\" in label selector");
      }
    }
  }
}

void DecodeProbe(const Json& j, const std::string& path, Reporter& r, Probe* out,
                 std::vector<std::string>* ignored) {
  ObjectReader p(j, path, r, ignored, &out->extra);
  p.Nested("httpGet", [&](const Json& v, const std::string& hp) {
    HttpGetAction h;
    ObjectReader hr(v, hp, r, ignored, nullptr);
    hr.String("path", &h.path);
    if (h.path.empty()) h.path = "/";
    if (!hr.IntOrStr("port", &h.port)) r.Error(hr.Child("port"), "Required value");
    hr.String("host", &h.host);
    hr.String("scheme", &h.scheme);
    if (h.scheme.empty()) h.scheme = "HTTP";
    hr.Array("httpHeaders", [&](const Json& hv, const std::string& hhp) {
      HttpHeader header;
      ObjectReader hh(hv, hhp, r, ignored, nullptr);
      hh.String("name", &header.name);
      hh.String("value", &header.value);
      hh.Finish();
      h.http_headers.push_back(std::move(header));
    });
    hr.Finish();
    out->http_get = std::move(h);
  });
  p.Nested("tcpSocket", [&](const Json& v, const std::string& tp) {
    TcpSocketAction t;
    ObjectReader tr(v, tp, r, ignored, nullptr);
    if (!tr.IntOrStr("port", &t.port)) r.Error(tr.Child("port"), "Required value");
    tr.String("host", &t.host);
    tr.Finish();
    out->tcp_socket = std::move(t);
  });
  p.Nested("exec", [&](const Json& v, const std::string& ep) {
    ExecAction e;
    ObjectReader er(v, ep, r, ignored, nullptr);
    er.StringList("command", &e.command);
    er.Finish();
    out->exec = std::move(e);
  });
  p.Integer("initialDelaySeconds", &out->initial_delay_seconds);
  p.Integer("timeoutSeconds", &out->timeout_seconds);
  p.Integer("periodSeconds", &out->period_seconds);
  p.Integer("successThreshold", &out->success_threshold);
  p.Integer("failureThreshold", &out->failure_threshold);
  int64_t grace = 0;
  if (p.Integer("terminationGracePeriodSeconds", &grace)) {
    out->termination_grace_period_seconds = grace;
  }
  p.Finish();
}

// The users of a pod's or a container's securityContext (runAsUser, runAsGroup,
// runAsNonRoot), which the two share.
template <typename Context>
void DecodeUsers(ObjectReader& sr, Context* out) {
  int64_t id = 0;
  if (sr.Integer("runAsUser", &id)) out->run_as_user = id;
  if (sr.Integer("runAsGroup", &id)) out->run_as_group = id;
  bool flag = false;
  if (sr.Bool("runAsNonRoot", &flag)) out->run_as_non_root = flag;
}

void DecodeSecurityContext(const Json& j, const std::string& path, Reporter& r,
                           SecurityContext* out, std::vector<std::string>* ignored) {
  ObjectReader sr(j, path, r, ignored, &out->extra, &kSecurityContextFields);
  DecodeUsers(sr, out);
  sr.Nested("capabilities", [&](const Json& v, const std::string& cp) {
    Capabilities caps;
    ObjectReader cr(v, cp, r, nullptr, nullptr);
    cr.StringList("add", &caps.add);
    cr.StringList("drop", &caps.drop);
    // A misspelt key would leave capabilities the author meant to drop.
    cr.FinishStrict("capabilities");
    out->capabilities = std::move(caps);
  });
  bool flag = false;
  if (sr.Bool("allowPrivilegeEscalation", &flag)) out->allow_privilege_escalation = flag;
  if (sr.Bool("readOnlyRootFilesystem", &flag)) out->read_only_root_filesystem = flag;
  if (sr.Bool("privileged", &flag)) out->privileged = flag;
  sr.Finish();
}

void DecodeContainer(const Json& j, const std::string& path, Reporter& r, Container* c,
                     std::vector<std::string>* ignored) {
  ObjectReader cr(j, path, r, ignored, &c->extra, &kContainerFields);
  cr.String("name", &c->name);
  cr.String("image", &c->image);
  cr.StringList("command", &c->command);
  cr.StringList("args", &c->args);
  cr.String("workingDir", &c->working_dir);
  cr.Array("env", [&](const Json& e, const std::string& ep) {
    EnvVar var;
    ObjectReader er(e, ep, r, ignored, nullptr);
    er.Quiet();  // a value may be a secret
    er.String("name", &var.name);
    er.String("value", &var.value);
    // configMapKeyRef and secretKeyRef are read (model/config_refs.h); validation checks it.
    if (const Json* vf = er.Take("valueFrom")) var.value_from = *vf;
    er.Finish();
    c->env.push_back(std::move(var));
  });
  // Kept as written (model/config_refs.h reads them); not ignored fields.
  if (const Json* ef = cr.Take("envFrom")) c->extra["envFrom"] = *ef;
  if (const Json* vm = cr.Take("volumeMounts")) c->extra["volumeMounts"] = *vm;
  cr.Array("ports", [&](const Json& e, const std::string& pp) {
    ContainerPort port;
    ObjectReader pr(e, pp, r, ignored, &port.extra);
    pr.String("name", &port.name);
    pr.Integer("containerPort", &port.container_port);
    pr.String("protocol", &port.protocol);
    if (port.protocol.empty()) port.protocol = "TCP";
    pr.Integer("hostPort", &port.host_port);
    pr.Finish();
    c->ports.push_back(std::move(port));
  });
  cr.Nested("resources", [&](const Json& v, const std::string& rp) {
    ObjectReader rr(v, rp, r, ignored, nullptr);
    auto list = [&](const char* key, ResourceList* out) {
      rr.Nested(key, [&](const Json& lv, const std::string& lp) {
        if (!lv.is_object()) {
          r.Error(lp, std::string("Invalid type: expected object, got ") + TypeName(lv));
          return;
        }
        for (const auto& [name, q] : lv.items()) {
          std::string qp = ChildPath(lp, name);
          if (!q.is_string() && !q.is_number()) {
            r.Error(qp, std::string("Invalid type: expected quantity, got ") + TypeName(q));
            continue;
          }
          auto parsed = Quantity::Parse(ScalarText(q));
          if (!parsed.ok()) {
            r.Error(qp, "Invalid value: \"" + ScalarText(q) + "\": " + parsed.status().message());
            continue;
          }
          (*out)[name] = *parsed;
        }
      });
    };
    list("requests", &c->resources.requests);
    list("limits", &c->resources.limits);
    rr.Finish();
  });
  auto probe = [&](const char* key, std::optional<Probe>* out) {
    cr.Nested(key, [&](const Json& v, const std::string& pp) {
      Probe p;
      DecodeProbe(v, pp, r, &p, ignored);
      *out = std::move(p);
    });
  };
  probe("readinessProbe", &c->readiness_probe);
  probe("livenessProbe", &c->liveness_probe);
  probe("startupProbe", &c->startup_probe);
  cr.Nested("securityContext", [&](const Json& v, const std::string& sp) {
    SecurityContext sc;
    DecodeSecurityContext(v, sp, r, &sc, ignored);
    c->security_context = std::move(sc);
  });
  cr.Finish();
}

void DecodeAffinityTerm(const Json& j, const std::string& path, Reporter& r, PodAffinityTerm* out) {
  ObjectReader tr(j, path, r, nullptr, nullptr);
  tr.Nested("labelSelector", [&](const Json& v, const std::string& p) {
    DecodeSelector(v, p, r, &out->label_selector);
  });
  tr.StringList("namespaces", &out->namespaces);
  tr.String("topologyKey", &out->topology_key);
  tr.Finish();
}

void DecodeNodeSelectorTerm(const Json& j, const std::string& path, Reporter& r,
                            NodeSelectorTerm* out) {
  ObjectReader tr(j, path, r, nullptr, nullptr);
  auto requirements = [&](const char* key, std::vector<NodeSelectorRequirement>* list) {
    tr.Array(key, [&](const Json& e, const std::string& p) {
      NodeSelectorRequirement req;
      ObjectReader er(e, p, r, nullptr, nullptr);
      er.String("key", &req.key);
      er.String("operator", &req.op);
      er.StringList("values", &req.values);
      er.FinishStrict("node selector requirement");
      list->push_back(std::move(req));
    });
  };
  requirements("matchExpressions", &out->match_expressions);
  requirements("matchFields", &out->match_fields);
  tr.FinishStrict("node selector term");
}

void DecodeNodeAffinity(const Json& j, const std::string& path, Reporter& r, NodeAffinity* out) {
  ObjectReader nr(j, path, r, nullptr, nullptr);
  nr.Nested("requiredDuringSchedulingIgnoredDuringExecution",
            [&](const Json& v, const std::string& rp) {
              NodeSelector required;
              ObjectReader sr(v, rp, r, nullptr, nullptr);
              sr.Array("nodeSelectorTerms", [&](const Json& tv, const std::string& tp) {
                NodeSelectorTerm term;
                DecodeNodeSelectorTerm(tv, tp, r, &term);
                required.node_selector_terms.push_back(std::move(term));
              });
              sr.FinishStrict("node selector");
              out->required = std::move(required);
            });
  nr.Array("preferredDuringSchedulingIgnoredDuringExecution",
           [&](const Json& v, const std::string& pp) {
             PreferredSchedulingTerm preferred;
             ObjectReader pr(v, pp, r, nullptr, nullptr);
             pr.Integer("weight", &preferred.weight);
             pr.Nested("preference", [&](const Json& tv, const std::string& tp) {
               DecodeNodeSelectorTerm(tv, tp, r, &preferred.preference);
             });
             pr.FinishStrict("preferred scheduling term");
             out->preferred.push_back(std::move(preferred));
           });
  nr.FinishStrict("node affinity");
}

void DecodePodSpec(const Json& j, const std::string& path, Reporter& r, PodSpec* spec,
                   std::vector<std::string>* ignored) {
  ObjectReader s(j, path, r, ignored, &spec->extra, &kPodSpecFields);
  s.Array("containers", [&](const Json& e, const std::string& p) {
    Container c;
    DecodeContainer(e, p, r, &c, ignored);
    spec->containers.push_back(std::move(c));
  });
  s.String("restartPolicy", &spec->restart_policy);
  if (spec->restart_policy.empty()) spec->restart_policy = "Always";
  s.StrMap("nodeSelector", &spec->node_selector);
  s.Array("tolerations", [&](const Json& e, const std::string& p) {
    Toleration t;
    ObjectReader tr(e, p, r, ignored, nullptr);
    tr.String("key", &t.key);
    tr.String("operator", &t.op);
    if (t.op.empty()) t.op = "Equal";
    tr.String("value", &t.value);
    tr.String("effect", &t.effect);
    int64_t secs = 0;
    if (tr.Integer("tolerationSeconds", &secs)) t.toleration_seconds = secs;
    tr.Finish();
    spec->tolerations.push_back(std::move(t));
  });
  s.Nested("affinity", [&](const Json& v, const std::string& ap) {
    Affinity a;
    ObjectReader ar(v, ap, r, ignored, &a.extra);
    ar.Nested("nodeAffinity", [&](const Json& nv, const std::string& np) {
      NodeAffinity node;
      DecodeNodeAffinity(nv, np, r, &node);
      a.node_affinity = std::move(node);
    });
    ar.Nested("podAntiAffinity", [&](const Json& pv, const std::string& pp) {
      PodAntiAffinity anti;
      ObjectReader pr(pv, pp, r, ignored, nullptr);
      pr.Array("requiredDuringSchedulingIgnoredDuringExecution",
               [&](const Json& tv, const std::string& tp) {
                 PodAffinityTerm term;
                 DecodeAffinityTerm(tv, tp, r, &term);
                 anti.required.push_back(std::move(term));
               });
      pr.Array("preferredDuringSchedulingIgnoredDuringExecution",
               [&](const Json& tv, const std::string& tp) {
                 WeightedPodAffinityTerm w;
                 ObjectReader wr(tv, tp, r, ignored, nullptr);
                 wr.Integer("weight", &w.weight);
                 wr.Nested("podAffinityTerm", [&](const Json& at, const std::string& atp) {
                   DecodeAffinityTerm(at, atp, r, &w.term);
                 });
                 wr.Finish();
                 anti.preferred.push_back(std::move(w));
               });
      pr.Finish();
      a.pod_anti_affinity = std::move(anti);
    });
    ar.Finish();
    spec->affinity = std::move(a);
  });
  s.Integer("terminationGracePeriodSeconds", &spec->termination_grace_period_seconds);
  // Kept as written (model/config_refs.h reads them): configMap and secret volumes are mounted,
  // every other type of volume is kept and listed as ignored.
  if (const Json* volumes = s.Take("volumes")) {
    spec->extra["volumes"] = *volumes;
    if (ignored != nullptr && volumes->is_array()) {
      const std::string vp = ChildPath(path, "volumes");
      for (size_t i = 0; i < volumes->size(); ++i) {
        const Json& v = (*volumes)[i];
        if (!v.is_object()) continue;
        for (const auto& [k, value] : v.items()) {
          if (k == "name" || k == "configMap" || k == "secret" || value.is_null()) continue;
          ignored->push_back(ChildPath(IndexPath(vp, i), k));
        }
      }
    }
  }
  s.Nested("securityContext", [&](const Json& v, const std::string& sp) {
    ObjectReader sr(v, sp, r, ignored, &spec->security_context.extra, &kPodSecurityContextFields);
    DecodeUsers(sr, &spec->security_context);
    sr.Finish();
  });
  s.Finish();
}

void DecodeDeployment(const Json& doc, Reporter& r, Deployment* d,
                      std::vector<std::string>* ignored) {
  ObjectReader top(doc, "", r, ignored, &d->extra, &kTopFields);
  top.Take("apiVersion");
  top.Take("kind");
  top.Take("status");  // observed state, never desired
  if (!top.Nested("metadata", [&](const Json& v, const std::string& p) {
        DecodeMeta(v, p, r, &d->metadata, ignored);
      })) {
    r.Error("metadata", "Required value");
  }
  if (!top.Nested("spec", [&](const Json& v, const std::string& p) {
        DeploymentSpec& spec = d->spec;
        ObjectReader s(v, p, r, ignored, &spec.extra, &kDeploymentSpecFields);
        s.Integer("replicas", &spec.replicas);
        if (!s.Nested("selector", [&](const Json& sv, const std::string& sp) {
              DecodeSelector(sv, sp, r, &spec.selector);
            })) {
          r.Error(s.Child("selector"), "Required value");
        }
        if (!s.Nested("template", [&](const Json& tv, const std::string& tp) {
              DecodePodTemplateSpec(tv, tp, r, &spec.template_, ignored);
            })) {
          r.Error(s.Child("template"), "Required value");
        }
        s.Nested("strategy", [&](const Json& sv, const std::string& sp) {
          ObjectReader st(sv, sp, r, ignored, nullptr);
          st.String("type", &spec.strategy.type);
          if (spec.strategy.type.empty()) spec.strategy.type = "RollingUpdate";
          bool has_rolling = st.Nested("rollingUpdate", [&](const Json& rv, const std::string& rp) {
            ObjectReader ru(rv, rp, r, ignored, nullptr);
            ru.IntOrStr("maxSurge", &spec.strategy.max_surge);
            ru.IntOrStr("maxUnavailable", &spec.strategy.max_unavailable);
            ru.Finish();
          });
          if (has_rolling && spec.strategy.type == "Recreate") {
            r.Error(ChildPath(sp, "rollingUpdate"),
                    "Forbidden: may not be specified when strategy `type` is 'Recreate'");
          }
          st.Finish();
        });
        s.Integer("minReadySeconds", &spec.min_ready_seconds);
        s.Integer("progressDeadlineSeconds", &spec.progress_deadline_seconds);
        s.Integer("revisionHistoryLimit", &spec.revision_history_limit);
        s.Bool("paused", &spec.paused);
        s.Finish();
      })) {
    r.Error("spec", "Required value");
  }
  top.Finish();
}

void DecodeService(const Json& doc, Reporter& r, Service* svc, std::vector<std::string>* ignored) {
  ObjectReader top(doc, "", r, ignored, &svc->extra, &kTopFields);
  top.Take("apiVersion");
  top.Take("kind");
  top.Take("status");
  if (!top.Nested("metadata", [&](const Json& v, const std::string& p) {
        DecodeMeta(v, p, r, &svc->metadata, ignored);
      })) {
    r.Error("metadata", "Required value");
  }
  top.Nested("spec", [&](const Json& v, const std::string& p) {
    ServiceSpec& spec = svc->spec;
    ObjectReader s(v, p, r, ignored, &spec.extra, &kServiceSpecFields);
    s.String("type", &spec.type);
    if (spec.type.empty()) spec.type = "ClusterIP";
    s.StrMap("selector", &spec.selector);
    s.Array("ports", [&](const Json& e, const std::string& pp) {
      ServicePort port;
      ObjectReader pr(e, pp, r, ignored, &port.extra);
      pr.String("name", &port.name);
      pr.String("protocol", &port.protocol);
      if (port.protocol.empty()) port.protocol = "TCP";
      pr.Integer("port", &port.port);
      if (!pr.IntOrStr("targetPort", &port.target_port) ||
          (port.target_port.is_int() && port.target_port.int_value() == 0)) {
        port.target_port = IntOrString(int64_t{port.port});  // Kubernetes' default
      }
      pr.Integer("nodePort", &port.node_port);
      pr.Finish();
      spec.ports.push_back(std::move(port));
    });
    s.Finish();
  });
  top.Finish();
}

// The values of a `data`/`binaryData` map that holds base64 (Secret data, ConfigMap
// binaryData), decoded. A value that is not base64 is an error naming its key, as the API
// server reports it.
void DecodeBase64Map(const Json& v, const std::string& path, Reporter& r,
                     std::map<std::string, std::string>* out) {
  if (!v.is_object()) {
    r.Error(path, std::string("Invalid type: expected object of strings, got ") + TypeName(v));
    return;
  }
  for (const auto& [k, e] : v.items()) {
    const std::string kp = ChildPath(path, k);
    if (e.is_null()) {
      (*out)[k] = "";
      continue;
    }
    if (!e.is_string()) {
      r.Error(kp, std::string("Invalid type: expected base64 string, got ") + TypeName(e));
      continue;
    }
    size_t offset = 0;
    auto bytes = Base64Decode(e.get_ref<const std::string&>(), &offset);
    if (!bytes) {
      r.Error(kp, "Invalid value: illegal base64 data at input byte " + std::to_string(offset) +
                      " (values under " + path.substr(path.rfind('.') + 1) +
                      " are base64; put plain text under stringData)");
      continue;
    }
    (*out)[k] = std::move(*bytes);
  }
}

void DecodeConfigMap(const Json& doc, Reporter& r, ConfigMap* cm,
                     std::vector<std::string>* ignored) {
  static const Names kConfigMapFields = {"apiVersion", "binaryData", "data",
                                         "immutable",  "kind",       "metadata"};
  ObjectReader top(doc, "", r, ignored, &cm->extra, &kConfigMapFields);
  top.Take("apiVersion");
  top.Take("kind");
  if (!top.Nested("metadata", [&](const Json& v, const std::string& p) {
        DecodeMeta(v, p, r, &cm->metadata, ignored);
      })) {
    r.Error("metadata", "Required value");
  }
  top.StrMap("data", &cm->data);
  top.Nested("binaryData", [&](const Json& v, const std::string& p) {
    DecodeBase64Map(v, p, r, &cm->binary_data);
  });
  bool immutable = false;
  if (top.Bool("immutable", &immutable)) cm->immutable = immutable;
  top.Finish();
}

void DecodeSecret(const Json& doc, Reporter& r, Secret* secret, std::vector<std::string>* ignored) {
  static const Names kSecretFields = {"apiVersion", "data",       "immutable", "kind",
                                      "metadata",   "stringData", "type"};
  ObjectReader top(doc, "", r, ignored, &secret->extra, &kSecretFields);
  top.Quiet();
  top.Take("apiVersion");
  top.Take("kind");
  if (!top.Nested("metadata", [&](const Json& v, const std::string& p) {
        DecodeMeta(v, p, r, &secret->metadata, ignored);
      })) {
    r.Error("metadata", "Required value");
  }
  top.String("type", &secret->type);
  if (secret->type.empty()) secret->type = "Opaque";
  top.Nested("data",
             [&](const Json& v, const std::string& p) { DecodeBase64Map(v, p, r, &secret->data); });
  // stringData is write-only in the API: merged into data, its entries winning.
  StringMap string_data;
  top.StrMap("stringData", &string_data);
  for (auto& [k, v] : string_data) secret->data[k] = std::move(v);
  bool immutable = false;
  if (top.Bool("immutable", &immutable)) secret->immutable = immutable;
  top.Finish();
}

void DecodeNamespace(const Json& doc, Reporter& r, Namespace* ns,
                     std::vector<std::string>* ignored) {
  static const Names kNamespaceFields = {"apiVersion", "kind", "metadata", "spec", "status"};
  ObjectReader top(doc, "", r, ignored, &ns->extra, &kNamespaceFields);
  top.Take("apiVersion");
  top.Take("kind");
  top.Take("status");
  if (!top.Nested("metadata", [&](const Json& v, const std::string& p) {
        DecodeMeta(v, p, r, &ns->metadata, ignored);
      })) {
    r.Error("metadata", "Required value");
  }
  // Cluster-scoped: a metadata.namespace is ignored, as the API server ignores it.
  ns->metadata.namespace_.clear();
  top.Finish();
}

}  // namespace

bool DecodePodTemplateSpec(const Json& j, const std::string& path, Reporter& r,
                           PodTemplateSpec* out, std::vector<std::string>* ignored) {
  size_t errors_before = r.errors();
  ObjectReader t(j, path, r, ignored, nullptr);
  t.Nested("metadata", [&](const Json& v, const std::string& mp) {
    ObjectReader m(v, mp, r, ignored, &out->metadata_extra, &kMetaFields);
    m.StrMap("labels", &out->labels);
    m.StrMap("annotations", &out->annotations);
    m.Take("creationTimestamp");  // kubectl writes `creationTimestamp: null` here
    m.Finish();
  });
  if (!t.Nested("spec", [&](const Json& v, const std::string& sp) {
        DecodePodSpec(v, sp, r, &out->spec, ignored);
      })) {
    r.Error(t.Child("spec"), "Required value");
  }
  t.Finish();
  return r.errors() == errors_before;
}

bool DecodeObject(const Json& doc, Reporter& r, Manifest* out) {
  if (!doc.is_object()) {
    r.Error("", std::string("a manifest must be a mapping, got ") + TypeName(doc));
    return false;
  }
  std::string api_version, kind;
  if (auto it = doc.find("apiVersion"); it != doc.end() && it->is_string()) {
    api_version = it->get<std::string>();
  }
  if (auto it = doc.find("kind"); it != doc.end() && it->is_string()) kind = it->get<std::string>();
  if (kind.empty()) {
    r.Error("kind", "Object 'Kind' is missing");
    return false;
  }
  if (api_version.empty()) {
    r.Error("apiVersion", "Object 'apiVersion' is missing");
    return false;
  }
  out->api_version = api_version;
  size_t errors_before = r.errors();
  if (kind == "Deployment" && api_version == "apps/v1") {
    Deployment d;
    DecodeDeployment(doc, r, &d, &out->ignored_fields);
    r.SuppressUnderReportedFields();
    ValidateDeployment(d, r);
    out->value = std::move(d);
  } else if (kind == "Service" && api_version == "v1") {
    Service s;
    DecodeService(doc, r, &s, &out->ignored_fields);
    r.SuppressUnderReportedFields();
    ValidateService(s, r);
    out->value = std::move(s);
  } else if (kind == "ConfigMap" && api_version == "v1") {
    ConfigMap cm;
    DecodeConfigMap(doc, r, &cm, &out->ignored_fields);
    r.SuppressUnderReportedFields();
    ValidateConfigMap(cm, r);
    out->value = std::move(cm);
  } else if (kind == "Secret" && api_version == "v1") {
    Secret secret;
    DecodeSecret(doc, r, &secret, &out->ignored_fields);
    r.SuppressUnderReportedFields();
    ValidateSecret(secret, r);
    out->value = std::move(secret);
  } else if (kind == "Namespace" && api_version == "v1") {
    Namespace ns;
    DecodeNamespace(doc, r, &ns, &out->ignored_fields);
    r.SuppressUnderReportedFields();
    ValidateNamespace(ns, r);
    out->value = std::move(ns);
  } else if ((kind == "Deployment" &&
              (api_version == "extensions/v1beta1" || api_version == "apps/v1beta1" ||
               api_version == "apps/v1beta2"))) {
    r.Error("apiVersion", "no matches for kind \"Deployment\" in version \"" + api_version +
                              "\" (removed in Kubernetes 1.16; use apps/v1)");
    return false;
  } else {
    UnsupportedObject u;
    u.api_version = api_version;
    u.kind = kind;
    u.raw = doc;
    if (auto it = doc.find("metadata"); it != doc.end()) {
      // Best effort: unsupported kinds are listed, never refused, so their metadata only
      // needs a name to identify them.
      std::vector<Diagnostic> ignored_diags;
      Reporter quiet(nullptr, r.document(), &ignored_diags);
      DecodeMeta(*it, "metadata", quiet, &u.metadata, nullptr);
    }
    out->value = std::move(u);
  }
  return r.errors() == errors_before;
}

}  // namespace ballast::model
