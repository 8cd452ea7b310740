#pragma once

// How much CPU a process has used, for tests that check a server does not spin (a busy loop on
// EMFILE) without asserting a timing: compare against wall time with a generous margin.

#include <sys/types.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <iterator>
#include <sstream>
#include <string>

namespace ballast::testing {

// CPU time (user + system, all threads) that process `pid` has used, from /proc/PID/stat.
inline std::chrono::duration<double> CpuTime(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  // Fields after the command name "(...)": state is the 3rd field, utime the 14th, stime 15th.
  std::istringstream rest(text.substr(text.rfind(')') + 2));
  std::string field;
  long ticks = 0;
  for (int i = 3; i <= 15 && rest >> field; ++i) {
    if (i == 14 || i == 15) ticks += std::stol(field);
  }
  return std::chrono::duration<double>(static_cast<double>(ticks) / ::sysconf(_SC_CLK_TCK));
}

}  // namespace ballast::testing
