// Validation as the Kubernetes API server does it, with its messages, on decoded objects.

#include <algorithm>
#include <map>
#include <set>

#include "model/config_refs.h"
#include "model/decode_internal.h"

namespace ballast::model {
namespace {

bool IsLowerAlnum(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); }
bool IsAlnum(char c) { return IsLowerAlnum(c) || (c >= 'A' && c <= 'Z'); }

bool IsDns1123Label(std::string_view s) {
  if (s.empty() || s.size() > 63) return false;
  if (!IsLowerAlnum(s.front()) || !IsLowerAlnum(s.back())) return false;
  return std::all_of(s.begin(), s.end(), [](char c) { return IsLowerAlnum(c) || c == '-'; });
}

bool IsDns1123Subdomain(std::string_view s) {
  if (s.empty() || s.size() > 253) return false;
  size_t start = 0;
  while (true) {
    size_t dot = s.find('.', start);
    std::string_view part = s.substr(start, dot == std::string_view::npos ? s.npos : dot - start);
    if (part.empty() || !IsLowerAlnum(part.front()) || !IsLowerAlnum(part.back())) return false;
    for (char c : part) {
      if (!IsLowerAlnum(c) && c != '-') return false;
    }
    if (dot == std::string_view::npos) return true;
    start = dot + 1;
  }
}

bool IsDns1035Label(std::string_view s) {
  return IsDns1123Label(s) && s.front() >= 'a' && s.front() <= 'z';
}

// A label value or the name part of a qualified name: ([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]
bool IsLabelName(std::string_view s, bool allow_empty) {
  if (s.empty()) return allow_empty;
  if (s.size() > 63) return false;
  if (!IsAlnum(s.front()) || !IsAlnum(s.back())) return false;
  return std::all_of(s.begin(), s.end(),
                     [](char c) { return IsAlnum(c) || c == '-' || c == '_' || c == '.'; });
}

bool IsQualifiedName(std::string_view s) {
  size_t slash = s.find('/');
  if (slash == std::string_view::npos) return IsLabelName(s, false);
  return IsDns1123Subdomain(s.substr(0, slash)) && IsLabelName(s.substr(slash + 1), false);
}

bool IsIanaSvcName(std::string_view s) {
  if (s.empty() || s.size() > 15) return false;
  if (!IsLowerAlnum(s.front()) || !IsLowerAlnum(s.back())) return false;
  if (s.find("--") != std::string_view::npos) return false;
  bool letter = false;
  for (char c : s) {
    if (!IsLowerAlnum(c) && c != '-') return false;
    letter |= (c >= 'a' && c <= 'z');
  }
  return letter;
}

bool IsEnvVarName(std::string_view s) {
  if (s.empty() || (s.front() >= '0' && s.front() <= '9')) return false;
  return std::all_of(s.begin(), s.end(),
                     [](char c) { return IsAlnum(c) || c == '-' || c == '_' || c == '.'; });
}

// A nested field below `parent` by its dotted name ("httpGet.port").
std::string Sub(const std::string& parent, const char* dotted) {
  return parent.empty() ? dotted : parent + "." + dotted;
}

// Built with append: `"\"" + std::string(s)` trips GCC 12's -Wrestrict false positive (GCC bug
// 105651) once inlined into some callers.
std::string Quote(std::string_view s) { return std::string("\"").append(s).append("\""); }

const char kDns1123SubdomainMsg[] =
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or "
    "'.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used "
    "for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";
const char kDns1123LabelMsg[] =
    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and "
    "must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex "
    "used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')";
const char kDns1035LabelMsg[] =
    "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an "
    "alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or "
    "'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')";
const char kLabelValueMsg[] =
    "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or "
    "'.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value', "
    " or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')";
const char kQualifiedNameMsg[] =
    "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end "
    "with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used "
    "for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]') with an optional DNS "
    "subdomain prefix and '/' (e.g. 'example.com/MyName')";
const char kIanaSvcNameMsg[] =
    "must be no more than 15 characters, contain only lowercase alphanumeric characters or '-', "
    "contain at least one letter, not start or end with '-' and not contain '--'";
const char kEnvNameMsg[] =
    "a valid environment variable name must consist of alphabetic characters, digits, '_', '-', "
    "or '.', and must not start with a digit (e.g. 'my.env-name',  or 'MY_ENV.NAME',  or "
    "'MyEnvName1', regex used for validation is '[-._a-zA-Z][-._a-zA-Z0-9]*')";

const char kConfigKeyMsg[] =
    "a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. "
    "'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')";

// A ConfigMap or Secret key: [-._a-zA-Z0-9]+, at most 253 characters, not "." or "..", not
// starting with ".." (the API server's IsConfigMapKey).
std::string ConfigKeyProblem(std::string_view k) {
  if (k.empty()) return "Required value";
  if (k.size() > 253) return "Invalid value: " + Quote(k) + ": must be no more than 253 characters";
  if (!std::all_of(k.begin(), k.end(),
                   [](char c) { return IsAlnum(c) || c == '-' || c == '_' || c == '.'; })) {
    return "Invalid value: " + Quote(k) + ": " + kConfigKeyMsg;
  }
  if (k == ".") return "Invalid value: " + Quote(k) + ": must not be '.'";
  if (k == "..") return "Invalid value: " + Quote(k) + ": must not be '..'";
  if (k.substr(0, 2) == "..") return "Invalid value: " + Quote(k) + ": must not start with '..'";
  return "";
}

// The most bytes one ConfigMap or Secret may hold (the API server's
// MaxSecretSize / RuntimeObjectSize for ConfigMaps).
constexpr size_t kMaxConfigBytes = 1024 * 1024;

void ValidateLabels(const StringMap& labels, const std::string& path, Reporter& r) {
  for (const auto& [k, v] : labels) {
    std::string p = ChildPath(path, k);
    if (!IsQualifiedName(k)) r.Error(p, "Invalid value: " + Quote(k) + ": " + kQualifiedNameMsg);
    if (!IsLabelName(v, true)) r.Error(p, "Invalid value: " + Quote(v) + ": " + kLabelValueMsg);
  }
}

void ValidateMeta(const ObjectMeta& m, bool dns1035_name, Reporter& r) {
  if (m.name.empty()) {
    r.Error("metadata.name", "Required value: name or generateName is required");
  } else if (dns1035_name ? !IsDns1035Label(m.name) : !IsDns1123Subdomain(m.name)) {
    r.Error("metadata.name", "Invalid value: " + Quote(m.name) + ": " +
                                 (dns1035_name ? kDns1035LabelMsg : kDns1123SubdomainMsg));
  }
  if (!IsDns1123Label(m.namespace_)) {
    r.Error("metadata.namespace",
            "Invalid value: " + Quote(m.namespace_) + ": " + kDns1123LabelMsg);
  }
  ValidateLabels(m.labels, "metadata.labels", r);
  size_t annotation_bytes = 0;
  for (const auto& [k, v] : m.annotations) {
    annotation_bytes += k.size() + v.size();
    if (!IsQualifiedName(k)) {
      r.Error(ChildPath("metadata.annotations", k),
              "Invalid value: " + Quote(k) + ": " + kQualifiedNameMsg);
    }
  }
  if (annotation_bytes > 256 * 1024) {
    r.Error("metadata.annotations", "Too long: must have at most 262144 bytes");
  }
}

// The values of In, NotIn, Exists and DoesNotExist, which label and node selectors share.
// Returns false, reporting nothing, when `op` is none of them.
bool ValidateSetOperatorValues(const std::string& op, const std::vector<std::string>& values,
                               const std::string& values_path, Reporter& r) {
  if (op == "In" || op == "NotIn") {
    if (values.empty()) {
      r.Error(values_path, "Required value: must be specified when `operator` is 'In' or 'NotIn'");
    }
    return true;
  }
  if (op == "Exists" || op == "DoesNotExist") {
    if (!values.empty()) {
      r.Error(values_path,
              "Forbidden: may not be specified when `operator` is 'Exists' or 'DoesNotExist'");
    }
    return true;
  }
  return false;
}

void ValidateSelector(const LabelSelector& s, const std::string& path, Reporter& r) {
  ValidateLabels(s.match_labels, ChildPath(path, "matchLabels"), r);
  for (size_t i = 0; i < s.match_expressions.size(); ++i) {
    const auto& e = s.match_expressions[i];
    std::string p = IndexPath(ChildPath(path, "matchExpressions"), i);
    if (!IsQualifiedName(e.key)) {
      r.Error(ChildPath(p, "key"), "Invalid value: " + Quote(e.key) + ": " + kQualifiedNameMsg);
    }
    if (!ValidateSetOperatorValues(e.op, e.values, ChildPath(p, "values"), r)) {
      r.Error(ChildPath(p, "operator"), "Unsupported value: " + Quote(e.op) +
                                            ": supported values: \"DoesNotExist\", \"Exists\", "
                                            "\"In\", \"NotIn\"");
    }
  }
}

// Kubernetes' ValidateNodeSelectorTerm: matchExpressions on node labels, matchFields on
// metadata.name.
void ValidateNodeSelectorTerm(const NodeSelectorTerm& term, const std::string& path, Reporter& r) {
  for (size_t i = 0; i < term.match_expressions.size(); ++i) {
    const NodeSelectorRequirement& e = term.match_expressions[i];
    std::string p = IndexPath(ChildPath(path, "matchExpressions"), i);
    std::string vp = ChildPath(p, "values");
    if (e.op == "Gt" || e.op == "Lt") {
      if (e.values.size() != 1) {
        r.Error(vp,
                "Required value: must be specified single value when `operator` is 'Lt' or 'Gt'");
      } else if (!ParseNodeSelectorInteger(e.values[0])) {
        r.Error(IndexPath(vp, 0), "Invalid value: " + Quote(e.values[0]) +
                                      ": must be an integer when `operator` is 'Lt' or 'Gt'");
      }
    } else if (!ValidateSetOperatorValues(e.op, e.values, vp, r)) {
      r.Error(ChildPath(p, "operator"),
              "Invalid value: " + Quote(e.op) + ": not a valid selector operator");
    }
    if (e.key.empty()) {
      r.Error(ChildPath(p, "key"), "Invalid value: \"\": name part must be non-empty");
    } else if (!IsQualifiedName(e.key)) {
      r.Error(ChildPath(p, "key"), "Invalid value: " + Quote(e.key) + ": " + kQualifiedNameMsg);
    }
  }
  for (size_t i = 0; i < term.match_fields.size(); ++i) {
    const NodeSelectorRequirement& f = term.match_fields[i];
    std::string p = IndexPath(ChildPath(path, "matchFields"), i);
    if (f.op != "In" && f.op != "NotIn") {
      r.Error(ChildPath(p, "operator"),
              "Invalid value: " + Quote(f.op) + ": not a valid selector operator");
    } else if (f.values.size() != 1) {
      r.Error(ChildPath(p, "values"),
              "Required value: must be only one value when `operator` is 'In' or 'NotIn' for "
              "node field selector");
    }
    if (f.key != "metadata.name") {
      r.Error(ChildPath(p, "key"),
              "Invalid value: " + Quote(f.key) + ": not a valid field selector key");
    }
  }
}

void ValidateWeight(int32_t weight, const std::string& path, Reporter& r) {
  if (weight < 1 || weight > 100) {
    r.Error(path, "Invalid value: " + std::to_string(weight) + ": must be in the range 1-100");
  }
}

void ValidateNodeAffinity(const NodeAffinity& a, const std::string& path, Reporter& r) {
  if (a.required) {
    std::string tp = Sub(path, "requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms");
    if (a.required->node_selector_terms.empty()) {
      r.Error(tp, "Required value: must have at least one node selector term");
    }
    for (size_t i = 0; i < a.required->node_selector_terms.size(); ++i) {
      ValidateNodeSelectorTerm(a.required->node_selector_terms[i], IndexPath(tp, i), r);
    }
  }
  for (size_t i = 0; i < a.preferred.size(); ++i) {
    std::string tp =
        IndexPath(ChildPath(path, "preferredDuringSchedulingIgnoredDuringExecution"), i);
    ValidateWeight(a.preferred[i].weight, ChildPath(tp, "weight"), r);
    ValidateNodeSelectorTerm(a.preferred[i].preference, ChildPath(tp, "preference"), r);
  }
}

bool IsStandardResource(const std::string& name) {
  return name == "cpu" || name == "memory" || name == "ephemeral-storage" || name == "pods" ||
         name.rfind("hugepages-", 0) == 0 || name.find('/') != std::string::npos;
}

void ValidatePortRef(const IntOrString& port, const std::string& path,
                     const std::set<std::string>& port_names, Reporter& r) {
  if (port.is_int()) {
    if (port.int_value() < 1 || port.int_value() > 65535) {
      r.Error(path,
              "Invalid value: " + port.ToString() + ": must be between 1 and 65535, inclusive");
    }
    return;
  }
  if (!IsIanaSvcName(port.str_value())) {
    r.Error(path, "Invalid value: " + Quote(port.str_value()) + ": " + kIanaSvcNameMsg);
  } else if (!port_names.count(port.str_value())) {
    r.Warning(path, "port name " + Quote(port.str_value()) +
                        " is not declared in the container's ports; the probe will fail");
  }
}

void ValidateProbe(const Probe& p, const std::string& path, bool success_must_be_one,
                   const std::set<std::string>& port_names, Reporter& r) {
  int handlers = int(p.http_get.has_value()) + int(p.tcp_socket.has_value()) +
                 int(p.exec.has_value()) + int(p.extra.contains("grpc"));
  if (handlers == 0) r.Error(path, "Required value: must specify a handler type");
  if (handlers > 1) r.Error(path, "Forbidden: may not specify more than 1 handler type");
  if (p.http_get) {
    ValidatePortRef(p.http_get->port, Sub(path, "httpGet.port"), port_names, r);
    if (p.http_get->scheme != "HTTP" && p.http_get->scheme != "HTTPS") {
      r.Error(Sub(path, "httpGet.scheme"), "Unsupported value: " + Quote(p.http_get->scheme) +
                                               ": supported values: \"HTTP\", \"HTTPS\"");
    }
  }
  if (p.tcp_socket) {
    ValidatePortRef(p.tcp_socket->port, Sub(path, "tcpSocket.port"), port_names, r);
  }
  if (p.exec && p.exec->command.empty()) {
    r.Error(Sub(path, "exec.command"), "Required value");
  }
  auto at_least = [&](int32_t v, int32_t min, const char* field) {
    if (v < min) {
      r.Error(ChildPath(path, field), "Invalid value: " + std::to_string(v) +
                                          ": must be greater than or equal to " +
                                          std::to_string(min));
    }
  };
  at_least(p.initial_delay_seconds, 0, "initialDelaySeconds");
  at_least(p.timeout_seconds, 1, "timeoutSeconds");
  at_least(p.period_seconds, 1, "periodSeconds");
  at_least(p.success_threshold, 1, "successThreshold");
  at_least(p.failure_threshold, 1, "failureThreshold");
  if (success_must_be_one && p.success_threshold != 1) {
    r.Error(ChildPath(path, "successThreshold"),
            "Invalid value: " + std::to_string(p.success_threshold) + ": must be 1");
  }
}

void ValidateIds(const std::optional<int64_t>& user, const std::optional<int64_t>& group,
                 const std::string& sc_path, Reporter& r) {
  for (const auto& [id, field] : {std::pair{user, "runAsUser"}, std::pair{group, "runAsGroup"}}) {
    if (id && (*id < 0 || *id > 2147483647)) {
      r.Error(ChildPath(sc_path, field), "Invalid value: " + std::to_string(*id) +
                                             ": must be between 0 and 2147483647, inclusive");
    }
  }
}

// Fields of a pod's or a container's securityContext that neither runtime applies and that would
// change what runs if they were applied: refused, so that none is silently ignored.
void RefuseUnappliedSecurity(const Json& extra, const std::string& sc_path, Reporter& r) {
  if (!extra.is_object()) return;
  if (auto it = extra.find("seccompProfile"); it != extra.end() && !it->is_null()) {
    std::string type = it->is_object() ? it->value("type", "") : "";
    if (type != "RuntimeDefault") {
      r.Error(Sub(sc_path, "seccompProfile.type"),
              "Unsupported value: " + Quote(type) +
                  ": supported values: \"RuntimeDefault\" (ballast applies its runtime's default "
                  "seccomp profile to every container)");
    }
  }
  for (const char* field : {"seLinuxOptions", "appArmorProfile"}) {
    if (auto it = extra.find(field); it != extra.end() && !it->is_null()) {
      r.Error(ChildPath(sc_path, field),
              std::string("Forbidden: ballast does not apply ") + field + "; remove the field");
    }
  }
  if (auto it = extra.find("procMount"); it != extra.end() && !it->is_null()) {
    if (!it->is_string() || it->get<std::string>() != "Default") {
      r.Error(ChildPath(sc_path, "procMount"),
              "Unsupported value: " + it->dump() + ": supported values: \"Default\"");
    }
  }
  if (auto it = extra.find("sysctls"); it != extra.end() && !it->is_null() && !it->empty()) {
    r.Error(ChildPath(sc_path, "sysctls"), "Forbidden: ballast does not set sysctls for pods");
  }
}

// A container's securityContext. `pod` gives the users it inherits; `surely_process` says the
// pod runs on the process runtime wherever it lands (SurelyProcessRuntime).
void ValidateSecurityContext(const PodSpec& pod, const std::string& pod_path, const Container& c,
                             const std::string& path, bool surely_process, Reporter& r) {
  const std::string sp = ChildPath(path, "securityContext");
  const SecurityContext none;
  const SecurityContext& sc = c.security_context ? *c.security_context : none;
  ValidateIds(sc.run_as_user, sc.run_as_group, sp, r);
  RefuseUnappliedSecurity(sc.extra, sp, r);
  const EffectiveSecurityContext e = EffectiveSecurity(pod, c);
  if (e.run_as_non_root && e.run_as_user == 0) {
    // kubelet would refuse to start it ("container's runAsUser breaks non-root policy").
    r.Error(
        sc.run_as_user ? ChildPath(sp, "runAsUser") : Sub(pod_path, "securityContext.runAsUser"),
        "Invalid value: 0: runAsNonRoot is true, so a container running as root (0) would "
        "never start");
  }
  if (sc.privileged.value_or(false)) {
    r.Error(ChildPath(sp, "privileged"), "Forbidden: ballast does not run privileged containers");
  }
  if (sc.capabilities) {
    std::set<std::string> added;
    auto check = [&](const std::vector<std::string>& names, const char* which) {
      for (size_t i = 0; i < names.size(); ++i) {
        std::string np = IndexPath(Sub(sp, which), i);
        std::optional<std::string> name = CanonicalCapability(names[i]);
        if (!name) {
          r.Error(np, "Unsupported value: " + Quote(names[i]) +
                          ": not a Linux capability (e.g. \"NET_BIND_SERVICE\", or \"ALL\")");
        } else if (std::string(which) == "capabilities.add") {
          added.insert(*name);
        } else if (*name != "ALL" && added.count(*name) > 0) {
          r.Error(np, "Invalid value: " + Quote(names[i]) + ": both added and dropped");
        }
      }
    };
    check(sc.capabilities->add, "capabilities.add");
    check(sc.capabilities->drop, "capabilities.drop");
    if (sc.allow_privilege_escalation == false && added.count("CAP_SYS_ADMIN") > 0) {
      r.Error(sp,
              "Invalid value: cannot set `allowPrivilegeEscalation` to false and "
              "`capabilities.Add` CAP_SYS_ADMIN");
    }
  }
  if (sc.read_only_root_filesystem.value_or(false) && surely_process) {
    r.Error(ChildPath(sp, "readOnlyRootFilesystem"),
            "Forbidden: this pod runs on the process runtime, where a container has no root "
            "filesystem of its own to make read-only (the docker runtime honours it: give every "
            "container an image)");
  }
}

// A {name, key, optional} or {name, optional} reference under valueFrom or envFrom.
void ValidateConfigRef(const Json& ref, const std::string& path, bool with_key, Reporter& r) {
  if (!ref.is_object()) {
    r.Error(path, "Invalid type: expected object");
    return;
  }
  for (const auto& [k, v] : ref.items()) {
    const std::string fp = ChildPath(path, k);
    if (k == "name" || (with_key && k == "key")) {
      if (!v.is_string()) r.Error(fp, "Invalid type: expected string");
    } else if (k == "optional") {
      if (!v.is_boolean() && !v.is_null()) r.Error(fp, "Invalid type: expected boolean");
    } else {
      r.Error(fp, "unknown field \"" + k + "\"");
    }
  }
  auto name = ref.find("name");
  if (name == ref.end() || !name->is_string() || name->get_ref<const std::string&>().empty()) {
    r.Error(ChildPath(path, "name"), "Required value");
  } else if (!IsDns1123Subdomain(name->get_ref<const std::string&>())) {
    r.Error(ChildPath(path, "name"),
            "Invalid value: " + Quote(name->get_ref<const std::string&>()) + ": " +
                kDns1123SubdomainMsg);
  }
  if (!with_key) return;
  auto key = ref.find("key");
  const std::string k = key != ref.end() && key->is_string() ? key->get<std::string>() : "";
  if (std::string problem = ConfigKeyProblem(k); !problem.empty()) {
    r.Error(ChildPath(path, "key"), problem);
  }
}

// env[].valueFrom: exactly one source; configMapKeyRef and secretKeyRef are read, fieldRef and
// resourceFieldRef are kept with a warning (not applied yet).
void ValidateEnvVarSource(const EnvVar& var, const std::string& path, Reporter& r) {
  const Json& vf = var.value_from;
  if (!vf.is_object()) {
    r.Error(path, "Invalid type: expected object");
    return;
  }
  if (!var.value.empty()) {
    r.Error(path, "Invalid value: \"\": may not be specified when `value` is not empty");
  }
  size_t sources = 0;
  for (const auto& [k, v] : vf.items()) {
    const std::string fp = ChildPath(path, k);
    if (v.is_null()) continue;
    ++sources;
    if (k == "configMapKeyRef" || k == "secretKeyRef") {
      ValidateConfigRef(v, fp, true, r);
    } else if (k == "fieldRef" || k == "resourceFieldRef") {
      r.Warning(fp, k + " is not supported yet: the variable is left unset");
    } else {
      r.Error(fp, "unknown field \"" + k + "\"");
    }
  }
  if (sources == 0) {
    r.Error(path,
            "Invalid value: \"\": must specify one of: `fieldRef`, `resourceFieldRef`, "
            "`configMapKeyRef` or `secretKeyRef`");
  } else if (sources > 1) {
    r.Error(path, "Invalid value: \"\": may not have more than one field specified at a time");
  }
}

void ValidateEnvFrom(const Json& list, const std::string& path, Reporter& r) {
  if (!list.is_array()) {
    r.Error(path, "Invalid type: expected array");
    return;
  }
  for (size_t i = 0; i < list.size(); ++i) {
    const std::string ip = IndexPath(path, i);
    const Json& e = list[i];
    if (!e.is_object()) {
      r.Error(ip, "Invalid type: expected object");
      continue;
    }
    size_t sources = 0;
    for (const auto& [k, v] : e.items()) {
      const std::string fp = ChildPath(ip, k);
      if (k == "configMapRef" || k == "secretRef") {
        if (v.is_null()) continue;
        ++sources;
        ValidateConfigRef(v, fp, false, r);
      } else if (k == "prefix") {
        if (!v.is_string()) {
          r.Error(fp, "Invalid type: expected string");
        } else if (!v.get_ref<const std::string&>().empty() &&
                   !IsEnvVarName(v.get_ref<const std::string&>())) {
          r.Error(fp,
                  "Invalid value: " + Quote(v.get_ref<const std::string&>()) + ": " + kEnvNameMsg);
        }
      } else {
        r.Error(fp, "unknown field \"" + k + "\"");
      }
    }
    if (sources == 0) {
      r.Error(ip, "Invalid value: \"\": must specify one of: `configMapRef` or `secretRef`");
    } else if (sources > 1) {
      r.Error(ip, "Invalid value: \"\": may not have more than one field specified at a time");
    }
  }
}

// A path inside a volume (items[].path, volumeMounts[].subPath): relative, without a ".."
// element, not starting with ".." (the API server's validateLocalDescendingPath; kubelet's own
// names in a volume start with "..").
// True when a component of `p` is "..".
bool HasBackstep(const std::string& p) {
  size_t start = 0;
  while (start <= p.size()) {
    size_t slash = p.find('/', start);
    if (slash == std::string::npos) slash = p.size();
    if (p.compare(start, slash - start, "..") == 0) return true;
    start = slash + 1;
  }
  return false;
}

std::string LocalPathProblem(const std::string& p) {
  if (!p.empty() && p[0] == '/') return "Invalid value: " + Quote(p) + ": must be a relative path";
  if (HasBackstep(p)) return "Invalid value: " + Quote(p) + ": must not contain '..'";
  // The first component that names something ("./..data" is "..data", kubelet's own name).
  size_t first = 0;
  while (first < p.size() && (p[first] == '/' || p.compare(first, 2, "./") == 0)) {
    first += p[first] == '/' ? 1 : 2;
  }
  if (p.compare(first, 2, "..") == 0) {
    return "Invalid value: " + Quote(p) + ": must not start with '..'";
  }
  return "";
}

void ValidateFileMode(const Json& v, const std::string& path, Reporter& r) {
  if (!v.is_number_integer()) {
    r.Error(path, "Invalid type: expected integer");
  } else if (v.get<int64_t>() < 0 || v.get<int64_t>() > kMaxVolumeFileMode) {
    r.Error(path, "Invalid value: " + std::to_string(v.get<int64_t>()) +
                      ": must be a number between 0 and 0777 (octal), both inclusive");
  }
}

// volumes[i].configMap or .secret: {name|secretName, items, defaultMode, optional}.
void ValidateConfigVolumeSource(const Json& src, const std::string& path, const char* name_field,
                                Reporter& r) {
  if (!src.is_object()) {
    r.Error(path, "Invalid type: expected object");
    return;
  }
  for (const auto& [k, v] : src.items()) {
    const std::string fp = ChildPath(path, k);
    if (v.is_null()) continue;
    if (k == name_field) {
      if (!v.is_string()) {
        r.Error(fp, "Invalid type: expected string");
      } else if (!v.get_ref<const std::string&>().empty() &&
                 !IsDns1123Subdomain(v.get_ref<const std::string&>())) {
        r.Error(fp, "Invalid value: " + Quote(v.get_ref<const std::string&>()) + ": " +
                        kDns1123SubdomainMsg);
      }
    } else if (k == "optional") {
      if (!v.is_boolean()) r.Error(fp, "Invalid type: expected boolean");
    } else if (k == "defaultMode") {
      ValidateFileMode(v, fp, r);
    } else if (k == "items") {
      if (!v.is_array()) {
        r.Error(fp, "Invalid type: expected array");
        continue;
      }
      for (size_t i = 0; i < v.size(); ++i) {
        const std::string ip = IndexPath(fp, i);
        const Json& item = v[i];
        if (!item.is_object()) {
          r.Error(ip, "Invalid type: expected object");
          continue;
        }
        for (const auto& [ik, iv] : item.items()) {
          const std::string ifp = ChildPath(ip, ik);
          if (ik == "key" || ik == "path") {
            if (!iv.is_string()) r.Error(ifp, "Invalid type: expected string");
          } else if (ik == "mode") {
            ValidateFileMode(iv, ifp, r);
          } else if (!iv.is_null()) {
            r.Error(ifp, "unknown field \"" + ik + "\"");
          }
        }
        auto key = item.find("key");
        if (key == item.end() || !key->is_string() || key->get_ref<const std::string&>().empty()) {
          r.Error(ChildPath(ip, "key"), "Required value");
        }
        auto p = item.find("path");
        if (p == item.end() || !p->is_string() || p->get_ref<const std::string&>().empty()) {
          r.Error(ChildPath(ip, "path"), "Required value");
        } else if (std::string why = LocalPathProblem(p->get<std::string>()); !why.empty()) {
          r.Error(ChildPath(ip, "path"), why);
        }
      }
    } else {
      r.Error(fp, "unknown field \"" + k + "\"");
    }
  }
  auto name = src.find(name_field);
  if (name == src.end() || !name->is_string() || name->get_ref<const std::string&>().empty()) {
    r.Error(ChildPath(path, name_field), "Required value");
  }
}

// The pod's volumes: names, exactly one type each; configMap and secret volumes in full.
// Returns each name with whether ballast mounts it (configMap and secret: yes).
std::map<std::string, bool> ValidateVolumes(const PodSpec& s, const std::string& path,
                                            Reporter& r) {
  std::map<std::string, bool> names;
  auto list = s.extra.find("volumes");
  if (list == s.extra.end()) return names;
  const std::string vp = ChildPath(path, "volumes");
  if (!list->is_array()) {
    r.Error(vp, "Invalid type: expected array");
    return names;
  }
  // Each configMap or secret volume is a copy of its object on the node's disk.
  if (list->size() > kMaxVolumes) {
    r.Error(vp, "Too many: " + std::to_string(list->size()) + ": must have at most " +
                    std::to_string(kMaxVolumes) + " volumes");
    return names;
  }
  for (size_t i = 0; i < list->size(); ++i) {
    const std::string ip = IndexPath(vp, i);
    const Json& v = (*list)[i];
    if (!v.is_object()) {
      r.Error(ip, "Invalid type: expected object");
      continue;
    }
    std::string name;
    if (auto n = v.find("name"); n != v.end() && n->is_string()) name = n->get<std::string>();
    if (name.empty()) {
      r.Error(ChildPath(ip, "name"), "Required value");
    } else if (!IsDns1123Label(name)) {
      r.Error(ChildPath(ip, "name"), "Invalid value: " + Quote(name) + ": " + kDns1123LabelMsg);
    }
    size_t types = 0;
    bool mounted = false;
    for (const auto& [k, value] : v.items()) {
      if (k == "name" || value.is_null()) continue;
      ++types;
      if (k == "configMap") {
        ValidateConfigVolumeSource(value, ChildPath(ip, k), "name", r);
        mounted = true;
      } else if (k == "secret") {
        ValidateConfigVolumeSource(value, ChildPath(ip, k), "secretName", r);
        mounted = true;
      }
    }
    if (types == 0) {
      r.Error(ip, "Required value: must specify a volume type");
    } else if (types > 1) {
      r.Error(ip, "Forbidden: may not specify more than 1 volume type");
    }
    if (!name.empty() && !names.emplace(name, mounted && types == 1).second) {
      r.Error(ChildPath(ip, "name"), "Duplicate value: " + Quote(name));
    }
  }
  return names;
}

// A container's volumeMounts against the pod's volumes (`volumes`: ValidateVolumes).
void ValidateVolumeMounts(const Container& c, const std::string& path,
                          const std::map<std::string, bool>& volumes, Reporter& r) {
  auto list = c.extra.find("volumeMounts");
  if (list == c.extra.end()) return;
  const std::string mp = ChildPath(path, "volumeMounts");
  if (!list->is_array()) {
    r.Error(mp, "Invalid type: expected array");
    return;
  }
  if (list->size() > kMaxVolumes) {
    r.Error(mp, "Too many: " + std::to_string(list->size()) + ": must have at most " +
                    std::to_string(kMaxVolumes) + " volumeMounts");
    return;
  }
  std::set<std::string> mount_paths;
  for (size_t i = 0; i < list->size(); ++i) {
    const std::string ip = IndexPath(mp, i);
    const Json& m = (*list)[i];
    if (!m.is_object()) {
      r.Error(ip, "Invalid type: expected object");
      continue;
    }
    for (const auto& [k, v] : m.items()) {
      const std::string fp = ChildPath(ip, k);
      if (v.is_null()) continue;
      if (k == "name" || k == "mountPath" || k == "subPath") {
        if (!v.is_string()) r.Error(fp, "Invalid type: expected string");
      } else if (k == "readOnly") {
        if (!v.is_boolean()) r.Error(fp, "Invalid type: expected boolean");
      } else if (k == "mountPropagation" || k == "recursiveReadOnly") {
        r.Warning(fp, k + " is not applied: ballast's volumes hold files the pod only reads");
      } else if (k == "subPathExpr") {
        r.Error(fp, "Forbidden: subPathExpr is not supported: use subPath");
      } else {
        r.Error(fp, "unknown field \"" + k + "\"");
      }
    }
    auto text = [&](const char* field) {
      auto it = m.find(field);
      return it != m.end() && it->is_string() ? it->get<std::string>() : std::string();
    };
    const std::string name = text("name");
    const std::string mount_path = text("mountPath");
    const std::string sub_path = text("subPath");
    if (name.empty()) {
      r.Error(ChildPath(ip, "name"), "Required value");
    } else if (auto v = volumes.find(name); v == volumes.end()) {
      r.Error(ChildPath(ip, "name"), "Not found: " + Quote(name));
    } else if (!v->second) {
      r.Warning(ChildPath(ip, "name"),
                "volume " + Quote(name) +
                    " is of a type ballast does not mount (only configMap and secret): the "
                    "container starts without it");
    }
    if (mount_path.empty()) {
      r.Error(ChildPath(ip, "mountPath"), "Required value");
    } else if (HasBackstep(mount_path)) {
      r.Error(ChildPath(ip, "mountPath"),
              "Invalid value: " + Quote(mount_path) + ": must not contain '..'");
    } else if (!mount_paths.insert(mount_path).second) {
      r.Error(ChildPath(ip, "mountPath"),
              "Invalid value: " + Quote(mount_path) + ": must be unique");
    }
    if (!sub_path.empty()) {
      if (std::string why = LocalPathProblem(sub_path); !why.empty()) {
        r.Error(ChildPath(ip, "subPath"), why);
      }
    }
  }
}

void ValidateContainer(const Container& c, const std::string& path,
                       std::set<std::string>* pod_port_names,
                       const std::map<std::string, bool>& volumes, Reporter& r) {
  if (c.name.empty()) {
    r.Error(ChildPath(path, "name"), "Required value");
  } else if (!IsDns1123Label(c.name)) {
    r.Error(ChildPath(path, "name"), "Invalid value: " + Quote(c.name) + ": " + kDns1123LabelMsg);
  }
  if (c.image.empty() && c.command.empty()) {
    r.Error(ChildPath(path, "image"),
            "Required value: a container needs an image or a command (ballast runs commands as "
            "processes)");
  }
  std::set<std::string> own_port_names;
  for (size_t i = 0; i < c.ports.size(); ++i) {
    const ContainerPort& p = c.ports[i];
    std::string pp = IndexPath(ChildPath(path, "ports"), i);
    if (p.container_port < 1 || p.container_port > 65535) {
      r.Error(ChildPath(pp, "containerPort"), "Invalid value: " + std::to_string(p.container_port) +
                                                  ": must be between 1 and 65535, inclusive");
    }
    if (p.host_port < 0 || p.host_port > 65535) {
      r.Error(ChildPath(pp, "hostPort"), "Invalid value: " + std::to_string(p.host_port) +
                                             ": must be between 1 and 65535, inclusive");
    }
    if (p.protocol != "TCP" && p.protocol != "UDP" && p.protocol != "SCTP") {
      r.Error(ChildPath(pp, "protocol"), "Unsupported value: " + Quote(p.protocol) +
                                             ": supported values: \"SCTP\", \"TCP\", \"UDP\"");
    }
    if (!p.name.empty()) {
      if (!IsIanaSvcName(p.name)) {
        r.Error(ChildPath(pp, "name"), "Invalid value: " + Quote(p.name) + ": " + kIanaSvcNameMsg);
      } else if (!pod_port_names->insert(p.name).second) {
        r.Error(ChildPath(pp, "name"), "Duplicate value: " + Quote(p.name));
      }
      own_port_names.insert(p.name);
    }
  }
  for (size_t i = 0; i < c.env.size(); ++i) {
    const std::string item = IndexPath(ChildPath(path, "env"), i);
    std::string ep = ChildPath(item, "name");
    if (c.env[i].name.empty()) {
      r.Error(ep, "Required value");
    } else if (!IsEnvVarName(c.env[i].name)) {
      r.Error(ep, "Invalid value: " + Quote(c.env[i].name) + ": " + kEnvNameMsg);
    }
    if (!c.env[i].value_from.is_null()) {
      ValidateEnvVarSource(c.env[i], ChildPath(item, "valueFrom"), r);
    }
  }
  if (auto it = c.extra.find("envFrom"); it != c.extra.end()) {
    ValidateEnvFrom(*it, ChildPath(path, "envFrom"), r);
  }
  ValidateVolumeMounts(c, path, volumes, r);
  std::string rp = ChildPath(path, "resources");
  auto check_list = [&](const ResourceList& list, const char* which) {
    for (const auto& [name, q] : list) {
      std::string qp = ChildPath(ChildPath(rp, which), name);
      if (!IsStandardResource(name)) {
        r.Error(qp, "Invalid value: " + Quote(name) +
                        ": must be a standard resource type or fully qualified");
      }
      if (q.IsNegative()) {
        r.Error(qp,
                "Invalid value: " + Quote(q.ToString()) + ": must be greater than or equal to 0");
      }
    }
  };
  check_list(c.resources.requests, "requests");
  check_list(c.resources.limits, "limits");
  for (const auto& [name, request] : c.resources.requests) {
    auto limit = c.resources.limits.find(name);
    if (limit != c.resources.limits.end() && request > limit->second) {
      r.Error(ChildPath(ChildPath(rp, "requests"), name),
              "Invalid value: " + Quote(request.ToString()) + ": must be less than or equal to " +
                  name + " limit of " + limit->second.ToString());
    }
  }
  if (c.readiness_probe) {
    ValidateProbe(*c.readiness_probe, ChildPath(path, "readinessProbe"), false, own_port_names, r);
  }
  if (c.liveness_probe) {
    ValidateProbe(*c.liveness_probe, ChildPath(path, "livenessProbe"), true, own_port_names, r);
  }
  if (c.startup_probe) {
    ValidateProbe(*c.startup_probe, ChildPath(path, "startupProbe"), true, own_port_names, r);
  }
}

void ValidatePodSpec(const PodSpec& s, const std::string& path, bool surely_process, Reporter& r) {
  std::string cp = ChildPath(path, "containers");
  if (s.containers.empty()) r.Error(cp, "Required value");
  std::set<std::string> names;
  std::set<std::string> port_names;
  const std::map<std::string, bool> volumes = ValidateVolumes(s, path, r);
  for (size_t i = 0; i < s.containers.size(); ++i) {
    std::string p = IndexPath(cp, i);
    ValidateContainer(s.containers[i], p, &port_names, volumes, r);
    ValidateSecurityContext(s, path, s.containers[i], p, surely_process, r);
    if (!s.containers[i].name.empty() && !names.insert(s.containers[i].name).second) {
      r.Error(ChildPath(p, "name"), "Duplicate value: " + Quote(s.containers[i].name));
    }
  }
  if (s.restart_policy != "Always") {
    r.Error(ChildPath(path, "restartPolicy"),
            "Unsupported value: " + Quote(s.restart_policy) + ": supported values: \"Always\"");
  }
  ValidateLabels(s.node_selector, ChildPath(path, "nodeSelector"), r);
  for (size_t i = 0; i < s.tolerations.size(); ++i) {
    const Toleration& t = s.tolerations[i];
    std::string tp = IndexPath(ChildPath(path, "tolerations"), i);
    if (t.op != "Exists" && t.op != "Equal") {
      r.Error(ChildPath(tp, "operator"),
              "Unsupported value: " + Quote(t.op) + ": supported values: \"Equal\", \"Exists\"");
    }
    if (t.key.empty() && t.op != "Exists") {
      r.Error(ChildPath(tp, "operator"),
              "Invalid value: " + Quote(t.op) +
                  ": operator must be Exists when `key` is empty, which means \"match all values "
                  "and all keys\"");
    }
    if (t.op == "Exists" && !t.value.empty()) {
      r.Error(ChildPath(tp, "operator"), "Invalid value: " + Quote(t.value) +
                                             ": value must be empty when `operator` is 'Exists'");
    }
    if (!t.effect.empty() && t.effect != "NoSchedule" && t.effect != "PreferNoSchedule" &&
        t.effect != "NoExecute") {
      r.Error(ChildPath(tp, "effect"),
              "Unsupported value: " + Quote(t.effect) +
                  ": supported values: \"NoExecute\", \"NoSchedule\", \"PreferNoSchedule\"");
    }
    if (t.toleration_seconds && t.effect != "NoExecute") {
      r.Error(ChildPath(tp, "effect"),
              "Invalid value: " + Quote(t.effect) +
                  ": effect must be 'NoExecute' when `tolerationSeconds` is set");
    }
  }
  if (s.affinity && s.affinity->node_affinity) {
    ValidateNodeAffinity(*s.affinity->node_affinity, Sub(path, "affinity.nodeAffinity"), r);
  }
  if (s.affinity && s.affinity->pod_anti_affinity) {
    const auto& anti = *s.affinity->pod_anti_affinity;
    std::string ap = Sub(path, "affinity.podAntiAffinity");
    for (size_t i = 0; i < anti.required.size(); ++i) {
      std::string tp =
          IndexPath(ChildPath(ap, "requiredDuringSchedulingIgnoredDuringExecution"), i);
      if (anti.required[i].topology_key.empty()) {
        r.Error(ChildPath(tp, "topologyKey"), "Required value: can not be empty");
      }
      ValidateSelector(anti.required[i].label_selector, ChildPath(tp, "labelSelector"), r);
    }
    for (size_t i = 0; i < anti.preferred.size(); ++i) {
      std::string tp =
          IndexPath(ChildPath(ap, "preferredDuringSchedulingIgnoredDuringExecution"), i);
      ValidateWeight(anti.preferred[i].weight, ChildPath(tp, "weight"), r);
      if (anti.preferred[i].term.topology_key.empty()) {
        r.Error(Sub(tp, "podAffinityTerm.topologyKey"), "Required value: can not be empty");
      }
    }
  }
  if (s.termination_grace_period_seconds < 0) {
    r.Error(ChildPath(path, "terminationGracePeriodSeconds"),
            "Invalid value: " + std::to_string(s.termination_grace_period_seconds) +
                ": must be greater than or equal to 0");
  }
  const std::string sp = ChildPath(path, "securityContext");
  ValidateIds(s.security_context.run_as_user, s.security_context.run_as_group, sp, r);
  RefuseUnappliedSecurity(s.security_context.extra, sp, r);
}

bool IsValidPercent(const std::string& s) {
  if (s.size() < 2 || s.back() != '%') return false;
  return std::all_of(s.begin(), s.end() - 1, [](char c) { return c >= '0' && c <= '9'; });
}

// Returns the value to compare against zero: the int, or the percent number; -1 if invalid.
int64_t ValidateIntOrPercent(const IntOrString& v, const std::string& path, Reporter& r) {
  if (v.is_int()) {
    if (v.int_value() < 0) {
      r.Error(path, "Invalid value: " + v.ToString() + ": must be greater than or equal to 0");
      return -1;
    }
    return v.int_value();
  }
  if (!IsValidPercent(v.str_value())) {
    r.Error(path, "Invalid value: " + Quote(v.str_value()) +
                      ": a valid percent string must be a numeric string followed by an ending "
                      "'%' (e.g. '1%',  or '93%', regex used for validation is '[0-9]+%')");
    return -1;
  }
  return std::stoll(v.str_value().substr(0, v.str_value().size() - 1));
}

}  // namespace

void ValidatePodTemplateSpec(const PodTemplateSpec& t, const std::string& path, Reporter& r) {
  ValidateLabels(t.labels, Sub(path, "metadata.labels"), r);
  // Each pod carries what it reads to its node (agentapi::kMaxPodConfigSources).
  if (const size_t n = ReferencedConfig(t.spec).size(); n > kMaxReferencedConfig) {
    r.Error(Sub(path, "spec.containers"),
            "Too many: " + std::to_string(n) + ": must read at most " +
                std::to_string(kMaxReferencedConfig) + " ConfigMaps and Secrets");
  }
  if (auto it = t.annotations.find(kAnnotationPidsLimit);
      it != t.annotations.end() && !ParsePidsLimit(it->second)) {
    r.Error(ChildPath(Sub(path, "metadata.annotations"), kAnnotationPidsLimit),
            "Invalid value: " + Quote(it->second) + ": must be an integer from 1 to " +
                std::to_string(kMaxPidsLimit) + " (the most processes the pod may have; " +
                std::to_string(kDefaultPidsLimit) + " when not set)");
  }
  ValidatePodSpec(t.spec, ChildPath(path, "spec"), SurelyProcessRuntime(t), r);
}

void ValidateDeployment(const Deployment& d, Reporter& r) {
  ValidateMeta(d.metadata, false, r);
  const DeploymentSpec& s = d.spec;
  auto non_negative = [&](int64_t v, const char* field) {
    if (v < 0) {
      r.Error(field,
              "Invalid value: " + std::to_string(v) + ": must be greater than or equal to 0");
    }
  };
  non_negative(s.replicas, "spec.replicas");
  if (s.replicas > kMaxReplicas) {
    r.Error("spec.replicas", "Invalid value: " + std::to_string(s.replicas) +
                                 ": must be no more than " + std::to_string(kMaxReplicas) +
                                 " (ballast's limit per workload)");
  }
  non_negative(s.min_ready_seconds, "spec.minReadySeconds");
  non_negative(s.revision_history_limit, "spec.revisionHistoryLimit");
  non_negative(s.progress_deadline_seconds, "spec.progressDeadlineSeconds");
  if (s.progress_deadline_seconds <= s.min_ready_seconds) {
    r.Error("spec.progressDeadlineSeconds",
            "Invalid value: " + std::to_string(s.progress_deadline_seconds) +
                ": must be greater than minReadySeconds");
  }
  if (s.selector.empty()) {
    r.Error("spec.selector", "Invalid value: {}: empty selector is invalid for deployment");
  } else {
    ValidateSelector(s.selector, "spec.selector", r);
    if (!s.selector.Matches(s.template_.labels)) {
      r.Error("spec.template.metadata.labels",
              "Invalid value: the template's labels do not match: `selector` does not match "
              "template `labels`");
    }
  }
  ValidatePodTemplateSpec(s.template_, "spec.template", r);
  if (s.strategy.type == "RollingUpdate") {
    int64_t surge =
        ValidateIntOrPercent(s.strategy.max_surge, "spec.strategy.rollingUpdate.maxSurge", r);
    int64_t unavailable = ValidateIntOrPercent(s.strategy.max_unavailable,
                                               "spec.strategy.rollingUpdate.maxUnavailable", r);
    if (!s.strategy.max_unavailable.is_int() && unavailable > 100) {
      r.Error("spec.strategy.rollingUpdate.maxUnavailable",
              "Invalid value: " + Quote(s.strategy.max_unavailable.str_value()) +
                  ": must not be greater than 100%");
    }
    if (surge == 0 && unavailable == 0) {
      r.Error("spec.strategy.rollingUpdate.maxUnavailable",
              "Invalid value: " + s.strategy.max_unavailable.ToString() +
                  ": may not be 0 when `maxSurge` is 0");
    }
  } else if (s.strategy.type != "Recreate") {
    r.Error("spec.strategy.type", "Unsupported value: " + Quote(s.strategy.type) +
                                      ": supported values: \"Recreate\", \"RollingUpdate\"");
  }
}

void ValidateService(const Service& svc, Reporter& r) {
  ValidateMeta(svc.metadata, true, r);
  const ServiceSpec& s = svc.spec;
  static const std::set<std::string> kTypes = {"ClusterIP", "NodePort", "LoadBalancer",
                                               "ExternalName"};
  if (!kTypes.count(s.type)) {
    r.Error("spec.type",
            "Unsupported value: " + Quote(s.type) +
                ": supported values: \"ClusterIP\", \"ExternalName\", \"LoadBalancer\", "
                "\"NodePort\"");
    return;
  }
  if (s.type == "ExternalName") {
    r.Warning("spec.type",
              "ExternalName services are kept but not served: ballast's proxy only serves "
              "ClusterIP, NodePort and LoadBalancer");
    return;
  }
  if (s.ports.empty()) r.Error("spec.ports", "Required value");
  ValidateLabels(s.selector, "spec.selector", r);
  std::set<std::string> names;
  std::set<std::pair<int32_t, std::string>> ports;
  std::set<int32_t> node_ports;
  for (size_t i = 0; i < s.ports.size(); ++i) {
    const ServicePort& p = s.ports[i];
    std::string pp = IndexPath("spec.ports", i);
    if (s.ports.size() > 1 && p.name.empty()) {
      r.Error(ChildPath(pp, "name"), "Required value");
    } else if (!p.name.empty()) {
      if (!IsDns1123Label(p.name)) {
        r.Error(ChildPath(pp, "name"), "Invalid value: " + Quote(p.name) + ": " + kDns1123LabelMsg);
      } else if (!names.insert(p.name).second) {
        r.Error(ChildPath(pp, "name"), "Duplicate value: " + Quote(p.name));
      }
    }
    if (p.port < 1 || p.port > 65535) {
      r.Error(ChildPath(pp, "port"), "Invalid value: " + std::to_string(p.port) +
                                         ": must be between 1 and 65535, inclusive");
    }
    if (p.protocol != "TCP" && p.protocol != "UDP" && p.protocol != "SCTP") {
      r.Error(ChildPath(pp, "protocol"), "Unsupported value: " + Quote(p.protocol) +
                                             ": supported values: \"SCTP\", \"TCP\", \"UDP\"");
    }
    if (!ports.insert({p.port, p.protocol}).second) {
      r.Error(pp, "Duplicate value: {port: " + std::to_string(p.port) +
                      ", protocol: " + Quote(p.protocol) + "}");
    }
    if (p.target_port.is_int()) {
      if (p.target_port.int_value() < 1 || p.target_port.int_value() > 65535) {
        r.Error(ChildPath(pp, "targetPort"), "Invalid value: " + p.target_port.ToString() +
                                                 ": must be between 1 and 65535, inclusive");
      }
    } else if (!IsIanaSvcName(p.target_port.str_value())) {
      r.Error(ChildPath(pp, "targetPort"),
              "Invalid value: " + Quote(p.target_port.str_value()) + ": " + kIanaSvcNameMsg);
    }
    if (p.node_port != 0) {
      if (s.type == "ClusterIP") {
        r.Error(ChildPath(pp, "nodePort"), "Forbidden: may not be used when `type` is 'ClusterIP'");
      } else if (p.node_port < 30000 || p.node_port > 32767) {
        r.Error(ChildPath(pp, "nodePort"),
                "Invalid value: " + std::to_string(p.node_port) +
                    ": provided port is not in the valid range. The range of valid ports is "
                    "30000-32767");
      } else if (!node_ports.insert(p.node_port).second) {
        r.Error(ChildPath(pp, "nodePort"), "Duplicate value: " + std::to_string(p.node_port));
      }
    }
  }
}

void ValidateNamespace(const Namespace& ns, Reporter& r) {
  if (ns.metadata.name.empty()) {
    r.Error("metadata.name", "Required value: name or generateName is required");
  } else if (!IsDns1123Label(ns.metadata.name)) {
    r.Error("metadata.name", "Invalid value: " + Quote(ns.metadata.name) + ": " + kDns1123LabelMsg);
  }
  ValidateLabels(ns.metadata.labels, "metadata.labels", r);
}

void ValidateConfigMap(const ConfigMap& cm, Reporter& r) {
  ValidateMeta(cm.metadata, false, r);
  size_t bytes = 0;
  for (const auto& [k, v] : cm.data) {
    bytes += k.size() + v.size();
    if (std::string problem = ConfigKeyProblem(k); !problem.empty()) {
      r.Error(ChildPath("data", k), problem);
    }
  }
  for (const auto& [k, v] : cm.binary_data) {
    bytes += k.size() + v.size();
    if (std::string problem = ConfigKeyProblem(k); !problem.empty()) {
      r.Error(ChildPath("binaryData", k), problem);
    } else if (cm.data.count(k)) {
      r.Error(ChildPath("binaryData", k),
              "Invalid value: " + Quote(k) + ": duplicate of key present in data");
    }
  }
  if (bytes > kMaxConfigBytes) {
    r.Error("", "Too long: must have at most " + std::to_string(kMaxConfigBytes) + " bytes");
  }
}

void ValidateSecret(const Secret& s, Reporter& r) {
  ValidateMeta(s.metadata, false, r);
  size_t bytes = 0;
  for (const auto& [k, v] : s.data) {
    bytes += k.size() + v.size();
    if (std::string problem = ConfigKeyProblem(k); !problem.empty()) {
      r.Error(ChildPath("data", k), problem);
    }
  }
  if (bytes > kMaxConfigBytes) {
    r.Error("data", "Too long: must have at most " + std::to_string(kMaxConfigBytes) + " bytes");
  }
  auto require = [&](const char* key) {
    if (!s.data.count(key)) r.Error(ChildPath("data", key), "Required value");
  };
  auto require_json = [&](const char* key) {
    auto it = s.data.find(key);
    if (it == s.data.end()) {
      r.Error(ChildPath("data", key), "Required value");
    } else if (!Json::accept(it->second)) {
      r.Error(ChildPath("data", key),
              "Invalid value: \"<secret contents redacted>\": invalid JSON");
    }
  };
  if (s.type == "kubernetes.io/tls") {
    require("tls.crt");
    require("tls.key");
  } else if (s.type == "kubernetes.io/ssh-auth") {
    require("ssh-privatekey");
  } else if (s.type == "kubernetes.io/basic-auth") {
    if (!s.data.count("username") && !s.data.count("password")) {
      require("username");
      require("password");
    }
  } else if (s.type == "kubernetes.io/dockerconfigjson") {
    require_json(".dockerconfigjson");
  } else if (s.type == "kubernetes.io/dockercfg") {
    require_json(".dockercfg");
  } else if (s.type == "kubernetes.io/service-account-token") {
    if (!s.metadata.annotations.count("kubernetes.io/service-account.name")) {
      r.Error("metadata.annotations[kubernetes.io/service-account.name]", "Required value");
    }
  }
}

}  // namespace ballast::model
