// Managed memory through rgpu: host writes must reach the device before GPU
// work, device writes must be visible to the host afterwards, for a small
// allocation (fetched whole) and a large one (fetched by blocks). Uses only
// copies and memsets, so it runs on the sim backend without kernels.
#include "check.h"

#include <cuda_runtime.h>

#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

static int Check(size_t n) {
  unsigned* m = nullptr;
  unsigned* d = nullptr;
  CK_RT(cudaMallocManaged(&m, n * sizeof(unsigned)));
  CK_RT(cudaMalloc(&d, n * sizeof(unsigned)));
  for (size_t i = 0; i < n; ++i) m[i] = static_cast<unsigned>(i * 3 + 1);  // host writes
  CK_RT(cudaMemcpy(d, m, n * sizeof(unsigned), cudaMemcpyDefault));             // device reads them
  std::vector<unsigned> h(n);
  CK_RT(cudaMemcpy(h.data(), d, n * sizeof(unsigned), cudaMemcpyDeviceToHost));
  for (size_t i = 0; i < n; ++i)
    if (h[i] != i * 3 + 1) { printf("FAIL host->device at %zu: %u\n", i, h[i]); return 1; }
  CK_RT(cudaMemset(m, 0, n * sizeof(unsigned)));  // the device writes managed memory
  CK_RT(cudaDeviceSynchronize());
  for (size_t i = 0; i < n; i += 997)
    if (m[i] != 0) { printf("FAIL device memset not visible at %zu: %u\n", i, m[i]); return 1; }
  CK_RT(cudaMemcpy(m, d, n * sizeof(unsigned), cudaMemcpyDeviceToDevice));
  CK_RT(cudaDeviceSynchronize());
  for (size_t i = 0; i < n; ++i)
    if (m[i] != i * 3 + 1) { printf("FAIL device copy not visible at %zu: %u\n", i, m[i]); return 1; }
  m[n - 1] = 12345;  // a host write after a host read of the same block
  CK_RT(cudaMemcpy(h.data(), m, n * sizeof(unsigned), cudaMemcpyDefault));
  if (h[n - 1] != 12345 || h[0] != 1) { printf("FAIL host write lost: %u %u\n", h[n - 1], h[0]); return 1; }
  // Attached to one stream (CUDA sample UnifiedMemoryStreams): that
  // stream's work and the host after its synchronisation see each other.
  cudaStream_t st;
  CK_RT(cudaStreamCreate(&st));
  CK_RT(cudaStreamAttachMemAsync(st, m, 0, cudaMemAttachSingle));
  CK_RT(cudaMemsetAsync(m, 0x7f, n * sizeof(unsigned), st));
  CK_RT(cudaStreamSynchronize(st));
  if (m[0] != 0x7f7f7f7fu || m[n - 1] != 0x7f7f7f7fu) { printf("FAIL attached stream's write: %x\n", m[0]); return 1; }
  CK_RT(cudaStreamAttachMemAsync(st, m, 0, cudaMemAttachHost));
  m[0] = 5;  // the host owns it now
  CK_RT(cudaStreamAttachMemAsync(st, m, 0, cudaMemAttachGlobal));
  CK_RT(cudaMemcpy(h.data(), m, sizeof(unsigned), cudaMemcpyDefault));
  if (h[0] != 5) { printf("FAIL host write after attach: %u\n", h[0]); return 1; }
  if (cudaStreamAttachMemAsync(st, d, 0, cudaMemAttachSingle) == cudaSuccess) {
    printf("FAIL attach accepted device memory\n");
    return 1;
  }
  (void)cudaGetLastError();
  CK_RT(cudaStreamDestroy(st));
  cudaPointerAttributes a;
  CK_RT(cudaPointerGetAttributes(&a, m));
  if (a.type != cudaMemoryTypeManaged) { printf("FAIL pointer type %d\n", a.type); return 1; }
  CK_RT(cudaFree(m));
  CK_RT(cudaFree(d));
  return 0;
}

int main(int argc, char** argv) {
  // Managed memory is there; pageable host memory is not reachable from the
  // GPU. With "rgpu" (e2e_test): neither is registered memory by its host
  // pointer, as rgpu says (the sim's profile, an H200's, and a local H100
  // say 1).
  bool rgpu = argc > 1 && std::string(argv[1]) == "rgpu";
  int managed = -1, pageable = -1, registered = -1;
  CK_RT(cudaDeviceGetAttribute(&managed, cudaDevAttrManagedMemory, 0));
  CK_RT(cudaDeviceGetAttribute(&pageable, cudaDevAttrPageableMemoryAccess, 0));
  CK_RT(cudaDeviceGetAttribute(&registered, cudaDevAttrCanUseHostPointerForRegisteredMem, 0));
  if (managed != 1 || pageable != 0 || (rgpu && registered != 0)) {
    printf("FAIL attributes: managed %d pageable %d registered %d\n", managed, pageable, registered);
    return 1;
  }
  if (Check(1000)) return 1;              // 4 KB: fetched whole
  if (Check(12u << 20)) return 1;         // 48 MB: fetched by blocks
  printf("OK managed\n");
  return 0;
}
