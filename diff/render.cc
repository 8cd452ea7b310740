#include "diff/render.h"

#include <algorithm>

#include "diff/json_diff.h"
#include "diff/unified.h"
#include "model/codec.h"

namespace ballast::diff {

using model::Json;

namespace {

const char* Symbol(const ObjectPlan& o) {
  switch (o.action) {
    case Action::kCreate:
      return "+";
    case Action::kUpdate:
      return "+/-";
    case Action::kDelete:
      return "-";
    case Action::kRefused:
      return "!";
    case Action::kUnsupported:
      return "?";
    case Action::kPruneSkipped:
      return "=";
    case Action::kUnchanged:
      return o.drift.empty() ? " " : "~";
  }
  return " ";
}

std::string Count(size_t n, const char* one, const char* many) {
  return std::to_string(n) + " " + (n == 1 ? one : many);
}

std::string Header(const ObjectPlan& o) {
  std::string h = std::string(Symbol(o)) + " " + o.key.ToString() + " (";
  switch (o.action) {
    case Action::kCreate:
      h += "create";
      break;
    case Action::kDelete:
      h += "delete";
      if (o.old_doc.is_null()) h += ": orphan pods";
      break;
    case Action::kUpdate:
      h += "update: ";
      switch (o.rollout) {
        case Rollout::kRollingUpdate:
          h += "forces rolling update";
          break;
        case Rollout::kRecreate:
          h += "forces recreate";
          break;
        default:
          h += "in place";
      }
      h += ", " + Count(o.changes.size(), "change", "changes");
      break;
    case Action::kRefused:
      h += "update refused, " + Count(o.changes.size(), "change", "changes");
      break;
    case Action::kUnsupported:
      h += "unsupported: " + o.api_version + " " + o.key.kind + " is not run by ballast";
      break;
    case Action::kPruneSkipped:
      h += std::string("not in git: kept, ") + model::kAnnotationPrune + " is \"false\"";
      break;
    case Action::kUnchanged:
      h += o.drift.empty() ? "unchanged" : "drift: " + Count(o.drift.size(), "reason", "reasons");
      break;
  }
  return h + ")\n";
}

// The key a list item is shown with: its name where it has one, else its merge key.
std::string DisplayKey(std::string_view list_name, const Json& item, size_t index) {
  if (item.is_object()) {
    if (auto n = item.find("name"); n != item.end() && n->is_string() && list_name == "ports") {
      return n->get<std::string>();
    }
  }
  std::string key = ItemKey(list_name, item);
  return key.empty() ? std::to_string(index) : key;
}

// One line per leaf of `value` under `field`, for added and removed subtrees. Empty maps and
// lists inside them (defaults such as `resources: {}`) are left out.
void Leaves(const Json& value, const std::string& field, std::string_view list_name,
            const std::string& prefix, bool nested, std::string* out) {
  if ((value.is_object() || value.is_array()) && value.empty() && nested) return;
  if (value.is_object() && !value.empty()) {
    for (auto it = value.begin(); it != value.end(); ++it) {
      Leaves(*it, JoinField(field, it.key()), it.key(), prefix, true, out);
    }
    return;
  }
  if (value.is_array() && !value.empty() && value[0].is_object()) {
    for (size_t i = 0; i < value.size(); ++i) {
      Leaves(value[i], field + "[" + DisplayKey(list_name, value[i], i) + "]", "", prefix, true,
             out);
    }
    return;
  }
  *out += prefix + field + ": " + FormatValue(value) + "\n";
}

constexpr const char* kIndent = "    ";

void ChangeLines(const FieldChange& c, std::string* out) {
  std::string list_name;
  if (auto slash = c.path.rfind('/'); slash != std::string::npos) {
    list_name = c.path.substr(slash + 1);
  }
  switch (c.op) {
    case ChangeOp::kAdd:
      Leaves(c.new_value, c.field, list_name, std::string(kIndent) + "+ ", false, out);
      break;
    case ChangeOp::kRemove:
      Leaves(c.old_value, c.field, list_name, std::string(kIndent) + "- ", false, out);
      break;
    case ChangeOp::kReplace:
      *out += std::string(kIndent) + "+/- " + c.field + ": " + FormatValue(c.old_value) + " => " +
              FormatValue(c.new_value) + "\n";
      break;
  }
}

// What a reviewer wants to see of a whole new or removed object.
void SummaryLines(const ObjectPlan& o, const Json& doc, const char* sign, std::string* out) {
  if (!doc.is_object()) return;
  std::string prefix = std::string(kIndent) + sign + " ";
  auto spec = doc.find("spec");
  if (spec == doc.end() || !spec->is_object()) return;
  if (o.key.kind == "Deployment") {
    if (auto r = spec->find("replicas"); r != spec->end()) {
      *out += prefix + "spec.replicas: " + FormatValue(*r) + "\n";
    }
    const Json* containers = nullptr;
    if (auto t = spec->find("template"); t != spec->end() && t->is_object()) {
      if (auto ps = t->find("spec"); ps != t->end() && ps->is_object()) {
        if (auto c = ps->find("containers"); c != ps->end() && c->is_array()) containers = &*c;
      }
    }
    if (containers != nullptr) {
      for (const auto& c : *containers) {
        std::string base = "spec.template.spec.containers[" + ItemKey("containers", c) + "]";
        // ballast runs processes: a container may have a command and no image.
        if (auto im = c.find("image"); im != c.end() && !(im->is_string() && im->empty())) {
          *out += prefix + base + ".image: " + FormatValue(*im) + "\n";
        } else if (auto cmd = c.find("command"); cmd != c.end()) {
          *out += prefix + base + ".command: " + FormatValue(*cmd) + "\n";
        }
      }
    }
  } else if (o.key.kind == "Service") {
    if (auto t = spec->find("type"); t != spec->end()) {
      *out += prefix + "spec.type: " + FormatValue(*t) + "\n";
    }
    if (auto ports = spec->find("ports"); ports != spec->end() && ports->is_array()) {
      for (const auto& p : *ports) {
        *out += prefix + "spec.ports[" + DisplayKey("ports", p, 0) + "]: " + FormatValue(p) + "\n";
      }
    }
  }
}

void RevisionLine(const ObjectPlan& o, std::string* out) {
  std::string line;
  if (o.action == Action::kCreate && !o.new_revision.empty()) {
    line = "revision: " + o.new_revision;
  } else if (o.action == Action::kUpdate &&
             (o.rollout == Rollout::kRollingUpdate || o.rollout == Rollout::kRecreate)) {
    line = "revision: " + o.old_revision + " => " + o.new_revision;
  }
  if (!line.empty()) *out += std::string(kIndent) + "  " + line + "\n";
}

std::string Block(const ObjectPlan& o) {
  std::string out = Header(o);
  // The header already says why for the other actions; the JSON carries the message.
  if (!o.message.empty() && o.action == Action::kRefused) {
    out +=
        std::string(kIndent) + (o.action == Action::kRefused ? "error: " : "") + o.message + "\n";
  }
  for (const auto& w : o.warnings) out += std::string(kIndent) + "warning: " + w + "\n";
  if (o.action == Action::kCreate) SummaryLines(o, o.new_doc, "+", &out);
  if (o.action == Action::kDelete) SummaryLines(o, o.old_doc, "-", &out);
  for (const auto& c : o.changes) ChangeLines(c, &out);
  RevisionLine(o, &out);
  for (const auto& d : o.drift) out += std::string(kIndent) + "! " + d.message + "\n";
  return out;
}

Json DryRunJson(const std::optional<SchedulerDryRun>& s) {
  if (!s) return nullptr;
  Json notes = Json::array();
  for (const auto& n : s->notes) {
    notes.push_back({{"object", n.object}, {"message", n.message}, {"problem", n.problem}});
  }
  return {{"allPlaced", s->all_placed}, {"notes", std::move(notes)}};
}

}  // namespace

std::string FormatValue(const Json& value) { return DumpCompact(value); }

std::string RenderText(const Plan& plan, const TextOptions& options) {
  std::string out;
  for (const auto& w : plan.warnings) out += "warning: " + w + "\n\n";
  for (const auto& o : plan.objects) {
    bool shown = !o.in_sync() || o.action == Action::kUnsupported ||
                 o.action == Action::kPruneSkipped || !o.warnings.empty() || options.verbose;
    if (!shown) continue;
    out += Block(o);
    out += "\n";
  }
  out += "Scheduler dry-run:\n";
  if (!plan.scheduler) {
    out += "- not run\n";
  } else {
    if (plan.scheduler->all_placed) out += "- All pods placed.\n";
    for (const auto& n : plan.scheduler->notes) {
      out += std::string("- ") + (n.problem ? "WARNING: " : "") +
             (n.object.empty() ? "" : n.object + ": ") + n.message + "\n";
    }
  }
  out += "\n";
  return out + RenderSummaryLine(plan) + "\n";
}

std::string RenderObjectText(const ObjectPlan& object) { return Block(object); }

std::string RenderSummaryLine(const Plan& plan) {
  std::string out;
  PlanCounts c = plan.counts();
  if (!plan.has_changes()) {
    out += "No changes: " + std::to_string(c.unchanged) + " unchanged";
  } else {
    out += "Plan: " + std::to_string(c.create) + " to create, " + std::to_string(c.update) +
           " to update";
    if (c.rolling > 0) out += " (" + std::to_string(c.rolling) + " rolling)";
    out += ", " + std::to_string(c.del) + " to delete";
    if (c.refused > 0) out += ", " + std::to_string(c.refused) + " refused";
    if (c.drift > 0) out += ", " + std::to_string(c.drift) + " drifted";
    out += "; " + std::to_string(c.unchanged) + " unchanged";
  }
  if (c.unsupported > 0) out += ", " + std::to_string(c.unsupported) + " unsupported";
  if (c.prune_skipped > 0) out += ", " + std::to_string(c.prune_skipped) + " kept";
  return out + ".";
}

std::string RenderUnifiedDiff(const ObjectPlan& o) {
  std::string name = o.key.namespace_.empty()
                         ? o.key.kind + "/" + o.key.name
                         : o.key.kind + "/" + o.key.namespace_ + "/" + o.key.name;
  std::string a = o.old_doc.is_null() ? "" : model::ToYaml(o.old_doc);
  std::string b = o.new_doc.is_null() ? "" : model::ToYaml(o.new_doc);
  return UnifiedDiff(a, b, o.old_doc.is_null() ? "/dev/null" : "a/" + name,
                     o.new_doc.is_null() ? "/dev/null" : "b/" + name);
}

Json ToJson(const Plan& plan, const JsonOptions& options) {
  PlanCounts c = plan.counts();
  Json objects = Json::array();
  for (const auto& o : plan.objects) {
    if (options.out_of_sync_only && o.in_sync() && o.warnings.empty() &&
        o.action != Action::kUnsupported && o.action != Action::kPruneSkipped) {
      continue;
    }
    Json changes = Json::array();
    for (const auto& ch : o.changes) {
      Json j = {{"path", ch.path},
                {"field", ch.field},
                {"op", ChangeOpName(ch.op)},
                {"forcesRollout", ch.forces_rollout}};
      if (ch.op != ChangeOp::kAdd) j["old"] = ch.old_value;
      if (ch.op != ChangeOp::kRemove) j["new"] = ch.new_value;
      changes.push_back(std::move(j));
    }
    Json drift = Json::array();
    for (const auto& d : o.drift) {
      drift.push_back(
          {{"reason", DriftKindName(d.kind)}, {"message", d.message}, {"pods", d.pods}});
    }
    Json j = {{"kind", o.key.kind},
              {"namespace", o.key.namespace_},
              {"name", o.key.name},
              {"apiVersion", o.api_version},
              {"action", ActionName(o.action)},
              {"rollout", RolloutName(o.rollout)},
              {"inSync", o.in_sync()},
              {"oldRevision", o.old_revision},
              {"newRevision", o.new_revision},
              {"message", o.message},
              {"warnings", o.warnings},
              {"changes", std::move(changes)},
              {"drift", std::move(drift)}};
    if (options.include_diff && o.is_change()) j["diff"] = RenderUnifiedDiff(o);
    if (options.include_documents) {
      j["old"] = o.old_doc;
      j["new"] = o.new_doc;
    }
    objects.push_back(std::move(j));
  }
  return {{"changed", plan.has_changes()},
          {"refused", plan.has_refused()},
          {"liveKnown", plan.live_known},
          {"summary",
           {{"create", c.create},
            {"update", c.update},
            {"rolling", c.rolling},
            {"delete", c.del},
            {"unchanged", c.unchanged},
            {"pruneSkipped", c.prune_skipped},
            {"unsupported", c.unsupported},
            {"refused", c.refused},
            {"drift", c.drift}}},
          {"warnings", plan.warnings},
          {"objects", std::move(objects)},
          {"schedulerDryRun", DryRunJson(plan.scheduler)}};
}

}  // namespace ballast::diff

namespace ballast::diff {
namespace {

template <typename Enum>
bool ParseName(const Json& j, const char* (*name)(Enum), std::initializer_list<Enum> all,
               Enum* out) {
  if (!j.is_string()) return false;
  for (Enum e : all) {
    if (j.get<std::string>() == name(e)) {
      *out = e;
      return true;
    }
  }
  return false;
}

std::string Str(const Json& j, const char* key) {
  auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : "";
}

std::vector<std::string> Strings(const Json& j, const char* key) {
  std::vector<std::string> out;
  auto it = j.find(key);
  if (it == j.end() || !it->is_array()) return out;
  for (const auto& s : *it) {
    if (s.is_string()) out.push_back(s.get<std::string>());
  }
  return out;
}

Result<ObjectPlan> ObjectFromJson(const Json& j) {
  if (!j.is_object()) return InvalidArgument("want an object");
  ObjectPlan o;
  o.key = {Str(j, "kind"), Str(j, "namespace"), Str(j, "name")};
  o.api_version = Str(j, "apiVersion");
  if (!ParseName(j.value("action", Json()), ActionName,
                 {Action::kCreate, Action::kUpdate, Action::kDelete, Action::kUnchanged,
                  Action::kPruneSkipped, Action::kUnsupported, Action::kRefused},
                 &o.action)) {
    return InvalidArgument("action: unknown value " + DumpCompact(j.value("action", Json())));
  }
  // A document ballast does not run is listed as it is, a nameless one too (a
  // kustomization.yaml, a kind nobody named): only objects ballast acts on need a name.
  if (o.key.kind.empty() || (o.key.name.empty() && o.action != Action::kUnsupported)) {
    return InvalidArgument("kind and name required");
  }
  if (!ParseName(j.value("rollout", Json("none")), RolloutName,
                 {Rollout::kNone, Rollout::kInPlace, Rollout::kRollingUpdate, Rollout::kRecreate},
                 &o.rollout)) {
    return InvalidArgument("rollout: unknown value");
  }
  o.old_revision = Str(j, "oldRevision");
  o.new_revision = Str(j, "newRevision");
  o.message = Str(j, "message");
  o.warnings = Strings(j, "warnings");
  if (auto cs = j.find("changes"); cs != j.end() && cs->is_array()) {
    for (size_t i = 0; i < cs->size(); ++i) {
      const Json& c = (*cs)[i];
      FieldChange fc;
      if (!c.is_object() ||
          !ParseName(c.value("op", Json()), ChangeOpName,
                     {ChangeOp::kAdd, ChangeOp::kRemove, ChangeOp::kReplace}, &fc.op)) {
        return InvalidArgument("changes[" + std::to_string(i) + "]: want an op");
      }
      fc.path = Str(c, "path");
      fc.field = Str(c, "field");
      fc.old_value = c.value("old", Json());
      fc.new_value = c.value("new", Json());
      fc.forces_rollout = c.value("forcesRollout", false);
      o.changes.push_back(std::move(fc));
    }
  }
  if (auto ds = j.find("drift"); ds != j.end() && ds->is_array()) {
    for (size_t i = 0; i < ds->size(); ++i) {
      const Json& d = (*ds)[i];
      Drift dr;
      if (!d.is_object() || !ParseName(d.value("reason", Json()), DriftKindName,
                                       {DriftKind::kReplicasMissing, DriftKind::kExtraReplicas,
                                        DriftKind::kOldRevision, DriftKind::kNodeGone,
                                        DriftKind::kNodeNotReady, DriftKind::kOrphanPods},
                                       &dr.kind)) {
        return InvalidArgument("drift[" + std::to_string(i) + "]: unknown reason");
      }
      dr.message = Str(d, "message");
      dr.pods = Strings(d, "pods");
      o.drift.push_back(std::move(dr));
    }
  }
  o.old_doc = j.value("old", Json());
  o.new_doc = j.value("new", Json());
  return o;
}

}  // namespace

namespace {

Result<Plan> PlanFromJsonOrThrow(const Json& json) {
  if (!json.is_object()) return InvalidArgument("plan: want a JSON object");
  Plan plan;
  plan.live_known = json.value("liveKnown", false);
  plan.warnings = Strings(json, "warnings");
  auto objects = json.find("objects");
  if (objects == json.end() || !objects->is_array()) {
    return InvalidArgument("plan: \"objects\" must be a list");
  }
  for (size_t i = 0; i < objects->size(); ++i) {
    auto o = ObjectFromJson((*objects)[i]);
    if (!o.ok()) return o.status().WithContext("plan: objects[" + std::to_string(i) + "]");
    plan.objects.push_back(std::move(*o));
  }
  std::sort(plan.objects.begin(), plan.objects.end(),
            [](const ObjectPlan& a, const ObjectPlan& b) { return a.key < b.key; });
  if (auto s = json.find("schedulerDryRun"); s != json.end() && s->is_object()) {
    SchedulerDryRun dry;
    dry.all_placed = s->value("allPlaced", true);
    if (auto notes = s->find("notes"); notes != s->end() && notes->is_array()) {
      for (const auto& n : *notes) {
        if (!n.is_object()) continue;
        dry.notes.push_back({Str(n, "object"), Str(n, "message"), n.value("problem", false)});
      }
    }
    plan.scheduler = std::move(dry);
  }
  return plan;
}

}  // namespace

Result<Plan> PlanFromJson(const Json& json) {
  if (JsonDeeperThan(json, kMaxJsonDepth + 10)) {  // plans hold documents a few levels down
    return InvalidArgument("plan: nested deeper than " + std::to_string(kMaxJsonDepth + 10) +
                           " levels");
  }
  try {
    return PlanFromJsonOrThrow(json);
  } catch (const Json::exception& e) {
    // A field of the wrong type (value() throws): the adapter's error, not an exception.
    return InvalidArgument(std::string("plan: ") + e.what());
  }
}

}  // namespace ballast::diff
