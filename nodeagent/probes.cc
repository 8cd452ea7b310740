#include "nodeagent/probes.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>

#include "net/client.h"

namespace ballast::nodeagent {

int32_t ResolveProbePort(const model::IntOrString& port, const ProbeContext& context) {
  if (port.is_int()) {
    auto it = context.ports_by_number.find(static_cast<int32_t>(port.int_value()));
    return it != context.ports_by_number.end() ? it->second
                                               : static_cast<int32_t>(port.int_value());
  }
  auto it = context.ports_by_name.find(port.str_value());
  return it != context.ports_by_name.end() ? it->second : 0;
}

namespace {

ProbeOutcome TcpProbe(const std::string& host, int32_t port, int timeout_ms) {
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  if (::inet_pton(AF_INET, host.c_str(), &addr.sin_addr) != 1) {
    return {false, "tcpSocket: host " + host + " is not an IPv4 address"};
  }
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return {false, std::string("tcpSocket: socket: ") + std::strerror(errno)};
  std::string where = host + ":" + std::to_string(port);
  int rc = ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  if (rc != 0 && errno != EINPROGRESS) {
    std::string m = "dial tcp " + where + ": " + std::strerror(errno);
    ::close(fd);
    return {false, m};
  }
  if (rc != 0) {
    pollfd p{fd, POLLOUT, 0};
    int n;
    do {
      n = ::poll(&p, 1, timeout_ms);
    } while (n < 0 && errno == EINTR);
    if (n <= 0) {
      ::close(fd);
      return {false, "dial tcp " + where + ": i/o timeout"};
    }
    int err = 0;
    socklen_t len = sizeof err;
    ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
    if (err != 0) {
      ::close(fd);
      return {false, "dial tcp " + where + ": " + std::strerror(err)};
    }
  }
  ::close(fd);
  return {true, ""};
}

}  // namespace

ProbeOutcome RunProbe(const model::Probe& probe, const ProbeContext& context) {
  int timeout_ms = std::max(1, probe.timeout_seconds) * 1000;
  if (probe.tcp_socket) {
    int32_t port = ResolveProbePort(probe.tcp_socket->port, context);
    if (port <= 0) return {false, "tcpSocket: unknown port " + probe.tcp_socket->port.ToString()};
    std::string host = probe.tcp_socket->host.empty() ? context.host : probe.tcp_socket->host;
    return TcpProbe(host, port, timeout_ms);
  }
  if (probe.http_get) {
    const auto& g = *probe.http_get;
    int32_t port = ResolveProbePort(g.port, context);
    if (port <= 0) return {false, "httpGet: unknown port " + g.port.ToString()};
    std::string host = g.host.empty() ? context.host : g.host;
    std::string scheme = g.scheme == "HTTPS" ? "https" : "http";
    std::string path = g.path.empty() ? "/" : g.path;
    if (path[0] != '/') path = "/" + path;
    net::ClientOptions options;
    options.timeout = std::chrono::milliseconds(timeout_ms);
    options.max_body_bytes = 64 * 1024;  // Kubernetes reads at most 10 KiB; bodies are ignored
    options.user_agent = "ballast-probe";
    net::HttpClient client(options);
    net::ClientRequest req;
    req.url = scheme + "://" + host + ":" + std::to_string(port) + path;
    for (const auto& h : g.http_headers) req.headers.emplace_back(h.name, h.value);
    auto res = client.Do(req);
    if (!res.ok()) {
      if (res.status().code() == StatusCode::kResourceExhausted) return {true, ""};
      return {false, "httpGet " + req.url + ": " + res.status().message()};
    }
    if (res->status >= 200 && res->status < 400) return {true, ""};
    return {false, "HTTP probe failed with statuscode: " + std::to_string(res->status)};
  }
  if (probe.exec) {
    if (probe.exec->command.empty()) return {false, "exec: empty command"};
    if (context.exec) return context.exec(probe.exec->command, timeout_ms);
    return RunExecProbe(context.exec_base, probe.exec->command, timeout_ms);
  }
  return {false, "probe has no handler (httpGet, tcpSocket or exec)"};
}

ProbeOutcome RunExecProbe(const ProcessSpec& base, const std::vector<std::string>& command,
                          int timeout_ms) {
  if (command.empty()) return {false, "exec: empty command"};
  ProcessSpec spec = base;
  std::string path_env;
  for (const auto& e : spec.env) {
    if (e.rfind("PATH=", 0) == 0) path_env = e.substr(5);
  }
  auto exe = ResolveExecutable(command[0], path_env);
  if (!exe.ok()) return {false, "exec: " + exe.status().message()};
  spec.executable = *exe;
  spec.argv = command;
  auto code = RunWithTimeout(spec, timeout_ms);
  if (!code.ok()) return {false, "exec: " + code.status().message()};
  if (*code == 0) return {true, ""};
  return {false, "exec: command exited with " + std::to_string(*code)};
}

WorkerPool::WorkerPool(int threads) {
  for (int i = 0; i < threads; ++i) threads_.emplace_back([this] { Loop(); });
}

WorkerPool::~WorkerPool() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  for (auto& t : threads_) t.join();
}

void WorkerPool::Submit(std::function<void()> job) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    jobs_.push_back(std::move(job));
  }
  cv_.notify_one();
}

void WorkerPool::Loop() {
  while (true) {
    std::function<void()> job;
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [&] { return stopping_ || !jobs_.empty(); });
      if (stopping_) return;  // queued probes are dropped: their results would be stale
      job = std::move(jobs_.front());
      jobs_.pop_front();
    }
    job();
  }
}

}  // namespace ballast::nodeagent
