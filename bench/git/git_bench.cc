// The manifest source on a generated repository of 10,000 manifest files, each ballast figure
// beside its floor measured in the same run on the same repository with the git command line:
//   cold clone        ballast Poll() into an empty dir   vs  git clone --bare (+ read every blob)
//                     (NoParse: the same blobs named *.txt, so nothing is parsed)
//   no-change poll    ballast Poll()                     vs  git fetch
//   one-file change   ballast Poll()                     vs  git fetch + git ls-tree -r + git
//   cat-file --batch
// Parsing is work git does not do; BM_Parse shows its share (model::ParseManifestFile x 10,000).
//
//   build-git/bench/git/bench_git --benchmark_counters_tabular=true

#include <arpa/inet.h>
#include <benchmark/benchmark.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <thread>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "model/manifest.h"
#include "sources/git/git_source.h"

namespace {
namespace fs = std::filesystem;
constexpr int kFiles = 10000;

int Sh(const std::string& script) {
  int status = std::system(("/bin/sh -c 'set -e; " + script + "' >/dev/null 2>&1").c_str());
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

std::string Manifest(int i, int replicas) {
  std::string name = "app-" + std::to_string(i);
  return "# service " + name +
         "\napiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: " + name +
         "\n  labels:\n    team: t" + std::to_string(i % 17) +
         "\nspec:\n  replicas: " + std::to_string(replicas) +
         "\n  selector:\n    matchLabels:\n      app: " + name +
         "\n  template:\n    metadata:\n      labels:\n        app: " + name +
         "\n    spec:\n      containers:\n        - name: main\n          command: [\"sleep\", "
         "\"1000\"]\n          ports:\n            - containerPort: 8080\n          resources:\n"
         "            requests:\n              cpu: 50m\n              memory: 32Mi\n";
}

std::string FilePath(int i) {
  char buf[64];
  std::snprintf(buf, sizeof(buf), "deploy/g%03d/app-%05d.yaml", i / 100, i);
  return buf;
}

int FreePort() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(addr);
  bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  close(fd);
  return ntohs(addr.sin_port);
}

bool Accepts(int port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<uint16_t>(port));
  bool ok = connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
  close(fd);
  return ok;
}

// The generated repository, served by a git daemon on loopback, and the directories the
// benchmarks work in. Both ballast and the git floor fetch over git://.
struct World {
  fs::path root;
  std::string remote;  // bare repository with kFiles manifests
  std::string url;
  pid_t daemon = -1;
  int changes = 0;

  World() {
    char tmpl[] = "/tmp/ballast-bench-git-XXXXXX";
    root = mkdtemp(tmpl);
    remote = (root / "remote.git").string();
    std::ostringstream stream;
    stream << "commit refs/heads/main\ncommitter bench <bench@example.com> 1700000000 +0000\n"
              "data 5\ninit\n";
    for (int i = 0; i < kFiles; ++i) {
      std::string content = Manifest(i, 1);
      stream << "M 100644 inline " << FilePath(i) << "\ndata " << content.size() << "\n"
             << content << "\n";
    }
    // Branch `raw`: the same blobs under names that are not manifests (.txt), so a poll of it
    // measures fetching and reading without parsing.
    stream << "commit refs/heads/raw\ncommitter bench <bench@example.com> 1700000000 +0000\n"
              "data 4\nraw\n";
    for (int i = 0; i < kFiles; ++i) {
      std::string content = Manifest(i, 1);
      std::string path = FilePath(i);
      path.replace(path.size() - 5, 5, ".txt");
      stream << "M 100644 inline " << path << "\ndata " << content.size() << "\n"
             << content << "\n";
    }
    std::ofstream((root / "init.fi").string()) << stream.str();
    Sh("git init -q --bare -b main " + remote + " && cd " + remote +
       " && git fast-import --quiet < " + (root / "init.fi").string());
    for (int attempt = 0; attempt < 5 && url.empty(); ++attempt) {
      int port = FreePort();
      daemon = fork();
      if (daemon == 0) {
        std::string p = "--port=" + std::to_string(port), base = "--base-path=" + root.string();
        execl("/usr/bin/git", "git", "daemon", "--listen=127.0.0.1", p.c_str(), base.c_str(),
              "--export-all", "--reuseaddr", root.c_str(), static_cast<char*>(nullptr));
        _exit(127);
      }
      for (int i = 0; i < 500 && url.empty(); ++i) {
        if (Accepts(port)) url = "git://127.0.0.1:" + std::to_string(port) + "/remote.git";
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
      }
      if (url.empty()) {
        kill(daemon, SIGKILL);
        waitpid(daemon, nullptr, 0);
      }
    }
  }
  ~World() {
    if (daemon > 0) {
      kill(daemon, SIGTERM);
      waitpid(daemon, nullptr, 0);
    }
    std::error_code ec;
    fs::remove_all(root, ec);
  }

  // One commit on main that changes one file.
  void ChangeOneFile() {
    ++changes;
    int i = (changes * 7919) % kFiles;
    std::string content = Manifest(i, 2 + changes);
    std::ostringstream stream;
    stream << "commit refs/heads/main\ncommitter bench <bench@example.com> " << 1700000000 + changes
           << " +0000\ndata 7\nchange\nfrom refs/heads/main^0\nM 100644 inline " << FilePath(i)
           << "\ndata " << content.size() << "\n"
           << content << "\n";
    std::ofstream((root / "change.fi").string()) << stream.str();
    Sh("cd " + remote + " && git fast-import --quiet < " + (root / "change.fi").string());
  }

  ballast::git::SourceConfig Config(const std::string& clone) const {
    ballast::git::SourceConfig c;
    c.remote.url = url;
    c.ref = "main";
    c.path = "deploy";
    c.clone_dir = root / clone;
    return c;
  }
};

World& TheWorld() {
  static World world;
  return world;
}

constexpr char kReadAll[] =
    " && git ls-tree -r main deploy | cut -f1 | cut -d\" \" -f3 | git cat-file --batch";

void BM_ColdClone_Ballast(benchmark::State& state) {
  World& w = TheWorld();
  for (auto _ : state) {
    state.PauseTiming();
    fs::remove_all(w.root / "cold");
    state.ResumeTiming();
    ballast::git::GitSource source(w.Config("cold"));
    auto snap = source.Poll();
    if (!snap.ok() || snap->tree->manifests.size() != kFiles) state.SkipWithError("poll failed");
  }
}

void BM_ColdClone_BallastNoParse(benchmark::State& state) {
  World& w = TheWorld();
  for (auto _ : state) {
    state.PauseTiming();
    fs::remove_all(w.root / "cold");
    state.ResumeTiming();
    auto config = w.Config("cold");
    config.ref = "raw";
    ballast::git::GitSource source(config);
    auto snap = source.Poll();
    if (!snap.ok() || snap->tree->files.size() != kFiles) state.SkipWithError("poll failed");
  }
}

void BM_ColdClone_FloorGitClone(benchmark::State& state) {
  World& w = TheWorld();
  std::string dir = (w.root / "cold-git").string();
  for (auto _ : state) {
    state.PauseTiming();
    fs::remove_all(dir);
    state.ResumeTiming();
    if (Sh("git clone -q --bare " + w.url + " " + dir) != 0) {
      state.SkipWithError("git clone failed");
    }
  }
}

void BM_ColdClone_FloorGitCloneAndRead(benchmark::State& state) {
  World& w = TheWorld();
  std::string dir = (w.root / "cold-git").string();
  for (auto _ : state) {
    state.PauseTiming();
    fs::remove_all(dir);
    state.ResumeTiming();
    if (Sh("git clone -q --bare " + w.url + " " + dir + " && cd " + dir + kReadAll) != 0) {
      state.SkipWithError("git clone failed");
    }
  }
}

void BM_Parse(benchmark::State& state) {
  std::vector<std::string> contents;
  for (int i = 0; i < kFiles; ++i) contents.push_back(Manifest(i, 1));
  for (auto _ : state) {
    size_t n = 0;
    for (int i = 0; i < kFiles; ++i) {
      n += ballast::model::ParseManifestFile(FilePath(i), contents[i]).manifests.size();
    }
    benchmark::DoNotOptimize(n);
  }
}

void BM_NoChangePoll_Ballast(benchmark::State& state) {
  World& w = TheWorld();
  ballast::git::GitSource source(w.Config("warm"));
  if (!source.Poll().ok()) state.SkipWithError("first poll failed");
  for (auto _ : state) {
    auto snap = source.Poll();
    if (!snap.ok() || snap->changed) state.SkipWithError("poll failed or saw a change");
  }
}

void BM_NoChangePoll_FloorGitFetch(benchmark::State& state) {
  World& w = TheWorld();
  std::string dir = (w.root / "warm-git").string();
  fs::remove_all(dir);
  Sh("git clone -q --bare " + w.url + " " + dir);
  for (auto _ : state) {
    if (Sh("cd " + dir + " && git fetch -q " + w.url + " +refs/heads/main:refs/heads/main") != 0) {
      state.SkipWithError("git fetch failed");
    }
  }
}

void BM_OneFileChangePoll_Ballast(benchmark::State& state) {
  World& w = TheWorld();
  ballast::git::GitSource source(w.Config("warm"));
  if (!source.Poll().ok()) state.SkipWithError("first poll failed");
  uint64_t parsed_before = source.files_parsed();
  for (auto _ : state) {
    state.PauseTiming();
    w.ChangeOneFile();
    state.ResumeTiming();
    auto snap = source.Poll();
    if (!snap.ok() || !snap->changed) state.SkipWithError("poll failed or saw no change");
  }
  state.counters["parsed_per_poll"] = static_cast<double>(source.files_parsed() - parsed_before) /
                                      static_cast<double>(state.iterations());
}

void BM_OneFileChangePoll_FloorGitFetchAndRead(benchmark::State& state) {
  World& w = TheWorld();
  std::string dir = (w.root / "warm-git").string();
  fs::remove_all(dir);
  Sh("git clone -q --bare " + w.url + " " + dir);
  for (auto _ : state) {
    state.PauseTiming();
    w.ChangeOneFile();
    state.ResumeTiming();
    if (Sh("cd " + dir + " && git fetch -q " + w.url + " +refs/heads/main:refs/heads/main" +
           kReadAll) != 0) {
      state.SkipWithError("git fetch failed");
    }
  }
}

BENCHMARK(BM_ColdClone_Ballast)->Unit(benchmark::kMillisecond)->UseRealTime()->Iterations(3);
BENCHMARK(BM_ColdClone_BallastNoParse)->Unit(benchmark::kMillisecond)->UseRealTime()->Iterations(3);
BENCHMARK(BM_ColdClone_FloorGitClone)->Unit(benchmark::kMillisecond)->UseRealTime()->Iterations(3);
BENCHMARK(BM_ColdClone_FloorGitCloneAndRead)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime()
    ->Iterations(3);
BENCHMARK(BM_Parse)->Unit(benchmark::kMillisecond)->UseRealTime()->Iterations(2);
BENCHMARK(BM_NoChangePoll_Ballast)->Unit(benchmark::kMillisecond)->UseRealTime()->Iterations(50);
BENCHMARK(BM_NoChangePoll_FloorGitFetch)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime()
    ->Iterations(50);
BENCHMARK(BM_OneFileChangePoll_Ballast)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime()
    ->Iterations(10);
BENCHMARK(BM_OneFileChangePoll_FloorGitFetchAndRead)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime()
    ->Iterations(10);

}  // namespace

BENCHMARK_MAIN();
