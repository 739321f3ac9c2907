// CoarseClock: a std::chrono clock over CLOCK_MONOTONIC_COARSE. A read is a
// few nanoseconds (the kernel's last tick, no timestamp counter read through
// a paravirtual clock, which costs tens of nanoseconds on the virtual
// machines GPU hosts often are); its resolution is the kernel tick (1 to
// 4 ms). For timestamps taken on every request and compared with timeouts of
// a second or more (idle detach), never for measuring.
#pragma once

#include <time.h>

#include <chrono>

namespace rgpu {

struct CoarseClock {
  using duration = std::chrono::nanoseconds;
  using rep = duration::rep;
  using period = duration::period;
  using time_point = std::chrono::time_point<CoarseClock>;
  static constexpr bool is_steady = true;
  static time_point now() noexcept {
    timespec ts;
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    return time_point(duration(static_cast<rep>(ts.tv_sec) * 1000000000 + ts.tv_nsec));
  }
};

}  // namespace rgpu
