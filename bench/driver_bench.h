// The measures rgpu bench takes through a driver library (NVIDIA's or rgpu's
// client, see driver_api.h); the same code measures both, in a child process
// of its own.
//
// It initialises the driver (cuInit, device 0, its primary context made
// current, one stream, the embedded empty kernel loaded), then runs the
// selected measures and emits one result line per value (report.h):
//   info.device, info.driver_version
//   sync.p50_us, sync.p99_us                 empty cuCtxSynchronize, one at a time
//   memgetinfo.p50_us                        cuMemGetInfo, one at a time (answered by the GPU)
//   query.<cuName>.ns                        average over query_calls calls
//   query.bytes_up, query.bytes_down         (with `counter`) bytes the proxy saw
//                                            during all timed query loops
//   sync.request_bytes, sync.reply_bytes     (with `counter`) bytes of one
//                                            cuCtxSynchronize on the wire
//   launch.per_s, launch.enqueue_ns          launch_count empty-kernel launches,
//                                            then one cuCtxSynchronize
//   copy.{h2d,d2h}_{pageable,pinned}.gbps    median of copy_reps copies of
//                                            copy_bytes (after one untimed copy)
//                                            of the fill pattern
//   copy.{h2d,d2h}_{pageable,pinned}.PATTERN.gbps
//                                            the same of another pattern
//                                            (relu, random; CopyPattern)
// A failing measure is emitted as an error under its keys (the CUresult name
// and the call) and the others still run.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "bench/driver_api.h"
#include "bench/report.h"
#include "common/status.h"

namespace rgpu::bench {

class DelayProxy;

// What the host buffers hold when copied: how compressible the data is.
enum class CopyPattern {
  kFill,    // every byte 0x3c (the [4] copies): compresses to nothing
  kRelu,    // float32 ReLU activations: half exactly 0.0f, half positive
            // floats in [1/16, 4) with random mantissas (partly compressible)
  kRandom,  // random bytes: incompressible
};

// "fill", "relu", "random".
const char* CopyPatternName(CopyPattern p);
// A comma-separated list of pattern names, e.g. "relu,random"; fails on an
// empty list or an unknown name.
Result<std::vector<CopyPattern>> ParseCopyPatterns(const std::string& list);
// Writes n bytes of pattern p to dst. Deterministic: the random patterns come
// from a fixed-seed generator, so every run and both ends see the same data.
void FillCopyPattern(CopyPattern p, uint8_t* dst, size_t n);

struct DriverBenchOptions {
  bool sync = false, queries = false, launch = false, copy = false;
  int sync_warmup = 100;
  int sync_iterations = 1000;
  int64_t query_calls = 1000000;  // per query
  int launch_count = 100000;
  uint64_t copy_bytes = 256ull << 20;
  int copy_reps = 3;
  // Each pattern is measured in turn; kFill keeps the plain keys.
  std::vector<CopyPattern> copy_patterns = {CopyPattern::kFill};
  bool copy_pageable = true, copy_pinned = true;  // which host memory to copy from/to
  // The proxy the driver's traffic goes through, to count bytes (may be null).
  const DelayProxy* counter = nullptr;
};

// Returns non-OK (and emits nothing more) only when the driver cannot be
// initialised or has no device; measure failures are emitted as errors.
Status RunDriverBench(const DriverApi& api, const DriverBenchOptions& options, Emitter* out);

}  // namespace rgpu::bench
