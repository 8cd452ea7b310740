#include "nodeagent/pod_store.h"

#include <exception>
#include <filesystem>
#include <utility>

#include "localfs/durable_file.h"

namespace ballast::nodeagent {
namespace {

namespace fs = std::filesystem;
using model::Json;

constexpr char kRecordFile[] = "pod.json";
// A record holds one pod template and a few numbers; anything this large is not one.
constexpr size_t kMaxRecordBytes = 16 << 20;

Json EncodeContainer(const ContainerRecord& c) {
  return Json{{"name", c.name},
              {"pid", c.ref.pid},
              {"startTicks", c.ref.start_ticks},
              {"containerId", c.ref.id},
              {"restarts", c.restarts},
              {"lastExitCode", c.last_exit_code},
              {"lastReason", c.last_reason},
              {"started", c.started},
              {"ready", c.ready},
              {"ranBefore", c.ran_before},
              {"startedWallMs", c.started_wall_ms}};
}

// Throws nlohmann's exceptions on fields of the wrong type; DecodePodRecord catches them.
ContainerRecord DecodeContainer(const Json& s) {
  ContainerRecord c;
  c.name = s.value("name", "");
  c.ref.pid = s.value("pid", 0);
  c.ref.start_ticks = s.value("startTicks", uint64_t{0});
  c.ref.id = s.value("containerId", "");
  c.restarts = s.value("restarts", 0);
  c.last_exit_code = s.value("lastExitCode", 0);
  c.last_reason = s.value("lastReason", "");
  c.started = s.value("started", true);
  c.ready = s.value("ready", false);
  c.ran_before = s.value("ranBefore", false);
  c.started_wall_ms = s.value("startedWallMs", int64_t{0});
  return c;
}

}  // namespace

const ContainerRecord* PodRecord::container(const std::string& name) const {
  for (const auto& c : containers) {
    if (c.name == name) return &c;
  }
  return nullptr;
}

PodRecord RecordOf(const PodState& pod) {
  PodRecord r;
  r.desired = pod.desired;
  r.runtime = pod.runtime;
  r.host_ports = pod.host_ports;
  r.ports_by_number = pod.ports_by_number;
  r.service_env = pod.service_env;
  r.created_wall_ms = pod.created_wall_ms;
  r.cgroup = pod.cgroup;
  r.terminating = pod.terminating;
  for (const auto& c : pod.containers) {
    ContainerRecord rc;
    rc.name = c.spec.name;
    rc.ref.pid = c.ref.pid;
    rc.ref.start_ticks = c.ref.start_ticks;
    rc.ref.id = c.ref.id;
    rc.restarts = c.restarts;
    rc.last_exit_code = c.last_exit_code;
    rc.last_reason = c.last_reason;
    rc.started = c.started;
    rc.ready = c.ready;
    rc.ran_before = c.ran_before;
    rc.started_wall_ms = c.started_wall_ms;
    r.containers.push_back(std::move(rc));
  }
  return r;
}

void ApplyRecord(const PodRecord& record, PodState& pod) {
  pod.host_ports = record.host_ports;
  pod.ports_by_number = record.ports_by_number;
  pod.service_env = record.service_env;
  pod.created_wall_ms = record.created_wall_ms;
  pod.cgroup = record.cgroup;
  pod.terminating = record.terminating;
  for (auto& c : pod.containers) {
    const ContainerRecord* saved = record.container(c.spec.name);
    if (saved == nullptr) continue;
    c.restarts = saved->restarts;
    c.last_exit_code = saved->last_exit_code;
    c.last_reason = saved->last_reason;
    c.ran_before = saved->ran_before;
    c.started = saved->started;
    c.ready = saved->ready;
    c.started_wall_ms = saved->started_wall_ms;
  }
}

std::string EncodePodRecord(const PodRecord& record) {
  Json containers = Json::array();
  for (const auto& c : record.containers) containers.push_back(EncodeContainer(c));
  Json ports_by_number = Json::object();
  for (const auto& [k, v] : record.ports_by_number) ports_by_number[std::to_string(k)] = v;
  Json j{{"desired", ToJson(record.desired)}, {"runtime", record.runtime},
         {"hostPorts", record.host_ports},    {"portsByNumber", ports_by_number},
         {"serviceEnv", record.service_env},  {"createdMs", record.created_wall_ms},
         {"cgroup", record.cgroup},           {"terminating", record.terminating},
         {"containers", containers}};
  return j.dump(2);
}

Result<PodRecord> DecodePodRecord(std::string_view text) {
  const Json j = Json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object()) return InvalidArgument("missing or not JSON");
  auto desired = agentapi::DesiredPodFromJson(j.value("desired", Json::object()));
  if (!desired.ok()) return desired.status();
  PodRecord r;
  r.desired = std::move(*desired);
  try {
    r.runtime = j.value("runtime", "process");
    r.host_ports = j.value("hostPorts", std::map<std::string, int32_t>{});
    const Json ports = j.contains("portsByNumber") ? j["portsByNumber"] : Json::object();
    for (auto p = ports.begin(); p != ports.end(); ++p) {
      r.ports_by_number[std::stoi(p.key())] = p.value().get<int32_t>();
    }
    r.service_env = j.value("serviceEnv", model::StringMap{});
    r.created_wall_ms = j.value("createdMs", int64_t{0});
    r.cgroup = j.value("cgroup", false);
    r.terminating = j.value("terminating", false);
    for (const auto& s : j.value("containers", Json::array())) {
      if (s.is_object()) r.containers.push_back(DecodeContainer(s));
    }
  } catch (const std::exception& e) {
    return InvalidArgument(std::string("malformed pod record: ") + e.what());
  }
  return r;
}

PodStore::PodStore(std::string pods_dir) : pods_dir_(std::move(pods_dir)) {}

Status PodStore::Save(const PodState& pod) const {
  return localfs::WriteFileAtomically(fs::path(pod.dir) / kRecordFile,
                                      EncodePodRecord(RecordOf(pod)), 0644);
}

std::vector<PodStore::Entry> PodStore::LoadAll() const {
  std::vector<Entry> out;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(pods_dir_, ec)) {
    if (!entry.is_directory(ec)) continue;
    auto text = localfs::ReadSmallFile(entry.path() / kRecordFile, kMaxRecordBytes);
    if (text.ok()) {
      out.push_back(Entry{entry.path().string(), DecodePodRecord(*text)});
    } else if (text.status().code() == StatusCode::kNotFound) {
      out.push_back(Entry{entry.path().string(), InvalidArgument("missing or not JSON")});
    } else {
      out.push_back(Entry{entry.path().string(), text.status()});
    }
  }
  return out;
}

Status PodStore::Remove(const std::string& pod_dir) const {
  Status record = localfs::RemoveFileDurably(fs::path(pod_dir) / kRecordFile);
  std::error_code ec;
  fs::remove_all(pod_dir, ec);
  if (!record.ok()) return record;
  if (ec) return Unavailable("remove " + pod_dir + ": " + ec.message());
  return Status::Ok();
}

}  // namespace ballast::nodeagent
