// Mapped pinned memory ("zero copy", as in the CUDA sample simpleZeroCopy):
// cudaHostAlloc(cudaHostAllocMapped) buffers are written by the host, read
// and written by a kernel through cudaHostGetDevicePointer's pointer, and
// the kernel's results are read by the host after a synchronisation, twice
// (the second round checks that host writes after GPU work reach the GPU
// again). Also: pointer attributes say host memory, plain pinned memory has
// a device pointer (its host pointer), and cudaFreeHost frees mapped memory. Prints "OK zero_copy".
#include "check.h"

#include <cuda_runtime.h>

#include <cstdio>

// The sim backend runs this kernel by its name (backend/sim/test_kernels.cc).
__global__ void vectorAdd(const float* a, const float* b, float* c, int n) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) c[i] = a[i] + b[i];
}

int main() {
  const int n = 1 << 20;  // 4 MiB per buffer
  CK_RT(cudaSetDeviceFlags(cudaDeviceMapHost));
  float *a = nullptr, *b = nullptr, *c = nullptr;
  CK_RT(cudaHostAlloc(&a, n * sizeof(float), cudaHostAllocMapped));
  CK_RT(cudaHostAlloc(&b, n * sizeof(float), cudaHostAllocMapped | cudaHostAllocPortable));
  CK_RT(cudaHostAlloc(&c, n * sizeof(float), cudaHostAllocMapped));
  float *da = nullptr, *db = nullptr, *dc = nullptr;
  CK_RT(cudaHostGetDevicePointer(&da, a, 0));
  CK_RT(cudaHostGetDevicePointer(&db, b, 0));
  CK_RT(cudaHostGetDevicePointer(&dc, c, 0));
  for (int round = 0; round < 2; ++round) {
    for (int i = 0; i < n; ++i) {
      a[i] = static_cast<float>(i % 1000) + round;
      b[i] = static_cast<float>(round * 7);
      c[i] = -1;
    }
    vectorAdd<<<(n + 255) / 256, 256>>>(da, db, dc, n);
    CK_RT(cudaGetLastError());
    CK_RT(cudaDeviceSynchronize());
    for (int i = 0; i < n; ++i) {
      if (c[i] != a[i] + b[i]) {
        printf("FAIL round %d: c[%d] = %f, want %f\n", round, i, c[i], a[i] + b[i]);
        return 1;
      }
    }
  }
  // Small mapped buffers after a small device allocation, as cuDNN's
  // cudnnCreate makes them: the driver places them at 512-byte alignment,
  // off the host's page boundaries, and each must still be usable.
  float* tiny = nullptr;
  CK_RT(cudaMalloc(&tiny, 4));
  float* small[3] = {};
  for (float*& p : small) {
    CK_RT(cudaHostAlloc(&p, sizeof(float), cudaHostAllocMapped));
    *p = -1;
  }
  for (int i = 0; i < 3; ++i) {
    float* dp = nullptr;
    CK_RT(cudaHostGetDevicePointer(&dp, small[i], 0));
    vectorAdd<<<1, 32>>>(da, db, dp, 1);
  }
  CK_RT(cudaDeviceSynchronize());
  for (float* p : small) {
    if (*p != a[0] + b[0]) {
      printf("FAIL small mapped buffer holds %f, want %f\n", *p, a[0] + b[0]);
      return 1;
    }
    CK_RT(cudaFreeHost(p));
  }
  CK_RT(cudaFree(tiny));
  cudaPointerAttributes attr;
  CK_RT(cudaPointerGetAttributes(&attr, a));
  if (attr.type != cudaMemoryTypeHost || attr.devicePointer != da || attr.hostPointer != a) {
    printf("FAIL attributes: type %d device %p host %p\n", attr.type, attr.devicePointer, attr.hostPointer);
    return 1;
  }
  unsigned flags = 0;
  CK_RT(cudaHostGetFlags(&flags, b));
  if (!(flags & cudaHostAllocMapped)) {
    printf("FAIL flags %u\n", flags);
    return 1;
  }
  // Plain pinned memory: on a local GPU it is mapped too (unified
  // addressing); through rgpu it is promoted (pinned_kernel_access.cu).
  float* plain = nullptr;
  CK_RT(cudaMallocHost(&plain, 4096));
  float* dplain = nullptr;
  cudaError_t e = cudaHostGetDevicePointer(&dplain, plain, 0);
  printf("plain pinned device pointer: %s\n", cudaGetErrorName(e));
  (void)cudaGetLastError();
  CK_RT(cudaFreeHost(plain));
  // cudaFree does not take host memory; cudaFreeHost does.
  if (cudaFree(a) == cudaSuccess) {
    printf("FAIL cudaFree accepted mapped host memory\n");
    return 1;
  }
  (void)cudaGetLastError();
  CK_RT(cudaFreeHost(a));
  CK_RT(cudaFreeHost(b));
  CK_RT(cudaFreeHost(c));
  printf("OK zero_copy\n");
  return 0;
}
