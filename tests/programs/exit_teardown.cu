// Driver calls made while a process or thread ends, after thread_local
// objects were destroyed. Libraries do that: cuFFT's cufftDestroy, called
// from a plan cache's static destructor at exit, pushes and pops contexts;
// cuSPARSE/cuSOLVER handle pools and cudart free memory from theirs. glibc
// destroys the main thread's thread_local objects in exit() before any exit
// handler or static destructor runs, and a thread's own thread_local objects
// in reverse order of construction, so the client's per-thread state (the
// context stack, the reply buffers of synchronous calls) must still work then.
// (It didn't: a push into the freed stack and a reply moved into a freed
// buffer corrupted the heap, and a PyTorch job aborted at exit with
// "corrupted double-linked list".)
//
// Checked here: the exit handler and the destructor of a thread_local object
// made before a thread's first driver call see the current context they had
// set, push and pop contexts, and make synchronous calls with replies
// (allocations, memory info, device-to-host copies). Prints "OK
// exit_teardown" from the last exit handler.
#include <cuda.h>

#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <thread>

namespace {

CUcontext g_primary = nullptr;
CUcontext g_other = nullptr;
CUdeviceptr g_buf = 0;
constexpr int kValue = 0x5eed;

// From an exit handler: no exit() again.
void Fail(const char* where, const char* what, int r) {
  printf("FAIL %s: %s -> %d\n", where, what, r);
  fflush(stdout);
  _exit(1);
}

#define LATE_CK(where, x)                  \
  do {                                     \
    CUresult r_ = (x);                     \
    if (r_ != CUDA_SUCCESS) Fail(where, #x, r_); \
  } while (0)

// The calls a library makes in its teardown, with `expected` current.
void TeardownCalls(const char* where, CUcontext expected) {
  CUcontext cur = nullptr;
  LATE_CK(where, cuCtxGetCurrent(&cur));
  if (cur != expected) Fail(where, "cuCtxGetCurrent is not the context set before", 0);
  for (int i = 0; i < 3; ++i) {
    LATE_CK(where, cuCtxPushCurrent(g_other));
    size_t free_b = 0, total_b = 0;
    LATE_CK(where, cuMemGetInfo(&free_b, &total_b));
    if (total_b == 0) Fail(where, "cuMemGetInfo total", 0);
    CUdeviceptr p = 0;
    LATE_CK(where, cuMemAlloc(&p, 4096 << i));
    LATE_CK(where, cuMemFree(p));
    CUcontext popped = nullptr;
    LATE_CK(where, cuCtxPopCurrent(&popped));
    if (popped != g_other) Fail(where, "cuCtxPopCurrent gave another context", 0);
    LATE_CK(where, cuCtxGetCurrent(&cur));
    if (cur != expected) Fail(where, "the current context after a push and a pop", 0);
    int v = 0;
    LATE_CK(where, cuMemcpyDtoH(&v, g_buf, sizeof v));
    if (v != kValue) Fail(where, "device-to-host copy", v);
    // Allocations between the calls reuse what the heap has freed.
    for (int k = 0; k < 64; ++k) free(malloc(8 + 8 * k));
  }
}

// Made on a thread before its first driver call, so destroyed after the
// client's own per-thread objects (if it had any with destructors).
struct ThreadTeardown {
  bool armed = false;
  std::atomic<int>* done = nullptr;
  ~ThreadTeardown() {
    if (!armed) return;
    TeardownCalls("thread_local destructor", g_primary);
    done->store(1);
  }
};
thread_local ThreadTeardown t_teardown;

void ExitHandler() {
  TeardownCalls("exit handler", g_primary);
  LATE_CK("exit handler", cuMemFree(g_buf));
  printf("OK exit_teardown\n");
  fflush(stdout);
}

// A static object's destructor, as a library's cache: runs after
// ExitHandler (registered later), the last driver user.
struct StaticCache {
  ~StaticCache() {
    if (g_primary != nullptr) {
      CUcontext cur = nullptr;
      LATE_CK("static destructor", cuCtxGetCurrent(&cur));
      if (cur != g_primary) Fail("static destructor", "current context", 0);
      LATE_CK("static destructor", cuCtxSynchronize());
    }
  }
} g_cache;

}  // namespace

int main() {
  LATE_CK("main", cuInit(0));
  CUdevice dev;
  LATE_CK("main", cuDeviceGet(&dev, 0));
  LATE_CK("main", cuDevicePrimaryCtxRetain(&g_primary, dev));
  LATE_CK("main", cuCtxCreate(&g_other, nullptr, 0, dev));  // pushed: pop it again
  CUcontext popped = nullptr;
  LATE_CK("main", cuCtxPopCurrent(&popped));
  LATE_CK("main", cuCtxSetCurrent(g_primary));
  LATE_CK("main", cuMemAlloc(&g_buf, 4096));
  int v = kValue;
  LATE_CK("main", cuMemcpyHtoD(g_buf, &v, sizeof v));
  // The main thread's first use of every call of TeardownCalls, before exit.
  TeardownCalls("main", g_primary);

  std::atomic<int> thread_done{0};
  std::thread t([&] {
    t_teardown.armed = true;  // constructed now, before any driver call here
    t_teardown.done = &thread_done;
    LATE_CK("thread", cuCtxSetCurrent(g_primary));
    TeardownCalls("thread", g_primary);
  });
  t.join();
  if (thread_done.load() != 1) Fail("main", "the thread's teardown did not run", 0);
  printf("thread teardown ok\n");
  atexit(ExitHandler);
  return 0;
}
