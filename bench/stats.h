// Small statistics helpers for rgpu bench: percentiles and medians of samples.
// Pure functions; an empty input gives 0.
#pragma once

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstddef>
#include <vector>

namespace rgpu::bench {

using BenchClock = std::chrono::steady_clock;

inline double SecondsSince(BenchClock::time_point t0) {
  return std::chrono::duration<double>(BenchClock::now() - t0).count();
}

// The q-quantile (0 < q <= 1) by the nearest-rank method: the smallest sample
// with at least q of all samples at or below it. Sorts `samples`.
inline double Percentile(std::vector<double>& samples, double q) {
  if (samples.empty()) return 0;
  std::sort(samples.begin(), samples.end());
  auto rank = static_cast<size_t>(std::ceil(q * static_cast<double>(samples.size())));
  rank = std::clamp<size_t>(rank, 1, samples.size());
  return samples[rank - 1];
}

inline double Median(std::vector<double> samples) { return Percentile(samples, 0.5); }

struct Latency {
  double p50_us = 0;
  double p99_us = 0;
  size_t n = 0;
};

// p50/p99 of samples given in seconds, reported in microseconds.
inline Latency LatencyOf(std::vector<double> seconds) {
  Latency l;
  l.n = seconds.size();
  l.p50_us = Percentile(seconds, 0.50) * 1e6;
  l.p99_us = Percentile(seconds, 0.99) * 1e6;
  return l;
}

}  // namespace rgpu::bench
