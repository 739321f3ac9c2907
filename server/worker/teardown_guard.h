// TeardownGuard: ends the worker process when its session cannot end.
//
// Once the client has gone (or the worker ended the session), the worker
// wipes the session's memory, tells the supervisor kReleased and exits; only
// then does the GPU go to the next session. A program can leave its GPU
// busy for ever, though: a stream waiting on a value nobody writes
// (cuStreamWaitValue32), a kernel spinning on a flag, a host-side wait the
// client no longer answers. The executor is then stuck inside the driver,
// nothing tears the session down, and the card would stay leased until the
// server stops. So the worker arms this guard when the session ends; if
// `Finished` has not come within the grace time, the guard logs why and
// ends the process (_exit): the kernel driver reclaims the context and its
// memory, the supervisor reaps the worker, sees that the session ended
// without its wipe, and has the card scrubbed before anyone else gets it
// (control.h kScrub).
//
// Thread-safe: Arm may be called from the link's reader and the executor.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>

namespace rgpu::worker {

class TeardownGuard {
 public:
  // `on_expiry` runs on the guard's thread when the grace time passes
  // without Finished; the default logs and calls _exit(kStuckExitCode).
  TeardownGuard(uint64_t session_id, std::chrono::milliseconds grace, std::function<void()> on_expiry = {});
  ~TeardownGuard();  // stops the countdown and joins the thread
  TeardownGuard(const TeardownGuard&) = delete;
  TeardownGuard& operator=(const TeardownGuard&) = delete;

  // Starts the countdown (the first call only); `why` is kept for the log.
  void Arm(const char* why);
  // The session's teardown is done: no countdown.
  void Finished();

  static constexpr int kStuckExitCode = 3;

 private:
  void Wait();

  const uint64_t session_id_;
  const std::chrono::milliseconds grace_;
  std::function<void()> on_expiry_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool armed_ = false;     // GUARDED_BY(mu_)
  bool finished_ = false;  // GUARDED_BY(mu_)
  const char* why_ = "";   // GUARDED_BY(mu_)
  std::thread thread_;
};

}  // namespace rgpu::worker
