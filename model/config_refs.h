#pragma once

// What pods read from ConfigMaps and Secrets, and how a change of it reaches them.
//
// Containers read them two ways.
//
// A container's environment reads single keys (env[].valueFrom.configMapKeyRef/secretKeyRef)
// and whole objects (envFrom[].configMapRef/secretRef, each key a variable, after `prefix`).
// The environment of a running process cannot change, so, as Kubernetes' tools recommend
// (kustomize's name suffix hash, Helm's checksum annotation), what a template's environment
// reads is part of its revision: BindConfigHashes puts a digest of those values on the
// template (annotation ballast.dev/config-hash), and a change of them rolls the Deployment like
// any template change, with its rollout's safety. The digest is an HMAC under a key of the
// reconciler's own, so it tells nobody who lacks that key anything about a Secret's values.
//
// Volumes of type configMap and secret (volumes[].configMap / .secret, mounted by
// volumeMounts[]) hold them as files, one per key (or per `items` entry). Files can change under
// a running process, so, as in Kubernetes, a volume's values are not part of the revision: the
// node agent rewrites the files in place when the object changes (nodeagent/config_volumes.h).
//
// Pure: values in, values out.

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "model/object.h"

namespace ballast::model {

// One key of a ConfigMap or Secret: env[].valueFrom.configMapKeyRef / secretKeyRef.
struct ConfigKeyRef {
  std::string kind;  // "ConfigMap" or "Secret"
  std::string name;
  std::string key;
  bool optional = false;
  friend bool operator==(const ConfigKeyRef&, const ConfigKeyRef&) = default;
};

// A whole ConfigMap or Secret: envFrom[].configMapRef / secretRef.
struct ConfigFromRef {
  std::string kind;  // "ConfigMap" or "Secret"
  std::string name;
  std::string prefix;
  bool optional = false;
  friend bool operator==(const ConfigFromRef&, const ConfigFromRef&) = default;
};

// The variable's key reference; nullopt when it has none (a plain value, or another source
// such as fieldRef). Reads what validation accepted; anything else yields nullopt.
std::optional<ConfigKeyRef> EnvKeyRef(const EnvVar& var);
// The container's envFrom entries, in order.
std::vector<ConfigFromRef> EnvFromRefs(const Container& container);

// One entry of a configMap/secret volume's `items`: key `key` as the file `path` (relative,
// descending), with `mode` or the volume's defaultMode.
struct KeyToPath {
  std::string key;
  std::string path;
  std::optional<int32_t> mode;
  friend bool operator==(const KeyToPath&, const KeyToPath&) = default;
};

// A volume of type configMap or secret.
struct ConfigVolume {
  std::string name;              // the volume's name, which volumeMounts use
  std::string kind;              // "ConfigMap" or "Secret"
  std::string object;            // configMap.name / secret.secretName
  std::vector<KeyToPath> items;  // empty: every key
  int32_t default_mode = 0644;
  bool optional = false;
  friend bool operator==(const ConfigVolume&, const ConfigVolume&) = default;
};

// One of a container's volumeMounts.
struct VolumeMount {
  std::string name;
  std::string mount_path;
  std::string sub_path;  // "" for the whole volume
  bool read_only = false;
  friend bool operator==(const VolumeMount&, const VolumeMount&) = default;
};

// The pod's volumes of type configMap or secret, in order (others are left out). Reads what
// validation accepted; anything malformed is left out.
std::vector<ConfigVolume> ConfigVolumes(const PodSpec& spec);
// The container's volumeMounts, in order.
std::vector<VolumeMount> VolumeMounts(const Container& container);

// The most volumes a pod, and volumeMounts a container, may have (validation refuses more):
// each configMap or secret volume is a copy of its object (up to 1 MiB) on the node's disk.
inline constexpr size_t kMaxVolumes = 256;

// Kubernetes' default and bounds of a file mode in a volume (defaultMode, items[].mode).
inline constexpr int32_t kDefaultVolumeFileMode = 0644;
inline constexpr int32_t kMaxVolumeFileMode = 0777;

// The most ConfigMaps and Secrets one pod template may read (validation refuses more).
inline constexpr size_t kMaxReferencedConfig = 256;

// Every ConfigMap and Secret a pod spec's containers read through their environment or the
// pod's volumes, as {kind, name}, sorted, unique.
std::vector<std::pair<std::string, std::string>> ReferencedConfig(const PodSpec& spec);

// What an environment can read of a ConfigMap (its `data`: kubelet reads no `binaryData`
// into variables) or Secret (its `data`); nullopt when `m` is neither.
std::optional<std::map<std::string, std::string>> EnvData(const Manifest& m);

// Sets (or removes) ballast.dev/config-hash on every Deployment's pod template in `objects`: a
// digest of the values its containers' environment reads from the ConfigMaps and Secrets among
// `objects` in the Deployment's namespace, with absent objects and keys counted as absent (so
// that creating them rolls the pods that waited for them). Templates that read none carry no
// such annotation (one written in git is removed). `key` keys the HMAC; one reconciler must use
// the same key for its lifetime and across restarts, or every such Deployment rolls once.
void BindConfigHashes(std::vector<Manifest>* objects, std::string_view key);

}  // namespace ballast::model
