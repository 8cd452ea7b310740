#include "model/object.h"

#include <algorithm>
#include <charconv>
#include <limits>

namespace ballast::model {

std::string ObjectKey::ToString() const {
  return namespace_.empty() ? kind + " " + name : kind + " " + namespace_ + "/" + name;
}

const std::string& IntOrString::str_value() const {
  static const std::string kEmpty;
  return is_int() ? kEmpty : std::get<std::string>(value);
}

std::string IntOrString::ToString() const {
  return is_int() ? std::to_string(std::get<int64_t>(value)) : std::get<std::string>(value);
}

int64_t ScaledValue(const IntOrString& v, int64_t total, bool round_up) {
  if (v.is_int()) return v.int_value();
  const std::string& s = v.str_value();
  if (s.size() < 2 || s.back() != '%') return -1;
  int64_t percent = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size() - 1, percent);
  if (ec != std::errc() || end != s.data() + s.size() - 1 || percent < 0) return -1;
  int64_t scaled = percent * total;
  return round_up ? (scaled + 99) / 100 : scaled / 100;
}

bool LabelSelector::Matches(const StringMap& labels) const {
  for (const auto& [k, v] : match_labels) {
    auto it = labels.find(k);
    if (it == labels.end() || it->second != v) return false;
  }
  for (const auto& req : match_expressions) {
    auto it = labels.find(req.key);
    bool has = it != labels.end();
    bool in =
        has && std::find(req.values.begin(), req.values.end(), it->second) != req.values.end();
    if (req.op == "In" && !in) return false;
    if (req.op == "NotIn" && in) return false;
    if (req.op == "Exists" && !has) return false;
    if (req.op == "DoesNotExist" && has) return false;
  }
  return true;
}

std::optional<int64_t> ParseNodeSelectorInteger(std::string_view s) {
  if (s.empty() || s.size() > 19) return std::nullopt;
  const bool negative = s[0] == '-';
  if (negative && s.size() == 1) return std::nullopt;
  int64_t v = 0;
  for (char c : s.substr(negative ? 1 : 0)) {
    if (c < '0' || c > '9') return std::nullopt;
    if (v > (std::numeric_limits<int64_t>::max() - (c - '0')) / 10) return std::nullopt;
    v = v * 10 + (c - '0');
  }
  return negative ? -v : v;
}

namespace {

bool NodeRequirementMatches(const NodeSelectorRequirement& r, bool field,
                            std::string_view node_name, const StringMap& node_labels) {
  if (r.key.empty() || r.op.empty()) return false;
  std::optional<std::string_view> value;
  if (field) {
    if (r.key != "metadata.name") return false;
    value = node_name;
  } else if (auto it = node_labels.find(r.key); it != node_labels.end()) {
    value = it->second;
  }
  const bool in = value && std::find(r.values.begin(), r.values.end(), *value) != r.values.end();
  if (r.op == "In") return in;
  if (r.op == "NotIn") return !in;
  if (field) return false;  // matchFields know In and NotIn only
  if (r.op == "Exists") return value.has_value();
  if (r.op == "DoesNotExist") return !value.has_value();
  if (r.op == "Gt" || r.op == "Lt") {
    if (!value || r.values.size() != 1) return false;
    std::optional<int64_t> have = ParseNodeSelectorInteger(*value);
    std::optional<int64_t> want = ParseNodeSelectorInteger(r.values[0]);
    if (!have || !want) return false;
    return r.op == "Gt" ? *have > *want : *have < *want;
  }
  return false;
}

}  // namespace

bool NodeSelectorTerm::Matches(std::string_view node_name, const StringMap& node_labels) const {
  if (match_expressions.empty() && match_fields.empty()) return false;
  for (const auto& r : match_expressions) {
    if (!NodeRequirementMatches(r, false, node_name, node_labels)) return false;
  }
  for (const auto& r : match_fields) {
    if (!NodeRequirementMatches(r, true, node_name, node_labels)) return false;
  }
  return true;
}

const std::vector<std::string_view>& CapabilityNames() {
  // include/uapi/linux/capability.h, numbers 0 to 40.
  static const std::vector<std::string_view> kNames = {"CAP_CHOWN",
                                                       "CAP_DAC_OVERRIDE",
                                                       "CAP_DAC_READ_SEARCH",
                                                       "CAP_FOWNER",
                                                       "CAP_FSETID",
                                                       "CAP_KILL",
                                                       "CAP_SETGID",
                                                       "CAP_SETUID",
                                                       "CAP_SETPCAP",
                                                       "CAP_LINUX_IMMUTABLE",
                                                       "CAP_NET_BIND_SERVICE",
                                                       "CAP_NET_BROADCAST",
                                                       "CAP_NET_ADMIN",
                                                       "CAP_NET_RAW",
                                                       "CAP_IPC_LOCK",
                                                       "CAP_IPC_OWNER",
                                                       "CAP_SYS_MODULE",
                                                       "CAP_SYS_RAWIO",
                                                       "CAP_SYS_CHROOT",
                                                       "CAP_SYS_PTRACE",
                                                       "CAP_SYS_PACCT",
                                                       "CAP_SYS_ADMIN",
                                                       "CAP_SYS_BOOT",
                                                       "CAP_SYS_NICE",
                                                       "CAP_SYS_RESOURCE",
                                                       "CAP_SYS_TIME",
                                                       "CAP_SYS_TTY_CONFIG",
                                                       "CAP_MKNOD",
                                                       "CAP_LEASE",
                                                       "CAP_AUDIT_WRITE",
                                                       "CAP_AUDIT_CONTROL",
                                                       "CAP_SETFCAP",
                                                       "CAP_MAC_OVERRIDE",
                                                       "CAP_MAC_ADMIN",
                                                       "CAP_SYSLOG",
                                                       "CAP_WAKE_ALARM",
                                                       "CAP_BLOCK_SUSPEND",
                                                       "CAP_AUDIT_READ",
                                                       "CAP_PERFMON",
                                                       "CAP_BPF",
                                                       "CAP_CHECKPOINT_RESTORE"};
  return kNames;
}

std::optional<std::string> CanonicalCapability(std::string_view name) {
  std::string upper;
  for (char c : name) upper += (c >= 'a' && c <= 'z') ? static_cast<char>(c - 'a' + 'A') : c;
  if (upper == "ALL") return upper;
  if (upper.rfind("CAP_", 0) != 0) upper.insert(0, "CAP_");
  const auto& names = CapabilityNames();
  if (std::find(names.begin(), names.end(), upper) == names.end()) return std::nullopt;
  return upper;
}

EffectiveSecurityContext EffectiveSecurity(const PodSpec& pod, const Container& container) {
  EffectiveSecurityContext e;
  const PodSecurityContext& p = pod.security_context;
  e.run_as_user = p.run_as_user;
  e.run_as_group = p.run_as_group;
  e.run_as_non_root = p.run_as_non_root.value_or(false);
  if (!container.security_context) return e;
  const SecurityContext& c = *container.security_context;
  if (c.run_as_user) e.run_as_user = c.run_as_user;
  if (c.run_as_group) e.run_as_group = c.run_as_group;
  if (c.run_as_non_root) e.run_as_non_root = *c.run_as_non_root;
  if (c.capabilities) {
    auto canonical = [](const std::vector<std::string>& names, std::vector<std::string>* out) {
      for (const auto& n : names) {
        if (auto name = CanonicalCapability(n)) out->push_back(*name);
      }
    };
    canonical(c.capabilities->add, &e.cap_add);
    canonical(c.capabilities->drop, &e.cap_drop);
  }
  e.allow_privilege_escalation = c.allow_privilege_escalation.value_or(false);
  e.read_only_root_filesystem = c.read_only_root_filesystem.value_or(false);
  return e;
}

bool SurelyProcessRuntime(const PodTemplateSpec& template_spec) {
  auto it = template_spec.annotations.find(kAnnotationRuntime);
  if (it != template_spec.annotations.end() && !it->second.empty()) return it->second == "process";
  bool some_without_image = false;
  for (const auto& c : template_spec.spec.containers) {
    if (!c.image.empty() && c.command.empty()) return false;
    some_without_image = some_without_image || c.image.empty();
  }
  return some_without_image;
}

std::optional<int64_t> ParsePidsLimit(std::string_view value) {
  if (value.empty() || value.size() > 7) return std::nullopt;
  int64_t v = 0;
  for (char c : value) {
    if (c < '0' || c > '9') return std::nullopt;
    v = v * 10 + (c - '0');
  }
  if (v < 1 || v > kMaxPidsLimit) return std::nullopt;
  return v;
}

int64_t PodPidsLimit(const PodTemplateSpec& template_spec) {
  auto it = template_spec.annotations.find(kAnnotationPidsLimit);
  if (it == template_spec.annotations.end()) return kDefaultPidsLimit;
  return ParsePidsLimit(it->second).value_or(kDefaultPidsLimit);
}

const ObjectMeta& Manifest::metadata() const {
  return std::visit([](const auto& o) -> const ObjectMeta& { return o.metadata; }, value);
}

ObjectKey Manifest::key() const {
  const ObjectMeta& m = metadata();
  std::string kind;
  if (std::holds_alternative<Deployment>(value)) {
    kind = "Deployment";
  } else if (std::holds_alternative<Service>(value)) {
    kind = "Service";
  } else if (std::holds_alternative<ConfigMap>(value)) {
    kind = "ConfigMap";
  } else if (std::holds_alternative<Secret>(value)) {
    kind = "Secret";
  } else if (std::holds_alternative<Namespace>(value)) {
    kind = "Namespace";
  } else {
    kind = std::get<UnsupportedObject>(value).kind;
  }
  return {kind, m.namespace_, m.name};
}

}  // namespace ballast::model
