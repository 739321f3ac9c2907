// cuCtxGetLimit through rgpu: answered from the client's cache after the
// first ask, forgotten by cuCtxSetLimit. Prints "OK limits" when every value
// matches what was set; the e2e test counts the round trips (RGPU_STATS=1).
#include "check.h"

#include <cuda.h>

#include <cstdio>

int main() {
  CUdevice dev;
  UsePrimaryContext(&dev);
  size_t a = 0, b = 0, c = 0, heap1 = 0, heap2 = 0;
  CK(cuCtxGetLimit(&a, CU_LIMIT_STACK_SIZE));  // asks the worker
  CK(cuCtxGetLimit(&b, CU_LIMIT_STACK_SIZE));  // cached
  if (a != b || a == 0) { printf("FAIL stack %zu then %zu\n", a, b); return 1; }
  CK(cuCtxSetLimit(CU_LIMIT_STACK_SIZE, a + 4096));
  CK(cuCtxGetLimit(&c, CU_LIMIT_STACK_SIZE));  // asks again after the set
  if (c < a + 4096) { printf("FAIL stack after set: %zu, wanted >= %zu\n", c, a + 4096); return 1; }
  CK(cuCtxGetLimit(&heap1, CU_LIMIT_MALLOC_HEAP_SIZE));  // asks
  CK(cuCtxGetLimit(&heap2, CU_LIMIT_MALLOC_HEAP_SIZE));  // cached
  if (heap1 != heap2) { printf("FAIL heap %zu then %zu\n", heap1, heap2); return 1; }
  size_t depth = 0;
  // Refused limits are never cached: each ask gets the driver's answer.
  CUresult r1 = cuCtxGetLimit(&depth, CU_LIMIT_DEV_RUNTIME_SYNC_DEPTH);
  CUresult r2 = cuCtxGetLimit(&depth, CU_LIMIT_DEV_RUNTIME_SYNC_DEPTH);
  if (r1 != r2) { printf("FAIL sync depth answered %d then %d\n", r1, r2); return 1; }
  printf("OK limits stack %zu -> %zu heap %zu\n", a, c, heap1);
  return 0;
}
