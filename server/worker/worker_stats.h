// WorkerStats: where a session's worker spent its time, per call id.
//
// For each call id: how many requests came, how many the client waited for
// (a reply was asked for), and how long the executor spent serving them;
// plus how long the executor sat idle waiting for the next request. A
// GPU-bound program keeps the executor busy in launches and leaves the
// synchronising calls (cuCtxSynchronize, cuStreamSynchronize, event waits)
// as the only long ones; a step whose idle time is large is starved by the
// client or the link, not by the GPU.
//
// On when the worker logs at info (RGPU_LOG=info) or RGPU_STATS is set;
// logged at session end, and with RGPU_STATS=sync also after every
// cuCtxSynchronize (the interval since the previous one, as the client's
// CallStats does). Used from the executor thread only.
#pragma once

#include <chrono>
#include <cstdint>

namespace rgpu::worker {

class WorkerStats {
 public:
  WorkerStats();
  bool enabled() const { return enabled_; }
  // Marks the moments around one request: before waiting for it, when it
  // arrived, when it was served.
  void Waiting() { if (enabled_) mark_ = Clock::now(); }
  void Arrived() {
    if (!enabled_) return;
    auto now = Clock::now();
    idle_ns_ += Ns(now - mark_);
    mark_ = now;
  }
  void Served(uint64_t session_id, uint16_t call, bool replied) {
    if (!enabled_) return;
    int i = call < kSlots ? call : kSlots - 1;
    ++count_[i];
    if (replied) ++replied_[i];
    busy_ns_[i] += Ns(Clock::now() - mark_);
    if (per_sync_ && call == kCtxSynchronizeCall) Log(session_id, "since the last cuCtxSynchronize");
  }
  // Logs the counts since the last Log and starts a new interval.
  void Log(uint64_t session_id, const char* what);

 private:
  using Clock = std::chrono::steady_clock;
  static uint64_t Ns(Clock::duration d) {
    return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(d).count());
  }
  static constexpr int kSlots = 256;  // call ids above this share the last slot
  static const uint16_t kCtxSynchronizeCall;
  const bool enabled_, per_sync_;
  Clock::time_point start_, mark_;
  uint64_t idle_ns_ = 0;
  uint64_t count_[kSlots] = {}, replied_[kSlots] = {}, busy_ns_[kSlots] = {};
};

}  // namespace rgpu::worker
