#include "client/pinned_memory.h"

#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <map>
#include <mutex>
#include <utility>
#include <vector>

#include "client/api_common.h"
#include "client/managed_memory.h"
#include "common/device_memory_prop.h"

namespace rgpu::client {

std::atomic<int> g_unpromoted_pinned{0};

namespace {

enum class PinState { kHost, kPromoted, kFailed };

struct Buffer {
  size_t size = 0;  // the reservation's (granularity-rounded)
  PinState state = PinState::kHost;
  CUmemGenericAllocationHandle handle = 0;
};

// [base, end) of the unpromoted buffers, sorted: what a launch searches.
// Immutable once published; a retired one is deleted when no launch reads.
struct Snapshot {
  uintptr_t lo = 0, hi = 0;
  std::vector<std::pair<uintptr_t, uintptr_t>> ranges;
};

std::mutex g_mu;  // the table; held through a promotion
std::map<uintptr_t, Buffer>* g_buffers = new std::map<uintptr_t, Buffer>;  // leaked: outlives exit handlers
std::atomic<const Snapshot*> g_snapshot{nullptr};
std::atomic<int> g_readers{0};  // launches reading a snapshot
// The snapshot's bounds, read first without counting as a reader: a launch
// whose words all fall outside touches no shared cache line for writing. A
// buffer's publication happens before any launch that was given a pointer
// into it, so these never miss one.
std::atomic<uintptr_t> g_lo{0}, g_hi{0};
std::vector<const Snapshot*>* g_retired = new std::vector<const Snapshot*>;

// Publishes the unpromoted buffers (g_mu held).
void PublishLocked() {
  Snapshot* next = nullptr;
  int count = 0;
  for (const auto& [base, b] : *g_buffers) {
    if (b.state != PinState::kHost) continue;
    if (next == nullptr) next = new Snapshot;
    next->ranges.emplace_back(base, base + b.size);
    ++count;
  }
  if (next != nullptr) {
    next->lo = next->ranges.front().first;
    next->hi = next->ranges.back().second;
  }
  g_lo.store(next ? next->lo : 0, std::memory_order_relaxed);
  g_hi.store(next ? next->hi : 0, std::memory_order_relaxed);
  const Snapshot* old = g_snapshot.exchange(next);
  g_unpromoted_pinned.store(count, std::memory_order_relaxed);
  if (old != nullptr) g_retired->push_back(old);
  // A launch that could still read a retired snapshot counted itself in
  // g_readers before loading the pointer: none is left once it reads zero.
  if (g_readers.load() == 0) {
    for (const Snapshot* r : *g_retired) delete r;
    g_retired->clear();
  }
}

// Waits for the context's work, so that copies and host functions still
// writing into a buffer have landed (not while a stream captures). An error
// it reports is the program's: kept for the program's next call.
CUresult Quiesce(ClientState* s, CtxObj* c) {
  if (c == nullptr || s->any_capture()) return CUDA_SUCCESS;
  CUresult r = Sync(s, proto::CallId::kCtxSynchronize, proto::CtxSynchronizeReq{c->id});
  if (r != CUDA_SUCCESS) s->RecordAsyncError(r, "cuCtxSynchronize (before pinned host memory changed)");
  return r;
}

// g_mu held.
CUresult PromoteLocked(ClientState* s, uintptr_t base, Buffer& b) {
  if (b.state == PinState::kPromoted) return CUDA_SUCCESS;
  if (b.state == PinState::kFailed) return CUDA_ERROR_NOT_SUPPORTED;
  // Not now (it stays promotable) without a context, or while an error
  // waits for the program: the calls below would take it.
  CtxObj* c = s->Current();
  if (c == nullptr) return CUDA_ERROR_INVALID_CONTEXT;
  if (s->HasAsyncError()) return CUDA_ERROR_UNKNOWN;
  if (CUresult r = Quiesce(s, c); r != CUDA_SUCCESS) return r;
  CUmemAllocationProp prop = DeviceMemoryProp(c->device);
  CUmemGenericAllocationHandle h = 0;
  CUresult r = cuMemCreate(&h, b.size, &prop, 0);
  bool mapped = false;
  if (r == CUDA_SUCCESS) {
    r = cuMemMap(base, b.size, 0, h, 0);
    mapped = r == CUDA_SUCCESS;
  }
  if (r == CUDA_SUCCESS) {
    CUmemAccessDesc access{};
    access.location = prop.location;
    access.flags = CU_MEM_ACCESS_FLAGS_PROT_READWRITE;
    r = cuMemSetAccess(base, b.size, &access, 1);
  }
  if (r != CUDA_SUCCESS) {
    if (mapped) (void)cuMemUnmap(base, b.size);
    if (h != 0) (void)cuMemRelease(h);
    b.state = PinState::kFailed;
    PublishLocked();
    LogOnce(LogLevel::kWarn, "pinned-promotion",
            "pinned host memory used by a kernel: no device memory could be mapped at its address (%d); "
            "the kernel cannot reach it (logged once)",
            r);
    return r;
  }
  AdoptManagedRange(c, base, b.size);
  b.handle = h;
  b.state = PinState::kPromoted;
  PublishLocked();
  RGPU_LOG_DEBUG("pinned host memory at 0x%llx (%zu bytes) promoted for kernels",
                 static_cast<unsigned long long>(base), b.size);
  return CUDA_SUCCESS;
}

// The buffer containing `a` (g_mu held).
std::map<uintptr_t, Buffer>::iterator FindLocked(uintptr_t a) {
  auto it = g_buffers->upper_bound(a);
  if (it == g_buffers->begin()) return g_buffers->end();
  --it;
  return a - it->first < it->second.size ? it : g_buffers->end();
}

}  // namespace

void* AllocPromotablePinned(ClientState* s, CtxObj* ctx, size_t size) {
  if (s->HasAsyncError()) return nullptr;  // the calls below would take the program's error
  CUmemAllocationProp prop = DeviceMemoryProp(ctx->device);
  size_t gran = 0;
  if (cuMemGetAllocationGranularity(&gran, &prop, CU_MEM_ALLOC_GRANULARITY_MINIMUM) != CUDA_SUCCESS || gran == 0)
    return nullptr;
  gran = (gran + PageSize() - 1) / PageSize() * PageSize();
  size_t rounded = (std::max<size_t>(size, 1) + gran - 1) / gran * gran;
  CUdeviceptr d = 0;
  if (cuMemAddressReserve(&d, rounded, 0, 0, 0) != CUDA_SUCCESS) return nullptr;
  void* p = d % PageSize() != 0 ? MAP_FAILED
                                : mmap(reinterpret_cast<void*>(d), rounded, PROT_READ | PROT_WRITE,
                                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
  if (p == MAP_FAILED || p != reinterpret_cast<void*>(d)) {
    if (p != MAP_FAILED) munmap(p, rounded);
    (void)cuMemAddressFree(d, rounded);
    RGPU_LOG_DEBUG("pinned host memory: device address 0x%llx is taken here; not promotable",
                   static_cast<unsigned long long>(d));
    return nullptr;
  }
  std::lock_guard<std::mutex> lock(g_mu);
  (*g_buffers)[d] = Buffer{rounded, PinState::kHost, 0};
  PublishLocked();
  return p;
}

bool FreePromotablePinned(ClientState* s, void* p, CUresult* result) {
  auto base = reinterpret_cast<uintptr_t>(p);
  Buffer b;
  {
    std::lock_guard<std::mutex> lock(g_mu);
    auto it = g_buffers->find(base);
    if (it == g_buffers->end()) return false;
    b = it->second;
    g_buffers->erase(it);
    PublishLocked();
  }
  // Like the driver's, the free waits for work that may still use the
  // buffer (kernels, copies landing in it).
  if (!s->HasAsyncError()) (void)Quiesce(s, s->Current());
  *result = CUDA_SUCCESS;
  if (b.state == PinState::kPromoted) {
    ForgetManagedRange(base);
    CUresult r = cuMemUnmap(base, b.size);
    CUresult r2 = cuMemRelease(b.handle);
    *result = r != CUDA_SUCCESS ? r : r2;
  }
  munmap(p, b.size);
  (void)cuMemAddressFree(base, b.size);
  return true;
}

CUresult PromotePinned(ClientState* s, const void* p, bool* promotable) {
  std::lock_guard<std::mutex> lock(g_mu);
  auto it = FindLocked(reinterpret_cast<uintptr_t>(p));
  *promotable = it != g_buffers->end();
  return *promotable ? PromoteLocked(s, it->first, it->second) : CUDA_ERROR_INVALID_VALUE;
}

bool IsPromotedPinned(const void* p) {
  std::lock_guard<std::mutex> lock(g_mu);
  auto it = FindLocked(reinterpret_cast<uintptr_t>(p));
  return it != g_buffers->end() && it->second.state == PinState::kPromoted;
}

void PromotePinnedArgsSlow(ClientState* s, const uint8_t* params, size_t n) {
  auto word = [params](size_t off) {
    uint64_t v;
    memcpy(&v, params + off, 8);
    return v;
  };
  const uintptr_t lo = g_lo.load(std::memory_order_relaxed), hi = g_hi.load(std::memory_order_relaxed);
  bool candidate = false;
  for (size_t off = 0; off + 8 <= n && !candidate; off += 8) candidate = word(off) >= lo && word(off) < hi;
  if (!candidate) return;
  // Does any word point into an unpromoted buffer? Looked up in the
  // snapshot, without the lock: most words in bounds are device pointers.
  bool hit = false;
  g_readers.fetch_add(1);
  if (const Snapshot* snap = g_snapshot.load()) {
    for (size_t off = 0; off + 8 <= n && !hit; off += 8) {
      uint64_t v = word(off);
      if (v < snap->lo || v >= snap->hi) continue;
      auto it = std::upper_bound(snap->ranges.begin(), snap->ranges.end(), std::make_pair(uintptr_t{v}, UINTPTR_MAX));
      hit = it != snap->ranges.begin() && v < (--it)->second;
    }
  }
  g_readers.fetch_sub(1);
  if (!hit) return;
  // A promotion happens once per buffer: every word again, under the lock
  // (PromoteLocked does nothing for a buffer already promoted).
  std::lock_guard<std::mutex> lock(g_mu);
  for (size_t off = 0; off + 8 <= n; off += 8)
    if (auto it = FindLocked(word(off)); it != g_buffers->end()) (void)PromoteLocked(s, it->first, it->second);
}

}  // namespace rgpu::client
