// Occupancy through rgpu: answered from the client's cache after the first
// ask for the same (function, block size, shared memory, flags), and asked
// again once cuFuncSetAttribute changed what it depends on (the dynamic
// shared memory limit, the carveout). Prints "OK occupancy" when the answers
// follow the attribute; the e2e test counts the round trips (RGPU_STATS=1).
#include <cuda_runtime.h>

#include <cstdio>

#define CHECK(call)                                                  \
  do {                                                               \
    cudaError_t e_ = (call);                                         \
    if (e_ != cudaSuccess) {                                         \
      printf("FAIL %s: %s\n", #call, cudaGetErrorName(e_));          \
      return 1;                                                      \
    }                                                                \
  } while (0)

__global__ void uses_dynamic_smem(float* out) {
  extern __shared__ float s[];
  s[threadIdx.x] = static_cast<float>(threadIdx.x);
  __syncthreads();
  if (out != nullptr) out[threadIdx.x] = s[blockDim.x - 1 - threadIdx.x];
}

int main() {
  const size_t big = 64 * 1024;  // over the default 48 KiB limit
  int before = -1, after = -1, again = -1;
  CHECK(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&before, uses_dynamic_smem, 128, big));
  CHECK(cudaFuncSetAttribute(uses_dynamic_smem, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)big));
  CHECK(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&after, uses_dynamic_smem, 128, big));
  CHECK(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&again, uses_dynamic_smem, 128, big));
  if (before != 0 || after <= 0 || again != after) {
    printf("FAIL occupancy with %zu B of dynamic shared memory: %d before the limit was raised, %d and %d after\n",
           big, before, after, again);
    return 1;
  }
  printf("OK occupancy %d -> %d\n", before, after);
  return 0;
}
