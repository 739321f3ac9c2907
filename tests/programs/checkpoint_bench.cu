// Measurement tool: the driver's process checkpoint API (cuCheckpointProcess*,
// CUDA 12.8+), the alternative to rgpu's own swap (docs/time-slicing.md).
// Run on the GPU host against the real driver, not through rgpu.
//
//   checkpoint_bench [MIB=64]
// A child process creates a context (timed: what a reattach that recreated
// its context would pay), fills MIB of device memory and waits; the parent
// locks it, checkpoints it (GPU memory to host, the GPU released), restores
// and unlocks it, timing each step; the child then checks sampled pages.
// Exit codes: 0 intact, 2 data wrong, 1 a CUDA call failed, 3 not supported.
#include <cuda.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <vector>

using Clock = std::chrono::steady_clock;
static double Ms(Clock::duration d) { return std::chrono::duration<double, std::milli>(d).count(); }

#define CK(x)                                                                   \
  do {                                                                          \
    CUresult r_ = (x);                                                          \
    if (r_ != CUDA_SUCCESS) {                                                   \
      const char* n_ = nullptr;                                                 \
      cuGetErrorName(r_, &n_);                                                  \
      printf("CUDA-FAILED %s:%d %s: %s\n", __FILE__, __LINE__, #x, n_ ? n_ : "?"); \
      fflush(stdout);                                                           \
      return r_ == CUDA_ERROR_NOT_SUPPORTED ? 3 : 1;                            \
    }                                                                           \
  } while (0)

static int Child(size_t mib, int ready_fd, int go_fd) {
  CK(cuInit(0));
  CUdevice dev;
  CK(cuDeviceGet(&dev, 0));
  CUcontext ctx;
  auto t0 = Clock::now();
  CK(cuDevicePrimaryCtxRetain(&ctx, dev));
  CK(cuCtxSetCurrent(ctx));
  CK(cuCtxSynchronize());
  double ctx_ms = Ms(Clock::now() - t0);
  size_t free0 = 0, total = 0;
  CK(cuMemGetInfo(&free0, &total));
  printf("context creation %.1f ms; device memory in use with just the context: %.0f MiB (all processes)\n", ctx_ms,
         (total - free0) / 1048576.0);
  const size_t piece = size_t{1} << 30;
  std::vector<CUdeviceptr> ptrs;
  std::vector<size_t> sizes;
  for (size_t left = mib << 20; left > 0;) {
    size_t n = left < piece ? left : piece;
    CUdeviceptr p;
    CK(cuMemAlloc(&p, n));
    CK(cuMemsetD32(p, 0x1000 + static_cast<unsigned>(ptrs.size()), n / 4));
    ptrs.push_back(p);
    sizes.push_back(n);
    left -= n;
  }
  CK(cuCtxSynchronize());
  fflush(stdout);
  char c = 'R';
  if (write(ready_fd, &c, 1) != 1 || read(go_fd, &c, 1) != 1) return 1;
  std::vector<unsigned> sample(1 << 18);
  for (size_t k = 0; k < ptrs.size(); ++k) {
    size_t bytes = sizes[k] < (1u << 20) ? sizes[k] : (1u << 20);
    for (size_t off : {size_t{0}, sizes[k] - bytes}) {
      CK(cuMemcpyDtoH(sample.data(), ptrs[k] + off, bytes));
      for (size_t i = 0; i < bytes / 4; ++i)
        if (sample[i] != 0x1000 + k) {
          printf("DATA-WRONG allocation %zu\n", k);
          return 2;
        }
    }
  }
  printf("child: data intact after checkpoint and restore\n");
  return 0;
}

int main(int argc, char** argv) {
  size_t mib = argc > 1 ? strtoull(argv[1], nullptr, 10) : 64;
  int ready[2], go[2];
  if (pipe(ready) != 0 || pipe(go) != 0) return 1;
  fflush(stdout);
  pid_t pid = fork();
  if (pid == 0) _exit(Child(mib, ready[1], go[0]));
  char c;
  if (read(ready[0], &c, 1) != 1) {
    int st = 0;
    waitpid(pid, &st, 0);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 1;
  }
  // Restore needs the driver initialised in the caller (or persistence mode).
  CK(cuInit(0));
  double gb = (mib << 20) / 1e9;
  auto t0 = Clock::now();
  CK(cuCheckpointProcessLock(pid, nullptr));
  auto t1 = Clock::now();
  CK(cuCheckpointProcessCheckpoint(pid, nullptr));
  auto t2 = Clock::now();
  CK(cuCheckpointProcessRestore(pid, nullptr));
  auto t3 = Clock::now();
  CK(cuCheckpointProcessUnlock(pid, nullptr));
  auto t4 = Clock::now();
  printf("checkpoint API, %zu MiB: lock %.1f ms, checkpoint %.1f ms (%.2f GB/s), restore %.1f ms (%.2f GB/s), "
         "unlock %.1f ms\n",
         mib, Ms(t1 - t0), Ms(t2 - t1), gb / (Ms(t2 - t1) / 1e3), Ms(t3 - t2), gb / (Ms(t3 - t2) / 1e3),
         Ms(t4 - t3));
  fflush(stdout);
  c = 'C';
  if (write(go[1], &c, 1) != 1) return 1;
  int st = 0;
  waitpid(pid, &st, 0);
  return WIFEXITED(st) ? WEXITSTATUS(st) : 1;
}
