// __managed__ variables (as in the CUDA programming guide's unified memory
// examples): the host reads a variable's initial value, writes variables,
// a kernel reads and writes them through their address, and the host sees
// the kernel's results after a synchronisation, twice. Prints
// "OK managed_vars".
#include "check.h"

#include <cuda_runtime.h>

#include <cstdio>

__managed__ int m_answer = 42;
__managed__ float m_values[64];

// The sim backend runs this kernel by its name (backend/sim/test_kernels.cc).
__global__ void scaleInPlace(float* x, float s, int n) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) x[i] *= s;
}

int main() {
  if (m_answer != 42) {  // the first access: cudart loads the module
    printf("FAIL initial value %d\n", m_answer);
    return 1;
  }
  for (int round = 1; round <= 2; ++round) {
    for (int i = 0; i < 64; ++i) m_values[i] = float(i + round);
    m_answer = round;
    scaleInPlace<<<1, 64>>>(m_values, 3.0f, 64);
    CK_RT(cudaGetLastError());
    CK_RT(cudaDeviceSynchronize());
    for (int i = 0; i < 64; ++i) {
      if (m_values[i] != 3.0f * float(i + round)) {
        printf("FAIL round %d: m_values[%d] = %f\n", round, i, m_values[i]);
        return 1;
      }
    }
    if (m_answer != round) {
      printf("FAIL round %d: m_answer = %d\n", round, m_answer);
      return 1;
    }
  }
  cudaPointerAttributes a;
  CK_RT(cudaPointerGetAttributes(&a, m_values));
  if (a.type != cudaMemoryTypeManaged) {
    printf("FAIL pointer type %d\n", a.type);
    return 1;
  }
  printf("OK managed_vars\n");
  return 0;
}
