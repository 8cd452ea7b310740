#pragma once

// Manifests the tests commit to their repositories, written once: the web app that end-to-end
// tests deploy (a Deployment of `ballast demo-app` pods, or of an image, behind a Service), and
// small Deployments and Services for the source and history tests, where nothing runs.

#include <string>
#include <vector>

namespace ballast::testing {

// A Service `name` selecting the pods labelled app: `name`, on `port` to their port named http.
inline std::string WebServiceYaml(const std::string& name, int port) {
  return "apiVersion: v1\nkind: Service\nmetadata: {name: " + name +
         "}\nspec:\n  selector: {app: " + name +
         "}\n  ports: [{name: http, port: " + std::to_string(port) + ", targetPort: http}]\n";
}

// A Deployment `name` (pods labelled app: `name`) serving HTTP on a container port named http,
// probed for readiness every second, and WebServiceYaml(name, service_port) in front of it.
struct WebSpec {
  std::string name = "web";
  int replicas = 1;
  int service_port = 0;
  int max_surge = 1;
  int max_unavailable = 0;
  int progress_deadline_seconds = 0;  // 0: Kubernetes' default
  std::string annotations;            // lines under metadata.annotations, indented 4
  int termination_grace_period_seconds = 2;
  // The container: `ballast demo-app --message MESSAGE APP_ARGS...` on port 8080, ready at
  // /healthz; or, when `image` is set, the image's own command on `image_port`, ready at
  // `image_ready_path` (only a node with the docker runtime can take it).
  std::string message = "v1";
  std::vector<std::string> app_args;  // more demo-app flags, e.g. {"--ready-after", "2"}
  std::string image;
  int image_port = 80;
  std::string image_ready_path = "/index.html";
  std::string limits;  // resources.limits as a flow mapping, e.g. "{memory: 64Mi, cpu: 200m}"
  // More lines of the container (env, envFrom, ...), each indented 10 spaces.
  std::string container_yaml;
  // More lines of the pod spec (volumes, ...), each indented 6 spaces.
  std::string pod_yaml;
};

inline std::string WebManifest(const WebSpec& w) {
  std::string m = "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: " + w.name + "\n";
  if (!w.annotations.empty()) m += "  annotations:\n" + w.annotations;
  m += "spec:\n";
  if (w.progress_deadline_seconds > 0) {
    m += "  progressDeadlineSeconds: " + std::to_string(w.progress_deadline_seconds) + "\n";
  }
  m += "  replicas: " + std::to_string(w.replicas) + "\n";
  m += "  selector:\n    matchLabels: {app: " + w.name + "}\n";
  m += "  strategy:\n    rollingUpdate: {maxSurge: " + std::to_string(w.max_surge) +
       ", maxUnavailable: " + std::to_string(w.max_unavailable) + "}\n";
  m += "  template:\n    metadata:\n      labels: {app: " + w.name + "}\n    spec:\n";
  m +=
      "      terminationGracePeriodSeconds: " + std::to_string(w.termination_grace_period_seconds) +
      "\n";
  m += w.pod_yaml;
  m += "      containers:\n        - name: " + w.name + "\n";
  std::string port = "8080", ready_path = "/healthz";
  if (w.image.empty()) {
    std::string args = "\"--message\", \"" + w.message + "\"";
    for (const auto& a : w.app_args) args += ", \"" + a + "\"";
    m += "          command: [\"" BALLAST_BINARY "\", \"demo-app\"]\n";
    m += "          args: [" + args + "]\n";
  } else {
    m += "          image: " + w.image + "\n";
    port = std::to_string(w.image_port);
    ready_path = w.image_ready_path;
  }
  m += "          ports: [{name: http, containerPort: " + port + "}]\n";
  m += w.container_yaml;
  if (!w.limits.empty()) m += "          resources:\n            limits: " + w.limits + "\n";
  m += "          readinessProbe:\n            httpGet: {path: " + ready_path +
       ", port: http}\n            periodSeconds: 1\n";
  return m + "---\n" + WebServiceYaml(w.name, w.service_port);
}

// The demo-app web app with maxSurge 1, maxUnavailable 0.
inline std::string WebManifest(const std::string& message, int replicas, int service_port) {
  WebSpec w;
  w.message = message;
  w.replicas = replicas;
  w.service_port = service_port;
  return WebManifest(w);
}

// A Deployment `name` of `replicas` pods running `sleep 1000`, after a comment line naming it
// (or saying `comment`), for tests of sources and history.
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

// A Service `name` selecting app: `name` on `port`, for tests of sources and history.
inline std::string ServiceYaml(const std::string& name, int port) {
  return "apiVersion: v1\nkind: Service\nmetadata:\n  name: " + name +
         "\nspec:\n  selector:\n    app: " + name +
         "\n  ports:\n    - port: " + std::to_string(port) + "\n";
}

}  // namespace ballast::testing
