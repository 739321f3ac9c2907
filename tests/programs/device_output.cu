// Device printf and host functions through rgpu: the device's output must
// reach this process's stdout before the host output that follows the
// synchronisation, and host callbacks must run in stream order.
#include <cuda_runtime.h>

#include <atomic>
#include <cstdio>

__global__ void say(int v) { printf("device says %d (thread %d)\n", v, threadIdx.x); }

static std::atomic<int> g_calls{0};
static int g_order[4];

static void CUDART_CB HostFn(void* arg) { g_order[g_calls.fetch_add(1)] = *static_cast<int*>(arg); }
static void CUDART_CB Callback(cudaStream_t, cudaError_t status, void* arg) {
  g_order[g_calls.fetch_add(1)] = status == cudaSuccess ? *static_cast<int*>(arg) : -1;
}

int main() {
  setvbuf(stdout, nullptr, _IONBF, 0);
  say<<<1, 2>>>(42);
  cudaError_t e = cudaDeviceSynchronize();
  printf("host after sync: %s\n", cudaGetErrorName(e));
  cudaStream_t s;
  if (cudaStreamCreate(&s) != cudaSuccess) return 1;
  static int one = 1, two = 2, three = 3;
  void* d = nullptr;
  if (cudaMalloc(&d, 1 << 20) != cudaSuccess) return 1;
  cudaLaunchHostFunc(s, HostFn, &one);
  cudaMemsetAsync(d, 0, 1 << 20, s);
  cudaStreamAddCallback(s, Callback, &two, 0);
  cudaLaunchHostFunc(s, HostFn, &three);
  e = cudaStreamSynchronize(s);
  printf("callbacks: %d [%d %d %d] %s\n", g_calls.load(), g_order[0], g_order[1], g_order[2],
         cudaGetErrorName(e));
  return g_calls.load() == 3 && g_order[0] == 1 && g_order[1] == 2 && g_order[2] == 3 ? 0 : 1;
}
