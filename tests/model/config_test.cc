// ConfigMaps and Secrets: decoded and validated as the API server does, written back the same,
// and what a pod template's environment reads from them bound into its revision.

#include <gtest/gtest.h>

#include "model/base64.h"
#include "model/codec.h"
#include "model/config_refs.h"
#include "model/manifest.h"
#include "test_util.h"

namespace ballast::model {
namespace {

using testing::Dump;
using testing::Errors;

FileParseResult Parse(const std::string& yaml) { return ParseManifestFile("c.yaml", yaml); }

// The first error's field and message, "" when none.
std::string FirstError(const FileParseResult& r) {
  auto errors = Errors(r);
  return errors.empty() ? "" : errors[0].field + ": " + errors[0].message;
}

TEST(Base64Test, DecodesWhatGoDecodesAndRefusesTheRest) {
  EXPECT_EQ(Base64Decode("aGVsbG8="), "hello");
  EXPECT_EQ(Base64Decode("aGVs\nbG8=\n"), "hello");  // line breaks are skipped
  EXPECT_EQ(Base64Decode(""), "");
  EXPECT_EQ(Base64Decode(Base64Encode(std::string("\0\xff\x01", 3))), std::string("\0\xff\x01", 3));
  size_t at = 99;
  EXPECT_FALSE(Base64Decode("aGVsbG8", &at));  // no padding
  EXPECT_FALSE(Base64Decode("aGV sbG8=", &at));
  EXPECT_EQ(at, 3u);
  EXPECT_FALSE(Base64Decode("aG==bG8=", &at));  // padding before the end
  EXPECT_EQ(at, 4u);
}

TEST(ConfigMapTest, DecodesDataAndBinaryDataAndWritesThemBack) {
  auto r = Parse(R"(apiVersion: v1
kind: ConfigMap
metadata:
  name: app
  namespace: shop
data:
  LOG_LEVEL: debug
  app.properties: |
    a=1
    b=2
binaryData:
  logo.png: iVBORw0K
immutable: false
)");
  ASSERT_TRUE(Errors(r).empty()) << Dump(r.diagnostics);
  const Manifest& m = r.manifests.at(0);
  ASSERT_NE(m.config_map(), nullptr);
  EXPECT_TRUE(m.is_supported());
  EXPECT_EQ(m.key().ToString(), "ConfigMap shop/app");
  EXPECT_EQ(m.config_map()->data.at("app.properties"), "a=1\nb=2\n");
  EXPECT_EQ(m.config_map()->binary_data.at("logo.png"), "\x89PNG\r\n");
  auto again = Parse(ToYaml(m));
  ASSERT_TRUE(Errors(again).empty()) << Dump(again.diagnostics) << ToYaml(m);
  EXPECT_EQ(again.manifests.at(0).value, m.value);
  EXPECT_TRUE(m.ignored_fields.empty());
}

TEST(SecretTest, StringDataIsMergedIntoDataAsTheApiServerStoresIt) {
  auto written_as_data = Parse(R"(apiVersion: v1
kind: Secret
metadata: {name: db}
data:
  password: czNjcjN0
  user: YWRtaW4=
)");
  auto written_as_string_data = Parse(R"(apiVersion: v1
kind: Secret
metadata: {name: db}
data:
  user: b2xk
stringData:
  password: s3cr3t
  user: admin
)");
  ASSERT_TRUE(Errors(written_as_data).empty()) << Dump(written_as_data.diagnostics);
  ASSERT_TRUE(Errors(written_as_string_data).empty()) << Dump(written_as_string_data.diagnostics);
  const Secret* s = written_as_string_data.manifests.at(0).secret();
  ASSERT_NE(s, nullptr);
  EXPECT_EQ(s->type, "Opaque");
  EXPECT_EQ(s->data.at("user"), "admin");  // stringData wins
  EXPECT_EQ(written_as_data.manifests.at(0).value, written_as_string_data.manifests.at(0).value);
  EXPECT_EQ(CanonicalJson(written_as_data.manifests.at(0)),
            CanonicalJson(written_as_string_data.manifests.at(0)));
  EXPECT_EQ(ToJson(written_as_data.manifests.at(0))["data"]["password"], "czNjcjN0");
}

TEST(SecretTest, DataThatIsNotBase64IsAnErrorAtItsLine) {
  auto r = Parse(R"(apiVersion: v1
kind: Secret
metadata: {name: db}
data:
  password: s3cr3t!
)");
  auto errors = Errors(r);
  ASSERT_EQ(errors.size(), 1u) << Dump(r.diagnostics);
  EXPECT_EQ(errors[0].field, "data.password");
  EXPECT_EQ(errors[0].where.line, 5);
  EXPECT_NE(errors[0].message.find("illegal base64 data at input byte 6"), std::string::npos)
      << errors[0].message;
  EXPECT_NE(errors[0].message.find("stringData"), std::string::npos) << errors[0].message;
  EXPECT_EQ(errors[0].message.find("s3cr3t"), std::string::npos) << "a value in a message";
}

struct ConfigCase {
  const char* name;
  const char* yaml;
  const char* error;  // "field: message" prefix, "" when valid
};

class ConfigValidationTest : public ::testing::TestWithParam<ConfigCase> {};

TEST_P(ConfigValidationTest, ReportsAsTheApiServer) {
  auto r = Parse(GetParam().yaml);
  const std::string got = FirstError(r);
  if (std::string(GetParam().error).empty()) {
    EXPECT_EQ(got, "") << Dump(r.diagnostics);
  } else {
    EXPECT_EQ(got.rfind(GetParam().error, 0), 0u) << got;
  }
}

const ConfigCase kConfigCases[] = {
    ConfigCase{"KeyWithSlash",
               "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\ndata: {a/b: x}\n",
               "data[a/b]: Invalid value: \"a/b\": a valid config key"},
    ConfigCase{"DotDotKey",
               "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\ndata: {..x: y}\n",
               "data[..x]: Invalid value: \"..x\": must not start with '..'"},
    ConfigCase{"KeyInDataAndBinaryData",
               "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\ndata: {k: x}\n"
               "binaryData: {k: eA==}\n",
               "binaryData.k: Invalid value: \"k\": duplicate of key present in data"},
    ConfigCase{"UpperCaseName", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: App}\n",
               "metadata.name: Invalid value: \"App\""},
    ConfigCase{"TlsWithoutKey",
               "apiVersion: v1\nkind: Secret\nmetadata: {name: t}\ntype: kubernetes.io/tls\n"
               "stringData: {tls.crt: x}\n",
               "data[tls.key]: Required value"},
    ConfigCase{"TlsComplete",
               "apiVersion: v1\nkind: Secret\nmetadata: {name: t}\ntype: kubernetes.io/tls\n"
               "stringData: {tls.crt: x, tls.key: y}\n",
               ""},
    ConfigCase{"BasicAuthEmpty",
               "apiVersion: v1\nkind: Secret\nmetadata: {name: t}\n"
               "type: kubernetes.io/basic-auth\n",
               "data.username: Required value"},
    ConfigCase{"DockerConfigNotJson",
               "apiVersion: v1\nkind: Secret\nmetadata: {name: t}\n"
               "type: kubernetes.io/dockerconfigjson\nstringData: {.dockerconfigjson: '{'}\n",
               "data[.dockerconfigjson]: Invalid value: \"<secret contents redacted>\""},
    ConfigCase{"SshAuthWithoutKey",
               "apiVersion: v1\nkind: Secret\nmetadata: {name: t}\n"
               "type: kubernetes.io/ssh-auth\n",
               "data.ssh-privatekey: Required value"},
    ConfigCase{"EnvKeyRefWithoutKey",
               "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: w}\nspec:\n"
               "  selector: {matchLabels: {a: b}}\n  template:\n    metadata: {labels: {a: b}}\n"
               "    spec:\n      containers:\n      - name: c\n        image: i\n"
               "        env:\n        - name: X\n          valueFrom:\n"
               "            configMapKeyRef: {name: app}\n",
               "spec.template.spec.containers[0].env[0].valueFrom.configMapKeyRef.key: "
               "Required value"},
    ConfigCase{"EnvValueAndValueFrom",
               "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: w}\nspec:\n"
               "  selector: {matchLabels: {a: b}}\n  template:\n    metadata: {labels: {a: b}}\n"
               "    spec:\n      containers:\n      - name: c\n        image: i\n"
               "        env:\n        - name: X\n          value: v\n          valueFrom:\n"
               "            secretKeyRef: {name: db, key: k}\n",
               "spec.template.spec.containers[0].env[0].valueFrom: Invalid value: \"\": may "
               "not be specified when `value` is not empty"},
    ConfigCase{"EnvFromBoth",
               "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: w}\nspec:\n"
               "  selector: {matchLabels: {a: b}}\n  template:\n    metadata: {labels: {a: b}}\n"
               "    spec:\n      containers:\n      - name: c\n        image: i\n"
               "        envFrom:\n        - configMapRef: {name: a}\n"
               "          secretRef: {name: b}\n",
               "spec.template.spec.containers[0].envFrom[0]: Invalid value: \"\": may not "
               "have more than one field specified at a time"},
    ConfigCase{"EnvFromBadPrefix",
               "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: w}\nspec:\n"
               "  selector: {matchLabels: {a: b}}\n  template:\n    metadata: {labels: {a: b}}\n"
               "    spec:\n      containers:\n      - name: c\n        image: i\n"
               "        envFrom:\n        - prefix: '1X'\n          configMapRef: {name: a}\n",
               "spec.template.spec.containers[0].envFrom[0].prefix: Invalid value: \"1X\""},
    ConfigCase{"EnvFromValid",
               "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: w}\nspec:\n"
               "  selector: {matchLabels: {a: b}}\n  template:\n    metadata: {labels: {a: b}}\n"
               "    spec:\n      containers:\n      - name: c\n        image: i\n"
               "        envFrom:\n        - prefix: APP_\n          configMapRef: {name: a}\n"
               "        - secretRef: {name: b, optional: true}\n",
               ""},
    ConfigCase{"VolumeMountOfNoVolume",
               "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: w}\nspec:\n"
               "  selector: {matchLabels: {a: b}}\n  template:\n    metadata: {labels: {a: b}}\n"
               "    spec:\n"
               "      containers:\n      - name: c\n        image: i\n"
               "        volumeMounts: [{name: config, mountPath: /etc/config}]\n",
               "spec.template.spec.containers[0].volumeMounts[0].name: Not found: \"config\""},
    ConfigCase{"VolumeWithoutType",
               "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: w}\nspec:\n"
               "  selector: {matchLabels: {a: b}}\n  template:\n    metadata: {labels: {a: b}}\n"
               "    spec:\n"
               "      volumes: [{name: config}]\n"
               "      containers:\n      - name: c\n        image: i\n",
               "spec.template.spec.volumes[0]: Required value: must specify a volume type"},
    ConfigCase{"VolumeTwoTypes",
               "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: w}\nspec:\n"
               "  selector: {matchLabels: {a: b}}\n  template:\n    metadata: {labels: {a: b}}\n"
               "    spec:\n"
               "      volumes: [{name: config, configMap: {name: a}, secret: {secretName: b}}]\n"
               "      containers:\n      - name: c\n        image: i\n",
               "spec.template.spec.volumes[0]: Forbidden: may not specify more than 1 volume type"},
    ConfigCase{
        "VolumeDuplicateName",
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: w}\nspec:\n"
        "  selector: {matchLabels: {a: b}}\n  template:\n    metadata: {labels: {a: b}}\n"
        "    spec:\n"
        "      volumes: [{name: config, configMap: {name: a}}, {name: config, emptyDir: {}}]\n"
        "      containers:\n      - name: c\n        image: i\n",
        "spec.template.spec.volumes[1].name: Duplicate value: \"config\""},
    ConfigCase{"VolumeBadMode",
               "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: w}\nspec:\n"
               "  selector: {matchLabels: {a: b}}\n  template:\n    metadata: {labels: {a: b}}\n"
               "    spec:\n"
               "      volumes: [{name: config, configMap: {name: a, defaultMode: 01000}}]\n"
               "      containers:\n      - name: c\n        image: i\n",
               "spec.template.spec.volumes[0].configMap.defaultMode: Invalid value: 512: must be a "
               "number between 0 and 0777 (octal), both inclusive"},
    ConfigCase{"VolumeItemPathEscapes",
               "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: w}\nspec:\n"
               "  selector: {matchLabels: {a: b}}\n  template:\n    metadata: {labels: {a: b}}\n"
               "    spec:\n"
               "      volumes: [{name: config, secret: {secretName: a, items: [{key: k, path: "
               "../../etc/x}]}}]\n"
               "      containers:\n      - name: c\n        image: i\n",
               "spec.template.spec.volumes[0].secret.items[0].path: Invalid value: "
               "\"../../etc/x\": must not contain '..'"},
    ConfigCase{
        "VolumeItemKubeletsName",
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: w}\nspec:\n"
        "  selector: {matchLabels: {a: b}}\n  template:\n    metadata: {labels: {a: b}}\n"
        "    spec:\n"
        "      volumes: [{name: config, configMap: {name: a, items: [{key: k, path: ./..data}]}}]\n"
        "      containers:\n      - name: c\n        image: i\n",
        "spec.template.spec.volumes[0].configMap.items[0].path: Invalid value: \"./..data\": must "
        "not start with '..'"},
    ConfigCase{"VolumeMountPathBackstep",
               "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: w}\nspec:\n"
               "  selector: {matchLabels: {a: b}}\n  template:\n    metadata: {labels: {a: b}}\n"
               "    spec:\n"
               "      volumes: [{name: config, configMap: {name: a}}]\n"
               "      containers:\n      - name: c\n        image: i\n"
               "        volumeMounts: [{name: config, mountPath: /x/../etc}]\n",
               "spec.template.spec.containers[0].volumeMounts[0].mountPath: Invalid value: "
               "\"/x/../etc\": must not contain '..'"},
    ConfigCase{
        "VolumeItemAbsolutePath",
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: w}\nspec:\n"
        "  selector: {matchLabels: {a: b}}\n  template:\n    metadata: {labels: {a: b}}\n"
        "    spec:\n"
        "      volumes: [{name: config, configMap: {name: a, items: [{key: k, path: /etc/x}]}}]\n"
        "      containers:\n      - name: c\n        image: i\n",
        "spec.template.spec.volumes[0].configMap.items[0].path: Invalid value: \"/etc/x\": must be "
        "a relative path"},
    ConfigCase{"VolumeSecretWithoutName",
               "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: w}\nspec:\n"
               "  selector: {matchLabels: {a: b}}\n  template:\n    metadata: {labels: {a: b}}\n"
               "    spec:\n"
               "      volumes: [{name: config, secret: {}}]\n"
               "      containers:\n      - name: c\n        image: i\n",
               "spec.template.spec.volumes[0].secret.secretName: Required value"},
    ConfigCase{"VolumeMountSubPathEscapes",
               "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: w}\nspec:\n"
               "  selector: {matchLabels: {a: b}}\n  template:\n    metadata: {labels: {a: b}}\n"
               "    spec:\n"
               "      volumes: [{name: config, configMap: {name: a}}]\n"
               "      containers:\n      - name: c\n        image: i\n"
               "        volumeMounts: [{name: config, mountPath: /x, subPath: ../y}]\n",
               "spec.template.spec.containers[0].volumeMounts[0].subPath: Invalid value: \"../y\": "
               "must not contain '..'"},
    ConfigCase{
        "VolumeMountPathTwice",
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: w}\nspec:\n"
        "  selector: {matchLabels: {a: b}}\n  template:\n    metadata: {labels: {a: b}}\n"
        "    spec:\n"
        "      volumes: [{name: config, configMap: {name: a}}]\n"
        "      containers:\n      - name: c\n        image: i\n"
        "        volumeMounts: [{name: config, mountPath: /x}, {name: config, mountPath: /x}]\n",
        "spec.template.spec.containers[0].volumeMounts[1].mountPath: Invalid value: \"/x\": must "
        "be unique"},
    ConfigCase{"VolumesValid",
               "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: w}\nspec:\n"
               "  selector: {matchLabels: {a: b}}\n  template:\n    metadata: {labels: {a: b}}\n"
               "    spec:\n"
               "      volumes:\n      - {name: config, configMap: {name: a, optional: true, "
               "defaultMode: 0440,"
               " items: [{key: k, path: conf/k.yaml, mode: 0400}]}}\n"
               "      - {name: creds, secret: {secretName: b}}\n      - {name: tmp, emptyDir: {}}\n"
               "      containers:\n      - name: c\n        image: i\n"
               "        volumeMounts: [{name: config, mountPath: /etc/config},"
               " {name: creds, mountPath: /run/pw, subPath: pw, readOnly: true}, {name: tmp, "
               "mountPath: /tmp}]\n",
               ""}};

INSTANTIATE_TEST_SUITE_P(Cases, ConfigValidationTest, ::testing::ValuesIn(kConfigCases),
                         [](const auto& info) { return info.param.name; });

TEST(ConfigSizeTest, MoreThanOneMebibyteIsRefused) {
  std::string yaml = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: big}\ndata:\n  k: \"";
  yaml += std::string(1024 * 1024, 'x');
  yaml += "\"\n";
  EXPECT_EQ(FirstError(Parse(yaml)).rfind(": Too long: must have at most 1048576 bytes", 0), 0u)
      << FirstError(Parse(yaml));
}

// A Deployment whose container reads LOG_LEVEL from ConfigMap app and everything of Secret db.
const char kReader[] = R"(apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
      - name: web
        image: nginx
        env:
        - name: LOG_LEVEL
          valueFrom:
            configMapKeyRef: {name: app, key: LOG_LEVEL}
        envFrom:
        - secretRef: {name: db}
          prefix: DB_
)";

std::vector<Manifest> Objects(const std::string& config_map_data, const std::string& secret) {
  std::string yaml = kReader;
  if (!config_map_data.empty()) {
    yaml += "---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: app}\ndata: {" +
            config_map_data + "}\n";
  }
  if (!secret.empty()) {
    yaml +=
        "---\napiVersion: v1\nkind: Secret\nmetadata: {name: db}\nstringData: {" + secret + "}\n";
  }
  auto r = Parse(yaml);
  EXPECT_TRUE(Errors(r).empty()) << Dump(r.diagnostics);
  return r.manifests;
}

std::string HashOf(std::vector<Manifest> objects, const std::string& key = "k1") {
  BindConfigHashes(&objects, key);
  const auto& a = objects.at(0).deployment()->spec.template_.annotations;
  auto it = a.find(kAnnotationConfigHash);
  return it == a.end() ? "" : it->second;
}

TEST(BindConfigHashesTest, WhatTheEnvironmentReadsIsPartOfTheRevision) {
  const std::string base = HashOf(Objects("LOG_LEVEL: info, other: '1'", "password: a"));
  ASSERT_FALSE(base.empty());
  EXPECT_EQ(HashOf(Objects("LOG_LEVEL: info, other: '1'", "password: a")), base) << "stable";
  EXPECT_EQ(HashOf(Objects("LOG_LEVEL: info, other: '2'", "password: a")), base)
      << "a key the environment does not read";
  EXPECT_NE(HashOf(Objects("LOG_LEVEL: debug, other: '1'", "password: a")), base);
  EXPECT_NE(HashOf(Objects("LOG_LEVEL: info, other: '1'", "password: b")), base);
  EXPECT_NE(HashOf(Objects("LOG_LEVEL: info, other: '1'", "password: a, extra: x")), base)
      << "envFrom reads every key";
  EXPECT_NE(HashOf(Objects("", "password: a")), base) << "an absent ConfigMap";
  EXPECT_NE(HashOf(Objects("other: '1'", "password: a")), base) << "an absent key";
  EXPECT_NE(HashOf(Objects("LOG_LEVEL: info, other: '1'", "password: a"), "k2"), base)
      << "the digest is keyed";
  // A different revision for the template: the pods roll.
  auto a = Objects("LOG_LEVEL: info", "password: a");
  auto b = Objects("LOG_LEVEL: debug", "password: a");
  BindConfigHashes(&a, "k");
  BindConfigHashes(&b, "k");
  EXPECT_NE(PodTemplateHash(a[0].deployment()->spec.template_),
            PodTemplateHash(b[0].deployment()->spec.template_));
}

TEST(BindConfigHashesTest, ATemplateThatReadsNothingCarriesNoHash) {
  auto r = Parse(std::string(testing::kMinimalDeployment));
  auto objects = r.manifests;
  objects[0].deployment()->spec.template_.annotations[kAnnotationConfigHash] = "written-in-git";
  const std::string before = PodTemplateHash(r.manifests[0].deployment()->spec.template_);
  BindConfigHashes(&objects, "k");
  EXPECT_FALSE(objects[0].deployment()->spec.template_.annotations.count(kAnnotationConfigHash));
  EXPECT_EQ(PodTemplateHash(objects[0].deployment()->spec.template_), before)
      << "revisions of Deployments without references are what they were";
}

TEST(BindConfigHashesTest, ReferencedConfigListsEachObjectOnce) {
  auto objects = Objects("LOG_LEVEL: x", "password: a");
  auto refs = ReferencedConfig(objects[0].deployment()->spec.template_.spec);
  ASSERT_EQ(refs.size(), 2u);
  EXPECT_EQ(refs[0], (std::pair<std::string, std::string>{"ConfigMap", "app"}));
  EXPECT_EQ(refs[1], (std::pair<std::string, std::string>{"Secret", "db"}));
}

}  // namespace
}  // namespace ballast::model

namespace ballast::model {
namespace {

TEST(NamespaceTest, IsClusterScopedAndWrittenBackWithoutANamespace) {
  auto r = ParseManifestFile("ns.yaml",
                             "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: shop\n"
                             "  namespace: ignored\n  labels: {team: a}\n");
  ASSERT_TRUE(Errors(r).empty()) << testing::Dump(r.diagnostics);
  const Manifest& m = r.manifests.at(0);
  ASSERT_NE(m.namespace_object(), nullptr);
  EXPECT_EQ(m.key(), (ObjectKey{"Namespace", "", "shop"}));
  EXPECT_EQ(m.key().ToString(), "Namespace shop");
  EXPECT_EQ(ToYaml(m).find("namespace:"), std::string::npos) << ToYaml(m);
  auto again = ParseManifestFile("ns.yaml", ToYaml(m));
  ASSERT_TRUE(Errors(again).empty());
  EXPECT_EQ(again.manifests.at(0).value, m.value);
  auto bad =
      ParseManifestFile("ns.yaml", "apiVersion: v1\nkind: Namespace\nmetadata: {name: a.b}\n");
  ASSERT_EQ(Errors(bad).size(), 1u);
  EXPECT_EQ(Errors(bad)[0].field, "metadata.name");
}

TEST(NamespaceTest, AnObjectInANamespaceNobodyCreatesIsAnErrorAtItsDocument) {
  const std::string in_shop =
      "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a, namespace: shop}\n---\n"
      "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: b, namespace: kube-system}\n---\n"
      "apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata: {name: c, namespace: x}\n";
  ManifestSet set = ParseManifests({{"app.yaml", in_shop}});
  ASSERT_TRUE(set.ok()) << testing::Dump(set.diagnostics) << "history is read without it";
  auto problems = CheckNamespaces(set.manifests);
  ASSERT_EQ(problems.size(), 1u) << testing::Dump(problems);
  EXPECT_TRUE(problems[0].is_error());
  EXPECT_EQ(problems[0].where.file, "app.yaml");
  EXPECT_EQ(problems[0].where.line, 1);
  EXPECT_EQ(problems[0].field, "metadata.namespace");
  EXPECT_EQ(problems[0].message.rfind("namespaces \"shop\" not found", 0), 0u)
      << problems[0].message;
  ManifestSet with_namespace =
      ParseManifests({{"app.yaml", in_shop},
                      {"ns.yaml", "apiVersion: v1\nkind: Namespace\nmetadata: {name: shop}\n"}});
  EXPECT_TRUE(CheckNamespaces(with_namespace.manifests).empty());
}

}  // namespace
}  // namespace ballast::model

namespace ballast::model {
namespace {

// History entries were applied under older rules (a ConfigMap was kept whole, unchecked): a
// newer ballast reads them with keep_invalid, the object kept and its errors as warnings, so an
// upgrade starts; a desired state is still refused.
TEST(KeepInvalidTest, HistoryKeepsWhatNewerRulesRefuse) {
  const std::string old_entry =
      "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: app}\ndata: {PORT: 8080, LOG: info}\n"
      "---\napiVersion: v1\nkind: Secret\nmetadata: {name: tls}\ntype: kubernetes.io/tls\n";
  ManifestSet strict = ParseManifests({{"objects.yaml", old_entry}});
  EXPECT_FALSE(strict.ok());
  EXPECT_TRUE(strict.manifests.empty());
  ParseLimits limits;
  limits.keep_invalid = true;
  ManifestSet kept = ParseManifests({{"objects.yaml", old_entry}}, limits);
  ASSERT_TRUE(kept.ok()) << testing::Dump(kept.diagnostics);
  ASSERT_EQ(kept.manifests.size(), 2u);
  EXPECT_EQ(kept.manifests[0].config_map()->data.at("LOG"), "info");
  EXPECT_EQ(kept.diagnostics.size(), 3u) << testing::Dump(kept.diagnostics);
}

TEST(ConfigVolumeTest, APodHasAtMost256Volumes) {
  std::string volumes = "      volumes:\n";
  for (int i = 0; i < 257; ++i) {
    volumes += "      - {name: v" + std::to_string(i) + ", configMap: {name: files}}\n";
  }
  auto r = Parse(std::string(kReader) + volumes);
  ASSERT_FALSE(Errors(r).empty());
  EXPECT_EQ(Errors(r)[0].field, "spec.template.spec.volumes");
  EXPECT_NE(Errors(r)[0].message.find("must have at most 256 volumes"), std::string::npos);
}

TEST(ConfigVolumeTest, VolumesAreReadAndTheirObjectsAreReferencedButNotHashed) {
  auto r = Parse(std::string(kReader) + R"(      volumes:
      - name: config
        configMap:
          name: files
          defaultMode: 0440
          items: [{key: nginx.conf, path: conf/nginx.conf, mode: 0400}]
      - name: creds
        secret: {secretName: tls, optional: true}
      - name: scratch
        emptyDir: {}
)");
  ASSERT_TRUE(Errors(r).empty()) << Dump(r.diagnostics);
  const PodSpec& spec = r.manifests.at(0).deployment()->spec.template_.spec;
  const auto volumes = ConfigVolumes(spec);
  ASSERT_EQ(volumes.size(), 2u) << "the emptyDir is not one";
  EXPECT_EQ(volumes[0].kind, "ConfigMap");
  EXPECT_EQ(volumes[0].object, "files");
  EXPECT_EQ(volumes[0].default_mode, 0440);
  ASSERT_EQ(volumes[0].items.size(), 1u);
  EXPECT_EQ(volumes[0].items[0].path, "conf/nginx.conf");
  EXPECT_EQ(volumes[0].items[0].mode, 0400);
  EXPECT_EQ(volumes[1].kind, "Secret");
  EXPECT_TRUE(volumes[1].optional);
  EXPECT_EQ(volumes[1].default_mode, kDefaultVolumeFileMode);
  // Listed as ignored: only what ballast does not mount.
  const auto& ignored = r.manifests.at(0).ignored_fields;
  EXPECT_NE(std::find(ignored.begin(), ignored.end(), "spec.template.spec.volumes[2].emptyDir"),
            ignored.end());
  for (const auto& f : ignored) EXPECT_EQ(f.find("volumes[0]"), std::string::npos) << f;

  const auto refs = ReferencedConfig(spec);
  EXPECT_NE(std::find(refs.begin(), refs.end(),
                      std::pair<std::string, std::string>{"ConfigMap", "files"}),
            refs.end());
  EXPECT_NE(
      std::find(refs.begin(), refs.end(), std::pair<std::string, std::string>{"Secret", "tls"}),
      refs.end());

  // Files change in place: what only a volume holds is not part of the revision.
  auto with = [&](const std::string& conf) {
    auto objects = r.manifests;
    auto cm =
        Parse("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: files}\ndata: {nginx.conf: '" +
              conf + "'}\n");
    objects.push_back(cm.manifests.at(0));
    BindConfigHashes(&objects, "k");
    return PodTemplateHash(objects[0].deployment()->spec.template_);
  };
  EXPECT_EQ(with("a"), with("b"));
}

}  // namespace
}  // namespace ballast::model
