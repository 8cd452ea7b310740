#include "reconciler/metrics.h"

#include <cstdio>

namespace ballast::reconciler {
namespace {

std::string Num(double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.9g", v);
  return buf;
}

void Header(const std::string& name, const std::string& type, const std::string& help,
            std::string* out) {
  *out += "# HELP " + name + " " + help + "\n# TYPE " + name + " " + type + "\n";
}

std::string EscapeLabel(const std::string& v) {
  std::string o;
  for (char c : v) {
    if (c == '\\' || c == '"') {
      o += '\\';
      o += c;
    } else if (c == '\n') {
      o += "\\n";
    } else {
      o += c;
    }
  }
  return o;
}

void LabeledFamily(const std::string& name, const std::string& type, const std::string& help,
                   const std::string& label, const std::map<std::string, uint64_t>& values,
                   const std::vector<std::string>& always, std::string* out) {
  Header(name, type, help, out);
  std::map<std::string, uint64_t> all = values;
  for (const auto& a : always) all.emplace(a, 0);
  for (const auto& [k, v] : all) {
    *out += name + "{" + label + "=\"" + EscapeLabel(k) + "\"} " + std::to_string(v) + "\n";
  }
}

}  // namespace

Histogram::Histogram(std::vector<double> bounds)
    : bounds_(std::move(bounds)), counts_(bounds_.size() + 1, 0) {}

void Histogram::Observe(double value) {
  std::lock_guard<std::mutex> lock(mu_);
  size_t i = 0;
  while (i < bounds_.size() && value > bounds_[i]) ++i;
  ++counts_[i];
  sum_ += value;
  ++count_;
}

void Histogram::Render(const std::string& name, std::string* out) const {
  std::lock_guard<std::mutex> lock(mu_);
  uint64_t cumulative = 0;
  for (size_t i = 0; i < bounds_.size(); ++i) {
    cumulative += counts_[i];
    *out += name + "_bucket{le=\"" + Num(bounds_[i]) + "\"} " + std::to_string(cumulative) + "\n";
  }
  *out += name + "_bucket{le=\"+Inf\"} " + std::to_string(count_) + "\n";
  *out += name + "_sum " + Num(sum_) + "\n";
  *out += name + "_count " + std::to_string(count_) + "\n";
}

void LabeledCounter::Inc(const std::string& label_value) {
  std::lock_guard<std::mutex> lock(mu_);
  ++values_[label_value];
}

std::map<std::string, uint64_t> LabeledCounter::Values() const {
  std::lock_guard<std::mutex> lock(mu_);
  return values_;
}

Metrics::Metrics()
    : reconcile_duration({0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1}),
      fetch_duration({0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60}),
      api_duration({0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1}) {}

std::string Metrics::Render(const Controller::Counts& counts) const {
  std::string out;
  LabeledFamily("ballast_syncs_total", "counter", "Applied syncs recorded in history, by result.",
                "result", syncs.Values(), {"Succeeded", "Failed"}, &out);
  Header("ballast_reconcile_duration_seconds", "histogram",
         "Time spent in one pass of the reconcile loop.", &out);
  reconcile_duration.Render("ballast_reconcile_duration_seconds", &out);
  LabeledFamily("ballast_reconciles_total", "counter", "Reconcile passes, by what caused them.",
                "reason", reconciles.Values(), {"change", "timer", "resync", "api"}, &out);
  LabeledFamily("ballast_heartbeats_total", "counter",
                "Agent heartbeats, by whether they changed the live state.", "result",
                heartbeats.Values(), {"changed", "unchanged"}, &out);
  LabeledFamily("ballast_api_cache_requests_total", "counter",
                "GET requests for cached API documents, by cache result.", "result",
                api_cache.Values(), {"hit", "miss", "not_modified"}, &out);
  Header("ballast_git_fetch_duration_seconds", "histogram",
         "Time spent fetching and reading the manifest source.", &out);
  fetch_duration.Render("ballast_git_fetch_duration_seconds", &out);
  uint64_t errors = 0;
  for (const auto& [k, v] : fetch_errors.Values()) errors += v;
  Header("ballast_git_fetch_errors_total", "counter", "Failed fetches of the manifest source.",
         &out);
  out += "ballast_git_fetch_errors_total " + std::to_string(errors) + "\n";
  auto as_u64 = [](const std::map<std::string, int>& m) {
    std::map<std::string, uint64_t> o;
    for (const auto& [k, v] : m) o[k] = static_cast<uint64_t>(v);
    return o;
  };
  LabeledFamily("ballast_objects_by_sync_status", "gauge", "Objects by sync status.", "status",
                as_u64(counts.objects_by_sync), {"Synced", "OutOfSync"}, &out);
  LabeledFamily("ballast_objects_by_health_status", "gauge", "Objects by health status.", "status",
                as_u64(counts.objects_by_health), {"Healthy", "Progressing", "Degraded"}, &out);
  Header("ballast_nodes_ready", "gauge", "Nodes that are ready.", &out);
  out += "ballast_nodes_ready " + std::to_string(counts.nodes_ready) + "\n";
  Header("ballast_history_pending_entries", "gauge",
         "Applied syncs not yet recorded in history.git (new revisions wait while any are).", &out);
  out += "ballast_history_pending_entries " + std::to_string(counts.history_pending) + "\n";
  Header("ballast_nodes", "gauge", "Nodes known to the reconciler.", &out);
  out += "ballast_nodes " + std::to_string(counts.nodes_total) + "\n";
  LabeledFamily("ballast_pods", "gauge", "Pods by phase.", "phase", as_u64(counts.pods_by_phase),
                {"Pending", "Running"}, &out);
  LabeledFamily("ballast_webhook_requests_total", "counter", "Webhook requests, by result.",
                "result", webhooks.Values(), {"accepted", "unauthorized", "rate_limited"}, &out);
  LabeledFamily("ballast_queue_rejected_total", "counter",
                "Requests answered 503 because the queue for their work was full, by queue.",
                "queue", queue_rejected.Values(), {"loop", "worker"}, &out);
  Header("ballast_api_request_duration_seconds", "histogram",
         "Time to answer API requests served by the reconcile loop.", &out);
  api_duration.Render("ballast_api_request_duration_seconds", &out);
  return out;
}

}  // namespace ballast::reconciler
