// saxpy_grid: a grid-stride kernel taking a float, an int, pointers and a
// struct by value, launched with a grid far smaller than the data; occupancy
// queries (cudaOccupancyMaxPotentialBlockSize) and device properties.
// Exits non-zero on any CUDA error or wrong result.
#include <cuda_runtime.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <vector>

#define E2E_PROGRAM "saxpy_grid"
#include "runtime_check.h"

struct Tweak {
  float bias;      // added to every result
  int every;       // ... and `bonus` added to every `every`-th element
  double bonus;
};

// y[i] = a * x[i] + y[i] + t.bias (+ t.bonus when i % t.every == 0)
__global__ void saxpyGrid(float a, const float* x, float* y, int n, Tweak t) {
  for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += blockDim.x * gridDim.x) {
    float v = a * x[i] + y[i] + t.bias;
    if (t.every > 0 && i % t.every == 0) v += static_cast<float>(t.bonus);
    y[i] = v;
  }
}

// Counts elements above `threshold` (grid-stride, one atomic per element).
__global__ void countAbove(const float* y, int n, float threshold, unsigned int* count) {
  for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += blockDim.x * gridDim.x) {
    if (y[i] > threshold) atomicAdd(count, 1u);
  }
}

int main() {
  cudaDeviceProp prop;
  CHECK(cudaGetDeviceProperties(&prop, 0));
  printf("saxpy_grid: device 0: %s, cc %d.%d, %d SMs, %zu MiB\n", prop.name, prop.major,
         prop.minor, prop.multiProcessorCount, prop.totalGlobalMem >> 20);
  EXPECT(prop.multiProcessorCount > 0 && prop.maxThreadsPerBlock >= 1024, "implausible properties");

  int min_grid = 0, block = 0;
  CHECK(cudaOccupancyMaxPotentialBlockSize(&min_grid, &block, saxpyGrid, 0, 0));
  int per_sm = 0;
  CHECK(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, saxpyGrid, block, 0));
  printf("saxpy_grid: occupancy: block %d, min grid %d, %d blocks/SM\n", block, min_grid, per_sm);
  EXPECT(block >= 32 && block <= prop.maxThreadsPerBlock && block % 32 == 0, "block size %d", block);
  EXPECT(min_grid >= prop.multiProcessorCount && per_sm > 0, "min grid %d, per SM %d", min_grid, per_sm);
  cudaFuncAttributes fa;
  CHECK(cudaFuncGetAttributes(&fa, saxpyGrid));
  EXPECT(fa.maxThreadsPerBlock >= block && fa.numRegs > 0, "attributes: %d threads %d regs",
         fa.maxThreadsPerBlock, fa.numRegs);

  const int n = 3 * 1000 * 1000 + 7;
  std::vector<float> x(n), y(n);
  for (int i = 0; i < n; ++i) {
    x[i] = static_cast<float>(i % 1024) * 0.25f;
    y[i] = static_cast<float>(i % 7);
  }
  float *dx = nullptr, *dy = nullptr;
  unsigned int* dcount = nullptr;
  CHECK(cudaMalloc(&dx, n * sizeof(float)));
  CHECK(cudaMalloc(&dy, n * sizeof(float)));
  CHECK(cudaMalloc(&dcount, sizeof(unsigned int)));
  CHECK(cudaMemcpy(dx, x.data(), n * sizeof(float), cudaMemcpyHostToDevice));
  CHECK(cudaMemcpy(dy, y.data(), n * sizeof(float), cudaMemcpyHostToDevice));
  CHECK(cudaMemset(dcount, 0, sizeof(unsigned int)));

  // Far fewer threads than elements: only a grid-stride loop covers them all.
  const float a = 2.0f;
  Tweak t = {1.0f, 10, 0.5};
  const int grid = 4 * prop.multiProcessorCount;
  saxpyGrid<<<grid, block>>>(a, dx, dy, n, t);
  CHECK(cudaGetLastError());
  countAbove<<<grid / 2, 128>>>(dy, n, 200.0f, dcount);
  CHECK(cudaGetLastError());
  CHECK(cudaDeviceSynchronize());

  std::vector<float> out(n);
  unsigned int count = 0;
  CHECK(cudaMemcpy(out.data(), dy, n * sizeof(float), cudaMemcpyDeviceToHost));
  CHECK(cudaMemcpy(&count, dcount, sizeof count, cudaMemcpyDeviceToHost));
  unsigned int want_count = 0;
  for (int i = 0; i < n; ++i) {
    float want = a * x[i] + y[i] + t.bias;
    if (i % t.every == 0) want += static_cast<float>(t.bonus);
    EXPECT(out[i] == want, "y[%d] = %f, want %f", i, out[i], want);
    if (want > 200.0f) ++want_count;
  }
  EXPECT(count == want_count, "count %u, want %u", count, want_count);
  printf("saxpy_grid: %d elements with %d threads correct, %u above 200\n", n, grid * block, count);

  CHECK(cudaFree(dx));
  CHECK(cudaFree(dy));
  CHECK(cudaFree(dcount));
  printf("saxpy_grid: PASS\n");
  return 0;
}
