#include "server/worker/device_heap.h"

#include <algorithm>
#include <chrono>
#include <cstring>

#include "common/device_memory_prop.h"
#include "common/log.h"
#include "server/worker/session.h"

namespace rgpu::worker {
namespace {
constexpr uint64_t kLarge = 1u << 20;  // the driver's allocator rounds these to 2 MiB too
constexpr uint64_t kSmallAlign = 512;

uint64_t RoundUp(uint64_t v, uint64_t a) { return (v + a - 1) / a * a; }

}  // namespace

bool DeviceHeap::Usable() const {
  return d_.cuMemGetAllocationGranularity && d_.cuMemAddressReserve && d_.cuMemAddressFree && d_.cuMemCreate &&
         d_.cuMemRelease && d_.cuMemMap && d_.cuMemUnmap && d_.cuMemSetAccess && d_.cuCtxGetDevice &&
         d_.cuMemHostAlloc && d_.cuMemFreeHost && d_.cuMemcpyDtoHAsync_v2 && d_.cuMemcpyHtoDAsync_v2 &&
         d_.cuCtxSynchronize;
}

Result<uint64_t> DeviceHeap::Granularity(int dev) {
  auto it = granularity_.find(dev);
  if (it != granularity_.end()) return it->second;
  CUmemAllocationProp p = DeviceMemoryProp(dev);
  size_t g = 0;
  RGPU_RETURN_IF_ERROR(CuStatus(d_.cuMemGetAllocationGranularity(&g, &p, CU_MEM_ALLOC_GRANULARITY_MINIMUM),
                                "cuMemGetAllocationGranularity"));
  if (g == 0 || (g & (g - 1)) != 0) return Status::Internal("device heap: odd granularity " + std::to_string(g));
  granularity_[dev] = g;
  return uint64_t{g};
}

Status DeviceHeap::Map(CUdeviceptr base, Chunk& c) {
  CUmemAllocationProp p = DeviceMemoryProp(c.dev);
  CUmemGenericAllocationHandle h = 0;
  RGPU_RETURN_IF_ERROR(CuStatus(d_.cuMemCreate(&h, c.size, &p, 0), "cuMemCreate"));
  Status st = CuStatus(d_.cuMemMap(base, c.size, 0, h, 0), "cuMemMap");
  if (!st.ok()) {
    d_.cuMemRelease(h);
    return st;
  }
  CUmemAccessDesc access{};
  access.location = p.location;
  access.flags = CU_MEM_ACCESS_FLAGS_PROT_READWRITE;
  st = CuStatus(d_.cuMemSetAccess(base, c.size, &access, 1), "cuMemSetAccess");
  if (!st.ok()) {
    d_.cuMemUnmap(base, c.size);
    d_.cuMemRelease(h);
    return st;
  }
  c.handle = h;
  return {};
}

void DeviceHeap::Unmap(CUdeviceptr base, Chunk& c) {
  if (c.handle == 0) return;
  d_.cuMemUnmap(base, c.size);
  d_.cuMemRelease(c.handle);
  c.handle = 0;
}

Result<CUdeviceptr> DeviceHeap::NewChunk(uint64_t size, int dev, CUcontext ctx, bool slab) {
  CUdeviceptr base = 0;
  RGPU_RETURN_IF_ERROR(CuStatus(d_.cuMemAddressReserve(&base, size, 0, 0, 0), "cuMemAddressReserve"));
  Chunk c;
  c.size = size;
  c.dev = dev;
  c.ctx = ctx;
  c.slab = slab;
  if (slab) c.free[0] = size;
  if (Status st = Map(base, c); !st.ok()) {
    d_.cuMemAddressFree(base, size);
    // Out of device memory is what cuMemAlloc would have said.
    return st;
  }
  chunks_[base] = std::move(c);
  chunk_bytes_ += size;
  return base;
}

void DeviceHeap::DropChunk(std::map<CUdeviceptr, Chunk>::iterator it) {
  Unmap(it->first, it->second);
  d_.cuMemAddressFree(it->first, it->second.size);
  chunk_bytes_ -= it->second.size;
  chunks_.erase(it);
}

Result<CUdeviceptr> DeviceHeap::Alloc(uint64_t size) {
  if (size == 0) return Status::Cuda(CUDA_ERROR_INVALID_VALUE, "cuMemAlloc: size 0");
  if (swapped_out_) return Status::Internal("device heap: allocation while swapped out");
  CUdevice dev = 0;
  CUcontext ctx = nullptr;
  RGPU_RETURN_IF_ERROR(CuStatus(d_.cuCtxGetDevice(&dev), "cuCtxGetDevice"));
  if (d_.cuCtxGetCurrent) d_.cuCtxGetCurrent(&ctx);
  Result<uint64_t> g = Granularity(dev);
  if (!g.ok()) return g.take_status();
  if (size >= kLarge || size > *g / 2) {
    if (size > UINT64_MAX - *g) return Status::Cuda(CUDA_ERROR_OUT_OF_MEMORY, "cuMemAlloc: size too large");
    uint64_t rounded = RoundUp(size, *g);
    Result<CUdeviceptr> base = NewChunk(rounded, dev, ctx, false);
    if (!base.ok()) return base;
    allocs_[*base] = rounded;
    return base;
  }
  uint64_t need = RoundUp(size, kSmallAlign);
  auto carve = [&](CUdeviceptr base, Chunk& c) -> CUdeviceptr {
    for (auto f = c.free.begin(); f != c.free.end(); ++f) {
      if (f->second < need) continue;
      uint64_t off = f->first, len = f->second;
      c.free.erase(f);
      if (len > need) c.free[off + need] = len - need;
      ++c.live;
      allocs_[base + off] = need;
      return base + off;
    }
    return 0;
  };
  for (auto& [base, c] : chunks_)
    if (c.slab && c.ctx == ctx)
      if (CUdeviceptr p = carve(base, c)) return p;
  Result<CUdeviceptr> base = NewChunk(*g, dev, ctx, true);
  if (!base.ok()) return base;
  return carve(*base, chunks_[*base]);
}

Status DeviceHeap::Free(CUdeviceptr p) {
  auto a = allocs_.find(p);
  if (a == allocs_.end()) return Status::Cuda(CUDA_ERROR_INVALID_VALUE, "cuMemFree: not a heap allocation");
  uint64_t len = a->second;
  allocs_.erase(a);
  // Like cuMemFree, which synchronises: work still using the range must end
  // before it is unmapped or handed out again.
  RGPU_RETURN_IF_ERROR(CuStatus(d_.cuCtxSynchronize(), "cuMemFree: synchronize"));
  auto it = chunks_.upper_bound(p);
  if (it == chunks_.begin()) return Status::Internal("device heap: allocation outside every chunk");
  --it;
  Chunk& c = it->second;
  if (!c.slab) {
    DropChunk(it);
    return {};
  }
  // Give the range back, merging with its neighbours.
  uint64_t off = p - it->first;
  auto next = c.free.lower_bound(off);
  if (next != c.free.end() && off + len == next->first) {
    len += next->second;
    next = c.free.erase(next);
  }
  if (next != c.free.begin()) {
    auto prev = std::prev(next);
    if (prev->first + prev->second == off) {
      off = prev->first;
      len += prev->second;
      c.free.erase(prev);
    }
  }
  c.free[off] = len;
  if (--c.live == 0) {
    int empty_slabs = 0;
    for (auto& [b, other] : chunks_) empty_slabs += other.slab && other.live == 0 && other.ctx == c.ctx;
    if (empty_slabs > 1) DropChunk(it);  // keep one empty slab
  }
  return {};
}

std::vector<CUdeviceptr> DeviceHeap::ForgetContext(CUcontext ctx) {
  std::vector<CUdeviceptr> freed;
  for (auto it = chunks_.begin(); it != chunks_.end();) {
    if (it->second.ctx != ctx) {
      ++it;
      continue;
    }
    uint64_t end = it->first + it->second.size;
    for (auto a = allocs_.lower_bound(it->first); a != allocs_.end() && a->first < end;) {
      freed.push_back(a->first);
      a = allocs_.erase(a);
    }
    auto next = std::next(it);
    DropChunk(it);
    it = next;
  }
  return freed;
}

CUcontext DeviceHeap::StoreContext() const {
  CUdevice dev = 0;
  CUcontext ctx = nullptr;
  if (!d_.cuCtxGetDevice || d_.cuCtxGetDevice(&dev) != CUDA_SUCCESS || !d_.cuDevicePrimaryCtxRetain ||
      !d_.cuDevicePrimaryCtxRelease_v2)
    return nullptr;
  // Retain and release at once: only the handle is wanted (the worker's own
  // retain keeps the context alive). Not active: nobody keeps it, use the
  // current context instead.
  unsigned flags = 0;
  int active = 0;
  if (!d_.cuDevicePrimaryCtxGetState || d_.cuDevicePrimaryCtxGetState(dev, &flags, &active) != CUDA_SUCCESS ||
      !active)
    return nullptr;
  if (d_.cuDevicePrimaryCtxRetain(&ctx, dev) != CUDA_SUCCESS) return nullptr;
  d_.cuDevicePrimaryCtxRelease_v2(dev);
  return ctx;
}

void DeviceHeap::PrepareStore() {
  if (swapped_out_ || chunk_bytes_ <= store_.bytes() || store_.preparing()) return;
  if (CUcontext ctx = StoreContext(); ctx != nullptr) store_.Prepare(chunk_bytes_, ctx);
}

Status DeviceHeap::MoveTo(int dev, const std::vector<std::pair<CUcontext, CUcontext>>& contexts) {
  if (!swapped_out_ && !chunks_.empty()) return Status::Internal("device heap: move while mapped");
  for (auto& [base, c] : chunks_) {
    c.dev = dev;
    for (auto& [from, to] : contexts)
      if (c.ctx == from) {
        c.ctx = to;
        break;
      }
  }
  return {};
}

std::vector<int> DeviceHeap::Devices() const {
  std::vector<int> out;
  for (auto& [base, c] : chunks_)
    if (std::find(out.begin(), out.end(), c.dev) == out.end()) out.push_back(c.dev);
  return out;
}

Result<uint64_t> DeviceHeap::SwapOut(bool paranoid_wipe) {
  if (swapped_out_) return uint64_t{0};
  if (chunks_.empty()) {  // nothing on the card (perhaps not even a context)
    swapped_out_ = true;
    return uint64_t{0};
  }
  RGPU_RETURN_IF_ERROR(store_.Ensure(chunk_bytes_, StoreContext()));
  // Everything is queued on the NULL stream and waited for once: one
  // synchronisation for the whole heap instead of one per chunk.
  uint64_t at = 0;
  for (auto& [base, c] : chunks_) {
    CUdeviceptr src = base;
    RGPU_RETURN_IF_ERROR(store_.ForEach(at, c.size, [&](uint8_t* host, uint64_t n) {
      Status st = CuStatus(d_.cuMemcpyDtoHAsync_v2(host, src, n, nullptr), "swap out: copy");
      src += n;
      return st;
    }));
    at += c.size;
  }
  RGPU_RETURN_IF_ERROR(CuStatus(d_.cuCtxSynchronize(), "swap out: synchronize"));
  // Saved: now nothing of it may stay on the card.
  Result<uint64_t> wiped = Wipe(paranoid_wipe);
  if (!wiped.ok()) return wiped;
  for (auto& [base, c] : chunks_) Unmap(base, c);
  swapped_out_ = true;
  return chunk_bytes_;
}

Result<uint64_t> DeviceHeap::SwapIn() {
  if (!swapped_out_) return uint64_t{0};
  if (chunks_.empty()) {
    swapped_out_ = false;
    return uint64_t{0};
  }
  uint64_t at = 0;
  Status st;
  for (auto& [base, c] : chunks_) {
    st = Map(base, c).With("swap in");
    CUdeviceptr dst = base;
    if (st.ok())
      st = store_.ForEach(at, c.size, [&](uint8_t* host, uint64_t n) {
        Status s = CuStatus(d_.cuMemcpyHtoDAsync_v2(dst, host, n, nullptr), "swap in: copy");
        dst += n;
        return s;
      });
    if (!st.ok()) break;
    at += c.size;
  }
  if (st.ok()) st = CuStatus(d_.cuCtxSynchronize(), "swap in: synchronize");
  if (!st.ok()) {
    // The session ends: what was copied back is zeroed before release, as
    // the wipe at session end would have done (it skips a swapped-out heap).
    d_.cuCtxSynchronize();
    for (auto& [base, c] : chunks_)
      if (c.handle != 0) {
        d_.cuMemsetD8_v2(base, 0, c.size);
        d_.cuCtxSynchronize();
        Unmap(base, c);
      }
    return st;
  }
  swapped_out_ = false;
  return chunk_bytes_;
}

Result<uint64_t> DeviceHeap::Wipe(bool paranoid) {
  if (swapped_out_ || chunks_.empty()) return uint64_t{0};
  std::map<CUdeviceptr, uint64_t> ranges;
  for (auto& [base, c] : chunks_) ranges[base] = c.size;
  return WipeRanges(d_, ranges, paranoid);
}

void DeviceHeap::ReleaseAll() {
  while (!chunks_.empty()) DropChunk(chunks_.begin());
  allocs_.clear();
  swapped_out_ = false;
  store_.Release();  // cleared before the pages go back to the system
}

}  // namespace rgpu::worker
