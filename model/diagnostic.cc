#include "model/diagnostic.h"

namespace ballast::model {

std::string Diagnostic::ToString() const {
  std::string out = where.file.empty() ? "<input>" : where.file;
  if (where.line > 0) {
    // Appended piece by piece: GCC 12 at -O3 warns -Wrestrict on `"x" + std::string&&`
    // (GCC bug 105651), a false positive that this spelling avoids.
    out += ':';
    out += std::to_string(where.line);
    out += ':';
    out += std::to_string(where.column);
  }
  out += is_error() ? ": error: " : ": warning: ";
  out += message;
  if (!field.empty()) {
    out += " (";
    out += field;
    out += ')';
  }
  return out;
}

size_t CountErrors(const std::vector<Diagnostic>& diagnostics) {
  size_t n = 0;
  for (const auto& d : diagnostics) n += d.is_error() ? 1 : 0;
  return n;
}

}  // namespace ballast::model
