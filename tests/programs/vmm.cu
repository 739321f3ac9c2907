// Virtual memory management through rgpu (what PyTorch's expandable segments
// do): reserve a range, back it with two physical allocations mapped end to
// end, copy across the seam both ways, then tear everything down.
#include "check.h"

#include <cuda.h>

#include <cstdio>
#include <vector>

int main() {
  CUdevice dev;
  UsePrimaryContext(&dev);
  CUmemAllocationProp prop = {};
  prop.type = CU_MEM_ALLOCATION_TYPE_PINNED;
  prop.location.type = CU_MEM_LOCATION_TYPE_DEVICE;
  prop.location.id = dev;
  size_t gran = 0;
  CK(cuMemGetAllocationGranularity(&gran, &prop, CU_MEM_ALLOC_GRANULARITY_MINIMUM));
  if (gran == 0) { printf("FAIL granularity 0\n"); return 1; }
  CUdeviceptr base = 0;
  CK(cuMemAddressReserve(&base, 4 * gran, 0, 0, 0));
  CUmemGenericAllocationHandle h[2];
  for (int i = 0; i < 2; ++i) {
    CK(cuMemCreate(&h[i], gran, &prop, 0));
    CK(cuMemMap(base + i * gran, gran, 0, h[i], 0));
  }
  CUmemAccessDesc access = {};
  access.location = prop.location;
  access.flags = CU_MEM_ACCESS_FLAGS_PROT_READWRITE;
  CK(cuMemSetAccess(base, 2 * gran, &access, 1));
  CUmemAllocationProp back = {};
  CK(cuMemGetAllocationPropertiesFromHandle(&back, h[1]));
  if (back.location.id != dev) { printf("FAIL properties\n"); return 1; }
  CUmemGenericAllocationHandle again;
  CK(cuMemRetainAllocationHandle(&again, reinterpret_cast<void*>(base + gran + 5)));
  if (again != h[1]) { printf("FAIL retained handle\n"); return 1; }
  CK(cuMemRelease(again));
  // A copy across the seam between the two mappings.
  size_t n = gran;
  std::vector<unsigned char> in(n), out(n);
  for (size_t i = 0; i < n; ++i) in[i] = static_cast<unsigned char>(i * 7 + 3);
  CUdeviceptr mid = base + gran / 2;
  CK(cuMemcpyHtoD(mid, in.data(), n));
  CK(cuMemcpyDtoH(out.data(), mid, n));
  for (size_t i = 0; i < n; ++i)
    if (out[i] != in[i]) { printf("FAIL data at %zu\n", i); return 1; }
  // Past the mapped part: refused.
  if (cuMemcpyHtoD(base + 2 * gran - 16, in.data(), 32) == CUDA_SUCCESS) { printf("FAIL unmapped copy\n"); return 1; }
  for (int i = 0; i < 2; ++i) {
    CK(cuMemUnmap(base + i * gran, gran));
    CK(cuMemRelease(h[i]));
  }
  CK(cuMemAddressFree(base, 4 * gran));
  // Stream-ordered allocation.
  CUstream st;
  CK(cuStreamCreate(&st, CU_STREAM_NON_BLOCKING));
  CUdeviceptr a = 0;
  CK(cuMemAllocAsync(&a, 4096, st));
  CK(cuMemcpyHtoDAsync(a, in.data(), 4096, st));
  CK(cuMemcpyDtoHAsync(out.data(), a, 4096, st));
  CK(cuMemFreeAsync(a, st));
  CK(cuStreamSynchronize(st));
  for (size_t i = 0; i < 4096; ++i)
    if (out[i] != in[i]) { printf("FAIL async alloc data at %zu\n", i); return 1; }
  CK(cuStreamDestroy(st));
  CK(cuCtxSynchronize());
  printf("OK vmm\n");
  return 0;
}
