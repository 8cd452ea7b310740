// The history store: append, list (paged, newest first), read, diff, reopen, and crash safety
// (a writer killed at random points leaves history.git fsck-clean with whole entries only).

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zlib.h>

#include <fstream>
#include <random>
#include <thread>

#include "model/codec.h"
#include "sources/git/history_store.h"
#include "sources/git/loose_objects.h"
#include "sources/git/remote.h"
#include "tests/support/git_servers.h"
#include "tests/support/manifests.h"

namespace ballast::git {

TEST(RedactUrlTest, SecretsNeverReachMessages) {
  EXPECT_EQ(RedactUrl("https://bob:hunter2@example.com/org/repo.git"),
            "https://bob:***@example.com/org/repo.git");
  EXPECT_EQ(RedactUrl("https://ghp_TOKEN@example.com/org/repo.git"),
            "https://***@example.com/org/repo.git");
  EXPECT_EQ(RedactUrl("ssh://git@example.com/repo.git"), "ssh://git@example.com/repo.git");
  EXPECT_EQ(RedactUrl("https://example.com/a@b"), "https://example.com/a@b");
  EXPECT_EQ(RedactUrl("/srv/git/repo.git"), "/srv/git/repo.git");
}

namespace {

using ballast::testing::DeploymentYaml;
using testing::Sh;
using testing::TempDir;

struct State {
  std::vector<model::SourceFile> files;
  std::vector<model::Manifest> manifests;
};

State MakeState(int replicas, bool with_service = true) {
  State s;
  s.files.push_back({"web.yaml", DeploymentYaml("web", replicas, "comments stay")});
  if (with_service) s.files.push_back({"sub/svc.yaml", ballast::testing::ServiceYaml("web", 80)});
  s.files.push_back({"README.md", "# notes\n"});
  for (const auto& f : s.files) {
    if (!model::IsManifestFileName(f.path)) continue;
    auto parsed = model::ParseManifestFile(f.path, f.content);
    EXPECT_EQ(model::CountErrors(parsed.diagnostics), 0u) << f.path;
    for (auto& m : parsed.manifests) s.manifests.push_back(std::move(m));
  }
  return s;
}

HistoryRecord Record(const std::string& sha, const std::string& trigger) {
  HistoryRecord r;
  r.source_url = "https://user:secret@example.com/app.git";
  r.source_ref = "main";
  r.source_path = "deploy";
  r.source_sha = sha;
  r.time = "2026-11-25T17:00:00Z";
  r.trigger = trigger;
  r.result = "Succeeded";
  r.plan_summary = {{"create", 1}, {"update", 0}};
  return r;
}

TEST(HistoryStoreTest, AppendListReadDiff) {
  TempDir dir;
  auto opened = HistoryStore::Open(dir.path() / "history.git");
  ASSERT_TRUE(opened.ok()) << opened.status().ToString();
  HistoryStore& store = **opened;
  EXPECT_EQ(*store.LatestId(), 0);
  EXPECT_TRUE(store.List()->empty());

  State s1 = MakeState(1), s2 = MakeState(2), s3 = MakeState(2, /*with_service=*/false);
  auto e1 = store.Append(Record(std::string(40, '1'), "poll"), s1.files, s1.manifests);
  ASSERT_TRUE(e1.ok()) << e1.status().ToString();
  EXPECT_EQ(e1->id, 1);
  auto e2 = store.Append(Record(std::string(40, '2'), "webhook"), s2.files, s2.manifests);
  ASSERT_TRUE(e2.ok()) << e2.status().ToString();
  EXPECT_EQ(e2->id, 2);
  auto e3 = store.Append(Record(std::string(40, '3'), "api"), s3.files, s3.manifests);
  ASSERT_TRUE(e3.ok()) << e3.status().ToString();
  EXPECT_EQ(e3->id, 3);

  auto all = store.List();
  ASSERT_TRUE(all.ok()) << all.status().ToString();
  ASSERT_EQ(all->size(), 3u);
  EXPECT_EQ((*all)[0].id, 3);
  EXPECT_EQ((*all)[0].record.trigger, "api");
  EXPECT_EQ((*all)[2].id, 1);
  EXPECT_EQ((*all)[2].record.source_sha, std::string(40, '1'));
  EXPECT_EQ((*all)[2].record.source_url, "https://user:***@example.com/app.git");
  EXPECT_EQ((*all)[1].record.plan_summary, (model::Json{{"create", 1}, {"update", 0}}));
  auto page = store.List(0, 2);
  ASSERT_EQ(page->size(), 2u);
  EXPECT_EQ((*page)[1].id, 2);
  auto rest = store.List(/*before_id=*/2, 10);
  ASSERT_EQ(rest->size(), 1u);
  EXPECT_EQ((*rest)[0].id, 1);

  auto read = store.Read(2);
  ASSERT_TRUE(read.ok()) << read.status().ToString();
  EXPECT_EQ(read->entry.id, 2);
  EXPECT_EQ(read->entry.record.trigger, "webhook");
  ASSERT_EQ(read->source_files.size(), 3u);
  EXPECT_EQ(read->source_files[0].path, "README.md");
  EXPECT_EQ(read->source_files[2].path, "web.yaml");
  EXPECT_EQ(read->source_files[2].content, s2.files[0].content);  // byte for byte
  ASSERT_EQ(read->objects.size(), 2u);
  EXPECT_EQ(read->objects[0].path, "Deployment/default/web.yaml");
  EXPECT_EQ(read->objects[0].content, model::ToYaml(s2.manifests[0]));
  EXPECT_EQ(read->objects[1].path, "Service/default/web.yaml");

  auto diff = store.Diff(1, 2);
  ASSERT_TRUE(diff.ok()) << diff.status().ToString();
  ASSERT_EQ(diff->changes.size(), 2u);
  EXPECT_EQ(diff->changes[0].path, "objects/Deployment/default/web.yaml");
  EXPECT_EQ(diff->changes[1].path, "source/web.yaml");
  EXPECT_EQ(diff->changes[1].kind, HistoryFileChange::Kind::kModified);
  EXPECT_NE(diff->changes[1].patch.find("-  replicas: 1"), std::string::npos)
      << diff->changes[1].patch;
  EXPECT_NE(diff->changes[1].patch.find("+  replicas: 2"), std::string::npos);
  auto removed = store.Diff(2, 3);
  ASSERT_TRUE(removed.ok());
  ASSERT_EQ(removed->changes.size(), 2u);
  EXPECT_EQ(removed->changes[1].path, "source/sub/svc.yaml");
  EXPECT_EQ(removed->changes[1].kind, HistoryFileChange::Kind::kDeleted);

  EXPECT_EQ(store.Read(4).status().code(), StatusCode::kNotFound);
  EXPECT_EQ(store.Read(0).status().code(), StatusCode::kNotFound);
  EXPECT_EQ(store.Diff(1, 9).status().code(), StatusCode::kNotFound);

  // An audit trail with the git command line, and fsck-clean.
  auto log = Sh("git log --format=%s", store.dir().string());
  EXPECT_NE(log.output.find("#3 api: Succeeded at source 3333333"), std::string::npos)
      << log.output;
  auto show = Sh("git show main:sync.json", store.dir().string());
  EXPECT_NE(show.output.find("\"trigger\": \"api\""), std::string::npos) << show.output;
  EXPECT_EQ(Sh("git fsck --full --strict", store.dir().string()).exit_code, 0);

  // Reopened, it continues the numbering.
  opened->reset();
  auto again = HistoryStore::Open(dir.path() / "history.git");
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(*(*again)->LatestId(), 3);
  auto e4 = (*again)->Append(Record(std::string(40, '4'), "poll"), s1.files, s1.manifests);
  ASSERT_TRUE(e4.ok());
  EXPECT_EQ(e4->id, 4);
}

TEST(HistoryStoreTest, CrashAtAnyPointLeavesWholeEntriesAndFsckClean) {
  TempDir dir;
  const auto path = dir.path() / "history.git";
  State state = MakeState(1);
  std::mt19937 random(12345);
  int64_t last = 0;
  for (int round = 0; round < 6; ++round) {
    pid_t child = fork();
    ASSERT_GE(child, 0);
    if (child == 0) {
      auto store = HistoryStore::Open(path);
      if (!store.ok()) _exit(2);
      for (int i = 0;; ++i) {
        state.files[0].content = DeploymentYaml("web", i % 50 + 1);
        if (!(*store)
                 ->Append(Record(std::string(40, 'a'), "poll"), state.files, state.manifests)
                 .ok()) {
          _exit(3);
        }
      }
    }
    // Let it write a random number of entries, then kill it wherever it is.
    std::this_thread::sleep_for(std::chrono::milliseconds(30 + random() % 150));
    kill(child, SIGKILL);
    int status = 0;
    waitpid(child, &status, 0);
    ASSERT_TRUE(WIFSIGNALED(status)) << "writer exited with " << WEXITSTATUS(status);

    // Killed before the repository was created there is none yet; otherwise it is whole.
    if (std::filesystem::exists(path)) {
      auto fsck = Sh("git fsck --full --strict --no-dangling", path.string());
      EXPECT_EQ(fsck.exit_code, 0) << fsck.output;
    }
    auto store = HistoryStore::Open(path);
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    auto latest = (*store)->LatestId();
    ASSERT_TRUE(latest.ok()) << latest.status().ToString();
    EXPECT_GE(*latest, last);
    last = *latest;
    auto list = (*store)->List(0, 100000);
    ASSERT_TRUE(list.ok()) << list.status().ToString();
    ASSERT_EQ(static_cast<int64_t>(list->size()), *latest);
    for (size_t i = 0; i < list->size(); ++i) {
      EXPECT_EQ((*list)[i].id, *latest - static_cast<int64_t>(i));
    }
    if (*latest > 0) {
      auto newest = (*store)->Read(*latest);
      ASSERT_TRUE(newest.ok()) << newest.status().ToString();
      EXPECT_EQ(newest->source_files.size(), 3u);
      EXPECT_EQ(newest->objects.size(), 2u);
    }
    // And it accepts a new entry after the crash.
    auto next =
        (*store)->Append(Record(std::string(40, 'b'), "poll"), state.files, state.manifests);
    ASSERT_TRUE(next.ok()) << next.status().ToString();
    EXPECT_EQ(next->id, *latest + 1);
    last = next->id;
  }
  EXPECT_GT(last, 6);
}

}  // namespace
}  // namespace ballast::git

namespace ballast::git {
namespace {

TEST(HistoryStoreTest, RefusesADirectoryThatIsNotARepository) {
  TempDir dir;
  std::filesystem::create_directories(dir.path() / "history.git");
  std::ofstream((dir.path() / "history.git" / "notes.txt").string()) << "mine";
  auto store = HistoryStore::Open(dir.path() / "history.git");
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.status().code(), StatusCode::kFailedPrecondition) << store.status().ToString();
  EXPECT_TRUE(std::filesystem::exists(dir.path() / "history.git" / "notes.txt"));
}

// A loose object cut short, garbled, or whose header claims fewer bytes than it holds: the
// store refuses to open, naming the object's file, instead of handing it to libgit2 1.5, which
// loops forever on the first (libgit2 issue #7342) and writes past its buffer on the last
// (#7177).
TEST(HistoryStoreTest, ADamagedLooseObjectIsNamedBeforeLibgit2ReadsIt) {
  TempDir dir;
  const auto path = dir.path() / "history.git";
  {
    auto store = HistoryStore::Open(path);
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    State s = MakeState(2);
    ASSERT_TRUE((*store)->Append(Record("a1", "poll"), s.files, s.manifests).ok());
  }
  size_t checked = 0;
  ASSERT_TRUE(internal::VerifyLooseObjects(path, &checked).ok());
  EXPECT_GE(checked, 5u);  // commit, trees, blobs

  std::vector<std::filesystem::path> objects;
  for (const auto& f : std::filesystem::recursive_directory_iterator(path / "objects")) {
    if (f.is_regular_file() && f.path().parent_path().filename().string().size() == 2) {
      objects.push_back(f.path());
    }
  }
  ASSERT_FALSE(objects.empty());
  const std::filesystem::path victim = objects.front();
  std::string good;
  {
    std::ifstream in(victim, std::ios::binary);
    good.assign(std::istreambuf_iterator<char>(in), {});
  }
  auto damage = [&](const std::string& bytes) {
    std::filesystem::permissions(victim, std::filesystem::perms::owner_write,
                                 std::filesystem::perm_options::add);
    std::ofstream(victim, std::ios::binary | std::ios::trunc) << bytes;
  };
  // What a `blob` of 5 bytes holding 12 looks like, deflated.
  auto deflated = [](const std::string& raw) {
    uLongf size = compressBound(raw.size());
    std::string out(size, '\0');
    compress(reinterpret_cast<Bytef*>(out.data()), &size,
             reinterpret_cast<const Bytef*>(raw.data()), raw.size());
    out.resize(size);
    return out;
  };
  const std::vector<std::pair<std::string, std::string>> cases = {
      {good.substr(0, good.size() / 2), "truncated"},
      {good.substr(0, 2), "truncated"},
      {"not zlib at all", "not a zlib stream"},
      {deflated(std::string("blob 5\0", 7) + "twelve bytes"), "header says 5 bytes, 12 follow"},
      {deflated("no header here"), "no object header"},
      {"", "truncated"},
  };
  for (const auto& [bytes, why] : cases) {
    damage(bytes);
    const Status verified = internal::VerifyLooseObjects(path);
    EXPECT_NE(verified.message().find(victim.string() + ": corrupt object"), std::string::npos)
        << verified.ToString();
    EXPECT_NE(verified.message().find(why), std::string::npos) << verified.ToString();
    auto store = HistoryStore::Open(path);
    ASSERT_FALSE(store.ok());
    EXPECT_NE(store.status().message().find(victim.string()), std::string::npos)
        << store.status().ToString();
  }
  damage(good);
  EXPECT_TRUE(HistoryStore::Open(path).ok());
  // A FIFO under an object's name: named, not waited on forever.
  const auto fifo = path / "objects" / "ab" / std::string(38, 'c');
  std::filesystem::create_directories(fifo.parent_path());
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  const Status verified = internal::VerifyLooseObjects(path);
  EXPECT_NE(verified.message().find(fifo.string() + ": corrupt object"), std::string::npos)
      << verified.ToString();
  EXPECT_NE(verified.message().find("not a regular file"), std::string::npos);
}

}  // namespace
}  // namespace ballast::git
