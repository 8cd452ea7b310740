#pragma once

// Reading manifests: YAML (or JSON) text in, typed and defaulted objects out, with every problem
// positioned by file, line, column and field path. Pure: callers read the bytes (from disk or from
// a git blob) and pass them in.

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "model/diagnostic.h"
#include "model/object.h"

namespace ballast::model {

class SopsKeyring;

// Bounds that keep hostile input (huge files, deep nesting, alias "billion laughs" bombs) to
// bounded time and memory.
struct ParseLimits {
  size_t max_file_bytes = 4u << 20;      // 4 MiB
  int max_depth = 64;                    // nesting of maps and sequences
  size_t max_nodes_per_file = 1u << 20;  // nodes visited, aliases expanded
  // Keep an object that fails validation (its errors become warnings) instead of dropping it:
  // for history, whose entries were applied under the rules of their day (a newer ballast that
  // validates more must still read them). Never for a desired state.
  bool keep_invalid = false;
  // Opens SOPS-encrypted documents (model/sops.h); not owned. Without one, such a document is
  // an error that names it and the identity it needs (with keep_invalid, a warning, and the
  // document is left out).
  const SopsKeyring* sops = nullptr;
};

struct FileParseResult {
  std::vector<Manifest> manifests;
  std::vector<Diagnostic> diagnostics;  // errors and warnings of this file only
};

// True for the names manifest trees are read from: *.yaml, *.yml, *.json.
bool IsManifestFileName(std::string_view path);

// Parses one file: multi-document, empty documents skipped, `kind: List` expanded. A document
// that fails to decode or validate yields diagnostics and no manifest; the file's other documents
// still yield theirs. A kustomization.yaml (and any document of a kind ballast does not run)
// yields an UnsupportedObject.
// A SOPS-encrypted file (a top-level `sops` mapping in its first document, or in each) is
// opened with `limits.sops` first; its objects carry the envelope (Manifest::sops).
FileParseResult ParseManifestFile(std::string_view path, std::string_view content,
                                  const ParseLimits& limits = {});

struct SourceFile {
  std::string path;  // as it should appear in diagnostics (relative to the tree root)
  std::string content;
};

struct ManifestSet {
  std::vector<Manifest> manifests;  // in file order, then document order
  std::vector<Diagnostic> diagnostics;
  bool ok() const { return CountErrors(diagnostics) == 0; }
};

// Parses every file and reports objects defined twice (same kind/namespace/name) at both places.
ManifestSet ParseManifests(const std::vector<SourceFile>& files, const ParseLimits& limits = {});

// Reports duplicate keys among `manifests`, naming both places (errors), and TCP Services that
// share a port or nodePort with another Service (warnings: each Service has its own cluster IP,
// but on the node's address such a port serves only the first of them by namespace/name), and
// Services asking for the same 127.x spec.clusterIP (warnings: the first by namespace/name keeps
// it).
std::vector<Diagnostic> CheckDuplicates(const std::vector<Manifest>& manifests);
// The same over manifests held elsewhere (e.g. shared between source snapshots).
std::vector<Diagnostic> CheckDuplicates(const std::vector<const Manifest*>& manifests);

// Reports (errors) objects of a kind ballast runs in a namespace that no Namespace among
// `manifests` creates and that is not one every cluster has (kDefaultNamespaces), as
// `kubectl apply` answers `namespaces "X" not found`. For a desired state (a source snapshot,
// `validate`, `plan`); never for history, whose entries were applied under older rules.
std::vector<Diagnostic> CheckNamespaces(const std::vector<Manifest>& manifests);
std::vector<Diagnostic> CheckNamespaces(const std::vector<const Manifest*>& manifests);

// Refuses JSON nested deeper than `limits.max_depth` (checked without recursion), so callers can
// decode, copy and walk what passes without risking the stack. JSON from outside (API bodies,
// recorded states) goes through this before anything else.
Status CheckJsonDepth(const Json& value, const ParseLimits& limits = {});

// Decodes, defaults and validates one object given as JSON (API bodies, recorded state). Errors
// are positioned at `where` and name the field. Applies CheckJsonDepth first.
Result<Manifest> DecodeManifest(const Json& object, const SourceRef& where,
                                std::vector<Diagnostic>* diagnostics);

}  // namespace ballast::model
