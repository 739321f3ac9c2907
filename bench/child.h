// The measuring side of rgpu bench: what `rgpu bench --child MODE ...` runs.
//
// Each measurement runs in a fresh child process so that the native driver,
// rgpu's client and the TCP references never share a process, a thread pool
// or a warmed cache. A child writes its results on stdout as JSON lines
// (report.h) and diagnostics on stderr.
//
//   native  dlopen the real driver (`driver`) and run the selected driver
//           measures (driver_bench.h).
//   rgpu    the same with rgpu's client library (`driver`), connected to
//           `server`; when delay_ms > 0, rate_mbit > 0 or `count` is set,
//           through an in-process DelayProxy (delay_ms each way, rate_mbit
//           per direction), whose byte counters the query measure reads.
//   tcp     the raw TCP references (tcp_reference.h) over loopback, through
//           a DelayProxy when delay_ms > 0: "pingpong" (request_bytes /
//           reply_bytes) and "stream" (copy size).
//   torch-native, torch-rgpu
//           PyTorch measures "first,gpt,cnn" in python3 processes, locally
//           or through rgpu (torch_child.h).
//
// Sizes come from `quick` (the CI smoke run: everything small) and from the
// delay (fewer synchronous round trips on a slow link); see SizesFor().
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "bench/driver_bench.h"

namespace rgpu::bench {

struct ChildOptions {
  std::string mode;      // native | rgpu | tcp | torch-native | torch-rgpu
  std::string driver;    // native, rgpu: the library to dlopen
  std::string server;    // rgpu: HOST:PORT
  double delay_ms = 0;   // rgpu, tcp: one-way delay of the in-process proxy
  bool count = false;    // rgpu: go through a (delay_ms) proxy even at 0 and count bytes
  std::string measures;  // comma-separated: sync,queries,launch,copy | pingpong,stream
  bool quick = false;
  size_t request_bytes = 24, reply_bytes = 20;  // tcp pingpong
  double rate_mbit = 0;  // rgpu: bandwidth cap of the in-process proxy; 0 = none
  // native, rgpu copy measure: patterns (ParseCopyPatterns), the size in MiB
  // (0: SizesFor's), and the host memory kinds ("pageable,pinned").
  std::string copy_patterns = "fill";
  int copy_mib = 0;
  std::string copy_kinds = "pageable,pinned";
};

// The [7] compression copies: size (64 MiB, 4 MiB with --quick), and the
// link they cross (1 Gbit/s per direction).
uint64_t CompressionCopyBytes(bool quick);
inline constexpr double kCompressionRateMbit = 1000;

// Iteration counts and sizes for a run (shared by parent and child so that
// the parent can label its rows).
DriverBenchOptions SizesFor(bool quick, double delay_ms);

// Runs the child; returns its exit status: 0 when every selected measure
// produced a result line (some may be errors), 1 when the driver or link
// could not be set up (an "init" error line says why), 2 on bad options.
int RunBenchChild(const ChildOptions& options);

}  // namespace rgpu::bench
