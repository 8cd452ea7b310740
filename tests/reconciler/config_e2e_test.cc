// ConfigMaps and Secrets with real processes (issue #18): what a pod's environment reads from
// them reaches it, a change of it rolls the Deployment, a missing one holds only the pods that
// need it (CreateContainerConfigError), a restarted reconciler keeps the revisions, and a
// Secret's values reach no page, plan, history view or log.

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <set>
#include <string>

#include "model/base64.h"
#include "tests/reconciler/cluster.h"

namespace ballast::reconciler::testing {
namespace {

using ballast::testing::WebSpec;
namespace fs = std::filesystem;

// web on `port`, its message made of what it reads: GREETING from ConfigMap app, every key of
// Secret db as DB_<key>.
std::string Web(int port, int replicas, bool greeting_optional = false) {
  WebSpec w;
  w.replicas = replicas;
  w.service_port = port;
  w.message = "$(GREETING)-$(DB_PASSWORD)";
  w.container_yaml = std::string(
                         "          env:\n"
                         "          - name: GREETING\n"
                         "            valueFrom:\n"
                         "              configMapKeyRef: {name: app, key: GREETING") +
                     (greeting_optional ? ", optional: true" : "") +
                     "}\n"
                     "          envFrom:\n"
                     "          - secretRef: {name: db}\n"
                     "            prefix: DB_\n";
  return WebManifest(w);
}

std::string AppConfig(const std::string& greeting) {
  return "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: app}\ndata:\n  GREETING: " + greeting +
         "\n  UNUSED: x\n";
}

std::string DbSecret(const std::string& password) {
  return "apiVersion: v1\nkind: Secret\nmetadata: {name: db}\nstringData:\n  PASSWORD: " +
         password + "\n";
}

// Every text a user or a viewer can read about the cluster, as the admin sees it.
std::string EverythingReadable(Cluster& c) {
  std::string out;
  for (const char* path : {"/api/v1/plan?diff=true", "/api/v1/status", "/api/v1/deployments",
                           "/api/v1/pods", "/api/v1/history?limit=20", "/api/v1/history/1/diff",
                           "/api/v1/history/2/diff", "/api/v1/history/3/diff"}) {
    out += c.Get(path).dump();
  }
  net::HttpClient client{net::ClientOptions{}};
  if (auto page = client.Get(c.url() + "/"); page.ok()) out += page->body;
  return out + ReadFile(c.serve_log()) + c.Logs();
}

TEST(ConfigE2E, WhatThePodReadsReachesItAndAChangeRollsIt) {
  Cluster c;
  const int port = PickFreePort();
  c.Commit({{"web.yaml", Web(port, 2)},
            {"app.yaml", AppConfig("hello")},
            {"db.yaml", DbSecret("pw-0a1b2c3d4e")}},
           "web reads app and db");
  ASSERT_TRUE(c.StartServe({}));
  ASSERT_TRUE(c.StartAgents(1));
  ASSERT_TRUE(WaitFor([&] { return c.RolledOut(2) && Serves(port, "hello-pw-0a1b2c3d4e"); }))
      << Fetch(port) << c.Logs();
  const auto v1 = c.ReadyPods();

  // A key the pods do not read changes nothing.
  c.Commit({{"app.yaml", AppConfig("hello") + "  MORE: y\n"}}, "an unread key");
  ASSERT_TRUE(WaitFor([&] { return c.Get("/api/v1/history?limit=20")["items"].size() == 2; }));
  EXPECT_EQ(c.ReadyPods(), v1);

  // The ConfigMap's value changes: a new revision rolls out, and serves the new value.
  c.Commit({{"app.yaml", AppConfig("bonjour")}}, "app: bonjour");
  ASSERT_TRUE(WaitFor([&] { return Serves(port, "bonjour-pw-0a1b2c3d4e") && c.RolledOut(2); }))
      << Fetch(port) << c.Logs();
  const auto v2 = c.ReadyPods();
  EXPECT_NE(v2.begin()->second, v1.begin()->second) << "a new revision";

  // The Secret's value changes: rolls again.
  c.Commit({{"db.yaml", DbSecret("pw-9z8y7x6w5v")}}, "db: rotated");
  ASSERT_TRUE(WaitFor([&] { return Serves(port, "bonjour-pw-9z8y7x6w5v") && c.RolledOut(2); }))
      << Fetch(port) << c.Logs();

  // Neither password, nor its base64, is anywhere an admin reads (as Argo CD masks them).
  const std::string readable = EverythingReadable(c);
  for (const std::string secret : {"pw-0a1b2c3d4e", "pw-9z8y7x6w5v"}) {
    EXPECT_EQ(readable.find(secret), std::string::npos) << secret;
    EXPECT_EQ(readable.find(model::Base64Encode(secret)), std::string::npos) << secret;
  }
  EXPECT_NE(readable.find("<redacted"), std::string::npos) << "the Secret shows, masked";

  // A restarted reconciler computes the same revisions (its key is kept): nothing rolls.
  const auto v3 = c.ReadyPods();
  c.StopServe();
  ASSERT_TRUE(c.StartServe({}));
  ASSERT_TRUE(WaitFor([&] { return c.RolledOut(2); })) << c.Logs();
  std::this_thread::sleep_for(std::chrono::seconds(3));
  EXPECT_EQ(c.ReadyPods(), v3);
}

TEST(ConfigE2E, AMissingConfigMapHoldsOnlyThePodsThatNeedIt) {
  Cluster c;
  const int port = PickFreePort();
  WebSpec other;
  other.name = "other";
  other.service_port = PickFreePort();
  other.message = "other";
  c.Commit(
      {{"web.yaml", Web(port, 1)}, {"db.yaml", DbSecret("pw")}, {"other.yaml", WebManifest(other)}},
      "web without its ConfigMap");
  ASSERT_TRUE(c.StartServe({}));
  ASSERT_TRUE(c.StartAgents(1));
  // web's container waits with kubelet's reason and message; other runs.
  auto web_waiting = [&] {
    const Json pods = c.Get("/api/v1/pods");
    if (!pods.is_object()) return false;
    bool web = false, other_ready = false;
    for (const auto& p : pods["items"]) {
      if (p["deployment"] == "other") other_ready = other_ready || p["ready"].get<bool>();
      if (p["deployment"] != "web") continue;
      for (const auto& ct : p["containers"]) {
        web = web || (ct.value("reason", "") == "CreateContainerConfigError" &&
                      ct.value("message", "") == "configmap \"app\" not found");
      }
    }
    return web && other_ready;
  };
  ASSERT_TRUE(WaitFor(web_waiting)) << c.Get("/api/v1/pods").dump() << c.Logs();
  // The commit was applied all the same (the sync is not blocked).
  EXPECT_EQ(c.Get("/api/v1/history?limit=20")["items"].size(), 1u);

  // The ConfigMap comes: web runs with it.
  c.Commit({{"app.yaml", AppConfig("late")}}, "app arrives");
  ASSERT_TRUE(WaitFor([&] { return Serves(port, "late-pw"); })) << Fetch(port) << c.Logs();

  // A key that is not there, read optionally: the variable is unset, the pod runs.
  c.Commit({{"web.yaml", Web(port, 1, /*greeting_optional=*/true)},
            {"app.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: app}\n"}},
           "GREETING optional and gone");
  ASSERT_TRUE(WaitFor([&] { return Serves(port, "$(GREETING)-pw"); })) << Fetch(port) << c.Logs();
}

// ConfigMaps and Secrets as files: the pod reads etc/config/message (below its work directory,
// the process runtime's root) at each request. A change of the ConfigMap rewrites the file in
// place, as kubelet does: the pod is neither restarted nor replaced, and no new revision rolls.
TEST(ConfigVolumeE2E, AMountedConfigMapChangesInPlaceWithoutARestart) {
  Cluster c;
  const int port = PickFreePort();
  WebSpec w;
  w.service_port = port;
  w.app_args = {"--message-file", "etc/config/message"};
  w.pod_yaml =
      "      volumes:\n"
      "      - name: config\n"
      "        configMap: {name: app}\n"
      "      - name: creds\n"
      "        secret:\n"
      "          secretName: db\n"
      "          defaultMode: 0400\n"
      "          items: [{key: PASSWORD, path: db/password}]\n";
  w.container_yaml =
      "          volumeMounts:\n"
      "          - {name: config, mountPath: /etc/config}\n"
      "          - {name: creds, mountPath: /run/creds, readOnly: true}\n";
  auto app = [](const std::string& message) {
    return "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: app}\ndata:\n  message: " + message +
           "\n";
  };
  c.Commit({{"web.yaml", WebManifest(w)},
            {"app.yaml", app("hello-from-a-file")},
            {"db.yaml", DbSecret("pw-file-5f4e3d2c1b")}},
           "web mounts app and db");
  ASSERT_TRUE(c.StartServe({}));
  ASSERT_TRUE(c.StartAgents(1));
  ASSERT_TRUE(WaitFor([&] { return c.RolledOut(1) && Serves(port, "hello-from-a-file"); }))
      << Fetch(port) << c.Logs();
  const auto pods = c.ReadyPods();
  const std::string pid = Fetch(port, "/pid");
  ASSERT_FALSE(pid.empty());
  // The Secret's item, where the pod finds it, with the volume's mode.
  const std::string creds = c.dir() / ("agent-" + Cluster::AgentName(0) + "/pods/default_" +
                                       pods.begin()->first + "/work/run/creds/db/password");
  EXPECT_EQ(ReadFile(creds), "pw-file-5f4e3d2c1b");
  struct stat st {};
  ASSERT_EQ(::stat(creds.c_str(), &st), 0) << creds;
  EXPECT_EQ(st.st_mode & 07777, 0400u);

  c.Commit({{"app.yaml", app("bonjour-from-a-file")}}, "app: bonjour");
  ASSERT_TRUE(WaitFor([&] { return Serves(port, "bonjour-from-a-file"); }))
      << Fetch(port) << c.Logs();
  EXPECT_EQ(Fetch(port, "/pid"), pid) << "the same process reads the new file";
  EXPECT_EQ(c.ReadyPods(), pods) << "no new revision, no new pod";

  // The Secret's value reaches no page, API answer, history view or log.
  const std::string readable = EverythingReadable(c);
  EXPECT_EQ(readable.find("pw-file-5f4e3d2c1b"), std::string::npos);
  EXPECT_EQ(readable.find(model::Base64Encode("pw-file-5f4e3d2c1b")), std::string::npos);
}

// A kustomize overlay in git, as Argo CD and Flux users keep them: `serve --path
// overlays/prod` renders the overlay over its base (../../base), and a change of a generated
// ConfigMap's literal gives it a new hashed name, which rolls the Deployment that reads it and
// prunes the old ConfigMap.
TEST(KustomizeE2E, AnOverlayRunsAndAGeneratedConfigMapChangeRollsIt) {
  Cluster c;
  const int port = PickFreePort();
  WebSpec w;
  w.name = "web";
  w.service_port = port;
  w.message = "$(GREETING)";
  w.container_yaml =
      "          env:\n"
      "          - name: GREETING\n"
      "            valueFrom:\n"
      "              configMapKeyRef: {name: greeting, key: GREETING}\n";
  const std::string base_kustomization =
      "resources: [web.yaml]\n"
      "configMapGenerator:\n"
      "- name: greeting\n"
      "  literals: [GREETING=hello-from-base]\n";
  auto overlay = [](const std::string& greeting) {
    return "resources: [../../base]\n"
           "namePrefix: prod-\n"
           "commonLabels: {env: prod}\n"
           "replicas: [{name: web, count: 2}]\n"
           "configMapGenerator:\n"
           "- name: greeting\n"
           "  behavior: merge\n"
           "  literals: [GREETING=" +
           greeting + "]\n";
  };
  c.Commit({{"base/kustomization.yaml", base_kustomization},
            {"base/web.yaml", WebManifest(w)},
            {"overlays/prod/kustomization.yaml", overlay("hello-from-prod")}},
           "base and prod overlay");
  ASSERT_TRUE(c.StartServe({"--path", "overlays/prod"}));
  ASSERT_TRUE(c.StartAgents(1));
  ASSERT_TRUE(WaitFor([&] { return Serves(port, "hello-from-prod") && c.ReadyPods().size() == 2; }))
      << Fetch(port) << c.Status().dump() << c.Logs();
  const Json deployments = c.Get("/api/v1/deployments");
  ASSERT_EQ(deployments["items"].size(), 1u) << deployments.dump();
  EXPECT_EQ(deployments["items"][0]["name"], "prod-web");
  const auto v1 = c.ReadyPods();

  c.Commit({{"overlays/prod/kustomization.yaml", overlay("bonjour-from-prod")}}, "prod: bonjour");
  ASSERT_TRUE(WaitFor([&] {
    return Serves(port, "bonjour-from-prod") && c.RolledOut(2) && c.ReadyPods() != v1;
  })) << Fetch(port)
      << c.Logs();
  EXPECT_NE(c.ReadyPods().begin()->second, v1.begin()->second) << "a new revision";
  // The generated ConfigMap was replaced, not kept beside: rolling back to the first entry would
  // delete the new name and create the old one again.
  const std::string diff = c.Get("/api/v1/history/1/diff").dump();
  std::set<std::string> names;
  for (size_t at = diff.find("prod-greeting-"); at != std::string::npos;
       at = diff.find("prod-greeting-", at + 1)) {
    names.insert(diff.substr(at, std::string("prod-greeting-").size() + 10));
  }
  EXPECT_EQ(names.size(), 2u) << diff;
}

// A commit with an object in a namespace git does not create is not applied (the last good
// state runs on, the error names the file and the namespace), and the commit that adds the
// Namespace is.
TEST(NamespaceE2E, AnObjectInAMissingNamespaceHoldsTheCommitUntilTheNamespaceComes) {
  Cluster c;
  const int port = PickFreePort();
  c.Commit({{"web.yaml", WebManifest("v1", 1, port)}}, "web v1");
  ASSERT_TRUE(c.StartServe({}));
  ASSERT_TRUE(c.StartAgents(1));
  ASSERT_TRUE(WaitFor([&] { return c.RolledOut(1) && Serves(port, "v1"); })) << c.Logs();
  const std::string shop_config =
      "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: settings, namespace: shop}\n"
      "data: {a: b}\n";
  c.Commit({{"web.yaml", WebManifest("v2", 1, port)}, {"shop/settings.yaml", shop_config}},
           "v2, and shop's settings without shop");
  ASSERT_TRUE(WaitFor([&] {
    return c.Status().dump().find("namespaces \\\"shop\\\" not found") != std::string::npos;
  })) << c.Status().dump();
  EXPECT_NE(c.Status().dump().find("shop/settings.yaml"), std::string::npos) << c.Status().dump();
  EXPECT_TRUE(Serves(port, "v1")) << "the last good state runs on";
  c.Commit({{"shop/namespace.yaml", "apiVersion: v1\nkind: Namespace\nmetadata: {name: shop}\n"}},
           "shop");
  ASSERT_TRUE(WaitFor([&] { return Serves(port, "v2") && c.RolledOut(1); }))
      << c.Status().dump() << c.Logs();
}

// A Secret encrypted with SOPS for an age recipient, as Flux users keep them (a file real sops
// wrote: tests/sops/fixtures/global.yaml). serve opens it with --age-identity-file; the pod reads
// the value; history keeps the object sealed again for the same recipient (its source file as
// git had it), so the value is in no history entry, page or log; a restarted reconciler opens
// history again; a tampered commit is refused with its file and line while the last good state
// runs on.
TEST(SopsE2E, AnEncryptedSecretReachesItsPodAndNeverHistoryInTheClear) {
  Cluster c;
  const int port = PickFreePort();
  const fs::path fixtures = fs::path(BALLAST_SOURCE_DIR) / "tests/sops/fixtures";
  const std::string secret = ReadFile(fixtures / "global.yaml");
  const std::string identity = c.dir() / "age.txt";
  fs::copy_file(fixtures / "age-global.txt", identity);
  fs::permissions(identity, fs::perms::owner_read | fs::perms::owner_write);
  WebSpec w;
  w.service_port = port;
  w.message = "$(DB_key)";
  w.container_yaml =
      "          envFrom:\n"
      "          - secretRef: {name: global-age-secret}\n"
      "            prefix: DB_\n";
  c.Commit({{"web.yaml", WebManifest(w)}, {"secret.enc.yaml", secret}}, "web reads a sops secret");
  ASSERT_TRUE(c.StartServe({"--age-identity-file", identity}));
  ASSERT_TRUE(c.StartAgents(1));
  ASSERT_TRUE(WaitFor([&] { return c.RolledOut(1) && Serves(port, "global-value"); }))
      << Fetch(port) << c.Status().dump() << c.Logs();
  const auto pods = c.ReadyPods();

  // History: the source file byte for byte, the object sealed again; never the value.
  const std::string history = c.dir() / "state/history.git";
  auto show = [&](const std::string& what) {
    return git::testing::Sh("git --git-dir=" + history + " show " + what).output;
  };
  const std::string sealed = show("HEAD:objects/Secret/default/global-age-secret.yaml");
  EXPECT_NE(sealed.find("ENC[AES256_GCM,data:"), std::string::npos) << sealed;
  EXPECT_NE(sealed.find("age1henwn645drkd3fa34t27t2w2x0nsgw3w4h62gmg5x5xflyjpy38s5cncph"),
            std::string::npos);
  EXPECT_EQ(show("HEAD:source/secret.enc.yaml"), secret);
  const std::string all =
      git::testing::Sh("git --git-dir=" + history + " log -p --all").output + sealed;
  const std::string readable = EverythingReadable(c) + all;
  EXPECT_EQ(readable.find("global-value"), std::string::npos);
  EXPECT_EQ(readable.find(model::Base64Encode("global-value")), std::string::npos);

  // A restarted reconciler opens its sealed history: the same revision, nothing rolls.
  c.StopServe();
  ASSERT_TRUE(c.StartServe({"--age-identity-file", identity}));
  ASSERT_TRUE(WaitFor([&] { return c.RolledOut(1); })) << c.Logs();
  std::this_thread::sleep_for(std::chrono::seconds(2));
  EXPECT_EQ(c.ReadyPods(), pods);

  // Someone without the key renames the Secret: refused at the file, the last state runs on.
  std::string tampered = secret;
  tampered.replace(tampered.find("name: global-age-secret"), 23, "name: global-age-secreX");
  c.Commit({{"secret.enc.yaml", tampered}}, "renamed without the key");
  ASSERT_TRUE(WaitFor([&] { return !c.Status()["errors"].empty(); })) << c.Status().dump();
  const Json error = c.Status()["errors"][0];
  EXPECT_EQ(error["file"], "secret.enc.yaml");
  EXPECT_EQ(error["line"], 21);  // sops.mac
  EXPECT_EQ(error["field"], "sops.mac");
  EXPECT_EQ(error["message"].get<std::string>().rfind("SOPS: MAC mismatch", 0), 0u) << error;
  EXPECT_TRUE(Serves(port, "global-value"));
  EXPECT_EQ(c.ReadyPods(), pods);

  // Restarted without the identity (lost, or rotated): it starts all the same, says what it
  // cannot open (history's sealed Secret, and git's file), and the pod runs on.
  c.StopServe();
  ASSERT_TRUE(c.StartServe({})) << c.Logs();
  ASSERT_TRUE(WaitFor([&] { return !c.Status()["errors"].empty(); })) << c.Status().dump();
  EXPECT_NE(c.Status()["errors"][0]["message"].get<std::string>().find("--age-identity-file"),
            std::string::npos)
      << c.Status().dump();
  EXPECT_NE(ReadFile(c.serve_log()).find("history_sops"), std::string::npos);
  EXPECT_TRUE(Serves(port, "global-value"));
}

}  // namespace
}  // namespace ballast::reconciler::testing
