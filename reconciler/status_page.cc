#include "reconciler/status_page.h"

#include <string>
#include <vector>

#include "status_page_assets.h"  // generated from status_page.css and status_page.js

namespace ballast::reconciler {
namespace {

using model::Json;

const Json& EmptyArray() {
  static const Json kEmpty = Json::array();
  return kEmpty;
}

// A field shown as text: strings as they are, numbers and booleans as JSON, absent or null as "".
// Never throws, whatever the document holds (invalid UTF-8 is replaced).
std::string Text(const Json& v) {
  if (v.is_string()) return v.get<std::string>();
  if (v.is_null() || v.is_discarded()) return "";
  return v.dump(-1, ' ', false, Json::error_handler_t::replace);
}

std::string Field(const Json& doc, const char* key) {
  if (!doc.is_object()) return "";
  auto it = doc.find(key);
  return it == doc.end() ? "" : Text(*it);
}

const Json& Member(const Json& doc, const char* key) {
  static const Json kNull;
  if (!doc.is_object()) return kNull;
  auto it = doc.find(key);
  return it == doc.end() ? kNull : *it;
}

const Json& Items(const Json& doc) {
  const Json& items = Member(doc, "items");
  return items.is_array() ? items : EmptyArray();
}

const Json& ArrayMember(const Json& doc, const char* key) {
  const Json& a = Member(doc, key);
  return a.is_array() ? a : EmptyArray();
}

std::string E(std::string_view s) { return HtmlEscape(s); }

// Green, amber or red: the same words the script maps (keep in step with tone() below).
const char* Tone(const std::string& v) {
  static const char* const kOk[] = {"Synced",    "Healthy",   "Running", "true", "Ready",
                                    "Succeeded", "succeeded", "success", "ok",   "applied"};
  static const char* const kBad[] = {"Error",  "Degraded", "Failed",   "false",
                                     "failed", "error",    "NotReady", "CrashLoopBackOff"};
  for (const char* w : kOk) {
    if (v == w) return "ok";
  }
  for (const char* w : kBad) {
    if (v == w) return "bad";
  }
  return "warn";
}

std::string Badge(const std::string& v) {
  std::string shown = v.empty() ? "Unknown" : v;
  return std::string("<span class=\"badge ") + Tone(shown) + "\">" + E(shown) + "</span>";
}

// A remote URL without its user information: "https://user:token@host/x" shows as
// "https://host/x", so a credential in --repo never reaches the page.
std::string WithoutCredentials(const std::string& url) {
  size_t scheme = url.find("://");
  if (scheme == std::string::npos) return url;
  size_t host = scheme + 3;
  size_t at = url.find('@', host);
  size_t slash = url.find('/', host);
  if (at == std::string::npos || (slash != std::string::npos && slash < at)) return url;
  return url.substr(0, host) + url.substr(at + 1);
}

std::string Short(const std::string& sha) { return sha.substr(0, 12); }

std::string Table(const std::vector<std::string>& headers, const std::string& rows,
                  const char* empty) {
  if (rows.empty()) return std::string("<p class=\"muted\">") + empty + "</p>";
  std::string out = "<table><thead><tr>";
  for (const auto& h : headers) out += "<th>" + h + "</th>";
  return out + "</tr></thead><tbody>" + rows + "</tbody></table>";
}

std::string Td(const std::string& html, const char* cls = nullptr) {
  return cls ? std::string("<td class=\"") + cls + "\">" + html + "</td>" : "<td>" + html + "</td>";
}

// A line of the text plan or of a unified diff, with the class that colours it.
const char* LineClass(std::string_view line, bool unified) {
  if (unified) {
    if (line.rfind("+++", 0) == 0 || line.rfind("---", 0) == 0) return "dh";
    if (line.rfind("@@", 0) == 0) return "dk";
    if (!line.empty() && line[0] == '+') return "da";
    if (!line.empty() && line[0] == '-') return "dd";
    return "dc";
  }
  size_t i = line.find_first_not_of(' ');
  if (i == std::string_view::npos) return "dc";
  if (line.substr(i, 3) == "+/-") return "dm";
  switch (line[i]) {
    case '+':
      return "da";
    case '-':
      return "dd";
    case '~':
      return "dm";
    case '!':
      return "db";
    default:
      return "dc";
  }
}

std::string ColouredLines(const std::string& text, bool unified) {
  std::string out;
  size_t start = 0;
  bool notes = false;  // under "Scheduler dry-run:", bullets are notes, not deletions
  while (start < text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    std::string_view line(text.data() + start, end - start);
    if (!unified && line.rfind("Scheduler dry-run:", 0) == 0) notes = true;
    if (!unified && line.rfind("Plan:", 0) == 0) notes = false;
    const char* cls = notes && line.rfind("!", 0) != 0 ? "dc" : LineClass(line, unified);
    out += std::string("<span class=\"") + cls + "\">" + E(line) + "\n</span>";
    start = end + 1;
  }
  return out;
}

// --- sections (the script's render* functions build the same structure) ------------------

std::string SummarySection(const StatusPageInput& in) {
  const Json& s = in.status;
  std::string out = "<div class=\"row\"><span>sync " + Badge(Field(s, "sync")) +
                    "</span><span>health " + Badge(Field(s, "health")) + "</span>";
  std::string policy = Field(s, "syncPolicy");
  if (!policy.empty())
    out += "<span>auto-sync <b>" + E(policy == "auto" ? "on" : "off") + "</b></span>";
  out += "</div>";
  const Json& commit = Member(s, "commit");
  std::string rev = Field(s, "revision");
  out += "<div class=\"row\"><span>revision <code class=\"rev\">" +
         E(rev.empty() ? "unknown" : Short(rev)) + "</code></span>";
  std::string summary = Field(commit, "summary");
  if (!summary.empty()) out += "<span class=\"msg\">" + E(summary) + "</span>";
  std::string author = Field(commit, "author");
  if (!author.empty()) out += "<span class=\"muted\">by " + E(author) + "</span>";
  out += "</div>";
  std::string applied = Field(s, "appliedRevision");
  out += "<div class=\"row\"><span>applied <code class=\"applied\">" +
         E(applied.empty() ? "nothing yet" : Short(applied)) + "</code></span></div>";
  return out;
}

std::string BannerSection(const StatusPageInput& in) {
  std::string out;
  const Json& pinned = Member(in.status, "pinned");
  if (!pinned.is_null()) {
    out += "<div class=\"banner warnbg\">Pinned to history entry #" + E(Text(pinned)) +
           ": auto-sync is paused until you unpin. <button data-action=\"unpin\">Unpin</button>"
           "</div>";
  }
  const Json& history_error = Member(in.status, "historyError");
  if (history_error.is_object()) {
    out += "<div class=\"banner badbg\">Cannot record the applied state in history (for " +
           E(Field(history_error, "ageSeconds")) + " s): " + E(Field(history_error, "message")) +
           ". No other revision is applied until it can be.</div>";
  }
  const Json& source_error = Member(in.status, "sourceError");
  if (source_error.is_object()) {
    out += "<div class=\"banner badbg\">Cannot read the source (for " +
           E(Field(source_error, "ageSeconds")) + " s): " + E(Field(source_error, "message")) +
           "</div>";
  }
  return out;
}

std::string DiagnosticItems(const Json& list) {
  std::string out;
  for (const auto& e : list) {
    std::string field = Field(e, "field");
    out += "<li><code>" + E(Field(e, "file")) + ":" + E(Field(e, "line")) + ":" +
           E(Field(e, "column")) + "</code>: " + E(field.empty() ? "" : field + ": ") +
           E(Field(e, "message")) + "</li>";
  }
  return out;
}

// Errors (nothing of that revision is applied), then warnings (applied, but worth a look).
std::string ErrorsSection(const StatusPageInput& in) {
  const Json& errors = ArrayMember(in.status, "errors");
  const Json& warnings = ArrayMember(in.status, "warnings");
  std::string out;
  if (!errors.empty()) {
    out +=
        "<h2>Errors in git</h2><p>The last good state keeps running; fix these and commit.</p>"
        "<ul class=\"errors\">" +
        DiagnosticItems(errors) + "</ul>";
  }
  if (!warnings.empty()) {
    out += "<h2>Warnings in git</h2><ul class=\"warnings\">" + DiagnosticItems(warnings) + "</ul>";
  }
  return out;
}

}  // namespace

namespace {

// "ns/name", or "name" for a cluster-scoped object (a Namespace).
std::string QualifiedName(const Json& o) {
  const std::string ns = Field(o, "namespace");
  return ns.empty() ? Field(o, "name") : ns + "/" + Field(o, "name");
}

std::string PlanSection(const StatusPageInput& in) {
  std::string out = "<h2>Planned changes</h2>";
  if (!in.plan.is_object()) return out + "<p class=\"muted\">plan unknown</p>";
  // The plan as diff::RenderText wrote it (the `text` of the plan document): the same words
  // as `ballast plan`, rendered once, in C++.
  out += "<pre class=\"plan\">" + ColouredLines(Field(in.plan, "text"), false) + "</pre>";
  for (const auto& o : ArrayMember(in.plan, "objects")) {
    std::string diff = Field(o, "diff");
    if (diff.empty()) continue;
    out += "<details open class=\"objdiff\"><summary>" +
           E(Field(o, "kind") + " " + QualifiedName(o)) + "</summary><pre class=\"diff\">" +
           ColouredLines(diff, true) + "</pre></details>";
  }
  return out;
}

std::string ObjectsSection(const StatusPageInput& in) {
  std::string rows;
  for (const auto& o : ArrayMember(in.status, "objects")) {
    rows += "<tr>" + Td(E(Field(o, "kind"))) + Td(E(QualifiedName(o)), "name") +
            Td(E(Field(o, "action"))) + Td(Badge(Field(o, "sync"))) +
            Td(Badge(Field(o, "health"))) + "</tr>";
  }
  return "<h2>Objects</h2>" + Table({"kind", "name", "plan", "sync", "health"}, rows, "no objects");
}

std::string DeploymentsSection(const StatusPageInput& in) {
  std::string rows;
  for (const auto& d : Items(in.deployments)) {
    std::string progress;
    for (const auto& c : ArrayMember(d, "conditions")) {
      std::string m = Field(c, "message");
      if (m.empty()) m = Field(c, "reason");
      if (!m.empty()) progress += (progress.empty() ? "" : "; ") + Field(c, "type") + ": " + m;
    }
    std::string unschedulable = Field(d, "unschedulable");
    if (!unschedulable.empty()) progress += (progress.empty() ? "" : "; ") + unschedulable;
    rows += "<tr>" + Td(E(Field(d, "namespace") + "/" + Field(d, "name")), "name") +
            Td(E(Field(d, "replicas"))) + Td(E(Field(d, "updatedReplicas"))) +
            Td(E(Field(d, "readyReplicas"))) + Td(E(Field(d, "availableReplicas"))) +
            Td("<code>" + E(Field(d, "revision")) + "</code>") + Td(Badge(Field(d, "sync"))) +
            Td(Badge(Field(d, "health"))) + Td(E(progress), "small") + "</tr>";
  }
  return "<h2>Deployments</h2>" + Table({"name", "desired", "updated", "ready", "available",
                                         "revision", "sync", "health", "rollout"},
                                        rows, "no deployments applied");
}

std::string ServicesSection(const StatusPageInput& in) {
  std::string rows;
  for (const auto& s : Items(in.services)) {
    std::string ports, endpoints;
    for (const auto& p : ArrayMember(s, "ports")) {
      ports += (ports.empty() ? "" : ", ") + Field(p, "port") + "→" + Field(p, "targetPort") + "/" +
               Field(p, "protocol");
    }
    for (const auto& e : ArrayMember(s, "endpoints")) {
      endpoints += (endpoints.empty() ? "" : ", ") + Text(e);
    }
    rows +=
        "<tr>" + Td(E(Field(s, "namespace") + "/" + Field(s, "name")), "name") +
        Td(E(Field(s, "type"))) + Td("<code>" + E(Field(s, "clusterIP")) + "</code>") +
        Td(E(ports)) +
        Td(endpoints.empty() ? "<span class=\"muted\">none ready</span>" : E(endpoints), "small") +
        "</tr>";
  }
  return "<h2>Services</h2>" +
         Table({"name", "type", "cluster IP", "ports", "endpoints"}, rows, "no services applied");
}

std::string NodesSection(const StatusPageInput& in) {
  std::string rows;
  for (const auto& n : Items(in.nodes)) {
    std::string alloc;
    const Json& a = Member(n, "allocatable");
    if (a.is_object()) {
      for (const auto& [k, v] : a.items()) alloc += (alloc.empty() ? "" : ", ") + k + " " + Text(v);
    }
    const Json& ready = Member(n, "ready");
    rows += "<tr>" + Td(E(Field(n, "name")), "name") + Td(E(Field(n, "address"))) +
            Td(Badge(ready == Json(true) ? "Ready" : "NotReady")) + Td(E(Field(n, "pods"))) +
            Td(E(alloc), "small") + Td(E(Field(n, "lastHeartbeat")), "small") + "</tr>";
  }
  return "<h2>Nodes</h2>" +
         Table({"name", "address", "ready", "pods", "allocatable", "last heartbeat"}, rows,
               "no agent has registered");
}

std::string Age(int64_t now_ms, const Json& created) {
  if (now_ms <= 0 || !created.is_number_integer()) return "";
  int64_t s = (now_ms - created.get<int64_t>()) / 1000;
  if (s < 0) s = 0;
  if (s < 120) return std::to_string(s) + "s";
  if (s < 7200) return std::to_string(s / 60) + "m";
  return std::to_string(s / 3600) + "h";
}

std::string PodsSection(const StatusPageInput& in) {
  std::string rows;
  for (const auto& p : Items(in.pods)) {
    std::string name = Field(p, "name");
    std::string phase = Field(p, "phase");
    if (Member(p, "terminating") == Json(true)) phase = "Terminating";
    if (Member(p, "lost") == Json(true)) phase = "Lost";
    rows += "<tr>" + Td(E(name), "name") + Td(E(Field(p, "deployment"))) + Td(E(Field(p, "node"))) +
            Td(Badge(phase)) + Td(Badge(Member(p, "ready") == Json(true) ? "true" : "false")) +
            Td(E(Field(p, "restarts"))) + Td("<code>" + E(Field(p, "revision")) + "</code>") +
            Td(E(Field(p, "address"))) + Td(E(Age(in.now_ms, Member(p, "createdMs")))) +
            Td("<a href=\"/api/v1/logs/" + E(name) + "\">logs</a>") + "</tr>";
  }
  return "<h2>Pods</h2>" + Table({"name", "deployment", "node", "phase", "ready", "restarts",
                                  "revision", "address", "age", ""},
                                 rows, "no pods");
}

std::string HistorySection(const StatusPageInput& in) {
  std::string rows;
  for (const auto& h : Items(in.history)) {
    const std::string id = E(Field(h, "id"));
    // Appended cell by cell (GCC 12 warns -Wrestrict, a false positive, on long chains of
    // `"literal" + std::string&&` at -O3: GCC bug 105651).
    rows += "<tr>";
    rows += Td(std::string("#").append(id));
    rows += Td(std::string("<code>").append(E(Short(Field(h, "revision")))).append("</code>"));
    rows += Td(E(Field(h, "message")), "msg");
    rows += Td(E(Field(h, "time")), "small");
    rows += Td(E(Field(h, "trigger")));
    rows += Td(Badge(Field(h, "result")));
    rows += Td(std::string("<a href=\"/api/v1/history/")
                   .append(id)
                   .append("/diff?format=text\">diff against now</a> <button "
                           "data-action=\"rollback\" data-id=\"")
                   .append(id)
                   .append("\">Roll back</button>"));
    rows += "</tr>";
  }
  return "<h2>History</h2>" + Table({"entry", "source", "message", "time", "trigger", "result", ""},
                                    rows, "nothing applied yet");
}

}  // namespace

std::string HtmlEscape(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
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
      case '\'':
        out += "&#39;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

std::string_view StatusPageScript() { return status_page_assets::kScript; }
std::string_view StatusPageStyle() { return status_page_assets::kStyle; }

std::string RenderStatusPage(const StatusPageInput& in) {
  std::string out =
      "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
      "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
      "<title>ballast</title><link rel=\"stylesheet\" href=\"";
  out += kStatusPageStylePath;
  out += "\"></head><body>\n<header><h1>ballast</h1>";
  std::string source = WithoutCredentials(in.repo);
  if (!in.branch.empty()) source += (source.empty() ? "" : " ") + std::string("@ ") + in.branch;
  if (!in.path.empty()) source += (source.empty() ? "" : " ") + std::string("path ") + in.path;
  if (!source.empty()) out += "<span class=\"muted\" id=\"source\">" + E(source) + "</span>";
  out +=
      "<button class=\"primary\" data-action=\"sync\">Sync</button><span id=\"flash\"></span>"
      "<span id=\"updated\">static page; the script keeps it live</span>"
      "<div id=\"summary\">" +
      SummarySection(in) + "</div></header>\n" +
      (in.insecure ? "<div class=\"banner badbg\" id=\"insecure\">Insecure: this server runs "
                     "with --insecure, reachable beyond loopback with no credentials. Anyone "
                     "who reaches it controls every node.</div>\n"
                   : "") +
      "<div id=\"banner\">" + BannerSection(in) + "</div>\n<main>\n<section id=\"errors\">" +
      ErrorsSection(in) + "</section>\n<section id=\"plan\">" + PlanSection(in) +
      "</section>\n<section id=\"objects\">" + ObjectsSection(in) +
      "</section>\n<section id=\"deployments\">" + DeploymentsSection(in) +
      "</section>\n<section id=\"services\">" + ServicesSection(in) +
      "</section>\n<section id=\"nodes\">" + NodesSection(in) +
      "</section>\n<section id=\"pods\">" + PodsSection(in) +
      "</section>\n<section id=\"history\">" + HistorySection(in) +
      "</section>\n</main>\n<script src=\"";
  out += kStatusPageScriptPath;
  out += "\"></script></body></html>\n";
  return out;
}

}  // namespace ballast::reconciler
