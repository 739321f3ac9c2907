// vector_add: the runtime API basics. cudaMalloc, H2D / D2H copies, a kernel,
// cudaMemset, streams and events with async copies and elapsed time.
// Prints what it checks; exits non-zero on any CUDA error or wrong result.
#include <cuda_runtime.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <vector>

#define E2E_PROGRAM "vector_add"
#include "runtime_check.h"

// One element per thread, no grid-stride loop.
__global__ void vectorAdd(const float* a, const float* b, float* c, int n) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) c[i] = a[i] + b[i];
}

__global__ void scaleInPlace(float* x, float s, int n) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) x[i] *= s;
}

int main() {
  const int n = 1 << 20;
  const size_t bytes = n * sizeof(float);
  std::vector<float> a(n), b(n), c(n);
  for (int i = 0; i < n; ++i) {
    a[i] = static_cast<float>(i);
    b[i] = 0.5f * static_cast<float>(i % 1000);
  }

  int count = 0;
  CHECK(cudaGetDeviceCount(&count));
  EXPECT(count > 0, "no device");
  CHECK(cudaSetDevice(0));

  float *da = nullptr, *db = nullptr, *dc = nullptr;
  CHECK(cudaMalloc(&da, bytes));
  CHECK(cudaMalloc(&db, bytes));
  CHECK(cudaMalloc(&dc, bytes));
  CHECK(cudaMemcpy(da, a.data(), bytes, cudaMemcpyHostToDevice));
  CHECK(cudaMemcpy(db, b.data(), bytes, cudaMemcpyHostToDevice));

  const int block = 256, grid = (n + block - 1) / block;
  vectorAdd<<<grid, block>>>(da, db, dc, n);
  CHECK(cudaGetLastError());
  CHECK(cudaDeviceSynchronize());
  CHECK(cudaMemcpy(c.data(), dc, bytes, cudaMemcpyDeviceToHost));
  for (int i = 0; i < n; ++i) EXPECT(c[i] == a[i] + b[i], "c[%d] = %f, want %f", i, c[i], a[i] + b[i]);
  printf("vector_add: %d sums correct\n", n);

  // A device-to-device copy and a memset.
  CHECK(cudaMemcpy(db, dc, bytes, cudaMemcpyDeviceToDevice));
  CHECK(cudaMemset(dc, 0, bytes));
  CHECK(cudaMemcpy(c.data(), dc, bytes, cudaMemcpyDeviceToHost));
  for (int i = 0; i < n; ++i) EXPECT(c[i] == 0.0f, "memset: c[%d] = %f", i, c[i]);
  CHECK(cudaMemcpy(c.data(), db, bytes, cudaMemcpyDeviceToHost));
  for (int i = 0; i < n; ++i) EXPECT(c[i] == a[i] + b[i], "D2D: c[%d] = %f", i, c[i]);
  printf("vector_add: memset and device-to-device copy correct\n");

  // The same work on a stream with async copies, timed with events.
  cudaStream_t stream;
  cudaEvent_t start, stop;
  CHECK(cudaStreamCreate(&stream));
  CHECK(cudaEventCreate(&start));
  CHECK(cudaEventCreate(&stop));
  CHECK(cudaEventRecord(start, stream));
  CHECK(cudaMemcpyAsync(da, a.data(), bytes, cudaMemcpyHostToDevice, stream));
  CHECK(cudaMemcpyAsync(db, b.data(), bytes, cudaMemcpyHostToDevice, stream));
  CHECK(cudaMemsetAsync(dc, 0xff, bytes, stream));
  vectorAdd<<<grid, block, 0, stream>>>(da, db, dc, n);
  CHECK(cudaGetLastError());
  scaleInPlace<<<grid, block, 0, stream>>>(dc, 2.0f, n);
  CHECK(cudaGetLastError());
  std::vector<float> out(n, -1.0f);
  CHECK(cudaMemcpyAsync(out.data(), dc, bytes, cudaMemcpyDeviceToHost, stream));
  CHECK(cudaEventRecord(stop, stream));
  CHECK(cudaEventSynchronize(stop));
  CHECK(cudaStreamSynchronize(stream));
  float ms = -1.0f;
  CHECK(cudaEventElapsedTime(&ms, start, stop));
  EXPECT(ms >= 0.0f && std::isfinite(ms), "elapsed time %f", ms);
  CHECK(cudaEventQuery(stop));
  CHECK(cudaStreamQuery(stream));
  for (int i = 0; i < n; ++i) {
    EXPECT(out[i] == 2.0f * (a[i] + b[i]), "stream: out[%d] = %f, want %f", i, out[i],
           2.0f * (a[i] + b[i]));
  }
  printf("vector_add: stream pipeline correct, %.3f ms\n", ms);

  size_t free_bytes = 0, total_bytes = 0;
  CHECK(cudaMemGetInfo(&free_bytes, &total_bytes));
  EXPECT(free_bytes > 0 && free_bytes <= total_bytes, "mem info %zu / %zu", free_bytes, total_bytes);

  CHECK(cudaEventDestroy(start));
  CHECK(cudaEventDestroy(stop));
  CHECK(cudaStreamDestroy(stream));
  CHECK(cudaFree(da));
  CHECK(cudaFree(db));
  CHECK(cudaFree(dc));
  printf("vector_add: PASS\n");
  return 0;
}
