#pragma once

// Every `ballast` subcommand: one function each, in its own cmd_<name>.cc. main.cc holds the
// table that names them. Each returns the process exit code: 0 success, 1 failure, 2 usage error.

#include <string>
#include <vector>

namespace ballast::cli {

using Args = std::vector<std::string>;  // the arguments after the subcommand name

struct Command {
  const char* name;
  const char* summary;  // one line for `ballast --help`
  int (*run)(const Args& args);
};

int RunVersion(const Args& args);
int RunValidate(const Args& args);
int RunPlan(const Args& args);
int RunDev(const Args& args);
int RunServe(const Args& args);
int RunStatus(const Args& args);
int RunSync(const Args& args);
int RunHistory(const Args& args);
int RunRollback(const Args& args);
int RunUnpin(const Args& args);
int RunGet(const Args& args);
int RunLogs(const Args& args);
int RunAgent(const Args& args);
int RunDemoApp(const Args& args);
int RunHealthcheck(const Args& args);

// All registered commands, in the order `ballast --help` lists them.
const std::vector<Command>& Commands();

}  // namespace ballast::cli
