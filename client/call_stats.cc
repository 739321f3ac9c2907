#include "client/call_stats.h"

#include <cstdlib>
#include <cstring>
#include <string>

#include "common/log.h"
#include "proto/calls.gen.h"

namespace rgpu::client {

CallStats* CallStats::Get() {
  static CallStats* stats = []() -> CallStats* {
    const char* e = getenv("RGPU_STATS");
    if (e == nullptr || *e == 0 || strcmp(e, "0") == 0) return nullptr;
    // Never freed: the exit handler and late threads may still use it.
    auto* s = new CallStats(strcmp(e, "sync") == 0);
    atexit([] { Get()->LogInterval("at exit"); });
    return s;
  }();
  return stats;
}

void CallStats::Sync(uint16_t call, uint64_t wait_ns) {
  int i = call < kSlots ? call : kSlots - 1;
  sync_[i].fetch_add(1, std::memory_order_relaxed);
  wait_ns_[i].fetch_add(wait_ns, std::memory_order_relaxed);
}

void CallStats::Async(uint16_t call) {
  async_[call < kSlots ? call : kSlots - 1].fetch_add(1, std::memory_order_relaxed);
}

CallStats::Counters CallStats::Read(int slot) const {
  return {sync_[slot].load(std::memory_order_relaxed), wait_ns_[slot].load(std::memory_order_relaxed),
          async_[slot].load(std::memory_order_relaxed)};
}

void CallStats::LogInterval(const char* why) {
  std::lock_guard<std::mutex> lock(mark_mu_);
  Counters total, delta[kSlots];
  for (int i = 0; i < kSlots; ++i) {
    Counters now = Read(i);
    delta[i] = {now.sync - marks_[i].sync, now.wait_ns - marks_[i].wait_ns, now.async - marks_[i].async};
    marks_[i] = now;
    total.sync += delta[i].sync;
    total.wait_ns += delta[i].wait_ns;
    total.async += delta[i].async;
  }
  // Asked for with RGPU_STATS: shown at the default log level.
  RGPU_LOG_WARN("stats: requests %s: %llu round trips (%.3f ms waited), %llu async", why,
                (unsigned long long)total.sync, total.wait_ns / 1e6, (unsigned long long)total.async);
  for (int i = 0; i < kSlots; ++i) {
    const Counters& d = delta[i];
    if (d.sync == 0 && d.async == 0) continue;
    const proto::CallInfo* c = proto::FindCall(static_cast<uint16_t>(i));
    std::string name = c ? c->name : "call " + std::to_string(i);
    RGPU_LOG_WARN("stats:   %-26s sync %8llu  waited %10.3f ms  async %9llu", name.c_str(),
                  (unsigned long long)d.sync, d.wait_ns / 1e6, (unsigned long long)d.async);
  }
}

}  // namespace rgpu::client
