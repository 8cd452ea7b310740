#pragma once

// Internal to model/: YAML (or JSON) text to a JSON tree per document, with the position of every
// node recorded by its field path. Scalars resolve as Kubernetes' YAML reader (go-yaml, YAML 1.1)
// resolves them, so `on`, `yes` are booleans and `0755` is octal, as kubectl would read them.

#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "model/diagnostic.h"
#include "model/manifest.h"

namespace ballast::model {

// Field path -> 1-based line and column of the node at that path.
class FieldPositions {
 public:
  void Set(const std::string& path, int line, int column) { map_.try_emplace(path, line, column); }
  // The position of `path`, or of its nearest recorded ancestor; {0, 0} when none.
  std::pair<int, int> Lookup(std::string_view path) const;
  size_t size() const { return map_.size(); }

 private:
  std::unordered_map<std::string, std::pair<int, int>> map_;
};

struct YamlDocument {
  Json root;
  FieldPositions positions;
  int line = 0;  // position of the document's root node
  int column = 0;
};

struct YamlParseResult {
  std::vector<YamlDocument> documents;  // non-empty documents only
  std::vector<Diagnostic> errors;       // syntax errors and exceeded limits
};

// Parses every document of `content`. Documents before a syntax error are kept; the error stops
// the file. Limits from `limits` are enforced while building (depth, node count with aliases
// expanded); the size limit is the caller's.
YamlParseResult ParseYamlDocuments(std::string_view file, std::string_view content,
                                   const ParseLimits& limits);

// A scalar as the manifests' reader resolves it; `tag` as yaml-cpp reports it ("?" plain, "!"
// quoted or block, or an explicit tag).
Json ResolveYamlScalar(const std::string& tag, const std::string& value);

// The first byte that is not part of well-formed UTF-8 (overlong forms, surrogates and code
// points past U+10FFFF included), or npos. YAML streams are Unicode text; a binary or Latin-1
// file otherwise fails deep inside the parser with a message quoting raw bytes.
size_t FirstInvalidUtf8(std::string_view s);

// True when `s`, written as a plain (unquoted) YAML scalar, reads back as the same string.
bool PlainScalarIsString(const std::string& s);

// Field-path helpers: "spec.replicas", "metadata.labels[app.kubernetes.io/name]",
// "spec.template.spec.containers[0]".
// The version of yaml-cpp ballast was built against, e.g. "0.7.0" (yaml-cpp has no run-time
// version call; Debian's soname pins the minor version).
std::string YamlCppVersion();

std::string ChildPath(const std::string& parent, std::string_view key);
std::string IndexPath(const std::string& parent, size_t index);

}  // namespace ballast::model
