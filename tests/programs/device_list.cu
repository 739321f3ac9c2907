// Prints what the CUDA runtime sees: device count, then each device's name
// and UUID. For the environment-semantics tests (CUDA_VISIBLE_DEVICES).
#include <cuda_runtime.h>

#include <cstdio>

int main() {
  int n = 0;
  cudaError_t e = cudaGetDeviceCount(&n);
  printf("count %d %s\n", e == cudaSuccess ? n : 0, cudaGetErrorName(e));
  for (int i = 0; i < n; ++i) {
    cudaDeviceProp p;
    if (cudaGetDeviceProperties(&p, i) != cudaSuccess) return 1;
    printf("device %d %s uuid", i, p.name);
    for (int k = 0; k < 16; ++k) printf("%02x", static_cast<unsigned char>(p.uuid.bytes[k]));
    printf("\n");
  }
  return 0;
}
