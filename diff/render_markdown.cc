#include "diff/render_markdown.h"

#include <algorithm>
#include <map>
#include <sstream>

#include "diff/render.h"

namespace ballast::diff {
namespace {

// Text inside HTML (the <summary> line): no markup from a manifest's names or messages.
std::string EscapeHtml(const std::string& s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\n':
      case '\r':
        out += ' ';
        break;
      default:
        out += c;
    }
  }
  return out;
}

// Text in a list item or a quote: Markdown's active characters escaped, one line, and no
// @mention (a word joiner after every '@': GitHub would notify whoever a manifest names).
std::string EscapeInline(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == '\n' || c == '\r') {
      out += ' ';
      continue;
    }
    if (std::string_view("\\`*_[]<>|~&#").find(c) != std::string_view::npos) out += '\\';
    out += c;
    if (c == '@') out += "\u2060";
  }
  return out;
}

// The longest run of backticks in `s`: a code span or fence around it must be longer.
size_t LongestBacktickRun(const std::string& s) {
  size_t longest = 0, run = 0;
  for (char c : s) {
    run = c == '`' ? run + 1 : 0;
    longest = std::max(longest, run);
  }
  return longest;
}

// A name as inline code: nothing in it is markup, a link or a mention. The backtick run is
// longer than any in the name; a '|' is escaped, which GitHub's tables need even in code.
std::string Code(const std::string& s) {
  std::string text;
  for (char c : s) {
    if (c == '|') text += '\\';
    text += c == '\n' || c == '\r' ? ' ' : c;
  }
  const std::string ticks(LongestBacktickRun(s) + 1, '`');
  const bool pad = !text.empty() && (text.front() == '`' || text.back() == '`');
  return ticks + (pad ? " " : "") + text + (pad ? " " : "") + ticks;
}

// A code fence longer than any run of backticks in `body`, so that nothing in it ends the block
// (CommonMark: the closing fence is at least as long as the opening one).
std::string Fence(const std::string& body) {
  return std::string(std::max<size_t>(3, LongestBacktickRun(body) + 1), '`');
}

std::string CutLines(const std::string& text, size_t max_lines, bool* cut) {
  size_t lines = 0, at = 0;
  while (at < text.size()) {
    size_t end = text.find('\n', at);
    end = end == std::string::npos ? text.size() : end + 1;
    if (++lines > max_lines) {
      *cut = true;
      return text.substr(0, at);
    }
    at = end;
  }
  *cut = false;
  return text;
}

std::string Verb(const ObjectPlan& o) {
  switch (o.action) {
    case Action::kCreate:
      return "create";
    case Action::kDelete:
      return "delete";
    case Action::kUpdate:
      return o.rollout == Rollout::kRollingUpdate ? "rolling update"
             : o.rollout == Rollout::kRecreate    ? "update (recreate)"
                                                  : "update";
    case Action::kRefused:
      return "REFUSED";
    default:
      return o.drift.empty() ? "no change" : "drift";
  }
}

bool Shown(const ObjectPlan& o) { return !o.in_sync() || !o.warnings.empty(); }

void ObjectSection(const ObjectPlan& o, const MarkdownOptions& options, std::string* out) {
  std::string summary =
      "<b>" + EscapeHtml(Verb(o)) + "</b> <code>" + EscapeHtml(o.key.ToString()) + "</code>";
  if (!o.changes.empty()) {
    summary += " (" + std::to_string(o.changes.size()) +
               (o.changes.size() == 1 ? " change)" : " changes)");
  }
  if (!o.drift.empty()) summary += " — " + std::to_string(o.drift.size()) + " drifted";
  *out += "<details><summary>" + summary + "</summary>\n\n";
  if (o.action == Action::kRefused && !o.message.empty()) {
    *out += "> **Refused:** " + EscapeInline(o.message) + "\n\n";
  }
  for (const auto& w : o.warnings) *out += "> **Warning:** " + EscapeInline(w) + "\n\n";
  for (const auto& d : o.drift) *out += "- drift: " + EscapeInline(d.message) + "\n";
  if (!o.drift.empty()) *out += "\n";
  // The unified diff when the documents are known (a local plan); the field changes otherwise.
  std::string body = o.old_doc.is_null() && o.new_doc.is_null() ? "" : RenderUnifiedDiff(o);
  std::string language = "diff";
  if (body.empty()) {
    body = RenderObjectText(o);
    language = "text";
  }
  bool cut = false;
  body = CutLines(body, options.max_diff_lines, &cut);
  if (const size_t most = options.max_chars / 4; body.size() > most) {  // a few very long lines
    body.resize(most);
    body += "\n";
    cut = true;
  }
  if (!body.empty()) {
    const std::string fence = Fence(body);
    *out += fence + language + "\n" + body + (body.back() == '\n' ? "" : "\n") + fence + "\n";
    if (cut) {
      *out += "\n*(cut: `ballast plan --diff` shows all)*\n";
    }
  }
  *out += "\n</details>\n\n";
}

}  // namespace

std::string RenderMarkdown(const Plan& plan, const MarkdownOptions& options) {
  std::string out =
      "### " + EscapeInline(options.title) + ": " + EscapeInline(RenderSummaryLine(plan)) + "\n\n";
  for (const auto& w : plan.warnings) out += "> **Warning:** " + EscapeInline(w) + "\n\n";

  // Per kind: how many objects each action touches.
  struct Row {
    int create = 0, update = 0, rolling = 0, del = 0, refused = 0, drift = 0;
  };
  std::map<std::string, Row> rows;
  for (const auto& o : plan.objects) {
    if (!Shown(o)) continue;
    Row& r = rows[o.key.kind];
    r.create += o.action == Action::kCreate;
    r.update += o.action == Action::kUpdate;
    r.rolling += o.action == Action::kUpdate && o.rollout != Rollout::kNone;
    r.del += o.action == Action::kDelete;
    r.refused += o.action == Action::kRefused;
    r.drift += !o.drift.empty();
  }
  // Everything below within the comment's budget; what does not fit is counted and said.
  const size_t budget = options.max_chars > 400 ? options.max_chars - 400 : 0;
  size_t left_out = 0;
  auto add = [&](const std::string& piece) {
    if (left_out == 0 && out.size() + piece.size() <= budget) {
      out += piece;
    } else {
      ++left_out;
    }
  };
  if (!rows.empty()) {
    std::string table =
        "| Kind | Create | Update | of which roll pods | Delete | Refused | Drifted |\n"
        "|---|---:|---:|---:|---:|---:|---:|\n";
    for (const auto& [kind, r] : rows) {
      table += "| " + Code(kind) + " | " + std::to_string(r.create) + " | " +
               std::to_string(r.update) + " | " + std::to_string(r.rolling) + " | " +
               std::to_string(r.del) + " | " + std::to_string(r.refused) + " | " +
               std::to_string(r.drift) + " |\n";
    }
    add(table + "\n");
  }
  for (const auto& o : plan.objects) {
    if (!Shown(o)) continue;
    std::string section;
    ObjectSection(o, options, &section);
    add(section);
  }
  if (plan.scheduler) {
    std::string dry = "**Scheduler dry-run:** ";
    if (plan.scheduler->all_placed) dry += "all pods placed.";
    dry += "\n";
    for (const auto& n : plan.scheduler->notes) {
      dry += std::string("- ") + (n.problem ? "**Cannot place:** " : "") +
             (n.object.empty() ? "" : Code(n.object) + ": ") + EscapeInline(n.message) + "\n";
    }
    add(dry + "\n");
  }
  std::string kept;
  for (const auto& o : plan.objects) {
    if (o.action == Action::kUnsupported || o.action == Action::kPruneSkipped) {
      kept += (kept.empty() ? "<sub>Not applied: " : ", ") + Code(o.key.ToString()) + " (" +
              (o.action == Action::kUnsupported ? "not run by ballast" : "kept: prune off") + ")";
    }
  }
  if (!kept.empty()) add(kept + ".</sub>\n");
  if (left_out > 0) {
    out += "\n*" + std::to_string(left_out) + " more part" + (left_out == 1 ? "" : "s") +
           " left out: a comment holds at most " + std::to_string(options.max_chars) +
           " characters; `ballast plan` prints the whole plan.*\n";
  }
  return out;
}

}  // namespace ballast::diff
