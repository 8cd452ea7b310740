#pragma once

// The one way a synchronous caller waits for one asynchronous Asio step (connect, handshake,
// write, read) on a private io_context: start the operation with a handler that records how it
// completed, then run the context by the caller's policy until it has.

#include <boost/system/error_code.hpp>
#include <optional>

namespace ballast::net {

// Calls `start(handler)`, then `run(done)` (which runs the io_context until `done` or gives
// up: deadline, cancellation). Returns the error the operation completed with, or nullopt when
// `run` gave up before it completed.
template <class Start, class Run>
std::optional<boost::system::error_code> Await(Start&& start, Run&& run) {
  bool done = false;
  boost::system::error_code ec;
  start([&](boost::system::error_code e, auto&&...) {
    ec = e;
    done = true;
  });
  run(static_cast<const bool&>(done));
  if (!done) return std::nullopt;
  return ec;
}

}  // namespace ballast::net
