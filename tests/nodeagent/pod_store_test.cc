// The agent's pod records (pod.json): a record written by an older agent is read as it was
// meant (so an upgraded agent adopts the pods the older one started), a record round-trips, a
// damaged one is an error naming what is wrong, and the store writes, reads and removes
// records durably.

#include "nodeagent/pod_store.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "test_util.h"

namespace ballast::nodeagent {
namespace {

using model::Json;
using testing::ReadFile;
using testing::TempDir;

// A pod.json as the agent has written it since records carry containers' readiness: a process
// pod whose first container ran and restarted once.
constexpr char kRecordedPod[] = R"({
  "cgroup": true,
  "containers": [
    {"containerId": "", "lastExitCode": 1, "lastReason": "Error", "name": "app", "pid": 4242,
     "ranBefore": true, "ready": true, "restarts": 1, "startTicks": 987654, "started": true,
     "startedWallMs": 1700000000123},
    {"containerId": "", "lastExitCode": 0, "lastReason": "", "name": "sidecar", "pid": 0,
     "ranBefore": false, "ready": false, "restarts": 0, "startTicks": 0, "started": false,
     "startedWallMs": 0}
  ],
  "createdMs": 1700000000000,
  "desired": {
    "deployment": "web", "env": {"EXTRA": "1"}, "name": "web-rev1-abcde", "namespace": "default",
    "revision": "rev1",
    "template": {"metadata": {"labels": {"app": "web"}},
                 "spec": {"containers": [{"name": "app", "command": ["/bin/app"]},
                                         {"name": "sidecar", "command": ["/bin/side"]}]}}
  },
  "hostPorts": {"http": 40001},
  "portsByNumber": {"8080": 40001},
  "runtime": "process",
  "serviceEnv": {"DB_SERVICE_HOST": "10.96.0.10"},
  "terminating": false
})";

TEST(PodRecordTest, ARecordOfAnOlderAgentIsReadAsItWasMeant) {
  auto record = DecodePodRecord(kRecordedPod);
  ASSERT_TRUE(record.ok()) << record.status().ToString();
  EXPECT_EQ(record->desired.name, "web-rev1-abcde");
  EXPECT_EQ(record->desired.env.at("EXTRA"), "1");
  EXPECT_EQ(record->runtime, "process");
  EXPECT_EQ(record->host_ports.at("http"), 40001);
  EXPECT_EQ(record->ports_by_number.at(8080), 40001);
  EXPECT_EQ(record->service_env.at("DB_SERVICE_HOST"), "10.96.0.10");
  EXPECT_EQ(record->created_wall_ms, 1700000000000);
  EXPECT_TRUE(record->cgroup);
  EXPECT_FALSE(record->terminating);
  ASSERT_EQ(record->containers.size(), 2u);
  const ContainerRecord* app = record->container("app");
  ASSERT_NE(app, nullptr);
  EXPECT_EQ(app->ref.pid, 4242);
  EXPECT_EQ(app->ref.start_ticks, 987654u);
  EXPECT_EQ(app->restarts, 1);
  EXPECT_EQ(app->last_reason, "Error");
  EXPECT_TRUE(app->ready);
  EXPECT_TRUE(app->ran_before);
  EXPECT_EQ(app->started_wall_ms, 1700000000123);

  // Written back, every field but the template (whose defaults the model fills in) is as read.
  Json written = Json::parse(EncodePodRecord(*record));
  Json original = Json::parse(kRecordedPod);
  written.erase("desired");
  original.erase("desired");
  EXPECT_EQ(written, original);
}

TEST(PodRecordTest, FieldsMissingFromOldRecordsTakeTheirOldMeaning) {
  // Records from before containers' startup state was kept: a running container had started.
  Json j = Json::parse(kRecordedPod);
  for (auto& c : j["containers"]) c.erase("started");
  j.erase("cgroup");
  j.erase("portsByNumber");
  auto record = DecodePodRecord(j.dump());
  ASSERT_TRUE(record.ok()) << record.status().ToString();
  EXPECT_TRUE(record->container("app")->started);
  EXPECT_FALSE(record->cgroup);
  EXPECT_TRUE(record->ports_by_number.empty());
}

TEST(PodRecordTest, AStateRoundTripsThroughItsRecord) {
  FakeClock clock;
  PodLifecycle lifecycle(clock, {});
  auto desired = *DecodePodRecord(kRecordedPod);
  PodState pod = lifecycle.NewPod(desired.desired, "process");
  ApplyRecord(desired, pod);
  pod.containers[0].ref = desired.container("app")->ref;
  PodRecord record = RecordOf(pod);
  EXPECT_EQ(record, desired);
  auto again = DecodePodRecord(EncodePodRecord(record));
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_EQ(*again, record);
}

TEST(PodRecordTest, ADamagedRecordIsAnErrorNotACrash) {
  EXPECT_EQ(DecodePodRecord("{\"truncat").status().message(), "missing or not JSON");
  EXPECT_EQ(DecodePodRecord("").status().message(), "missing or not JSON");
  auto no_template = DecodePodRecord(R"({"desired": {"name": "web"}})");
  EXPECT_NE(no_template.status().message().find("template is required"), std::string::npos)
      << no_template.status().ToString();
  for (const char* field : {R"("portsByNumber": {"http": 1})", R"("hostPorts": [1, 2])",
                            R"("createdMs": "yesterday")"}) {
    Json j = Json::parse(kRecordedPod);
    Json bad = Json::parse(std::string("{") + field + "}");
    j.update(bad);
    auto record = DecodePodRecord(j.dump());
    EXPECT_FALSE(record.ok()) << field;
    EXPECT_EQ(record.status().code(), StatusCode::kInvalidArgument) << field;
  }
  Json j = Json::parse(kRecordedPod);
  j["containers"][0]["pid"] = "4242";
  EXPECT_FALSE(DecodePodRecord(j.dump()).ok());
}

TEST(PodStoreTest, SavesLoadsAndRemovesRecords) {
  TempDir dir;
  const std::string records = dir.path() + "/state/pods";
  std::filesystem::create_directories(records + "/default_lost");
  PodStore store(records);

  FakeClock clock;
  PodLifecycle lifecycle(clock, {});
  auto recorded = *DecodePodRecord(kRecordedPod);
  PodState pod = lifecycle.NewPod(recorded.desired, "process");
  ApplyRecord(recorded, pod);
  ASSERT_TRUE(store.Save(pod).ok());
  const std::string path = records + "/default_web-rev1-abcde/pod.json";
  EXPECT_EQ(store.RecordPath(pod.id), path);
  EXPECT_EQ(Json::parse(ReadFile(path))["portsByNumber"]["8080"], 40001);
  // It holds the pod's environment: the agent's user alone may read it.
  EXPECT_EQ(std::filesystem::status(path).permissions(), std::filesystem::perms(0600));
  EXPECT_EQ(std::filesystem::status(records + "/default_web-rev1-abcde").permissions(),
            std::filesystem::perms(0700));

  auto loaded = store.LoadAll();
  ASSERT_EQ(loaded.size(), 2u);
  for (const auto& entry : loaded) {
    if (entry.path == path) {
      ASSERT_TRUE(entry.record.ok()) << entry.record.status().ToString();
      EXPECT_EQ(*entry.record, RecordOf(pod));
    } else {
      EXPECT_EQ(entry.path, records + "/default_lost/pod.json");
      EXPECT_EQ(entry.record.status().message(), "missing or not JSON");
    }
  }

  ASSERT_TRUE(store.Remove(pod.id).ok());
  EXPECT_FALSE(std::filesystem::exists(records + "/default_web-rev1-abcde"));
  EXPECT_EQ(store.LoadAll().size(), 1u);
}

TEST(PodStoreTest, AFailedWriteIsAnErrorNamingTheRecord) {
  TempDir dir;
  FakeClock clock;
  PodLifecycle lifecycle(clock, {});
  PodState pod = lifecycle.NewPod(DecodePodRecord(kRecordedPod)->desired, "process");
  const std::string records = dir.path() + "/state/pods";
  std::filesystem::create_directories(records);
  std::ofstream(records + "/" + pod.id) << "a file where the record's directory goes";
  Status s = PodStore(records).Save(pod);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find(records + "/" + pod.id + " is not a directory"), std::string::npos)
      << s.ToString();
}

// The agent runs what a record says: one that someone else could have written is not loaded.
TEST(PodStoreTest, ARecordOthersCouldHaveWrittenIsNotTrusted) {
  TempDir dir;
  const std::string records = dir.path() + "/state/pods";
  PodStore store(records);
  FakeClock clock;
  PodLifecycle lifecycle(clock, {});
  PodState pod = lifecycle.NewPod(DecodePodRecord(kRecordedPod)->desired, "process");
  ASSERT_TRUE(store.Save(pod).ok());
  const std::string path = store.RecordPath(pod.id);
  auto only = [&] {
    auto all = store.LoadAll();
    EXPECT_EQ(all.size(), 1u);
    return all.empty() ? Status::Ok() : all[0].record.status();
  };
  ASSERT_TRUE(only().ok());

  std::filesystem::permissions(path, std::filesystem::perms(0666));
  Status writable = only();
  EXPECT_EQ(writable.code(), StatusCode::kPermissionDenied);
  EXPECT_NE(writable.message().find("writable by its group or by others"), std::string::npos)
      << writable.message();

  std::filesystem::permissions(path, std::filesystem::perms(0600));
  if (::geteuid() == 0) {
    ASSERT_EQ(::chown(path.c_str(), 65534, 65534), 0);
    Status owned = only();
    EXPECT_EQ(owned.code(), StatusCode::kPermissionDenied);
    EXPECT_NE(owned.message().find("owned by another user (uid 65534"), std::string::npos)
        << owned.message();
  }

  std::filesystem::remove(path);
  std::ofstream(dir.path() + "/elsewhere.json") << EncodePodRecord(RecordOf(pod));
  std::filesystem::create_symlink(dir.path() + "/elsewhere.json", path);
  Status symlink = only();
  EXPECT_FALSE(symlink.ok());
  EXPECT_NE(symlink.message().find("is a symlink"), std::string::npos) << symlink.message();
}

// A pod name may be 253 characters: with its namespace and a suffix its directory name would pass
// NAME_MAX (255). Long names get a bounded one, distinct for distinct pods.
TEST(PodStoreTest, LongPodNamesGetBoundedDirectoryNames) {
  EXPECT_EQ(PodDirName("default_web-rev1-abcde"), "default_web-rev1-abcde");
  const std::string base = std::string(63, 'n') + "_" + std::string(240, 'p');
  const std::string a = PodDirName(base + "-rev1-aaaaa");
  const std::string b = PodDirName(base + "-rev1-bbbbb");
  EXPECT_LE(a.size(), 200u);
  EXPECT_NE(a, b);
  EXPECT_EQ(a, PodDirName(base + "-rev1-aaaaa"));  // the same on every call and every build
  EXPECT_EQ(PodDirName("ns_../../etc").find('/'), std::string::npos);
  EXPECT_NE(PodDirName("a_b/c"), PodDirName("a_b_c"));

  TempDir dir;
  PodStore store(dir.path() + "/state/pods");
  FakeClock clock;
  PodLifecycle lifecycle(clock, {});
  agentapi::DesiredPod desired = DecodePodRecord(kRecordedPod)->desired;
  desired.namespace_ = std::string(63, 'n');
  desired.name = std::string(240, 'p') + "-rev1-aaaaa";  // 251 characters
  PodState pod = lifecycle.NewPod(desired, "process");
  ASSERT_TRUE(store.Save(pod).ok());
  auto loaded = store.LoadAll();
  ASSERT_EQ(loaded.size(), 1u);
  ASSERT_TRUE(loaded[0].record.ok()) << loaded[0].record.status().ToString();
  EXPECT_EQ(loaded[0].record->desired.name, desired.name);
  ASSERT_TRUE(store.Remove(pod.id).ok());
  EXPECT_TRUE(store.LoadAll().empty());
}

}  // namespace
}  // namespace ballast::nodeagent
