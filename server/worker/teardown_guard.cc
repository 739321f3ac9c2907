#include "server/worker/teardown_guard.h"

#include <unistd.h>

#include "common/log.h"

namespace rgpu::worker {

TeardownGuard::TeardownGuard(uint64_t session_id, std::chrono::milliseconds grace,
                             std::function<void()> on_expiry)
    : session_id_(session_id), grace_(grace), on_expiry_(std::move(on_expiry)) {}

TeardownGuard::~TeardownGuard() {
  Finished();
  if (thread_.joinable()) thread_.join();
}

void TeardownGuard::Arm(const char* why) {
  std::lock_guard<std::mutex> lock(mu_);
  if (armed_ || finished_) return;
  armed_ = true;
  why_ = why;
  // The thread exists only for sessions that end: a worker serves one
  // session, so this is at most one thread per worker, started late.
  thread_ = std::thread([this] { Wait(); });
}

void TeardownGuard::Finished() {
  std::lock_guard<std::mutex> lock(mu_);
  finished_ = true;
  cv_.notify_all();
}

void TeardownGuard::Wait() {
  std::unique_lock<std::mutex> lock(mu_);
  if (cv_.wait_for(lock, grace_, [this] { return finished_; })) return;
  RGPU_LOG_ERROR("session %llu: %s %.1f s ago and the session's GPU work has not ended (a stream waiting "
                 "for a value nobody writes, or a kernel that never finishes?); ending this worker without "
                 "its wipe: the driver reclaims the context, and the GPU is scrubbed before its next session",
                 (unsigned long long)session_id_, why_, grace_.count() / 1e3);
  lock.unlock();
  if (on_expiry_) {
    on_expiry_();
    return;
  }
  _exit(kStuckExitCode);
}

}  // namespace rgpu::worker
