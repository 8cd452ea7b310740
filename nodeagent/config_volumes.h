#pragma once

// What a configMap or secret volume holds (model/config_refs.h's ConfigVolume), from the
// ConfigMap or Secret the reconciler sent with the pod: one file per key, or per `items` entry,
// with kubelet's messages when a referenced object or key is missing. volume_files.h writes
// them.
//
// Pure: values in, values out.

#include <cstdint>
#include <string>
#include <vector>

#include "agentapi/protocol.h"
#include "model/config_refs.h"
#include "model/status.h"

namespace ballast::nodeagent {

// One file of a volume.
struct VolumeFile {
  std::string path;  // relative, '/'-separated, no "", "." or ".." component
  std::string data;
  int32_t mode = model::kDefaultVolumeFileMode;
  friend bool operator==(const VolumeFile&, const VolumeFile&) = default;
};

// The files of volume `v`, sorted by path, given `source` (null: the object was not sent, it
// does not exist). A ConfigMap's files are its `data` and `binaryData` keys, a Secret's its
// `data` keys. FailedPrecondition with kubelet's message when the object or an `items` key is
// missing and the volume is not `optional` (`configmap "app" not found`, `configmap references
// non-existent config key: k`); an optional volume then holds what exists. Two files at one
// path, or a file where another needs a directory, are refused too.
Result<std::vector<VolumeFile>> ProjectVolume(const model::ConfigVolume& v,
                                              const agentapi::PodConfigSource* source);

// The volume named `name` among the pod's configMap and secret volumes; null when it is none
// of them (another type of volume, or none at all).
const model::ConfigVolume* FindConfigVolume(const std::vector<model::ConfigVolume>& volumes,
                                            const std::string& name);

// The components of a path inside a volume or below a pod's work directory: "", "." and ".."
// left out (validation refuses ".." where it matters).
std::vector<std::string> PathComponents(const std::string& path);

}  // namespace ballast::nodeagent
