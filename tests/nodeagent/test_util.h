#pragma once

// Helpers shared by the node agent tests: temporary work directories, polling for a condition
// (never sleeping as synchronization), pod templates built in code.

#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "agentapi/protocol.h"
#include "model/object.h"
#include "nodeagent/pods.h"

namespace ballast::nodeagent::testing {

class TempDir {
 public:
  TempDir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "ballast-agent-XXXXXX").string();
    path_ = ::mkdtemp(tmpl.data());
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// Polls `condition` (calling `step` before each check) until it holds or `timeout` passes.
inline bool WaitUntil(
    const std::function<bool()>& condition, const std::function<void()>& step = [] {},
    std::chrono::milliseconds timeout = std::chrono::seconds(30)) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    step();
    if (condition()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  step();
  return condition();
}

inline model::Container ShellContainer(const std::string& name, const std::string& script) {
  model::Container c;
  c.name = name;
  c.image = "none";
  c.command = {"/bin/sh", "-c", script};
  return c;
}

inline agentapi::DesiredPod MakePod(const std::string& name,
                                    std::vector<model::Container> containers,
                                    int64_t grace_seconds = 30) {
  agentapi::DesiredPod p;
  p.name = name;
  p.deployment = "app";
  p.revision = "rev1";
  p.template_.labels = {{"app", "app"}};
  p.template_.spec.containers = std::move(containers);
  p.template_.spec.termination_grace_period_seconds = grace_seconds;
  return p;
}

inline const model::Pod* FindPod(const std::vector<model::Pod>& pods, const std::string& name) {
  for (const auto& p : pods) {
    if (p.name == name) return &p;
  }
  return nullptr;
}

inline bool PidAlive(pid_t pid) { return pid > 0 && ProcessStartTime(pid) != 0; }

// The whole file; "" when it cannot be read.
inline std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace ballast::nodeagent::testing
