#include "diff/render.h"

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
        if (auto im = c.find("image"); im != c.end()) {
          *out += prefix + base + ".image: " + FormatValue(*im) + "\n";
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
  out += ".\n";
  return out;
}

std::string RenderUnifiedDiff(const ObjectPlan& o) {
  std::string name = o.key.kind + "/" + o.key.namespace_ + "/" + o.key.name;
  std::string a = o.old_doc.is_null() ? "" : model::ToYaml(o.old_doc);
  std::string b = o.new_doc.is_null() ? "" : model::ToYaml(o.new_doc);
  return UnifiedDiff(a, b, o.old_doc.is_null() ? "/dev/null" : "a/" + name,
                     o.new_doc.is_null() ? "/dev/null" : "b/" + name);
}

Json ToJson(const Plan& plan, const JsonOptions& options) {
  PlanCounts c = plan.counts();
  Json objects = Json::array();
  for (const auto& o : plan.objects) {
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
