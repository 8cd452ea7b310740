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
  Histogram reconcile_duration;
  Histogram fetch_duration;
  Histogram api_duration;

  std::string Render(const Controller::Counts& counts) const;
};

}  // namespace ballast::reconciler
