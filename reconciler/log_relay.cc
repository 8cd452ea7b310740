#include "reconciler/log_relay.h"

namespace ballast::reconciler {

LogRelay::LogRelay(net::ClientOptions client_options, size_t threads, size_t max_queued)
    : max_queued_(max_queued), client_(std::move(client_options)) {
  for (size_t i = 0; i < threads; ++i) threads_.emplace_back([this] { Main(); });
}

LogRelay::~LogRelay() { Stop(); }

void LogRelay::Fetch(std::string url, std::string token, net::Responder responder) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!stopping_ && jobs_.size() < max_queued_) {
      jobs_.push_back(Job{std::move(url), std::move(token), responder});
      cv_.notify_one();
      return;
    }
  }
  responder.Send(net::ErrorResponse(503, "too many log requests in flight; try again"));
}

void LogRelay::Stop() {
  std::deque<Job> left;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_ && threads_.empty()) return;
    stopping_ = true;
    left.swap(jobs_);
  }
  cv_.notify_all();
  client_.Cancel();
  for (auto& t : threads_) {
    if (t.joinable()) t.join();
  }
  threads_.clear();
  for (auto& job : left) job.responder.Send(net::ErrorResponse(503, "server stopping"));
}

void LogRelay::Main() {
  for (;;) {
    Job job;
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [&] { return stopping_ || !jobs_.empty(); });
      if (stopping_) return;
      job = std::move(jobs_.front());
      jobs_.pop_front();
    }
    net::ClientRequest req;
    req.url = job.url;
    if (!job.token.empty()) req.headers.emplace_back("Authorization", "Bearer " + job.token);
    auto r = client_.Do(req);
    if (!r.ok()) {
      job.responder.Send(net::StatusResponse(r.status()));
      continue;
    }
    // Served from the reconciler's origin: whatever the agent says it is, it goes out as plain
    // text (and the server adds nosniff), so a pod's output can never run as a page here.
    net::Response resp;
    resp.status = r->status;
    resp.body = std::move(r->body);
    resp.content_type = "text/plain; charset=utf-8";
    job.responder.Send(std::move(resp));
  }
}

}  // namespace ballast::reconciler
