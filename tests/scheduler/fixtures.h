#pragma once

// Small builders for scheduler tests.

#include <cstdint>
#include <string>
#include <vector>

#include "model/cluster.h"
#include "model/object.h"
#include "scheduler/placement.h"

namespace ballast::scheduler::testing {

inline constexpr int64_t kMi = 1024 * 1024;
inline constexpr int64_t kGi = 1024 * kMi;

inline model::Node MakeNode(const std::string& name, int64_t cpu_milli, int64_t memory_bytes,
                            model::StringMap labels = {}) {
  model::Node n;
  n.name = name;
  n.labels = std::move(labels);
  n.labels["kubernetes.io/hostname"] = name;
  n.allocatable["cpu"] = model::Quantity::FromMilli(cpu_milli);
  n.allocatable["memory"] =
      model::Quantity::FromUnits(memory_bytes, model::Quantity::Format::kBinarySI);
  n.capacity = n.allocatable;
  n.ready = true;
  return n;
}

inline model::Container MakeContainer(int64_t cpu_milli, int64_t memory_bytes) {
  model::Container c;
  c.name = "main";
  c.command = {"/bin/true"};
  if (cpu_milli >= 0) c.resources.requests["cpu"] = model::Quantity::FromMilli(cpu_milli);
  if (memory_bytes >= 0) {
    c.resources.requests["memory"] =
        model::Quantity::FromUnits(memory_bytes, model::Quantity::Format::kBinarySI);
  }
  return c;
}

// A template for `deployment` whose single container requests cpu/memory (-1: no request).
inline PodTemplate MakeTemplate(const std::string& deployment, int64_t cpu_milli,
                                int64_t memory_bytes) {
  PodTemplate t;
  t.deployment = deployment;
  t.labels["app"] = deployment.empty() ? "lone" : deployment;
  t.spec.containers.push_back(MakeContainer(cpu_milli, memory_bytes));
  return t;
}

inline model::PodAffinityTerm AntiAffinityTerm(const std::string& app,
                                               const std::string& topology_key) {
  model::PodAffinityTerm term;
  term.label_selector.match_labels["app"] = app;
  term.topology_key = topology_key;
  return term;
}

}  // namespace ballast::scheduler::testing
