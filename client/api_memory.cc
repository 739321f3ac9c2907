// Exported driver functions: device and host memory, pointer attributes.
// Copies are in api_copy.cc.
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>

#include "client/api_common.h"
#include "client/graph_model.h"
#include "client/managed_memory.h"
#include "client/mem_pools.h"
#include "client/pinned_memory.h"
#include "client/registered_memory.h"
#include "client/unsupported.h"

using namespace rgpu::client;
namespace proto = rgpu::proto;

extern "C" {

CUresult cuMemAlloc_v2(CUdeviceptr* dptr, size_t bytesize) {
  if (dptr == nullptr) return CUDA_ERROR_INVALID_VALUE;
  RGPU_STATE_OR_RETURN(s);
  RGPU_CTX_OR_RETURN(s, c);
  if (bytesize == 0) return CUDA_ERROR_INVALID_VALUE;
  proto::MemAllocRep rep;
  CUresult r = Sync(s, proto::CallId::kMemAlloc, proto::MemAllocReq{c->id, bytesize}, &rep);
  if (r != CUDA_SUCCESS) return r;
  s->AddAllocation(rep.dptr, bytesize, c);
  *dptr = rep.dptr;
  return CUDA_SUCCESS;
}

CUresult cuMemAllocPitch_v2(CUdeviceptr* dptr, size_t* pitch, size_t width, size_t height,
                            unsigned int elem) {
  if (dptr == nullptr || pitch == nullptr || width == 0 || height == 0) return CUDA_ERROR_INVALID_VALUE;
  if (elem != 4 && elem != 8 && elem != 16) return CUDA_ERROR_INVALID_VALUE;
  RGPU_STATE_OR_RETURN(s);
  RGPU_CTX_OR_RETURN(s, c);
  proto::MemAllocPitchRep rep;
  CUresult r = Sync(s, proto::CallId::kMemAllocPitch,
                    proto::MemAllocPitchReq{c->id, width, height, elem}, &rep);
  if (r != CUDA_SUCCESS) return r;
  s->AddAllocation(rep.dptr, rep.pitch * height, c);
  *dptr = rep.dptr;
  *pitch = rep.pitch;
  return CUDA_SUCCESS;
}

CUresult cuMemAllocManaged(CUdeviceptr* dptr, size_t bytesize, unsigned int flags) {
  if (dptr == nullptr || bytesize == 0) return CUDA_ERROR_INVALID_VALUE;
  if (flags != CU_MEM_ATTACH_GLOBAL && flags != CU_MEM_ATTACH_HOST) return CUDA_ERROR_INVALID_VALUE;
  RGPU_STATE_OR_RETURN(s);
  RGPU_CTX_OR_RETURN(s, c);
  return AllocManaged(s, c, bytesize, dptr);
}

CUresult cuMemPrefetchAsync(CUdeviceptr p, size_t n, CUdevice dst, CUstream) {
  RGPU_STATE_OR_RETURN(s);
  if (!IsManaged(p)) return CUDA_ERROR_INVALID_VALUE;
  return ManagedPrefetch(s, p, n, dst == CU_DEVICE_CPU);
}
CUresult cuMemPrefetchAsync_ptsz(CUdeviceptr p, size_t n, CUdevice dst, CUstream h) {
  return cuMemPrefetchAsync(p, n, dst, h);
}
CUresult cuMemPrefetchAsync_v2(CUdeviceptr p, size_t n, CUmemLocation loc, unsigned int, CUstream h) {
  bool host = loc.type == CU_MEM_LOCATION_TYPE_HOST || loc.type == CU_MEM_LOCATION_TYPE_HOST_NUMA ||
              loc.type == CU_MEM_LOCATION_TYPE_HOST_NUMA_CURRENT;
  return cuMemPrefetchAsync(p, n, host ? CU_DEVICE_CPU : loc.id, h);
}
CUresult cuMemPrefetchAsync_v2_ptsz(CUdeviceptr p, size_t n, CUmemLocation loc, unsigned int f, CUstream h) {
  return cuMemPrefetchAsync_v2(p, n, loc, f, h);
}

namespace {

// The batch forms (CUDA 13): every range must be managed memory and the
// prefetch locations must partition the batch as cuda.h describes (first
// index 0, increasing, each below count); all is checked before anything is
// queued. Each range is then prefetched as cuMemPrefetchAsync_v2 does, in
// the order given (the driver promises no order within a batch).
// Discarding makes a range's contents indeterminate until it is written or
// prefetched: keeping them is one of the outcomes that allows, so a discard
// is checked and leaves the data where it is.
CUresult MemBatch(CUdeviceptr* dptrs, size_t* sizes, size_t count, CUmemLocation* locs, size_t* loc_idxs,
                  size_t num_locs, unsigned long long flags, CUstream h, bool prefetch, bool pt) {
  RGPU_STATE_OR_RETURN(s);
  if (dptrs == nullptr || sizes == nullptr || count == 0 || flags != 0) return CUDA_ERROR_INVALID_VALUE;
  if (!pt && (h == nullptr || h == CU_STREAM_LEGACY)) return CUDA_ERROR_INVALID_VALUE;  // "must not be legacy NULL stream"
  uint64_t stream = 0;
  if (!WireStream(s, h, pt, &stream)) return CUDA_ERROR_INVALID_HANDLE;
  for (size_t i = 0; i < count; ++i)
    if (sizes[i] == 0 || !IsManaged(dptrs[i])) return CUDA_ERROR_INVALID_VALUE;
  if (!prefetch) return CUDA_SUCCESS;
  if (locs == nullptr || loc_idxs == nullptr || num_locs == 0 || num_locs > count || loc_idxs[0] != 0)
    return CUDA_ERROR_INVALID_VALUE;
  for (size_t k = 1; k < num_locs; ++k)
    if (loc_idxs[k] <= loc_idxs[k - 1] || loc_idxs[k] >= count) return CUDA_ERROR_INVALID_VALUE;
  size_t k = 0;
  for (size_t i = 0; i < count; ++i) {
    while (k + 1 < num_locs && loc_idxs[k + 1] <= i) ++k;
    if (CUresult r = cuMemPrefetchAsync_v2(dptrs[i], sizes[i], locs[k], 0, h); r != CUDA_SUCCESS) return r;
  }
  return CUDA_SUCCESS;
}

}  // namespace

CUresult cuMemPrefetchBatchAsync(CUdeviceptr* dptrs, size_t* sizes, size_t count, CUmemLocation* locs,
                                 size_t* idxs, size_t nlocs, unsigned long long flags, CUstream h) {
  return MemBatch(dptrs, sizes, count, locs, idxs, nlocs, flags, h, true, false);
}
CUresult cuMemPrefetchBatchAsync_ptsz(CUdeviceptr* dptrs, size_t* sizes, size_t count, CUmemLocation* locs,
                                      size_t* idxs, size_t nlocs, unsigned long long flags, CUstream h) {
  return MemBatch(dptrs, sizes, count, locs, idxs, nlocs, flags, h, true, true);
}
CUresult cuMemDiscardBatchAsync(CUdeviceptr* dptrs, size_t* sizes, size_t count, unsigned long long flags,
                                CUstream h) {
  return MemBatch(dptrs, sizes, count, nullptr, nullptr, 0, flags, h, false, false);
}
CUresult cuMemDiscardBatchAsync_ptsz(CUdeviceptr* dptrs, size_t* sizes, size_t count,
                                     unsigned long long flags, CUstream h) {
  return MemBatch(dptrs, sizes, count, nullptr, nullptr, 0, flags, h, false, true);
}
CUresult cuMemDiscardAndPrefetchBatchAsync(CUdeviceptr* dptrs, size_t* sizes, size_t count,
                                           CUmemLocation* locs, size_t* idxs, size_t nlocs,
                                           unsigned long long flags, CUstream h) {
  return MemBatch(dptrs, sizes, count, locs, idxs, nlocs, flags, h, true, false);
}
CUresult cuMemDiscardAndPrefetchBatchAsync_ptsz(CUdeviceptr* dptrs, size_t* sizes, size_t count,
                                                CUmemLocation* locs, size_t* idxs, size_t nlocs,
                                                unsigned long long flags, CUstream h) {
  return MemBatch(dptrs, sizes, count, locs, idxs, nlocs, flags, h, true, true);
}

// Advice tunes placement; it never changes results. The emulation has one
// placement policy, so advice on a managed range is checked and accepted.
CUresult cuMemAdvise_v2(CUdeviceptr p, size_t n, CUmem_advise advice, CUmemLocation) {
  RGPU_STATE_OR_RETURN(s);
  if (!IsManaged(p) || advice < CU_MEM_ADVISE_SET_READ_MOSTLY || advice > CU_MEM_ADVISE_UNSET_ACCESSED_BY)
    return CUDA_ERROR_INVALID_VALUE;
  return CUDA_SUCCESS;
}
CUresult cuMemAdvise(CUdeviceptr p, size_t n, CUmem_advise advice, CUdevice dev) {
  return cuMemAdvise_v2(p, n, advice, CUmemLocation{CU_MEM_LOCATION_TYPE_DEVICE, dev});
}

// cuStreamAttachMemAsync says which stream's work may touch managed memory,
// so that the host may use it while other streams run. The emulation's
// coherence (managed_memory.h) already allows every such access: host
// access after GPU work waits for the context and fetches the data, so the
// association changes nothing here beyond the checks the driver makes.
CUresult StreamAttachMem(CUstream h, CUdeviceptr p, size_t length, unsigned flags, bool pt) {
  RGPU_STATE_OR_RETURN(s);
  uint64_t stream = 0;
  if (!WireStream(s, h, pt, &stream)) return CUDA_ERROR_INVALID_HANDLE;
  if (flags != CU_MEM_ATTACH_GLOBAL && flags != CU_MEM_ATTACH_HOST && flags != CU_MEM_ATTACH_SINGLE)
    return CUDA_ERROR_INVALID_VALUE;
  // Managed memory: the whole allocation (length zero or its size).
  CUdeviceptr base = 0;
  uint64_t size = 0;
  if (!IsManaged(p) || !s->FindAllocation(p, &base, &size) || base != p || length > size)
    return CUDA_ERROR_INVALID_VALUE;
  return CUDA_SUCCESS;
}

CUresult cuStreamAttachMemAsync(CUstream h, CUdeviceptr p, size_t length, unsigned int flags) {
  return StreamAttachMem(h, p, length, flags, false);
}
CUresult cuStreamAttachMemAsync_ptsz(CUstream h, CUdeviceptr p, size_t length, unsigned int flags) {
  return StreamAttachMem(h, p, length, flags, true);
}

// Stream-ordered allocation: the memory is allocated at once (usable by the
// stream's later work, as required) and freed in order on the worker, whose
// cuMemFree waits for the device. Pools are accounted on the client
// (api_mempool.cc).
CUresult MemAllocAsync(CUdeviceptr* dptr, size_t bytesize, CUstream h, bool pt) {
  if (dptr == nullptr) return CUDA_ERROR_INVALID_VALUE;
  RGPU_STATE_OR_RETURN(s);
  uint64_t stream = 0;
  if (!WireStream(s, h, pt, &stream)) return CUDA_ERROR_INVALID_HANDLE;
  Capture cap = s->any_capture() ? s->GetCapture(stream) : Capture{};
  CUresult r = PoolAlloc(s, dptr, bytesize, nullptr);  // the device's current pool (mem_pools.h)
  // In a capture the memory is the graph's to use at every launch: a later
  // free of it waits until that graph is gone (api_graph_extras.cc).
  if (r == CUDA_SUCCESS && cap.id != 0) NoteCaptureAlloc(s, cap.graph, *dptr);
  return r;
}

CUresult cuMemAllocAsync(CUdeviceptr* dptr, size_t bytesize, CUstream h) { return MemAllocAsync(dptr, bytesize, h, false); }
CUresult cuMemAllocAsync_ptsz(CUdeviceptr* dptr, size_t bytesize, CUstream h) {
  return MemAllocAsync(dptr, bytesize, h, true);
}

namespace {

// The cuMemMap mapping that starts at `base`, if the allocation there is one:
// its cuMemCreate handle, and the properties it was created with while the
// handle lives (cuMemRelease before cuMemUnmap forgets them here).
struct VmmMapping {
  uint64_t handle = 0;
  bool has_prop = false;
  CUmemAllocationProp prop{};
};

bool FindVmmMapping(ClientState* s, CUdeviceptr base, VmmMapping* out) {
  std::lock_guard<std::mutex> lock(s->vmm().mu);
  auto it = s->vmm().mappings.find(base);
  if (it == s->vmm().mappings.end()) return false;
  out->handle = it->second.second;
  auto h = s->vmm().handles.find(out->handle);
  out->has_prop = h != s->vmm().handles.end();
  if (out->has_prop) out->prop = h->second.prop;
  return true;
}

// The pool a stream-ordered allocation at `base` came from, else null.
CUmemoryPool PoolOf(ClientState* s, CUdeviceptr base) {
  MemPools& m = s->mem_pools();
  std::lock_guard<std::mutex> lock(m.mu);
  auto it = m.allocs.find(base);
  return it == m.allocs.end() ? nullptr : reinterpret_cast<CUmemoryPool>(it->second.first);
}

}  // namespace

// True for memory from cuMemHostAlloc with CU_MEMHOSTALLOC_DEVICEMAP, and
// for plain pinned memory promoted for kernels (client/pinned_memory.h).
static bool IsMappedHost(ClientState* s, const void* p) {
  // IsManaged first: one atomic load when the process has no managed memory
  // (cuMemFree and cuPointerGetAttribute ask every time).
  unsigned flags = 0;
  return IsManaged(reinterpret_cast<CUdeviceptr>(p)) && s->IsHostRange(p, nullptr, &flags) &&
         ((flags & CU_MEMHOSTALLOC_DEVICEMAP) || IsPromotedPinned(p));
}

CUresult cuMemFree_v2(CUdeviceptr dptr);

CUresult MemFreeAsync(CUdeviceptr dptr, CUstream h, bool pt) {
  RGPU_STATE_OR_RETURN(s);
  uint64_t stream = 0;
  if (!WireStream(s, h, pt, &stream)) return CUDA_ERROR_INVALID_HANDLE;
  Capture cap = s->any_capture() ? s->GetCapture(stream) : Capture{};
  if (cap.id != 0) {
    // A free captured into a graph: the graph's launches may still use the
    // memory, so it is freed when the graph and its executable graphs are
    // destroyed (the driver frees it at the graph's free node instead).
    CUdeviceptr base = 0;
    if (dptr == 0 || IsManaged(dptr) || !s->FindAllocation(dptr, &base, nullptr) || base != dptr)
      return CUDA_ERROR_INVALID_VALUE;
    NoteCaptureFree(s, cap.graph, dptr);
    return CUDA_SUCCESS;
  }
  return cuMemFree_v2(dptr);
}

CUresult cuMemFreeAsync(CUdeviceptr dptr, CUstream h) { return MemFreeAsync(dptr, h, false); }
CUresult cuMemFreeAsync_ptsz(CUdeviceptr dptr, CUstream h) { return MemFreeAsync(dptr, h, true); }

CUresult cuMemFree_v2(CUdeviceptr dptr) {
  RGPU_STATE_OR_RETURN(s);
  if (dptr == 0) return CUDA_SUCCESS;
  // Mapped pinned memory is host memory to the program: cuMemFreeHost frees it.
  if (IsMappedHost(s, reinterpret_cast<void*>(dptr))) return CUDA_ERROR_INVALID_VALUE;
  // So is registered memory's mirror: cuMemHostUnregister ends it.
  if (IsRegisteredMirror(dptr)) return CUDA_ERROR_INVALID_VALUE;
  if (CUresult mr; FreeManaged(s, dptr, &mr)) return mr;
  CtxObj* ctx = nullptr;
  CUdeviceptr base = 0;
  if (!s->FindAllocation(dptr, &base, nullptr, &ctx) || base != dptr) return CUDA_ERROR_INVALID_VALUE;
  // Allocated in a capture whose graph still lives: freed with that graph.
  if (DeferFreeOfCaptureAlloc(s, dptr)) return CUDA_SUCCESS;
  s->RemoveAllocation(dptr);
  PoolNoteFree(s, dptr);
  NoteGraphMemFreed(s, dptr);
  // Ordered after all earlier work by the worker; failures surface later.
  return Post(s, proto::CallId::kMemFree, proto::MemFreeReq{ctx->id, dptr});
}

CUresult cuMemGetInfo_v2(size_t* free, size_t* total) {
  if (free == nullptr || total == nullptr) return CUDA_ERROR_INVALID_VALUE;
  RGPU_STATE_OR_RETURN(s);
  RGPU_CTX_OR_RETURN(s, c);
  proto::MemGetInfoRep rep;
  CUresult r = Sync(s, proto::CallId::kMemGetInfo, proto::MemGetInfoReq{c->id}, &rep);
  if (r == CUDA_SUCCESS) {
    *free = rep.free;
    *total = rep.total;
  }
  return r;
}

CUresult cuMemGetAddressRange_v2(CUdeviceptr* pbase, size_t* psize, CUdeviceptr dptr) {
  RGPU_STATE_OR_RETURN(s);
  CUdeviceptr base = 0;
  uint64_t size = 0;
  if (!s->FindAllocation(dptr, &base, &size)) return CUDA_ERROR_NOT_FOUND;
  if (pbase) *pbase = base;
  if (psize) *psize = size;
  return CUDA_SUCCESS;
}

// Pinned host memory is emulated with ordinary host memory: the bytes still
// cross the network, so page-locking here would buy nothing.
// Mapped pinned memory (CU_MEMHOSTALLOC_DEVICEMAP, cudaHostAllocMapped) is
// read and written by kernels through its device pointer ("zero copy"). A
// GPU across the network cannot reach this host's memory, so it is served
// as managed memory (client/managed_memory.h): device memory on the GPU host
// with this process's copy mapped at the same address, kept coherent at
// GPU-work boundaries. The host pointer is the device pointer, as with
// unified addressing on a local GPU.
CUresult cuMemHostAlloc(void** pp, size_t bytesize, unsigned int flags) {
  if (pp == nullptr) return CUDA_ERROR_INVALID_VALUE;
  RGPU_STATE_OR_RETURN(s);
  RGPU_CTX_OR_RETURN(s, c);
  if (flags & ~(CU_MEMHOSTALLOC_PORTABLE | CU_MEMHOSTALLOC_DEVICEMAP | CU_MEMHOSTALLOC_WRITECOMBINED))
    return CUDA_ERROR_INVALID_VALUE;
  if (flags & CU_MEMHOSTALLOC_DEVICEMAP) {
    CUdeviceptr d = 0;
    CUresult r = AllocManaged(s, c, bytesize ? bytesize : 1, &d);
    if (r != CUDA_SUCCESS) return r;
    s->AddHostRange(reinterpret_cast<void*>(d), bytesize, flags, /*owned=*/true);
    *pp = reinterpret_cast<void*>(d);
    return CUDA_SUCCESS;
  }
  // Plain pinned memory: promotable (client/pinned_memory.h) where a device
  // address range can be reserved and mirrored here, else ordinary memory
  // that kernels cannot reach.
  void* p = AllocPromotablePinned(s, c, bytesize);
  if (p == nullptr && posix_memalign(&p, 4096, bytesize ? bytesize : 1) != 0) return CUDA_ERROR_OUT_OF_MEMORY;
  s->AddHostRange(p, bytesize, flags, /*owned=*/true);
  *pp = p;
  return CUDA_SUCCESS;
}

CUresult cuMemHostGetDevicePointer_v2(CUdeviceptr* pdptr, void* p, unsigned int flags) {
  if (pdptr == nullptr || p == nullptr || flags != 0) return CUDA_ERROR_INVALID_VALUE;
  RGPU_STATE_OR_RETURN(s);
  if (IsMappedHost(s, p)) {
    *pdptr = reinterpret_cast<CUdeviceptr>(p);
    return CUDA_SUCCESS;
  }
  if (!s->IsHostRange(p)) return CUDA_ERROR_INVALID_VALUE;
  // Plain pinned memory from cuMemHostAlloc: promoted, its host pointer is
  // its device pointer (unified addressing).
  bool promotable = false;
  CUresult r = PromotePinned(s, p, &promotable);
  if (promotable) {
    if (r == CUDA_SUCCESS) *pdptr = reinterpret_cast<CUdeviceptr>(p);
    return r;
  }
  // Registered: its mirror on the GPU host (client/registered_memory.h),
  // or why none could be made (CUDA_ERROR_OUT_OF_MEMORY...).
  if (CUresult rr = RegisteredDevicePointer(s, p, pdptr); rr != CUDA_ERROR_INVALID_VALUE) return rr;
  // Pinned that could not be made promotable: not reachable from the GPU host.
  return ReportUnsupported("cuMemHostGetDevicePointer on pinned memory that could not be mapped for the GPU");
}

CUresult cuMemAllocHost_v2(void** pp, size_t bytesize) { return cuMemHostAlloc(pp, bytesize, 0); }

CUresult cuMemFreeHost(void* p) {
  RGPU_STATE_OR_RETURN(s);
  bool owned = false;
  if (CUresult r; FreePromotablePinned(s, p, &r)) {
    s->RemoveHostRange(p, &owned);
    return r;
  }
  if (IsMappedHost(s, p)) {
    CUresult r = CUDA_ERROR_INVALID_VALUE;
    if (!s->RemoveHostRange(p, &owned) || !FreeManaged(s, reinterpret_cast<CUdeviceptr>(p), &r))
      return CUDA_ERROR_INVALID_VALUE;
    return r;
  }
  if (!s->RemoveHostRange(p, &owned) || !owned) return CUDA_ERROR_INVALID_VALUE;
  free(p);
  return CUDA_SUCCESS;
}

CUresult cuMemHostRegister_v2(void* p, size_t bytesize, unsigned int flags) {
  if (p == nullptr || bytesize == 0) return CUDA_ERROR_INVALID_VALUE;
  RGPU_STATE_OR_RETURN(s);
  RGPU_CTX_OR_RETURN(s, c);
  if (s->IsHostRange(p)) return CUDA_ERROR_HOST_MEMORY_ALREADY_REGISTERED;
  s->AddHostRange(p, bytesize, flags, /*owned=*/false);
  NoteRegistered(c, p, bytesize);
  return CUDA_SUCCESS;
}

CUresult cuMemHostUnregister(void* p) {
  RGPU_STATE_OR_RETURN(s);
  uint64_t size = 0;
  unsigned flags = 0;
  if (!s->IsHostRange(p, &size, &flags)) return CUDA_ERROR_HOST_MEMORY_NOT_REGISTERED;
  bool owned = false;
  if (!s->RemoveHostRange(p, &owned)) return CUDA_ERROR_HOST_MEMORY_NOT_REGISTERED;
  if (owned) {
    // cuMemHostAlloc's memory, or not the base of a registration: only
    // cuMemFreeHost ends it, as with the driver.
    s->AddHostRange(p, size, flags, /*owned=*/true);
    return CUDA_ERROR_HOST_MEMORY_NOT_REGISTERED;
  }
  NoteUnregistered(s, p);
  return CUDA_SUCCESS;
}

CUresult cuMemHostGetFlags(unsigned int* flags, void* p) {
  if (flags == nullptr) return CUDA_ERROR_INVALID_VALUE;
  RGPU_STATE_OR_RETURN(s);
  if (!s->IsHostRange(p, nullptr, flags)) return CUDA_ERROR_INVALID_VALUE;
  return CUDA_SUCCESS;
}

CUresult cuPointerGetAttribute(void* data, CUpointer_attribute attribute, CUdeviceptr ptr) {
  if (data == nullptr) return CUDA_ERROR_INVALID_VALUE;
  RGPU_STATE_OR_RETURN(s);
  CUdeviceptr base = 0;
  uint64_t size = 0;
  CtxObj* ctx = nullptr;
  bool device = s->FindAllocation(ptr, &base, &size, &ctx);
  uint64_t host_size = 0;
  unsigned host_flags = 0;
  // Mapped pinned memory: host memory that also has a device pointer.
  bool mapped = device && IsMappedHost(s, reinterpret_cast<void*>(ptr));
  bool host = !device && s->IsHostRange(reinterpret_cast<void*>(ptr), &host_size, &host_flags);
  if (!device && !host) return CUDA_ERROR_INVALID_VALUE;
  switch (attribute) {
    case CU_POINTER_ATTRIBUTE_CONTEXT:
      *static_cast<CUcontext*>(data) = reinterpret_cast<CUcontext>(device ? ctx : s->Current());
      return CUDA_SUCCESS;
    case CU_POINTER_ATTRIBUTE_MEMORY_TYPE:
      *static_cast<unsigned*>(data) = device && !mapped ? CU_MEMORYTYPE_DEVICE : CU_MEMORYTYPE_HOST;
      return CUDA_SUCCESS;
    case CU_POINTER_ATTRIBUTE_DEVICE_POINTER:
      if (!device) return CUDA_ERROR_INVALID_VALUE;  // host memory is not mapped for the GPU
      *static_cast<CUdeviceptr*>(data) = ptr;
      return CUDA_SUCCESS;
    case CU_POINTER_ATTRIBUTE_HOST_POINTER:
      if (device && !mapped) return CUDA_ERROR_INVALID_VALUE;
      *static_cast<void**>(data) = reinterpret_cast<void*>(ptr);
      return CUDA_SUCCESS;
    case CU_POINTER_ATTRIBUTE_IS_MANAGED:
      *static_cast<int*>(data) = device && !mapped && IsManaged(ptr) ? 1 : 0;
      return CUDA_SUCCESS;
    case CU_POINTER_ATTRIBUTE_MAPPED:
    case CU_POINTER_ATTRIBUTE_IS_LEGACY_CUDA_IPC_CAPABLE:
      *static_cast<int*>(data) = attribute == CU_POINTER_ATTRIBUTE_MAPPED ? 1 : 0;
      return CUDA_SUCCESS;
    case CU_POINTER_ATTRIBUTE_DEVICE_ORDINAL:
      *static_cast<int*>(data) = device ? ctx->device : (s->Current() ? s->Current()->device : 0);
      return CUDA_SUCCESS;
    case CU_POINTER_ATTRIBUTE_RANGE_START_ADDR:
      *static_cast<CUdeviceptr*>(data) = device ? base : ptr;
      return CUDA_SUCCESS;
    case CU_POINTER_ATTRIBUTE_RANGE_SIZE:
      *static_cast<size_t*>(data) = device ? size : host_size;
      return CUDA_SUCCESS;
    case CU_POINTER_ATTRIBUTE_BUFFER_ID:
      *static_cast<unsigned long long*>(data) = device ? base : ptr;
      return CUDA_SUCCESS;
    case CU_POINTER_ATTRIBUTE_SYNC_MEMOPS:
      *static_cast<int*>(data) = 1;
      return CUDA_SUCCESS;
    case CU_POINTER_ATTRIBUTE_ALLOWED_HANDLE_TYPES: {
      // What cuMemExportToShareableHandle could be asked for: only memory
      // from cuMemCreate carries handle types (rgpu's pools have none).
      VmmMapping m;
      *static_cast<unsigned long long*>(data) =
          device && !mapped && FindVmmMapping(s, base, &m) && m.has_prop
              ? static_cast<unsigned long long>(m.prop.requestedHandleTypes)
              : static_cast<unsigned long long>(CU_MEM_HANDLE_TYPE_NONE);
      return CUDA_SUCCESS;
    }
    case CU_POINTER_ATTRIBUTE_IS_GPU_DIRECT_RDMA_CAPABLE:
      // Nothing on this machine can reach the GPU host's memory by RDMA.
      *static_cast<int*>(data) = 0;
      return CUDA_SUCCESS;
    case CU_POINTER_ATTRIBUTE_ACCESS_FLAGS: {
      // Plain pinned host memory is not reachable from the GPU across the
      // network (copies stage it); device and managed memory is read-write.
      // A virtual-memory mapping has what cuMemSetAccess gave the current
      // context's device: the GPU host's driver says (one round trip).
      unsigned flags = device ? CU_POINTER_ATTRIBUTE_ACCESS_FLAG_READWRITE
                              : CU_POINTER_ATTRIBUTE_ACCESS_FLAG_NONE;
      VmmMapping m;
      CtxObj* cur = s->Current();
      if (device && !mapped && cur != nullptr && FindVmmMapping(s, base, &m)) {
        proto::MemGetAccessRep rep;
        CUresult r = Sync(s, proto::CallId::kMemGetAccess,
                          proto::MemGetAccessReq{ctx->id, CU_MEM_LOCATION_TYPE_DEVICE,
                                                 s->RemoteOrdinal(cur->device), ptr},
                          &rep);
        if (r != CUDA_SUCCESS) return r;
        flags = static_cast<unsigned>(rep.flags);
      }
      *static_cast<unsigned*>(data) = flags;
      return CUDA_SUCCESS;
    }
    case CU_POINTER_ATTRIBUTE_MEMPOOL_HANDLE:
      *static_cast<CUmemoryPool*>(data) = device && !mapped ? PoolOf(s, base) : nullptr;
      return CUDA_SUCCESS;
    case CU_POINTER_ATTRIBUTE_MAPPING_SIZE:
      *static_cast<size_t*>(data) = device ? size : host_size;
      return CUDA_SUCCESS;
    case CU_POINTER_ATTRIBUTE_MAPPING_BASE_ADDR:
      *static_cast<void**>(data) = reinterpret_cast<void*>(device ? base : ptr);
      return CUDA_SUCCESS;
    case CU_POINTER_ATTRIBUTE_MEMORY_BLOCK_ID: {
      // The physical allocation: a cuMemCreate handle (shared by all its
      // mappings), else the allocation itself, named by its base.
      VmmMapping m;
      *static_cast<unsigned long long*>(data) =
          device && FindVmmMapping(s, base, &m) ? m.handle : (device ? base : ptr);
      return CUDA_SUCCESS;
    }
    case CU_POINTER_ATTRIBUTE_IS_HW_DECOMPRESS_CAPABLE:
      // Hardware decompression (cuMemBatchDecompressAsync) is refused
      // through rgpu, whatever the GPU host's driver would say of the memory.
      *static_cast<int*>(data) = 0;
      return CUDA_SUCCESS;
    default: {
      // CU_POINTER_ATTRIBUTE_P2P_TOKENS (tokens for the nv-p2p kernel
      // interface of this machine, where the memory is not) and any newer one.
      char name[96];
      snprintf(name, sizeof name, "cuPointerGetAttribute (attribute %d%s)", static_cast<int>(attribute),
               attribute == CU_POINTER_ATTRIBUTE_P2P_TOKENS ? ", CU_POINTER_ATTRIBUTE_P2P_TOKENS" : "");
      return ReportUnsupported(name);
    }
  }
}

// Unlike cuPointerGetAttribute, a pointer nobody allocated is no error: every
// attribute gets its "unregistered" value, written in the attribute's own size.
CUresult cuPointerGetAttributes(unsigned int n, CUpointer_attribute* attrs, void** data, CUdeviceptr ptr) {
  if (attrs == nullptr || data == nullptr) return CUDA_ERROR_INVALID_VALUE;
  RGPU_STATE_OR_RETURN(s);
  bool known = s->FindAllocation(ptr, nullptr, nullptr) ||
               s->IsHostRange(reinterpret_cast<void*>(ptr));
  for (unsigned i = 0; i < n; ++i) {
    if (data[i] == nullptr) continue;
    if (!known) {
      switch (attrs[i]) {
        case CU_POINTER_ATTRIBUTE_DEVICE_ORDINAL: *static_cast<int*>(data[i]) = -2; break;
        case CU_POINTER_ATTRIBUTE_CONTEXT:
        case CU_POINTER_ATTRIBUTE_DEVICE_POINTER:
        case CU_POINTER_ATTRIBUTE_HOST_POINTER:
        case CU_POINTER_ATTRIBUTE_RANGE_START_ADDR:
        case CU_POINTER_ATTRIBUTE_RANGE_SIZE:
        case CU_POINTER_ATTRIBUTE_BUFFER_ID:
        case CU_POINTER_ATTRIBUTE_ALLOWED_HANDLE_TYPES:
        case CU_POINTER_ATTRIBUTE_MEMPOOL_HANDLE:
        case CU_POINTER_ATTRIBUTE_MAPPING_SIZE:
        case CU_POINTER_ATTRIBUTE_MAPPING_BASE_ADDR:
        case CU_POINTER_ATTRIBUTE_MEMORY_BLOCK_ID:
          *static_cast<uint64_t*>(data[i]) = 0;  // pointer- or 64-bit-sized
          break;
        case CU_POINTER_ATTRIBUTE_P2P_TOKENS:
          return ReportUnsupported("cuPointerGetAttributes (attribute 5, CU_POINTER_ATTRIBUTE_P2P_TOKENS)");
        default: *static_cast<int*>(data[i]) = 0; break;  // memory type, flags, booleans
      }
      continue;
    }
    CUresult r = cuPointerGetAttribute(data[i], attrs[i], ptr);
    if (r != CUDA_SUCCESS && attrs[i] != CU_POINTER_ATTRIBUTE_DEVICE_POINTER &&
        attrs[i] != CU_POINTER_ATTRIBUTE_HOST_POINTER)
      return r;
    if (r != CUDA_SUCCESS) *static_cast<void**>(data[i]) = nullptr;
  }
  return CUDA_SUCCESS;
}

}  // extern "C"
