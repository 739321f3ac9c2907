// Sim driver functions: virtual memory management and graph inspection.
//
// The model is simple and documented: a reservation is a block of the
// device arena (so copies and kernels can use it once mapped); a physical
// allocation (cuMemCreate) records only its size; mapping records which
// handle backs which range. Contents do not follow a handle to another
// address (no aliasing): enough for the client/worker protocol tests, which
// map each handle once. Unmapping zeroes the range: the contents belonged to
// the physical allocation, and a range mapped again must not show them
// (the worker's idle detach relies on this to prove it restores what it
// saved, server/worker/device_heap.h).
//
// Reservations belong to the process, not to a context, as the driver's do:
// destroying the context that reserved a range leaves it reserved. Physical
// memory may be created for any device and mapped into any reservation.
//
// Pinned host memory (cuMemHostAlloc) is ordinary heap memory here.
#include <cstdlib>
#include <cstring>
#include <map>
#include <set>

#include "backend/sim/sim_state.h"

namespace rgpu::backend::sim {
namespace {
constexpr uint64_t kGranularity = uint64_t{2} << 20;

struct Vmm {
  std::map<uint64_t, uint64_t> handles;      // handle id -> size
  std::map<uint64_t, uint64_t> reservations; // base -> size
  std::map<uint64_t, uint64_t> mappings;     // base -> handle id
  std::set<void*> host;                      // cuMemHostAlloc blocks
  std::map<uint64_t, unsigned> access;       // mapping base -> CUmemAccess_flags ("misc")
};
Vmm& State() {
  static Vmm* v = new Vmm;  // guarded by the sim lock
  return *v;
}
}  // namespace

CUresult cuMemGetAllocationGranularity(size_t* granularity, const CUmemAllocationProp* prop,
                                       CUmemAllocationGranularity_flags option) {
  SIM_ENTER(s);
  if (granularity == nullptr || prop == nullptr) return CUDA_ERROR_INVALID_VALUE;
  if (prop->type != CU_MEM_ALLOCATION_TYPE_PINNED || prop->location.type != CU_MEM_LOCATION_TYPE_DEVICE ||
      prop->location.id < 0 || prop->location.id >= static_cast<int>(s->devices.size()))
    return CUDA_ERROR_INVALID_VALUE;
  *granularity = kGranularity;
  return CUDA_SUCCESS;
}

CUresult cuMemAddressReserve(CUdeviceptr* ptr, size_t size, size_t alignment, CUdeviceptr addr,
                             unsigned long long flags) {
  SIM_ENTER(s);
  SIM_CURRENT_CTX(s, ctx);
  if (ptr == nullptr || size == 0 || size % kGranularity != 0 || flags != 0) return CUDA_ERROR_INVALID_VALUE;
  if (alignment != 0 && (alignment & (alignment - 1)) != 0) return CUDA_ERROR_INVALID_VALUE;
  (void)addr;  // a hint: the sim's arena decides
  // A reservation is the process's, not the context's (the driver's virtual
  // address space is process-wide): it outlives every context, so a range
  // can be mapped again from another device after the context that reserved
  // it is gone (server/worker/session_move.h relies on this).
  uint64_t p = s->devices[ctx->device]->arena.Allocate(size, 0, /*ctx=*/0);
  if (p == 0) return CUDA_ERROR_OUT_OF_MEMORY;
  State().reservations[p] = size;
  *ptr = p;
  return CUDA_SUCCESS;
}

CUresult cuMemAddressFree(CUdeviceptr ptr, size_t size) {
  SIM_ENTER(s);
  auto it = State().reservations.find(ptr);
  if (it == State().reservations.end() || it->second != size) return CUDA_ERROR_INVALID_VALUE;
  Arena* a = s->ArenaFor(ptr);
  if (a != nullptr) a->Free(ptr);
  State().reservations.erase(it);
  return CUDA_SUCCESS;
}

CUresult cuMemCreate(CUmemGenericAllocationHandle* handle, size_t size, const CUmemAllocationProp* prop,
                     unsigned long long flags) {
  SIM_ENTER(s);
  if (handle == nullptr || prop == nullptr || size == 0 || size % kGranularity != 0 || flags != 0)
    return CUDA_ERROR_INVALID_VALUE;
  if (prop->type != CU_MEM_ALLOCATION_TYPE_PINNED || prop->location.type != CU_MEM_LOCATION_TYPE_DEVICE)
    return CUDA_ERROR_INVALID_VALUE;
  uint64_t id = NextId();
  State().handles[id] = size;
  *handle = id;
  return CUDA_SUCCESS;
}

CUresult cuMemRelease(CUmemGenericAllocationHandle handle) {
  SIM_ENTER(s);
  return State().handles.erase(handle) ? CUDA_SUCCESS : CUDA_ERROR_INVALID_VALUE;
}

CUresult cuMemMap(CUdeviceptr ptr, size_t size, size_t offset, CUmemGenericAllocationHandle handle,
                  unsigned long long flags) {
  SIM_ENTER(s);
  auto h = State().handles.find(handle);
  if (h == State().handles.end() || offset != 0 || size != h->second || flags != 0)
    return CUDA_ERROR_INVALID_VALUE;
  // Inside one reservation.
  auto r = State().reservations.upper_bound(ptr);
  if (r == State().reservations.begin()) return CUDA_ERROR_INVALID_VALUE;
  --r;
  if (ptr < r->first || ptr + size > r->first + r->second) return CUDA_ERROR_INVALID_VALUE;
  if (!State().mappings.emplace(ptr, handle).second) return CUDA_ERROR_INVALID_VALUE;
  return CUDA_SUCCESS;
}

CUresult cuMemUnmap(CUdeviceptr ptr, size_t size) {
  SIM_ENTER(s);
  auto it = State().mappings.find(ptr);
  if (it == State().mappings.end()) return CUDA_ERROR_INVALID_VALUE;
  auto h = State().handles.find(it->second);
  // The physical memory leaves the range with the mapping.
  if (h != State().handles.end() && s->IsDeviceRange(ptr, h->second))
    memset(reinterpret_cast<void*>(ptr), 0, h->second);
  State().access.erase(it->first);
  State().mappings.erase(it);
  (void)size;
  return CUDA_SUCCESS;
}

CUresult cuMemHostAlloc(void** pp, size_t bytesize, unsigned int flags) {
  SIM_ENTER(s);
  if (pp == nullptr || bytesize == 0) return CUDA_ERROR_INVALID_VALUE;
  (void)flags;
  void* p = calloc(1, bytesize);
  if (p == nullptr) return CUDA_ERROR_OUT_OF_MEMORY;
  State().host.insert(p);
  *pp = p;
  return CUDA_SUCCESS;
}

CUresult cuMemFreeHost(void* p) {
  SIM_ENTER(s);
  if (State().host.erase(p) == 0) return CUDA_ERROR_INVALID_VALUE;
  free(p);
  return CUDA_SUCCESS;
}

CUresult cuMemSetAccess(CUdeviceptr ptr, size_t size, const CUmemAccessDesc* desc, size_t count) {
  SIM_ENTER(s);
  if (desc == nullptr || count == 0) return CUDA_ERROR_INVALID_VALUE;
  if (!State().mappings.count(ptr)) return CUDA_ERROR_INVALID_VALUE;
  State().access[ptr] = static_cast<unsigned>(EnumValue(desc[count - 1].flags));
  return CUDA_SUCCESS;
}

// The flags the last cuMemSetAccess gave the mapping containing `ptr`
// (CU_MEM_ACCESS_FLAGS_PROT_NONE before any).
CUresult cuMemGetAccess(unsigned long long* flags, const CUmemLocation* location, CUdeviceptr ptr) {
  SIM_ENTER(s);
  if (flags == nullptr || location == nullptr) return CUDA_ERROR_INVALID_VALUE;
  if (EnumValue(location->type) != CU_MEM_LOCATION_TYPE_DEVICE || location->id < 0 ||
      location->id >= static_cast<int>(s->devices.size()))
    return CUDA_ERROR_INVALID_VALUE;
  auto it = State().mappings.upper_bound(ptr);
  if (it == State().mappings.begin()) return CUDA_ERROR_INVALID_VALUE;
  --it;
  auto h = State().handles.find(it->second);
  if (h == State().handles.end() || ptr >= it->first + h->second) return CUDA_ERROR_INVALID_VALUE;
  auto a = State().access.find(it->first);
  *flags = a == State().access.end() ? CU_MEM_ACCESS_FLAGS_PROT_NONE : a->second;
  return CUDA_SUCCESS;
}

CUresult cuGraphGetNodes(CUgraph hGraph, CUgraphNode* nodes, size_t* numNodes) {
  SIM_ENTER(s);
  if (numNodes == nullptr) return CUDA_ERROR_INVALID_VALUE;
  auto it = s->graphs.find(FromHandle(hGraph));
  if (it == s->graphs.end()) return CUDA_ERROR_INVALID_VALUE;
  size_t n = it->second.ops ? it->second.ops->size() : 0;
  if (nodes != nullptr) return CUDA_ERROR_NOT_SUPPORTED;  // sim graphs have no node objects
  *numNodes = n;
  return CUDA_SUCCESS;
}

}  // namespace rgpu::backend::sim
