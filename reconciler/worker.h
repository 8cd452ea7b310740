#pragma once

// One thread that runs posted jobs in order: the reconciler's blocking git work (polls,
// history appends, rollback pushes) runs here, off the loop thread.
//
// Thread-safe. The owner calls Stop() (or destroys it): jobs already posted still run (a history
// append must not be lost to a clean shutdown), later Post()s are refused, and the thread is
// joined. The queue is bounded: a Post beyond `max_queued` is refused, and says so.

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

  // Queues `job`; false when stopping or when the queue is full (the job is dropped).
  bool Post(std::function<void()> job);
  // Runs what is queued, refuses new jobs, joins the thread. Idempotent. REQUIRES: not called
  // from a job.
  void Stop();

 private:
  void Main();

  const size_t max_queued_;
  std::mutex mu_;  // guards the fields below
  std::condition_variable cv_;
  std::deque<std::function<void()>> jobs_;
  bool stopping_ = false;
  std::thread thread_;  // last: started once the fields above exist
};

}  // namespace ballast::reconciler
