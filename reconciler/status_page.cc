#include "reconciler/status_page.h"

#include <string>
#include <vector>

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
           E(Field(o, "kind") + " " + Field(o, "namespace") + "/" + Field(o, "name")) +
           "</summary><pre class=\"diff\">" + ColouredLines(diff, true) + "</pre></details>";
  }
  return out;
}

std::string ObjectsSection(const StatusPageInput& in) {
  std::string rows;
  for (const auto& o : ArrayMember(in.status, "objects")) {
    rows += "<tr>" + Td(E(Field(o, "kind"))) +
            Td(E(Field(o, "namespace") + "/" + Field(o, "name")), "name") +
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

constexpr std::string_view kStyle = R"CSS(
:root{--ok:#1a7f37;--okbg:#dafbe1;--warn:#9a6700;--warnbg:#fff8c5;--bad:#cf222e;--badbg:#ffebe9;
--fg:#1f2328;--muted:#656d76;--line:#d0d7de;--code:#f6f8fa}
*{box-sizing:border-box}
body{margin:0;font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif;color:var(--fg);background:#fff}
header{position:sticky;top:0;z-index:2;background:#fff;border-bottom:1px solid var(--line);padding:10px 24px}
header h1{font-size:20px;margin:0 16px 0 0;display:inline-block}
main{max-width:1280px;margin:0 auto;padding:8px 24px 48px}
h2{font-size:17px;margin:22px 0 8px;border-bottom:1px solid var(--line);padding-bottom:4px}
.row{display:flex;flex-wrap:wrap;gap:16px;align-items:baseline;margin:4px 0}
.muted{color:var(--muted)}.small{font-size:13px}.msg{font-weight:600}
code,pre{font:13px/1.4 ui-monospace,SFMono-Regular,Menlo,Consolas,"Liberation Mono",monospace}
code{background:var(--code);padding:1px 4px;border-radius:4px}
pre{background:var(--code);border:1px solid var(--line);border-radius:6px;padding:10px;overflow:auto;margin:6px 0;max-height:60vh}
pre span{display:block;white-space:pre}
.badge{display:inline-block;padding:1px 8px;border-radius:10px;font-size:13px;font-weight:600}
.badge.ok{color:var(--ok);background:var(--okbg)}.badge.warn{color:var(--warn);background:var(--warnbg)}
.badge.bad{color:var(--bad);background:var(--badbg)}
.banner{padding:8px 24px;font-weight:600}.warnbg{background:var(--warnbg);color:var(--warn)}
.badbg{background:var(--badbg);color:var(--bad)}
.da{color:#116329;background:#dafbe1}.dd{color:#82071e;background:#ffebe9}.dm{color:#953800}
.db{color:var(--bad);font-weight:600}.dk{color:#0550ae}.dh{color:var(--muted)}
table{border-collapse:collapse;width:100%;font-size:14px}
th,td{text-align:left;padding:4px 8px;border-bottom:1px solid var(--line);vertical-align:top}
th{font-size:12px;text-transform:uppercase;letter-spacing:.04em;color:var(--muted)}
td.name{font-weight:600;white-space:nowrap}
ul.errors{color:var(--bad)}ul.warnings{color:var(--warn)}
details summary{cursor:pointer;font-weight:600;margin-top:8px}
#source{margin-right:16px}
button{white-space:nowrap;font:inherit;font-size:13px;padding:3px 12px;border:1px solid var(--line);border-radius:6px;background:#f6f8fa;cursor:pointer}
button.primary{background:#1f883d;color:#fff;border-color:#1a7f37}
button:disabled{opacity:.5;cursor:default}
#flash{margin-left:12px;font-size:13px}#updated{float:right;font-size:12px;color:var(--muted)}
)CSS";

constexpr std::string_view kScript = R"JS(
(function () {
  'use strict';
  var TOKEN_KEY = 'ballast-token';
  var DOCS = ['status', 'plan?diff=true', 'deployments', 'services', 'pods', 'nodes', 'history'];

  // Elements from data: text only goes through text nodes, never through HTML parsing.
  function h(tag, attrs) {
    var e = document.createElement(tag);
    if (attrs) Object.keys(attrs).forEach(function (k) { e.setAttribute(k, attrs[k]); });
    for (var i = 2; i < arguments.length; i++) add(e, arguments[i]);
    return e;
  }
  function add(e, c) {
    if (c === null || c === undefined) return;
    if (Array.isArray(c)) { c.forEach(function (x) { add(e, x); }); return; }
    if (typeof c === 'object' && c.nodeType) { e.appendChild(c); return; }
    e.appendChild(document.createTextNode(String(c)));
  }
  function text(v) {
    if (v === null || v === undefined) return '';
    return typeof v === 'string' ? v : JSON.stringify(v);
  }
  function field(o, k) { return o && typeof o === 'object' ? text(o[k]) : ''; }
  function arr(o, k) { return o && Array.isArray(o[k]) ? o[k] : []; }
  function items(doc) { return arr(doc, 'items'); }
  var OK = ['Synced', 'Healthy', 'Running', 'true', 'Ready', 'Succeeded', 'succeeded', 'success',
            'ok', 'applied'];
  var BAD = ['Error', 'Degraded', 'Failed', 'false', 'failed', 'error', 'NotReady',
             'CrashLoopBackOff'];
  function tone(v) { return OK.indexOf(v) >= 0 ? 'ok' : BAD.indexOf(v) >= 0 ? 'bad' : 'warn'; }
  function badge(v) { v = v || 'Unknown'; return h('span', {'class': 'badge ' + tone(v)}, v); }
  function short(s) { return s.substring(0, 12); }
  function table(headers, rows, empty) {
    if (!rows.length) return h('p', {'class': 'muted'}, empty);
    return h('table', null, h('thead', null, h('tr', null, headers.map(function (x) {
      return h('th', null, x);
    }))), h('tbody', null, rows));
  }
  function td(c, cls) { return h('td', cls ? {'class': cls} : null, c); }
  function lineClass(line, unified) {
    if (unified) {
      if (line.indexOf('+++') === 0 || line.indexOf('---') === 0) return 'dh';
      if (line.indexOf('@@') === 0) return 'dk';
      return line[0] === '+' ? 'da' : line[0] === '-' ? 'dd' : 'dc';
    }
    var t = line.replace(/^ +/, ''), c = t[0];
    if (t.indexOf('+/-') === 0) return 'dm';
    return c === '+' ? 'da' : c === '-' ? 'dd' : c === '~' ? 'dm' : c === '!' ? 'db' : 'dc';
  }
  function coloured(t, unified, cls) {
    var lines = t.split('\n'), notes = false;
    if (lines.length && lines[lines.length - 1] === '') lines.pop();
    return h('pre', {'class': cls}, lines.map(function (l) {
      if (!unified && l.indexOf('Scheduler dry-run:') === 0) notes = true;
      if (!unified && l.indexOf('Plan:') === 0) notes = false;
      var k = notes && l.indexOf('!') !== 0 ? 'dc' : lineClass(l, unified);
      return h('span', {'class': k}, l + '\n');
    }));
  }

  function renderSummary(s) {
    var commit = (s && s.commit) || {};
    var policy = field(s, 'syncPolicy');
    var rev = field(s, 'revision'), applied = field(s, 'appliedRevision');
    return [
      h('div', {'class': 'row'}, h('span', null, 'sync ', badge(field(s, 'sync'))),
        h('span', null, 'health ', badge(field(s, 'health'))),
        policy ? h('span', null, 'auto-sync ', h('b', null, policy === 'auto' ? 'on' : 'off')) : null),
      h('div', {'class': 'row'},
        h('span', null, 'revision ', h('code', {'class': 'rev'}, rev ? short(rev) : 'unknown')),
        field(commit, 'summary') ? h('span', {'class': 'msg'}, field(commit, 'summary')) : null,
        field(commit, 'author') ? h('span', {'class': 'muted'}, 'by ' + field(commit, 'author')) : null),
      h('div', {'class': 'row'}, h('span', null, 'applied ',
        h('code', {'class': 'applied'}, applied ? short(applied) : 'nothing yet')))];
  }
  function renderBanner(s) {
    var out = [];
    if (s && s.pinned !== null && s.pinned !== undefined) {
      out.push(h('div', {'class': 'banner warnbg'}, 'Pinned to history entry #' + text(s.pinned) +
        ': auto-sync is paused until you unpin. ', h('button', {'data-action': 'unpin'}, 'Unpin')));
    }
    if (s && s.sourceError && typeof s.sourceError === 'object') {
      out.push(h('div', {'class': 'banner badbg'}, 'Cannot read the source (for ' +
        field(s.sourceError, 'ageSeconds') + ' s): ' + field(s.sourceError, 'message')));
    }
    return out;
  }
  function diagnosticItems(list) {
    return list.map(function (e) {
      return h('li', null, h('code', null, field(e, 'file') + ':' + field(e, 'line') + ':' +
        field(e, 'column')), ': ' + (field(e, 'field') ? field(e, 'field') + ': ' : '') +
        field(e, 'message'));
    });
  }
  function renderErrors(s) {
    var errors = arr(s, 'errors');
    var warnings = arr(s, 'warnings');
    var out = [];
    if (errors.length) {
      out.push(h('h2', null, 'Errors in git'),
        h('p', null, 'The last good state keeps running; fix these and commit.'),
        h('ul', {'class': 'errors'}, diagnosticItems(errors)));
    }
    if (warnings.length) {
      out.push(h('h2', null, 'Warnings in git'),
        h('ul', {'class': 'warnings'}, diagnosticItems(warnings)));
    }
    return out;
  }
  function renderPlan(p) {
    var out = [h('h2', null, 'Planned changes')];
    if (!p || typeof p !== 'object') { out.push(h('p', {'class': 'muted'}, 'plan unknown')); return out; }
    out.push(coloured(field(p, 'text'), false, 'plan'));
    arr(p, 'objects').forEach(function (o) {
      var d = field(o, 'diff');
      if (!d) return;
      out.push(h('details', {'open': '', 'class': 'objdiff'}, h('summary', null,
        field(o, 'kind') + ' ' + field(o, 'namespace') + '/' + field(o, 'name')),
        coloured(d, true, 'diff')));
    });
    return out;
  }
  function renderObjects(s) {
    return [h('h2', null, 'Objects'), table(['kind', 'name', 'plan', 'sync', 'health'],
      arr(s, 'objects').map(function (o) {
        return h('tr', null, td(field(o, 'kind')),
          td(field(o, 'namespace') + '/' + field(o, 'name'), 'name'), td(field(o, 'action')),
          td(badge(field(o, 'sync'))), td(badge(field(o, 'health'))));
      }), 'no objects')];
  }
  function renderDeployments(doc) {
    return [h('h2', null, 'Deployments'), table(['name', 'desired', 'updated', 'ready',
      'available', 'revision', 'sync', 'health', 'rollout'], items(doc).map(function (d) {
      var progress = [];
      arr(d, 'conditions').forEach(function (c) {
        var m = field(c, 'message') || field(c, 'reason');
        if (m) progress.push(field(c, 'type') + ': ' + m);
      });
      if (field(d, 'unschedulable')) progress.push(field(d, 'unschedulable'));
      return h('tr', null, td(field(d, 'namespace') + '/' + field(d, 'name'), 'name'),
        td(field(d, 'replicas')), td(field(d, 'updatedReplicas')), td(field(d, 'readyReplicas')),
        td(field(d, 'availableReplicas')), td(h('code', null, field(d, 'revision'))),
        td(badge(field(d, 'sync'))), td(badge(field(d, 'health'))), td(progress.join('; '), 'small'));
    }), 'no deployments applied')];
  }
  function renderServices(doc) {
    return [h('h2', null, 'Services'), table(['name', 'type', 'cluster IP', 'ports', 'endpoints'],
      items(doc).map(function (s) {
        var ports = arr(s, 'ports').map(function (p) {
          return field(p, 'port') + '\u2192' + field(p, 'targetPort') + '/' + field(p, 'protocol');
        }).join(', ');
        var eps = arr(s, 'endpoints').map(text).join(', ');
        return h('tr', null, td(field(s, 'namespace') + '/' + field(s, 'name'), 'name'),
          td(field(s, 'type')), td(h('code', null, field(s, 'clusterIP'))), td(ports),
          td(eps || h('span', {'class': 'muted'}, 'none ready'), 'small'));
      }), 'no services applied')];
  }
  function renderNodes(doc) {
    return [h('h2', null, 'Nodes'), table(['name', 'address', 'ready', 'pods', 'allocatable',
      'last heartbeat'], items(doc).map(function (n) {
      var a = n && n.allocatable && typeof n.allocatable === 'object' ? n.allocatable : {};
      var alloc = Object.keys(a).sort().map(function (k) { return k + ' ' + text(a[k]); }).join(', ');
      return h('tr', null, td(field(n, 'name'), 'name'), td(field(n, 'address')),
        td(badge(n && n.ready === true ? 'Ready' : 'NotReady')), td(field(n, 'pods')),
        td(alloc, 'small'), td(field(n, 'lastHeartbeat'), 'small'));
    }), 'no agent has registered')];
  }
  function age(created) {
    if (typeof created !== 'number') return '';
    var s = Math.max(0, Math.floor((Date.now() - created) / 1000));
    return s < 120 ? s + 's' : s < 7200 ? Math.floor(s / 60) + 'm' : Math.floor(s / 3600) + 'h';
  }
  function renderPods(doc) {
    return [h('h2', null, 'Pods'), table(['name', 'deployment', 'node', 'phase', 'ready',
      'restarts', 'revision', 'address', 'age', ''], items(doc).map(function (p) {
      var phase = field(p, 'phase');
      if (p.terminating === true) phase = 'Terminating';
      if (p.lost === true) phase = 'Lost';
      return h('tr', null, td(field(p, 'name'), 'name'), td(field(p, 'deployment')),
        td(field(p, 'node')), td(badge(phase)), td(badge(p.ready === true ? 'true' : 'false')),
        td(field(p, 'restarts')), td(h('code', null, field(p, 'revision'))),
        td(field(p, 'address')), td(age(p.createdMs)),
        td(h('a', {href: '/api/v1/logs/' + encodeURIComponent(field(p, 'name'))}, 'logs')));
    }), 'no pods')];
  }
  function renderHistory(doc) {
    return [h('h2', null, 'History'), table(['entry', 'source', 'message', 'time', 'trigger',
      'result', ''], items(doc).map(function (e) {
      var id = field(e, 'id');
      return h('tr', null, td('#' + id), td(h('code', null, short(field(e, 'revision')))),
        td(field(e, 'message'), 'msg'), td(field(e, 'time'), 'small'), td(field(e, 'trigger')),
        td(badge(field(e, 'result'))),
        td([h('a', {'href': '/api/v1/history/' + encodeURIComponent(id) + '/diff?format=text'},
          'diff against now'), ' ', h('button', {'data-action': 'rollback', 'data-id': id},
          'Roll back')]));
    }), 'nothing applied yet')];
  }

  function put(id, nodes) {
    var el = document.getElementById(id);
    if (!el) return;
    el.replaceChildren();
    add(el, nodes);
  }
  function render(d) {
    if (d.status) {
      put('summary', renderSummary(d.status));
      put('banner', renderBanner(d.status));
      put('errors', renderErrors(d.status));
      put('objects', renderObjects(d.status));
    }
    if (d.plan) put('plan', renderPlan(d.plan));
    if (d.deployments) put('deployments', renderDeployments(d.deployments));
    if (d.services) put('services', renderServices(d.services));
    if (d.pods) put('pods', renderPods(d.pods));
    if (d.nodes) put('nodes', renderNodes(d.nodes));
    if (d.history) put('history', renderHistory(d.history));
  }

  var timer = null;
  function poll() {
    clearTimeout(timer);
    Promise.all(DOCS.map(function (p) {
      return fetch('/api/v1/' + p, {cache: 'no-store'}).then(function (r) {
        return r.ok ? r.json() : null;
      }).catch(function () { return null; });
    })).then(function (docs) {
      var d = {status: docs[0], plan: docs[1], deployments: docs[2], services: docs[3],
               pods: docs[4], nodes: docs[5], history: docs[6]};
      render(d);
      var u = document.getElementById('updated');
      u.textContent = docs[0] ? 'live, updated ' + new Date().toLocaleTimeString()
                              : 'cannot reach the server';
      document.body.setAttribute('data-live', docs[0] ? 'yes' : 'no');
    }).catch(function (e) {
      document.getElementById('updated').textContent = 'render failed: ' + e;
    }).then(function () { timer = setTimeout(poll, 2000); });
  }

  function flash(msg, bad) {
    var f = document.getElementById('flash');
    f.textContent = msg;
    f.className = bad ? 'badge bad' : 'badge ok';
  }
  function post(path, body, retried) {
    var headers = {'Content-Type': 'application/json'};
    var token = sessionStorage.getItem(TOKEN_KEY);
    if (token) headers.Authorization = 'Bearer ' + token;
    return fetch(path, {method: 'POST', headers: headers, body: JSON.stringify(body)})
      .then(function (r) {
        if (r.status === 401 && !retried) {
          var t = window.prompt('This ballast server needs its token (kept for this tab only):');
          if (t) { sessionStorage.setItem(TOKEN_KEY, t.trim()); return post(path, body, true); }
        }
        return r.text().then(function (t) {
          var j = null;
          try { j = JSON.parse(t); } catch (e) { j = null; }
          return {ok: r.ok, status: r.status, json: j, text: t};
        });
      });
  }
  function describe(res) {
    if (res.json && typeof res.json === 'object') {
      return text(res.json.error || res.json.message) || JSON.stringify(res.json);
    }
    return res.text || ('HTTP ' + res.status);
  }
  document.addEventListener('click', function (ev) {
    var b = ev.target.closest ? ev.target.closest('button[data-action]') : null;
    if (!b) return;
    var action = b.getAttribute('data-action');
    var req = action === 'sync' ? post('/api/v1/sync', {dryRun: false})
      : action === 'rollback' ? post('/api/v1/rollback', {id: Number(b.getAttribute('data-id'))})
      : action === 'unpin' ? post('/api/v1/unpin', {}) : null;
    if (!req) return;
    b.disabled = true;
    flash(action + '\u2026', false);
    req.then(function (res) {
      if (res.ok) {
        flash(action === 'rollback' ? 'rolled back to #' + b.getAttribute('data-id')
          : action === 'sync' ? 'synced' : 'unpinned', false);
      } else {
        flash(action + ' failed: ' + describe(res), true);
      }
    }).catch(function (e) { flash(action + ' failed: ' + e, true); })
      .then(function () { b.disabled = false; poll(); });
  });
  poll();
})();
)JS";

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

std::string_view StatusPageScript() { return kScript; }

std::string RenderStatusPage(const StatusPageInput& in) {
  std::string out =
      "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
      "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
      "<title>ballast</title><style>";
  out += kStyle;
  out += "</style></head><body>\n<header><h1>ballast</h1>";
  std::string source = WithoutCredentials(in.repo);
  if (!in.branch.empty()) source += (source.empty() ? "" : " ") + std::string("@ ") + in.branch;
  if (!in.path.empty()) source += (source.empty() ? "" : " ") + std::string("path ") + in.path;
  if (!source.empty()) out += "<span class=\"muted\" id=\"source\">" + E(source) + "</span>";
  out +=
      "<button class=\"primary\" data-action=\"sync\">Sync</button><span id=\"flash\"></span>"
      "<span id=\"updated\">static page; the script keeps it live</span>"
      "<div id=\"summary\">" +
      SummarySection(in) + "</div></header>\n<div id=\"banner\">" + BannerSection(in) +
      "</div>\n<main>\n<section id=\"errors\">" + ErrorsSection(in) +
      "</section>\n<section id=\"plan\">" + PlanSection(in) +
      "</section>\n<section id=\"objects\">" + ObjectsSection(in) +
      "</section>\n<section id=\"deployments\">" + DeploymentsSection(in) +
      "</section>\n<section id=\"services\">" + ServicesSection(in) +
      "</section>\n<section id=\"nodes\">" + NodesSection(in) +
      "</section>\n<section id=\"pods\">" + PodsSection(in) +
      "</section>\n<section id=\"history\">" + HistorySection(in) + "</section>\n</main>\n<script>";
  out += kScript;
  out += "</script></body></html>\n";
  return out;
}

}  // namespace ballast::reconciler
