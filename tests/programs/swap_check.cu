// Test program for idle detach and reattach: allocates small and large
// buffers, fills them, then alternates idle time (during which the server may
// detach the session) and compute through the same pointers, checking every
// byte each round. Run over rgpu it must behave exactly as on a local GPU.
// A stream, an event and a kernel made before the first idle period are used
// in every round: they must survive a detach, and a move to another GPU.
//
//   swap_check ROUNDS IDLE_SECONDS [pin]
// `pin`: ask for a module global's address first (cudaGetSymbolAddress),
// which keeps the session on its own GPU at reattach (it cannot move).
// Without it the module still has that global, which the program never asks
// for: a move copies its contents to the reloaded module by name.
// Prints READY after setup and "ROUND r OK" after each checked round; exit
// codes: 0 all intact, 2 data or pointer check failed, 1 a CUDA call failed.
#include "check.h"

#include <cuda_runtime.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <thread>
#include <vector>

// The same kernel the sim backend registers (backend/sim/test_kernels.cc).
__global__ void scaleInPlace(float* x, float s, int n) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) x[i] *= s;
}

__device__ int g_pin = 0;

int main(int argc, char** argv) {
  int rounds = argc > 1 ? atoi(argv[1]) : 2;
  double idle = argc > 2 ? atof(argv[2]) : 1.0;
  bool pin = argc > 3 && strcmp(argv[3], "pin") == 0;
  const int n = 2 << 20;              // 8 MiB of floats: a chunk of its own
  const size_t marker_bytes = 16u << 20;  // the pattern wipe_check looks for
  float* data = nullptr;
  int* tiny = nullptr;
  unsigned char* marker = nullptr;
  CK_RT(cudaMalloc(&data, n * sizeof(float)));
  CK_RT(cudaMalloc(&tiny, sizeof(int)));  // small: shares a chunk
  CK_RT(cudaMalloc(&marker, marker_bytes));
  std::vector<float> h(n), back(n);
  for (int i = 0; i < n; ++i) h[i] = static_cast<float>(i % 1000) * 0.5f;
  CK_RT(cudaMemcpy(data, h.data(), n * sizeof(float), cudaMemcpyHostToDevice));
  int seven = 7;
  CK_RT(cudaMemcpy(tiny, &seven, sizeof seven, cudaMemcpyHostToDevice));
  CK_RT(cudaMemset(marker, 0xAB, marker_bytes));
  cudaStream_t stream;
  CK_RT(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
  cudaEvent_t done;
  CK_RT(cudaEventCreateWithFlags(&done, cudaEventDisableTiming));
  // The kernel's module is loaded now (the client uploads it at first use),
  // so it is part of what a detach keeps and a move loads again.
  scaleInPlace<<<(n + 255) / 256, 256, 0, stream>>>(data, 1.0f, n);
  CK_RT(cudaGetLastError());
  if (pin) {
    void* where = nullptr;
    CK_RT(cudaGetSymbolAddress(&where, g_pin));
  }
  CK_RT(cudaDeviceSynchronize());
  printf("READY\n");  // no addresses: the output is compared with a local run
  fflush(stdout);
  std::vector<unsigned char> mk(marker_bytes);
  float scale = 1;
  for (int r = 0; r < rounds; ++r) {
    std::this_thread::sleep_for(std::chrono::duration<double>(idle));
    // Compute on the old pointers: they must still name this session's data.
    scaleInPlace<<<(n + 255) / 256, 256, 0, stream>>>(data, 2.0f, n);
    CK_RT(cudaGetLastError());
    CK_RT(cudaEventRecord(done, stream));
    CK_RT(cudaEventSynchronize(done));
    CK_RT(cudaStreamSynchronize(stream));
    scale *= 2;
    CK_RT(cudaMemcpy(back.data(), data, n * sizeof(float), cudaMemcpyDeviceToHost));
    for (int i = 0; i < n; ++i)
      if (back[i] != h[i] * scale) {
        printf("DATA-WRONG round %d at %d: %g != %g\n", r, i, back[i], h[i] * scale);
        return 2;
      }
    int t = 0;
    CK_RT(cudaMemcpy(&t, tiny, sizeof t, cudaMemcpyDeviceToHost));
    CK_RT(cudaMemcpy(mk.data(), marker, marker_bytes, cudaMemcpyDeviceToHost));
    if (t != 7) {
      printf("TINY-WRONG round %d: %d\n", r, t);
      return 2;
    }
    for (size_t i = 0; i < marker_bytes; ++i)
      if (mk[i] != 0xAB) {
        printf("MARKER-WRONG round %d at %zu\n", r, i);
        return 2;
      }
    printf("ROUND %d OK\n", r);
    fflush(stdout);
  }
  CK_RT(cudaEventDestroy(done));
  CK_RT(cudaStreamDestroy(stream));
  CK_RT(cudaFree(data));
  CK_RT(cudaFree(tiny));
  CK_RT(cudaFree(marker));
  printf("ALL OK\n");
  return 0;
}
