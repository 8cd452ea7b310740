#pragma once

// The reconciler's Prometheus metrics, rendered in the text exposition format (version 0.0.4),
// clean under `promtool check metrics`. Thread-safe.

#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "reconciler/controller.h"

namespace ballast::reconciler {

class Histogram {
 public:
  explicit Histogram(std::vector<double> bounds);
  void Observe(double value);
  // Appends `name`_bucket/_sum/_count lines.
  void Render(const std::string& name, std::string* out) const;

 private:
  mutable std::mutex mu_;
  std::vector<double> bounds_;
  std::vector<uint64_t> counts_;  // per bucket, not cumulative
  double sum_ = 0;
  uint64_t count_ = 0;
};

// A counter with one label (or none: label value "").
class LabeledCounter {
 public:
  void Inc(const std::string& label_value);
  std::map<std::string, uint64_t> Values() const;

 private:
  mutable std::mutex mu_;
  std::map<std::string, uint64_t> values_;
};

struct Metrics {
  Metrics();
  LabeledCounter syncs;     // by result
  LabeledCounter webhooks;  // by result
  LabeledCounter fetch_errors;
  // Reconcile passes by what caused them: "change" (an event changed the state), "timer" (the
  // controller asked to run again: rollout steps, heartbeat deadlines), "resync" (periodic),
  // "api" (POST /api/v1/sync).
  LabeledCounter reconciles;
  // Agent heartbeats by effect: "changed" (node or pods differ from the last report: the state
  // is reconciled, bursts coalesced) or "unchanged" (only the timestamp moved: no reconcile).
  LabeledCounter heartbeats;
  // Cached GET documents (status, plan, deployments, services, pods, nodes): "hit" (answered on
  // the server thread), "miss" (rendered on the loop), "not_modified" (304 for If-None-Match;
  // also a hit or a miss).
  LabeledCounter api_cache;
  // Requests answered 503 because the queue their work goes to was full: "loop" (the thread
  // that owns the state) or "worker" (git work: sync, rollback, pin).
  LabeledCounter queue_rejected;
  Histogram reconcile_duration;
  Histogram fetch_duration;
  Histogram api_duration;

  std::string Render(const Controller::Counts& counts) const;
};

}  // namespace ballast::reconciler
