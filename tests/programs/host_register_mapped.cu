// host_register_mapped: memory the program allocated itself (off a page
// boundary, inside a std::vector), registered with cudaHostRegisterMapped,
// then used by a kernel in place through cudaHostGetDevicePointer, as the
// CUDA samples' zero-copy example does with its generic-memory option.
// Prints "OK host_register_mapped"; exits 1 at the first mismatch.
//
// Through rgpu this is a known limit (docs/compatibility.md): registered
// memory stays the program's, at an address rgpu did not choose, and
// cudaHostGetDevicePointer on it answers cudaErrorNotSupported.
#include "check.h"

#include <unistd.h>

#include <cstdio>
#include <vector>

__global__ void AddOne(int* p, int n) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) p[i] += 1;
}

int main() {
  const int n = 1 << 18;
  const size_t bytes = n * sizeof(int);
  long page = sysconf(_SC_PAGESIZE);
  std::vector<char> raw(bytes + 3 * page);
  int* m = reinterpret_cast<int*>(raw.data() + 64);
  for (int i = 0; i < n; ++i) m[i] = 3 * i;
  CK_RT(cudaHostRegister(m, bytes, cudaHostRegisterMapped));
  int* dm = nullptr;
  CK_RT(cudaHostGetDevicePointer(reinterpret_cast<void**>(&dm), m, 0));
  EXPECT(dm != nullptr);
  AddOne<<<(n + 255) / 256, 256>>>(dm, n);
  CK_RT(cudaDeviceSynchronize());
  for (int i = 0; i < n; ++i) EXPECT(m[i] == 3 * i + 1);
  CK_RT(cudaHostUnregister(m));
  printf("OK host_register_mapped\n");
  return 0;
}
