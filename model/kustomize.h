#pragma once

// kustomize, natively: a directory whose kustomization.yaml (or .yml, or Kustomization) sits at
// the root of the application's path is rendered as `kustomize build` renders it, for the fields
// real repositories use, and every other field is refused at its position (never ignored):
//
//   resources (files, and directories with a kustomization: bases and overlays), components,
//   namespace, namePrefix, nameSuffix (references from pod templates to renamed ConfigMaps and
//   Secrets follow), commonLabels and labels (selectors and templates as kustomize's field specs
//   say), commonAnnotations, images, replicas, configMapGenerator and secretGenerator (literals,
//   files, envs; behavior create/merge/replace; the content-hash suffix kustomize computes, with
//   references rewritten), generatorOptions, patches (strategic merge for Kubernetes' lists of
//   named things; JSON 6902 for every kind), patchesStrategicMerge, patchesJson6902.
//
// Remote bases (URLs) are refused. The objects come out decoded and validated as manifests from
// files are (model/manifest.h), each positioned at the document it came from or at the
// generator or field of the kustomization that made it.
//
// Pure: files come through the caller's reader.

#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "model/manifest.h"

namespace ballast::model {

// The contents of the file at `path` ('/'-separated, normalised, relative to the root of what
// the caller can read), nullopt when there is no such file; an error for a file that exists and
// cannot be read (too large, ...).
using KustomizeReader = std::function<Result<std::optional<std::string>>(const std::string& path)>;

// The name of the kustomization file in directory `dir` ("" for the root), or "" when it has
// none: kustomization.yaml, kustomization.yml or Kustomization, as kustomize looks for them.
std::string FindKustomization(const std::string& dir, const KustomizeReader& read);

// Bounds of one rendering, beside the ParseLimits of each file.
struct KustomizeLimits {
  size_t max_kustomizations = 1000;  // directories rendered (bases, overlays, components)
  size_t max_objects = 100000;       // objects loaded and generated
  size_t max_total_bytes = 256u << 20;
  size_t max_total_nodes = 8u << 20;  // JSON nodes loaded, over every file
  size_t max_entries = 1000;          // entries of one list of a kustomization (images, ...)
};

// Renders the kustomization in `dir` (which must have one: FindKustomization). Diagnostics
// name files as `display_root` + "/" + path (display_root "" leaves paths as they are).
ManifestSet RenderKustomization(const std::string& dir, const KustomizeReader& read,
                                const std::string& display_root = "",
                                const ParseLimits& limits = {}, const KustomizeLimits& bounds = {});

// kustomize's name suffix for a generated ConfigMap or Secret (`kind`, its `data` as written
// in the object: a Secret's base64), e.g. "5gch97b56c".
std::string KustomizeHash(const Json& object);

}  // namespace ballast::model
