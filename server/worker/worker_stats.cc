#include "server/worker/worker_stats.h"

#include <cstdlib>
#include <cstring>
#include <string>

#include "common/log.h"
#include "proto/calls.gen.h"

namespace rgpu::worker {

namespace {
const char* StatsEnv() {
  const char* e = getenv("RGPU_STATS");
  return e != nullptr && *e != 0 && strcmp(e, "0") != 0 ? e : nullptr;
}
}  // namespace

const uint16_t WorkerStats::kCtxSynchronizeCall = static_cast<uint16_t>(proto::CallId::kCtxSynchronize);

WorkerStats::WorkerStats()
    : enabled_(CurrentLogLevel() >= LogLevel::kInfo || StatsEnv() != nullptr),
      per_sync_(StatsEnv() != nullptr && strcmp(StatsEnv(), "sync") == 0),
      start_(Clock::now()),
      mark_(start_) {}

void WorkerStats::Log(uint64_t session_id, const char* what) {
  if (!enabled_) return;
  uint64_t total = 0, replied = 0, busy = 0;
  for (int i = 0; i < kSlots; ++i) {
    total += count_[i];
    replied += replied_[i];
    busy += busy_ns_[i];
  }
  auto now = Clock::now();
  double life_ms = Ns(now - start_) / 1e6;
  // Info-level lines, or warn when asked for with RGPU_STATS at a quieter level.
  LogLevel level = CurrentLogLevel() >= LogLevel::kInfo ? LogLevel::kInfo : LogLevel::kWarn;
  rgpu::Log(level,
            "session %llu stats %s: %llu requests (%llu answered), executor busy %.3f ms, idle %.3f ms "
            "waiting for requests, %.3f ms in all",
            (unsigned long long)session_id, what, (unsigned long long)total, (unsigned long long)replied,
            busy / 1e6, idle_ns_ / 1e6, life_ms);
  for (int i = 0; i < kSlots; ++i) {
    if (count_[i] == 0) continue;
    const proto::CallInfo* c = proto::FindCall(static_cast<uint16_t>(i));
    std::string name = c ? c->name : "call " + std::to_string(i);
    rgpu::Log(level, "session %llu stats:   %-26s %9llu (%llu answered)  busy %10.3f ms  %8.2f us each",
              (unsigned long long)session_id, name.c_str(), (unsigned long long)count_[i],
              (unsigned long long)replied_[i], busy_ns_[i] / 1e6, busy_ns_[i] / 1e3 / count_[i]);
  }
  // A new interval; the request being served counts as busy time in it.
  start_ = now;
  idle_ns_ = 0;
  for (int i = 0; i < kSlots; ++i) count_[i] = replied_[i] = busy_ns_[i] = 0;
}

}  // namespace rgpu::worker
