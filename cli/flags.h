#pragma once

// A small flag parser shared by the subcommands: `--name value`, `--name=value`, boolean
// `--name`, short aliases, positional arguments, and a generated `--help` text.

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "model/status.h"

namespace ballast::cli {

class FlagSet {
 public:
  FlagSet(std::string usage, std::string description)
      : usage_(std::move(usage)), description_(std::move(description)) {}

  // A flag that takes a value. `short_name` may be empty.
  void AddString(const std::string& name, const std::string& short_name,
                 const std::string& default_value, const std::string& help);
  // A flag that is present or absent.
  void AddBool(const std::string& name, const std::string& short_name, const std::string& help);

  // Parses `args`. Returns false and sets error() on an unknown flag or a missing value.
  // Sets help_requested() for --help / -h.
  bool Parse(const std::vector<std::string>& args);

  const std::string& Get(const std::string& name) const;
  bool GetBool(const std::string& name) const;
  bool IsSet(const std::string& name) const;  // given on the command line
  const std::vector<std::string>& positional() const { return positional_; }
  bool help_requested() const { return help_requested_; }
  const std::string& error() const { return error_; }
  std::string Help() const;

 private:
  struct Flag {
    std::string name, short_name, value, default_value, help;
    bool is_bool = false;
    bool set = false;
  };
  Flag* Find(const std::string& token);

  std::string usage_, description_;
  std::vector<Flag> flags_;
  std::vector<std::string> positional_;
  bool help_requested_ = false;
  std::string error_;
};

// For subcommands: parses, prints help (exit 0) or the error plus usage (exit 2). Returns
// std::nullopt when parsing succeeded and the command should run, else the exit code.
std::optional<int> ParseOrExit(FlagSet& flags, const std::vector<std::string>& args);

// The secret in the file a flag names (--token-file, --webhook-secret-file): its first line,
// trimmed; "" when the flag is not given. The error names the flag and the file.
Result<std::string> SecretFromFlag(const FlagSet& flags, const std::string& name);

// True for a host that only this machine reaches: 127.0.0.0/8, ::1, "localhost".
bool IsLoopbackHost(const std::string& host);

// Logs a warning when the file at `path` (a secret, named by `flag`) can be read by every local
// user. (Group read is how the packaged services are given their secrets: root:ballast 0640.)
void WarnIfOthersCanRead(const std::string& path, const std::string& flag);

// Adds --server: the reconciler's URL, by default $BALLAST_SERVER or http://127.0.0.1:7070.
void AddServerFlag(FlagSet& flags, const std::string& help = "reconciler URL (env BALLAST_SERVER)");

// The bearer token a client command sends: --token-file, else $BALLAST_TOKEN, else none.
Result<std::string> ClientToken(const FlagSet& flags);

}  // namespace ballast::cli
