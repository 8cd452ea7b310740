#include "model/diagnostic.h"

namespace ballast::model {

std::string Diagnostic::ToString() const {
  std::string out = where.file.empty() ? "<input>" : where.file;
  if (where.line > 0) {
    out += ":" + std::to_string(where.line) + ":" + std::to_string(where.column);
  }
  out += is_error() ? ": error: " : ": warning: ";
  out += message;
  if (!field.empty()) out += " (" + field + ")";
  return out;
}

size_t CountErrors(const std::vector<Diagnostic>& diagnostics) {
  size_t n = 0;
  for (const auto& d : diagnostics) n += d.is_error() ? 1 : 0;
  return n;
}

}  // namespace ballast::model
