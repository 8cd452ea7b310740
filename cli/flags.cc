#include "cli/flags.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/stat.h>

#include <cstdio>
#include <cstdlib>

#include "log/log.h"
#include "net/http.h"

namespace ballast::cli {

void FlagSet::AddString(const std::string& name, const std::string& short_name,
                        const std::string& default_value, const std::string& help) {
  flags_.push_back({name, short_name, default_value, default_value, help, false, false});
}

void FlagSet::AddBool(const std::string& name, const std::string& short_name,
                      const std::string& help) {
  flags_.push_back({name, short_name, "", "", help, true, false});
}

FlagSet::Flag* FlagSet::Find(const std::string& token) {
  for (auto& f : flags_) {
    if (token == "--" + f.name || (!f.short_name.empty() && token == "-" + f.short_name)) {
      return &f;
    }
  }
  return nullptr;
}

bool FlagSet::Parse(const std::vector<std::string>& args) {
  bool only_positional = false;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (only_positional || a.size() < 2 || a[0] != '-') {
      positional_.push_back(a);
      continue;
    }
    if (a == "--") {
      only_positional = true;
      continue;
    }
    if (a == "--help" || a == "-h") {
      help_requested_ = true;
      continue;
    }
    std::string name = a;
    std::optional<std::string> inline_value;
    if (auto eq = a.find('='); eq != std::string::npos && a.rfind("--", 0) == 0) {
      name = a.substr(0, eq);
      inline_value = a.substr(eq + 1);
    }
    Flag* f = Find(name);
    if (f == nullptr) {
      error_ = "unknown flag: " + name;
      return false;
    }
    f->set = true;
    if (f->is_bool) {
      if (inline_value && *inline_value != "true" && *inline_value != "false") {
        error_ = "flag " + name + " takes no value (or =true/=false)";
        return false;
      }
      f->value = inline_value.value_or("true");
      continue;
    }
    if (inline_value) {
      f->value = *inline_value;
    } else if (i + 1 < args.size()) {
      f->value = args[++i];
    } else {
      error_ = "flag " + name + " needs a value";
      return false;
    }
  }
  return true;
}

const std::string& FlagSet::Get(const std::string& name) const {
  for (const auto& f : flags_) {
    if (f.name == name) return f.value;
  }
  static const std::string kEmpty;
  return kEmpty;
}

bool FlagSet::GetBool(const std::string& name) const { return Get(name) == "true"; }

bool FlagSet::IsSet(const std::string& name) const {
  for (const auto& f : flags_) {
    if (f.name == name) return f.set;
  }
  return false;
}

std::string FlagSet::Help() const {
  std::string out = "Usage: " + usage_ + "\n\n" + description_ + "\n";
  if (!flags_.empty()) out += "\nFlags:\n";
  for (const auto& f : flags_) {
    std::string left = "  ";
    left += f.short_name.empty() ? "    " : "-" + f.short_name + ", ";
    left += "--" + f.name;
    if (!f.is_bool) left += " VALUE";
    if (left.size() < 30)
      left.resize(30, ' ');
    else
      left += "  ";
    out += left + f.help;
    if (!f.is_bool && !f.default_value.empty()) out += " (default " + f.default_value + ")";
    out += "\n";
  }
  out += "  -h, --help                  show this help\n";
  return out;
}

std::optional<int> ParseOrExit(FlagSet& flags, const std::vector<std::string>& args) {
  if (!flags.Parse(args)) {
    std::fprintf(stderr, "error: %s\n\n%s", flags.error().c_str(), flags.Help().c_str());
    return 2;
  }
  if (flags.help_requested()) {
    std::fputs(flags.Help().c_str(), stdout);
    return 0;
  }
  return std::nullopt;
}

Result<std::string> SecretFromFlag(const FlagSet& flags, const std::string& name) {
  const std::string& path = flags.Get(name);
  if (path.empty()) return std::string();
  auto secret = net::ReadTokenFile(path);
  if (!secret.ok())
    return Status(secret.status().code(), "--" + name + ": " + secret.status().message());
  return secret;
}

bool IsLoopbackHost(const std::string& host) {
  if (host == "localhost" || host == "::1") return true;
  in_addr v4{};
  return ::inet_pton(AF_INET, host.c_str(), &v4) == 1 && (ntohl(v4.s_addr) >> 24) == 127;
}

void WarnIfOthersCanRead(const std::string& path, const std::string& flag) {
  struct stat st {};
  if (::stat(path.c_str(), &st) == 0 && (st.st_mode & S_IRWXO) != 0) {
    LogEvent(LogLevel::kWarn, "secret_file_readable",
             {{"flag", flag},
              {"path", path},
              {"why", "every local user may read it"},
              {"fix", "chmod o= " + path}});
  }
}

void AddServerFlag(FlagSet& flags, const std::string& help) {
  const char* env = std::getenv("BALLAST_SERVER");
  flags.AddString("server", "", env != nullptr && *env ? env : "http://127.0.0.1:7070", help);
}

Result<std::string> ClientToken(const FlagSet& flags) {
  if (!flags.Get("token-file").empty()) return SecretFromFlag(flags, "token-file");
  const char* env = std::getenv("BALLAST_TOKEN");
  return std::string(env != nullptr ? env : "");
}

}  // namespace ballast::cli
