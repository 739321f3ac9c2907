// multi_gpu: a program that uses every GPU it sees (run with RGPU_GPUS=N).
//
// Checks, printing one line each: the device count (DEVICES n, and EXPECT=n
// in the environment must match when set), that fresh memory on every device
// reads as zeros (ZEROS d), a computation on every device (COMPUTE d), peer
// access (PEER a->b v; enabled both ways when offered, and enabling twice
// answers cudaErrorPeerAccessAlreadyEnabled), copies between devices with
// cudaMemcpyPeer, cudaMemcpyPeerAsync, plain device-to-device cudaMemcpy and
// cudaMemcpy3DPeer (COPY ...), and a stream on one device waiting for an event recorded on
// another (EVENT). Ends with MULTI-OK.
// Argument: seconds to hold the GPUs after printing READY (default 0); the
// memory is left filled with a pattern, for the next session to not see it.
// Exit codes: 0 all correct, 1 a CUDA call failed or a check did not hold,
// 2 cuInit/device count failed (INIT-FAILED <error> is printed).
#include <cuda_runtime.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <thread>
#include <vector>

#define CHECK(call)                                                                      \
  do {                                                                                   \
    cudaError_t e_ = (call);                                                             \
    if (e_ != cudaSuccess) {                                                             \
      printf("FAILED %s:%d %s: %s\n", __FILE__, __LINE__, #call, cudaGetErrorName(e_)); \
      return 1;                                                                          \
    }                                                                                    \
  } while (0)
#define EXPECT(cond, ...)        \
  do {                           \
    if (!(cond)) {               \
      printf("WRONG: ");         \
      printf(__VA_ARGS__);       \
      printf("\n");              \
      return 1;                  \
    }                            \
  } while (0)

// The same kernels as tests/e2e/vector_add.cu (the sim runs them by name).
__global__ void vectorAdd(const float* a, const float* b, float* c, int n) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) c[i] = a[i] + b[i];
}

__global__ void scaleInPlace(float* x, float s, int n) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) x[i] *= s;
}

namespace {
constexpr int kN = 1 << 20;
constexpr size_t kBytes = kN * sizeof(float);

float Want(int dev, int i) { return (static_cast<float>(i % 4096) + dev + 1) * (dev + 1); }

int CheckResult(const float* dptr, int want_dev, const char* what) {
  std::vector<float> h(kN, -1.0f);
  CHECK(cudaMemcpy(h.data(), dptr, kBytes, cudaMemcpyDeviceToHost));
  for (int i = 0; i < kN; ++i)
    EXPECT(h[i] == Want(want_dev, i), "%s: [%d] = %f, want %f", what, i, h[i], Want(want_dev, i));
  return 0;
}
}  // namespace

int main(int argc, char** argv) {
  double hold = argc > 1 ? atof(argv[1]) : 0;
  int count = 0;
  cudaError_t e = cudaGetDeviceCount(&count);
  if (e != cudaSuccess) {
    printf("INIT-FAILED %s\n", cudaGetErrorName(e));
    return 2;
  }
  printf("DEVICES %d\n", count);
  if (const char* want = getenv("EXPECT")) EXPECT(count == atoi(want), "%d devices, want %s", count, want);
  for (int d = 0; d < count; ++d) {
    cudaDeviceProp p{};
    CHECK(cudaGetDeviceProperties(&p, d));
    printf("DEVICE %d %s pci %d\n", d, p.name, p.pciBusID);
    for (int o = 0; o < d; ++o) {
      cudaDeviceProp q{};
      CHECK(cudaGetDeviceProperties(&q, o));
      EXPECT(memcmp(&p.uuid, &q.uuid, sizeof p.uuid) != 0, "devices %d and %d have the same UUID", o, d);
    }
  }

  // Per device: a fresh buffer reads as zeros, then c = (a + b) * (d + 1).
  std::vector<float*> a(count), b(count), c(count);
  std::vector<float> ha(kN);
  for (int i = 0; i < kN; ++i) ha[i] = static_cast<float>(i % 4096);
  for (int d = 0; d < count; ++d) {
    CHECK(cudaSetDevice(d));
    CHECK(cudaMalloc(&a[d], kBytes));
    CHECK(cudaMalloc(&b[d], kBytes));
    CHECK(cudaMalloc(&c[d], kBytes));
    std::vector<unsigned char> fresh(kBytes, 0x11);
    CHECK(cudaMemcpy(fresh.data(), c[d], kBytes, cudaMemcpyDeviceToHost));
    size_t dirty = 0;
    for (unsigned char x : fresh) dirty += x != 0;
    EXPECT(dirty == 0, "device %d: %zu non-zero bytes in fresh memory", d, dirty);
    printf("ZEROS %d\n", d);
    std::vector<float> hb(kN, static_cast<float>(d + 1));
    CHECK(cudaMemcpy(a[d], ha.data(), kBytes, cudaMemcpyHostToDevice));
    CHECK(cudaMemcpy(b[d], hb.data(), kBytes, cudaMemcpyHostToDevice));
    vectorAdd<<<(kN + 255) / 256, 256>>>(a[d], b[d], c[d], kN);
    CHECK(cudaGetLastError());
    scaleInPlace<<<(kN + 255) / 256, 256>>>(c[d], static_cast<float>(d + 1), kN);
    CHECK(cudaGetLastError());
    CHECK(cudaDeviceSynchronize());
    if (CheckResult(c[d], d, "compute") != 0) return 1;
    int current = -1;
    CHECK(cudaGetDevice(&current));
    EXPECT(current == d, "current device %d, want %d", current, d);
    printf("COMPUTE %d\n", d);
  }

  if (count >= 2) {
    for (int x = 0; x < 2; ++x) {
      int y = 1 - x, can = -1;
      CHECK(cudaDeviceCanAccessPeer(&can, x, y));
      printf("PEER %d->%d %d\n", x, y, can);
      if (can) {
        CHECK(cudaSetDevice(x));
        CHECK(cudaDeviceEnablePeerAccess(y, 0));
        e = cudaDeviceEnablePeerAccess(y, 0);
        EXPECT(e == cudaErrorPeerAccessAlreadyEnabled, "enabling twice: %s", cudaGetErrorName(e));
        (void)cudaGetLastError();
      }
    }
    // Device 0's result to device 1 and back, three ways.
    CHECK(cudaSetDevice(1));
    CHECK(cudaMemcpyPeer(a[1], 1, c[0], 0, kBytes));
    if (CheckResult(a[1], 0, "cudaMemcpyPeer") != 0) return 1;
    printf("COPY peer 0->1\n");
    cudaStream_t s1;
    CHECK(cudaStreamCreate(&s1));
    CHECK(cudaMemcpyPeerAsync(b[0], 0, c[1], 1, kBytes, s1));
    CHECK(cudaStreamSynchronize(s1));
    if (CheckResult(b[0], 1, "cudaMemcpyPeerAsync") != 0) return 1;
    printf("COPY peer-async 1->0\n");
    CHECK(cudaSetDevice(0));
    CHECK(cudaMemcpy(a[0], c[1], kBytes, cudaMemcpyDeviceToDevice));
    if (CheckResult(a[0], 1, "cudaMemcpy device to device") != 0) return 1;
    printf("COPY d2d 1->0\n");
    // A 3D peer copy (cudaMemcpy3DPeer reaches cuMemcpy3DPeer): device 0's
    // result as 1024 rows of 4 KiB in 1 slice, to device 1.
    CHECK(cudaSetDevice(1));
    CHECK(cudaMemset(a[1], 0, kBytes));
    cudaMemcpy3DPeerParms p3 = {};
    p3.srcPtr = make_cudaPitchedPtr(c[0], 4096, 4096, kBytes / 4096);
    p3.srcDevice = 0;
    p3.dstPtr = make_cudaPitchedPtr(a[1], 4096, 4096, kBytes / 4096);
    p3.dstDevice = 1;
    p3.extent = make_cudaExtent(4096, kBytes / 4096, 1);
    CHECK(cudaMemcpy3DPeer(&p3));
    if (CheckResult(a[1], 0, "cudaMemcpy3DPeer") != 0) return 1;
    printf("COPY 3d-peer 0->1\n");
    CHECK(cudaSetDevice(0));
    // Device 1 recomputes its result into c[1]; device 0's stream waits for
    // it through an event recorded on device 1, then copies it over.
    CHECK(cudaSetDevice(1));
    cudaEvent_t done;
    CHECK(cudaEventCreateWithFlags(&done, cudaEventDisableTiming));
    CHECK(cudaMemsetAsync(c[1], 0, kBytes, s1));
    vectorAdd<<<(kN + 255) / 256, 256, 0, s1>>>(a[1], b[1], c[1], kN);  // a[1] = device 0's result
    CHECK(cudaEventRecord(done, s1));
    CHECK(cudaSetDevice(0));
    cudaStream_t s0;
    CHECK(cudaStreamCreate(&s0));
    CHECK(cudaStreamWaitEvent(s0, done, 0));
    CHECK(cudaMemcpyAsync(b[0], c[1], kBytes, cudaMemcpyDeviceToDevice, s0));
    CHECK(cudaStreamSynchronize(s0));
    std::vector<float> h(kN);
    CHECK(cudaMemcpy(h.data(), b[0], kBytes, cudaMemcpyDeviceToHost));
    for (int i = 0; i < kN; ++i) EXPECT(h[i] == Want(0, i) + 2.0f, "event: [%d] = %f", i, h[i]);
    printf("EVENT 1->0\n");
  }

  // Leave a pattern behind on every device: the next session must not see it.
  for (int d = 0; d < count; ++d) {
    CHECK(cudaSetDevice(d));
    CHECK(cudaMemset(c[d], 0xAB, kBytes));
    CHECK(cudaDeviceSynchronize());
  }
  printf("MULTI-OK\n");
  if (hold > 0) {
    printf("READY\n");
    fflush(stdout);
    std::this_thread::sleep_for(std::chrono::duration<double>(hold));
  }
  return 0;
}
