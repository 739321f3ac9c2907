// Test program for link-failure behaviour: copies in a loop until a call
// fails, then reports which error it got and how long after the failure
// started. Prints READY once the session works. Exit codes: 0 never failed
// (stopped after --seconds), 3 a call failed (the expected outcome when the
// worker is killed), 1 setup failed.
#include <cuda_runtime.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <thread>
#include <vector>

int main(int argc, char** argv) {
  double seconds = argc > 1 ? atof(argv[1]) : 10;
  std::vector<char> host(1 << 20, 7), back(1 << 20);
  void* dev = nullptr;
  cudaError_t e = cudaMalloc(&dev, host.size());
  if (e != cudaSuccess) {
    printf("SETUP-FAILED %s\n", cudaGetErrorName(e));
    return 1;
  }
  printf("READY\n");
  fflush(stdout);
  auto start = std::chrono::steady_clock::now();
  while (std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count() < seconds) {
    e = cudaMemcpy(dev, host.data(), host.size(), cudaMemcpyHostToDevice);
    if (e == cudaSuccess) e = cudaMemcpy(back.data(), dev, back.size(), cudaMemcpyDeviceToHost);
    if (e == cudaSuccess) e = cudaDeviceSynchronize();
    if (e != cudaSuccess) {
      printf("FAILED %s\n", cudaGetErrorName(e));
      // Every later call must fail quickly too, not hang.
      cudaError_t again = cudaMemcpy(back.data(), dev, back.size(), cudaMemcpyDeviceToHost);
      printf("AGAIN %s\n", cudaGetErrorName(again));
      return 3;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  printf("NEVER-FAILED\n");
  return 0;
}
