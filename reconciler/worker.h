#pragma once

// One thread that runs posted jobs in order: the reconciler's blocking git work (polls,
// history appends, rollback pushes) runs here, off the loop thread.
//
// Thread-safe. The owner calls Stop() (or destroys it): jobs already posted still run (a history
// append must not be lost to a clean shutdown), later Post()s are refused, and the thread is
// joined. Work a request asks for is bounded: a PostRequest while `max_queued` jobs wait is
// refused, and says so (the caller answers 503; refusing the newest keeps every job already
// promised to someone). The reconciler's own jobs (polls, history appends) are never refused
// while running: they are few by construction, and a history entry must not be dropped.

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>

namespace ballast::reconciler {

class Worker {
 public:
  explicit Worker(size_t max_queued = 10000);
  ~Worker();  // Stop()
  Worker(const Worker&) = delete;
  Worker& operator=(const Worker&) = delete;

  // Queues `job`; false only when stopping (the job is dropped).
  bool Post(std::function<void()> job);
  // Queues a request's `job`; false when stopping or while `max_queued` jobs wait.
  bool PostRequest(std::function<void()> job);
  // Runs what is queued, refuses new jobs, joins the thread. Idempotent. REQUIRES: not called
  // from a job.
  void Stop();

 private:
  void Main();
  bool Queue(std::function<void()> job, bool bounded);

  const size_t max_queued_;
  std::mutex mu_;  // guards the fields below
  std::condition_variable cv_;
  std::deque<std::function<void()>> jobs_;
  bool stopping_ = false;
  std::thread thread_;  // last: started once the fields above exist
};

}  // namespace ballast::reconciler
