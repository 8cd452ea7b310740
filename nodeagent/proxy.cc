#include "nodeagent/proxy.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <mutex>
#include <optional>
#include <set>
#include <thread>
#include <utility>

namespace ballast::nodeagent {
namespace {

constexpr size_t kBufferBytes = 64 * 1024;
constexpr int kMaxConnectAttempts = 3;
// After accept fails for want of descriptors or memory, the listeners are not polled for this
// long: they stay readable, and polling them at once would fail again, in a loop.
constexpr auto kAcceptBackoff = std::chrono::milliseconds(100);

bool ParseEndpoint(const std::string& text, sockaddr_in* out) {
  auto colon = text.rfind(':');
  if (colon == std::string::npos) return false;
  std::memset(out, 0, sizeof *out);
  out->sin_family = AF_INET;
  int port = std::atoi(text.c_str() + colon + 1);
  if (port <= 0 || port > 65535) return false;
  out->sin_port = htons(static_cast<uint16_t>(port));
  return ::inet_pton(AF_INET, text.substr(0, colon).c_str(), &out->sin_addr) == 1;
}

}  // namespace

struct ServiceProxy::Impl {
  enum class Kind { kListener, kClient, kBackend, kWake };
  // One direction's bytes in flight.
  struct Buffer {
    std::unique_ptr<char[]> data = std::make_unique<char[]>(kBufferBytes);
    size_t begin = 0, end = 0;
    bool empty() const { return begin == end; }
  };
  struct Conn;
  // A listening address: IPv4 address (network byte order) and port.
  struct ListenKey {
    uint32_t addr = 0;
    int32_t port = 0;
    std::string ToString() const {
      char text[INET_ADDRSTRLEN] = {};
      in_addr a{};
      a.s_addr = addr;
      ::inet_ntop(AF_INET, &a, text, sizeof text);
      return std::string(text) + ":" + std::to_string(port);
    }
    friend auto operator<=>(const ListenKey&, const ListenKey&) = default;
  };
  struct Handle {
    Kind kind;
    ListenKey key{};       // listener: what it listens on
    Conn* conn = nullptr;  // client/backend
  };
  struct Listener {
    int fd = -1;
    Handle handle{Kind::kListener};
    std::vector<sockaddr_in> endpoints;
    size_t next = 0;
  };
  struct Conn {
    int client = -1, backend = -1;
    Handle client_handle{Kind::kClient}, backend_handle{Kind::kBackend};
    bool connecting = true;
    int attempts = 0;
    std::vector<sockaddr_in> candidates;  // endpoints to try, in order
    Buffer up, down;                      // client->backend, backend->client
    bool client_eof = false, backend_eof = false;
    bool up_shut = false, down_shut = false;
    bool dead = false;
    uint32_t client_events = 0, backend_events = EPOLLOUT;  // as registered with epoll
  };

  Impl(std::string a, ProxyOptions o) : address(std::move(a)), options(o) {}

  std::string address;
  ProxyOptions options;
  int epfd = -1;
  int wake_fd = -1;
  Handle wake_handle{Kind::kWake};
  std::thread thread;
  bool running = false;

  mutable std::mutex mu;  // guards pending_version, requested, has_pending, services_changed,
                          // errors, listening*, report
  int64_t pending_version = 0;
  std::vector<agentapi::DesiredService> requested;  // the last Update's services
  bool has_pending = false;
  bool services_changed = false;  // `requested` not applied yet
  DrainReport report;
  bool stop = false;
  std::vector<std::string> errors;
  std::vector<int32_t> listening;
  std::vector<std::string> listening_addresses;

  std::atomic<uint64_t> rejected{0};
  std::atomic<uint64_t> accept_failures{0};

  // Proxy thread only.
  std::map<ListenKey, Listener> listeners;
  std::set<Conn*> conns;
  DrainTracker drain;
  size_t forwarding = 0;  // conns not closed yet: what max_connections caps
  // Set while the listeners are not polled (accept failed for want of descriptors or memory).
  std::optional<std::chrono::steady_clock::time_point> accept_paused_until;

  void Loop();
  // Makes the listeners what `services` want (Wanted), and publishes errors and ports.
  void Apply(const std::vector<agentapi::DesiredService>& services);
  // What to listen on, each with its endpoints; `node_addr` is `address` parsed.
  std::map<ListenKey, std::vector<sockaddr_in>> Wanted(
      const std::vector<agentapi::DesiredService>& services, in_addr node_addr) const;
  // Starts listening on `key`; false (an error in `errs`) when it cannot.
  bool Listen(const ListenKey& key, const std::vector<sockaddr_in>& endpoints, in_addr node_addr,
              std::vector<std::string>& errs);
  void Accept(Listener& l);
  // Stops polling every listener for kAcceptBackoff; ResumeAccepting polls them again.
  void PauseAccepting();
  void ResumeAccepting();
  // The epoll_wait timeout: 1 s, or until accepting resumes.
  int PollTimeoutMs() const;
  bool ConnectNext(Conn* c);
  // Closes the connection's backend socket, if any.
  void CloseBackend(Conn* c);
  // Publishes the drain report after an update or closed connections.
  void PublishDrain(int64_t applied_version, bool applied);
  void OnEvent(Handle* h, uint32_t events);
  // Moves bytes client->backend (up) and/or backend->client (down).
  void Pump(Conn* c, bool up, bool down);
  void Interest(Conn* c);
  void Close(Conn* c);
};

ServiceProxy::ServiceProxy(std::string address, ProxyOptions options)
    : impl_(std::make_unique<Impl>(std::move(address), options)) {}

ServiceProxy::~ServiceProxy() { Stop(); }

Status ServiceProxy::Start() {
  impl_->epfd = ::epoll_create1(EPOLL_CLOEXEC);
  impl_->wake_fd = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (impl_->epfd < 0 || impl_->wake_fd < 0)
    return Internal(std::string("epoll: ") + std::strerror(errno));
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.ptr = &impl_->wake_handle;
  ::epoll_ctl(impl_->epfd, EPOLL_CTL_ADD, impl_->wake_fd, &ev);
  impl_->running = true;
  impl_->thread = std::thread([this] { impl_->Loop(); });
  return Status::Ok();
}

void ServiceProxy::Stop() {
  if (!impl_->running) return;
  {
    std::lock_guard<std::mutex> lock(impl_->mu);
    impl_->stop = true;
  }
  uint64_t one = 1;
  (void)!::write(impl_->wake_fd, &one, sizeof one);
  impl_->thread.join();
  impl_->running = false;
  for (auto* c : impl_->conns) {
    if (c->client >= 0) ::close(c->client);
    if (c->backend >= 0) ::close(c->backend);
    delete c;
  }
  impl_->conns.clear();
  for (auto& [key, l] : impl_->listeners) {
    if (l.fd >= 0) ::close(l.fd);
  }
  impl_->listeners.clear();
  ::close(impl_->epfd);
  ::close(impl_->wake_fd);
}

void ServiceProxy::Update(const std::vector<agentapi::DesiredService>& services, int64_t version) {
  {
    std::lock_guard<std::mutex> lock(impl_->mu);
    // Every version goes through the proxy thread, in order, so the version reported is never
    // ahead of what is in place (nor goes back); only changed services are applied again.
    if (services != impl_->requested) {
      impl_->requested = services;
      impl_->services_changed = true;
    }
    impl_->pending_version = version;
    impl_->has_pending = true;
  }
  if (impl_->wake_fd >= 0) {
    uint64_t one = 1;
    (void)!::write(impl_->wake_fd, &one, sizeof one);
  }
}

std::vector<std::string> ServiceProxy::Errors() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return impl_->errors;
}

std::vector<int32_t> ServiceProxy::ListeningPorts() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return impl_->listening;
}

std::vector<std::string> ServiceProxy::ListeningAddresses() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return impl_->listening_addresses;
}

ServiceProxy::DrainReport ServiceProxy::drain_report() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return impl_->report;
}

ProxyCounters ServiceProxy::counters() const {
  return ProxyCounters{impl_->rejected.load(), impl_->accept_failures.load()};
}

void ServiceProxy::Impl::Loop() {
  epoll_event events[256];
  while (true) {
    {
      std::vector<agentapi::DesiredService> update;
      bool apply = false, changed = false;
      int64_t version = 0;
      {
        std::lock_guard<std::mutex> lock(mu);
        if (stop) return;
        if (has_pending) {
          if (services_changed) update = requested;
          version = pending_version;
          changed = services_changed;
          has_pending = services_changed = false;
          apply = true;
        }
      }
      if (changed) Apply(update);
      PublishDrain(version, apply);
    }
    int n = ::epoll_wait(epfd, events, 256, PollTimeoutMs());
    for (int i = 0; i < n; ++i) {
      auto* h = static_cast<Handle*>(events[i].data.ptr);
      if (h->kind == Kind::kWake) {
        uint64_t v;
        (void)!::read(wake_fd, &v, sizeof v);
        continue;
      }
      if (h->conn != nullptr && h->conn->dead) continue;
      OnEvent(h, events[i].events);
    }
    for (auto it = conns.begin(); it != conns.end();) {
      if ((*it)->dead) {
        delete *it;
        it = conns.erase(it);
      } else {
        ++it;
      }
    }
    if (accept_paused_until && std::chrono::steady_clock::now() >= *accept_paused_until) {
      ResumeAccepting();
    }
  }
}

int ServiceProxy::Impl::PollTimeoutMs() const {
  if (!accept_paused_until) return 1000;
  auto left = std::chrono::ceil<std::chrono::milliseconds>(*accept_paused_until -
                                                           std::chrono::steady_clock::now());
  return static_cast<int>(std::clamp<int64_t>(left.count(), 0, 1000));
}

void ServiceProxy::Impl::PauseAccepting() {
  ++accept_failures;
  accept_paused_until = std::chrono::steady_clock::now() + kAcceptBackoff;
  for (auto& [key, l] : listeners) {
    epoll_event ev{};
    ev.events = 0;
    ev.data.ptr = &l.handle;
    ::epoll_ctl(epfd, EPOLL_CTL_MOD, l.fd, &ev);
  }
}

void ServiceProxy::Impl::ResumeAccepting() {
  accept_paused_until.reset();
  for (auto& [key, l] : listeners) {
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.ptr = &l.handle;
    ::epoll_ctl(epfd, EPOLL_CTL_MOD, l.fd, &ev);
  }
}

std::map<ServiceProxy::Impl::ListenKey, std::vector<sockaddr_in>> ServiceProxy::Impl::Wanted(
    const std::vector<agentapi::DesiredService>& services, in_addr node_addr) const {
  // Each Service's cluster IP at each of its ports, with its own endpoints; the node's address
  // at each port and nodePort, for the first Service by namespace/name that claims it (several
  // Services on one port would otherwise mix their endpoints).
  std::map<ListenKey, std::vector<sockaddr_in>> wanted;
  // port -> (namespace, name) -> endpoints, in namespace/name order
  std::map<int32_t, std::map<std::pair<std::string, std::string>, std::vector<sockaddr_in>>>
      node_claims;
  for (const auto& s : services) {
    in_addr cluster_addr{};
    const bool has_cluster_ip = !s.cluster_ip.empty() && s.cluster_ip != address &&
                                ::inet_pton(AF_INET, s.cluster_ip.c_str(), &cluster_addr) == 1;
    const std::pair<std::string, std::string> key{s.namespace_, s.name};
    for (const auto& p : s.ports) {
      if (p.protocol != "TCP" && !p.protocol.empty()) continue;
      std::vector<sockaddr_in> eps;
      for (const auto& e : p.endpoints) {
        sockaddr_in a;
        if (ParseEndpoint(e, &a)) eps.push_back(a);
      }
      if (has_cluster_ip && p.port > 0) {
        auto& list = wanted[ListenKey{cluster_addr.s_addr, p.port}];
        list.insert(list.end(), eps.begin(), eps.end());
      }
      for (int32_t port : {p.port, p.node_port}) {
        if (port <= 0) continue;
        auto& list = node_claims[port][key];
        list.insert(list.end(), eps.begin(), eps.end());
      }
    }
  }
  for (auto& [port, claims] : node_claims) {
    wanted[ListenKey{node_addr.s_addr, port}] = std::move(claims.begin()->second);
  }
  return wanted;
}

bool ServiceProxy::Impl::Listen(const ListenKey& key, const std::vector<sockaddr_in>& endpoints,
                                in_addr node_addr, std::vector<std::string>& errs) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    errs.push_back(key.ToString() + ": " + std::strerror(errno));
    return false;
  }
  int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (key.addr != node_addr.s_addr) {
    // Every agent listens on every cluster IP; agents sharing a machine (`ballast dev`, tests)
    // share the listener, and the kernel spreads connections over them. They are told the
    // same endpoints, so any of them serves a connection right.
    ::setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
  }
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(key.port));
  addr.sin_addr.s_addr = key.addr;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 || ::listen(fd, 1024) != 0) {
    errs.push_back(key.ToString() + ": " + std::strerror(errno));
    ::close(fd);
    return false;
  }
  Listener& l = listeners[key];
  l.fd = fd;
  l.handle.key = key;
  l.endpoints = endpoints;
  epoll_event ev{};
  ev.events = accept_paused_until ? 0u : static_cast<uint32_t>(EPOLLIN);
  ev.data.ptr = &l.handle;
  ::epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev);
  return true;
}

void ServiceProxy::Impl::Apply(const std::vector<agentapi::DesiredService>& services) {
  in_addr node_addr{};
  ::inet_pton(AF_INET, address.c_str(), &node_addr);
  const std::map<ListenKey, std::vector<sockaddr_in>> wanted = Wanted(services, node_addr);
  std::vector<std::string> errs;
  for (auto it = listeners.begin(); it != listeners.end();) {
    auto w = wanted.find(it->first);
    if (w == wanted.end() || w->second.empty()) {
      // No ready endpoint: stop listening so that connections are refused at once.
      ::epoll_ctl(epfd, EPOLL_CTL_DEL, it->second.fd, nullptr);
      ::close(it->second.fd);
      it = listeners.erase(it);
    } else {
      ++it;
    }
  }
  for (const auto& [key, eps] : wanted) {
    if (eps.empty()) continue;
    auto it = listeners.find(key);
    if (it == listeners.end()) {
      Listen(key, eps, node_addr, errs);
    } else if (it->second.endpoints.size() != eps.size() ||
               std::memcmp(it->second.endpoints.data(), eps.data(),
                           eps.size() * sizeof(sockaddr_in)) != 0) {
      it->second.endpoints = eps;
    }
  }
  std::set<EndpointKey> listed;
  for (const auto& [key, eps] : wanted) {
    for (const auto& e : eps) listed.insert({e.sin_addr.s_addr, ntohs(e.sin_port)});
  }
  drain.SetListed(std::move(listed));
  std::lock_guard<std::mutex> lock(mu);
  errors = std::move(errs);
  listening.clear();
  listening_addresses.clear();
  for (const auto& [key, l] : listeners) {
    if (key.addr == node_addr.s_addr) listening.push_back(key.port);
    listening_addresses.push_back(key.ToString());
  }
}

void ServiceProxy::Impl::Accept(Listener& l) {
  for (int i = 0; i < 64; ++i) {
    int fd = ::accept4(l.fd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
        PauseAccepting();
      }
      return;  // EAGAIN: none left; others (ECONNABORTED, ...) took their connection with them
    }
    if (forwarding >= std::max<size_t>(1, options.max_connections)) {
      // Over the cap: reset at once, so the client fails fast and nothing piles up.
      ++rejected;
      linger lg{1, 0};
      ::setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
      ::close(fd);
      continue;
    }
    ++forwarding;
    int one = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    auto* c = new Conn();
    c->client = fd;
    c->client_handle.conn = c;
    c->backend_handle.conn = c;
    size_t n = l.endpoints.size();
    for (size_t k = 0; k < n && static_cast<int>(k) < kMaxConnectAttempts; ++k) {
      c->candidates.push_back(l.endpoints[(l.next + k) % n]);
    }
    l.next = (l.next + 1) % std::max<size_t>(1, n);
    conns.insert(c);
    epoll_event ev{};
    ev.events = 0;
    ev.data.ptr = &c->client_handle;
    ::epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev);
    if (!ConnectNext(c)) Close(c);
  }
}

// Starts a connection to the next candidate. False when none is left.
bool ServiceProxy::Impl::ConnectNext(Conn* c) {
  while (c->attempts < static_cast<int>(c->candidates.size())) {
    CloseBackend(c);
    const sockaddr_in& to = c->candidates[c->attempts++];
    // Chosen at accept; since then it may have left the Service (its pod is being stopped):
    // a retry goes to one still listed when there is one.
    if (!drain.Listed({to.sin_addr.s_addr, ntohs(to.sin_port)}) &&
        std::any_of(c->candidates.begin() + c->attempts, c->candidates.end(),
                    [&](const sockaddr_in& e) {
                      return drain.Listed({e.sin_addr.s_addr, ntohs(e.sin_port)});
                    })) {
      continue;
    }
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) return false;
    int one = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    int rc = ::connect(fd, reinterpret_cast<const sockaddr*>(&to), sizeof to);
    if (rc != 0 && errno != EINPROGRESS) {
      ::close(fd);
      continue;
    }
    c->backend = fd;
    drain.Opened({to.sin_addr.s_addr, ntohs(to.sin_port)});
    c->connecting = true;
    c->backend_events = EPOLLOUT;
    epoll_event ev{};
    ev.events = EPOLLOUT;
    ev.data.ptr = &c->backend_handle;
    ::epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev);
    return true;
  }
  return false;
}

void ServiceProxy::Impl::OnEvent(Handle* h, uint32_t events) {
  if (h->kind == Kind::kListener) {
    if (accept_paused_until) return;  // paused by an earlier event of the same batch
    auto it = listeners.find(h->key);
    if (it != listeners.end()) Accept(it->second);
    return;
  }
  Conn* c = h->conn;
  if (h->kind == Kind::kBackend && c->connecting) {
    int err = 0;
    socklen_t len = sizeof err;
    ::getsockopt(c->backend, SOL_SOCKET, SO_ERROR, &err, &len);
    if (err != 0 || (events & (EPOLLERR | EPOLLHUP))) {
      if (!ConnectNext(c)) Close(c);
      return;
    }
    c->connecting = false;
    Pump(c, true, true);
    return;
  }
  constexpr uint32_t kReadable = EPOLLIN | EPOLLHUP | EPOLLERR | EPOLLRDHUP;
  bool client = h->kind == Kind::kClient;
  bool up = client ? (events & kReadable) != 0 : (events & EPOLLOUT) != 0;
  bool down = client ? (events & EPOLLOUT) != 0 : (events & kReadable) != 0;
  Pump(c, up, down);
}

// Moves bytes both ways as far as the sockets allow, then sets the interest for what is left.
void ServiceProxy::Impl::Pump(Conn* c, bool up, bool down) {
  if (c->connecting) return;
  auto flow = [&](int from, int to, Buffer& buf, bool& from_eof, bool& to_shut) -> bool {
    bool drained = false;
    while (true) {
      if (buf.empty() && !from_eof) {
        ssize_t n = ::read(from, buf.data.get(), kBufferBytes);
        if (n > 0) {
          buf.begin = 0;
          buf.end = static_cast<size_t>(n);
          drained = static_cast<size_t>(n) < kBufferBytes;
        } else if (n == 0) {
          from_eof = true;
        } else if (errno == EAGAIN || errno == EINTR) {
          break;
        } else {
          return false;
        }
      }
      if (!buf.empty()) {
        ssize_t n = ::send(to, buf.data.get() + buf.begin, buf.end - buf.begin, MSG_NOSIGNAL);
        if (n > 0) {
          buf.begin += static_cast<size_t>(n);
          // A short read emptied the socket: skip the read that would say EAGAIN; epoll
          // reports the next bytes (or the EOF).
          if (buf.empty() && drained) break;
          continue;
        }
        if (n < 0 && (errno == EAGAIN || errno == EINTR)) break;
        return false;
      }
      if (from_eof) {
        if (!to_shut) {
          ::shutdown(to, SHUT_WR);
          to_shut = true;
        }
        break;
      }
    }
    return true;
  };
  if ((up && !flow(c->client, c->backend, c->up, c->client_eof, c->up_shut)) ||
      (down && !flow(c->backend, c->client, c->down, c->backend_eof, c->down_shut))) {
    Close(c);
    return;
  }
  if (c->up_shut && c->down_shut) {
    Close(c);
    return;
  }
  Interest(c);
}

void ServiceProxy::Impl::Interest(Conn* c) {
  // Only changes reach epoll_ctl: one syscall saved per event in the common case.
  constexpr uint32_t kIn = EPOLLIN, kOut = EPOLLOUT, kNone = 0;
  uint32_t want_client =
      (c->up.empty() && !c->client_eof ? kIn : kNone) | (!c->down.empty() ? kOut : kNone);
  uint32_t want_backend =
      (c->down.empty() && !c->backend_eof ? kIn : kNone) | (!c->up.empty() ? kOut : kNone);
  epoll_event ev{};
  if (want_client != c->client_events) {
    ev.events = want_client;
    ev.data.ptr = &c->client_handle;
    ::epoll_ctl(epfd, EPOLL_CTL_MOD, c->client, &ev);
    c->client_events = want_client;
  }
  if (want_backend != c->backend_events) {
    ev.events = want_backend;
    ev.data.ptr = &c->backend_handle;
    ::epoll_ctl(epfd, EPOLL_CTL_MOD, c->backend, &ev);
    c->backend_events = want_backend;
  }
}

void ServiceProxy::Impl::Close(Conn* c) {
  if (c->dead) return;
  c->dead = true;
  --forwarding;
  if (c->client >= 0) {
    ::epoll_ctl(epfd, EPOLL_CTL_DEL, c->client, nullptr);
    if (c->backend < 0 || c->connecting) {
      // Nothing could serve it: reset instead of a clean close, so the client fails fast.
      linger lg{1, 0};
      ::setsockopt(c->client, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    }
    ::close(c->client);
    c->client = -1;
  }
  CloseBackend(c);
}

void ServiceProxy::Impl::CloseBackend(Conn* c) {
  if (c->backend < 0) return;
  ::epoll_ctl(epfd, EPOLL_CTL_DEL, c->backend, nullptr);
  ::close(c->backend);
  c->backend = -1;
  const sockaddr_in& to = c->candidates[c->attempts - 1];
  drain.Closed({to.sin_addr.s_addr, ntohs(to.sin_port)});
}

void ServiceProxy::Impl::PublishDrain(int64_t applied_version, bool applied) {
  const bool changed = drain.TakeChanged();
  if (!changed && !applied) return;
  std::lock_guard<std::mutex> lock(mu);
  if (applied) report.services_version = applied_version;
  if (changed) {
    report.draining = drain.Draining();
    ++report.generation;
  }
}

}  // namespace ballast::nodeagent
