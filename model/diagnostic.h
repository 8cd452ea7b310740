#pragma once

#include <string>
#include <vector>

#include "model/object.h"

namespace ballast::model {

enum class Severity { kError, kWarning };

// One problem found in a manifest, positioned for a human: `file:line:col: error: message
// (field path)`. `field` is the API field path ("spec.template.spec.containers[0].image"), empty
// when the problem is about the whole file or document.
struct Diagnostic {
  Severity severity = Severity::kError;
  SourceRef where;
  std::string field;
  std::string message;

  bool is_error() const { return severity == Severity::kError; }
  std::string ToString() const;
  friend bool operator==(const Diagnostic&, const Diagnostic&) = default;
};

size_t CountErrors(const std::vector<Diagnostic>& diagnostics);

}  // namespace ballast::model
