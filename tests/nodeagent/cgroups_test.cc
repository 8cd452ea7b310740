// Resource limits through cgroups (v2 or v1) and runAsUser, with real processes. Skipped, with
// the reason printed, where the machine cannot set limits.

#include <unistd.h>

#include <fstream>
#include <sstream>

#include <gtest/gtest.h>

#include "nodeagent/cgroups.h"
#include "test_util.h"

namespace ballast::nodeagent {
namespace {

using namespace ballast::nodeagent::testing;

class CgroupsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    agent_ = "test-" + std::to_string(::getpid());
    cgroups_ = Cgroups::Detect(agent_);
    PodManagerOptions o;
    o.node_address = "127.0.0.8";
    o.work_dir = dir_.path();
    pm_ = std::make_unique<PodManager>(o, clock_, cgroups_.get());
  }
  void TearDown() override {
    pm_->StopAll();
    WaitUntil([&] { return pm_->Empty(); }, [&] { pm_->Tick(); });
    for (const char* ctrl : {"memory", "cpu", "pids", ""}) {
      std::string base = std::string("/sys/fs/cgroup/") + ctrl + (*ctrl ? "/" : "") + "ballast/";
      ::rmdir((base + agent_).c_str());
    }
  }
  std::optional<model::Pod> Pod(const std::string& name) {
    auto all = pm_->Status();
    const model::Pod* p = FindPod(all, name);
    if (p == nullptr) return std::nullopt;
    return *p;
  }

  std::string agent_;
  SystemClock clock_;
  TempDir dir_;
  std::unique_ptr<Cgroups> cgroups_;
  std::unique_ptr<PodManager> pm_;
};

TEST_F(CgroupsTest, MemoryLimitOomKillIsReported) {
  if (!cgroups_->enforced()) GTEST_SKIP() << cgroups_->description();
  model::Container c;
  c.name = "hog";
  c.command = {BALLAST_BINARY, "demo-app", "--allocate-mb", "512"};
  c.resources.limits["memory"] = *model::Quantity::Parse("64Mi");
  c.resources.limits["cpu"] = *model::Quantity::Parse("500m");
  agentapi::DesiredPod pod = MakePod("hog-rev1-aaaaa", {c});
  pm_->SetDesired({pod}, {});
  ASSERT_TRUE(WaitUntil(
      [&] {
        auto p = Pod("hog-rev1-aaaaa");
        return p && p->containers[0].last_reason == "OOMKilled";
      },
      [&] { pm_->Tick(); }))
      << cgroups_->description();
  auto p = Pod("hog-rev1-aaaaa");
  EXPECT_EQ(p->containers[0].last_exit_code, 137);
  EXPECT_EQ(p->containers[0].reason, "CrashLoopBackOff");
  if (cgroups_->mode() == Cgroups::Mode::kV1) {
    std::string pod_group = "/sys/fs/cgroup/cpu/ballast/" + agent_ + "/default_hog-rev1-aaaaa";
    EXPECT_EQ(ReadFile(pod_group + "/cpu.cfs_quota_us"), "50000\n");
  }
}

TEST_F(CgroupsTest, RunAsUserWhenRoot) {
  if (::geteuid() != 0) GTEST_SKIP() << "runAsUser needs the agent to run as root";
  agentapi::DesiredPod pod =
      MakePod("user-rev1-bbbbb", {ShellContainer("main", "id -u > uid.txt; exec sleep 600")});
  pod.template_.spec.security_context.run_as_user = 65534;
  pm_->SetDesired({pod}, {});
  std::string file = dir_.path() + "/pods/default_user-rev1-bbbbb/work/uid.txt";
  ASSERT_TRUE(WaitUntil([&] { return !ReadFile(file).empty(); }, [&] { pm_->Tick(); }));
  EXPECT_EQ(ReadFile(file), "65534\n");
}

}  // namespace
}  // namespace ballast::nodeagent
