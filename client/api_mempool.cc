// Exported driver functions: memory pools (client/mem_pools.h says what a
// pool is here and why it never caches memory).
#include <cstring>

#include "client/api_common.h"
#include "client/graph_model.h"
#include "client/mem_pools.h"
#include "client/unsupported.h"

using namespace rgpu::client;

namespace {

using Lock = std::lock_guard<std::mutex>;

CUmemoryPool Handle(MemPoolObj* p) { return reinterpret_cast<CUmemoryPool>(p); }

MemPoolObj* Find(MemPools& m, CUmemoryPool h) {
  auto it = m.live.find(h);
  return it == m.live.end() ? nullptr : it->second;
}

MemPoolObj* NewPool(MemPools& m, const CUmemPoolProps& props, bool is_default) {
  m.all.push_back(std::make_unique<MemPoolObj>());
  MemPoolObj* p = m.all.back().get();
  p->props = props;
  p->is_default = is_default;
  m.live[p] = p;
  return p;
}

// The device's default pool, made on first use.
MemPoolObj* DefaultPool(MemPools& m, int dev) {
  auto it = m.defaults.find(dev);
  if (it != m.defaults.end()) return it->second;
  CUmemPoolProps props{};
  props.allocType = CU_MEM_ALLOCATION_TYPE_PINNED;
  props.handleTypes = CU_MEM_HANDLE_TYPE_NONE;
  props.location = CUmemLocation{CU_MEM_LOCATION_TYPE_DEVICE, dev};
  MemPoolObj* p = NewPool(m, props, true);
  m.defaults[dev] = p;
  return p;
}

MemPoolObj* CurrentPool(MemPools& m, int dev) {
  auto it = m.current.find(dev);
  return it != m.current.end() ? it->second : DefaultPool(m, dev);
}

bool ValidDevice(ClientState* s, CUdevice dev) { return dev >= 0 && dev < s->device_count(); }

}  // namespace

namespace rgpu::client {

MemPools& ClientState::mem_pools() {
  std::call_once(mem_pools_once_, [this] { mem_pools_ = std::make_shared<MemPools>(); });
  return *mem_pools_;
}

CUresult PoolAlloc(ClientState* s, CUdeviceptr* dptr, size_t size, CUmemoryPool pool) {
  if (dptr == nullptr) return CUDA_ERROR_INVALID_VALUE;
  CtxObj* c = s->Current();
  if (c == nullptr) return CUDA_ERROR_INVALID_CONTEXT;
  MemPools& m = s->mem_pools();
  Lock lock(m.mu);
  MemPoolObj* p = pool != nullptr ? Find(m, pool) : CurrentPool(m, c->device);
  if (p == nullptr) return CUDA_ERROR_INVALID_VALUE;
  if (p->props.location.id != c->device)
    return ReportUnsupported("cuMemAllocFromPoolAsync from a pool of another device than the current context's");
  if (p->props.maxSize != 0 && p->used + size > p->props.maxSize) return CUDA_ERROR_OUT_OF_MEMORY;
  CUresult r = cuMemAlloc_v2(dptr, size);
  if (r != CUDA_SUCCESS) return r;
  m.allocs[*dptr] = {p, size};
  p->used += size;
  p->used_high = std::max(p->used_high, p->used);
  p->reserved_high = std::max(p->reserved_high, p->used);
  return CUDA_SUCCESS;
}

void PoolNoteFree(ClientState* s, CUdeviceptr ptr) {
  MemPools& m = s->mem_pools();
  Lock lock(m.mu);
  auto it = m.allocs.find(ptr);
  if (it == m.allocs.end()) return;
  it->second.first->used -= it->second.second;
  m.allocs.erase(it);
}

}  // namespace rgpu::client

extern "C" {

CUresult cuDeviceGetDefaultMemPool(CUmemoryPool* pool, CUdevice dev) {
  if (pool == nullptr) return CUDA_ERROR_INVALID_VALUE;
  RGPU_STATE_OR_RETURN(s);
  if (!ValidDevice(s, dev)) return CUDA_ERROR_INVALID_DEVICE;
  MemPools& m = s->mem_pools();
  Lock lock(m.mu);
  *pool = Handle(DefaultPool(m, dev));
  return CUDA_SUCCESS;
}

CUresult cuDeviceGetMemPool(CUmemoryPool* pool, CUdevice dev) {
  if (pool == nullptr) return CUDA_ERROR_INVALID_VALUE;
  RGPU_STATE_OR_RETURN(s);
  if (!ValidDevice(s, dev)) return CUDA_ERROR_INVALID_DEVICE;
  MemPools& m = s->mem_pools();
  Lock lock(m.mu);
  *pool = Handle(CurrentPool(m, dev));
  return CUDA_SUCCESS;
}

CUresult cuDeviceSetMemPool(CUdevice dev, CUmemoryPool pool) {
  RGPU_STATE_OR_RETURN(s);
  if (!ValidDevice(s, dev)) return CUDA_ERROR_INVALID_DEVICE;
  MemPools& m = s->mem_pools();
  Lock lock(m.mu);
  MemPoolObj* p = Find(m, pool);
  if (p == nullptr || p->props.location.type != CU_MEM_LOCATION_TYPE_DEVICE || p->props.location.id != dev)
    return CUDA_ERROR_INVALID_VALUE;
  m.current[dev] = p;
  return CUDA_SUCCESS;
}

// CUDA 13's location-based forms: device pools of pinned memory only.
CUresult cuMemGetDefaultMemPool(CUmemoryPool* pool, CUmemLocation* loc, CUmemAllocationType type) {
  if (pool == nullptr || loc == nullptr) return CUDA_ERROR_INVALID_VALUE;
  if (loc->type != CU_MEM_LOCATION_TYPE_DEVICE || type != CU_MEM_ALLOCATION_TYPE_PINNED)
    return ReportUnsupported("cuMemGetDefaultMemPool for host or managed memory");
  return cuDeviceGetDefaultMemPool(pool, loc->id);
}
CUresult cuMemGetMemPool(CUmemoryPool* pool, CUmemLocation* loc, CUmemAllocationType type) {
  if (pool == nullptr || loc == nullptr) return CUDA_ERROR_INVALID_VALUE;
  if (loc->type != CU_MEM_LOCATION_TYPE_DEVICE || type != CU_MEM_ALLOCATION_TYPE_PINNED)
    return ReportUnsupported("cuMemGetMemPool for host or managed memory");
  return cuDeviceGetMemPool(pool, loc->id);
}
CUresult cuMemSetMemPool(CUmemLocation* loc, CUmemAllocationType type, CUmemoryPool pool) {
  if (loc == nullptr) return CUDA_ERROR_INVALID_VALUE;
  if (loc->type != CU_MEM_LOCATION_TYPE_DEVICE || type != CU_MEM_ALLOCATION_TYPE_PINNED)
    return ReportUnsupported("cuMemSetMemPool for host or managed memory");
  return cuDeviceSetMemPool(loc->id, pool);
}

CUresult cuMemPoolCreate(CUmemoryPool* pool, const CUmemPoolProps* props) {
  if (pool == nullptr || props == nullptr) return CUDA_ERROR_INVALID_VALUE;
  RGPU_STATE_OR_RETURN(s);
  if (props->allocType != CU_MEM_ALLOCATION_TYPE_PINNED) return CUDA_ERROR_INVALID_VALUE;
  if (props->location.type != CU_MEM_LOCATION_TYPE_DEVICE)
    return ReportUnsupported("cuMemPoolCreate for host memory (only device pools are offered)");
  if (!ValidDevice(s, props->location.id)) return CUDA_ERROR_INVALID_DEVICE;
  if (props->handleTypes != CU_MEM_HANDLE_TYPE_NONE)
    return ReportUnsupported("cuMemPoolCreate with shareable handle types (IPC)");
  MemPools& m = s->mem_pools();
  Lock lock(m.mu);
  *pool = Handle(NewPool(m, *props, false));
  return CUDA_SUCCESS;
}

CUresult cuMemPoolDestroy(CUmemoryPool pool) {
  RGPU_STATE_OR_RETURN(s);
  MemPools& m = s->mem_pools();
  Lock lock(m.mu);
  MemPoolObj* p = Find(m, pool);
  if (p == nullptr || p->is_default) return CUDA_ERROR_INVALID_VALUE;
  // "Destroying the current mempool of a device sets the default mempool of
  // that device as the current mempool for that device" (cuda.h). Its
  // outstanding allocations stay valid until freed.
  for (auto it = m.current.begin(); it != m.current.end();)
    it = it->second == p ? m.current.erase(it) : std::next(it);
  p->destroyed = true;
  m.live.erase(pool);
  return CUDA_SUCCESS;
}

CUresult cuMemPoolSetAttribute(CUmemoryPool pool, CUmemPool_attribute attr, void* value) {
  if (value == nullptr) return CUDA_ERROR_INVALID_VALUE;
  RGPU_STATE_OR_RETURN(s);
  MemPools& m = s->mem_pools();
  Lock lock(m.mu);
  MemPoolObj* p = Find(m, pool);
  if (p == nullptr) return CUDA_ERROR_INVALID_VALUE;
  switch (attr) {
    case CU_MEMPOOL_ATTR_REUSE_FOLLOW_EVENT_DEPENDENCIES:
    case CU_MEMPOOL_ATTR_REUSE_ALLOW_OPPORTUNISTIC:
    case CU_MEMPOOL_ATTR_REUSE_ALLOW_INTERNAL_DEPENDENCIES:
      p->reuse[attr - CU_MEMPOOL_ATTR_REUSE_FOLLOW_EVENT_DEPENDENCIES] = *static_cast<int*>(value) != 0;
      return CUDA_SUCCESS;
    case CU_MEMPOOL_ATTR_RELEASE_THRESHOLD:
      p->release_threshold = *static_cast<cuuint64_t*>(value);
      return CUDA_SUCCESS;
    case CU_MEMPOOL_ATTR_RESERVED_MEM_HIGH:
    case CU_MEMPOOL_ATTR_USED_MEM_HIGH:
      // "It is illegal to set this attribute to a non-zero value" (cuda.h).
      if (*static_cast<cuuint64_t*>(value) != 0) return CUDA_ERROR_INVALID_VALUE;
      // Reset to the current value, as the driver does.
      (attr == CU_MEMPOOL_ATTR_USED_MEM_HIGH ? p->used_high : p->reserved_high) = p->used;
      return CUDA_SUCCESS;
    default:
      return CUDA_ERROR_INVALID_VALUE;  // read-only or unknown
  }
}

CUresult cuMemPoolGetAttribute(CUmemoryPool pool, CUmemPool_attribute attr, void* value) {
  if (value == nullptr) return CUDA_ERROR_INVALID_VALUE;
  RGPU_STATE_OR_RETURN(s);
  MemPools& m = s->mem_pools();
  Lock lock(m.mu);
  MemPoolObj* p = Find(m, pool);
  if (p == nullptr) return CUDA_ERROR_INVALID_VALUE;
  auto u64 = [value](uint64_t v) {
    *static_cast<cuuint64_t*>(value) = v;
    return CUDA_SUCCESS;
  };
  switch (attr) {
    case CU_MEMPOOL_ATTR_REUSE_FOLLOW_EVENT_DEPENDENCIES:
    case CU_MEMPOOL_ATTR_REUSE_ALLOW_OPPORTUNISTIC:
    case CU_MEMPOOL_ATTR_REUSE_ALLOW_INTERNAL_DEPENDENCIES:
      *static_cast<int*>(value) = p->reuse[attr - CU_MEMPOOL_ATTR_REUSE_FOLLOW_EVENT_DEPENDENCIES];
      return CUDA_SUCCESS;
    case CU_MEMPOOL_ATTR_RELEASE_THRESHOLD:
      return u64(p->release_threshold);
    case CU_MEMPOOL_ATTR_RESERVED_MEM_CURRENT:  // nothing is cached: reserved == used
    case CU_MEMPOOL_ATTR_USED_MEM_CURRENT:
      return u64(p->used);
    case CU_MEMPOOL_ATTR_RESERVED_MEM_HIGH:
      return u64(p->reserved_high);
    case CU_MEMPOOL_ATTR_USED_MEM_HIGH:
      return u64(p->used_high);
    default:
      return CUDA_ERROR_INVALID_VALUE;
  }
}

CUresult cuMemPoolTrimTo(CUmemoryPool pool, size_t) {
  RGPU_STATE_OR_RETURN(s);
  MemPools& m = s->mem_pools();
  Lock lock(m.mu);
  // Freed memory is returned at once (mem_pools.h): there is nothing to trim.
  return Find(m, pool) != nullptr ? CUDA_SUCCESS : CUDA_ERROR_INVALID_VALUE;
}

CUresult cuMemPoolGetAccess(CUmemAccess_flags* flags, CUmemoryPool pool, CUmemLocation* location) {
  if (flags == nullptr || location == nullptr) return CUDA_ERROR_INVALID_VALUE;
  RGPU_STATE_OR_RETURN(s);
  MemPools& m = s->mem_pools();
  Lock lock(m.mu);
  MemPoolObj* p = Find(m, pool);
  if (p == nullptr || location->type != CU_MEM_LOCATION_TYPE_DEVICE || !ValidDevice(s, location->id))
    return CUDA_ERROR_INVALID_VALUE;
  *flags = location->id == p->props.location.id ? CU_MEM_ACCESS_FLAGS_PROT_READWRITE : CU_MEM_ACCESS_FLAGS_PROT_NONE;
  return CUDA_SUCCESS;
}

CUresult cuMemPoolSetAccess(CUmemoryPool pool, const CUmemAccessDesc* map, size_t count) {
  if (count != 0 && map == nullptr) return CUDA_ERROR_INVALID_VALUE;
  RGPU_STATE_OR_RETURN(s);
  MemPools& m = s->mem_pools();
  Lock lock(m.mu);
  MemPoolObj* p = Find(m, pool);
  if (p == nullptr) return CUDA_ERROR_INVALID_VALUE;
  for (size_t i = 0; i < count; ++i) {
    if (map[i].location.type != CU_MEM_LOCATION_TYPE_DEVICE || !ValidDevice(s, map[i].location.id))
      return CUDA_ERROR_INVALID_VALUE;
    bool own = map[i].location.id == p->props.location.id;
    // The owning device always has read-write access (cuda.h).
    if (own && map[i].flags != CU_MEM_ACCESS_FLAGS_PROT_READWRITE) return CUDA_ERROR_INVALID_VALUE;
    if (!own) return ReportUnsupported("cuMemPoolSetAccess for a peer device");
  }
  return CUDA_SUCCESS;
}

CUresult cuMemAllocFromPoolAsync(CUdeviceptr* dptr, size_t size, CUmemoryPool pool, CUstream h) {
  if (dptr == nullptr || pool == nullptr) return CUDA_ERROR_INVALID_VALUE;
  RGPU_STATE_OR_RETURN(s);
  uint64_t stream = 0;
  if (!WireStream(s, h, false, &stream)) return CUDA_ERROR_INVALID_HANDLE;
  Capture cap = s->any_capture() ? s->GetCapture(stream) : Capture{};
  CUresult r = PoolAlloc(s, dptr, size, pool);
  if (r == CUDA_SUCCESS && cap.id != 0) NoteCaptureAlloc(s, cap.graph, *dptr);  // as cuMemAllocAsync
  return r;
}
CUresult cuMemAllocFromPoolAsync_ptsz(CUdeviceptr* dptr, size_t size, CUmemoryPool pool, CUstream h) {
  if (dptr == nullptr || pool == nullptr) return CUDA_ERROR_INVALID_VALUE;
  RGPU_STATE_OR_RETURN(s);
  uint64_t stream = 0;
  if (!WireStream(s, h, true, &stream)) return CUDA_ERROR_INVALID_HANDLE;
  Capture cap = s->any_capture() ? s->GetCapture(stream) : Capture{};
  CUresult r = PoolAlloc(s, dptr, size, pool);
  if (r == CUDA_SUCCESS && cap.id != 0) NoteCaptureAlloc(s, cap.graph, *dptr);  // as cuMemAllocAsync
  return r;
}

}  // extern "C"
