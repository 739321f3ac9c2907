// cdp_threads: two ways programs spread work that no other program here
// uses. Dynamic parallelism (built with -rdc=true, linked with cudadevrt):
// a parent kernel launches child grids from the device, into the fire-and-
// forget and tail-launch streams, and a recursive kernel goes several levels
// deep. Host threads (built with --default-stream per-thread): eight threads
// each run their own copy-kernel-copy pipeline on the per-thread default
// stream at the same time, then all meet on the legacy stream.
// Prints one "OK <section>" line each and "OK cdp_threads"; exits 1 at the
// first mismatch (check.h).
#include "check.h"

#include <atomic>
#include <cstdio>
#include <thread>
#include <vector>

// ---- dynamic parallelism ----
__global__ void ChildFill(int* out, int base, int n) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) out[base + i] = base + i;
}

__global__ void ChildDouble(int* out, int n) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) out[i] *= 2;
}

// Each parent thread fills its own slice through a child grid; the slices
// are doubled by a tail launch, which runs after the parent grid and all its
// fire-and-forget children are done.
__global__ void Parent(int* out, int slice) {
  int base = threadIdx.x * slice;
  ChildFill<<<(slice + 63) / 64, 64, 0, cudaStreamFireAndForget>>>(out, base, slice);
  if (threadIdx.x == 0) ChildDouble<<<(slice * blockDim.x + 255) / 256, 256, 0, cudaStreamTailLaunch>>>(out, slice * blockDim.x);
}

// Depth-first: level d adds 1 to its counter and launches level d+1.
__global__ void Recurse(int* counters, int depth, int max_depth) {
  atomicAdd(&counters[depth], 1);
  if (depth + 1 < max_depth) Recurse<<<2, 1, 0, cudaStreamTailLaunch>>>(counters, depth + 1, max_depth);
}

static void DynamicParallelism() {
  const int threads = 32, slice = 1000, n = threads * slice;
  int* out;
  CK_RT(cudaMalloc(&out, n * sizeof(int)));
  CK_RT(cudaMemset(out, 0xff, n * sizeof(int)));
  Parent<<<1, threads>>>(out, slice);
  CK_RT(cudaGetLastError());
  std::vector<int> h(n);
  CK_RT(cudaMemcpy(h.data(), out, n * sizeof(int), cudaMemcpyDeviceToHost));
  for (int i = 0; i < n; ++i) EXPECT(h[i] == 2 * i);

  const int depth = 6;
  int* counters;
  CK_RT(cudaMalloc(&counters, depth * sizeof(int)));
  CK_RT(cudaMemset(counters, 0, depth * sizeof(int)));
  Recurse<<<1, 1>>>(counters, 0, depth);
  int hc[depth];
  CK_RT(cudaMemcpy(hc, counters, sizeof hc, cudaMemcpyDeviceToHost));
  // Level d runs 2^d times (each run of the level above launches two).
  for (int d = 0; d < depth; ++d) EXPECT(hc[d] == (1 << d));
  CK_RT(cudaFree(out));
  CK_RT(cudaFree(counters));
  printf("OK dynamic parallelism\n");
}

// ---- host threads on per-thread default streams ----
__global__ void Affine(const float* in, float* out, int n, float a, float b) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) out[i] = a * in[i] + b;
}

static void HostThreads() {
  const int kThreads = 8, n = 1 << 18, rounds = 20;
  std::atomic<int> failures{0};
  std::vector<std::thread> pool;
  for (int t = 0; t < kThreads; ++t) {
    pool.emplace_back([t, &failures] {
      std::vector<float> h(n), back(n);
      for (int i = 0; i < n; ++i) h[i] = static_cast<float>((i + t) % 101);
      float *in, *out;
      if (cudaMalloc(&in, n * sizeof(float)) != cudaSuccess || cudaMalloc(&out, n * sizeof(float)) != cudaSuccess) {
        ++failures;
        return;
      }
      for (int r = 0; r < rounds; ++r) {
        // All on this thread's default stream (cudaStreamPerThread by the
        // build flag): ordered among themselves, not with other threads.
        cudaMemcpyAsync(in, h.data(), n * sizeof(float), cudaMemcpyHostToDevice, 0);
        Affine<<<(n + 255) / 256, 256>>>(in, out, n, 2.0f, static_cast<float>(t + r));
        cudaMemcpyAsync(back.data(), out, n * sizeof(float), cudaMemcpyDeviceToHost, 0);
        if (cudaStreamSynchronize(0) != cudaSuccess) {
          ++failures;
          break;
        }
        for (int i = 0; i < n; i += 997)
          if (back[i] != 2.0f * h[i] + static_cast<float>(t + r)) {
            ++failures;
            break;
          }
      }
      cudaFree(in);
      cudaFree(out);
    });
  }
  for (auto& th : pool) th.join();
  EXPECT(failures.load() == 0);
  // The legacy stream still exists and orders with everything.
  float* x;
  CK_RT(cudaMalloc(&x, sizeof(float)));
  CK_RT(cudaMemsetAsync(x, 0, sizeof(float), cudaStreamLegacy));
  CK_RT(cudaStreamSynchronize(cudaStreamLegacy));
  CK_RT(cudaFree(x));
  printf("OK %d host threads x %d rounds on per-thread streams\n", kThreads, rounds);
}

int main() {
  CK_RT(cudaSetDevice(0));
  DynamicParallelism();
  HostThreads();
  printf("OK cdp_threads\n");
  return 0;
}
