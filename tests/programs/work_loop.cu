// A small CUDA workload for fault and load tests: each round copies two
// vectors to the device (one synchronous, one async on a stream), adds them
// with a kernel, synchronises the stream and the device, copies the sum back
// and checks it. Every round uses a new value, so stale data is caught.
//
//   work_loop ROUNDS    ROUNDS > 0: run that many, print "PASS N", exit 0
//                       ROUNDS = 0: run until killed (fault tests)
// Prints "READY" after the first round. Exit 1 on any CUDA error or wrong
// result, with the reason on stdout (a CUDA error with the CLOCK_MONOTONIC
// time it was seen: "at=SECONDS").
#include <cuda_runtime.h>

#include <time.h>

#include <cstdio>
#include <cstdlib>
#include <vector>

// The sim backend runs this kernel by its name (backend/sim/test_kernels.cc).
__global__ void vectorAdd(const float* a, const float* b, float* c, int n) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) c[i] = a[i] + b[i];
}

// Seconds on the host's monotonic clock: tests compare it with when they
// broke the link, whatever their own polling delay.
static double Now() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec * 1e-9;
}

#define CHECK(x)                                                        \
  do {                                                                  \
    cudaError_t e_ = (x);                                               \
    if (e_ != cudaSuccess) {                                            \
      printf("FAILED %s: %s at=%.6f\n", #x, cudaGetErrorName(e_), Now()); \
      return 1;                                                         \
    }                                                                   \
  } while (0)

int main(int argc, char** argv) {
  long rounds = argc > 1 ? atol(argv[1]) : 3;
  const int n = 64 * 1024;
  const size_t bytes = n * sizeof(float);
  std::vector<float> a(n), b(n), c(n);
  float *da = nullptr, *db = nullptr, *dc = nullptr;
  cudaStream_t stream;
  CHECK(cudaMalloc(&da, bytes));
  CHECK(cudaMalloc(&db, bytes));
  CHECK(cudaMalloc(&dc, bytes));
  CHECK(cudaStreamCreate(&stream));
  for (long r = 0; rounds == 0 || r < rounds; ++r) {
    for (int i = 0; i < n; ++i) {
      a[i] = static_cast<float>(i % 977) + r;
      b[i] = static_cast<float>(r % 13);
    }
    CHECK(cudaMemcpy(da, a.data(), bytes, cudaMemcpyHostToDevice));
    CHECK(cudaMemcpyAsync(db, b.data(), bytes, cudaMemcpyHostToDevice, stream));
    vectorAdd<<<(n + 255) / 256, 256, 0, stream>>>(da, db, dc, n);
    CHECK(cudaGetLastError());
    CHECK(cudaStreamSynchronize(stream));
    CHECK(cudaMemcpy(c.data(), dc, bytes, cudaMemcpyDeviceToHost));
    CHECK(cudaDeviceSynchronize());
    for (int i = 0; i < n; ++i) {
      if (c[i] != a[i] + b[i]) {
        printf("FAILED round %ld: c[%d] = %f, want %f\n", r, i, c[i], a[i] + b[i]);
        return 1;
      }
    }
    if (r == 0) {
      printf("READY\n");
      fflush(stdout);
    }
  }
  printf("PASS %ld\n", rounds);
  return 0;
}
