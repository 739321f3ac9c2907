// Handlers: virtual memory management (reserve, create, map, access) and
// graph inspection. Mapped ranges count as session memory for CheckRange.
#include "proto/coding.h"
#include "server/worker/handlers.gen.h"
#include "server/worker/session.h"

namespace rgpu::worker {
namespace {
constexpr uint32_t kMaxAccessDescs = 64;


CUmemAllocationProp Prop(uint32_t type, uint32_t handle_types, uint32_t loc_type, int32_t loc_id) {
  CUmemAllocationProp p{};
  p.type = static_cast<CUmemAllocationType>(type);
  p.requestedHandleTypes = static_cast<CUmemAllocationHandleType>(handle_types);
  p.location.type = static_cast<CUmemLocationType>(loc_type);
  p.location.id = loc_id;
  return p;
}

Status CheckLocationType(uint32_t type, const char* call) {
  if (type > CU_MEM_LOCATION_TYPE_HOST_NUMA_CURRENT)
    return Status::Cuda(CUDA_ERROR_INVALID_VALUE, std::string(call) + ": location type " + std::to_string(type));
  return {};
}

// A device location names a client ordinal: translated to the session's GPU
// (INVALID_DEVICE for a GPU the session does not hold). Other location kinds
// (host, NUMA node) pass unchanged.
Status MapLocation(const Session& s, uint32_t type, int32_t* id) {
  if (type != CU_MEM_LOCATION_TYPE_DEVICE) return {};
  Result<CUdevice> dev = s.Device(*id);
  if (!dev.ok()) return dev.take_status();
  *id = *dev;
  return {};
}
}  // namespace

Status HandleMemGetGranularity(Session& s, const proto::MemGetGranularityReq& req,
                               proto::MemGetGranularityRep* rep) {
  if (!s.driver().cuMemGetAllocationGranularity) return NotProvided("cuMemGetAllocationGranularity");
  if (req.option > CU_MEM_ALLOC_GRANULARITY_RECOMMENDED || req.type > CU_MEM_ALLOCATION_TYPE_PINNED)
    return Status::Cuda(CUDA_ERROR_INVALID_VALUE, "granularity query out of range");
  int32_t dev = req.dev;
  RGPU_RETURN_IF_ERROR(MapLocation(s, CU_MEM_LOCATION_TYPE_DEVICE, &dev));
  CUmemAllocationProp p = Prop(req.type, 0, CU_MEM_LOCATION_TYPE_DEVICE, dev);
  size_t g = 0;
  Status st = CuStatus(s.driver().cuMemGetAllocationGranularity(
                           &g, &p, static_cast<CUmemAllocationGranularity_flags>(req.option)),
                       "cuMemGetAllocationGranularity");
  rep->granularity = g;
  return st;
}

Status HandleMemAddressReserve(Session& s, const proto::MemAddressReserveReq& req,
                               proto::MemAddressReserveRep* rep) {
  RGPU_RETURN_IF_ERROR(s.UseContext(req.ctx));
  if (!s.driver().cuMemAddressReserve) return NotProvided("cuMemAddressReserve");
  CUdeviceptr p = 0;
  RGPU_RETURN_IF_ERROR(CuStatus(s.driver().cuMemAddressReserve(&p, req.size, req.alignment, req.addr, req.flags),
                                "cuMemAddressReserve"));
  s.AddReservation(p, req.size);
  rep->ptr = p;
  return {};
}

Status HandleMemAddressFree(Session& s, const proto::MemAddressFreeReq& req, proto::MemAddressFreeRep*) {
  RGPU_RETURN_IF_ERROR(s.UseContext(req.ctx));
  if (!s.RemoveReservation(req.ptr, req.size))
    return Status::Cuda(CUDA_ERROR_INVALID_VALUE, "cuMemAddressFree: not a reservation of this session");
  return CuStatus(s.driver().cuMemAddressFree(req.ptr, req.size), "cuMemAddressFree");
}

Status HandleMemCreate(Session& s, const proto::MemCreateReq& req, proto::MemCreateRep*) {
  RGPU_RETURN_IF_ERROR(s.UseContext(req.ctx));
  if (!s.driver().cuMemCreate) return NotProvided("cuMemCreate");
  // Only POSIX fds may be asked for (exports stay on this host and are never
  // handed out); other handle types are refused.
  if (req.handle_types & ~static_cast<uint32_t>(CU_MEM_HANDLE_TYPE_POSIX_FILE_DESCRIPTOR))
    return Status::Cuda(CUDA_ERROR_NOT_SUPPORTED, "memory handle types other than POSIX fds are not offered");
  // Enum fields are range-checked before they become enums (a value outside
  // an enum's range is undefined behaviour); the driver judges the rest.
  if (req.type == CU_MEM_ALLOCATION_TYPE_INVALID || req.type > CU_MEM_ALLOCATION_TYPE_MANAGED)
    return Status::Cuda(CUDA_ERROR_INVALID_VALUE, "cuMemCreate: allocation type " + std::to_string(req.type));
  RGPU_RETURN_IF_ERROR(CheckLocationType(req.loc_type, "cuMemCreate"));
  if (req.compression > CU_MEM_ALLOCATION_COMP_GENERIC)
    return Status::Cuda(CUDA_ERROR_INVALID_VALUE, "cuMemCreate: compression type " + std::to_string(req.compression));
  RGPU_RETURN_IF_ERROR(s.quota().Check(req.size, "cuMemCreate"));
  int32_t loc_id = req.loc_id;
  RGPU_RETURN_IF_ERROR(MapLocation(s, req.loc_type, &loc_id));
  CUmemAllocationProp p = Prop(req.type, req.handle_types, req.loc_type, loc_id);
  p.allocFlags.compressionType = req.compression;
  p.allocFlags.gpuDirectRDMACapable = req.rdma;
  p.allocFlags.usage = req.usage;
  CUmemGenericAllocationHandle h = 0;
  RGPU_RETURN_IF_ERROR(CuStatus(s.driver().cuMemCreate(&h, req.size, &p, req.flags), "cuMemCreate"));
  Status added = s.AddMemHandle(req.handle, h);
  if (!added.ok()) s.driver().cuMemRelease(h);
  else s.quota().AddPhysical(req.handle, req.size);
  return added;
}

Status HandleMemRelease(Session& s, const proto::MemReleaseReq& req, proto::MemReleaseRep*) {
  RGPU_RETURN_IF_ERROR(s.UseContext(req.ctx));
  Result<CUmemGenericAllocationHandle> h = s.TakeMemHandle(req.handle);
  if (!h.ok()) return h.take_status();
  s.quota().ReleasePhysical(req.handle);  // still charged while mapped
  return CuStatus(s.driver().cuMemRelease(*h), "cuMemRelease");
}

Status HandleMemMap(Session& s, const proto::MemMapReq& req, proto::MemMapRep*) {
  RGPU_RETURN_IF_ERROR(s.UseContext(req.ctx));
  Result<CUmemGenericAllocationHandle> h = s.FindMemHandle(req.handle);
  if (!h.ok()) return h.take_status();
  RGPU_RETURN_IF_ERROR(CuStatus(s.driver().cuMemMap(req.ptr, req.size, req.offset, *h, req.flags), "cuMemMap"));
  s.AddMapping(req.ptr, req.size);
  s.AddAllocation(req.ptr, req.size, /*owned=*/false);
  s.quota().Map(req.ptr, req.handle);
  return {};
}

Status HandleMemUnmap(Session& s, const proto::MemUnmapReq& req, proto::MemUnmapRep*) {
  RGPU_RETURN_IF_ERROR(s.UseContext(req.ctx));
  if (!s.RemoveMapping(req.ptr, req.size))
    return Status::Cuda(CUDA_ERROR_INVALID_VALUE, "cuMemUnmap: not a mapping of this session");
  s.RemoveAllocation(req.ptr);
  s.quota().Unmap(req.ptr);
  return CuStatus(s.driver().cuMemUnmap(req.ptr, req.size), "cuMemUnmap");
}

Status HandleMemSetAccess(Session& s, const proto::MemSetAccessReq& req, proto::MemSetAccessRep*) {
  RGPU_RETURN_IF_ERROR(s.UseContext(req.ctx));
  RGPU_RETURN_IF_ERROR(s.CheckRange(req.ptr, req.size, "cuMemSetAccess"));
  proto::Reader r(req.descs);
  uint32_t n = 0;
  RGPU_RETURN_IF_ERROR(r.U32(&n));
  if (n == 0 || n > kMaxAccessDescs) return Status::Protocol("cuMemSetAccess: descriptor count");
  CUmemAccessDesc descs[kMaxAccessDescs];
  for (uint32_t i = 0; i < n; ++i) {
    uint32_t type = 0, flags = 0;
    int32_t id = 0;
    RGPU_RETURN_IF_ERROR(r.U32(&type));
    RGPU_RETURN_IF_ERROR(r.I32(&id));
    RGPU_RETURN_IF_ERROR(r.U32(&flags));
    RGPU_RETURN_IF_ERROR(CheckLocationType(type, "cuMemSetAccess"));
    if (flags != CU_MEM_ACCESS_FLAGS_PROT_NONE && flags != CU_MEM_ACCESS_FLAGS_PROT_READ &&
        flags != CU_MEM_ACCESS_FLAGS_PROT_READWRITE)
      return Status::Cuda(CUDA_ERROR_INVALID_VALUE, "cuMemSetAccess: access flags " + std::to_string(flags));
    RGPU_RETURN_IF_ERROR(MapLocation(s, type, &id));
    descs[i] = CUmemAccessDesc{};
    descs[i].location.type = static_cast<CUmemLocationType>(type);
    descs[i].location.id = id;
    descs[i].flags = static_cast<CUmemAccess_flags>(flags);
  }
  RGPU_RETURN_IF_ERROR(r.Finish());
  return CuStatus(s.driver().cuMemSetAccess(req.ptr, req.size, descs, n), "cuMemSetAccess");
}

Status HandleGraphGetNodeCount(Session& s, const proto::GraphGetNodeCountReq& req,
                               proto::GraphGetNodeCountRep* rep) {
  RGPU_RETURN_IF_ERROR(s.UseContext(req.ctx));
  if (!s.driver().cuGraphGetNodes) return NotProvided("cuGraphGetNodes");
  Result<CUgraph> g = s.FindGraph(req.graph);
  if (!g.ok()) return g.take_status();
  size_t n = 0;
  Status st = CuStatus(s.driver().cuGraphGetNodes(*g, nullptr, &n), "cuGraphGetNodes");
  rep->count = n;
  return st;
}

}  // namespace rgpu::worker
