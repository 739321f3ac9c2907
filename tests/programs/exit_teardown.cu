// Driver calls made while a process or thread ends. Libraries do that:
// cuFFT's cufftDestroy, called from a plan cache's static destructor at exit,
// pushes and pops contexts; cuSPARSE/cuSOLVER handle pools and cudart free
// memory from theirs.
//
// At exit() glibc first destroys the main thread's thread_local objects, then
// runs exit handlers and the destructors of static objects together, in
// reverse order of registration (a static object's destructor is registered
// when it is constructed). A thread's own thread_local objects are destroyed
// at its end, in reverse order of construction. The driver registers an exit
// handler of its own at cuInit that deinitialises it (measured on an H100,
// driver 580: the destructor of a static object constructed before main got
// CUDA_ERROR_DEINITIALIZED from cuCtxGetCurrent, while an exit handler
// registered after cuInit still worked). rgpu does the same.
//
// Checked here, in the order they run:
//  - the destructor of a thread_local object made before a thread's first
//    driver call ("thread teardown ok");
//  - an exit handler registered after cuInit ("exit handler ok") and the
//    destructor of a static object constructed after cuInit ("late static
//    destructor ok"): both run after the main thread's thread_local objects
//    were destroyed and before the driver's handler, and see the current
//    context they had set, push and pop contexts, and make synchronous calls
//    with replies (allocations, memory info, device-to-host copies). The
//    client's per-thread state must still work then: it didn't once (a push
//    into a freed stack and a reply moved into a freed buffer corrupted the
//    heap, and a PyTorch job aborted at exit with "corrupted double-linked
//    list"; the e2e test sets MALLOC_PERTURB_ so a use after free shows);
//  - the destructor of a static object constructed before main, after the
//    driver's handler: calls needing the driver return
//    CUDA_ERROR_DEINITIALIZED, also on a thread still running then, and so
//    do cuGetErrorName (no name) and cuDriverGetVersion (measured on an
//    H100, driver 580: every code here is the driver's). Every code is
//    printed; a mismatch is reported and the program exits 1 at the end.
// Prints "OK exit_teardown" last, from that destructor.
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
CUdeviceptr g_cached = 0;  // freed (or not) by the static destructor, as a cache would
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

// After the driver's exit handler: checks a call's code, goes on after a
// mismatch (the program exits 1 at the end).
bool g_late_mismatch = false;
void Expect(const char* where, const char* what, int got, int want) {
  printf("%s: %s -> %d\n", where, what, got);
  if (got != want) {
    printf("FAIL %s: %s -> %d, expected %d\n", where, what, got, want);
    g_late_mismatch = true;
  }
}

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

// A thread still running while the process exits: it sets its context in
// main, then waits until the static destructor below (after the driver's exit
// handler) lets it make its last calls.
std::atomic<int> g_exit_stage{0};  // 1: the thread is ready; 2: call now; 3: done
std::thread* g_exit_thread = nullptr;  // leaked: joined in that destructor

void ThreadDuringExit() {
  LATE_CK("thread during exit", cuCtxSetCurrent(g_primary));
  CUcontext cur = nullptr;
  LATE_CK("thread during exit", cuCtxGetCurrent(&cur));
  g_exit_stage.store(1);
  while (g_exit_stage.load() != 2) usleep(1000);
  cur = nullptr;
  Expect("thread during exit", "cuCtxGetCurrent", cuCtxGetCurrent(&cur), CUDA_ERROR_DEINITIALIZED);
  size_t free_b = 0, total_b = 0;
  Expect("thread during exit", "cuMemGetInfo", cuMemGetInfo(&free_b, &total_b), CUDA_ERROR_DEINITIALIZED);
  g_exit_stage.store(3);
}

// Registered after cuInit: runs first at exit, the driver still up.
void ExitHandler() {
  TeardownCalls("exit handler", g_primary);
  printf("exit handler ok\n");
  fflush(stdout);
}

// Constructed in main after cuInit (and before ExitHandler is registered):
// destroyed after ExitHandler, still before the driver's exit handler.
struct LateCache {
  ~LateCache() {
    TeardownCalls("late static destructor", g_primary);
    LATE_CK("late static destructor", cuMemFree(g_buf));
    printf("late static destructor ok\n");
    fflush(stdout);
  }
};

// A static object constructed before main, so before cuInit: destroyed after
// the driver's exit handler, the last driver user.
struct StaticCache {
  ~StaticCache() {
    if (g_primary == nullptr) return;  // main did not get that far
    const char* where = "static destructor";
    CUcontext cur = nullptr;
    Expect(where, "cuCtxGetCurrent", cuCtxGetCurrent(&cur), CUDA_ERROR_DEINITIALIZED);
    Expect(where, "cuCtxSynchronize", cuCtxSynchronize(), CUDA_ERROR_DEINITIALIZED);
    Expect(where, "cuCtxPushCurrent", cuCtxPushCurrent(g_other), CUDA_ERROR_DEINITIALIZED);
    CUdeviceptr p = 0;
    Expect(where, "cuMemAlloc", cuMemAlloc(&p, 4096), CUDA_ERROR_DEINITIALIZED);
    Expect(where, "cuMemFree", cuMemFree(g_cached), CUDA_ERROR_DEINITIALIZED);
    int count = 0;
    Expect(where, "cuDeviceGetCount", cuDeviceGetCount(&count), CUDA_ERROR_DEINITIALIZED);
    Expect(where, "cuInit", cuInit(0), CUDA_ERROR_DEINITIALIZED);
    int version = 0;
    Expect(where, "cuDriverGetVersion", cuDriverGetVersion(&version), CUDA_ERROR_DEINITIALIZED);
    const char* name = nullptr;
    Expect(where, "cuGetErrorName", cuGetErrorName(CUDA_ERROR_DEINITIALIZED, &name), CUDA_ERROR_DEINITIALIZED);
    printf("%s: CUresult 4 is %s\n", where, name ? name : "(null)");
    if (name != nullptr) g_late_mismatch = true;
    fflush(stdout);
    g_exit_stage.store(2);
    g_exit_thread->join();
    if (g_exit_stage.load() != 3) Fail(where, "the thread during exit did not finish", 0);
    fflush(stdout);
    if (g_late_mismatch) _exit(1);
    printf("OK exit_teardown\n");
    fflush(stdout);
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
  LATE_CK("main", cuMemAlloc(&g_cached, 4096));
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
  fflush(stdout);

  g_exit_thread = new std::thread(ThreadDuringExit);
  while (g_exit_stage.load() != 1) usleep(1000);
  static LateCache late;  // its destructor is registered now, after cuInit
  (void)late;
  atexit(ExitHandler);
  return 0;
}
