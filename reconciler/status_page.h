#pragma once

// The status page (`GET /`): one HTML document rendered from the JSON documents of the API
// (documents.cc), readable without JavaScript. It links its CSS (status_page.css) and a small
// script (status_page.js) that polls the same JSON API every ~2 s and re-renders the sections in
// place (building DOM nodes with textContent, never parsing data as HTML), and drives the Sync,
// Roll back and Unpin buttons (POST /api/v1/sync, /api/v1/rollback {"id": N}, /api/v1/unpin; the
// bearer token is asked for when the server answers 401 and kept in sessionStorage).
//
// Pure: no I/O, no clock (the caller passes the time), no threads. Every string that comes
// from git or from the agents is HTML-escaped. Documents that are missing or of an unexpected
// shape render as "unknown" instead of failing.

#include <cstdint>
#include <string>
#include <string_view>

#include "model/object.h"

namespace ballast::reconciler {

struct StatusPageInput {
  // The bodies of GET /api/v1/status, plan (with "diff"), deployments, services, pods, nodes
  // and history; null when not available (the section says so).
  model::Json status;
  model::Json plan;
  model::Json deployments;
  model::Json services;
  model::Json pods;
  model::Json nodes;
  model::Json history;
  // Where the manifests come from, shown in the header; empty when unknown.
  std::string repo;
  std::string branch;
  std::string path;
  int64_t now_ms = 0;     // for pod ages; 0: ages are not shown
  bool insecure = false;  // serve --insecure: a warning across the page
};

// The whole page, "<!doctype html>...", linking its stylesheet and script from the paths
// below (same origin, so the Content-Security-Policy needs no 'unsafe-inline').
std::string RenderStatusPage(const StatusPageInput& input);

inline constexpr std::string_view kStatusPageStylePath = "/static/status_page.css";
inline constexpr std::string_view kStatusPageScriptPath = "/static/status_page.js";
// The policy the page is served with: its own script, style and API only, no framing.
inline constexpr std::string_view kStatusPageCsp =
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
    "img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

// Escapes & < > " ' for text and attribute values.
std::string HtmlEscape(std::string_view text);

// The page's script and stylesheet (status_page.js, status_page.css, compiled in), served at
// kStatusPageScriptPath and kStatusPageStylePath.
std::string_view StatusPageScript();
std::string_view StatusPageStyle();

}  // namespace ballast::reconciler
