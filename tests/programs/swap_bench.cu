// Measurement tool for idle detach (docs/time-slicing.md): fills MIB of
// device memory (1 GiB allocations), then ROUNDS times goes idle for IDLE
// seconds (a server with --detach-idle=always detaches it) and checks sampled
// pages of every allocation through the same pointers, timing the first call
// after the idle time (that call pays for the reattach). The server's log
// gives the detach and reattach rates; this prints what the program sees.
//
//   swap_bench [MIB=64] [ROUNDS=1] [IDLE=0.1]
// Exit codes: 0 intact, 2 data wrong, 1 a CUDA call failed.
#include "check.h"

#include <cuda.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <thread>
#include <vector>

using Clock = std::chrono::steady_clock;
double Ms(Clock::duration d) { return std::chrono::duration<double, std::milli>(d).count(); }

int main(int argc, char** argv) {
  size_t mib = argc > 1 ? strtoull(argv[1], nullptr, 10) : 64;
  int rounds = argc > 2 ? atoi(argv[2]) : 1;
  double idle = argc > 3 ? atof(argv[3]) : 0.1;
  CUdevice dev;
  UsePrimaryContext(&dev);
  const size_t piece = size_t{1} << 30;
  std::vector<CUdeviceptr> ptrs;
  std::vector<size_t> sizes;
  for (size_t left = mib << 20; left > 0;) {
    size_t n = left < piece ? left : piece;
    CUdeviceptr p;
    CK(cuMemAlloc(&p, n));
    ptrs.push_back(p);
    sizes.push_back(n);
    left -= n;
  }
  auto fill = [&](unsigned base) -> CUresult {
    for (size_t k = 0; k < ptrs.size(); ++k)
      if (CUresult r = cuMemsetD32(ptrs[k], base + static_cast<unsigned>(k), sizes[k] / 4)) return r;
    return cuCtxSynchronize();
  };
  CK(fill(0x1000));
  printf("READY %zu MiB in %zu allocations\n", mib, ptrs.size());
  fflush(stdout);
  std::vector<unsigned> sample(1 << 18);  // 1 MiB
  for (int r = 0; r < rounds; ++r) {
    std::this_thread::sleep_for(std::chrono::duration<double>(idle));
    auto t0 = Clock::now();
    CK(cuMemcpyDtoH(sample.data(), ptrs[0], 4));  // the first call after idle: reattaches
    double first_ms = Ms(Clock::now() - t0);
    unsigned want_base = 0x1000 + r * 0x100;
    for (size_t k = 0; k < ptrs.size(); ++k) {
      size_t bytes = sizes[k] < (1u << 20) ? sizes[k] : (1u << 20);
      for (size_t off : {size_t{0}, sizes[k] / 2 / 4096 * 4096, sizes[k] - bytes}) {
        CK(cuMemcpyDtoH(sample.data(), ptrs[k] + off, bytes));
        for (size_t i = 0; i < bytes / 4; ++i)
          if (sample[i] != want_base + k) {
            printf("DATA-WRONG round %d allocation %zu offset %zu: %x\n", r, k, off + i * 4, sample[i]);
            return 2;
          }
      }
    }
    printf("round %d: first call after idle %.1f ms, data intact\n", r, first_ms);
    fflush(stdout);
    CK(fill(0x1000 + (r + 1) * 0x100));  // new contents for the next round
  }
  printf("ALL OK\n");
  return 0;
}
