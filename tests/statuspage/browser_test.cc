// The status page in a real headless Chromium, against a real `ballast serve` in manual sync
// mode: the planned diff shows the new value, the Sync button applies it, Roll back commits a
// restore to git, and hostile text from a commit and a manifest does not execute. The browser
// is driven through the DevTools protocol over --remote-debugging-pipe (fds 3 and 4, messages
// separated by NUL bytes). A screenshot is saved under the build dir as an artifact.

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "net/client.h"
#include "tests/reconciler/cluster.h"
#include "tests/support/git_servers.h"

namespace ballast {
namespace {

namespace fs = std::filesystem;
using Json = net::Json;
using Clock = std::chrono::steady_clock;

using reconciler::testing::ReadFile;
using reconciler::testing::WaitFor;

std::optional<std::string> FindChromium() {
  for (const char* c :
       {"/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome"}) {
    if (access(c, X_OK) == 0) return std::string(c);
  }
  return std::nullopt;
}

std::string Base64Decode(const std::string& in) {
  auto val = [](char c) -> int {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
  };
  std::string out;
  int bits = 0, acc = 0;
  for (char c : in) {
    int v = val(c);
    if (v < 0) continue;
    acc = (acc << 6) | v;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out += static_cast<char>((acc >> bits) & 0xff);
    }
  }
  return out;
}

// Headless Chromium with the DevTools protocol on a pipe; one page, one session.
class Browser {
 public:
  ~Browser() {
    if (pid_ > 0) {
      kill(-pid_, SIGTERM);
      for (int i = 0; i < 100 && waitpid(pid_, nullptr, WNOHANG) == 0; ++i) {
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
      }
      kill(-pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
    if (to_ >= 0) close(to_);
    if (from_ >= 0) close(from_);
  }

  bool Start(const std::string& exe, const std::string& profile, const std::string& log) {
    int in[2], out[2];
    if (pipe2(in, O_CLOEXEC) != 0 || pipe2(out, O_CLOEXEC) != 0) return false;
    pid_ = fork();
    if (pid_ < 0) return false;
    if (pid_ == 0) {
      setpgid(0, 0);
      int fd = open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      if (fd >= 0) {
        dup2(fd, 1);
        dup2(fd, 2);
      }
      // The browser reads commands on fd 3 and writes answers on fd 4.
      int r = dup(in[0]), w = dup(out[1]);
      dup2(r, 3);
      dup2(w, 4);
      std::string user_data = "--user-data-dir=" + profile;
      const char* argv[] = {exe.c_str(),
                            "--headless",
                            "--no-sandbox",
                            "--disable-gpu",
                            "--no-first-run",
                            "--disable-background-networking",
                            "--disable-component-update",
                            "--disable-sync",
                            "--disable-quic",
                            "--disable-dev-shm-usage",
                            "--remote-debugging-pipe",
                            "--window-size=1366,1600",
                            user_data.c_str(),
                            "about:blank",
                            nullptr};
      execv(exe.c_str(), const_cast<char* const*>(argv));
      _exit(127);
    }
    setpgid(pid_, pid_);
    close(in[0]);
    close(out[1]);
    to_ = in[1];
    from_ = out[0];
    auto target = Call("Target.createTarget", {{"url", "about:blank"}}, false);
    if (!target) return false;
    auto attached = Call("Target.attachToTarget",
                         {{"targetId", (*target)["targetId"]}, {"flatten", true}}, false);
    if (!attached) return false;
    session_ = (*attached)["sessionId"].get<std::string>();
    return true;
  }

  // Sends one command and returns its result (nullopt on error or after 30 s).
  std::optional<Json> Call(const std::string& method, Json params, bool in_page = true) {
    Json msg = {{"id", ++id_}, {"method", method}, {"params", std::move(params)}};
    if (in_page) msg["sessionId"] = session_;
    std::string text = msg.dump() + '\0';
    if (write(to_, text.data(), text.size()) != static_cast<ssize_t>(text.size())) return {};
    auto deadline = Clock::now() + std::chrono::seconds(30);
    for (;;) {
      size_t nul;
      while ((nul = buffer_.find('\0')) != std::string::npos) {
        Json reply = Json::parse(buffer_.substr(0, nul), nullptr, false);
        buffer_.erase(0, nul + 1);
        if (reply.is_object() && reply.value("id", -1) == id_) {
          if (reply.contains("error")) {
            last_error_ = reply["error"].dump();
            return {};
          }
          return reply["result"];
        }
      }
      int left = static_cast<int>(
          std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count());
      if (left <= 0) return {};
      pollfd p{from_, POLLIN, 0};
      if (poll(&p, 1, left) <= 0) return {};
      char chunk[65536];
      ssize_t n = read(from_, chunk, sizeof chunk);
      if (n <= 0) return {};
      buffer_.append(chunk, static_cast<size_t>(n));
    }
  }

  // Evaluates `expression` in the page; its value (JSON), or null.
  Json Eval(const std::string& expression) {
    auto r = Call("Runtime.evaluate", {{"expression", expression}, {"returnByValue", true}});
    if (!r || !r->contains("result")) return nullptr;
    return (*r)["result"].value("value", Json());
  }

  bool Navigate(const std::string& url) {
    return Call("Page.navigate", {{"url", url}}).has_value();
  }

  bool Screenshot(const std::string& path) {
    auto r = Call("Page.captureScreenshot", {{"format", "png"}, {"captureBeyondViewport", true}});
    if (!r || !(*r)["data"].is_string()) return false;
    std::ofstream out(path, std::ios::binary);
    out << Base64Decode((*r)["data"].get<std::string>());
    return static_cast<bool>(out);
  }

  const std::string& last_error() const { return last_error_; }

 private:
  pid_t pid_ = -1;
  int to_ = -1, from_ = -1;
  int id_ = 0;
  std::string buffer_, session_, last_error_;
};

std::string ServiceYaml(const std::string& note) {
  return "apiVersion: v1\nkind: Service\nmetadata:\n  name: web\n  annotations:\n"
         "    example.com/note: '" +
         note +
         "'\nspec:\n  selector:\n    app: web\n  ports:\n    - name: http\n      port: 8080\n"
         "      targetPort: 8080\n";
}

class BrowserTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto chromium = FindChromium();
    if (!chromium) GTEST_SKIP() << "no chromium (scripts/install-deps.sh installs it)";
    chromium_ = *chromium;
    artifacts_ = fs::path(BALLAST_BINARY).parent_path() / "test-artifacts";
    fs::create_directories(artifacts_);
  }

  // `ballast serve` with manual sync, as a user who looks before syncing runs it.
  bool StartServe(const std::vector<std::string>& extra = {}) {
    std::vector<std::string> args = {"--sync", "manual"};
    args.insert(args.end(), extra.begin(), extra.end());
    return cluster_.StartServe(args);
  }
  Json Get(const std::string& path) { return cluster_.Get(path); }

  bool SeenRevision(const std::string& sha) {
    return WaitFor([&] { return Get("/api/v1/status").value("revision", "") == sha; },
                   std::chrono::seconds(60));
  }

  // Chromium with a fresh profile, logging to chromium_log().
  ::testing::AssertionResult StartBrowser(Browser& b) {
    if (b.Start(chromium_, cluster_.dir() / "profile", chromium_log())) {
      return ::testing::AssertionSuccess();
    }
    return ::testing::AssertionFailure() << b.last_error() << ReadFile(chromium_log());
  }
  std::string chromium_log() const { return cluster_.dir() / "chromium.log"; }

  // Waits until the page's script runs and follows the server (data-live="yes").
  bool PageIsLive(Browser& b) {
    return PageSays(b, "document.body && document.body.getAttribute('data-live') === 'yes'");
  }

  // Waits until `expression` evaluates to true in the page.
  bool PageSays(Browser& b, const std::string& expression) {
    return WaitFor([&] { return b.Eval(expression) == Json(true); }, std::chrono::seconds(60));
  }

  std::string chromium_;
  fs::path artifacts_;
  reconciler::testing::Cluster cluster_;
};

TEST_F(BrowserTest, PlanSyncRollBackAndNothingHostileRuns) {
  const std::string hostile =
      "<img src=x onerror=\"window.__pwned=1\"><script>window.__pwned=2</script>";
  std::string first = cluster_.Commit({{"web.yaml", ServiceYaml("first")}},
                                      "web: first <script>window.__pwned=3</script>");
  ASSERT_TRUE(StartServe()) << ReadFile(cluster_.serve_log());
  ASSERT_TRUE(SeenRevision(first)) << ReadFile(cluster_.serve_log());
  net::HttpClient client;
  ASSERT_TRUE(client.PostJson(cluster_.url() + "/api/v1/sync", Json::object()).ok());
  ASSERT_TRUE(WaitFor([&] { return Get("/api/v1/status").value("sync", "") == "Synced"; },
                      std::chrono::seconds(60)));

  std::string second =
      cluster_.Commit({{"web.yaml", ServiceYaml("second-value-42 " + hostile)}}, "web: " + hostile);
  ASSERT_TRUE(SeenRevision(second));

  Browser browser;
  ASSERT_TRUE(StartBrowser(browser));
  ASSERT_TRUE(browser.Navigate(cluster_.url() + "/"));
  ASSERT_TRUE(PageIsLive(browser)) << ReadFile(chromium_log());

  // The planned diff shows the new value as an added line, and the status is OutOfSync.
  EXPECT_TRUE(PageSays(browser,
                       "Array.from(document.querySelectorAll('#plan pre.diff span.da'))"
                       ".some(e => e.textContent.includes('second-value-42'))"));
  EXPECT_TRUE(PageSays(browser,
                       "document.querySelector('#summary').textContent"
                       ".includes('OutOfSync')"));
  // Hostile text is shown as text and ran nowhere.
  EXPECT_TRUE(PageSays(browser,
                       "document.querySelector('#summary .msg').textContent"
                       ".includes('<script>window.__pwned=2</script>')"));
  EXPECT_EQ(browser.Eval("typeof window.__pwned"), Json("undefined"));
  EXPECT_EQ(browser.Eval("document.querySelectorAll('img').length"), Json(0));
  EXPECT_EQ(browser.Eval("document.querySelectorAll('script').length"), Json(1));

  // Sync: applied, Synced, the new revision.
  ASSERT_EQ(browser.Eval("document.querySelector('button[data-action=sync]').click(), true"),
            Json(true));
  EXPECT_TRUE(PageSays(browser,
                       "document.querySelector('#summary').textContent"
                       ".includes('Synced') && document.querySelector("
                       "'#summary code.applied').textContent === '" +
                           second.substr(0, 12) + "'"))
      << browser.Eval("document.querySelector('#summary').textContent").dump();
  EXPECT_TRUE(PageSays(browser, "document.querySelectorAll('#history tbody tr').length === 2"));
  EXPECT_TRUE(browser.Screenshot((artifacts_ / "statuspage-synced.png").string()));

  // Roll back to the first entry: the reconciler commits a restore to git.
  ASSERT_EQ(browser.Eval("(() => { const b = Array.from(document.querySelectorAll("
                         "'#history button[data-action=rollback]')).find(b => "
                         "b.getAttribute('data-id') === '1'); if (!b) return false; b.click(); "
                         "return true; })()"),
            Json(true));
  std::string head;
  EXPECT_TRUE(WaitFor(
      [&] {
        head = git::testing::Sh("git rev-parse main", cluster_.farm().BarePath("manifests")).output;
        return head.rfind(second, 0) != 0 && !head.empty();
      },
      std::chrono::seconds(60)))
      << browser.Eval("document.getElementById('flash').textContent").dump();
  auto shown = git::testing::Sh("git show main:web.yaml", cluster_.farm().BarePath("manifests"));
  EXPECT_NE(shown.output.find("first"), std::string::npos) << shown.output;
  EXPECT_EQ(browser.Eval("typeof window.__pwned"), Json("undefined"));
  browser.Screenshot((artifacts_ / "statuspage-rolled-back.png").string());
}

TEST_F(BrowserTest, PageIsReadableWithoutJavaScript) {
  std::string first =
      cluster_.Commit({{"web.yaml", ServiceYaml("plain-note")}}, "web: <b>bold?</b>");
  ASSERT_TRUE(StartServe()) << ReadFile(cluster_.serve_log());
  ASSERT_TRUE(SeenRevision(first));
  // JavaScript disabled in the page: what a reader without the script gets.
  Browser browser;
  ASSERT_TRUE(StartBrowser(browser));
  ASSERT_TRUE(browser.Call("Emulation.setScriptExecutionDisabled", {{"value", true}}));
  ASSERT_TRUE(browser.Navigate(cluster_.url() + "/"));
  std::string html;
  ASSERT_TRUE(WaitFor(
      [&] {
        auto doc = browser.Call("DOM.getDocument", {{"depth", 1}});
        if (!doc) return false;
        auto outer = browser.Call("DOM.getOuterHTML", {{"nodeId", (*doc)["root"]["nodeId"]}});
        html = outer ? (*outer).value("outerHTML", "") : "";
        return html.find("<h2>History</h2>") != std::string::npos;
      },
      std::chrono::seconds(60)))
      << html;
  EXPECT_NE(html.find("plain-note"), std::string::npos) << html;
  EXPECT_NE(html.find("web: &lt;b&gt;bold?&lt;/b&gt;"), std::string::npos);
  EXPECT_EQ(html.find("<b>bold?</b>"), std::string::npos);
  // The script did not run, yet the sections are there.
  EXPECT_NE(html.find("static page; the script keeps it live"), std::string::npos);
  EXPECT_NE(html.find("Planned changes"), std::string::npos);
  browser.Call("Emulation.setScriptExecutionDisabled", {{"value", false}});
  browser.Screenshot((artifacts_ / "statuspage-no-javascript.png").string());
}

TEST_F(BrowserTest, SyncAsksForTheTokenAndKeepsItForTheTab) {
  {
    std::ofstream token(cluster_.dir() / "token");
    token << "s3cret-token\n";
  }
  std::string first = cluster_.Commit({{"web.yaml", ServiceYaml("guarded")}}, "web: guarded");
  // Anyone may read here (--anonymous viewer); syncing needs the admin's token.
  ASSERT_TRUE(StartServe({"--token-file", cluster_.dir() / "token", "--anonymous", "viewer"}))
      << ReadFile(cluster_.serve_log());
  ASSERT_TRUE(SeenRevision(first)) << ReadFile(cluster_.serve_log());
  Browser browser;
  ASSERT_TRUE(StartBrowser(browser));
  ASSERT_TRUE(browser.Call("Page.enable", Json::object()));
  ASSERT_TRUE(browser.Navigate(cluster_.url() + "/"));
  ASSERT_TRUE(PageIsLive(browser));
  EXPECT_EQ(browser.Eval("setTimeout(() => document.querySelector('button[data-action=sync]')"
                         ".click(), 0), true"),
            Json(true));
  // The server answers 401; the page asks for the token: answer the prompt.
  EXPECT_TRUE(WaitFor(
      [&] {
        return browser
            .Call("Page.handleJavaScriptDialog", {{"accept", true}, {"promptText", "s3cret-token"}})
            .has_value();
      },
      std::chrono::seconds(30)))
      << browser.last_error();
  EXPECT_TRUE(
      PageSays(browser, "document.querySelector('#summary code.applied').textContent === '" +
                            first.substr(0, 12) + "'"))
      << browser.Eval("document.getElementById('flash').textContent").dump();
  EXPECT_EQ(browser.Eval("sessionStorage.getItem('ballast-token')"), Json("s3cret-token"));
}

TEST_F(BrowserTest, ABadCommitShowsFileLineAndColumn) {
  std::string good = cluster_.Commit({{"web.yaml", ServiceYaml("ok")}}, "web: ok");
  ASSERT_TRUE(StartServe()) << ReadFile(cluster_.serve_log());
  ASSERT_TRUE(SeenRevision(good));
  Browser browser;
  ASSERT_TRUE(StartBrowser(browser));
  ASSERT_TRUE(browser.Navigate(cluster_.url() + "/"));
  ASSERT_TRUE(PageIsLive(browser));
  std::string bad = ServiceYaml("ok");
  bad.replace(bad.find("port: 8080"), 10, "port: eighty");
  cluster_.Commit({{"web.yaml", bad}}, "web: broken port");
  // The page updates by itself: the error with file:line:column, the status in red.
  EXPECT_TRUE(PageSays(browser,
                       "(() => { const e = document.querySelector('#errors li'); "
                       "return !!e && /^web\\.yaml:\\d+:\\d+: /.test(e.textContent) && "
                       "e.textContent.includes('port'); })()"))
      << browser.Eval("document.getElementById('errors').textContent").dump();
  EXPECT_TRUE(PageSays(browser, "document.querySelector('#summary .badge.bad') !== null"));
  browser.Screenshot((artifacts_ / "statuspage-bad-commit.png").string());
}

}  // namespace
}  // namespace ballast
