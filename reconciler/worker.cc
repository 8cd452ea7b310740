#include "reconciler/worker.h"

namespace ballast::reconciler {

Worker::Worker(size_t max_queued) : max_queued_(max_queued), thread_([this] { Main(); }) {}

Worker::~Worker() { Stop(); }

bool Worker::Post(std::function<void()> job) { return Queue(std::move(job), false); }

bool Worker::PostRequest(std::function<void()> job) { return Queue(std::move(job), true); }

bool Worker::Queue(std::function<void()> job, bool bounded) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_ || (bounded && jobs_.size() >= max_queued_)) return false;
    jobs_.push_back(std::move(job));
  }
  cv_.notify_one();
  return true;
}

void Worker::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void Worker::Main() {
  for (;;) {
    std::function<void()> job;
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [&] { return stopping_ || !jobs_.empty(); });
      if (jobs_.empty()) return;  // stopping, and every queued job has run
      job = std::move(jobs_.front());
      jobs_.pop_front();
    }
    job();
  }
}

}  // namespace ballast::reconciler
