#include "nodeagent/cgroups.h"

#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

namespace ballast::nodeagent {
namespace fs = std::filesystem;

namespace {

bool WriteFile(const std::string& path, const std::string& value) {
  std::ofstream out(path);
  if (!out) return false;
  out << value;
  out.flush();
  return static_cast<bool>(out);
}

bool MakeDirs(const std::string& path) {
  std::error_code ec;
  fs::create_directories(path, ec);
  return !ec && fs::is_directory(path, ec);
}

int64_t ReadKeyedValue(const std::string& path, const std::string& key) {
  std::ifstream in(path);
  std::string k;
  int64_t v;
  while (in >> k >> v) {
    if (k == key) return v;
  }
  return 0;
}

}  // namespace

std::unique_ptr<Cgroups> Cgroups::Detect(const std::string& agent_name, const std::string& root) {
  auto cg = std::unique_ptr<Cgroups>(new Cgroups());
  std::error_code ec;
  if (::geteuid() != 0) {
    cg->description_ = "limits: not enforced (the agent does not run as root)";
    return cg;
  }
  if (fs::exists(root + "/cgroup.controllers", ec)) {
    std::string base = root + "/ballast";
    std::string agent = base + "/" + agent_name;
    // Controllers must be enabled for children at every level below the root.
    bool ok = MakeDirs(agent) &&
              WriteFile(root + "/cgroup.subtree_control", "+memory +cpu +pids") &&
              WriteFile(base + "/cgroup.subtree_control", "+memory +cpu +pids") &&
              WriteFile(agent + "/cgroup.subtree_control", "+memory +cpu +pids");
    if (ok) {
      cg->mode_ = Mode::kV2;
      cg->bases_ = {agent};
      cg->memory_base_ = agent;
      cg->description_ = "cgroup v2";
    } else {
      cg->description_ = "limits: not enforced (cgroup v2 at " + root + " is not writable)";
    }
    return cg;
  }
  std::vector<std::string> names;
  for (const char* ctrl : {"memory", "cpu", "pids"}) {
    std::string dir = root + "/" + ctrl;
    if (!fs::exists(dir + "/cgroup.procs", ec)) continue;
    std::string agent = dir + "/ballast/" + agent_name;
    if (!MakeDirs(agent)) continue;
    cg->bases_.push_back(agent);
    names.push_back(ctrl);
    if (std::string(ctrl) == "memory") cg->memory_base_ = agent;
  }
  if (cg->bases_.empty()) {
    cg->description_ = "limits: not enforced (no writable cgroup hierarchy under " + root + ")";
    return cg;
  }
  cg->mode_ = Mode::kV1;
  cg->description_ = "cgroup v1 (";
  for (size_t i = 0; i < names.size(); ++i) cg->description_ += (i ? ", " : "") + names[i];
  cg->description_ += ")";
  return cg;
}

std::vector<std::string> Cgroups::Dirs(const std::string& pod_id) const {
  std::vector<std::string> dirs;
  for (const auto& b : bases_) dirs.push_back(b + "/" + pod_id);
  return dirs;
}

Result<std::vector<std::string>> Cgroups::Create(const std::string& pod_id,
                                                 const CgroupLimits& limits) {
  std::vector<std::string> procs;
  if (mode_ == Mode::kNone) return procs;
  for (const auto& dir : Dirs(pod_id)) {
    if (!MakeDirs(dir)) return Internal("create cgroup " + dir + ": " + std::strerror(errno));
    auto set = [&](const std::string& file, const std::string& value) -> Status {
      if (!WriteFile(dir + "/" + file, value)) {
        return Internal("write " + value + " to " + dir + "/" + file);
      }
      return Status::Ok();
    };
    Status s;
    bool is_memory = dir.rfind(memory_base_, 0) == 0;
    if (mode_ == Mode::kV2) {
      s = set("memory.max", limits.memory_bytes > 0 ? std::to_string(limits.memory_bytes) : "max");
      if (s.ok() && limits.memory_bytes > 0 && fs::exists(dir + "/memory.swap.max")) {
        s = set("memory.swap.max", "0");
      }
      if (s.ok()) {
        s = set("cpu.max", limits.cpu_millis > 0
                               ? std::to_string(limits.cpu_millis * 100) + " 100000"
                               : "max 100000");
      }
      if (s.ok()) s = set("pids.max", limits.pids > 0 ? std::to_string(limits.pids) : "max");
    } else if (is_memory && dir.find("/memory/") != std::string::npos) {
      s = set("memory.limit_in_bytes",
              limits.memory_bytes > 0 ? std::to_string(limits.memory_bytes) : "-1");
      if (s.ok() && limits.memory_bytes > 0 && fs::exists(dir + "/memory.memsw.limit_in_bytes")) {
        // Without swap accounting limits this is best effort; the machine has no swap here.
        (void)set("memory.memsw.limit_in_bytes", std::to_string(limits.memory_bytes));
      }
    } else if (dir.find("/cpu/") != std::string::npos) {
      s = set("cpu.cfs_period_us", "100000");
      if (s.ok()) {
        s = set("cpu.cfs_quota_us",
                limits.cpu_millis > 0 ? std::to_string(limits.cpu_millis * 100) : "-1");
      }
    } else if (dir.find("/pids/") != std::string::npos) {
      s = set("pids.max", limits.pids > 0 ? std::to_string(limits.pids) : "max");
    }
    if (!s.ok()) return s;
    procs.push_back(dir + "/cgroup.procs");
  }
  return procs;
}

int64_t Cgroups::OomKills(const std::string& pod_id) const {
  if (mode_ == Mode::kV2)
    return ReadKeyedValue(memory_base_ + "/" + pod_id + "/memory.events", "oom_kill");
  if (mode_ == Mode::kV1 && !memory_base_.empty()) {
    return ReadKeyedValue(memory_base_ + "/" + pod_id + "/memory.oom_control", "oom_kill");
  }
  return 0;
}

std::vector<pid_t> Cgroups::Pids(const std::string& pod_id) const {
  std::vector<pid_t> pids;
  for (const auto& dir : Dirs(pod_id)) {
    std::ifstream in(dir + "/cgroup.procs");
    pid_t p;
    while (in >> p) pids.push_back(p);
    if (!pids.empty()) break;  // every hierarchy holds the same processes
  }
  return pids;
}

void Cgroups::KillAll(const std::string& pod_id) const {
  if (mode_ == Mode::kNone) return;
  for (pid_t p : Pids(pod_id)) ::kill(p, SIGKILL);
}

void Cgroups::Remove(const std::string& pod_id) const {
  // A process leaves its group only once it has exited, a moment after SIGKILL: until then
  // rmdir fails with EBUSY (a fork bomb's hundreds of processes take a few milliseconds).
  for (const auto& dir : Dirs(pod_id)) {
    for (int i = 0; i < 100 && ::rmdir(dir.c_str()) != 0 && errno == EBUSY; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  }
}

}  // namespace ballast::nodeagent
