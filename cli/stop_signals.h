#pragma once

// How the long-running subcommands (serve, agent, demo-app) stop: SIGTERM or SIGINT, taken by
// the main thread with sigwait() while the worker threads never see them.

#include <pthread.h>
#include <signal.h>

namespace ballast::cli {

// Blocks SIGTERM and SIGINT in the calling thread (and so in every thread it starts afterwards)
// and ignores SIGPIPE (a peer that hangs up is an error return, not a death). Returns the set to
// sigwait() on. REQUIRES: called before any thread is started.
inline sigset_t BlockStopSignals() {
  sigset_t stop;
  sigemptyset(&stop);
  sigaddset(&stop, SIGTERM);
  sigaddset(&stop, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop, nullptr);
  signal(SIGPIPE, SIG_IGN);
  return stop;
}

}  // namespace ballast::cli
