#pragma once

#include <string>
#include <vector>

#include "model/manifest.h"

namespace ballast::model::testing {

// A minimal valid Deployment; tests change one thing at a time.
inline const char kMinimalDeployment[] = R"(apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  selector:
    matchLabels:
      app: web
  template:
    metadata:
      labels:
        app: web
    spec:
      containers:
      - name: web
        image: nginx:1.25
)";

inline const char kMinimalService[] = R"(apiVersion: v1
kind: Service
metadata:
  name: web
spec:
  selector:
    app: web
  ports:
  - port: 80
)";

inline std::vector<Diagnostic> Errors(const FileParseResult& r) {
  std::vector<Diagnostic> out;
  for (const auto& d : r.diagnostics) {
    if (d.is_error()) out.push_back(d);
  }
  return out;
}

inline std::string Dump(const std::vector<Diagnostic>& ds) {
  std::string s;
  for (const auto& d : ds) s += d.ToString() + "\n";
  return s;
}

}  // namespace ballast::model::testing
