#include "model/object.h"

#include <algorithm>
#include <charconv>

namespace ballast::model {

std::string ObjectKey::ToString() const { return kind + " " + namespace_ + "/" + name; }

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
  } else {
    kind = std::get<UnsupportedObject>(value).kind;
  }
  return {kind, m.namespace_, m.name};
}

}  // namespace ballast::model
