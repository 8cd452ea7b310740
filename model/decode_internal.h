#pragma once

// Internal to model/: decoding a JSON tree into typed objects, and validating them, with every
// problem reported at a field path (and, when positions are known, a line and column).

#include <string>
#include <vector>

#include "model/diagnostic.h"
#include "model/object.h"
#include "model/yaml_tree.h"

namespace ballast::model {

// Collects diagnostics for one document, positioning each by its field path.
class Reporter {
 public:
  // `positions` may be null (JSON input without positions): every problem is then placed at
  // `document`.
  // `lookup_prefix` is prepended to field paths when looking up positions (List items live at
  // "items[3]" in the document).
  Reporter(const FieldPositions* positions, SourceRef document, std::vector<Diagnostic>* out,
           std::string lookup_prefix = "")
      : positions_(positions),
        document_(std::move(document)),
        out_(out),
        lookup_prefix_(std::move(lookup_prefix)) {}

  void Error(const std::string& field, std::string message) {
    Add(Severity::kError, field, std::move(message));
  }
  void Warning(const std::string& field, std::string message) {
    Add(Severity::kWarning, field, std::move(message));
  }
  size_t errors() const { return errors_; }

  // From here on, errors at or under a field that already has an error are dropped: validation
  // runs on partly decoded objects so that every independent problem shows at once, without
  // repeating one that decoding already reported.
  void SuppressUnderReportedFields() { suppress_ = true; }
  const SourceRef& document() const { return document_; }

 private:
  void Add(Severity severity, const std::string& field, std::string message);

  const FieldPositions* positions_;
  SourceRef document_;
  std::vector<Diagnostic>* out_;
  std::string lookup_prefix_;
  size_t errors_ = 0;
  bool suppress_ = false;
  std::vector<std::string> error_fields_;
};

// Decodes one object (a document or a List item). Returns false when nothing usable could be
// decoded. Fields ballast keeps without acting on them are appended to `ignored`.
bool DecodeObject(const Json& doc, Reporter& reporter, Manifest* out);

bool DecodePodTemplateSpec(const Json& j, const std::string& path, Reporter& reporter,
                           PodTemplateSpec* out, std::vector<std::string>* ignored);

// The API server's validation of decoded, defaulted objects.
void ValidateDeployment(const Deployment& d, Reporter& reporter);
void ValidateService(const Service& s, Reporter& reporter);
void ValidateConfigMap(const ConfigMap& cm, Reporter& reporter);
void ValidateSecret(const Secret& s, Reporter& reporter);
void ValidateNamespace(const Namespace& ns, Reporter& reporter);
void ValidatePodTemplateSpec(const PodTemplateSpec& t, const std::string& path, Reporter& r);

}  // namespace ballast::model
