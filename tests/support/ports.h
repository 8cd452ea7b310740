#pragma once

// Loopback ports for tests, chosen at run time and never hard-coded: bind port 0, read it back.

#include <chrono>
#include <string>

namespace ballast::testing {

// A TCP port that was free a moment ago on `address` (bound to port 0, read back, closed), for a
// server the test has another process start, or for a port nothing listens on. Another process
// may take it in between; 0 when nothing could be bound.
int PickFreePort(const std::string& address = "127.0.0.1");

// A TCP connection to 127.0.0.1:port (a blocking socket the caller closes), or -1, for tests
// that speak raw bytes to a server.
int ConnectLoopback(int port);

// Polls until something accepts TCP connections on 127.0.0.1:port, up to `timeout`.
bool WaitForPort(int port, std::chrono::seconds timeout);

// A TCP socket listening on `address` that never accepts: connections complete in the kernel's
// backlog and then never see a byte, as with a hung server. It holds the port until destroyed,
// so it also stands for "the port is taken by another process".
class SilentListener {
 public:
  // `port` 0: any free one.
  explicit SilentListener(const std::string& address = "127.0.0.1", int port = 0);
  ~SilentListener();
  SilentListener(const SilentListener&) = delete;
  SilentListener& operator=(const SilentListener&) = delete;

  // False when the socket could not be bound or put to listen (port() is then 0).
  bool ok() const { return port_ > 0; }
  int port() const { return port_; }
  // "address:port", e.g. "127.0.0.1:41234".
  std::string host_port() const { return address_ + ":" + std::to_string(port_); }

 private:
  std::string address_;
  int fd_ = -1;
  int port_ = 0;
};

}  // namespace ballast::testing
