#pragma once

// A real Docker Engine API for tests: Debian's podman (`podman system service`) on a unix
// socket, with all of its state (storage, run root, tmp, network definitions, containers.conf)
// in one temporary folder and a bridge network of its own, always configured the same way:
// through CONTAINERS_CONF and CONTAINERS_STORAGE_CONF only, never extra flags (mixing the two
// breaks podman's cleanup).
// Facts of these machines baked in: only runc works (crun fails on the hybrid cgroup layout),
// explicit ulimits, cgroupfs, file events (no journald/syslog here).
//
// One service per test process (ctest runs each test case in a process of its own; a test
// binary run by hand shares one): PodmanService::Shared() starts it on first use; a GoogleTest
// environment stops it at the end (removes every container, kills the service and the conmon
// processes left for exec sessions, unmounts and deletes the folder). Folders left by a test
// binary that crashed are cleaned the same way at the next start.
//
// Images come from no registry: ImportBusybox builds a root filesystem from busybox-static
// (/bin/busybox and its applets, PATH=/bin, CMD httpd on port 80 serving /www) and imports it
// through POST /images/create?fromSrc=-.

#include <signal.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "nodeagent/docker_client.h"

namespace ballast::nodeagent::testing {

class PodmanService {
 public:
  // The binary's service, started on first call; nullptr (with `why` set) when podman cannot
  // run here.
  static PodmanService* Shared(std::string* why = nullptr) {
    static std::string failure;
    if (!instance_ && failure.empty()) {
      auto s = std::unique_ptr<PodmanService>(new PodmanService());
      failure = s->Start();
      if (failure.empty()) {
        instance_ = s.release();
        ::testing::AddGlobalTestEnvironment(new Teardown());
      } else {
        s->Stop();
      }
    }
    if (why) *why = failure;
    return instance_;
  }

  // Stops the shared service now (tests: the environment does it; other programs call this).
  static void Shutdown() {
    if (instance_) instance_->Stop();
  }

  const std::string& socket() const { return socket_; }
  const std::string& dir() const { return dir_; }
  DockerClient client() const { return DockerClient(socket_); }

  // Imports a busybox image as `repo_tag` ("localhost/bb:v1") whose /www/index.html holds
  // `index_html`.
  Status ImportBusybox(const std::string& repo_tag, const std::string& index_html) {
    namespace fs = std::filesystem;
    std::string root = dir_ + "/rootfs-" + std::to_string(++images_);
    std::error_code ec;
    fs::create_directories(root + "/bin", ec);
    fs::create_directories(root + "/www", ec);
    fs::create_directories(root + "/tmp", ec);
    fs::copy_file("/bin/busybox", root + "/bin/busybox", ec);
    if (ec) return FailedPrecondition("copy /bin/busybox (busybox-static): " + ec.message());
    for (const char* applet : {"sh", "httpd", "sleep", "cat", "echo", "env", "ls", "true", "false",
                               "head", "dd", "tr", "wget", "kill", "trap", "yes"}) {
      fs::create_symlink("busybox", root + "/bin/" + applet, ec);
    }
    std::ofstream(root + "/www/index.html") << index_html;
    std::string tar = root + ".tar";
    std::string cmd = "tar -C '" + root + "' -cf '" + tar + "' .";
    if (std::system(cmd.c_str()) != 0) return Internal("tar failed: " + cmd);
    std::ifstream in(tar, std::ios::binary);
    std::stringstream body;
    body << in.rdbuf();
    DockerRequest r;
    r.method = "POST";
    r.path = "/images/create?fromSrc=-&repo=" + QueryEscape(repo_tag) +
             "&changes=" + QueryEscape("ENV PATH=/bin") +
             "&changes=" + QueryEscape("CMD [\"httpd\", \"-f\", \"-p\", \"80\", \"-h\", \"/www\"]");
    r.body = body.str();
    r.content_type = "application/x-tar";  // any other type and podman imports an empty layer
    r.timeout_ms = 60'000;
    auto resp = DockerClient(socket_).Call(r);
    if (!resp.ok()) return resp.status();
    if (resp->status != 200) return DockerError("import " + repo_tag, resp->status, resp->body);
    return Status::Ok();
  }

  // Names of the containers the engine has (all states).
  std::vector<std::string> ContainerNames(const std::string& label_filter = "") const {
    std::string path = "/containers/json?all=true";
    if (!label_filter.empty()) {
      path += "&filters=" + QueryEscape(model::Json{{"label", {label_filter}}}.dump());
    }
    std::vector<std::string> out;
    auto list = DockerClient(socket_).CallJson("GET", path);
    if (!list.ok() || !list->is_array()) return out;
    for (const auto& c : *list) {
      std::string name = c["Names"][0].get<std::string>();
      out.push_back(name[0] == '/' ? name.substr(1) : name);
    }
    return out;
  }

  // The engine's id of container `name`, "" when there is none.
  std::string ContainerId(const std::string& name) const {
    auto info = DockerClient(socket_).CallJson("GET", "/containers/" + name + "/json");
    return info.ok() ? info->value("Id", "") : "";
  }

 private:
  class Teardown : public ::testing::Environment {
   public:
    void TearDown() override {
      if (instance_) instance_->Stop();
    }
  };

  PodmanService() = default;

  std::string Start() {
    namespace fs = std::filesystem;
    if (::access("/usr/bin/podman", X_OK) != 0) return "podman is not installed";
    if (::access("/usr/bin/runc", X_OK) != 0) return "runc is not installed";
    if (::access("/bin/busybox", X_OK) != 0) return "busybox-static is not installed";
    CleanStale();
    std::string tmpl = (fs::temp_directory_path() / "ballast-podman-XXXXXX").string();
    if (::mkdtemp(tmpl.data()) == nullptr) return "mkdtemp failed";
    dir_ = tmpl;
    std::ofstream(dir_ + "/owner.pid") << ::getpid();
    for (const char* d : {"/root", "/runroot", "/tmp", "/networks"}) {
      fs::create_directories(dir_ + d);
    }
    std::ofstream(dir_ + "/containers.conf")
        << "[containers]\n"
           "default_ulimits = [\"nofile=20000:20000\", \"nproc=32768:32768\"]\n"
           "[engine]\n"
           "cgroup_manager = \"cgroupfs\"\n"
           "events_logger = \"file\"\n"
           "events_logfile_path = \""
        << dir_
        << "/events.log\"\n"
           "runtime = \"runc\"\n"
           "tmp_dir = \""
        << dir_
        << "/tmp\"\n"
           "[network]\n"
           "network_config_dir = \""
        << dir_ << "/networks\"\n";
    // A network of its own (bridge and subnet named after this process): podman's default one
    // (podman0, 10.88.0.0/16) would be shared with every other service running on the machine,
    // which hand out the same addresses and tear the bridge down under each other.
    const unsigned pid = static_cast<unsigned>(::getpid());
    std::ofstream(dir_ + "/networks/podman.json")
        << "{\"name\": \"podman\", \"driver\": \"bridge\",\n"
           " \"id\": \"2f259bab93aaaaa2542ba43ef33eb990d0999ee1b9924b557b7be53c0b7a1bb9\",\n"
           " \"network_interface\": \"blst"
        << pid << "\",\n \"created\": \"2026-01-01T00:00:00Z\",\n"
        << " \"subnets\": [{\"subnet\": \"10." << 200 + (pid >> 8) % 50 << "." << pid % 256
        << ".0/24\", \"gateway\": \"10." << 200 + (pid >> 8) % 50 << "." << pid % 256
        << ".1\"}],\n"
           " \"ipv6_enabled\": false, \"internal\": false, \"dns_enabled\": false,\n"
           " \"ipam_options\": {\"driver\": \"host-local\"}}\n";
    std::ofstream(dir_ + "/storage.conf") << "[storage]\n"
                                             "driver = \"overlay\"\n"
                                             "graphroot = \""
                                          << dir_
                                          << "/root\"\n"
                                             "runroot = \""
                                          << dir_ << "/runroot\"\n";
    socket_ = dir_ + "/podman.sock";
    std::string log = dir_ + "/service.log";
    pid_ = ::fork();
    if (pid_ < 0) return "fork failed";
    if (pid_ == 0) {
      ::setsid();  // its own process group, killed as a whole at the end
      // conmon inherits the working directory and writes an "oom" marker file there when a
      // container is OOM-killed: keep it in the folder.
      if (::chdir(dir_.c_str()) != 0) ::_exit(126);
      ::setenv("CONTAINERS_CONF", (dir_ + "/containers.conf").c_str(), 1);
      ::setenv("CONTAINERS_STORAGE_CONF", (dir_ + "/storage.conf").c_str(), 1);
      FILE* f = std::freopen(log.c_str(), "a", stdout);
      f = std::freopen(log.c_str(), "a", stderr);
      (void)f;
      std::string url = "unix://" + socket_;
      ::execl("/usr/bin/podman", "podman", "system", "service", "--time=0", url.c_str(),
              static_cast<char*>(nullptr));
      ::_exit(127);
    }
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (std::chrono::steady_clock::now() < deadline) {
      if (DockerClient(socket_).Ping(1000).ok()) return "";
      int status = 0;
      if (::waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = 0;
        return "podman system service exited; see " + log;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return "podman system service did not answer /_ping within 30 s; see " + log;
  }

  void Stop() {
    if (dir_.empty()) return;
    if (pid_ > 0) {
      DockerClient client(socket_);
      auto list = client.CallJson("GET", "/containers/json?all=true", nullptr, 10'000);
      if (list.ok() && list->is_array()) {
        for (const auto& c : *list) {
          DockerRequest r;
          r.method = "DELETE";
          r.path = "/containers/" + c.value("Id", "") + "?force=true&v=true";
          r.timeout_ms = 20'000;
          (void)client.Call(r);
        }
      }
      ::kill(-pid_, SIGTERM);
      for (int i = 0; i < 100; ++i) {
        int status = 0;
        if (::waitpid(pid_, &status, WNOHANG) == pid_) break;
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
      }
      ::kill(-pid_, SIGKILL);
      ::waitpid(pid_, nullptr, WNOHANG);
      pid_ = 0;
    }
    Clean(dir_);
    dir_.clear();
  }

  // Kills what still refers to `dir` (conmon processes kept 5 minutes for exec sessions,
  // containers), unmounts what is mounted below it and deletes it.
  static void Clean(const std::string& dir) {
    namespace fs = std::filesystem;
    std::error_code ec;
    for (const auto& entry : fs::directory_iterator("/proc", ec)) {
      std::string pid = entry.path().filename().string();
      if (pid.empty() || !std::isdigit(static_cast<unsigned char>(pid[0]))) continue;
      if (std::stoi(pid) == ::getpid()) continue;
      std::ifstream in(entry.path() / "cmdline");
      std::string cmdline((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
      if (cmdline.find(dir + "/") != std::string::npos) ::kill(std::stoi(pid), SIGKILL);
    }
    std::vector<std::string> mounts;
    std::ifstream in("/proc/mounts");
    std::string device, point, rest;
    while (in >> device >> point && std::getline(in, rest)) {
      if (point.rfind(dir + "/", 0) == 0) mounts.push_back(point);
    }
    std::sort(mounts.rbegin(), mounts.rend());  // deepest first
    for (const auto& m : mounts) ::umount2(m.c_str(), MNT_DETACH);
    fs::remove_all(dir, ec);
  }

  // Folders of earlier runs whose test binary is gone (crashed before its teardown).
  static void CleanStale() {
    namespace fs = std::filesystem;
    std::error_code ec;
    for (const auto& entry : fs::directory_iterator(fs::temp_directory_path(), ec)) {
      std::string name = entry.path().filename().string();
      if (name.rfind("ballast-podman-", 0) != 0) continue;
      std::ifstream in(entry.path() / "owner.pid");
      pid_t owner = 0;
      if (in >> owner && owner > 0 && ::kill(owner, 0) == 0) continue;  // still in use
      Clean(entry.path().string());
    }
  }

  static inline PodmanService* instance_ = nullptr;
  std::string dir_;
  std::string socket_;
  pid_t pid_ = 0;
  int images_ = 0;
};

// In a test body: the shared service, or fail the test (with the reason) when podman cannot run
// (scripts/install-deps.sh installs podman, runc and busybox-static).
#define BALLAST_REQUIRE_PODMAN(var)                                                       \
  std::string podman_unavailable_;                                                        \
  auto* var = ::ballast::nodeagent::testing::PodmanService::Shared(&podman_unavailable_); \
  if (var == nullptr) GTEST_FAIL() << "podman: " << podman_unavailable_

}  // namespace ballast::nodeagent::testing
