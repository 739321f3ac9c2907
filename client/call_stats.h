// CallStats: what this process asked of the GPU server, per call id.
//
// Counts every request the connection sends: synchronous ones (the calling
// thread waits for the reply: a round trip) with the time spent waiting, and
// asynchronous ones (queued, never waited for). This is the measure behind
// DESIGN.md rule 6 ("only what must wait, waits"): a training step that
// makes N round trips per step shows N here.
//
// Off unless RGPU_STATS is set (read once):
//   RGPU_STATS=1     one table on stderr at process exit;
//   RGPU_STATS=sync  also a table at every cuCtxSynchronize, of the requests
//                    since the previous one (torch.cuda.synchronize() around
//                    a timed loop then shows exactly what the loop sent).
// Recording is a few relaxed atomic adds; the table is written with the
// logger (stderr, never stdout). Thread-safe.
#pragma once

#include <atomic>
#include <cstdint>
#include <mutex>

namespace rgpu::client {

class CallStats {
 public:
  // nullptr when RGPU_STATS is unset: callers skip recording entirely.
  static CallStats* Get();

  void Sync(uint16_t call, uint64_t wait_ns);
  void Async(uint16_t call);
  // Logs the requests since the last mark (or since the start) and starts a
  // new interval. `why` names the moment, e.g. "at exit".
  void LogInterval(const char* why);
  bool per_sync() const { return per_sync_; }

 private:
  static constexpr int kSlots = 256;  // call ids above this share the last slot
  struct Counters {
    uint64_t sync = 0, wait_ns = 0, async = 0;
  };
  explicit CallStats(bool per_sync) : per_sync_(per_sync) {}
  Counters Read(int slot) const;

  const bool per_sync_;
  std::atomic<uint64_t> sync_[kSlots] = {};
  std::atomic<uint64_t> wait_ns_[kSlots] = {};
  std::atomic<uint64_t> async_[kSlots] = {};
  std::mutex mark_mu_;
  Counters marks_[kSlots];  // GUARDED_BY(mark_mu_): values at the last LogInterval
};

}  // namespace rgpu::client
