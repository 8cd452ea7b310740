#include "diff/redact.h"

#include <string>
#include <vector>

namespace ballast::diff {
namespace {

using model::Json;

void RedactEnvItem(Json& item, std::string_view mark) {
  if (!item.is_object()) return;
  auto v = item.find("value");
  if (v != item.end() && !v->is_null()) *v = mark;
}

void RedactEnvList(Json& list, std::string_view mark) {
  if (!list.is_array()) return;
  for (auto& item : list) RedactEnvItem(item, mark);
}

void RedactSecretData(Json& data, std::string_view mark) {
  if (!data.is_object()) {
    if (!data.is_null()) data = mark;
    return;
  }
  for (auto& [k, v] : data.items()) v = mark;
}

// A Secret's top-level fields that hold no value of its: everything else is redacted (data,
// stringData, and a misspelt "stringdata" that a warning let through).
bool SecretFieldIsPublic(const std::string& field) {
  return field == "apiVersion" || field == "kind" || field == "metadata" || field == "type" ||
         field == "immutable";
}

// Every env list anywhere under `j`.
void RedactWalk(Json& j, std::string_view mark) {
  if (j.is_object()) {
    for (auto& [k, v] : j.items()) {
      if (k == "env" && v.is_array()) {
        RedactEnvList(v, mark);
      } else {
        RedactWalk(v, mark);
      }
    }
  } else if (j.is_array()) {
    for (auto& v : j) RedactWalk(v, mark);
  }
}

// "/a/b~1c/0" -> {"a", "b/c", "0"}.
std::vector<std::string> PointerSegments(const std::string& pointer) {
  std::vector<std::string> out;
  size_t i = 0;
  while (i < pointer.size() && pointer[i] == '/') {
    const size_t next = pointer.find('/', i + 1);
    std::string seg = pointer.substr(i + 1, next == std::string::npos ? next : next - i - 1);
    for (size_t p = 0; (p = seg.find('~', p)) != std::string::npos; ++p) {
      if (p + 1 < seg.size()) seg.replace(p, 2, seg[p + 1] == '1' ? "/" : "~");
    }
    out.push_back(std::move(seg));
    if (next == std::string::npos) break;
    i = next;
  }
  return out;
}

// Redacts `value`, which sits at `pointer` in a document of a Secret or not.
void RedactAt(Json& value, const std::string& pointer, bool secret_kind, std::string_view mark) {
  const std::vector<std::string> seg = PointerSegments(pointer);
  if (secret_kind && !seg.empty() && !SecretFieldIsPublic(seg[0])) {
    if (seg.size() == 1) {
      RedactSecretData(value, mark);
    } else {
      value = mark;
    }
    return;
  }
  for (size_t i = 0; i < seg.size(); ++i) {
    if (seg[i] != "env") continue;
    const size_t below = seg.size() - i - 1;  // segments below the env list
    if (below == 0) return RedactEnvList(value, mark);
    if (below == 1) return RedactEnvItem(value, mark);
    if (below == 2 && seg[i + 2] == "value" && !value.is_null()) value = mark;
    if (below >= 2) return;  // name, valueFrom: not secret
  }
  if (secret_kind && seg.empty()) {
    RedactDocument(value, true);
    return;
  }
  RedactWalk(value, mark);
}

}  // namespace

void RedactDocument(Json& doc, bool secret_kind) {
  if (secret_kind && doc.is_object()) {
    for (auto& [field, value] : doc.items()) {
      if (!SecretFieldIsPublic(field)) RedactSecretData(value, kRedacted);
    }
  }
  RedactWalk(doc, kRedacted);
}

namespace {

// Every kind's secret values, or only those of Secrets.
Plan RedactedIn(Plan plan, bool every_kind) {
  for (auto& o : plan.objects) {
    const bool secret = o.key.kind == "Secret";
    if (!secret && !every_kind) continue;
    RedactDocument(o.old_doc, secret);
    RedactDocument(o.new_doc, secret);
    for (auto& c : o.changes) {
      RedactAt(c.old_value, c.path, secret, kRedacted);
      RedactAt(c.new_value, c.path, secret, kRedactedChanged);
      // The desired document shows the change too, so the unified diff has a line for it.
      if (c.op != ChangeOp::kRemove && o.new_doc.is_object()) {
        try {
          const Json::json_pointer at(c.path);
          if (o.new_doc.contains(at)) RedactAt(o.new_doc[at], c.path, secret, kRedactedChanged);
        } catch (const Json::exception&) {
          // Not a pointer into the document: its values are redacted already.
        }
      }
    }
  }
  return plan;
}

}  // namespace

Plan Redacted(Plan plan) { return RedactedIn(std::move(plan), /*every_kind=*/true); }

Plan WithoutSecretData(Plan plan) { return RedactedIn(std::move(plan), /*every_kind=*/false); }

}  // namespace ballast::diff
