#include <cstdio>

#include "cli/commands.h"
#include "cli/flags.h"

#ifndef BALLAST_VERSION
#define BALLAST_VERSION "0.0.0"
#endif

namespace ballast::cli {

int RunVersion(const Args& args) {
  FlagSet flags("ballast version", "Print the version of this ballast binary.");
  if (auto rc = ParseOrExit(flags, args)) return *rc;
  std::printf("ballast %s\n", BALLAST_VERSION);
  return 0;
}

}  // namespace ballast::cli
