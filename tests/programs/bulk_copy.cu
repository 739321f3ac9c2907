// Bulk round trip: N MiB (argument, default 64) of a pseudo-random pattern
// (with a second argument `sparse`, seven of every eight 4-byte words are
// zero, like sparse activations: data that wire compression shrinks)
// host -> device -> device -> host, synchronously and on a stream with
// pinned memory, compared byte for byte. Prints "OK bulk_copy N MiB
// checksum X" or what differed. Exit codes: 0 exact, 2 bytes differ, 1 a
// CUDA call failed.
#include <cuda_runtime.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#define CHECK(call)                                                                 \
  do {                                                                              \
    cudaError_t e_ = (call);                                                        \
    if (e_ != cudaSuccess) {                                                        \
      printf("FAILED %s: %s\n", #call, cudaGetErrorName(e_));                       \
      return 1;                                                                     \
    }                                                                               \
  } while (0)

int main(int argc, char** argv) {
  size_t mib = argc > 1 ? strtoul(argv[1], nullptr, 10) : 64;
  const bool sparse = argc > 2 && strcmp(argv[2], "sparse") == 0;
  size_t n = mib << 20;
  std::vector<uint8_t> src(n), back(n, 0);
  uint64_t x = 0x9E3779B97F4A7C15ull, sum = 1469598103934665603ull;
  for (size_t i = 0; i < n; ++i) {
    x ^= x << 13, x ^= x >> 7, x ^= x << 17;
    src[i] = sparse && (i & 28) != 0 ? 0 : static_cast<uint8_t>(x);
    sum = (sum ^ src[i]) * 1099511628211ull;  // FNV-1a
  }
  void *a = nullptr, *b = nullptr, *pinned = nullptr;
  CHECK(cudaMalloc(&a, n));
  CHECK(cudaMalloc(&b, n));
  CHECK(cudaMemcpy(a, src.data(), n, cudaMemcpyHostToDevice));
  CHECK(cudaMemcpy(b, a, n, cudaMemcpyDeviceToDevice));
  CHECK(cudaMemcpy(back.data(), b, n, cudaMemcpyDeviceToHost));
  if (memcmp(src.data(), back.data(), n) != 0) {
    size_t i = 0;
    while (src[i] == back[i]) ++i;
    printf("DIFFER at byte %zu of %zu (sync)\n", i, n);
    return 2;
  }
  // The asynchronous path: pinned host memory, one stream.
  cudaStream_t s;
  CHECK(cudaStreamCreate(&s));
  CHECK(cudaMallocHost(&pinned, n));
  CHECK(cudaMemsetAsync(b, 0, n, s));
  CHECK(cudaMemcpyAsync(b, src.data(), n, cudaMemcpyHostToDevice, s));
  CHECK(cudaMemcpyAsync(pinned, b, n, cudaMemcpyDeviceToHost, s));
  CHECK(cudaStreamSynchronize(s));
  if (memcmp(src.data(), pinned, n) != 0) {
    printf("DIFFER (async)\n");
    return 2;
  }
  // An async copy into pageable memory has completed when the call returns
  // (CUDA's API synchronization behavior): the buffer is read, and freed,
  // with no synchronisation in between.
  {
    std::vector<uint8_t> pageable(n, 0);
    CHECK(cudaMemcpyAsync(pageable.data(), b, n, cudaMemcpyDeviceToHost, s));
    if (memcmp(src.data(), pageable.data(), n) != 0) {
      printf("DIFFER (async into pageable memory, read at return)\n");
      return 2;
    }
  }
  // Pinned host memory is filled by memsets like device memory (unified
  // addressing): on a stream, after the work before it, and synchronously.
  {
    auto* h = static_cast<uint8_t*>(pinned);
    CHECK(cudaMemcpyAsync(pinned, b, 8192, cudaMemcpyDeviceToHost, s));
    CHECK(cudaMemsetAsync(h + 4096, 0x5a, 4096, s));
    CHECK(cudaStreamSynchronize(s));
    bool ok = memcmp(h, src.data(), 4096) == 0;
    for (int i = 4096; i < 8192; ++i) ok = ok && h[i] == 0x5a;
    CHECK(cudaMemset(h, 0xc3, 100));
    for (int i = 0; i < 100; ++i) ok = ok && h[i] == 0xc3;
    ok = ok && h[100] == src[100];
    if (!ok) {
      printf("DIFFER (memset of pinned host memory)\n");
      return 2;
    }
  }
  printf("OK bulk_copy %zu MiB checksum %016llx\n", mib, static_cast<unsigned long long>(sum));
  CHECK(cudaFreeHost(pinned));
  CHECK(cudaStreamDestroy(s));
  CHECK(cudaFree(a));
  CHECK(cudaFree(b));
  return 0;
}
