// Memory pools of stream-ordered allocation (cuMemAllocAsync,
// cuMemAllocFromPoolAsync, cuMemPool*), kept on the client.
//
// rgpu's stream-ordered allocation allocates at once and frees in stream
// order on the worker (api_memory.cc): no pool ever caches freed memory, so
// a pool here is its properties, its attributes and the accounting of what
// was allocated from it. Reserved memory therefore always equals used
// memory, and cuMemPoolTrimTo has nothing to release. Device pools only: pools
// with shareable handle types (IPC) and host pools are refused.
//
// Thread safety: every function takes MemPools::mu.
#pragma once

#include <cuda.h>

#include <map>
#include <memory>
#include <mutex>
#include <vector>

#include "client/client_state.h"

namespace rgpu::client {

struct MemPoolObj {
  CUmemPoolProps props{};
  bool is_default = false;
  bool destroyed = false;  // kept until its last allocation is freed
  uint64_t release_threshold = 0;
  int reuse[3] = {1, 1, 1};  // CU_MEMPOOL_ATTR_REUSE_* (1..3)
  uint64_t used = 0, used_high = 0, reserved_high = 0;
};

struct MemPools {
  std::mutex mu;
  std::vector<std::unique_ptr<MemPoolObj>> all;  // never shrinks: handles stay comparable
  std::map<const void*, MemPoolObj*> live;       // valid handles
  std::map<int, MemPoolObj*> defaults, current;  // by device ordinal
  std::map<CUdeviceptr, std::pair<MemPoolObj*, uint64_t>> allocs;  // base -> (pool, size)
};

// cuMemAllocAsync / cuMemAllocFromPoolAsync: allocates `size` bytes in the
// current context from `pool` (null: the current pool of the context's
// device) and accounts for it there.
CUresult PoolAlloc(ClientState* s, CUdeviceptr* dptr, size_t size, CUmemoryPool pool);
// cuMemFree / cuMemFreeAsync of any allocation: forgets it if a pool had it.
void PoolNoteFree(ClientState* s, CUdeviceptr p);

}  // namespace rgpu::client
