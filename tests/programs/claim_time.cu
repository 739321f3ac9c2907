// Timing probe for GPU claims and hand-overs. Prints wall-clock timestamps
// (microseconds, CLOCK_REALTIME): t_start at entry, t_ready once a first
// kernel has run, and -- after holding the GPU for argv[1] seconds --
// t_exit just before returning. bench/timeslice.sh turns them into claim and
// hand-over latencies.
#include <cuda_runtime.h>
#include <time.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>

__global__ void touch(int* p) { *p = 1; }

static long long Now() {
  timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return ts.tv_sec * 1000000LL + ts.tv_nsec / 1000;
}

int main(int argc, char** argv) {
  long long start = Now();
  int* d = nullptr;
  if (cudaMalloc(&d, 4) != cudaSuccess) return 1;
  touch<<<1, 1>>>(d);
  printf("launch %s\n", cudaGetErrorName(cudaGetLastError()));
  cudaError_t e = cudaDeviceSynchronize();
  printf("sync %s\n", cudaGetErrorName(e));
  if (e != cudaSuccess) return 1;
  long long ready = Now();
  printf("t_start %lld\nt_ready %lld\n", start, ready);
  fflush(stdout);
  if (argc > 1) usleep(static_cast<useconds_t>(atof(argv[1]) * 1e6));
  printf("t_exit %lld\n", Now());
  fflush(stdout);
  return 0;
}
