// Tenant isolation check for the GPU host. "fill": allocate nearly all free
// memory and write a pattern into it. "scan": allocate nearly all free memory
// and count bytes of that pattern. Prints "pattern_bytes N" (scan) and the
// bytes covered.
#include <cuda_runtime.h>

#include <cstdio>
#include <cstring>
#include <vector>

int main(int argc, char** argv) {
  bool fill = argc > 1 && strcmp(argv[1], "fill") == 0;
  size_t free_b = 0, total = 0;
  if (cudaMemGetInfo(&free_b, &total) != cudaSuccess) return 1;
  const size_t chunk = 1ull << 30;
  std::vector<void*> blocks;
  size_t covered = 0;
  while (covered + chunk + (1ull << 30) < free_b) {  // leave 1 GiB for the driver
    void* p = nullptr;
    if (cudaMalloc(&p, chunk) != cudaSuccess) break;
    blocks.push_back(p);
    covered += chunk;
  }
  unsigned long long found = 0;
  std::vector<unsigned char> h(chunk);
  for (void* p : blocks) {
    if (fill) {
      if (cudaMemset(p, 0x5A, chunk) != cudaSuccess) return 1;
    } else {
      if (cudaMemcpy(h.data(), p, chunk, cudaMemcpyDeviceToHost) != cudaSuccess) return 1;
      for (unsigned char b : h) found += b == 0x5A;
    }
  }
  if (cudaDeviceSynchronize() != cudaSuccess) return 1;
  printf("covered_bytes %zu of %zu\n", covered, total);
  if (!fill) printf("pattern_bytes %llu\n", found);
  return 0;
}
