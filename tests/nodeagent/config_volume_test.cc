// configMap and secret volumes on the node: what a volume holds (kubelet's projection and
// messages), how it is written (kubelet's atomic writer: ..data swapped in one rename, updates in
// place, nothing left behind), and how a process pod sees it (a link below its work directory
// that a hostile pod cannot turn into a write elsewhere).

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "nodeagent/config_volumes.h"
#include "nodeagent/container_launch.h"
#include "nodeagent/volume_files.h"
#include "tests/nodeagent/test_util.h"

namespace ballast::nodeagent {
namespace {

namespace fs = std::filesystem;
using model::Json;

agentapi::PodConfigSource Source(const std::string& kind, const std::string& name,
                                 std::map<std::string, std::string> data,
                                 std::map<std::string, std::string> binary = {}) {
  return {kind, name, std::move(data), std::move(binary)};
}

model::ConfigVolume Volume(const std::string& kind, const std::string& object,
                           std::vector<model::KeyToPath> items = {}, bool optional = false) {
  model::ConfigVolume v;
  v.name = "config";
  v.kind = kind;
  v.object = object;
  v.items = std::move(items);
  v.optional = optional;
  return v;
}

std::vector<std::string> Paths(const std::vector<VolumeFile>& files) {
  std::vector<std::string> out;
  for (const auto& f : files) out.push_back(f.path);
  return out;
}

TEST(ProjectVolume, EveryKeyOfDataAndBinaryDataIsAFile) {
  const auto source = Source("ConfigMap", "app", {{"a.conf", "A"}}, {{"logo.png", "\x89PNG"}});
  auto files = ProjectVolume(Volume("ConfigMap", "app"), &source);
  ASSERT_TRUE(files.ok()) << files.status().ToString();
  EXPECT_EQ(Paths(*files), (std::vector<std::string>{"a.conf", "logo.png"}));
  EXPECT_EQ((*files)[1].data, "\x89PNG");
  EXPECT_EQ((*files)[0].mode, 0644);
}

TEST(ProjectVolume, ItemsChooseKeysPathsAndModes) {
  const auto source = Source("Secret", "db", {{"user", "u"}, {"password", "p"}});
  auto files = ProjectVolume(
      Volume("Secret", "db", {{"password", "db/./pw", 0400}, {"user", "user.txt", std::nullopt}}),
      &source);
  ASSERT_TRUE(files.ok()) << files.status().ToString();
  ASSERT_EQ(Paths(*files), (std::vector<std::string>{"db/pw", "user.txt"}));
  EXPECT_EQ((*files)[0].data, "p");
  EXPECT_EQ((*files)[0].mode, 0400);
  EXPECT_EQ((*files)[1].mode, 0644) << "the defaultMode";
}

TEST(ProjectVolume, WhatIsMissingIsKubeletsErrorUnlessOptional) {
  EXPECT_EQ(ProjectVolume(Volume("ConfigMap", "app"), nullptr).status().message(),
            "configmap \"app\" not found");
  EXPECT_EQ(ProjectVolume(Volume("Secret", "db"), nullptr).status().message(),
            "secret \"db\" not found");
  auto none = ProjectVolume(Volume("Secret", "db", {}, /*optional=*/true), nullptr);
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->empty());

  const auto cm = Source("ConfigMap", "app", {{"a", "1"}});
  EXPECT_EQ(
      ProjectVolume(Volume("ConfigMap", "app", {{"b", "b", std::nullopt}}), &cm).status().message(),
      "configmap references non-existent config key: b");
  const auto secret = Source("Secret", "db", {{"a", "1"}});
  EXPECT_EQ(
      ProjectVolume(Volume("Secret", "db", {{"b", "b", std::nullopt}}), &secret).status().message(),
      "references non-existent secret key: b");
  auto optional =
      ProjectVolume(Volume("ConfigMap", "app", {{"b", "b", std::nullopt}, {"a", "a", std::nullopt}},
                           /*optional=*/true),
                    &cm);
  ASSERT_TRUE(optional.ok());
  EXPECT_EQ(Paths(*optional), std::vector<std::string>{"a"});
}

TEST(ProjectVolume, AFileCannotAlsoBeADirectory) {
  const auto cm = Source("ConfigMap", "app", {{"a", "1"}, {"b", "2"}});
  auto files = ProjectVolume(
      Volume("ConfigMap", "app", {{"a", "x", std::nullopt}, {"b", "x/y", std::nullopt}}), &cm);
  EXPECT_FALSE(files.ok());
  auto twice = ProjectVolume(
      Volume("ConfigMap", "app", {{"a", "x", std::nullopt}, {"b", "./x", std::nullopt}}), &cm);
  EXPECT_FALSE(twice.ok());
  // kubelet's own names are not a key's: "./..data" would replace the link every file goes
  // through.
  EXPECT_FALSE(
      ProjectVolume(Volume("ConfigMap", "app", {{"a", "./..data", std::nullopt}}), &cm).ok());
}

// A pod's volumes directory (the agent's), as PodFiles makes it.
class VolumeFilesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = fs::temp_directory_path() /
            ("ballast-volume-test-" + std::to_string(::getpid()) + "-" +
             ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(root_);
    fs::create_directories(root_ / "volumes");
    fs::create_directories(root_ / "work");
    auto dir = localfs::OpenDir(root_ / "volumes");
    ASSERT_TRUE(dir.ok());
    volumes_ = std::move(*dir);
    auto work = localfs::OpenDir(root_ / "work");
    ASSERT_TRUE(work.ok());
    work_ = std::move(*work);
  }
  void TearDown() override { fs::remove_all(root_); }

  static std::string Read(const fs::path& p) {
    std::ifstream in(p);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
  }
  // The names in volumes/config.
  std::set<std::string> Names() const {
    std::set<std::string> out;
    for (const auto& e : fs::directory_iterator(root_ / "volumes/config")) {
      out.insert(e.path().filename().string());
    }
    return out;
  }

  fs::path root_;
  localfs::Dir volumes_;
  localfs::Dir work_;
};

TEST_F(VolumeFilesTest, FilesAreReachedThroughTheDataLinkWithTheirModes) {
  VolumeAccess access;
  access.group = ::getegid();
  ASSERT_TRUE(WriteVolume(volumes_, "config",
                          {{"app.conf", "port=1\n", 0644}, {"db/password", "secret", 0400}}, access)
                  .ok());
  const fs::path v = root_ / "volumes/config";
  EXPECT_EQ(Read(v / "app.conf"), "port=1\n");
  EXPECT_EQ(Read(v / "db/password"), "secret");
  EXPECT_TRUE(fs::is_symlink(v / "..data"));
  EXPECT_EQ(fs::read_symlink(v / "app.conf"), "..data/app.conf");
  EXPECT_EQ(fs::read_symlink(v / "db"), "..data/db");
  struct stat st {};
  ASSERT_EQ(::stat((v / "db/password").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0400u);
  ASSERT_EQ(::stat(v.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0750u);
  EXPECT_EQ(st.st_gid, ::getegid());
}

TEST_F(VolumeFilesTest, AnFsGroupReadsEveryFile) {
  VolumeAccess access;
  access.group = ::getegid();
  access.group_reads = true;
  ASSERT_TRUE(WriteVolume(volumes_, "config", {{"key", "secret", 0400}}, access).ok());
  struct stat st {};
  ASSERT_EQ(::stat((root_ / "volumes/config/key").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0440u);
}

TEST_F(VolumeFilesTest, AnUpdateSwapsTheDataAndLeavesNothingOfTheOldBehind) {
  VolumeAccess access;
  ASSERT_TRUE(
      WriteVolume(volumes_, "config", {{"a", "1", 0644}, {"gone", "x", 0644}}, access).ok());
  const fs::path v = root_ / "volumes/config";
  const fs::path first = fs::read_symlink(v / "..data");
  // A reader holding the old file open keeps reading the old contents.
  std::ifstream held(v / "a");
  ASSERT_TRUE(WriteVolume(volumes_, "config", {{"a", "2", 0644}, {"new", "y", 0644}}, access).ok());
  EXPECT_EQ(Read(v / "a"), "2");
  EXPECT_EQ(Read(v / "new"), "y");
  EXPECT_FALSE(fs::exists(fs::symlink_status(v / "gone"))) << "a key that went away";
  EXPECT_NE(fs::read_symlink(v / "..data"), first);
  EXPECT_EQ(Names(),
            (std::set<std::string>{"..data", fs::read_symlink(v / "..data").string(), "a", "new"}))
      << "the old data directory and link are gone";
  std::string old;
  held >> old;
  EXPECT_EQ(old, "1");
}

// A removal that failed after a swap (old contents left beside the new) is done by the next
// write, even one that has nothing new to write.
TEST_F(VolumeFilesTest, WhatAFailedCleanupLeftIsRemovedByTheNextWrite) {
  VolumeAccess access;
  ASSERT_TRUE(WriteVolume(volumes_, "config", {{"a", "1", 0644}}, access).ok());
  const fs::path v = root_ / "volumes/config";
  fs::create_directory(v / "..2026_old");
  fs::create_directory_symlink("..data/gone", v / "gone");
  ASSERT_TRUE(WriteVolume(volumes_, "config", {{"a", "1", 0644}}, access).ok());
  EXPECT_EQ(Names(),
            (std::set<std::string>{"..data", fs::read_symlink(v / "..data").string(), "a"}));
}

TEST_F(VolumeFilesTest, WritingTheSameContentsAgainChangesNothing) {
  VolumeAccess access;
  ASSERT_TRUE(WriteVolume(volumes_, "config", {{"a", "1", 0644}}, access).ok());
  const fs::path v = root_ / "volumes/config";
  struct stat before {};
  ASSERT_EQ(::stat((v / "a").c_str(), &before), 0);
  ASSERT_TRUE(WriteVolume(volumes_, "config", {{"a", "1", 0644}}, access).ok());
  struct stat after {};
  ASSERT_EQ(::stat((v / "a").c_str(), &after), 0);
  EXPECT_EQ(before.st_ino, after.st_ino);
  // A mode is part of the contents: changing it writes again.
  ASSERT_TRUE(WriteVolume(volumes_, "config", {{"a", "1", 0600}}, access).ok());
  ASSERT_EQ(::stat((v / "a").c_str(), &after), 0);
  EXPECT_EQ(after.st_mode & 07777, 0600u);
}

TEST_F(VolumeFilesTest, AnInterruptedWriteIsRedone) {
  VolumeAccess access;
  ASSERT_TRUE(WriteVolume(volumes_, "config", {{"a", "1", 0644}}, access).ok());
  const fs::path v = root_ / "volumes/config";
  const fs::path data = fs::read_symlink(v / "..data");
  // As if the agent died after the swap with a file half written (no fsync before a crash).
  fs::remove(v / "..data");
  std::ofstream(v / data / "a", std::ios::trunc) << "";
  ASSERT_TRUE(WriteVolume(volumes_, "config", {{"a", "1", 0644}}, access).ok());
  EXPECT_EQ(Read(v / "a"), "1");
}

TEST_F(VolumeFilesTest, AMountIsALinkBelowTheWorkDirectory) {
  ASSERT_TRUE(
      LinkMount(work_, "/etc/config", "/somewhere/volumes/config", std::nullopt, std::nullopt)
          .ok());
  EXPECT_EQ(fs::read_symlink(root_ / "work/etc/config"), "/somewhere/volumes/config");
  // Linked again elsewhere (the pod's volume moved): the link is replaced.
  ASSERT_TRUE(
      LinkMount(work_, "etc/config", "/elsewhere/volumes/config", std::nullopt, std::nullopt).ok());
  EXPECT_EQ(fs::read_symlink(root_ / "work/etc/config"), "/elsewhere/volumes/config");
  // "/" names the work directory itself.
  EXPECT_FALSE(LinkMount(work_, "/", "/x", std::nullopt, std::nullopt).ok());
}

TEST_F(VolumeFilesTest, WhatThePodKeepsAtTheMountPathIsNotReplaced) {
  fs::create_directories(root_ / "work/etc/config");
  std::ofstream(root_ / "work/etc/config/mine") << "pod's own";
  auto s = LinkMount(work_, "/etc/config", "/v", std::nullopt, std::nullopt);
  EXPECT_EQ(s.code(), StatusCode::kFailedPrecondition) << s.ToString();
  EXPECT_NE(s.message().find("not replaced"), std::string::npos) << s.ToString();
  EXPECT_EQ(Read(root_ / "work/etc/config/mine"), "pod's own");
  // An empty directory gives way.
  fs::create_directories(root_ / "work/run/creds");
  EXPECT_TRUE(LinkMount(work_, "/run/creds", "/v", std::nullopt, std::nullopt).ok());
}

// A pod (which owns its work directory) plants a symlink where the mount path's directories go:
// the agent, root, must not make directories or links through it.
TEST_F(VolumeFilesTest, ASymlinkOnTheWayIsNotFollowed) {
  const fs::path outside = root_ / "outside";
  fs::create_directories(outside);
  fs::create_symlink(outside, root_ / "work/etc");
  auto s = LinkMount(work_, "/etc/config", "/v", std::nullopt, std::nullopt);
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find("symlink"), std::string::npos) << s.ToString();
  EXPECT_TRUE(fs::is_empty(outside)) << "nothing was made outside the work directory";
}

// The container's view: the docker runtime bind-mounts each configMap/secret volume (read-only,
// as kubelet does) and leaves other volumes out; what is missing holds the container.
TEST(ConfigVolumeMounts, BindsAndWaits) {
  model::Container c;
  c.name = "app";
  c.image = "nginx";
  c.extra["volumeMounts"] = Json::parse(R"([
    {"name": "config", "mountPath": "/etc/nginx/conf.d"},
    {"name": "creds", "mountPath": "/run/pw", "subPath": "db/password"},
    {"name": "scratch", "mountPath": "/tmp"}])");
  PodState pod;
  pod.id = "shop_web-1";
  pod.runtime = "docker";
  pod.dir = "/w/pods/shop_web-1";
  pod.desired.name = "web-1";
  pod.desired.namespace_ = "shop";
  pod.desired.template_.spec.containers = {c};
  pod.desired.template_.spec.extra["volumes"] = Json::parse(R"([
    {"name": "config", "configMap": {"name": "nginx"}},
    {"name": "creds", "secret": {"secretName": "db",
                                 "items": [{"key": "password", "path": "db/password"}]}},
    {"name": "scratch", "emptyDir": {}}])");
  ContainerState cs;
  cs.spec = c;
  pod.containers = {cs};
  LaunchNode node;
  node.pods_root = "/w/pods";

  EXPECT_EQ(ContainerConfigError(pod, pod.containers[0], node),
            "MountVolume.SetUp failed for volume \"config\" : configmap \"nginx\" not found");
  pod.desired.config = {Source("ConfigMap", "nginx", {{"default.conf", "server {}"}}),
                        Source("Secret", "db", {{"user", "u"}})};
  EXPECT_EQ(ContainerConfigError(pod, pod.containers[0], node),
            "MountVolume.SetUp failed for volume \"creds\" : references non-existent secret "
            "key: password");
  pod.desired.config[1] = Source("Secret", "db", {{"password", "p"}});
  EXPECT_EQ(ContainerConfigError(pod, pod.containers[0], node), "");

  const auto binds = BuildLaunch(pod, pod.containers[0], node).binds;
  ASSERT_EQ(binds.size(), 2u) << "the emptyDir is not mounted";
  EXPECT_EQ(binds[0].source, "/w/pods/shop_web-1/volumes/config");
  EXPECT_EQ(binds[0].target, "/etc/nginx/conf.d");
  EXPECT_TRUE(binds[0].read_only);
  EXPECT_EQ(binds[1].source, "/w/pods/shop_web-1/volumes/creds/db/password");
  EXPECT_EQ(binds[1].target, "/run/pw");
}

}  // namespace
}  // namespace ballast::nodeagent
