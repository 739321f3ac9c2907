#include "client/managed_memory.h"

#include <signal.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <map>
#include <mutex>
#include <vector>

#include "client/api_common.h"
#include "client/registered_memory.h"
#include "proto/frame.h"

namespace rgpu::client {

size_t PageSize() {
  static const size_t p = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  return p;
}

namespace {

enum PageState : uint8_t { kDeviceValid = 0, kClean = 1, kDirty = 2 };

// A __managed__ variable inside a Range of module globals.
struct Span {
  uintptr_t lo = 0, hi = 0;
  uint64_t module = 0;
};

struct Range {
  uintptr_t base = 0;
  uintptr_t alloc_base = 0;  // the device allocation holding [base, base + map_size)
  size_t map_size = 0;   // page-rounded
  size_t user_size = 0;
  CtxObj* ctx = nullptr;
  std::vector<uint8_t> pages;  // PageState per page
  size_t dirty = 0;            // pages in kDirty
  bool all_device = false;     // every page kDeviceValid (nothing to invalidate)
  // Module globals (AdoptManagedGlobal): the pages hold __managed__
  // variables and nothing the session may copy besides them, so transfers
  // cover only `spans`. Allocations (AllocManaged) transfer whole pages.
  bool globals = false;
  std::vector<Span> spans;
  // Adopted (AdoptManagedRange): the mapping and the device memory belong to
  // the caller; FreeManaged leaves the range alone.
  bool adopted = false;
};

// The byte runs of [lo, hi) that Range r may transfer: all of it for an
// allocation, its intersections with the variables for module globals.
std::vector<std::pair<uintptr_t, uintptr_t>> Transferable(const Range& r, uintptr_t lo, uintptr_t hi) {
  if (!r.globals) return {{lo, hi}};
  std::vector<std::pair<uintptr_t, uintptr_t>> out;
  for (const Span& sp : r.spans) {
    uintptr_t a = std::max(lo, sp.lo), b = std::min(hi, sp.hi);
    if (a < b) out.emplace_back(a, b);
  }
  return out;
}

constexpr size_t kWholeFetchLimit = 16u << 20;  // fetch small allocations whole
constexpr size_t kFetchBlock = 2u << 20;
constexpr int kMapAttempts = 16;

std::mutex g_mu;
std::map<uintptr_t, Range>* g_ranges = new std::map<uintptr_t, Range>;  // leaked: used in handlers
std::atomic<int> g_count{0};
struct sigaction g_previous;
std::once_flag g_handler_once;

Range* FindLocked(uintptr_t a) {
  auto it = g_ranges->upper_bound(a);
  if (it == g_ranges->begin()) return nullptr;
  --it;
  return a - it->first < it->second.map_size ? &it->second : nullptr;
}

void SetState(Range& r, size_t first, size_t count, PageState st, int prot) {
  for (size_t i = first; i < first + count; ++i) {
    if (r.pages[i] == kDirty) --r.dirty;
    if (st == kDirty) ++r.dirty;
    r.pages[i] = st;
  }
  mprotect(reinterpret_cast<void*>(r.base + first * PageSize()), count * PageSize(), prot);
  if (st != kDeviceValid) r.all_device = false;
}

// Brings the block around `addr` from the device into the host shadow.
bool Fetch(uintptr_t addr) {
  ClientState* s = ClientState::Get();
  if (s == nullptr) return false;
  uintptr_t base;
  size_t first, count;
  CtxObj* ctx;
  std::vector<std::pair<uintptr_t, uintptr_t>> runs;
  {
    std::lock_guard<std::mutex> lock(g_mu);
    Range* r = FindLocked(addr);
    if (r == nullptr) return false;
    size_t page = (addr - r->base) / PageSize();
    if (r->pages[page] == kClean) {  // a write to a clean page
      SetState(*r, page, 1, kDirty, PROT_READ | PROT_WRITE);
      return true;
    }
    if (r->pages[page] == kDirty) return true;  // raced with another fault
    size_t block_pages = r->user_size <= kWholeFetchLimit ? r->pages.size() : kFetchBlock / PageSize();
    first = r->user_size <= kWholeFetchLimit ? 0 : page / block_pages * block_pages;
    count = std::min(block_pages, r->pages.size() - first);
    base = r->base;
    ctx = r->ctx;
    runs = Transferable(*r, base + first * PageSize(), base + (first + count) * PageSize());
    mprotect(reinterpret_cast<void*>(base + first * PageSize()), count * PageSize(), PROT_READ | PROT_WRITE);
  }
  // GPU work may still be writing: order the copy after all of it.
  (void)Post(s, proto::CallId::kCtxSynchronize, proto::CtxSynchronizeReq{ctx->id});
  for (auto [lo, hi] : runs) {
    for (uint64_t done = 0; done < hi - lo;) {
      uint64_t len = std::min<uint64_t>(proto::kMaxChunk, hi - lo - done);
      proto::MemcpyDtoHRep rep;
      CUresult r = Sync(s, proto::CallId::kMemcpyDtoH, proto::MemcpyDtoHReq{ctx->id, 0, 0, lo + done, len}, &rep);
      if (r != CUDA_SUCCESS || rep.data.size() != len) {
        LogOnce(LogLevel::kError, "managed-fetch", "managed memory: fetching from the device failed (%d)", r);
        return false;
      }
      memcpy(reinterpret_cast<void*>(lo + done), rep.data.data(), len);
      done += len;
    }
  }
  std::lock_guard<std::mutex> lock(g_mu);
  if (Range* r = FindLocked(addr)) SetState(*r, first, count, kClean, PROT_READ);
  return true;
}

void OnSegv(int sig, siginfo_t* info, void* uctx) {
  uintptr_t a = reinterpret_cast<uintptr_t>(info->si_addr);
  bool ours;
  {
    std::lock_guard<std::mutex> lock(g_mu);
    ours = FindLocked(a) != nullptr;
  }
  if (ours && Fetch(a)) return;  // the faulting access is retried
  // Not managed memory: behave as if we were not here.
  if (g_previous.sa_flags & SA_SIGINFO) {
    g_previous.sa_sigaction(sig, info, uctx);
  } else if (g_previous.sa_handler == SIG_IGN) {
    return;
  } else if (g_previous.sa_handler != SIG_DFL) {
    g_previous.sa_handler(sig);
  } else {
    signal(SIGSEGV, SIG_DFL);
    raise(SIGSEGV);
  }
}

void InstallHandler() {
  struct sigaction sa {};
  sa.sa_sigaction = OnSegv;
  sa.sa_flags = SA_SIGINFO | SA_NODEFER;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGSEGV, &sa, &g_previous);
}

}  // namespace

CUresult AllocManaged(ClientState* s, CtxObj* ctx, size_t size, CUdeviceptr* out) {
  std::call_once(g_handler_once, InstallHandler);
  size_t map_size = (size + PageSize() - 1) / PageSize() * PageSize();
  std::vector<CUdeviceptr> rejected;
  CUresult result = CUDA_ERROR_OUT_OF_MEMORY;
  for (int attempt = 0; attempt < kMapAttempts; ++attempt) {
    // The host shadow must sit at the device address itself, and mmap takes
    // only page-aligned addresses. The driver suballocates small requests at
    // 512-byte alignment, so an allocation that does not start on a page is
    // given back for one a page larger, whose first whole page the user gets.
    uint64_t alloc = 0, user = 0;
    for (uint64_t request : {uint64_t{map_size}, uint64_t{map_size + PageSize()}}) {
      proto::MemAllocRep rep;
      CUresult r = Sync(s, proto::CallId::kMemAlloc, proto::MemAllocReq{ctx->id, request}, &rep);
      if (r != CUDA_SUCCESS) {
        result = r;
        break;
      }
      alloc = rep.dptr;
      user = (alloc + PageSize() - 1) / PageSize() * PageSize();
      if (user == alloc || request > map_size) break;
      (void)Post(s, proto::CallId::kMemFree, proto::MemFreeReq{ctx->id, alloc});
      alloc = 0;
    }
    if (alloc == 0) break;
    void* p = mmap(reinterpret_cast<void*>(user), map_size, PROT_READ,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
    if (p == MAP_FAILED || p != reinterpret_cast<void*>(user)) {
      if (p != MAP_FAILED) munmap(p, map_size);
      rejected.push_back(alloc);  // keep it allocated so the next try differs
      continue;
    }
    // Both copies start as zeros: the device copy is cleared, the shadow is
    // fresh anonymous memory.
    (void)Post(s, proto::CallId::kMemset,
               proto::MemsetReq{ctx->id, 0, 0, user, 0, 0, 1, map_size, 1});
    Range r2;
    r2.base = user;
    r2.alloc_base = alloc;
    r2.map_size = map_size;
    r2.user_size = size;
    r2.ctx = ctx;
    r2.pages.assign(map_size / PageSize(), kClean);
    {
      std::lock_guard<std::mutex> lock(g_mu);
      (*g_ranges)[user] = std::move(r2);
    }
    g_count.fetch_add(1);
    s->AddAllocation(user, map_size, ctx);
    *out = user;
    result = CUDA_SUCCESS;
    break;
  }
  for (CUdeviceptr d : rejected) (void)Post(s, proto::CallId::kMemFree, proto::MemFreeReq{ctx->id, d});
  if (result != CUDA_SUCCESS && !rejected.empty())
    RGPU_LOG_WARN("cuMemAllocManaged: no device address could be mirrored in this process");
  return result;
}

bool FreeManaged(ClientState* s, CUdeviceptr p, CUresult* result) {
  if (g_count.load() == 0) return false;
  Range r;
  {
    std::lock_guard<std::mutex> lock(g_mu);
    auto it = g_ranges->find(p);
    if (it == g_ranges->end() || it->second.globals || it->second.adopted) return false;
    r = std::move(it->second);
    g_ranges->erase(it);
  }
  g_count.fetch_sub(1);
  munmap(reinterpret_cast<void*>(r.base), r.map_size);
  s->RemoveAllocation(p);
  *result = Post(s, proto::CallId::kMemFree, proto::MemFreeReq{r.ctx->id, r.alloc_base});
  return true;
}

void AdoptManagedRange(CtxObj* ctx, CUdeviceptr p, size_t size) {
  std::call_once(g_handler_once, InstallHandler);
  Range r;
  r.base = p;
  r.alloc_base = p;
  r.map_size = r.user_size = size;
  r.ctx = ctx;
  r.pages.assign(size / PageSize(), kDirty);
  r.dirty = r.pages.size();
  r.adopted = true;
  mprotect(reinterpret_cast<void*>(p), size, PROT_READ | PROT_WRITE);
  {
    std::lock_guard<std::mutex> lock(g_mu);
    (*g_ranges)[p] = std::move(r);
  }
  g_count.fetch_add(1);
}

bool ForgetManagedRange(CUdeviceptr p) {
  if (g_count.load() == 0) return false;
  {
    std::lock_guard<std::mutex> lock(g_mu);
    auto it = g_ranges->find(p);
    if (it == g_ranges->end() || !it->second.adopted) return false;
    g_ranges->erase(it);
  }
  g_count.fetch_sub(1);
  return true;
}

CUresult AdoptManagedGlobal(CtxObj* ctx, uint64_t module, CUdeviceptr p, size_t size) {
  if (size == 0) return CUDA_SUCCESS;
  std::call_once(g_handler_once, InstallHandler);
  const size_t pg = PageSize();
  const uintptr_t lo = p / pg * pg, hi = (p + size + pg - 1) / pg * pg;
  std::lock_guard<std::mutex> lock(g_mu);
  for (uintptr_t a = lo; a < hi;) {
    if (Range* r = FindLocked(a)) {  // a page already mirrored: another variable's
      if (!r->globals) return CUDA_ERROR_NOT_SUPPORTED;  // inside a managed allocation: not expected
      uintptr_t end = std::min<uintptr_t>(hi, r->base + r->map_size);
      Span sp{std::max<uintptr_t>(a, p), std::min<uintptr_t>(end, p + size), module};
      bool known = false;
      for (const Span& k : r->spans) known |= k.lo == sp.lo && k.hi == sp.hi && k.module == module;
      if (!known) r->spans.push_back(sp);
      a = end;
      continue;
    }
    uintptr_t end = hi;  // up to the next mirrored range, if it starts before hi
    if (auto next = g_ranges->lower_bound(a); next != g_ranges->end() && next->first < end) end = next->first;
    // The device copy holds the variable's value (the driver initialised
    // it): the host shadow starts invalid and fetches on first access.
    void* m = mmap(reinterpret_cast<void*>(a), end - a, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE,
                   -1, 0);
    if (m == MAP_FAILED || m != reinterpret_cast<void*>(a)) {
      if (m != MAP_FAILED) munmap(m, end - a);
      LogOnce(LogLevel::kError, "managed-global",
              "cuLibraryGetManaged: the address of a __managed__ variable is taken in this process");
      return CUDA_ERROR_NOT_SUPPORTED;
    }
    Range r;
    r.base = a;
    r.map_size = r.user_size = end - a;
    r.ctx = ctx;
    r.pages.assign((end - a) / pg, kDeviceValid);
    r.all_device = true;
    r.globals = true;
    r.spans.push_back({std::max<uintptr_t>(a, p), std::min<uintptr_t>(end, p + size), module});
    (*g_ranges)[a] = std::move(r);
    g_count.fetch_add(1);
    a = end;
  }
  return CUDA_SUCCESS;
}

void ForgetManagedGlobals(uint64_t module) {
  if (g_count.load() == 0) return;
  std::lock_guard<std::mutex> lock(g_mu);
  for (auto it = g_ranges->begin(); it != g_ranges->end();) {
    Range& r = it->second;
    if (r.globals)
      std::erase_if(r.spans, [module](const Span& sp) { return sp.module == module; });
    if (!r.globals || !r.spans.empty()) {
      ++it;
      continue;
    }
    munmap(reinterpret_cast<void*>(r.base), r.map_size);
    it = g_ranges->erase(it);
    g_count.fetch_sub(1);
  }
}

bool IsManaged(CUdeviceptr p) {
  if (g_count.load(std::memory_order_relaxed) == 0) return false;
  std::lock_guard<std::mutex> lock(g_mu);
  return FindLocked(p) != nullptr;
}

CUresult OrderAfterLegacyCopies(ClientState* s, CtxObj* ctx) {
  // The worker runs requests in order: it starts nothing later before this
  // synchronisation of the legacy stream (which the copies ran on) returns.
  return Post(s, proto::CallId::kStreamSynchronize, proto::StreamSynchronizeReq{ctx->id, 0});
}

CUresult ManagedBeforeDeviceWork(ClientState* s) {
  if (CUresult r = RegisteredBeforeDeviceWork(s); r != CUDA_SUCCESS) return r;
  if (g_count.load(std::memory_order_relaxed) == 0) return CUDA_SUCCESS;
  std::lock_guard<std::mutex> lock(g_mu);
  std::vector<CtxObj*> sent;  // contexts whose legacy stream got copies
  for (auto& [base, r] : *g_ranges) {
    if (r.dirty == 0) continue;
    if (std::find(sent.begin(), sent.end(), r.ctx) == sent.end()) sent.push_back(r.ctx);
    for (size_t i = 0; i < r.pages.size();) {
      if (r.pages[i] != kDirty) {
        ++i;
        continue;
      }
      size_t j = i;
      while (j < r.pages.size() && r.pages[j] == kDirty && (j - i) * PageSize() < proto::kMaxChunk) ++j;
      // Whole pages for an allocation (the device block is page-rounded
      // too), the variables' bytes for module globals.
      for (auto [lo, hi] : Transferable(r, r.base + i * PageSize(), r.base + j * PageSize())) {
        CUresult res = Post(s, proto::CallId::kMemcpyHtoD,
                            proto::MemcpyHtoDReq{r.ctx->id, 0, 0, lo,
                                                 std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(lo), hi - lo)});
        if (res != CUDA_SUCCESS) return res;
      }
      SetState(r, i, j - i, kClean, PROT_READ);
      i = j;
    }
  }
  for (CtxObj* c : sent)
    if (CUresult res = OrderAfterLegacyCopies(s, c); res != CUDA_SUCCESS) return res;
  return CUDA_SUCCESS;
}

void ManagedAfterDeviceWork() {
  RegisteredAfterDeviceWork();
  if (g_count.load(std::memory_order_relaxed) == 0) return;
  std::lock_guard<std::mutex> lock(g_mu);
  for (auto& [base, r] : *g_ranges) {
    if (r.all_device) continue;
    SetState(r, 0, r.pages.size(), kDeviceValid, PROT_NONE);
    r.all_device = true;
  }
}

CUresult ManagedPrefetch(ClientState* s, CUdeviceptr p, size_t n, bool to_host) {
  if (!to_host) return ManagedBeforeDeviceWork(s);
  size_t page = PageSize();
  for (uintptr_t a = p / page * page; a < p + n; a += page) {
    bool device_valid;
    {
      std::lock_guard<std::mutex> lock(g_mu);
      Range* r = FindLocked(a);
      if (r == nullptr) return CUDA_ERROR_INVALID_VALUE;
      device_valid = r->pages[(a - r->base) / page] == kDeviceValid;
    }
    if (device_valid && !Fetch(a)) return CUDA_ERROR_UNKNOWN;
  }
  return CUDA_SUCCESS;
}

}  // namespace rgpu::client
