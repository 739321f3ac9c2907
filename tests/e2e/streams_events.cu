// streams_events: stream priorities, cross-stream dependencies through events,
// event queries, pitched 2D memory (cudaMallocPitch, cudaMemset2D,
// cudaMemcpy2D) and 3D copies (cudaMalloc3D, cudaMemcpy3D).
// Exits non-zero on any CUDA error or wrong result.
#include <cuda_runtime.h>

#include <cstdio>
#include <cstdlib>
#include <vector>

#define E2E_PROGRAM "streams_events"
#include "runtime_check.h"

__global__ void addDelta(int* p, int n, int delta) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) p[i] += delta;
}

// p is a pitched w x h matrix of floats; every element becomes 2 * x + y.
__global__ void fill2D(float* p, size_t pitch, int w, int h) {
  int x = blockIdx.x * blockDim.x + threadIdx.x;
  int y = blockIdx.y * blockDim.y + threadIdx.y;
  if (x < w && y < h) {
    float* row = reinterpret_cast<float*>(reinterpret_cast<char*>(p) + y * pitch);
    row[x] = row[x] * 2.0f + static_cast<float>(y);
  }
}

int main() {
  CHECK(cudaSetDevice(0));

  // --- priorities ---
  int least = 0, greatest = 0;
  CHECK(cudaDeviceGetStreamPriorityRange(&least, &greatest));
  printf("streams_events: priority range [%d, %d]\n", least, greatest);
  EXPECT(greatest <= least, "greatest %d > least %d", greatest, least);
  cudaStream_t low, high, plain;
  CHECK(cudaStreamCreateWithPriority(&low, cudaStreamNonBlocking, least));
  CHECK(cudaStreamCreateWithPriority(&high, cudaStreamNonBlocking, greatest));
  CHECK(cudaStreamCreate(&plain));
  int p_low = 1, p_high = 1;
  unsigned flags = 7;
  CHECK(cudaStreamGetPriority(low, &p_low));
  CHECK(cudaStreamGetPriority(high, &p_high));
  CHECK(cudaStreamGetFlags(high, &flags));
  EXPECT(p_low == least && p_high == greatest, "priorities %d %d", p_low, p_high);
  EXPECT(flags == cudaStreamNonBlocking, "flags %u", flags);

  // --- cross-stream dependency: low -> high -> plain ---
  const int n = 100000;
  int* d = nullptr;
  CHECK(cudaMalloc(&d, n * sizeof(int)));
  cudaEvent_t after_low, after_high, timing;
  CHECK(cudaEventCreateWithFlags(&after_low, cudaEventDisableTiming));
  CHECK(cudaEventCreateWithFlags(&after_high, cudaEventDisableTiming));
  CHECK(cudaEventCreate(&timing));
  CHECK(cudaMemsetAsync(d, 0, n * sizeof(int), low));
  addDelta<<<(n + 127) / 128, 128, 0, low>>>(d, n, 1);
  CHECK(cudaGetLastError());
  CHECK(cudaEventRecord(after_low, low));
  CHECK(cudaStreamWaitEvent(high, after_low, 0));
  addDelta<<<(n + 127) / 128, 128, 0, high>>>(d, n, 10);
  CHECK(cudaGetLastError());
  CHECK(cudaEventRecord(after_high, high));
  CHECK(cudaStreamWaitEvent(plain, after_high, 0));
  addDelta<<<(n + 255) / 256, 256, 0, plain>>>(d, n, 100);
  CHECK(cudaGetLastError());
  CHECK(cudaEventRecord(timing, plain));
  CHECK(cudaEventSynchronize(timing));
  CHECK(cudaEventQuery(after_low));
  CHECK(cudaEventQuery(after_high));
  std::vector<int> h(n);
  CHECK(cudaMemcpyAsync(h.data(), d, n * sizeof(int), cudaMemcpyDeviceToHost, plain));
  CHECK(cudaStreamSynchronize(plain));
  for (int i = 0; i < n; ++i) EXPECT(h[i] == 111, "h[%d] = %d, want 111", i, h[i]);
  // Elapsed time needs timing on both events: a disable-timing event is refused.
  float ms = 0;
  cudaError_t e = cudaEventElapsedTime(&ms, after_low, timing);
  EXPECT(e == cudaErrorInvalidResourceHandle, "elapsed time with a timing-disabled event: %s",
         cudaGetErrorString(e));
  e = cudaGetLastError();  // the runtime keeps that error as the last one: clear it
  EXPECT(e == cudaErrorInvalidResourceHandle, "last error %s", cudaGetErrorString(e));
  CHECK(cudaGetLastError());
  printf("streams_events: 3-stream chain correct\n");

  // --- pitched 2D ---
  const int w = 100, rows = 37;
  float* m = nullptr;
  size_t pitch = 0;
  CHECK(cudaMallocPitch(&m, &pitch, w * sizeof(float), rows));
  EXPECT(pitch >= w * sizeof(float), "pitch %zu", pitch);
  CHECK(cudaMemset2D(m, pitch, 0, w * sizeof(float), rows));
  std::vector<float> host(w * rows), back(w * rows, -1.0f);
  for (int y = 0; y < rows; ++y) {
    for (int x = 0; x < w; ++x) host[y * w + x] = static_cast<float>(x);
  }
  CHECK(cudaMemcpy2D(m, pitch, host.data(), w * sizeof(float), w * sizeof(float), rows,
                     cudaMemcpyHostToDevice));
  dim3 block2(16, 8), grid2((w + 15) / 16, (rows + 7) / 8);
  fill2D<<<grid2, block2>>>(m, pitch, w, rows);
  CHECK(cudaGetLastError());
  CHECK(cudaMemcpy2D(back.data(), w * sizeof(float), m, pitch, w * sizeof(float), rows,
                     cudaMemcpyDeviceToHost));
  for (int y = 0; y < rows; ++y) {
    for (int x = 0; x < w; ++x) {
      float want = 2.0f * x + y;
      EXPECT(back[y * w + x] == want, "2D (%d,%d) = %f, want %f", x, y, back[y * w + x], want);
    }
  }
  // cudaMemset2D on a sub-rectangle: bytes set to 0 in rows 1..3, first 8 floats.
  CHECK(cudaMemset2D(reinterpret_cast<char*>(m) + pitch, pitch, 0, 8 * sizeof(float), 3));
  CHECK(cudaMemcpy2D(back.data(), w * sizeof(float), m, pitch, w * sizeof(float), rows,
                     cudaMemcpyDeviceToHost));
  for (int y = 0; y < rows; ++y) {
    for (int x = 0; x < w; ++x) {
      float want = (y >= 1 && y <= 3 && x < 8) ? 0.0f : 2.0f * x + y;
      EXPECT(back[y * w + x] == want, "memset2D (%d,%d) = %f, want %f", x, y, back[y * w + x], want);
    }
  }
  printf("streams_events: pitched 2D (pitch %zu) correct\n", pitch);

  // --- 3D ---
  const int X = 20, Y = 6, Z = 5;
  cudaExtent extent = make_cudaExtent(X * sizeof(int), Y, Z);
  cudaPitchedPtr dev3;
  CHECK(cudaMalloc3D(&dev3, extent));
  std::vector<int> src3(X * Y * Z), dst3(X * Y * Z, -1);
  for (int i = 0; i < X * Y * Z; ++i) src3[i] = i * 7 + 1;
  cudaMemcpy3DParms up = {};
  up.srcPtr = make_cudaPitchedPtr(src3.data(), X * sizeof(int), X, Y);
  up.dstPtr = dev3;
  up.extent = extent;
  up.kind = cudaMemcpyHostToDevice;
  CHECK(cudaMemcpy3D(&up));
  cudaMemcpy3DParms down = {};
  down.srcPtr = dev3;
  down.dstPtr = make_cudaPitchedPtr(dst3.data(), X * sizeof(int), X, Y);
  down.extent = extent;
  down.kind = cudaMemcpyDeviceToHost;
  CHECK(cudaMemcpy3D(&down));
  for (int i = 0; i < X * Y * Z; ++i) EXPECT(dst3[i] == src3[i], "3D [%d] = %d, want %d", i, dst3[i], src3[i]);
  printf("streams_events: 3D copy (pitch %zu) correct\n", dev3.pitch);

  CHECK(cudaFree(dev3.ptr));
  CHECK(cudaFree(m));
  CHECK(cudaFree(d));
  CHECK(cudaEventDestroy(after_low));
  CHECK(cudaEventDestroy(after_high));
  CHECK(cudaEventDestroy(timing));
  CHECK(cudaStreamDestroy(low));
  CHECK(cudaStreamDestroy(high));
  CHECK(cudaStreamDestroy(plain));
  CHECK(cudaDeviceSynchronize());
  printf("streams_events: PASS\n");
  return 0;
}
