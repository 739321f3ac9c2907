// Plain pinned host memory used by kernels: on a local GPU, unified
// addressing lets a kernel dereference a cudaMallocHost pointer (XLA's GPU
// timer spins on one). Through rgpu such a buffer is promoted when a kernel
// is given a pointer into it: vectorAdd reads and writes cudaMallocHost
// buffers through their host pointers, twice (host writes after GPU work
// reach the GPU again, and the kernel's results reach the host), on a few
// MiB and on a tiny buffer, and from a graph's kernel node. cudaHostGetDevicePointer on a cudaMallocHost
// buffer succeeds with the same pointer; a pinned buffer never given to a
// kernel still serves async copies, and one given to a kernel does too;
// cudaFreeHost frees promoted and unpromoted buffers. Prints "OK pinned_kernel_access".
#include "check.h"

#include <cuda_runtime.h>

#include <cstdio>
#include <cstring>

// The sim backend runs this kernel by its name (backend/sim/test_kernels.cc).
__global__ void vectorAdd(const float* a, const float* b, float* c, int n) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) c[i] = a[i] + b[i];
}

static int Check(const float* a, const float* b, const float* c, int n, const char* what, int round) {
  for (int i = 0; i < n; ++i) {
    if (c[i] != a[i] + b[i]) {
      printf("FAIL %s round %d: c[%d] = %f, want %f\n", what, round, i, c[i], a[i] + b[i]);
      return 1;
    }
  }
  return 0;
}

int main() {
  const int n = 1 << 20;  // 4 MiB per buffer
  float *a = nullptr, *b = nullptr, *c = nullptr;
  CK_RT(cudaMallocHost(&a, n * sizeof(float)));
  CK_RT(cudaMallocHost(&b, n * sizeof(float)));
  CK_RT(cudaHostAlloc(&c, n * sizeof(float), cudaHostAllocPortable));
  float *ta = nullptr, *tb = nullptr, *tc = nullptr;  // tiny ones
  CK_RT(cudaMallocHost(&ta, 3 * sizeof(float)));
  CK_RT(cudaMallocHost(&tb, 3 * sizeof(float)));
  CK_RT(cudaMallocHost(&tc, 3 * sizeof(float)));
  for (int round = 0; round < 2; ++round) {
    for (int i = 0; i < n; ++i) {
      a[i] = static_cast<float>(i % 1000) + round;
      b[i] = static_cast<float>(round * 7);
      c[i] = -1;
    }
    for (int i = 0; i < 3; ++i) {
      ta[i] = static_cast<float>(i + 10 * round);
      tb[i] = 0.5f;
      tc[i] = -1;
    }
    vectorAdd<<<(n + 255) / 256, 256>>>(a, b, c, n);
    CK_RT(cudaGetLastError());
    vectorAdd<<<1, 32>>>(ta, tb, tc, 3);
    CK_RT(cudaGetLastError());
    CK_RT(cudaDeviceSynchronize());
    if (Check(a, b, c, n, "large", round) || Check(ta, tb, tc, 3, "tiny", round)) return 1;
  }
  // The device pointer of plain pinned memory is its host pointer, as with
  // unified addressing on a local GPU.
  float* plain = nullptr;
  CK_RT(cudaMallocHost(&plain, 4096));
  float* dplain = nullptr;
  CK_RT(cudaHostGetDevicePointer(&dplain, plain, 0));
  if (dplain != plain) {
    printf("FAIL cudaHostGetDevicePointer gave %p for %p\n", static_cast<void*>(dplain), static_cast<void*>(plain));
    return 1;
  }
  for (int i = 0; i < 3; ++i) plain[i] = 100.0f + i;
  vectorAdd<<<1, 32>>>(dplain, tb, tc, 3);
  CK_RT(cudaDeviceSynchronize());
  if (Check(plain, tb, tc, 3, "device pointer", 0)) return 1;
  cudaPointerAttributes attr;
  CK_RT(cudaPointerGetAttributes(&attr, a));
  if (attr.type != cudaMemoryTypeHost || attr.hostPointer != a) {
    printf("FAIL attributes of a promoted buffer: type %d host %p\n", attr.type, attr.hostPointer);
    return 1;
  }
  // A graph's kernel node given pinned buffers never used before: the
  // graph's launches reach them too, after host writes between launches.
  {
    const int m = 1000;
    float *ga = nullptr, *gb = nullptr, *gc = nullptr;
    CK_RT(cudaMallocHost(&ga, m * sizeof(float)));
    CK_RT(cudaMallocHost(&gb, m * sizeof(float)));
    CK_RT(cudaMallocHost(&gc, m * sizeof(float)));
    cudaGraph_t g;
    CK_RT(cudaGraphCreate(&g, 0));
    int gm = m;
    void* args[] = {&ga, &gb, &gc, &gm};
    cudaKernelNodeParams kp = {};
    kp.func = reinterpret_cast<void*>(vectorAdd);
    kp.gridDim = dim3((m + 255) / 256);
    kp.blockDim = dim3(256);
    kp.kernelParams = args;
    cudaGraphNode_t node;
    CK_RT(cudaGraphAddKernelNode(&node, g, nullptr, 0, &kp));
    cudaGraphExec_t ge;
    CK_RT(cudaGraphInstantiate(&ge, g, 0));
    for (int round = 0; round < 2; ++round) {
      for (int i = 0; i < m; ++i) {
        ga[i] = static_cast<float>(i + round);
        gb[i] = 2.0f * round;
        gc[i] = -1;
      }
      CK_RT(cudaGraphLaunch(ge, 0));
      CK_RT(cudaStreamSynchronize(0));
      if (Check(ga, gb, gc, m, "graph", round)) return 1;
    }
    CK_RT(cudaGraphExecDestroy(ge));
    CK_RT(cudaGraphDestroy(g));
    for (float* p : {ga, gb, gc}) CK_RT(cudaFreeHost(p));
  }
  // Async copies through pinned buffers: one never given to a kernel, and
  // a promoted one (whose copies become device-side ones).
  float* staging = nullptr;
  CK_RT(cudaMallocHost(&staging, n * sizeof(float)));
  float* dev = nullptr;
  CK_RT(cudaMalloc(&dev, n * sizeof(float)));
  cudaStream_t st;
  CK_RT(cudaStreamCreate(&st));
  for (float* host : {staging, a}) {
    for (int i = 0; i < n; ++i) host[i] = static_cast<float>(i) * 0.25f;
    CK_RT(cudaMemcpyAsync(dev, host, n * sizeof(float), cudaMemcpyHostToDevice, st));
    CK_RT(cudaStreamSynchronize(st));
    memset(host, 0, n * sizeof(float));
    CK_RT(cudaMemcpyAsync(host, dev, n * sizeof(float), cudaMemcpyDeviceToHost, st));
    CK_RT(cudaStreamSynchronize(st));
    for (int i = 0; i < n; ++i) {
      if (host[i] != static_cast<float>(i) * 0.25f) {
        printf("FAIL async copy through %s pinned memory: [%d] = %f\n", host == a ? "promoted" : "unpromoted", i,
               host[i]);
        return 1;
      }
    }
  }
  CK_RT(cudaStreamDestroy(st));
  CK_RT(cudaFree(dev));
  for (float* p : {a, b, c, ta, tb, tc, plain, staging}) CK_RT(cudaFreeHost(p));
  // Freed buffers are gone: a second cudaFreeHost is refused.
  if (cudaFreeHost(a) == cudaSuccess) {
    printf("FAIL cudaFreeHost freed a buffer twice\n");
    return 1;
  }
  (void)cudaGetLastError();
  printf("OK pinned_kernel_access\n");
  return 0;
}
