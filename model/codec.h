#pragma once

// Emitting objects: JSON (nlohmann) and YAML, with every default filled in.

#include <string>

#include "model/object.h"

namespace ballast::model {

// The object as the API server would return it: apiVersion, kind, metadata, spec, every
// defaulted field set, unused fields (`extra`) merged back at their place. List order is kept as
// written, so ParseManifestFile(ToYaml(m)) == m.
Json ToJson(const Manifest& manifest);

// ToJson with keyed lists put in key order, for comparison and hashing: containers and env by
// name, container ports by (containerPort, protocol), Service ports by (port, protocol),
// tolerations and matchExpressions by content. Two manifests that Kubernetes would merge to the
// same object have equal CanonicalJson.
Json CanonicalJson(const Manifest& manifest);

// Block-style YAML with keys in a fixed order (apiVersion, kind, metadata, spec, then the rest
// sorted), strings quoted wherever plain style would change their type.
std::string ToYaml(const Json& value);
std::string ToYaml(const Manifest& manifest);

// The pod template hash that names a revision: stable across runs, field order and formatting;
// changes exactly when the canonical template changes. 10 characters from Kubernetes' safe
// alphabet ("bcdfghjklmnpqrstvwxz2456789"), like a ReplicaSet's pod-template-hash label.
std::string PodTemplateHash(const PodTemplateSpec& template_spec);

}  // namespace ballast::model

namespace ballast::model {

// A pod template on its own (the agent protocol carries these).
Json PodTemplateToJson(const PodTemplateSpec& template_spec);
Result<PodTemplateSpec> PodTemplateFromJson(const Json& j);

}  // namespace ballast::model
