// The `ballast` binary: one executable, subcommands that wire the modules together.

#include <cstdio>
#include <cstring>
#include <string>

#include "cli/commands.h"

namespace ballast::cli {

const std::vector<Command>& Commands() {
  // Keep in the order a user meets them; each entry's function lives in cmd_<name>.cc.
  static const std::vector<Command> kCommands = {
      {"dev", "the playground: a manifest repo, the reconciler and agents in one command", RunDev},
      {"validate", "parse and validate manifests offline (file:line:col errors)", RunValidate},
      {"plan", "show what applying manifests would change (offline, --against STATE.json)",
       RunPlan},
      {"serve", "run the reconciler: poll git, plan, roll out through agents, serve the API",
       RunServe},
      {"status", "show a running reconciler's sync, health, errors and pin", RunStatus},
      {"sync", "apply the current source revision (--dry-run: show the plan)", RunSync},
      {"history", "list applied syncs, newest first", RunHistory},
      {"rollback", "restore history entry ID through git (--pin: hold it instead)", RunRollback},
      {"unpin", "release a pinned history entry; auto-sync resumes", RunUnpin},
      {"get", "list deployments, services, pods or nodes", RunGet},
      {"logs", "print a pod's log (-f: follow)", RunLogs},
      {"agent", "run the node agent: pods as processes, service proxy, status reports", RunAgent},
      {"demo-app", "serve a small demo HTTP app (for examples and tests)", RunDemoApp},
      {"healthcheck", "exit 0 when a reconciler answers /healthz (for container health checks)",
       RunHealthcheck},
      {"version", "print the version, commit, build and library versions", RunVersion},
  };
  return kCommands;
}

namespace {

void PrintHelp(FILE* out) {
  std::fputs(
      "ballast: a GitOps reconciler with its own lightweight cluster.\n\n"
      "Usage: ballast <command> [flags]\n\nCommands:\n",
      out);
  for (const auto& c : Commands()) {
    std::fprintf(out, "  %-12s %s\n", c.name, c.summary);
  }
  std::fputs("\nRun 'ballast <command> --help' for a command's flags.\n", out);
}

}  // namespace
}  // namespace ballast::cli

int main(int argc, char** argv) {
  using namespace ballast::cli;
  if (argc < 2) {
    PrintHelp(stderr);
    return 2;
  }
  std::string name = argv[1];
  if (name == "--help" || name == "-h" || name == "help") {
    PrintHelp(stdout);
    return 0;
  }
  if (name == "--version") name = "version";
  for (const auto& c : Commands()) {
    if (name == c.name) {
      return c.run(Args(argv + 2, argv + argc));
    }
  }
  std::fprintf(stderr, "ballast: unknown command \"%s\"\n\n", name.c_str());
  PrintHelp(stderr);
  return 2;
}
