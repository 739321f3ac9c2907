// SpinUntil: waits briefly for a condition by polling before the caller
// falls back to sleeping. A round trip on a fast link takes tens of
// microseconds; spinning that long saves waking a sleeping thread (several
// microseconds each time) on both ends of it. Bounded in time, so an idle
// peer costs at most one short burst of CPU per wait.
//
// The bound comes from RGPU_SPIN_US (default 50 on machines with 8 or more
// CPUs, 0 below: with few cores the spinner takes the CPU that the thread it
// waits for needs, and waiting gets slower, not faster).
#pragma once

#include <chrono>
#include <cstdlib>
#include <thread>

namespace rgpu {

inline int SpinMicros() {
  static const int us = [] {
    const char* e = getenv("RGPU_SPIN_US");
    int v = e ? atoi(e) : (std::thread::hardware_concurrency() >= 8 ? 50 : 0);
    return v < 0 ? 0 : v > 10000 ? 10000 : v;
  }();
  return us;
}

// Returns true if `ready()` became true within the spin budget.
template <class F>
bool SpinUntil(F ready) {
  int us = SpinMicros();
  if (us == 0) return ready();
  auto until = std::chrono::steady_clock::now() + std::chrono::microseconds(us);
  for (;;) {
    for (int i = 0; i < 64; ++i) {
      if (ready()) return true;
#if defined(__x86_64__)
      __builtin_ia32_pause();
#endif
    }
    if (std::chrono::steady_clock::now() >= until) return ready();
  }
}

}  // namespace rgpu
