// Stream-ordered allocation with memory pools (as CUDA sample
// streamOrderedAllocation does it): the default pool's release threshold,
// used-memory statistics, an explicit pool with cudaMallocFromPoolAsync,
// cudaDeviceSetMemPool, trimming and destruction. Checks hold on a real GPU
// too (statistics are compared as lower bounds where the driver rounds).
#define E2E_PROGRAM "mem_pool"
#include <cuda_runtime.h>

#include <cstdint>
#include <cstdio>
#include <vector>

#include "runtime_check.h"

// Same kernel as vector_add.cu (the sim runs it by mangled name).
__global__ void vectorAdd(const float* a, const float* b, float* c, int n) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) c[i] = a[i] + b[i];
}

uint64_t Attr(cudaMemPool_t pool, cudaMemPoolAttr attr) {
  uint64_t v = 0;
  CHECK(cudaMemPoolGetAttribute(pool, attr, &v));
  return v;
}

int main() {
  const int n = 1 << 16;
  const size_t bytes = n * sizeof(float);
  cudaStream_t stream;
  CHECK(cudaStreamCreate(&stream));

  cudaMemPool_t def, cur;
  CHECK(cudaDeviceGetDefaultMemPool(&def, 0));
  CHECK(cudaDeviceGetMemPool(&cur, 0));
  EXPECT(def == cur, "the current pool starts as the default pool");
  uint64_t threshold = UINT64_MAX;
  CHECK(cudaMemPoolSetAttribute(def, cudaMemPoolAttrReleaseThreshold, &threshold));
  EXPECT(Attr(def, cudaMemPoolAttrReleaseThreshold) == UINT64_MAX, "release threshold reads back");
  uint64_t used_before = Attr(def, cudaMemPoolAttrUsedMemCurrent);

  std::vector<float> ha(n), hb(n), hc(n);
  for (int i = 0; i < n; ++i) {
    ha[i] = float(i);
    hb[i] = float(3 * i);
  }
  float *a, *b, *c;
  CHECK(cudaMallocAsync(&a, bytes, stream));
  CHECK(cudaMallocAsync(&b, bytes, stream));
  CHECK(cudaMallocAsync(&c, bytes, stream));
  EXPECT(Attr(def, cudaMemPoolAttrUsedMemCurrent) >= used_before + 3 * bytes, "used memory counts 3 buffers");
  CHECK(cudaMemcpyAsync(a, ha.data(), bytes, cudaMemcpyHostToDevice, stream));
  CHECK(cudaMemcpyAsync(b, hb.data(), bytes, cudaMemcpyHostToDevice, stream));
  vectorAdd<<<(n + 255) / 256, 256, 0, stream>>>(a, b, c, n);
  CHECK(cudaGetLastError());
  CHECK(cudaMemcpyAsync(hc.data(), c, bytes, cudaMemcpyDeviceToHost, stream));
  CHECK(cudaFreeAsync(a, stream));
  CHECK(cudaFreeAsync(b, stream));
  CHECK(cudaFreeAsync(c, stream));
  CHECK(cudaStreamSynchronize(stream));
  for (int i = 0; i < n; ++i) EXPECT(hc[i] == float(4 * i), "c[%d] = %f", i, hc[i]);
  EXPECT(Attr(def, cudaMemPoolAttrUsedMemCurrent) == used_before, "all freed");
  EXPECT(Attr(def, cudaMemPoolAttrUsedMemHigh) >= 3 * bytes, "high watermark");
  uint64_t zero = 0;
  CHECK(cudaMemPoolSetAttribute(def, cudaMemPoolAttrUsedMemHigh, &zero));
  uint64_t one = 1;
  EXPECT(cudaMemPoolSetAttribute(def, cudaMemPoolAttrUsedMemHigh, &one) == cudaErrorInvalidValue,
         "a watermark can only be reset to 0");
  CHECK(cudaMemPoolTrimTo(def, 0));

  // An explicit device pool, made current for cudaMallocAsync.
  cudaMemPoolProps props = {};
  props.allocType = cudaMemAllocationTypePinned;
  props.handleTypes = cudaMemHandleTypeNone;
  props.location.type = cudaMemLocationTypeDevice;
  props.location.id = 0;
  cudaMemPool_t pool;
  CHECK(cudaMemPoolCreate(&pool, &props));
  float* p;
  CHECK(cudaMallocFromPoolAsync(&p, bytes, pool, stream));
  EXPECT(Attr(pool, cudaMemPoolAttrUsedMemCurrent) >= bytes, "the explicit pool counts its allocation");
  CHECK(cudaMemsetAsync(p, 0, bytes, stream));
  CHECK(cudaFreeAsync(p, stream));
  CHECK(cudaDeviceSetMemPool(0, pool));
  CHECK(cudaMallocAsync(&p, bytes, stream));
  EXPECT(Attr(pool, cudaMemPoolAttrUsedMemCurrent) >= bytes, "cudaMallocAsync uses the current pool");
  CHECK(cudaFreeAsync(p, stream));
  CHECK(cudaStreamSynchronize(stream));
  EXPECT(Attr(pool, cudaMemPoolAttrUsedMemCurrent) == 0, "explicit pool empty again");
  cudaMemAccessFlags flags;
  cudaMemLocation loc = {cudaMemLocationTypeDevice, 0};
  CHECK(cudaMemPoolGetAccess(&flags, pool, &loc));
  EXPECT(flags == cudaMemAccessFlagsProtReadWrite, "the owning device has read-write access");
  CHECK(cudaMemPoolDestroy(pool));
  CHECK(cudaDeviceGetMemPool(&cur, 0));
  EXPECT(cur == def, "destroying the current pool makes the default current again");

  CHECK(cudaStreamDestroy(stream));
  printf("mem_pool: OK\n");
  return 0;
}
