#pragma once

// What pods read from ConfigMaps and Secrets, and how a change of it reaches them.
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

// The most ConfigMaps and Secrets one pod template may read (validation refuses more).
inline constexpr size_t kMaxReferencedConfig = 256;

// Every ConfigMap and Secret a pod spec's containers read, as {kind, name}, sorted, unique.
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
