#include <cstdio>

#include "cli/build_info.h"
#include "cli/commands.h"
#include "cli/flags.h"

namespace ballast::cli {

int RunVersion(const Args& args) {
  FlagSet flags("ballast version",
                "Print the version of this ballast binary, the commit it was built from, its build "
                "type and compiler, and the versions of the libraries it runs with.");
  flags.AddString("output", "o", "text", "text or json");
  if (auto rc = ParseOrExit(flags, args)) return *rc;
  const std::string& output = flags.Get("output");
  const BuildInfo info = ThisBuild();
  if (output == "json") {
    std::printf("%s\n", BuildInfoJson(info).dump(2).c_str());
  } else if (output == "text") {
    std::fputs(BuildInfoText(info).c_str(), stdout);
  } else {
    std::fprintf(stderr, "ballast version: -o must be text or json, not \"%s\"\n", output.c_str());
    return 2;
  }
  return 0;
}

}  // namespace ballast::cli
