#pragma once

// Placement: which node a new pod runs on, with kube-scheduler's filters, scores and weights.
//
// Pure: no I/O, no threads, no clock. Randomness (tie-breaks between equally scored nodes)
// comes from PlacementOptions::seed, so the same nodes, templates, calls and seed give the same
// answers.
//
// Filters, in kube-scheduler's order; a node is reported under the first one it fails:
//   NodeUnschedulable  cordoned node, unless the pod tolerates node.kubernetes.io/unschedulable
//   TaintToleration    NoSchedule / NoExecute taints; a node that is not ready carries
//                      node.kubernetes.io/not-ready:NoSchedule, as the node lifecycle
//                      controller puts it there in Kubernetes
//   NodeAffinity       spec.nodeSelector and required nodeAffinity (nodeSelectorTerms ORed,
//                      each as model::NodeSelectorTerm::Matches: In, NotIn, Exists,
//                      DoesNotExist, Gt, Lt; matchFields metadata.name)
//   Runtime            (ballast) the node must offer the pod's runtime, see RequiredRuntime
//   NodePorts          hostPort conflicts (same port and protocol)
//   NodeResourcesFit   allocatable cpu, memory and pods (max_pods, 110 by default)
//   InterPodAffinity   required podAntiAffinity of the pod and of the pods already placed
// Scores (0-100 each, normalized like kube-scheduler's plugins) and their default weights:
//   TaintToleration 3      fewer untolerated PreferNoSchedule taints
//   NodeAffinity 2         weights of the matching preferred nodeAffinity terms
//   PodTopologySpread 2    a Deployment's replicas spread over kubernetes.io/hostname
//                          (maxSkew 3) and topology.kubernetes.io/zone (maxSkew 5): the system
//                          default constraints, counting all revisions of the Deployment
//   InterPodAffinity 2     preferred podAntiAffinity (of the pod and of placed pods)
//   NodeResourcesFit 1     LeastAllocated (default) or MostAllocated, cpu and memory weight 1,
//                          pods without requests counted as 100m cpu / 200Mi memory
//   BalancedAllocation 1   cpu and memory fractions close to each other
//
// How many nodes are scored per pod: as kube-scheduler, nodes are filtered round-robin from
// where the previous pod stopped until `nodes_to_score` feasible nodes are found (or every node
// was tried), and only those are scored. A pod is reported unschedulable only after every node
// failed a filter, so sampling never loses a placeable pod.
// ballast scores up to 1,500 feasible nodes by default: every node of a cluster up to that size,
// and at 5,000 nodes a sample that matched exhaustive scoring's utilization spread (within 0.1 %)
// in bench/scheduler while placing ~45,000 pods/s on one core. kube-scheduler's adaptive
// percentageOfNodesToScore (kAdaptiveNodesToScore: 500 of 5,000 nodes) is three times faster but
// left the cpu utilization spread 14 % wider; figures in bench/README.md.

#include <cstdint>
#include <limits>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "model/cluster.h"
#include "model/object.h"

namespace ballast::scheduler {

enum class ResourceScoring {
  kLeastAllocated,  // spread load: prefer the emptiest nodes (kube-scheduler's default)
  kMostAllocated,   // bin-packing: prefer the fullest nodes that still fit
};

// kube-scheduler's default: all nodes below 100, else max(100, n * max(5, 50 - n/125) / 100)
// (500 of 5,000 nodes, 230 of 500).
inline constexpr int32_t kAdaptiveNodesToScore = 0;
inline constexpr int32_t kDefaultNodesToScore = 1500;
inline constexpr int32_t kScoreAllNodes = std::numeric_limits<int32_t>::max();

struct PlacementOptions {
  ResourceScoring scoring = ResourceScoring::kLeastAllocated;
  // Feasible nodes scored per pod: a count, kAdaptiveNodesToScore or kScoreAllNodes.
  int32_t nodes_to_score = kDefaultNodesToScore;
  uint64_t seed = 0;
};

// What placement needs to know about the pods of one Deployment revision. All replicas of a
// revision share one template.
struct PodTemplate {
  std::string namespace_ = "default";
  std::string deployment;   // replicas of one Deployment are spread; "" for a lone pod
  model::StringMap labels;  // what podAntiAffinity label selectors match against
  model::PodSpec spec;
  std::string runtime = "process";  // the node must list it in Node::runtimes
};

// The runtime a pod template needs: the `ballast.dev/runtime` annotation when set; otherwise
// "docker" when a container has an image but no command (nothing to run as a plain process),
// else "process".
std::string RequiredRuntime(const model::PodTemplateSpec& template_spec);

// The template of a Deployment's current pod template.
PodTemplate TemplateOf(const model::Deployment& deployment);

// The node chosen for one pod, or why there is none.
struct Placement {
  std::string node;  // empty when the pod cannot be placed
  // When node is empty, Kubernetes' FailedScheduling text, reasons counted over all nodes and
  // sorted as kube-scheduler sorts them, e.g.
  // "0/5 nodes are available: 2 node(s) didn't match Pod's node affinity/selector, 3 Insufficient
  // memory."
  std::string reason;
  bool ok() const { return !node.empty(); }
};

// A node's total score for a pod, for diagnostics, tests and quality measurement.
struct NodeScore {
  std::string node;
  int64_t score = 0;
};

// Requested resources on one node, for diagnostics and measurements.
struct NodeUsage {
  std::string node;
  int64_t cpu_milli_requested = 0;
  int64_t cpu_milli_allocatable = 0;
  int64_t memory_requested = 0;  // bytes
  int64_t memory_allocatable = 0;
  int32_t pods = 0;
};

using TemplateId = int32_t;

// Places pods onto a fixed set of nodes, one at a time, keeping track of what each node already
// runs. Build one per scheduling pass: construct with the live nodes, AddTemplate the revisions
// involved, Bind the pods that exist, then Place the new ones. For example:
//
//   Scheduler s = Scheduler::FromNodeMap(live.nodes);  // Node::ready as EvaluateNodes says
//   std::map<std::pair<std::string, std::string>, TemplateId> ids;  // (deployment, revision)
//   ... ids[{d.name, rev}] = s.AddTemplate(TemplateOf(d)) for every revision that has pods
//   for (const model::Pod& p : live.pods) {  // terminating pods still hold their resources
//     if (!p.node.empty()) s.Bind(ids.at({p.deployment, p.revision}), p.node);
//   }
//   Placement where = s.Place(ids.at({d.name, rev}));  // once per pod StepRollout starts
//
// Building and binding 100,000 pods on 5,000 nodes takes ~35 ms (bench/README.md).
//
// Not thread-safe; a Scheduler is a value owned by one caller.
class Scheduler {
 public:
  // Copies what it needs from `nodes`. Nodes are considered in name order. A node's capacity
  // is its `allocatable` (cpu, memory), or `capacity` where allocatable lacks the resource.
  explicit Scheduler(const std::vector<model::Node>& nodes, PlacementOptions options = {});
  // The same from the nodes of a model::LiveState.
  static Scheduler FromNodeMap(const std::map<std::string, model::Node>& nodes,
                               PlacementOptions options = {});
  ~Scheduler();
  Scheduler(Scheduler&&) noexcept;
  Scheduler& operator=(Scheduler&&) noexcept;

  // Registers the template of one revision; the id is valid for this Scheduler only.
  TemplateId AddTemplate(const PodTemplate& pod_template);

  // Accounts a pod of template `t` that already runs (or is starting) on `node`, without any
  // filter: resources, ports, pod count, anti-affinity and spread all count it. Returns false
  // and changes nothing when the node is unknown.
  // REQUIRES: t was returned by AddTemplate.
  bool Bind(TemplateId t, std::string_view node);
  // Forgets one pod of template `t` on `node` (stopped). Returns false when there is none.
  bool Unbind(TemplateId t, std::string_view node);

  // Chooses a node for one more pod of template `t` and binds it there.
  // REQUIRES: t was returned by AddTemplate.
  Placement Place(TemplateId t);

  // Every feasible node's total score for one more pod of `t`, scored over all feasible nodes
  // (what kScoreAllNodes would compare), in node order. Binds nothing and does not advance the
  // round-robin start or the random state.
  std::vector<NodeScore> ScoreAllFeasible(TemplateId t) const;

  // The number of feasible nodes scored per pod with these options.
  int32_t nodes_to_score() const;
  std::vector<NodeUsage> Usage() const;

 private:
  struct State;
  std::unique_ptr<State> state_;
};

// kube-scheduler's numFeasibleNodesToFind for percentageOfNodesToScore left at its default.
int32_t AdaptiveNodesToScore(int32_t num_nodes);

}  // namespace ballast::scheduler
