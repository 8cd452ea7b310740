// `ballast validate` as a user runs it: the real binary on real files.

#include <gtest/gtest.h>
#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace {

namespace fs = std::filesystem;

struct RunResult {
  int exit_code;
  std::string out;
};

// `prefix` runs the binary (e.g. under prlimit).
RunResult Ballast(const std::string& args, const std::string& prefix = "") {
  std::string cmd = prefix + std::string(BALLAST_BINARY) + " " + args + " 2>&1";
  FILE* p = popen(cmd.c_str(), "r");
  std::string out;
  std::array<char, 4096> buf;
  size_t n;
  while ((n = fread(buf.data(), 1, buf.size(), p)) > 0) out.append(buf.data(), n);
  int status = pclose(p);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, out};
}

const std::string kShared = std::string(BALLAST_SOURCE_DIR) + "/../shared/testdata";

TEST(ValidateCliTest, SockShopIsValid) {
  if (!fs::exists(kShared)) GTEST_SKIP() << "no ../shared/testdata beside the checkout";
  RunResult r = Ballast("validate " + kShared + "/sock-shop");
  EXPECT_EQ(r.exit_code, 0) << r.out;
  // Its kustomization.yaml at the root is rendered (the resources it lists), not listed.
  EXPECT_NE(r.out.find("ok: 14 deployments, 14 services, 1 unsupported (Ingress), 0 errors"),
            std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find("/sock-shop/base/front-end-ingress.yaml:2:1: unsupported: Ingress"),
            std::string::npos)
      << r.out;
  EXPECT_EQ(r.out.find("Kustomization"), std::string::npos) << r.out;
  RunResult g = Ballast("validate " + kShared + "/guestbook");
  EXPECT_EQ(g.exit_code, 0) << g.out;
  EXPECT_NE(g.out.find("ok: 1 deployment, 1 service"), std::string::npos) << g.out;
}

TEST(ValidateCliTest, OneBrokenFieldGivesItsPosition) {
  if (!fs::exists(kShared)) GTEST_SKIP() << "no ../shared/testdata beside the checkout";
  fs::path dir = fs::temp_directory_path() / ("ballast-validate-" + std::to_string(getpid()));
  fs::remove_all(dir);
  fs::copy(kShared + "/sock-shop", dir, fs::copy_options::recursive);
  // carts-dep.yaml line 30: "            cpu: 300m" under limits.
  fs::path f = dir / "base" / "carts-dep.yaml";
  std::ifstream in(f);
  std::stringstream ss;
  ss << in.rdbuf();
  std::string text = ss.str();
  size_t at = text.find("cpu: 300m");
  ASSERT_NE(at, std::string::npos);
  text.replace(at, 9, "cpu: 300q");
  std::ofstream(f) << text;
  size_t line = 1 + std::count(text.begin(), text.begin() + at, '\n');
  size_t column = at - text.rfind('\n', at) + 5;  // the value, after "cpu: "

  RunResult r = Ballast("validate " + dir.string());
  EXPECT_EQ(r.exit_code, 1) << r.out;
  std::string want = f.string() + ":" + std::to_string(line) + ":" + std::to_string(column) +
                     ": error: Invalid value: \"300q\"";
  EXPECT_NE(r.out.find(want), std::string::npos) << "want " << want << "\n" << r.out;
  EXPECT_NE(r.out.find("(spec.template.spec.containers[0].resources.limits.cpu)"),
            std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find("invalid: 13 deployments, 14 services"), std::string::npos) << r.out;

  RunResult j = Ballast("validate -o json " + dir.string());
  EXPECT_EQ(j.exit_code, 1);
  EXPECT_NE(j.out.find("\"line\": " + std::to_string(line)), std::string::npos) << j.out;
  fs::remove_all(dir);
}

TEST(ValidateCliTest, MalformedNodeAffinityGivesItsPosition) {
  fs::path dir = fs::temp_directory_path() / ("ballast-affinity-" + std::to_string(getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  fs::path f = dir / "web.yaml";
  std::ofstream(f) << R"(apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      affinity:
        nodeAffinity:
          requiredDuringSchedulingIgnoredDuringExecution:
            nodeSelectorTerms:
            - matchExpressions:
              - {key: cores, operator: Gt, values: ["8", "16"]}
      containers:
      - {name: web, image: "nginx:1.25"}
)";
  RunResult r = Ballast("validate " + dir.string());
  EXPECT_EQ(r.exit_code, 1) << r.out;
  std::string want = f.string() +
                     ":17:52: error: Required value: must be specified single value when "
                     "`operator` is 'Lt' or 'Gt' (spec.template.spec.affinity.nodeAffinity."
                     "requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[0]."
                     "matchExpressions[0].values)";
  EXPECT_NE(r.out.find(want), std::string::npos) << "want " << want << "\n" << r.out;
  fs::remove_all(dir);
}

TEST(ValidateCliTest, UsageErrorsExitTwo) {
  EXPECT_EQ(Ballast("validate").exit_code, 2);
  EXPECT_EQ(Ballast("validate --bogus x").exit_code, 2);
  EXPECT_EQ(Ballast("validate /nonexistent/path").exit_code, 2);
  EXPECT_EQ(Ballast("no-such-command").exit_code, 2);
  RunResult help = Ballast("validate --help");
  EXPECT_EQ(help.exit_code, 0);
  EXPECT_NE(help.out.find("Usage: ballast validate"), std::string::npos);
  RunResult top = Ballast("--help");
  EXPECT_EQ(top.exit_code, 0);
  EXPECT_NE(top.out.find("validate"), std::string::npos);
  RunResult v = Ballast("version");
  EXPECT_EQ(v.exit_code, 0);
  EXPECT_NE(v.out.find("ballast "), std::string::npos);
}

TEST(ValidateCliTest, VerboseListsIgnoredFields) {
  if (!fs::exists(kShared)) GTEST_SKIP() << "no ../shared/testdata beside the checkout";
  RunResult r = Ballast("validate --verbose " + kShared + "/sock-shop/base/carts-dep.yaml");
  EXPECT_EQ(r.exit_code, 0) << r.out;
  // Its emptyDir is kept and not mounted (configMap and secret volumes are).
  EXPECT_NE(r.out.find("ignored: spec.template.spec.volumes[0].emptyDir"), std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find("the container starts without it"), std::string::npos) << r.out;
  // Its securityContext (runAsNonRoot, runAsUser, capabilities, readOnlyRootFilesystem) is
  // applied, not ignored.
  EXPECT_EQ(r.out.find("ignored: spec.template.spec.containers[0].securityContext"),
            std::string::npos)
      << r.out;
}

// Offline validate is what manifest repositories run in their CI: a repository of 3,000 small
// files is checked within 256 MiB of data (it needed 4 MiB a file, 12 GB, and died of bad_alloc).
TEST(ValidateCliTest, ThousandsOfFilesNeedMemoryForTheirContentOnly) {
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
  GTEST_SKIP() << "a sanitizer's shadow memory counts against the data limit";
#endif
  if (!fs::exists("/usr/bin/prlimit")) GTEST_SKIP() << "no prlimit (util-linux)";
  fs::path dir = fs::temp_directory_path() / ("ballast-validate-many-" + std::to_string(getpid()));
  fs::remove_all(dir);
  for (int i = 0; i < 3000; ++i) {
    const std::string name = "app" + std::to_string(i);
    fs::create_directories(dir / std::to_string(i / 100));
    std::ofstream(dir / std::to_string(i / 100) / (name + ".yaml"))
        << "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: " << name
        << "}\nspec:\n  selector: {matchLabels: {app: " << name
        << "}}\n  template:\n    metadata: {labels: {app: " << name
        << "}}\n    spec: {containers: [{name: c, image: nginx}]}\n";
  }
  RunResult r = Ballast("validate " + dir.string(), "/usr/bin/prlimit --data=268435456 ");
  fs::remove_all(dir);
  EXPECT_EQ(r.exit_code, 0) << r.out.substr(0, 2000);
  EXPECT_NE(r.out.find("ok: 3000 deployments"), std::string::npos) << r.out.substr(0, 2000);
}

}  // namespace

namespace {

// A SOPS-encrypted Secret (a file real sops wrote, tests/sops/fixtures): validate says which
// identity opens it, opens it with --age-identity-file, and refuses an identity file others can
// read, before reading any manifest.
TEST(ValidateCliTest, ASopsFileOpensWithTheAgeIdentityFileAndOnlyWithIt) {
  const fs::path fixtures = fs::path(BALLAST_SOURCE_DIR) / "tests/sops/fixtures";
  fs::path dir = fs::temp_directory_path() / ("ballast-validate-sops-" + std::to_string(getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir / "app");
  fs::copy_file(fixtures / "global.yaml", dir / "app" / "secret.yaml");
  fs::copy_file(fixtures / "age-global.txt", dir / "id.txt");
  fs::permissions(dir / "id.txt", fs::perms::owner_read | fs::perms::owner_write);
  const std::string app = (dir / "app").string();

  RunResult closed = Ballast("validate " + app);
  EXPECT_EQ(closed.exit_code, 1) << closed.out;
  EXPECT_NE(closed.out.find("/app/secret.yaml:10:3: error: SOPS-encrypted (for "
                            "age1henwn645drkd3fa34t27t2w2x0nsgw3w4h62gmg5x5xflyjpy38s5cncph): "
                            "give an age identity that opens it (--age-identity-file) (sops)"),
            std::string::npos)
      << closed.out;

  RunResult open = Ballast("validate --age-identity-file " + (dir / "id.txt").string() + " " + app);
  EXPECT_EQ(open.exit_code, 0) << open.out;
  EXPECT_NE(open.out.find("ok: 0 deployments, 0 services, 1 secret, 0 unsupported, 0 errors"),
            std::string::npos)
      << open.out;
  EXPECT_EQ(open.out.find("global-value"), std::string::npos) << open.out;

  fs::permissions(dir / "id.txt", fs::perms::group_read, fs::perm_options::add);
  RunResult shared =
      Ballast("validate --age-identity-file " + (dir / "id.txt").string() + " " + app);
  EXPECT_EQ(shared.exit_code, 2) << shared.out;
  EXPECT_NE(shared.out.find("can be read or written by its group or others"), std::string::npos)
      << shared.out;
  fs::remove_all(dir);
}

}  // namespace
