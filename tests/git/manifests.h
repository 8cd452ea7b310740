#pragma once

// Small manifests for the git tests.

#include <string>

namespace ballast::git::testing {

inline std::string DeploymentYaml(const std::string& name, int replicas,
                                  const std::string& comment = "") {
  return "# " + (comment.empty() ? name : comment) +
         "\napiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: " + name +
         "\nspec:\n  replicas: " + std::to_string(replicas) +
         "\n  selector:\n    matchLabels:\n      app: " + name +
         "\n  template:\n    metadata:\n      labels:\n        app: " + name +
         "\n    spec:\n      containers:\n        - name: main\n          command: [\"sleep\", "
         "\"1000\"]\n";
}

inline std::string ServiceYaml(const std::string& name, int port) {
  return "apiVersion: v1\nkind: Service\nmetadata:\n  name: " + name +
         "\nspec:\n  selector:\n    app: " + name +
         "\n  ports:\n    - port: " + std::to_string(port) + "\n";
}

}  // namespace ballast::git::testing
