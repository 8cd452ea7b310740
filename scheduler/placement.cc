#include "scheduler/placement.h"

#include <algorithm>
#include <cmath>
#include <optional>
#include <unordered_map>
#include <utility>

namespace ballast::scheduler {
namespace {

constexpr int64_t kMaxNodeScore = 100;
// kube-scheduler counts a container without requests as 100m cpu / 200Mi memory when scoring.
constexpr int64_t kDefaultMilliCpuRequest = 100;
constexpr int64_t kDefaultMemoryRequest = 200LL * 1024 * 1024;

// Quantities are clamped to 2^50 (a pebibyte, or 10^12 cpus) and per-node sums saturate at
// 2^62, so that no score or fit computation can overflow whatever nodes and pods declare.
constexpr int64_t kMaxQuantity = int64_t{1} << 50;
constexpr int64_t kMaxSum = int64_t{1} << 62;

int64_t Clamp(int64_t v) { return v < 0 ? 0 : v > kMaxQuantity ? kMaxQuantity : v; }

// a + sign * b kept within [0, kMaxSum], for a in [0, kMaxSum] and b in [0, kMaxQuantity]
// (so a + b cannot overflow).
int64_t SatAddScaled(int64_t a, int sign, int64_t b) {
  const int64_t r = sign > 0 ? a + b : a - b;
  return r < 0 ? 0 : r > kMaxSum ? kMaxSum : r;
}

constexpr char kHostnameKey[] = "kubernetes.io/hostname";
constexpr char kZoneKey[] = "topology.kubernetes.io/zone";
constexpr int64_t kHostnameMaxSkew = 3;
constexpr int64_t kZoneMaxSkew = 5;

constexpr int64_t kWeightTaintToleration = 3;
constexpr int64_t kWeightNodeAffinity = 2;
constexpr int64_t kWeightPodTopologySpread = 2;
constexpr int64_t kWeightInterPodAffinity = 2;
constexpr int64_t kWeightNodeResourcesFit = 1;
constexpr int64_t kWeightBalancedAllocation = 1;

// Reason texts, in kube-scheduler's words.
enum FixedReason : int32_t {
  kReasonUnschedulable = 0,
  kReasonNodeSelector,
  kReasonHostPorts,
  kReasonTooManyPods,
  kReasonCpu,
  kReasonMemory,
  kReasonAntiAffinity,
  kReasonExistingAntiAffinity,
  kFixedReasonCount,
};
constexpr const char* kFixedReasonText[kFixedReasonCount] = {
    "node(s) were unschedulable",
    "node(s) didn't match Pod's node affinity/selector",
    "node(s) didn't have free ports for the requested pod ports",
    "Too many pods",
    "Insufficient cpu",
    "Insufficient memory",
    "node(s) didn't match pod anti-affinity rules",
    "node(s) didn't satisfy existing pods anti-affinity rules",
};

uint64_t SplitMix64(uint64_t& state) {
  uint64_t z = (state += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

// Kubernetes' Toleration.ToleratesTaint.
bool Tolerates(const model::Toleration& t, const model::Taint& taint) {
  if (!t.effect.empty() && t.effect != taint.effect) return false;
  if (!t.key.empty() && t.key != taint.key) return false;
  if (t.op == "Exists") return true;
  if (t.op.empty() || t.op == "Equal") return t.value == taint.value;
  return false;
}

bool ToleratedByAny(const std::vector<model::Toleration>& tolerations, const model::Taint& taint) {
  for (const auto& t : tolerations) {
    if (Tolerates(t, taint)) return true;
  }
  return false;
}

int64_t ResourceOf(const model::ResourceList& allocatable, const model::ResourceList& capacity,
                   const std::string& name, bool milli) {
  auto it = allocatable.find(name);
  if (it == allocatable.end()) {
    it = capacity.find(name);
    if (it == capacity.end()) return 0;
  }
  return Clamp(milli ? it->second.MilliValue() : it->second.Value());
}

uint32_t PortKey(const std::string& protocol, int32_t port) {
  uint32_t proto = protocol == "UDP" ? 1 : protocol == "SCTP" ? 2 : 0;
  return (proto << 16) | static_cast<uint32_t>(port & 0xffff);
}

// The preferred nodeAffinity terms that count: a weight outside 1-100 (which validation
// refuses) counts for nothing.
std::vector<const model::PreferredSchedulingTerm*> CountedPreferredTerms(
    const model::NodeAffinity* affinity) {
  std::vector<const model::PreferredSchedulingTerm*> out;
  if (affinity == nullptr) return out;
  for (const auto& p : affinity->preferred) {
    if (p.weight > 0 && p.weight <= 100) out.push_back(&p);
  }
  return out;
}

}  // namespace

std::string RequiredRuntime(const model::PodTemplateSpec& template_spec) {
  auto it = template_spec.annotations.find(model::kAnnotationRuntime);
  if (it != template_spec.annotations.end() && !it->second.empty()) return it->second;
  for (const auto& c : template_spec.spec.containers) {
    if (!c.image.empty() && c.command.empty()) return "docker";
  }
  return "process";
}

PodTemplate TemplateOf(const model::Deployment& deployment) {
  PodTemplate t;
  t.namespace_ = deployment.metadata.namespace_;
  t.deployment = deployment.metadata.name;
  t.labels = deployment.spec.template_.labels;
  t.spec = deployment.spec.template_.spec;
  t.runtime = RequiredRuntime(deployment.spec.template_);
  return t;
}

int32_t AdaptiveNodesToScore(int32_t num_nodes) {
  constexpr int32_t kMinFeasibleNodesToFind = 100;
  constexpr int32_t kMinFeasibleNodesPercentageToFind = 5;
  if (num_nodes < kMinFeasibleNodesToFind) return num_nodes;
  int32_t percentage = 50 - num_nodes / 125;
  if (percentage < kMinFeasibleNodesPercentageToFind)
    percentage = kMinFeasibleNodesPercentageToFind;
  int32_t n = static_cast<int32_t>(static_cast<int64_t>(num_nodes) * percentage / 100);
  return n < kMinFeasibleNodesToFind ? kMinFeasibleNodesToFind : n;
}

struct Scheduler::State {
  struct NodeRec {
    std::string name;
    model::StringMap labels;
    std::vector<model::Taint> taints;  // declared ones, then not-ready when the node is not ready
    std::vector<std::string> runtimes;
    bool unschedulable = false;
    std::vector<uint32_t> ports;  // host ports in use
  };

  // What changes as pods are placed, kept apart and small: filtering and scoring read it for
  // hundreds of nodes per pod.
  struct Load {
    int64_t cpu_alloc = 0;  // milli-cpu
    int64_t mem_alloc = 0;  // bytes
    int64_t cpu_req = 0;    // requests as written
    int64_t mem_req = 0;
    int64_t cpu_nz = 0;  // requests with kube-scheduler's non-zero defaults, for scoring
    int64_t mem_nz = 0;
    int32_t pods = 0;
    int32_t max_pods = 0;
  };

  // Templates that filter nodes alike share the static part of the filters.
  struct StaticClass {
    model::StringMap node_selector;
    std::vector<model::Toleration> tolerations;
    std::string runtime;
    std::optional<model::NodeAffinity> node_affinity;  // spec.affinity.nodeAffinity
    std::vector<int32_t> reason;                       // per node: reason id, -1 when it passes
    std::vector<int32_t> preferred_affinity;  // per node: matching preferred terms' weights;
                                              // empty when the pod has none
    std::vector<uint8_t> prefer_no_schedule;  // per node: untolerated PreferNoSchedule taints
  };

  struct Topology {
    std::string key;
    std::vector<int32_t> domain;  // per node, -1 when the node lacks the label
    int32_t domains = 0;
  };

  // Pods counted per topology domain.
  struct Counter {
    enum class Kind { kGroup, kTemplate, kSelector };
    Kind kind = Kind::kGroup;
    int32_t topo = 0;
    int32_t target = -1;  // group or template id
    model::LabelSelector selector;
    std::vector<std::string> namespaces;
    std::vector<int32_t> counts;  // per domain
  };

  struct Term {
    model::LabelSelector selector;
    std::vector<std::string> namespaces;  // resolved: never empty
    int32_t topo = 0;
    int32_t weight = 0;             // 0: required
    int32_t template_counter = -1;  // counts the owner's pods over `topo`
  };

  struct Tmpl {
    std::string namespace_;
    model::StringMap labels;
    int32_t group = -1;
    int32_t cls = 0;
    int64_t cpu = 0;
    int64_t mem = 0;
    int64_t cpu_nz = 0;
    int64_t mem_nz = 0;
    std::vector<uint32_t> ports;
    int32_t host_counter = -1;
    int32_t zone_counter = -1;
    std::vector<Term> terms;
    std::vector<int32_t> anti_required;                       // selector counters
    std::vector<std::pair<int32_t, int32_t>> anti_preferred;  // (selector counter, weight)
    std::vector<int32_t> existing_required;                   // others' template counters
    std::vector<std::pair<int32_t, int32_t>> existing_preferred;
    std::vector<int32_t> on_bind;  // counters a pod of this template adds to
    std::vector<int32_t> placed;   // node index per bound pod
  };

  PlacementOptions options;
  int32_t nodes_to_score = 0;
  std::vector<NodeRec> nodes;
  std::vector<Load> load;  // per node
  std::unordered_map<std::string, int32_t> node_index;
  std::vector<std::string> reasons;  // interned reason texts
  std::unordered_map<std::string, int32_t> reason_index;
  std::vector<StaticClass> classes;
  std::vector<Topology> topologies;
  std::vector<Counter> counters;
  std::map<std::pair<std::string, std::string>, int32_t> groups;
  std::vector<Tmpl> templates;
  int32_t zone_topo = -1;
  int32_t next_start = 0;
  uint64_t rng = 0;

  // Scratch space reused across Place calls.
  struct Scratch {
    std::vector<int64_t> scores;
    std::vector<int64_t> raw;
    std::vector<uint32_t> zone_stamp;
    uint32_t stamp = 0;
  };
  std::vector<int32_t> candidates;
  Scratch scratch;

  void Init(std::vector<const model::Node*> sorted, PlacementOptions opts);
  int32_t Reason(const std::string& text);
  int32_t Topo(const std::string& key);
  int32_t Class(const model::PodSpec& spec, const std::string& runtime);
  int32_t AddCounter(Counter c);
  bool CounterMatches(const Counter& c, int32_t template_id) const;
  int32_t CountAt(int32_t counter, int32_t node) const {
    const Counter& c = counters[counter];
    int32_t d = topologies[c.topo].domain[node];
    return d < 0 ? 0 : c.counts[d];
  }
  void AddPod(int32_t t, int32_t node, int sign);
  // Fills `out` with the reason ids the node fails with (empty: feasible). Returns the count.
  int Filter(const Tmpl& t, int32_t node, int32_t out[4]) const;
  // Fills scratch.scores with each candidate's weighted total.
  void Score(const Tmpl& t, const std::vector<int32_t>& cand, Scratch& scratch) const;
  std::string FailureSummary(const Tmpl& t) const;
};

void Scheduler::State::Init(std::vector<const model::Node*> sorted, PlacementOptions opts) {
  options = opts;
  rng = opts.seed;
  std::sort(sorted.begin(), sorted.end(),
            [](const model::Node* a, const model::Node* b) { return a->name < b->name; });
  for (int i = 0; i < kFixedReasonCount; ++i) Reason(kFixedReasonText[i]);
  nodes.reserve(sorted.size());
  for (const model::Node* n : sorted) {
    if (node_index.count(n->name)) continue;  // duplicate names: the first one wins
    NodeRec r;
    r.name = n->name;
    r.labels = n->labels;
    r.taints = n->taints;
    if (!n->ready) r.taints.push_back({"node.kubernetes.io/not-ready", "", "NoSchedule"});
    r.runtimes = n->runtimes;
    r.unschedulable = n->unschedulable;
    Load l;
    l.cpu_alloc = ResourceOf(n->allocatable, n->capacity, "cpu", true);
    l.mem_alloc = ResourceOf(n->allocatable, n->capacity, "memory", false);
    l.max_pods = n->max_pods;
    node_index.emplace(r.name, static_cast<int32_t>(nodes.size()));
    nodes.push_back(std::move(r));
    load.push_back(l);
  }
  int32_t n = static_cast<int32_t>(nodes.size());
  if (options.nodes_to_score == kAdaptiveNodesToScore) {
    nodes_to_score = AdaptiveNodesToScore(n);
  } else {
    nodes_to_score = std::max<int32_t>(1, std::min(options.nodes_to_score, std::max(n, 1)));
  }
  bool any_zone = false;
  for (const auto& r : nodes) any_zone = any_zone || r.labels.count(kZoneKey) > 0;
  if (any_zone) zone_topo = Topo(kZoneKey);
}

int32_t Scheduler::State::Reason(const std::string& text) {
  auto [it, inserted] = reason_index.emplace(text, static_cast<int32_t>(reasons.size()));
  if (inserted) reasons.push_back(text);
  return it->second;
}

int32_t Scheduler::State::Topo(const std::string& key) {
  for (size_t i = 0; i < topologies.size(); ++i) {
    if (topologies[i].key == key) return static_cast<int32_t>(i);
  }
  Topology topo;
  topo.key = key;
  topo.domain.assign(nodes.size(), -1);
  std::unordered_map<std::string, int32_t> values;
  for (size_t i = 0; i < nodes.size(); ++i) {
    auto it = nodes[i].labels.find(key);
    const std::string* value = nullptr;
    if (it != nodes[i].labels.end()) {
      value = &it->second;
    } else if (key == kHostnameKey) {
      value = &nodes[i].name;  // every node has a hostname; agents may not label it
    }
    if (value == nullptr) continue;
    auto [v, inserted] = values.emplace(*value, topo.domains);
    if (inserted) ++topo.domains;
    topo.domain[i] = v->second;
  }
  topologies.push_back(std::move(topo));
  return static_cast<int32_t>(topologies.size() - 1);
}

int32_t Scheduler::State::Class(const model::PodSpec& spec, const std::string& runtime) {
  std::optional<model::NodeAffinity> affinity;
  if (spec.affinity) affinity = spec.affinity->node_affinity;
  for (size_t i = 0; i < classes.size(); ++i) {
    const StaticClass& c = classes[i];
    if (c.node_selector == spec.node_selector && c.tolerations == spec.tolerations &&
        c.runtime == runtime && c.node_affinity == affinity) {
      return static_cast<int32_t>(i);
    }
  }
  StaticClass c;
  c.node_selector = spec.node_selector;
  c.tolerations = spec.tolerations;
  c.runtime = runtime;
  c.node_affinity = std::move(affinity);
  const model::NodeAffinity* node_affinity = c.node_affinity ? &*c.node_affinity : nullptr;
  const std::vector<const model::PreferredSchedulingTerm*> preferred =
      CountedPreferredTerms(node_affinity);
  const model::NodeSelector* required =
      node_affinity && node_affinity->required ? &*node_affinity->required : nullptr;
  if (!preferred.empty()) c.preferred_affinity.assign(nodes.size(), 0);
  c.reason.assign(nodes.size(), -1);
  c.prefer_no_schedule.assign(nodes.size(), 0);
  const model::Taint unschedulable_taint{"node.kubernetes.io/unschedulable", "", "NoSchedule"};
  const bool tolerates_unschedulable = ToleratedByAny(c.tolerations, unschedulable_taint);
  const int32_t runtime_reason = Reason("node(s) didn't have runtime " + runtime);
  for (size_t i = 0; i < nodes.size(); ++i) {
    const NodeRec& n = nodes[i];
    int pns = 0;
    for (const auto& taint : n.taints) {
      if (taint.effect == "PreferNoSchedule" && !ToleratedByAny(c.tolerations, taint)) ++pns;
    }
    c.prefer_no_schedule[i] = static_cast<uint8_t>(std::min(pns, 255));
    for (const model::PreferredSchedulingTerm* p : preferred) {
      if (p->preference.Matches(n.name, n.labels)) c.preferred_affinity[i] += p->weight;
    }
    if (n.unschedulable && !tolerates_unschedulable) {
      c.reason[i] = kReasonUnschedulable;
      continue;
    }
    const model::Taint* untolerated = nullptr;
    for (const auto& taint : n.taints) {
      if ((taint.effect == "NoSchedule" || taint.effect == "NoExecute") &&
          !ToleratedByAny(c.tolerations, taint)) {
        untolerated = &taint;
        break;
      }
    }
    if (untolerated != nullptr) {
      c.reason[i] = Reason("node(s) had untolerated taint {" + untolerated->key + ": " +
                           untolerated->value + "}");
      continue;
    }
    bool selector_ok = true;
    for (const auto& [k, v] : c.node_selector) {
      auto it = n.labels.find(k);
      if (it == n.labels.end() || it->second != v) {
        selector_ok = false;
        break;
      }
    }
    if (selector_ok && required != nullptr) {  // terms are ORed
      selector_ok = std::any_of(
          required->node_selector_terms.begin(), required->node_selector_terms.end(),
          [&](const model::NodeSelectorTerm& term) { return term.Matches(n.name, n.labels); });
    }
    if (!selector_ok) {
      c.reason[i] = kReasonNodeSelector;
      continue;
    }
    if (std::find(n.runtimes.begin(), n.runtimes.end(), runtime) == n.runtimes.end()) {
      c.reason[i] = runtime_reason;
    }
  }
  classes.push_back(std::move(c));
  return static_cast<int32_t>(classes.size() - 1);
}

bool Scheduler::State::CounterMatches(const Counter& c, int32_t template_id) const {
  const Tmpl& t = templates[template_id];
  switch (c.kind) {
    case Counter::Kind::kGroup:
      return t.group == c.target;
    case Counter::Kind::kTemplate:
      return template_id == c.target;
    case Counter::Kind::kSelector:
      // An absent label selector matches no pod (Kubernetes' PodAffinityTerm semantics).
      if (c.selector.empty()) return false;
      if (std::find(c.namespaces.begin(), c.namespaces.end(), t.namespace_) == c.namespaces.end()) {
        return false;
      }
      return c.selector.Matches(t.labels);
  }
  return false;
}

int32_t Scheduler::State::AddCounter(Counter c) {
  for (size_t i = 0; i < counters.size(); ++i) {
    const Counter& o = counters[i];
    if (o.kind == c.kind && o.topo == c.topo && o.target == c.target && o.selector == c.selector &&
        o.namespaces == c.namespaces) {
      return static_cast<int32_t>(i);
    }
  }
  c.counts.assign(topologies[c.topo].domains, 0);
  counters.push_back(std::move(c));
  const int32_t id = static_cast<int32_t>(counters.size() - 1);
  // Templates registered earlier may already have pods that this counter must see.
  for (size_t t = 0; t < templates.size(); ++t) {
    if (!CounterMatches(counters[id], static_cast<int32_t>(t))) continue;
    templates[t].on_bind.push_back(id);
    for (int32_t node : templates[t].placed) {
      int32_t d = topologies[counters[id].topo].domain[node];
      if (d >= 0) ++counters[id].counts[d];
    }
  }
  return id;
}

void Scheduler::State::AddPod(int32_t t, int32_t node, int sign) {
  Tmpl& tm = templates[t];
  NodeRec& n = nodes[node];
  Load& l = load[node];
  l.cpu_req = SatAddScaled(l.cpu_req, sign, tm.cpu);
  l.mem_req = SatAddScaled(l.mem_req, sign, tm.mem);
  l.cpu_nz = SatAddScaled(l.cpu_nz, sign, tm.cpu_nz);
  l.mem_nz = SatAddScaled(l.mem_nz, sign, tm.mem_nz);
  l.pods += sign;
  for (uint32_t p : tm.ports) {
    if (sign > 0) {
      n.ports.push_back(p);
    } else {
      auto it = std::find(n.ports.begin(), n.ports.end(), p);
      if (it != n.ports.end()) n.ports.erase(it);
    }
  }
  for (int32_t c : tm.on_bind) {
    int32_t d = topologies[counters[c].topo].domain[node];
    if (d >= 0) counters[c].counts[d] += sign;
  }
}

int Scheduler::State::Filter(const Tmpl& t, int32_t node, int32_t out[4]) const {
  const int32_t static_reason = classes[t.cls].reason[node];
  if (static_reason >= 0) {
    out[0] = static_reason;
    return 1;
  }
  if (!t.ports.empty()) {
    const std::vector<uint32_t>& used = nodes[node].ports;
    for (uint32_t p : t.ports) {
      if (std::find(used.begin(), used.end(), p) != used.end()) {
        out[0] = kReasonHostPorts;
        return 1;
      }
    }
  }
  const Load& n = load[node];
  int k = 0;
  if (n.pods + 1 > n.max_pods) out[k++] = kReasonTooManyPods;
  if (t.cpu > 0 && t.cpu > n.cpu_alloc - n.cpu_req) out[k++] = kReasonCpu;
  if (t.mem > 0 && t.mem > n.mem_alloc - n.mem_req) out[k++] = kReasonMemory;
  if (k > 0) return k;
  for (int32_t c : t.anti_required) {
    if (CountAt(c, node) > 0) {
      out[0] = kReasonAntiAffinity;
      return 1;
    }
  }
  for (int32_t c : t.existing_required) {
    if (CountAt(c, node) > 0) {
      out[0] = kReasonExistingAntiAffinity;
      return 1;
    }
  }
  return 0;
}

namespace {

int64_t LeastAllocated(int64_t requested, int64_t capacity) {
  if (capacity <= 0 || requested > capacity) return 0;
  return (capacity - requested) * kMaxNodeScore / capacity;
}

int64_t MostAllocated(int64_t requested, int64_t capacity) {
  if (capacity <= 0) return 0;
  if (requested > capacity) requested = capacity;
  return requested * kMaxNodeScore / capacity;
}

}  // namespace

void Scheduler::State::Score(const Tmpl& t, const std::vector<int32_t>& cand,
                             Scratch& scratch) const {
  const size_t m = cand.size();
  std::vector<int64_t>& out = scratch.scores;
  out.resize(m);
  const StaticClass& cls = classes[t.cls];
  const bool most = options.scoring == ResourceScoring::kMostAllocated;

  // Spread weights depend on how many hostnames and zones are being scored.
  const bool spread = t.group >= 0;
  const bool use_zone = spread && t.zone_counter >= 0;
  const double host_weight = std::log(static_cast<double>(m) + 2.0);
  double zone_weight = 0;
  if (use_zone) {
    if (++scratch.stamp == 0) {
      std::fill(scratch.zone_stamp.begin(), scratch.zone_stamp.end(), 0);
      scratch.stamp = 1;
    }
    scratch.zone_stamp.resize(topologies[zone_topo].domains, 0);
    int64_t zones = 0;
    for (int32_t node : cand) {
      const int32_t d = topologies[zone_topo].domain[node];
      if (d >= 0 && scratch.zone_stamp[d] != scratch.stamp) {
        scratch.zone_stamp[d] = scratch.stamp;
        ++zones;
      }
    }
    zone_weight = std::log(static_cast<double>(zones) + 2.0);
  }
  const Counter* host = spread ? &counters[t.host_counter] : nullptr;
  const std::vector<int32_t>* host_domain = spread ? &topologies[host->topo].domain : nullptr;
  const Counter* zone = use_zone ? &counters[t.zone_counter] : nullptr;
  const std::vector<int32_t>* zone_domain = use_zone ? &topologies[zone_topo].domain : nullptr;
  const bool affinity = !t.anti_preferred.empty() || !t.existing_preferred.empty();

  // Pass 1: the plugins scored per node alone (resources, balance), and the raw values of the
  // plugins normalized over all candidates (taints, spread, inter-pod affinity).
  scratch.raw.resize(3 * m);
  int64_t* raw_taint = scratch.raw.data();
  int64_t* raw_spread = raw_taint + m;
  int64_t* raw_affinity = raw_spread + m;
  int64_t max_taint = 0;
  const bool node_pref = !cls.preferred_affinity.empty();
  int64_t max_node_pref = 0;
  if (node_pref) {
    for (int32_t node : cand) {
      max_node_pref = std::max<int64_t>(max_node_pref, cls.preferred_affinity[node]);
    }
  }
  int64_t min_spread = std::numeric_limits<int64_t>::max(), max_spread = 0;
  int64_t min_aff = std::numeric_limits<int64_t>::max();
  int64_t max_aff = std::numeric_limits<int64_t>::min();
  for (size_t i = 0; i < m; ++i) {
    const int32_t node = cand[i];
    const Load& n = load[node];
    const int64_t cpu = n.cpu_nz + t.cpu_nz;
    const int64_t mem = n.mem_nz + t.mem_nz;
    const int64_t fit = most ? MostAllocated(cpu, n.cpu_alloc) + MostAllocated(mem, n.mem_alloc)
                             : LeastAllocated(cpu, n.cpu_alloc) + LeastAllocated(mem, n.mem_alloc);
    double fractions[2];
    int used = 0;
    if (n.cpu_alloc > 0) {
      fractions[used++] =
          std::min(1.0, static_cast<double>(n.cpu_req + t.cpu) / static_cast<double>(n.cpu_alloc));
    }
    if (n.mem_alloc > 0) {
      fractions[used++] =
          std::min(1.0, static_cast<double>(n.mem_req + t.mem) / static_cast<double>(n.mem_alloc));
    }
    const double std_dev = used == 2 ? std::fabs(fractions[0] - fractions[1]) / 2.0 : 0.0;
    out[i] = kWeightNodeResourcesFit * (fit / 2) +
             kWeightBalancedAllocation *
                 static_cast<int64_t>((1.0 - std_dev) * static_cast<double>(kMaxNodeScore));

    raw_taint[i] = cls.prefer_no_schedule[node];
    max_taint = std::max(max_taint, raw_taint[i]);

    if (spread) {
      double sc = static_cast<double>(host->counts[(*host_domain)[node]]) * host_weight +
                  static_cast<double>(kHostnameMaxSkew - 1);
      if (use_zone) {
        const int32_t d = (*zone_domain)[node];
        if (d >= 0) {
          sc += static_cast<double>(zone->counts[d]) * zone_weight +
                static_cast<double>(kZoneMaxSkew - 1);
        }
      }
      raw_spread[i] = static_cast<int64_t>(std::llround(sc));
      min_spread = std::min(min_spread, raw_spread[i]);
      max_spread = std::max(max_spread, raw_spread[i]);
    }
    if (affinity) {
      int64_t a = 0;
      for (auto [c, w] : t.anti_preferred) a -= static_cast<int64_t>(w) * CountAt(c, node);
      for (auto [c, w] : t.existing_preferred) a -= static_cast<int64_t>(w) * CountAt(c, node);
      raw_affinity[i] = a;
      min_aff = std::min(min_aff, a);
      max_aff = std::max(max_aff, a);
    }
  }

  // Pass 2: normalize as each kube-scheduler plugin does and add with its weight.
  const int64_t aff_range = affinity ? max_aff - min_aff : 0;
  for (size_t i = 0; i < m; ++i) {
    // TaintToleration: fewer untolerated PreferNoSchedule taints is better (reversed).
    const int64_t taint =
        max_taint == 0 ? kMaxNodeScore : kMaxNodeScore - kMaxNodeScore * raw_taint[i] / max_taint;
    int64_t total = out[i] + kWeightTaintToleration * taint;
    // NodeAffinity: preferred terms' weights, scaled so the best node gets 100.
    if (max_node_pref > 0) {
      total +=
          kWeightNodeAffinity * kMaxNodeScore * cls.preferred_affinity[cand[i]] / max_node_pref;
    }
    if (spread) {
      total += kWeightPodTopologySpread *
               (max_spread == 0
                    ? kMaxNodeScore
                    : kMaxNodeScore * (max_spread + min_spread - raw_spread[i]) / max_spread);
    }
    if (aff_range > 0) {
      const double f = static_cast<double>(kMaxNodeScore) *
                       static_cast<double>(raw_affinity[i] - min_aff) /
                       static_cast<double>(aff_range);
      total += kWeightInterPodAffinity * static_cast<int64_t>(f);
    }
    out[i] = total;
  }
}

std::string Scheduler::State::FailureSummary(const Tmpl& t) const {
  if (nodes.empty()) return "no nodes available to schedule pods";
  std::map<int32_t, int64_t> histogram;
  int32_t out[4];
  for (size_t i = 0; i < nodes.size(); ++i) {
    int k = Filter(t, static_cast<int32_t>(i), out);
    for (int j = 0; j < k; ++j) ++histogram[out[j]];
  }
  std::vector<std::string> parts;
  for (const auto& [reason, count] : histogram) {
    parts.push_back(std::to_string(count) + " " + reasons[reason]);
  }
  // kube-scheduler sorts the "<count> <reason>" strings as strings.
  std::sort(parts.begin(), parts.end());
  std::string text = "0/" + std::to_string(nodes.size()) + " nodes are available:";
  for (size_t i = 0; i < parts.size(); ++i) text += (i == 0 ? " " : ", ") + parts[i];
  return text + ".";
}

Scheduler::Scheduler(const std::vector<model::Node>& nodes, PlacementOptions options)
    : state_(std::make_unique<State>()) {
  std::vector<const model::Node*> ptrs;
  ptrs.reserve(nodes.size());
  for (const auto& n : nodes) ptrs.push_back(&n);
  state_->Init(std::move(ptrs), options);
}

Scheduler Scheduler::FromNodeMap(const std::map<std::string, model::Node>& nodes,
                                 PlacementOptions options) {
  Scheduler s(std::vector<model::Node>{}, options);
  std::vector<const model::Node*> ptrs;
  ptrs.reserve(nodes.size());
  for (const auto& [name, n] : nodes) ptrs.push_back(&n);
  s.state_ = std::make_unique<State>();
  s.state_->Init(std::move(ptrs), options);
  return s;
}

Scheduler::~Scheduler() = default;
Scheduler::Scheduler(Scheduler&&) noexcept = default;
Scheduler& Scheduler::operator=(Scheduler&&) noexcept = default;

TemplateId Scheduler::AddTemplate(const PodTemplate& pod_template) {
  State& s = *state_;
  const int32_t id = static_cast<int32_t>(s.templates.size());
  s.templates.emplace_back();
  {
    State::Tmpl& t = s.templates.back();
    t.namespace_ = pod_template.namespace_;
    t.labels = pod_template.labels;
    t.cls = s.Class(pod_template.spec, pod_template.runtime);
    for (const auto& c : pod_template.spec.containers) {
      auto cpu = c.resources.requests.find("cpu");
      auto mem = c.resources.requests.find("memory");
      const int64_t cpu_milli =
          cpu == c.resources.requests.end() ? 0 : Clamp(cpu->second.MilliValue());
      const int64_t mem_bytes = mem == c.resources.requests.end() ? 0 : Clamp(mem->second.Value());
      t.cpu = Clamp(t.cpu + cpu_milli);
      t.mem = Clamp(t.mem + mem_bytes);
      t.cpu_nz = Clamp(t.cpu_nz +
                       (cpu == c.resources.requests.end() ? kDefaultMilliCpuRequest : cpu_milli));
      t.mem_nz =
          Clamp(t.mem_nz + (mem == c.resources.requests.end() ? kDefaultMemoryRequest : mem_bytes));
      for (const auto& p : c.ports) {
        if (p.host_port > 0) t.ports.push_back(PortKey(p.protocol, p.host_port));
      }
    }
    if (!pod_template.deployment.empty()) {
      auto key = std::make_pair(pod_template.namespace_, pod_template.deployment);
      auto [it, inserted] = s.groups.emplace(key, static_cast<int32_t>(s.groups.size()));
      t.group = it->second;
    }
  }
  // Counters this template's pods add to (existing ones), before creating new ones: AddCounter
  // registers itself with every matching template, this one included.
  for (size_t c = 0; c < s.counters.size(); ++c) {
    if (s.CounterMatches(s.counters[c], id)) {
      s.templates[id].on_bind.push_back(static_cast<int32_t>(c));
    }
  }
  if (s.templates[id].group >= 0) {
    State::Counter host;
    host.kind = State::Counter::Kind::kGroup;
    host.target = s.templates[id].group;
    host.topo = s.Topo(kHostnameKey);
    int32_t host_id = s.AddCounter(std::move(host));
    int32_t zone_id = -1;
    if (s.zone_topo >= 0) {
      State::Counter zone;
      zone.kind = State::Counter::Kind::kGroup;
      zone.target = s.templates[id].group;
      zone.topo = s.zone_topo;
      zone_id = s.AddCounter(std::move(zone));
    }
    s.templates[id].host_counter = host_id;
    s.templates[id].zone_counter = zone_id;
  }
  // Pod anti-affinity terms.
  if (pod_template.spec.affinity && pod_template.spec.affinity->pod_anti_affinity) {
    const auto& anti = *pod_template.spec.affinity->pod_anti_affinity;
    auto add_term = [&](const model::PodAffinityTerm& term, int32_t weight) {
      if (term.topology_key.empty()) return;
      State::Term tr;
      tr.selector = term.label_selector;
      tr.namespaces = term.namespaces;
      if (tr.namespaces.empty()) tr.namespaces.push_back(pod_template.namespace_);
      tr.topo = s.Topo(term.topology_key);
      tr.weight = weight;
      State::Counter by_selector;
      by_selector.kind = State::Counter::Kind::kSelector;
      by_selector.topo = tr.topo;
      by_selector.selector = tr.selector;
      by_selector.namespaces = tr.namespaces;
      int32_t sel = s.AddCounter(std::move(by_selector));
      State::Counter by_template;
      by_template.kind = State::Counter::Kind::kTemplate;
      by_template.topo = tr.topo;
      by_template.target = id;
      tr.template_counter = s.AddCounter(std::move(by_template));
      if (weight == 0) {
        s.templates[id].anti_required.push_back(sel);
      } else {
        s.templates[id].anti_preferred.emplace_back(sel, weight);
      }
      s.templates[id].terms.push_back(std::move(tr));
    };
    for (const auto& term : anti.required) add_term(term, 0);
    for (const auto& wt : anti.preferred) {
      if (wt.weight > 0) add_term(wt.term, wt.weight);
    }
  }
  // Symmetry: placed pods' terms that select this template, and this template's terms that
  // select earlier templates' pods.
  auto term_selects = [&](const State::Term& term, int32_t other) {
    const State::Tmpl& o = s.templates[other];
    if (term.selector.empty()) return false;
    if (std::find(term.namespaces.begin(), term.namespaces.end(), o.namespace_) ==
        term.namespaces.end()) {
      return false;
    }
    return term.selector.Matches(o.labels);
  };
  for (int32_t b = 0; b <= id; ++b) {
    for (const State::Term& term : s.templates[b].terms) {
      if (!term_selects(term, id)) continue;
      if (term.weight == 0) {
        s.templates[id].existing_required.push_back(term.template_counter);
      } else {
        s.templates[id].existing_preferred.emplace_back(term.template_counter, term.weight);
      }
    }
  }
  for (int32_t b = 0; b < id; ++b) {
    for (const State::Term& term : s.templates[id].terms) {
      if (!term_selects(term, b)) continue;
      if (term.weight == 0) {
        s.templates[b].existing_required.push_back(term.template_counter);
      } else {
        s.templates[b].existing_preferred.emplace_back(term.template_counter, term.weight);
      }
    }
  }
  return id;
}

bool Scheduler::Bind(TemplateId t, std::string_view node) {
  State& s = *state_;
  auto it = s.node_index.find(std::string(node));
  if (it == s.node_index.end()) return false;
  s.AddPod(t, it->second, +1);
  s.templates[t].placed.push_back(it->second);
  return true;
}

bool Scheduler::Unbind(TemplateId t, std::string_view node) {
  State& s = *state_;
  auto it = s.node_index.find(std::string(node));
  if (it == s.node_index.end()) return false;
  auto& placed = s.templates[t].placed;
  auto p = std::find(placed.begin(), placed.end(), it->second);
  if (p == placed.end()) return false;
  *p = placed.back();
  placed.pop_back();
  s.AddPod(t, it->second, -1);
  return true;
}

Placement Scheduler::Place(TemplateId id) {
  State& s = *state_;
  const State::Tmpl& t = s.templates[id];
  const int32_t n = static_cast<int32_t>(s.nodes.size());
  Placement result;
  if (n == 0) {
    result.reason = s.FailureSummary(t);
    return result;
  }
  auto& cand = s.candidates;
  cand.clear();
  int32_t processed = 0;
  int32_t reasons[4];
  for (int32_t i = 0; i < n && static_cast<int32_t>(cand.size()) < s.nodes_to_score; ++i) {
    int32_t node = s.next_start + i;
    if (node >= n) node -= n;
    ++processed;
    if (s.Filter(t, node, reasons) == 0) cand.push_back(node);
  }
  s.next_start = static_cast<int32_t>((static_cast<int64_t>(s.next_start) + processed) % n);
  if (cand.empty()) {
    result.reason = s.FailureSummary(t);
    return result;
  }
  int32_t chosen = cand[0];
  if (cand.size() > 1) {
    s.Score(t, cand, s.scratch);
    const std::vector<int64_t>& scores = s.scratch.scores;
    int64_t best = std::numeric_limits<int64_t>::min();
    uint64_t ties = 0;
    for (size_t i = 0; i < cand.size(); ++i) {
      if (scores[i] > best) {
        best = scores[i];
        chosen = cand[i];
        ties = 1;
      } else if (scores[i] == best) {
        ++ties;
        if (SplitMix64(s.rng) % ties == 0) chosen = cand[i];
      }
    }
  }
  s.AddPod(id, chosen, +1);
  s.templates[id].placed.push_back(chosen);
  result.node = s.nodes[chosen].name;
  return result;
}

std::vector<NodeScore> Scheduler::ScoreAllFeasible(TemplateId id) const {
  const State& s = *state_;
  const State::Tmpl& t = s.templates[id];
  std::vector<int32_t> cand;
  int32_t reasons[4];
  for (int32_t i = 0; i < static_cast<int32_t>(s.nodes.size()); ++i) {
    if (s.Filter(t, i, reasons) == 0) cand.push_back(i);
  }
  State::Scratch scratch;
  s.Score(t, cand, scratch);
  std::vector<NodeScore> out;
  out.reserve(cand.size());
  for (size_t i = 0; i < cand.size(); ++i) {
    out.push_back({s.nodes[cand[i]].name, scratch.scores[i]});
  }
  return out;
}

int32_t Scheduler::nodes_to_score() const { return state_->nodes_to_score; }

std::vector<NodeUsage> Scheduler::Usage() const {
  std::vector<NodeUsage> out;
  out.reserve(state_->nodes.size());
  for (size_t i = 0; i < state_->nodes.size(); ++i) {
    const State::Load& l = state_->load[i];
    out.push_back({state_->nodes[i].name, l.cpu_req, l.cpu_alloc, l.mem_req, l.mem_alloc, l.pods});
  }
  return out;
}

}  // namespace ballast::scheduler
