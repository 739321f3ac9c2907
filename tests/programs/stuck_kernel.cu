// stuck_kernel MS: launches one kernel that runs for MS milliseconds
// (rgpu_sleep_ms: spins on %globaltimer on a GPU; the sim sleeps), prints
// "LAUNCHED", then waits for it with cuCtxSynchronize and prints "DONE".
// Killed while it waits, it leaves its session's GPU busy after the client
// is gone: fault_test uses it to check that such a worker is ended and the
// card scrubbed and passed on (server/worker/teardown_guard.h).
#include "check.h"

#include <cuda.h>

#include <cstdio>
#include <cstdlib>

static const char kPtx[] =
    ".version 8.0\n"
    ".target sm_90\n"
    ".address_size 64\n"
    ".visible .entry rgpu_sleep_ms(.param .u32 p_ms)\n"
    "{\n"
    "  .reg .pred %p<2>;\n"
    "  .reg .b32 %r<2>;\n"
    "  .reg .b64 %rd<6>;\n"
    "  ld.param.u32 %r1, [p_ms];\n"
    "  cvt.u64.u32 %rd1, %r1;\n"
    "  mul.lo.u64 %rd2, %rd1, 1000000;\n"
    "  mov.u64 %rd3, %globaltimer;\n"
    "WAIT:\n"
    "  nanosleep.u32 10000;\n"
    "  mov.u64 %rd4, %globaltimer;\n"
    "  sub.u64 %rd5, %rd4, %rd3;\n"
    "  setp.lt.u64 %p1, %rd5, %rd2;\n"
    "  @%p1 bra WAIT;\n"
    "  ret;\n"
    "}\n";

int main(int argc, char** argv) {
  unsigned ms = argc > 1 ? static_cast<unsigned>(atoi(argv[1])) : 1000;
  CUdevice dev;
  UsePrimaryContext(&dev);
  CUmodule mod;
  CK(cuModuleLoadData(&mod, kPtx));
  CUfunction f;
  CK(cuModuleGetFunction(&f, mod, "rgpu_sleep_ms"));
  void* params[] = {&ms};
  CK(cuLaunchKernel(f, 1, 1, 1, 1, 1, 1, 0, nullptr, params, nullptr));
  printf("LAUNCHED\n");
  fflush(stdout);
  CK(cuCtxSynchronize());
  printf("DONE\n");
  return 0;
}
