// cudaMemcpyBatchAsync (CUDA 12.8+): host-to-device, device-to-device and
// device-to-host copies in batches on a stream, with two attribute sets;
// the results are checked after the stream's synchronisation. A batch on the
// legacy default stream and one with a bad attribute index are refused.
// Prints "OK copy_batch".
#include "check.h"

#include <cuda_runtime.h>

#include <cstdio>
#include <vector>

int main() {
  const size_t n = 1 << 16;
  std::vector<int> a(n), b(n), back_a(n, -1), back_b(n, -1);
  for (size_t i = 0; i < n; ++i) {
    a[i] = static_cast<int>(i);
    b[i] = static_cast<int>(3 * i + 1);
  }
  int *da, *db, *dc;
  CK_RT(cudaMalloc(&da, n * sizeof(int)));
  CK_RT(cudaMalloc(&db, n * sizeof(int)));
  CK_RT(cudaMalloc(&dc, n * sizeof(int)));
  cudaStream_t st;
  CK_RT(cudaStreamCreateWithFlags(&st, cudaStreamNonBlocking));

  cudaMemcpyAttributes attrs[2] = {};
  attrs[0].srcAccessOrder = cudaMemcpySrcAccessOrderStream;
  attrs[1].srcAccessOrder = cudaMemcpySrcAccessOrderDuringApiCall;
  size_t idxs[2] = {0, 1};
  {  // host -> device
    void* dsts[2] = {da, db};
    const void* srcs[2] = {a.data(), b.data()};
    size_t sizes[2] = {n * sizeof(int), n * sizeof(int)};
    CK_RT(cudaMemcpyBatchAsync(dsts, srcs, sizes, 2, attrs, idxs, 2, st));
  }
  {  // device -> device, then device -> host (next batch: stream order)
    void* dsts[1] = {dc};
    const void* srcs[1] = {db};
    size_t sizes[1] = {n * sizeof(int)};
    CK_RT(cudaMemcpyBatchAsync(dsts, srcs, sizes, 1, attrs, idxs, 1, st));
  }
  {
    void* dsts[2] = {back_a.data(), back_b.data()};
    const void* srcs[2] = {da, dc};
    size_t sizes[2] = {n * sizeof(int), n * sizeof(int)};
    CK_RT(cudaMemcpyBatchAsync(dsts, srcs, sizes, 2, attrs, idxs, 1, st));
  }
  CK_RT(cudaStreamSynchronize(st));
  for (size_t i = 0; i < n; ++i) {
    if (back_a[i] != a[i] || back_b[i] != b[i]) {
      printf("FAIL at %zu: %d %d\n", i, back_a[i], back_b[i]);
      return 1;
    }
  }
  void* dsts[1] = {da};
  const void* srcs[1] = {db};
  size_t sizes[1] = {16};
  if (cudaMemcpyBatchAsync(dsts, srcs, sizes, 1, attrs, idxs, 1, 0) == cudaSuccess) {
    printf("FAIL a batch on the legacy stream was accepted\n");
    return 1;
  }
  (void)cudaGetLastError();
  size_t bad_idxs[1] = {1};
  if (cudaMemcpyBatchAsync(dsts, srcs, sizes, 1, attrs, bad_idxs, 1, st) == cudaSuccess) {
    printf("FAIL a batch whose first attribute index is not 0 was accepted\n");
    return 1;
  }
  (void)cudaGetLastError();
  CK_RT(cudaStreamDestroy(st));
  printf("OK copy_batch\n");
  return 0;
}
