#pragma once

// Value types for the manifests ballast runs: apps/v1 Deployment and v1 Service, and a holder
// for every other kind (listed as unsupported, never dropped).
//
// Field names follow the Kubernetes API. Fields ballast does not use are kept verbatim in the
// `extra` member of the struct at their level (a JSON object), so they survive a round trip and
// show in diffs. After decoding every defaulted field holds its Kubernetes default, so two
// objects compare equal (operator==) exactly when the API server would store the same thing.

#include <compare>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include <nlohmann/json.hpp>

#include "model/quantity.h"

namespace ballast::model {

using Json = nlohmann::json;
using StringMap = std::map<std::string, std::string>;

// Objects are keyed by kind/namespace/name; ordered, so plans and listings are deterministic.
struct ObjectKey {
  std::string kind;
  std::string namespace_;
  std::string name;

  // "Deployment default/web"
  std::string ToString() const;
  friend auto operator<=>(const ObjectKey&, const ObjectKey&) = default;
};

// Where something came from: the file and the 1-based line and column.
struct SourceRef {
  std::string file;
  int line = 0;
  int column = 0;
  friend bool operator==(const SourceRef&, const SourceRef&) = default;
};

// An int or a string such as "25%" or a port name ("http").
struct IntOrString {
  std::variant<int64_t, std::string> value = int64_t{0};

  IntOrString() = default;
  IntOrString(int64_t v) : value(v) {}                 // NOLINT: implicit like the API type
  IntOrString(std::string v) : value(std::move(v)) {}  // NOLINT
  bool is_int() const { return std::holds_alternative<int64_t>(value); }
  int64_t int_value() const { return is_int() ? std::get<int64_t>(value) : 0; }
  const std::string& str_value() const;
  std::string ToString() const;
  friend bool operator==(const IntOrString&, const IntOrString&) = default;
};

// Resolves an int-or-percent ("25%") against a total, rounding up or down as Kubernetes does
// (maxSurge rounds up, maxUnavailable rounds down). Returns -1 when the value is malformed.
int64_t ScaledValue(const IntOrString& v, int64_t total, bool round_up);

struct ObjectMeta {
  std::string name;
  std::string namespace_ = "default";
  StringMap labels;
  StringMap annotations;
  Json extra = Json::object();  // uid, generateName, ownerReferences, ...
  friend bool operator==(const ObjectMeta&, const ObjectMeta&) = default;
};

struct LabelSelectorRequirement {
  std::string key;
  std::string op;  // In, NotIn, Exists, DoesNotExist
  std::vector<std::string> values;
  friend bool operator==(const LabelSelectorRequirement&,
                         const LabelSelectorRequirement&) = default;
};

struct LabelSelector {
  StringMap match_labels;
  std::vector<LabelSelectorRequirement> match_expressions;

  bool empty() const { return match_labels.empty() && match_expressions.empty(); }
  // True when `labels` satisfy every matchLabels entry and every expression.
  bool Matches(const StringMap& labels) const;
  friend bool operator==(const LabelSelector&, const LabelSelector&) = default;
};

struct EnvVar {
  std::string name;
  std::string value;
  Json value_from;  // null when absent; kept, reported as not supported yet
  friend bool operator==(const EnvVar&, const EnvVar&) = default;
};

struct ContainerPort {
  std::string name;
  int32_t container_port = 0;
  std::string protocol = "TCP";
  int32_t host_port = 0;
  Json extra = Json::object();  // hostIP
  friend bool operator==(const ContainerPort&, const ContainerPort&) = default;
};

using ResourceList = std::map<std::string, Quantity>;  // "cpu", "memory", ...

struct ResourceRequirements {
  ResourceList requests;
  ResourceList limits;
  friend bool operator==(const ResourceRequirements&, const ResourceRequirements&) = default;
};

struct HttpHeader {
  std::string name;
  std::string value;
  friend bool operator==(const HttpHeader&, const HttpHeader&) = default;
};

struct HttpGetAction {
  std::string path = "/";
  IntOrString port;
  std::string host;
  std::string scheme = "HTTP";
  std::vector<HttpHeader> http_headers;
  friend bool operator==(const HttpGetAction&, const HttpGetAction&) = default;
};

struct TcpSocketAction {
  IntOrString port;
  std::string host;
  friend bool operator==(const TcpSocketAction&, const TcpSocketAction&) = default;
};

struct ExecAction {
  std::vector<std::string> command;
  friend bool operator==(const ExecAction&, const ExecAction&) = default;
};

struct Probe {
  std::optional<HttpGetAction> http_get;
  std::optional<TcpSocketAction> tcp_socket;
  std::optional<ExecAction> exec;
  int32_t initial_delay_seconds = 0;
  int32_t timeout_seconds = 1;
  int32_t period_seconds = 10;
  int32_t success_threshold = 1;
  int32_t failure_threshold = 3;
  std::optional<int64_t> termination_grace_period_seconds;
  Json extra = Json::object();  // grpc
  friend bool operator==(const Probe&, const Probe&) = default;
};

// securityContext.capabilities, as written: Linux capability names in Kubernetes' spelling
// ("NET_BIND_SERVICE"; container runtimes also take "CAP_NET_BIND_SERVICE" and any case) or
// "ALL". CanonicalCapability() reads one.
struct Capabilities {
  std::vector<std::string> add;
  std::vector<std::string> drop;
  friend bool operator==(const Capabilities&, const Capabilities&) = default;
};

// A container's securityContext. Every field here is applied by both runtimes or refused by
// validation (readOnlyRootFilesystem where the pod surely runs as processes); `extra` keeps the
// rest (seccompProfile: RuntimeDefault, windowsOptions, ...), which validation refuses where it
// would change what runs (seLinuxOptions, appArmorProfile, procMount, another seccompProfile).
struct SecurityContext {
  std::optional<int64_t> run_as_user;   // overrides the pod's
  std::optional<int64_t> run_as_group;  // overrides the pod's
  std::optional<bool> run_as_non_root;  // overrides the pod's
  std::optional<Capabilities> capabilities;
  std::optional<bool> allow_privilege_escalation;
  std::optional<bool> read_only_root_filesystem;
  std::optional<bool> privileged;  // true is refused
  Json extra = Json::object();
  friend bool operator==(const SecurityContext&, const SecurityContext&) = default;
};

struct Container {
  std::string name;
  std::string image;
  std::vector<std::string> command;
  std::vector<std::string> args;
  std::string working_dir;
  std::vector<EnvVar> env;
  std::vector<ContainerPort> ports;
  ResourceRequirements resources;
  std::optional<Probe> readiness_probe;
  std::optional<Probe> liveness_probe;
  std::optional<Probe> startup_probe;
  std::optional<SecurityContext> security_context;
  Json extra = Json::object();  // volumeMounts, imagePullPolicy, ...
  friend bool operator==(const Container&, const Container&) = default;
};

struct Toleration {
  std::string key;
  std::string op = "Equal";  // Equal, Exists
  std::string value;
  std::string effect;  // "", NoSchedule, PreferNoSchedule, NoExecute
  std::optional<int64_t> toleration_seconds;
  friend bool operator==(const Toleration&, const Toleration&) = default;
};

struct PodAffinityTerm {
  LabelSelector label_selector;
  std::vector<std::string> namespaces;
  std::string topology_key;
  friend bool operator==(const PodAffinityTerm&, const PodAffinityTerm&) = default;
};

struct WeightedPodAffinityTerm {
  int32_t weight = 0;
  PodAffinityTerm term;
  friend bool operator==(const WeightedPodAffinityTerm&, const WeightedPodAffinityTerm&) = default;
};

struct PodAntiAffinity {
  std::vector<PodAffinityTerm> required;           // requiredDuringSchedulingIgnoredDuringExecution
  std::vector<WeightedPodAffinityTerm> preferred;  // preferredDuringScheduling...
  friend bool operator==(const PodAntiAffinity&, const PodAntiAffinity&) = default;
};

// One requirement of a node selector term. In matchExpressions `key` is a node label; in
// matchFields it is a node field (Kubernetes knows only metadata.name). Validation holds the
// API server's rules: In and NotIn need values (matchFields: exactly one), Exists and
// DoesNotExist none, Gt and Lt exactly one integer; any other operator is an error.
struct NodeSelectorRequirement {
  std::string key;
  std::string op;  // In, NotIn, Exists, DoesNotExist, Gt, Lt
  std::vector<std::string> values;
  friend bool operator==(const NodeSelectorRequirement&, const NodeSelectorRequirement&) = default;
};

// A Gt or Lt value as it is compared with a node label: decimal, an optional '-', at most 19
// characters, within int64. nullopt for anything else.
std::optional<int64_t> ParseNodeSelectorInteger(std::string_view s);

struct NodeSelectorTerm {
  std::vector<NodeSelectorRequirement> match_expressions;
  std::vector<NodeSelectorRequirement> match_fields;

  // True when the node satisfies every requirement (Kubernetes' semantics; matchFields read the
  // node's name as metadata.name). A term without requirements matches no node, and so does one
  // with a requirement validation refuses (an empty key or operator, an unknown operator or
  // field, Gt or Lt without one integer on both sides).
  bool Matches(std::string_view node_name, const StringMap& node_labels) const;
  friend bool operator==(const NodeSelectorTerm&, const NodeSelectorTerm&) = default;
};

struct NodeSelector {
  std::vector<NodeSelectorTerm> node_selector_terms;  // ORed; validation requires at least one
  friend bool operator==(const NodeSelector&, const NodeSelector&) = default;
};

struct PreferredSchedulingTerm {
  int32_t weight = 0;  // 1-100 once validated
  NodeSelectorTerm preference;
  friend bool operator==(const PreferredSchedulingTerm&, const PreferredSchedulingTerm&) = default;
};

struct NodeAffinity {
  std::optional<NodeSelector> required;            // requiredDuringSchedulingIgnoredDuringExecution
  std::vector<PreferredSchedulingTerm> preferred;  // preferredDuringScheduling...
  friend bool operator==(const NodeAffinity&, const NodeAffinity&) = default;
};

struct Affinity {
  std::optional<NodeAffinity> node_affinity;
  std::optional<PodAntiAffinity> pod_anti_affinity;
  Json extra = Json::object();  // podAffinity: kept, not used yet
  friend bool operator==(const Affinity&, const Affinity&) = default;
};

// The pod's securityContext: the users its containers run as unless they set their own. `extra`
// keeps the rest (fsGroup, supplementalGroups, ...: kept, not applied; listed by `validate
// --verbose`).
struct PodSecurityContext {
  std::optional<int64_t> run_as_user;
  std::optional<int64_t> run_as_group;
  std::optional<bool> run_as_non_root;
  Json extra = Json::object();
  friend bool operator==(const PodSecurityContext&, const PodSecurityContext&) = default;
};

struct PodSpec {
  std::vector<Container> containers;
  std::string restart_policy = "Always";
  StringMap node_selector;
  std::vector<Toleration> tolerations;
  std::optional<Affinity> affinity;
  int64_t termination_grace_period_seconds = 30;
  PodSecurityContext security_context;
  Json extra = Json::object();  // volumes, serviceAccountName, initContainers, ...
  friend bool operator==(const PodSpec&, const PodSpec&) = default;
};

struct PodTemplateSpec {
  StringMap labels;
  StringMap annotations;
  Json metadata_extra = Json::object();
  PodSpec spec;
  friend bool operator==(const PodTemplateSpec&, const PodTemplateSpec&) = default;
};

// What applies to one container of a pod, Kubernetes' precedence resolved: the container's
// runAsUser, runAsGroup and runAsNonRoot, else the pod's; the container's own other fields with
// ballast's defaults (no privilege escalation unless allowed: no_new_privs is set by default,
// where Kubernetes sets it only for `allowPrivilegeEscalation: false`).
struct EffectiveSecurityContext {
  std::optional<int64_t> run_as_user;
  std::optional<int64_t> run_as_group;
  bool run_as_non_root = false;
  std::vector<std::string> cap_add;   // canonical: "CAP_NET_RAW" or "ALL"; unknown names dropped
  std::vector<std::string> cap_drop;  // (validation refuses them)
  bool allow_privilege_escalation = false;
  bool read_only_root_filesystem = false;
  friend bool operator==(const EffectiveSecurityContext&,
                         const EffectiveSecurityContext&) = default;
};
EffectiveSecurityContext EffectiveSecurity(const PodSpec& pod, const Container& container);

// "CAP_NET_RAW" for "NET_RAW", "net_raw" or "CAP_NET_RAW"; "ALL" for any case of "all";
// nullopt for a name that is no Linux capability (CAP_CHOWN .. CAP_CHECKPOINT_RESTORE).
std::optional<std::string> CanonicalCapability(std::string_view name);
// Every Linux capability name, "CAP_CHOWN" first, in the kernel's numbering (index = number).
const std::vector<std::string_view>& CapabilityNames();

// True when the pod surely runs on the process runtime, whatever node it lands on: its
// `ballast.dev/runtime` annotation says "process", or, without one, no container has an image
// and no command (which would need an image runtime) and some container has no image (which no
// image runtime can run).
bool SurelyProcessRuntime(const PodTemplateSpec& template_spec);

// The most replicas a workload may ask for: one object must not be able to pin the reconciler's
// core and stall every heartbeat (a million replicas did). Validation refuses more.
inline constexpr int64_t kMaxReplicas = 10000;

// The pod's pids limit: its `ballast.dev/pids-limit` annotation, else kDefaultPidsLimit.
// ParsePidsLimit reads the annotation: a decimal integer from 1 to kMaxPidsLimit; nullopt
// otherwise (PodPidsLimit then uses the default: validation refuses such a value).
inline constexpr int64_t kDefaultPidsLimit = 4096;
inline constexpr int64_t kMaxPidsLimit = 4194304;  // the kernel's PID_MAX_LIMIT
std::optional<int64_t> ParsePidsLimit(std::string_view value);
int64_t PodPidsLimit(const PodTemplateSpec& template_spec);

struct DeploymentStrategy {
  std::string type = "RollingUpdate";  // RollingUpdate, Recreate
  // Set (to the defaults 25%/25% when not given) exactly when type is RollingUpdate.
  IntOrString max_surge = std::string("25%");
  IntOrString max_unavailable = std::string("25%");
  friend bool operator==(const DeploymentStrategy&, const DeploymentStrategy&) = default;
};

struct DeploymentSpec {
  int32_t replicas = 1;
  LabelSelector selector;
  PodTemplateSpec template_;
  DeploymentStrategy strategy;
  int32_t min_ready_seconds = 0;
  int32_t progress_deadline_seconds = 600;
  int32_t revision_history_limit = 10;
  bool paused = false;
  Json extra = Json::object();
  friend bool operator==(const DeploymentSpec&, const DeploymentSpec&) = default;
};

struct Deployment {
  ObjectMeta metadata;
  DeploymentSpec spec;
  Json extra = Json::object();  // status and other top-level fields
  friend bool operator==(const Deployment&, const Deployment&) = default;
};

struct ServicePort {
  std::string name;
  std::string protocol = "TCP";
  int32_t port = 0;
  IntOrString target_port;      // defaults to port
  int32_t node_port = 0;        // 0: none (or allocated later for NodePort/LoadBalancer)
  Json extra = Json::object();  // appProtocol
  friend bool operator==(const ServicePort&, const ServicePort&) = default;
};

struct ServiceSpec {
  std::string type = "ClusterIP";  // ClusterIP, NodePort, LoadBalancer
  StringMap selector;
  std::vector<ServicePort> ports;
  Json extra = Json::object();  // clusterIP, sessionAffinity, externalTrafficPolicy, ...
  friend bool operator==(const ServiceSpec&, const ServiceSpec&) = default;
};

struct Service {
  ObjectMeta metadata;
  ServiceSpec spec;
  Json extra = Json::object();
  friend bool operator==(const Service&, const Service&) = default;
};

// v1 ConfigMap: configuration a pod reads through its environment (env[].valueFrom
// .configMapKeyRef, envFrom[].configMapRef). `data` holds UTF-8 text, `binary_data` bytes
// (base64 in manifests and JSON).
struct ConfigMap {
  ObjectMeta metadata;
  StringMap data;
  std::map<std::string, std::string> binary_data;
  std::optional<bool> immutable;
  Json extra = Json::object();
  friend bool operator==(const ConfigMap&, const ConfigMap&) = default;
};

// v1 Secret. `data` holds the decoded bytes; a manifest's `stringData` is merged into it (its
// entries win), as the API server stores it, so a Secret written either way compares equal.
// Its values never leave the reconciler except to the agents of the pods that use them
// (diff/redact.h).
// One of a SOPS file's age recipients: the file's data key encrypted to `recipient`, armored.
struct SopsAgeStanza {
  std::string recipient;
  std::string enc;
  friend bool operator==(const SopsAgeStanza&, const SopsAgeStanza&) = default;
};

// What an object opened from a SOPS file (model/sops.h) keeps so that history stores it
// encrypted again (model::SealSops), openable by the same identities. Never in an object's JSON.
struct SopsEnvelope {
  std::string data_key;  // 32 bytes
  std::vector<SopsAgeStanza> age;
  std::string lastmodified;  // RFC 3339, as sops formats it
  std::string version;       // of the sops that wrote the source
  friend bool operator==(const SopsEnvelope&, const SopsEnvelope&) = default;
};

struct Secret {
  ObjectMeta metadata;
  std::string type = "Opaque";
  std::map<std::string, std::string> data;
  std::optional<bool> immutable;
  Json extra = Json::object();
  friend bool operator==(const Secret&, const Secret&) = default;
};

// v1 Namespace: cluster-scoped (its key's namespace is ""). An object of a kind ballast runs in
// a namespace other than the ones every cluster has (kDefaultNamespaces) needs one in git, as
// `kubectl apply` needs it in the cluster (model::CheckDuplicates says so, naming the object).
struct Namespace {
  ObjectMeta metadata;          // namespace_ is ""
  Json extra = Json::object();  // spec (finalizers), status
  friend bool operator==(const Namespace&, const Namespace&) = default;
};

// The namespaces a Kubernetes cluster has without being told: objects may be in them with no
// Namespace in git.
inline constexpr std::string_view kDefaultNamespaces[] = {"default", "kube-system", "kube-public",
                                                          "kube-node-lease"};

// Any kind ballast does not run (Ingress, Kustomization, ...): kept whole.
struct UnsupportedObject {
  std::string api_version;
  std::string kind;
  ObjectMeta metadata;
  Json raw = Json::object();
  friend bool operator==(const UnsupportedObject&, const UnsupportedObject&) = default;
};

using ObjectValue =
    std::variant<Deployment, Service, ConfigMap, Secret, Namespace, UnsupportedObject>;

// One object read from a manifest, with where it came from.
struct Manifest {
  std::string api_version;
  ObjectValue value;
  SourceRef source;  // position of the document (or list item) that defined it
  // Field paths present in the manifest that ballast keeps but does not act on
  // ("spec.template.spec.volumes"), for `validate --verbose`.
  std::vector<std::string> ignored_fields;
  // Set when the object came from a SOPS-encrypted file: history stores it sealed again.
  std::optional<SopsEnvelope> sops;

  ObjectKey key() const;
  bool is_supported() const { return !std::holds_alternative<UnsupportedObject>(value); }
  const Deployment* deployment() const { return std::get_if<Deployment>(&value); }
  const Service* service() const { return std::get_if<Service>(&value); }
  Deployment* deployment() { return std::get_if<Deployment>(&value); }
  Service* service() { return std::get_if<Service>(&value); }
  const ConfigMap* config_map() const { return std::get_if<ConfigMap>(&value); }
  const Secret* secret() const { return std::get_if<Secret>(&value); }
  const Namespace* namespace_object() const { return std::get_if<Namespace>(&value); }
  const ObjectMeta& metadata() const;
};

// Annotations ballast reads.
inline constexpr char kAnnotationIgnoreDifferences[] = "ballast.dev/ignore-differences";
inline constexpr char kAnnotationPrune[] = "ballast.dev/prune";
inline constexpr char kAnnotationAutoRollback[] = "ballast.dev/auto-rollback";
inline constexpr char kAnnotationRuntime[] = "ballast.dev/runtime";
inline constexpr char kAnnotationPidsLimit[] = "ballast.dev/pids-limit";
// Set by ballast on a Deployment's pod template (model/config_refs.h): a keyed digest of the
// ConfigMap and Secret values its environment reads, so that changing them rolls the pods.
inline constexpr char kAnnotationConfigHash[] = "ballast.dev/config-hash";

}  // namespace ballast::model
