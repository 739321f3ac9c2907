// Allocates memory, reports whether it came back zeroed, then fills it with a
// pattern and exits without freeing it: the next session on the same GPU
// must not see that pattern.
#include <cuda_runtime.h>

#include <cstdio>
#include <vector>

int main() {
  const size_t n = 64u << 20;
  void* d = nullptr;
  if (cudaMalloc(&d, n) != cudaSuccess) { printf("ALLOC-FAILED\n"); return 1; }
  std::vector<unsigned char> h(n, 0x11);
  if (cudaMemcpy(h.data(), d, n, cudaMemcpyDeviceToHost) != cudaSuccess) { printf("COPY-FAILED\n"); return 1; }
  size_t dirty = 0;
  for (unsigned char b : h) dirty += b == 0xAB;
  printf(dirty ? "PATTERN-FOUND %zu\n" : "NO-PATTERN\n", dirty);
  if (cudaMemset(d, 0xAB, n) != cudaSuccess || cudaDeviceSynchronize() != cudaSuccess) { printf("FILL-FAILED\n"); return 1; }
  return dirty ? 2 : 0;
}
