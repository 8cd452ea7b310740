// What ships, run for real: the image scripts/build-image.sh built from the Dockerfile (the
// packaging_build_image fixture) and the package `cpack -G DEB` built (packaging_build_deb).
//   - `podman run IMAGE version` names this source's version and commit;
//   - `podman run IMAGE serve` against a git daemon on the host's loopback (host network) syncs
//     the example repository, answers /api/v1/status, passes its own HEALTHCHECK, and runs as
//     the image's non-root user;
//   - the .deb installs with apt in a fresh debian:bookworm-slim (its Depends: resolve there),
//     `ballast version` runs, the units, defaults, completion and man page are where they belong,
//     and `dpkg --purge` leaves none of it behind.

#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <thread>

#include "net/client.h"
#include "tests/support/git_servers.h"
#include "tests/support/ports.h"

namespace ballast::packaging {
namespace {

namespace fs = std::filesystem;
using git::testing::Quote;
using git::testing::Sh;
using Json = net::Json;

const std::string kImage = std::string("ballast:") + BALLAST_PROJECT_VERSION;
const std::string kBase = "debian:bookworm-slim";
// What podman needs on these machines (scripts/build-image.sh says why); no health check timers
// (podman starts them through systemd, absent here: `podman healthcheck run` runs it instead).
const std::string kRun =
    "podman run --runtime runc --ulimit nofile=1024:1024 "
    "--ulimit nproc=4096:4096 --health-interval disable ";

// Why podman cannot run containers here, or "" when it can.
std::string PodmanUnavailable() {
  auto info = Sh("command -v podman >/dev/null && podman info >/dev/null");
  if (info.exit_code != 0) return "podman is missing or does not work: " + info.output;
  auto run = Sh(kRun + "--rm --network none " + kBase + " true");
  if (run.exit_code != 0) return "podman cannot run a container here: " + run.output;
  return "";
}

std::string Slurp(const fs::path& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

class Packaging : public ::testing::Test {
 protected:
  void SetUp() override {
    if (auto why = PodmanUnavailable(); !why.empty()) GTEST_SKIP() << why;
  }
};

TEST_F(Packaging, ImageVersionNamesThisSourcesVersionAndCommit) {
  auto v = Sh(kRun + "--rm " + kImage + " version -o json 2>/dev/null");
  ASSERT_EQ(v.exit_code, 0) << v.output;
  const Json j = Json::parse(v.output, nullptr, false);
  ASSERT_TRUE(j.is_object()) << v.output;
  EXPECT_EQ(j["version"], BALLAST_PROJECT_VERSION);
  EXPECT_EQ(j["buildType"], "Release");
  auto head = Sh("git -C " BALLAST_SOURCE_DIR " rev-parse HEAD");
  if (head.exit_code == 0) {
    EXPECT_EQ(j["commit"].get<std::string>().substr(0, 40), head.output.substr(0, 40));
  }
  // The labels say the same.
  auto labels =
      Sh("podman image inspect --format '{{json .Config.Labels}}' " + kImage + " 2>/dev/null");
  ASSERT_EQ(labels.exit_code, 0) << labels.output;
  const Json l = Json::parse(labels.output, nullptr, false);
  EXPECT_EQ(l["org.opencontainers.image.version"], BALLAST_PROJECT_VERSION) << labels.output;
  EXPECT_EQ(l["org.opencontainers.image.revision"], j["commit"]) << labels.output;
}

TEST_F(Packaging, ImageServeSyncsTheExampleRepositoryFromAGitDaemonOnTheHost) {
  git::testing::RepoFarm farm;
  farm.CreateBare("manifests");
  std::map<std::string, std::optional<std::string>> files;
  for (const auto& entry : fs::directory_iterator(BALLAST_SOURCE_DIR "/examples/repo")) {
    files[entry.path().filename().string()] = Slurp(entry.path());
  }
  const std::string commit = farm.Commit("manifests", files, "the example repository");
  git::testing::GitDaemon daemon;
  ASSERT_TRUE(daemon.Start(farm.root(), false));

  const int port = ballast::testing::PickFreePort();
  const std::string name = "ballast-image-test-" + std::to_string(port);
  const std::string url = "http://127.0.0.1:" + std::to_string(port);
  // BALLAST_SERVER tells the HEALTHCHECK (and the client commands) where serve listens.
  auto run = Sh(kRun + "-d --name " + name + " --network host -e BALLAST_SERVER=" + url + " " +
                kImage + " serve --repo " + daemon.Url("manifests") + " --listen 127.0.0.1:" +
                std::to_string(port) + " --state-dir /var/lib/ballast/state --poll 1");
  struct Remove {
    std::string name;
    ~Remove() { Sh("podman rm -f -t 2 " + name + " >/dev/null 2>&1 || true"); }
  } remove{name};
  ASSERT_EQ(run.exit_code, 0) << run.output;

  net::HttpClient client;
  Json status;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (std::chrono::steady_clock::now() < deadline) {
    auto resp = client.Get(url + "/api/v1/status");
    if (resp.ok() && resp->status == 200) {
      auto j = resp->JsonBody();
      if (j.ok() && (*j)["revision"] == commit) {
        status = *j;
        break;
      }
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  ASSERT_FALSE(status.is_null()) << Sh("podman logs " + name).output;
  EXPECT_NE(status["sync"], "Error") << status.dump(2);
  EXPECT_TRUE(status["errors"].empty()) << status.dump(2);

  // Its own HEALTHCHECK passes; it runs as the image's non-root user.
  auto health = Sh("podman healthcheck run " + name + " 2>/dev/null");
  EXPECT_EQ(health.exit_code, 0) << health.output;
  // ... and fails when the reconciler does not answer.
  auto stopped = Sh("podman exec " + name + " ballast healthcheck --server http://127.0.0.1:1");
  EXPECT_EQ(stopped.exit_code, 1) << stopped.output;
  EXPECT_NE(stopped.output.find("unhealthy: "), std::string::npos) << stopped.output;
  auto uid = Sh("podman exec " + name + " id -u 2>/dev/null");
  EXPECT_EQ(uid.output, "10001\n");
  // And the version it serves is the image's.
  auto version = client.Get(url + "/api/v1/version");
  ASSERT_TRUE(version.ok());
  EXPECT_EQ((*version->JsonBody())["version"], BALLAST_PROJECT_VERSION);
}

TEST_F(Packaging, DebInstallsRunsAndPurgesCleanlyInAFreshDebian) {
  const std::string deb =
      std::string(BALLAST_BINARY_DIR) + "/ballast_" BALLAST_PROJECT_VERSION "_amd64.deb";
  ASSERT_TRUE(fs::exists(deb)) << deb;
  // apt resolves the Depends: from the mirror (host network), as a user's apt would.
  const std::string script =
      "set -e; export DEBIAN_FRONTEND=noninteractive; "
      // A full Debian keeps manual pages; the slim base is told not to.
      "rm -f /etc/dpkg/dpkg.cfg.d/docker-slim; "
      "apt-get update -qq; apt-get install -y -qq /tmp/ballast.deb >/dev/null; "
      "ballast version; "
      "id ballast; stat -c '%U %a %n' /var/lib/ballast/serve /var/lib/ballast/agent; "
      "ls /lib/systemd/system/ballast-serve.service /lib/systemd/system/ballast-agent.service "
      "/etc/default/ballast-serve /etc/default/ballast-agent "
      "/usr/share/bash-completion/completions/ballast /usr/share/man/man1/ballast.1.gz; "
      "dpkg --purge ballast >/dev/null; "
      "for f in /usr/bin/ballast /lib/systemd/system/ballast-serve.service "
      "/etc/default/ballast-serve /usr/share/man/man1/ballast.1.gz; do "
      "  if [ -e $f ]; then echo LEFT $f; fi; done; echo purged";
  auto r = Sh(kRun + "--rm --network host -v " + Quote(deb) + ":/tmp/ballast.deb:ro " + kBase +
              " sh -c " + Quote(script));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("ballast " BALLAST_PROJECT_VERSION "\n"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("uid="), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("ballast 700 /var/lib/ballast/serve"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("root 700 /var/lib/ballast/agent"), std::string::npos) << r.output;
  EXPECT_EQ(r.output.find("LEFT"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("purged"), std::string::npos) << r.output;
}

}  // namespace
}  // namespace ballast::packaging
