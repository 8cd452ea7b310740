#include <gtest/gtest.h>

#include "model/codec.h"
#include "model/manifest.h"
#include "test_util.h"

namespace ballast::model {
namespace {

using testing::Dump;
using testing::Errors;
using testing::kMinimalDeployment;
using testing::kMinimalService;

Deployment ParseDeployment(const std::string& yaml) {
  FileParseResult r = ParseManifestFile("d.yaml", yaml);
  EXPECT_TRUE(Errors(r).empty()) << Dump(r.diagnostics);
  EXPECT_EQ(r.manifests.size(), 1u);
  if (r.manifests.empty() || r.manifests[0].deployment() == nullptr) return {};
  return *r.manifests[0].deployment();
}

TEST(DecodeTest, DeploymentDefaultsAreKubernetes) {
  Deployment d = ParseDeployment(kMinimalDeployment);
  EXPECT_EQ(d.metadata.namespace_, "default");
  EXPECT_EQ(d.spec.replicas, 1);
  EXPECT_EQ(d.spec.strategy.type, "RollingUpdate");
  EXPECT_EQ(d.spec.strategy.max_surge, IntOrString(std::string("25%")));
  EXPECT_EQ(d.spec.strategy.max_unavailable, IntOrString(std::string("25%")));
  EXPECT_EQ(d.spec.revision_history_limit, 10);
  EXPECT_EQ(d.spec.progress_deadline_seconds, 600);
  EXPECT_EQ(d.spec.min_ready_seconds, 0);
  EXPECT_FALSE(d.spec.paused);
  const PodSpec& pod = d.spec.template_.spec;
  EXPECT_EQ(pod.restart_policy, "Always");
  EXPECT_EQ(pod.termination_grace_period_seconds, 30);
}

TEST(DecodeTest, PartialRollingUpdateKeepsOtherDefault) {
  std::string y = kMinimalDeployment;
  y += "  strategy:\n    rollingUpdate:\n      maxSurge: 2\n";
  Deployment d = ParseDeployment(y);
  EXPECT_EQ(d.spec.strategy.max_surge, IntOrString(int64_t{2}));
  EXPECT_EQ(d.spec.strategy.max_unavailable, IntOrString(std::string("25%")));
}

TEST(DecodeTest, ProbeAndPortDefaults) {
  std::string y = kMinimalDeployment;
  y += R"(        ports:
        - containerPort: 8080
        readinessProbe:
          httpGet:
            port: 8080
        livenessProbe:
          tcpSocket:
            port: 8080
)";
  Deployment d = ParseDeployment(y);
  const Container& c = d.spec.template_.spec.containers.at(0);
  EXPECT_EQ(c.ports.at(0).protocol, "TCP");
  for (const auto& probe : {*c.readiness_probe, *c.liveness_probe}) {
    EXPECT_EQ(probe.timeout_seconds, 1);
    EXPECT_EQ(probe.period_seconds, 10);
    EXPECT_EQ(probe.success_threshold, 1);
    EXPECT_EQ(probe.failure_threshold, 3);
    EXPECT_EQ(probe.initial_delay_seconds, 0);
  }
  EXPECT_EQ(c.readiness_probe->http_get->path, "/");
  EXPECT_EQ(c.readiness_probe->http_get->scheme, "HTTP");
}

TEST(DecodeTest, ServiceDefaults) {
  FileParseResult r = ParseManifestFile("s.yaml", kMinimalService);
  ASSERT_TRUE(Errors(r).empty()) << Dump(r.diagnostics);
  const Service& s = *r.manifests.at(0).service();
  EXPECT_EQ(s.spec.type, "ClusterIP");
  EXPECT_EQ(s.spec.ports.at(0).protocol, "TCP");
  EXPECT_EQ(s.spec.ports.at(0).target_port, IntOrString(int64_t{80}));
  EXPECT_EQ(s.metadata.namespace_, "default");
}

TEST(DecodeTest, ReadsEveryField) {
  const char* y = R"y(apiVersion: apps/v1
kind: Deployment
metadata:
  name: api
  namespace: shop
  labels: {tier: backend}
  annotations: {note: "x"}
spec:
  replicas: 4
  minReadySeconds: 5
  progressDeadlineSeconds: 120
  revisionHistoryLimit: 3
  paused: true
  strategy:
    type: Recreate
  selector:
    matchLabels: {app: api}
    matchExpressions:
    - {key: tier, operator: In, values: [backend]}
  template:
    metadata:
      labels: {app: api, tier: backend}
      annotations: {a: b}
    spec:
      terminationGracePeriodSeconds: 5
      nodeSelector: {disk: ssd}
      securityContext: {runAsUser: 1000, fsGroup: 2000}
      tolerations:
      - {key: dedicated, operator: Equal, value: api, effect: NoSchedule}
      affinity:
        podAntiAffinity:
          requiredDuringSchedulingIgnoredDuringExecution:
          - labelSelector: {matchLabels: {app: api}}
            topologyKey: kubernetes.io/hostname
      containers:
      - name: api
        command: [/bin/api]
        args: ["--port", "$(PORT)"]
        workingDir: /srv
        env:
        - {name: A, value: "1"}
        - name: B
          valueFrom: {fieldRef: {fieldPath: metadata.name}}
        ports:
        - {name: http, containerPort: 8080, protocol: TCP}
        resources:
          requests: {cpu: 100m, memory: 64Mi}
          limits: {cpu: "1", memory: 128Mi}
        startupProbe:
          exec: {command: [/bin/true]}
          failureThreshold: 30
)y";
  FileParseResult r = ParseManifestFile("all.yaml", y);
  ASSERT_TRUE(Errors(r).empty()) << Dump(r.diagnostics);
  const Deployment& d = *r.manifests.at(0).deployment();
  EXPECT_EQ(d.metadata.namespace_, "shop");
  EXPECT_EQ(d.spec.replicas, 4);
  EXPECT_EQ(d.spec.min_ready_seconds, 5);
  EXPECT_EQ(d.spec.progress_deadline_seconds, 120);
  EXPECT_EQ(d.spec.revision_history_limit, 3);
  EXPECT_TRUE(d.spec.paused);
  EXPECT_EQ(d.spec.strategy.type, "Recreate");
  EXPECT_EQ(d.spec.selector.match_expressions.at(0).values.at(0), "backend");
  const PodSpec& p = d.spec.template_.spec;
  EXPECT_EQ(p.termination_grace_period_seconds, 5);
  EXPECT_EQ(p.node_selector.at("disk"), "ssd");
  EXPECT_EQ(*p.security_context.run_as_user, 1000);
  EXPECT_EQ(p.security_context.extra.at("fsGroup"), 2000);
  EXPECT_EQ(p.tolerations.at(0).effect, "NoSchedule");
  EXPECT_EQ(p.affinity->pod_anti_affinity->required.at(0).topology_key, "kubernetes.io/hostname");
  const Container& c = p.containers.at(0);
  EXPECT_EQ(c.command.at(0), "/bin/api");
  EXPECT_EQ(c.args.at(1), "$(PORT)");
  EXPECT_EQ(c.working_dir, "/srv");
  EXPECT_EQ(c.env.at(1).value_from["fieldRef"]["fieldPath"], "metadata.name");
  EXPECT_EQ(c.resources.requests.at("cpu").MilliValue(), 100);
  EXPECT_EQ(c.resources.limits.at("memory").Value(), 128 << 20);
  EXPECT_EQ(c.startup_probe->failure_threshold, 30);
  // A fieldRef is kept and reported as not supported yet.
  bool warned = false;
  for (const auto& diag : r.diagnostics) {
    warned |= diag.field == "spec.template.spec.containers[0].env[1].valueFrom.fieldRef";
  }
  EXPECT_TRUE(warned);
}

TEST(DecodeTest, UnusedFieldsAreKeptAndListed) {
  std::string y = kMinimalDeployment;
  y += R"(        volumeMounts:
        - {name: tmp, mountPath: /tmp}
      volumes:
      - name: tmp
        emptyDir: {}
      serviceAccountName: robot
)";
  FileParseResult r = ParseManifestFile("d.yaml", y);
  ASSERT_TRUE(Errors(r).empty()) << Dump(r.diagnostics);
  const Manifest& m = r.manifests.at(0);
  const PodSpec& p = m.deployment()->spec.template_.spec;
  EXPECT_EQ(p.extra.at("serviceAccountName"), "robot");
  EXPECT_EQ(p.extra.at("volumes").at(0).at("name"), "tmp");
  EXPECT_EQ(p.containers.at(0).extra.at("volumeMounts").size(), 1u);
  auto has = [&](const std::string& f) {
    return std::find(m.ignored_fields.begin(), m.ignored_fields.end(), f) != m.ignored_fields.end();
  };
  // Volumes are read (configMap and secret ones are mounted): what is ignored is the type
  // ballast does not mount, and a mount of it is warned about.
  EXPECT_TRUE(has("spec.template.spec.volumes[0].emptyDir"));
  EXPECT_TRUE(has("spec.template.spec.serviceAccountName"));
  EXPECT_FALSE(has("spec.template.spec.containers[0].volumeMounts"));
  ASSERT_EQ(r.diagnostics.size(), 1u) << Dump(r.diagnostics);
  EXPECT_EQ(r.diagnostics[0].field, "spec.template.spec.containers[0].volumeMounts[0].name");
  EXPECT_EQ(r.diagnostics[0].severity, Severity::kWarning);
  // ...and they are emitted again.
  Json j = ToJson(m);
  EXPECT_EQ(j["spec"]["template"]["spec"]["serviceAccountName"], "robot");
}

TEST(DecodeTest, SecurityContextsAreTypedAndEmittedAsWritten) {
  std::string y = kMinimalDeployment;
  y += R"(        securityContext:
          runAsNonRoot: true
          runAsUser: 10001
          capabilities: {drop: [all], add: [NET_BIND_SERVICE]}
          allowPrivilegeEscalation: false
          readOnlyRootFilesystem: true
          seccompProfile: {type: RuntimeDefault}
      securityContext: {runAsUser: 1000, runAsGroup: 3000, fsGroup: 2000}
)";
  FileParseResult r = ParseManifestFile("sc.yaml", y);
  ASSERT_TRUE(Errors(r).empty()) << Dump(r.diagnostics);
  const Manifest& m = r.manifests.at(0);
  const PodSpec& p = m.deployment()->spec.template_.spec;
  EXPECT_EQ(p.security_context.run_as_user, 1000);
  EXPECT_EQ(p.security_context.run_as_group, 3000);
  EXPECT_EQ(p.security_context.extra.at("fsGroup"), 2000);
  const SecurityContext& sc = *p.containers.at(0).security_context;
  EXPECT_EQ(sc.run_as_user, 10001);
  EXPECT_EQ(sc.run_as_non_root, true);
  EXPECT_EQ(sc.capabilities->drop, std::vector<std::string>{"all"});
  EXPECT_EQ(sc.allow_privilege_escalation, false);
  EXPECT_EQ(sc.read_only_root_filesystem, true);
  EXPECT_EQ(sc.extra.at("seccompProfile").at("type"), "RuntimeDefault");
  // The container's user over the pod's, the pod's group, capabilities by their canonical names.
  EffectiveSecurityContext e = EffectiveSecurity(p, p.containers.at(0));
  EXPECT_EQ(e.run_as_user, 10001);
  EXPECT_EQ(e.run_as_group, 3000);
  EXPECT_TRUE(e.run_as_non_root);
  EXPECT_EQ(e.cap_add, std::vector<std::string>{"CAP_NET_BIND_SERVICE"});
  EXPECT_EQ(e.cap_drop, std::vector<std::string>{"ALL"});
  EXPECT_FALSE(e.allow_privilege_escalation);
  EXPECT_TRUE(e.read_only_root_filesystem);
  // What ballast applies is no longer listed as ignored; what it keeps without applying is.
  auto has = [&](const std::string& f) {
    return std::find(m.ignored_fields.begin(), m.ignored_fields.end(), f) != m.ignored_fields.end();
  };
  EXPECT_FALSE(has("spec.template.spec.containers[0].securityContext"));
  EXPECT_TRUE(has("spec.template.spec.containers[0].securityContext.seccompProfile"));
  EXPECT_TRUE(has("spec.template.spec.securityContext.fsGroup"));
  // Emitted as written (the template hash of an existing manifest does not change), and read back
  // to the same object.
  Json j = ToJson(m)["spec"]["template"]["spec"];
  EXPECT_EQ(j["containers"][0]["securityContext"],
            Json::parse(R"({"runAsNonRoot": true, "runAsUser": 10001,
                            "capabilities": {"drop": ["all"], "add": ["NET_BIND_SERVICE"]},
                            "allowPrivilegeEscalation": false, "readOnlyRootFilesystem": true,
                            "seccompProfile": {"type": "RuntimeDefault"}})"));
  EXPECT_EQ(j["securityContext"],
            Json::parse(R"({"runAsUser": 1000, "runAsGroup": 3000, "fsGroup": 2000})"));
  FileParseResult again = ParseManifestFile("again.yaml", ToYaml(m));
  ASSERT_TRUE(Errors(again).empty()) << Dump(again.diagnostics);
  EXPECT_EQ(*again.manifests.at(0).deployment(), *m.deployment());
}

TEST(DecodeTest, UnknownFieldIsAWarningNotAnError) {
  std::string y = kMinimalDeployment;
  y += "        replica: 3\n";
  FileParseResult r = ParseManifestFile("d.yaml", y);
  EXPECT_TRUE(Errors(r).empty());
  ASSERT_EQ(r.diagnostics.size(), 1u);
  EXPECT_EQ(r.diagnostics[0].severity, Severity::kWarning);
  EXPECT_EQ(r.diagnostics[0].field, "spec.template.spec.containers[0].replica");
  EXPECT_EQ(r.diagnostics[0].where.line, 17);
}

TEST(DecodeTest, TypeErrorsArePositionedWithAHint) {
  std::string y = kMinimalDeployment;
  y += "        env:\n        - name: PORT\n          value: 8080\n";
  FileParseResult r = ParseManifestFile("d.yaml", y);
  auto errors = Errors(r);
  ASSERT_EQ(errors.size(), 1u) << Dump(r.diagnostics);
  EXPECT_EQ(errors[0].where.line, 19);
  EXPECT_EQ(errors[0].where.column, 18);
  EXPECT_EQ(errors[0].field, "spec.template.spec.containers[0].env[0].value");
  // An env value may be a secret: the message never repeats it.
  EXPECT_EQ(errors[0].ToString(),
            "d.yaml:19:18: error: Invalid type: expected string, got number (quote it) "
            "(spec.template.spec.containers[0].env[0].value)");
}

TEST(DecodeTest, ASecretsValuesAreNeverInAMessage) {
  FileParseResult r = ParseManifestFile(
      "s.yaml",
      "apiVersion: v1\nkind: Secret\nmetadata: {name: s}\nstringData:\n  pin: 4711\n"
      "  flag: true\ndata:\n  key: '%%4712'\n");
  auto errors = Errors(r);
  ASSERT_EQ(errors.size(), 3u) << Dump(r.diagnostics);
  const std::string all = Dump(r.diagnostics);
  EXPECT_EQ(all.find("4711"), std::string::npos) << all;
  EXPECT_EQ(all.find("4712"), std::string::npos) << all;
  EXPECT_EQ(all.find("true"), std::string::npos) << all;
  EXPECT_NE(all.find("quote it"), std::string::npos) << all;
}

TEST(DecodeTest, Yaml11ScalarsAsKubernetesReadsThem) {
  // `on` is a boolean to Kubernetes' YAML reader: as a label value it is a type error.
  std::string y = kMinimalDeployment;
  y.replace(y.find("  name: web\n"), 12, "  name: web\n  labels:\n    debug: on\n");
  FileParseResult r = ParseManifestFile("d.yaml", y);
  auto errors = Errors(r);
  ASSERT_EQ(errors.size(), 1u) << Dump(r.diagnostics);
  EXPECT_EQ(errors[0].field, "metadata.labels.debug");
  // Quoted, it is a string.
  y.replace(y.find("debug: on"), 9, "debug: \"on\"");
  EXPECT_TRUE(Errors(ParseManifestFile("d.yaml", y)).empty());
}

TEST(DecodeTest, MultiDocumentEmptyDocumentsAndLists) {
  std::string y = std::string("---\n---\n") + kMinimalDeployment + "---\n# only a comment\n---\n" +
                  kMinimalService;
  FileParseResult r = ParseManifestFile("multi.yaml", y);
  ASSERT_TRUE(Errors(r).empty()) << Dump(r.diagnostics);
  ASSERT_EQ(r.manifests.size(), 2u);
  EXPECT_EQ(r.manifests[0].key().kind, "Deployment");
  EXPECT_EQ(r.manifests[0].source.line, 3);
  EXPECT_EQ(r.manifests[1].key().kind, "Service");

  const char* list = R"(apiVersion: v1
kind: List
items:
- apiVersion: v1
  kind: Service
  metadata: {name: a}
  spec: {ports: [{port: 80}]}
- apiVersion: v1
  kind: Service
  metadata: {name: B}
  spec: {ports: [{port: 80}]}
)";
  FileParseResult lr = ParseManifestFile("list.yaml", list);
  ASSERT_EQ(lr.manifests.size(), 1u);
  EXPECT_EQ(lr.manifests[0].key().name, "a");
  auto errors = Errors(lr);
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_EQ(errors[0].field, "metadata.name");
  EXPECT_EQ(errors[0].where.line, 10);
}

TEST(DecodeTest, UnsupportedKindsAreListedNotErrors) {
  const char* y = R"(apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: front
spec:
  rules: []
---
apiVersion: v1
kind: ConfigMap
metadata: {name: cfg, namespace: shop}
data: {a: b}
)";
  FileParseResult r = ParseManifestFile("x.yaml", y);
  EXPECT_TRUE(r.diagnostics.empty()) << Dump(r.diagnostics);
  ASSERT_EQ(r.manifests.size(), 2u);
  EXPECT_FALSE(r.manifests[0].is_supported());
  EXPECT_EQ(r.manifests[0].key(), (ObjectKey{"Ingress", "default", "front"}));
  EXPECT_EQ(r.manifests[1].key(), (ObjectKey{"ConfigMap", "shop", "cfg"}));
  EXPECT_EQ(ToJson(r.manifests[1])["data"]["a"], "b");
}

TEST(DecodeTest, KustomizationFileIsUnsupported) {
  FileParseResult r = ParseManifestFile("app/kustomization.yaml", "resources:\n- a.yaml\n");
  EXPECT_TRUE(r.diagnostics.empty()) << Dump(r.diagnostics);
  ASSERT_EQ(r.manifests.size(), 1u);
  EXPECT_EQ(r.manifests[0].key(), (ObjectKey{"Kustomization", "default", "app"}));
}

TEST(DecodeTest, MissingKindIsAnError) {
  FileParseResult r = ParseManifestFile("values.yaml", "replicas: 3\n");
  auto errors = Errors(r);
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_NE(errors[0].message.find("Kind"), std::string::npos);
  EXPECT_TRUE(r.manifests.empty());
}

TEST(DecodeTest, RemovedApiVersionIsAnError) {
  std::string y = kMinimalDeployment;
  y.replace(0, std::string("apiVersion: apps/v1").size(), "apiVersion: extensions/v1beta1");
  auto errors = Errors(ParseManifestFile("d.yaml", y));
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_EQ(errors[0].field, "apiVersion");
}

TEST(DecodeTest, BrokenYamlIsPositionedAndKeepsEarlierDocuments) {
  std::string y = std::string(kMinimalService) + "---\nkind: [oops\n";
  FileParseResult r = ParseManifestFile("s.yaml", y);
  EXPECT_EQ(r.manifests.size(), 1u);
  auto errors = Errors(r);
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_GE(errors[0].where.line, 10);
  EXPECT_NE(errors[0].message.find("YAML syntax error"), std::string::npos);
}

TEST(DecodeTest, DuplicateKeyInMapping) {
  auto errors = Errors(ParseManifestFile("d.yaml", "a: 1\nb: 2\na: 3\n"));
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_EQ(errors[0].where.line, 3);
  EXPECT_NE(errors[0].message.find("already defined"), std::string::npos);
}

TEST(DecodeTest, MergeKeysAndAnchors) {
  const char* y = R"(apiVersion: v1
kind: Service
metadata:
  name: web
  labels: &labels {app: web, tier: front}
spec:
  selector:
    <<: *labels
    tier: override
  ports: [{port: 80}]
)";
  FileParseResult r = ParseManifestFile("s.yaml", y);
  ASSERT_TRUE(Errors(r).empty()) << Dump(r.diagnostics);
  const Service& s = *r.manifests.at(0).service();
  EXPECT_EQ(s.spec.selector.at("app"), "web");
  EXPECT_EQ(s.spec.selector.at("tier"), "override");
}

TEST(DecodeTest, DuplicateObjectsNameBothPlaces) {
  ManifestSet set = ParseManifests({{"a.yaml", kMinimalService}, {"b/c.yaml", kMinimalService}});
  ASSERT_EQ(model::CountErrors(set.diagnostics), 1u);
  const Diagnostic& d = set.diagnostics[0];
  EXPECT_EQ(d.where.file, "b/c.yaml");
  EXPECT_NE(d.message.find("Service default/web"), std::string::npos);
  EXPECT_NE(d.message.find("a.yaml:1:1"), std::string::npos);
  // Same name in another namespace or of another kind is fine.
  std::string other = kMinimalService;
  other.replace(other.find("name: web"), 9, "name: web\n  namespace: other");
  EXPECT_TRUE(ParseManifests(
                  {{"a.yaml", kMinimalService}, {"b.yaml", other}, {"d.yaml", kMinimalDeployment}})
                  .ok());
}

TEST(DecodeTest, DecodeManifestFromJson) {
  Json j = {{"apiVersion", "v1"},
            {"kind", "Service"},
            {"metadata", {{"name", "x"}}},
            {"spec", {{"ports", {{{"port", 90}}}}}}};
  auto m = DecodeManifest(j, {"api", 0, 0}, nullptr);
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  EXPECT_EQ(m->service()->spec.ports.at(0).target_port, IntOrString(int64_t{90}));
  j["spec"]["ports"][0]["port"] = "ninety";
  auto bad = DecodeManifest(j, {"api", 0, 0}, nullptr);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("spec.ports[0].port"), std::string::npos);
}

}  // namespace
}  // namespace ballast::model
