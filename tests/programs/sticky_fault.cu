// Holds some device memory, then faults a kernel (a write through a bad
// pointer): the context takes a sticky error, as on a GPU. Exits 0 when the
// synchronisation reports cudaErrorIllegalAddress (after 100 failing
// launches: the client must not log each one). The session-end wipe can
// then write nothing through that context; the server must say so plainly.
#include <cuda_runtime.h>

#include <cstdio>

__global__ void scaleInPlace(float* p, float s, int n) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) p[i] *= s;
}

int main() {
  float* d = nullptr;
  if (cudaMalloc(&d, 1 << 20) != cudaSuccess || cudaMemset(d, 0x5A, 1 << 20) != cudaSuccess) {
    printf("ALLOC-FAILED\n");
    return 1;
  }
  // Many launches before the synchronisation: each fails on the GPU host
  // (the first faults, the rest meet the sticky error).
  for (int i = 0; i < 100; ++i) scaleInPlace<<<4, 256>>>(reinterpret_cast<float*>(16), 2.0f, 1024);
  cudaError_t e = cudaDeviceSynchronize();
  printf("sync %s\n", cudaGetErrorName(e));
  return e == cudaErrorIllegalAddress ? 0 : 1;
}
