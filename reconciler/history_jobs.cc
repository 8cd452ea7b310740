#include "reconciler/history_jobs.h"

#include <malloc.h>

#include "log/log.h"
#include "model/codec.h"
#include "model/rfc3339.h"

namespace ballast::reconciler {
namespace {

using model::Json;

// Objects stored in a history entry, parsed back.
// Sealed objects (model::SealSops) open with the identity that opened their source.
Result<std::vector<model::Manifest>> ParseEntryObjects(const git::HistoryEntryContents& c,
                                                       const model::SopsKeyring* sops) {
  // Entries were applied under the rules of their day: what a newer ballast validates more
  // strictly is read all the same (kept, its errors as warnings), or an upgrade could not start.
  model::ParseLimits limits;
  limits.keep_invalid = true;
  limits.sops = sops;
  auto set = model::ParseManifests(c.objects, limits);
  for (const auto& d : set.diagnostics) {
    // A sealed object the identity given now does not open: left out of the entry's state (the
    // source applies it again), and said.
    if (!d.is_error() && d.message.rfind("SOPS", 0) == 0) {
      LogEvent(LogLevel::kWarn, "history_sops",
               {{"entry", std::to_string(c.entry.id)}, {"problem", d.ToString()}});
    }
  }
  if (!set.ok()) {
    for (const auto& d : set.diagnostics) {
      if (d.is_error()) {
        return Internal("history entry #" + std::to_string(c.entry.id) + ": " + d.ToString());
      }
    }
  }
  return std::move(set.manifests);
}

Result<AppliedState> StateOf(const git::HistoryEntryContents& contents,
                             const model::SopsKeyring* sops) {
  auto objects = ParseEntryObjects(contents, sops);
  if (!objects.ok()) return objects.status();
  return AppliedState{std::move(*objects), contents.source_files, contents.entry.record.source_sha};
}

}  // namespace

Json HistoryItemJson(const git::HistoryEntry& e) {
  return {{"id", e.id},
          {"revision", e.record.source_sha},
          {"time", e.record.time},
          {"trigger", e.record.trigger},
          {"result", e.record.result},
          {"message", e.record.message},
          {"commit", e.commit}};
}

Result<StartupHistory> HistoryJobs::LoadAtStart() {
  StartupHistory out;
  auto latest = history_->LatestId();
  if (!latest.ok()) return latest.status();
  out.latest = *latest;
  if (*latest > 0) {
    auto contents = history_->Read(*latest);
    if (!contents.ok()) return contents.status();
    auto state = StateOf(*contents, source_config_.parse_limits.sops);
    if (!state.ok()) return state.status();
    out.applied = std::move(*state);
    // Older revisions' templates, to adopt the pods of a rollout that was under way.
    for (int64_t id = *latest - 1; id > 0 && id > *latest - 5; --id) {
      auto c = history_->Read(id);
      if (!c.ok()) break;
      auto o = ParseEntryObjects(*c, source_config_.parse_limits.sops);
      if (o.ok()) out.older_objects.insert(out.older_objects.end(), o->begin(), o->end());
    }
  }
  // The pin survives restarts.
  auto pinned = pins_->Load();
  if (!pinned.ok()) return pinned.status();
  if (*pinned) {
    auto contents = history_->Read(**pinned);
    if (!contents.ok()) return contents.status().WithContext("pinned entry");
    auto state = StateOf(*contents, source_config_.parse_limits.sops);
    if (!state.ok()) return state.status().WithContext("pinned entry");
    out.pinned = **pinned;
    out.pinned_state = std::move(*state);
  }
  return out;
}

Result<int64_t> HistoryJobs::Append(const HistoryAppend& h) {
  git::HistoryRecord r;
  r.source_url = source_config_.remote.url;
  r.source_ref = source_config_.ref;
  r.source_path = source_config_.path;
  r.source_sha = h.sha;
  r.time = model::FormatRfc3339(clock_->WallMs());
  r.trigger = h.trigger;
  r.result = "Succeeded";
  r.plan_summary = h.plan_summary;
  r.history_rewrite = h.history_rewrite;
  r.message = h.message;
  auto entry = history_->Append(r, h.files, h.objects);
  if (!entry.ok()) return entry.status();
  // Reading, parsing, planning and recording a new revision leave tens of MB freed in the
  // threads' malloc arenas (at 10,000 objects); give them back instead of holding them.
  ::malloc_trim(0);
  return entry->id;
}

Result<Json> HistoryJobs::ListJson(int64_t before, size_t limit) {
  auto list = history_->List(before, limit);
  if (!list.ok()) return list.status();
  Json items = Json::array();
  for (const auto& e : *list) items.push_back(HistoryItemJson(e));
  return Json{{"items", items}};
}

Result<EntryObjects> HistoryJobs::ReadObjects(int64_t id) {
  auto contents = history_->Read(id);
  if (!contents.ok()) return contents.status();
  auto objects = ParseEntryObjects(*contents, source_config_.parse_limits.sops);
  if (!objects.ok()) return objects.status();
  return EntryObjects{id, contents->entry.record.source_sha, std::move(*objects),
                      contents->source_files};
}

Result<git::RestoreResult> HistoryJobs::Restore(const git::HistoryEntryContents& contents,
                                                const std::string& requested_by) {
  git::RestoreRequest r;
  r.entry_id = contents.entry.id;
  r.source_sha = contents.entry.record.source_sha;
  r.files = contents.source_files;
  r.requested_by = requested_by;
  return source_->Restore(r);
}

Result<HistoryJobs::Restored> HistoryJobs::Rollback(int64_t id, const std::string& requested_by) {
  auto contents = history_->Read(id);
  if (!contents.ok()) return contents.status();
  auto result = Restore(*contents, requested_by);
  if (result.ok()) return Restored{id, contents->entry.record.source_sha, std::move(*result)};
  const Status& st = result.status();
  std::string message = "rollback to #" + std::to_string(id) + ": " + st.message();
  if (st.code() == StatusCode::kPermissionDenied) {
    message += " (the manifest repository cannot be pushed to; `ballast rollback " +
               std::to_string(id) + " --pin` holds that entry instead)";
  }
  return Status(st.code(), message);
}

Result<AppliedState> HistoryJobs::Pin(int64_t id) {
  auto contents = history_->Read(id);
  if (!contents.ok()) return contents.status();
  auto state = StateOf(*contents, source_config_.parse_limits.sops);
  if (!state.ok()) return state.status();
  if (Status s = pins_->Store(id); !s.ok()) return s;
  return state;
}

Status HistoryJobs::Unpin() { return pins_->Clear(); }

Result<HistoryJobs::Restored> HistoryJobs::AutoRollback(const reconciler::AutoRollback& a) {
  auto list = history_->List(0, 100);
  if (!list.ok()) return list.status();
  for (const auto& e : *list) {
    auto contents = history_->Read(e.id);
    if (!contents.ok()) continue;
    auto objects = ParseEntryObjects(*contents, source_config_.parse_limits.sops);
    if (!objects.ok()) continue;
    bool match = false;
    for (const auto& m : *objects) {
      if (m.key() == a.key && m.deployment() != nullptr &&
          model::PodTemplateHash(m.deployment()->spec.template_) == a.to_revision) {
        match = true;
      }
    }
    if (!match) continue;
    auto result =
        Restore(*contents, "auto-rollback of " + a.key.ToString() + " (ProgressDeadlineExceeded)");
    if (!result.ok()) return result.status().WithContext("entry #" + std::to_string(e.id));
    return Restored{e.id, e.record.source_sha, std::move(*result)};
  }
  return NotFound("no history entry runs " + a.to_revision);
}

}  // namespace ballast::reconciler
