#include "diff/json_diff.h"

#include <algorithm>
#include <cctype>
#include <map>
#include <set>

namespace ballast::diff {

using model::Json;

namespace {

bool IsNameKeyedList(std::string_view f) {
  return f == "containers" || f == "initContainers" || f == "ephemeralContainers" || f == "env" ||
         f == "volumes" || f == "imagePullSecrets" || f == "envFrom";
}

std::string PortKey(const Json& item, const char* number_field) {
  auto n = item.find(number_field);
  if (n == item.end() || !n->is_number_integer()) return "";
  std::string protocol = "TCP";
  if (auto p = item.find("protocol"); p != item.end() && p->is_string()) {
    protocol = p->get<std::string>();
  }
  return std::to_string(n->get<int64_t>()) + "/" + protocol;
}

// `s` in double quotes, for messages.
std::string Quoted(std::string_view s) {
  std::string out = "\"";
  out += s;
  out += '"';
  return out;
}

std::string StringField(const Json& item, const char* field) {
  auto it = item.find(field);
  if (it == item.end() || !it->is_string()) return "";
  return it->get<std::string>();
}

bool IsPlainIdentifier(std::string_view key) {
  if (key.empty()) return false;
  for (char c : key) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_' && c != '-') return false;
  }
  return true;
}

// The current position in both notations, grown and shrunk as the walk descends.
struct Cursor {
  std::string pointer;
  std::string field;
};

class Differ {
 public:
  explicit Differ(std::vector<FieldChange>* out) : out_(out) {}

  void Diff(const Json& a, const Json& b, Cursor& at, std::string_view name) {
    if (a == b) return;
    if (a.is_object() && b.is_object()) {
      DiffObjects(a, b, at);
      return;
    }
    if (a.is_array() && b.is_array() && DiffArrays(a, b, at, name)) return;
    Emit(at, ChangeOp::kReplace, a, b);
  }

 private:
  void Emit(const Cursor& at, ChangeOp op, const Json& a, const Json& b) {
    FieldChange c;
    c.path = at.pointer;
    c.field = at.field;
    c.op = op;
    if (op != ChangeOp::kAdd) c.old_value = a;
    if (op != ChangeOp::kRemove) c.new_value = b;
    out_->push_back(std::move(c));
  }

  template <typename F>
  void WithChild(Cursor& at, std::string_view pointer_seg, const std::string& field, F&& f) {
    size_t p = at.pointer.size(), q = at.field.size();
    at.pointer += '/';
    at.pointer += EscapePointerSegment(pointer_seg);
    std::string saved = std::move(at.field);
    at.field = field;
    f();
    at.pointer.resize(p);
    at.field = std::move(saved);
    (void)q;
  }

  void DiffObjects(const Json& a, const Json& b, Cursor& at) {
    // nlohmann's object is an ordered std::map: walk both in key order.
    auto ia = a.begin(), ib = b.begin();
    while (ia != a.end() || ib != b.end()) {
      int cmp;
      if (ia == a.end()) {
        cmp = 1;
      } else if (ib == b.end()) {
        cmp = -1;
      } else {
        cmp = ia.key().compare(ib.key());
      }
      if (cmp == 0) {
        const std::string& k = ia.key();
        WithChild(at, k, JoinField(at.field, k), [&] { Diff(*ia, *ib, at, k); });
        ++ia;
        ++ib;
      } else if (cmp < 0) {
        const std::string& k = ia.key();
        WithChild(at, k, JoinField(at.field, k), [&] { Emit(at, ChangeOp::kRemove, *ia, Json()); });
        ++ia;
      } else {
        const std::string& k = ib.key();
        WithChild(at, k, JoinField(at.field, k), [&] { Emit(at, ChangeOp::kAdd, Json(), *ib); });
        ++ib;
      }
    }
  }

  // Returns false when the arrays are to be replaced whole.
  bool DiffArrays(const Json& a, const Json& b, Cursor& at, std::string_view name) {
    auto keys_of = [&](const Json& list, bool by_name, std::vector<std::string>* keys) {
      keys->clear();
      std::set<std::string> seen;
      for (const auto& item : list) {
        std::string k = by_name ? StringField(item, "name") : ItemKey(name, item);
        if (k.empty() || !seen.insert(k).second) return false;
        keys->push_back(std::move(k));
      }
      return true;
    };
    std::vector<std::string> ka, kb;
    // Ports named on both sides are matched by name, so a port number change reads as one
    // change of that port rather than a port removed and another added.
    bool keyed = name == "ports" && keys_of(a, true, &ka) && keys_of(b, true, &kb);
    if (!keyed) keyed = keys_of(a, false, &ka) && keys_of(b, false, &kb);
    if (keyed && (!ka.empty() || !kb.empty())) {
      std::map<std::string, size_t> index_a;
      for (size_t i = 0; i < ka.size(); ++i) index_a[ka[i]] = i;
      std::set<std::string> in_b(kb.begin(), kb.end());
      for (size_t j = 0; j < kb.size(); ++j) {
        std::string field = at.field + "[" + kb[j] + "]";
        auto it = index_a.find(kb[j]);
        WithChild(at, std::to_string(j), field, [&] {
          if (it == index_a.end()) {
            Emit(at, ChangeOp::kAdd, Json(), b[j]);
          } else {
            Diff(a[it->second], b[j], at, "");
          }
        });
      }
      for (size_t i = 0; i < ka.size(); ++i) {
        if (in_b.count(ka[i])) continue;
        WithChild(at, std::to_string(i), at.field + "[" + ka[i] + "]",
                  [&] { Emit(at, ChangeOp::kRemove, a[i], Json()); });
      }
      return true;
    }
    // Unkeyed: item by item when only objects and the length is the same.
    if (a.size() != b.size() || a.empty()) return false;
    for (size_t i = 0; i < a.size(); ++i) {
      if (!a[i].is_object() || !b[i].is_object()) return false;
    }
    for (size_t i = 0; i < a.size(); ++i) {
      WithChild(at, std::to_string(i), at.field + "[" + std::to_string(i) + "]",
                [&] { Diff(a[i], b[i], at, ""); });
    }
    return true;
  }

  std::vector<FieldChange>* out_;
};

bool SegmentMatchesItem(const std::string& seg, std::string_view list_field, const Json& item,
                        size_t index) {
  if (seg == "*" || seg == std::to_string(index)) return true;
  if (!item.is_object()) return false;
  if (seg == ItemKey(list_field, item)) return true;
  if (seg == StringField(item, "name")) return true;
  for (const char* port_field : {"containerPort", "port"}) {
    auto it = item.find(port_field);
    if (it != item.end() && it->is_number_integer() && seg == std::to_string(it->get<int64_t>())) {
      return true;
    }
  }
  return false;
}

int RemoveAt(Json& node, const std::vector<std::string>& segs, size_t i,
             std::string_view field_name) {
  const std::string& seg = segs[i];
  bool last = i + 1 == segs.size();
  int removed = 0;
  if (node.is_object()) {
    if (seg == "*") {
      if (last) {
        removed = static_cast<int>(node.size());
        node = Json::object();
        return removed;
      }
      for (auto it = node.begin(); it != node.end(); ++it) {
        removed += RemoveAt(*it, segs, i + 1, it.key());
      }
      return removed;
    }
    auto it = node.find(seg);
    if (it == node.end()) return 0;
    if (last) {
      node.erase(it);
      return 1;
    }
    return RemoveAt(*it, segs, i + 1, seg);
  }
  if (node.is_array()) {
    if (last) {
      Json kept = Json::array();
      for (size_t k = 0; k < node.size(); ++k) {
        if (SegmentMatchesItem(seg, field_name, node[k], k)) {
          ++removed;
        } else {
          kept.push_back(std::move(node[k]));
        }
      }
      node = std::move(kept);
      return removed;
    }
    for (size_t k = 0; k < node.size(); ++k) {
      if (SegmentMatchesItem(seg, field_name, node[k], k)) {
        removed += RemoveAt(node[k], segs, i + 1, "");
      }
    }
  }
  return removed;
}

}  // namespace

bool JsonDeeperThan(const Json& value, int max_depth) {
  std::vector<std::pair<const Json*, int>> stack = {{&value, 0}};
  while (!stack.empty()) {
    auto [v, depth] = stack.back();
    stack.pop_back();
    if (!v->is_structured()) continue;
    if (depth + 1 > max_depth) return true;
    for (const auto& child : *v) stack.push_back({&child, depth + 1});
  }
  return false;
}

std::string DumpCompact(const Json& value) {
  return value.dump(-1, ' ', false, Json::error_handler_t::replace);
}

std::string ItemKey(std::string_view list_field, const Json& item) {
  if (!item.is_object()) return "";
  if (IsNameKeyedList(list_field)) {
    if (list_field == "envFrom") return "";  // no merge key in Kubernetes either
    return StringField(item, "name");
  }
  if (list_field == "volumeMounts" || list_field == "volumeDevices") {
    return StringField(item, list_field == "volumeMounts" ? "mountPath" : "devicePath");
  }
  if (list_field == "ports") {
    if (item.contains("containerPort")) return PortKey(item, "containerPort");
    return PortKey(item, "port");
  }
  if (list_field == "hostAliases") return StringField(item, "ip");
  return "";
}

Result<std::vector<std::string>> ParsePointer(std::string_view pointer) {
  if (pointer.empty() || pointer[0] != '/') {
    return InvalidArgument(Quoted(pointer) + " is not a JSON pointer: it must start with \"/\"");
  }
  std::vector<std::string> segs;
  std::string cur;
  for (size_t i = 1; i <= pointer.size(); ++i) {
    if (i == pointer.size() || pointer[i] == '/') {
      segs.push_back(std::move(cur));
      cur.clear();
      continue;
    }
    char c = pointer[i];
    if (c == '~') {
      if (i + 1 < pointer.size() && (pointer[i + 1] == '0' || pointer[i + 1] == '1')) {
        cur += pointer[i + 1] == '0' ? '~' : '/';
        ++i;
        continue;
      }
      return InvalidArgument(Quoted(pointer) +
                             " is not a JSON pointer: \"~\" must be followed by 0 or 1");
    }
    cur += c;
  }
  return segs;
}

std::string EscapePointerSegment(std::string_view segment) {
  if (segment.find_first_of("~/") == std::string_view::npos) return std::string(segment);
  std::string out;
  for (char c : segment) {
    if (c == '~') {
      out += "~0";
    } else if (c == '/') {
      out += "~1";
    } else {
      out += c;
    }
  }
  return out;
}

std::string JoinField(std::string_view parent, std::string_view key) {
  std::string out(parent);
  if (IsPlainIdentifier(key)) {
    if (!out.empty()) out += '.';
    out += key;
  } else {
    out += '[';
    out += DumpCompact(Json(std::string(key)));
    out += ']';
  }
  return out;
}

int RemoveAtPointer(Json& doc, const std::vector<std::string>& segments) {
  if (segments.empty()) return 0;  // the whole document is never ignored
  return RemoveAt(doc, segments, 0, "");
}

void DiffDocuments(const Json& old_doc, const Json& new_doc, std::vector<FieldChange>* out) {
  Differ d(out);
  Cursor at;
  d.Diff(old_doc, new_doc, at, "");
}

}  // namespace ballast::diff
