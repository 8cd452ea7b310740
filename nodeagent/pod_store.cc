#include "nodeagent/pod_store.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <exception>
#include <filesystem>
#include <utility>

#include "localfs/durable_file.h"
#include "localfs/safe_fs.h"

namespace ballast::nodeagent {
namespace {

namespace fs = std::filesystem;
using model::Json;

constexpr char kRecordFile[] = "pod.json";
// A record holds one pod template and a few numbers; anything this large is not one.
constexpr size_t kMaxRecordBytes = 16 << 20;
// Longest pod directory name: NAME_MAX (255) leaves room for what is put beside it, such as a
// temporary file's ".tmp-" suffix.
constexpr size_t kMaxPodDirName = 200;
constexpr size_t kPodDirHashDigits = 16;

bool IsPlainNameByte(char ch) {
  return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
         ch == '.' || ch == '-' || ch == '_';
}

// The record in `path`, read only when it is this process's user's alone.
Result<std::string> ReadTrustedRecord(const std::string& path) {
  auto fd = localfs::OpenFile(path, O_RDONLY);
  if (!fd.ok()) return fd.status();
  struct stat st {};
  if (::fstat(fd->get(), &st) != 0)
    return Unavailable("fstat " + path + ": " + std::strerror(errno));
  if (Status s = localfs::CheckPrivate(st, path, ::geteuid()); !s.ok()) {
    return PermissionDenied(s.message() + "; not trusted");
  }
  std::string out;
  char buf[8192];
  for (;;) {
    const ssize_t n = ::read(fd->get(), buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Unavailable("read " + path + ": " + std::strerror(errno));
    if (n == 0) break;
    if (out.size() + static_cast<size_t>(n) > kMaxRecordBytes) {
      return ResourceExhausted("read " + path + ": larger than " + std::to_string(kMaxRecordBytes) +
                               " bytes");
    }
    out.append(buf, static_cast<size_t>(n));
  }
  return out;
}

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

std::string PodDirName(std::string_view pod_id) {
  const bool plain = std::all_of(pod_id.begin(), pod_id.end(), IsPlainNameByte);
  if (plain && !pod_id.empty() && pod_id.size() <= kMaxPodDirName && pod_id != "." &&
      pod_id != "..") {
    return std::string(pod_id);
  }
  uint64_t hash = 14695981039346656037ull;  // FNV-1a: the same on every build and machine
  for (const char ch : pod_id) {
    hash ^= static_cast<unsigned char>(ch);
    hash *= 1099511628211ull;
  }
  std::string out;
  for (const char ch : pod_id.substr(0, kMaxPodDirName - kPodDirHashDigits - 1)) {
    out += IsPlainNameByte(ch) ? ch : '_';
  }
  out += '-';
  static constexpr char kHex[] = "0123456789abcdef";
  for (size_t i = 0; i < kPodDirHashDigits; ++i) out += kHex[(hash >> (60 - 4 * i)) & 15];
  return out;
}

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

PodStore::PodStore(std::string records_dir) : records_dir_(std::move(records_dir)) {}

std::string PodStore::RecordPath(const std::string& pod_id) const {
  return (fs::path(records_dir_) / PodDirName(pod_id) / kRecordFile).string();
}

Status PodStore::Save(const PodState& pod) const {
  const fs::path dir = fs::path(records_dir_) / PodDirName(pod.id);
  auto made = localfs::MakeDirs(dir.string(), 0700, 0700);
  if (!made.ok()) return made.status();
  return localfs::WriteFileAtomically(dir / kRecordFile, EncodePodRecord(RecordOf(pod)), 0600);
}

std::vector<PodStore::Entry> PodStore::LoadAll() const {
  std::vector<Entry> out;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(records_dir_, ec)) {
    if (!entry.is_directory(ec) || entry.is_symlink(ec)) continue;
    const std::string path = (entry.path() / kRecordFile).string();
    auto text = ReadTrustedRecord(path);
    if (text.ok()) {
      out.push_back(Entry{path, DecodePodRecord(*text)});
    } else if (text.status().code() == StatusCode::kNotFound) {
      out.push_back(Entry{path, InvalidArgument("missing or not JSON")});
    } else {
      out.push_back(Entry{path, text.status()});
    }
  }
  return out;
}

Status PodStore::Remove(const std::string& pod_id) const {
  const fs::path dir = fs::path(records_dir_) / PodDirName(pod_id);
  Status record = localfs::RemoveFileDurably(dir / kRecordFile);
  std::error_code ec;
  fs::remove_all(dir, ec);  // the agent's own tree: nobody else can put a symlink in it
  if (!record.ok()) return record;
  if (ec) return Unavailable("remove " + dir.string() + ": " + ec.message());
  return Status::Ok();
}

}  // namespace ballast::nodeagent
