#include "failpoint/failpoint.h"

#include <signal.h>
#include <unistd.h>

#include <charconv>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <string>
#include <thread>

namespace ballast::failpoint {
namespace {

struct Action {
  enum Kind { kCrash, kError, kSleep, kCrashAfter } kind = kError;
  int sleep_ms = 0;
  size_t bytes = 0;  // kCrashAfter
};

// "a=crash;b=sleep(10)" -> {a: crash, b: sleep 10 ms}. A term that is not understood is said on
// stderr and left out: a test that names a point wrongly sees it at once.
std::map<std::string, Action, std::less<>> Parse(const char* text) {
  std::map<std::string, Action, std::less<>> out;
  if (text == nullptr) return out;
  std::string_view rest = text;
  while (!rest.empty()) {
    const size_t end = rest.find(';');
    const std::string_view term = rest.substr(0, end);
    rest = end == std::string_view::npos ? std::string_view() : rest.substr(end + 1);
    if (term.empty()) continue;
    const size_t eq = term.find('=');
    const std::string_view name = term.substr(0, eq);
    const std::string_view what = eq == std::string_view::npos ? "" : term.substr(eq + 1);
    Action a;
    if (what == "crash") {
      a.kind = Action::kCrash;
    } else if (what == "error") {
      a.kind = Action::kError;
    } else if (what.size() > 7 && what.substr(0, 6) == "sleep(" && what.back() == ')') {
      a.kind = Action::kSleep;
      a.sleep_ms = std::atoi(std::string(what.substr(6, what.size() - 7)).c_str());
    } else if (what.size() > 13 && what.substr(0, 12) == "crash-after(" && what.back() == ')' &&
               std::from_chars(what.data() + 12, what.data() + what.size() - 1, a.bytes).ptr ==
                   what.data() + what.size() - 1) {
      a.kind = Action::kCrashAfter;
    } else {
      std::fprintf(stderr,
                   "BALLAST_FAILPOINTS: \"%.*s\" is not "
                   "NAME=crash|error|sleep(MS)|crash-after(BYTES)\n",
                   static_cast<int>(term.size()), term.data());
      continue;
    }
    out[std::string(name)] = a;
  }
  return out;
}

std::map<std::string, Action, std::less<>>& MutablePoints() {
  static auto points = Parse(std::getenv("BALLAST_FAILPOINTS"));
  return points;
}

const std::map<std::string, Action, std::less<>>& Points() { return MutablePoints(); }

}  // namespace

Status Hit(std::string_view name) {
  const auto& points = Points();
  if (points.empty()) return Status::Ok();
  const auto it = points.find(name);
  if (it == points.end()) return Status::Ok();
  switch (it->second.kind) {
    case Action::kCrash:
      Crash(name);
    case Action::kCrashAfter:  // the writer asks CrashAfterBytes
      return Status::Ok();
    case Action::kError:
      return Unavailable("failpoint " + std::string(name));
    case Action::kSleep:
      std::this_thread::sleep_for(std::chrono::milliseconds(it->second.sleep_ms));
      return Status::Ok();
  }
  return Status::Ok();
}

std::optional<size_t> CrashAfterBytes(std::string_view name) {
  const auto& points = Points();
  if (points.empty()) return std::nullopt;
  const auto it = points.find(name);
  if (it == points.end() || it->second.kind != Action::kCrashAfter) return std::nullopt;
  return it->second.bytes;
}

void Crash(std::string_view name) {
  std::fprintf(stderr, "failpoint %.*s: crash\n", static_cast<int>(name.size()), name.data());
  std::fflush(stderr);
  ::kill(::getpid(), SIGKILL);
  ::_exit(137);  // not reached
}

void ReloadForTesting() { MutablePoints() = Parse(std::getenv("BALLAST_FAILPOINTS")); }

}  // namespace ballast::failpoint
