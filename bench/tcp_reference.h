// The "physics" references of rgpu bench: what plain TCP does over the same
// link, with no CUDA and no rgpu in the way.
//
// Both functions run entirely inside the calling process: a peer thread
// listens on a free loopback port, the calling thread connects to it (through
// a DelayProxy adding `one_way_delay_ms` to each direction when > 0, exactly
// as the rgpu measurements over a delayed link are routed) and measures.
// TCP_NODELAY is set on every socket. Each fails with a Status naming the step
// (listen, connect, read, write) and the peer; nothing is left running on
// return, whether it succeeded or not.
#pragma once

#include <cstddef>
#include <cstdint>

#include "bench/stats.h"
#include "common/status.h"

namespace rgpu::bench {

// Round trips of a `request_bytes` message answered by a `reply_bytes` one
// (both >= 1): `warmup` untimed, then `iterations` timed one by one.
Result<Latency> TcpPingPong(size_t request_bytes, size_t reply_bytes, int warmup, int iterations,
                            double one_way_delay_ms);

// Stream bandwidth in GB/s (1e9 bytes/s): the sender writes `bytes` from a
// buffer already touched; the receiver reads them into a buffer of that size
// (also touched first, as device memory is already mapped) and answers one
// byte. Time runs from the first write to that answer. One untimed pass, then
// the median of `reps` (>= 1) timed passes.
Result<double> TcpStreamGBps(uint64_t bytes, int reps, double one_way_delay_ms);

}  // namespace rgpu::bench
