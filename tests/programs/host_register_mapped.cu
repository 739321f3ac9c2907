// host_register_mapped: memory the program allocated itself (off a page
// boundary, inside a std::vector), registered with cudaHostRegisterMapped,
// then used by kernels in place, as the CUDA samples' zero-copy example does
// with its generic-memory option:
//   1. through cudaHostGetDevicePointer's pointer, read and written;
//   2. host writes between launches are seen by the next launch;
//   3. the host pointer itself given to a kernel (unified addressing);
//   4. the host writes the odd elements while a kernel writes the even ones;
//      after the sync both are there;
//   5. a stream synchronisation and an event synchronisation bring the
//      kernel's writes back, and a device-to-device copy reads the buffer;
//   6. cudaHostUnregister keeps what the last kernel wrote; memory registered
//      with cudaHostRegisterDefault has a device pointer too.
// Through rgpu the buffer gets a mirror on the GPU host
// (client/registered_memory.h). Prints "OK host_register_mapped"; exits 1 at
// the first mismatch.
#include "check.h"

#include <unistd.h>

#include <cstdio>
#include <vector>

// Kernels the sim backend knows too (backend/sim/test_kernels.cc).
__global__ void addDelta(int* p, int n, int delta) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) p[i] += delta;
}

__global__ void setEven(int* p, int n, int v) {
  int i = 2 * (blockIdx.x * blockDim.x + threadIdx.x);
  if (i < n) p[i] = v + i;
}

int main() {
  const int n = 1 << 18;
  const size_t bytes = n * sizeof(int);
  const int grid = (n + 255) / 256;
  long page = sysconf(_SC_PAGESIZE);
  std::vector<char> raw(bytes + 3 * page);
  int* m = reinterpret_cast<int*>(raw.data() + 64);
  for (int i = 0; i < n; ++i) m[i] = 3 * i;
  CK_RT(cudaHostRegister(m, bytes, cudaHostRegisterMapped));
  int* dm = nullptr;
  CK_RT(cudaHostGetDevicePointer(reinterpret_cast<void**>(&dm), m, 0));
  EXPECT(dm != nullptr);
  // 1.
  addDelta<<<grid, 256>>>(dm, n, 1);
  CK_RT(cudaDeviceSynchronize());
  for (int i = 0; i < n; ++i) EXPECT(m[i] == 3 * i + 1);
  // 2.
  for (int i = 0; i < n; i += 1000) m[i] = -i;
  addDelta<<<grid, 256>>>(dm, n, 1);
  CK_RT(cudaDeviceSynchronize());
  for (int i = 0; i < n; ++i) EXPECT(m[i] == (i % 1000 == 0 ? -i + 1 : 3 * i + 2));
  // 3. (Through rgpu cudaDevAttrCanUseHostPointerForRegisteredMem says 0,
  // but a pointer among the parameters works.)
  addDelta<<<grid, 256>>>(m, n, 1);
  CK_RT(cudaDeviceSynchronize());
  for (int i = 0; i < n; ++i) EXPECT(m[i] == (i % 1000 == 0 ? -i + 2 : 3 * i + 3));
  // 4.
  setEven<<<(n / 2 + 255) / 256, 256>>>(dm, n, 7);
  for (int i = 1; i < n; i += 2) m[i] = 5 * i;
  CK_RT(cudaDeviceSynchronize());
  for (int i = 0; i < n; ++i) EXPECT(m[i] == (i % 2 == 0 ? 7 + i : 5 * i));
  // 5.
  cudaStream_t st;
  CK_RT(cudaStreamCreateWithFlags(&st, cudaStreamNonBlocking));
  addDelta<<<grid, 256, 0, st>>>(dm, n, 1);
  CK_RT(cudaStreamSynchronize(st));
  for (int i = 0; i < n; ++i) EXPECT(m[i] == (i % 2 == 0 ? 8 + i : 5 * i + 1));
  cudaEvent_t ev;
  CK_RT(cudaEventCreate(&ev));
  addDelta<<<grid, 256, 0, st>>>(dm, n, 1);
  CK_RT(cudaEventRecord(ev, st));
  CK_RT(cudaEventSynchronize(ev));
  for (int i = 0; i < n; ++i) EXPECT(m[i] == (i % 2 == 0 ? 9 + i : 5 * i + 2));
  int* d = nullptr;
  CK_RT(cudaMalloc(&d, bytes));
  m[1] = 4242;
  CK_RT(cudaMemcpy(d, dm, bytes, cudaMemcpyDeviceToDevice));
  std::vector<int> back(n);
  CK_RT(cudaMemcpy(back.data(), d, bytes, cudaMemcpyDeviceToHost));
  EXPECT(back[0] == 9 && back[1] == 4242 && back[n - 1] == 5 * (n - 1) + 2);
  // 6.
  addDelta<<<grid, 256, 0, st>>>(dm, n, 1);
  CK_RT(cudaStreamSynchronize(st));
  CK_RT(cudaHostUnregister(m));
  EXPECT(m[0] == 10 && m[1] == 4243);
  std::vector<float> plain(4096, 1.5f);
  CK_RT(cudaHostRegister(plain.data(), plain.size() * sizeof(float), cudaHostRegisterDefault));
  float* dp = nullptr;
  CK_RT(cudaHostGetDevicePointer(reinterpret_cast<void**>(&dp), plain.data(), 0));
  float first = 0;
  CK_RT(cudaMemcpy(&first, dp, sizeof first, cudaMemcpyDeviceToHost));
  EXPECT(first == 1.5f);
  CK_RT(cudaHostUnregister(plain.data()));
  CK_RT(cudaStreamDestroy(st));
  CK_RT(cudaEventDestroy(ev));
  CK_RT(cudaFree(d));
  printf("OK host_register_mapped\n");
  return 0;
}
