// Handlers: small driver calls ("misc"): tensor maps (TMA descriptors), the
// profiler, stream attributes, persisting-L2 reset, function / kernel
// enumeration, cuMemGetAccess, pointer SYNC_MEMOPS.
//
// Tensor maps are encoded by the real driver: the 128 bytes are opaque and
// go into kernel parameters as they are, so only the driver can write them.
// The tensor they describe must lie in this session's memory: its extent
// (innermost row plus (dim - 1) * stride for every outer dimension) is
// range-checked before the driver sees the address.
#include <cstring>
#include <string>
#include <vector>

#include "common/log.h"
#include "proto/coding.h"
#include "server/worker/handlers.gen.h"
#include "server/worker/session.h"

namespace rgpu::worker {
namespace {

constexpr uint32_t kMaxRank = 5;
constexpr uint32_t kMaxEnumerated = 1u << 16;  // functions named in one reply
constexpr size_t kMaxNamesBytes = 16u << 20;    // the spec's bytes<16M>

Status Invalid(const std::string& what) { return Status::Cuda(CUDA_ERROR_INVALID_VALUE, what); }

// Reads exactly `n` little-endian values of T from `bytes`.
template <class T>
Status ReadArray(std::span<const uint8_t> bytes, uint32_t n, T* out, const char* what) {
  if (bytes.size() != n * sizeof(T)) return Status::Protocol(std::string("tensor map: ") + what + " length");
  proto::Reader r(bytes);
  for (uint32_t i = 0; i < n; ++i) {
    if constexpr (sizeof(T) == 8) {
      uint64_t v = 0;
      RGPU_RETURN_IF_ERROR(r.U64(&v));
      out[i] = static_cast<T>(v);
    } else {
      uint32_t v = 0;
      RGPU_RETURN_IF_ERROR(r.U32(&v));
      std::memcpy(&out[i], &v, sizeof v);
    }
  }
  return r.Finish();
}

// Twice the bytes per element of a CUtensorMapDataType (4-bit types are half
// a byte; the 16-byte-aligned packed types take one byte per value).
uint64_t ElementHalfBytes(uint32_t dtype) {
  static const uint8_t kHalf[] = {2, 4, 8, 8, 16, 16, 4, 8, 16, 4, 8, 8, 8, 1, 2, 2};
  return kHalf[dtype];
}

// Bytes from the base address to the end of the last element.
Status TensorExtent(uint32_t dtype, uint32_t rank, const cuuint64_t* dims, const cuuint64_t* strides,
                    uint64_t* extent) {
  unsigned __int128 e = (static_cast<unsigned __int128>(dims[0]) * ElementHalfBytes(dtype) + 1) / 2;
  for (uint32_t i = 1; i < rank; ++i) e += static_cast<unsigned __int128>(dims[i] - 1) * strides[i - 1];
  if (e > UINT64_MAX) return Invalid("tensor map: extent overflows");
  *extent = static_cast<uint64_t>(e);
  return {};
}

Status CheckTensorEnums(const proto::TensorMapEncodeReq& req) {
  if (req.kind > 2) return Invalid("tensor map: kind " + std::to_string(req.kind));
  if (req.dtype > CU_TENSOR_MAP_DATA_TYPE_16U6_ALIGN16B) return Invalid("tensor map: data type");
  if (req.rank == 0 || req.rank > kMaxRank) return Invalid("tensor map: rank " + std::to_string(req.rank));
  if (req.interleave > CU_TENSOR_MAP_INTERLEAVE_32B) return Invalid("tensor map: interleave");
  if (req.swizzle > CU_TENSOR_MAP_SWIZZLE_128B_ATOM_64B) return Invalid("tensor map: swizzle");
  if (req.l2 > CU_TENSOR_MAP_L2_PROMOTION_L2_256B) return Invalid("tensor map: L2 promotion");
  if (req.oob > CU_TENSOR_MAP_FLOAT_OOB_FILL_NAN_REQUEST_ZERO_FMA) return Invalid("tensor map: OOB fill");
  if (req.mode > CU_TENSOR_MAP_IM2COL_WIDE_MODE_W128) return Invalid("tensor map: im2col wide mode");
  return {};
}

bool IsStreamAttr(uint32_t a) {
  return a == CU_LAUNCH_ATTRIBUTE_ACCESS_POLICY_WINDOW || a == CU_LAUNCH_ATTRIBUTE_SYNCHRONIZATION_POLICY ||
         a == CU_LAUNCH_ATTRIBUTE_PRIORITY || a == CU_LAUNCH_ATTRIBUTE_MEM_SYNC_DOMAIN_MAP ||
         a == CU_LAUNCH_ATTRIBUTE_MEM_SYNC_DOMAIN;
}

// Enum fields of a stream attribute value, checked before the driver reads them.
Status CheckStreamAttrValue(Session& s, uint32_t attr, const CUstreamAttrValue& v) {
  uint32_t raw = 0;
  switch (attr) {
    case CU_LAUNCH_ATTRIBUTE_ACCESS_POLICY_WINDOW: {
      const CUaccessPolicyWindow& w = v.accessPolicyWindow;
      uint32_t hit = 0, miss = 0;
      std::memcpy(&hit, &w.hitProp, 4);
      std::memcpy(&miss, &w.missProp, 4);
      if (hit > CU_ACCESS_PROPERTY_PERSISTING || miss > CU_ACCESS_PROPERTY_PERSISTING ||
          !(w.hitRatio >= 0.0f && w.hitRatio <= 1.0f))
        return Invalid("access policy window: property or hit ratio");
      // The window is a cache hint about this session's memory: its base
      // must be the session's.
      if (w.num_bytes != 0)
        RGPU_RETURN_IF_ERROR(s.CheckRange(reinterpret_cast<uintptr_t>(w.base_ptr), 1, "access policy window"));
      return {};
    }
    case CU_LAUNCH_ATTRIBUTE_SYNCHRONIZATION_POLICY:
      std::memcpy(&raw, &v.syncPolicy, 4);
      if (raw < CU_SYNC_POLICY_AUTO || raw > CU_SYNC_POLICY_BLOCKING_SYNC) return Invalid("synchronization policy");
      return {};
    case CU_LAUNCH_ATTRIBUTE_MEM_SYNC_DOMAIN:
      std::memcpy(&raw, &v.memSyncDomain, 4);
      if (raw > CU_LAUNCH_MEM_SYNC_DOMAIN_REMOTE) return Invalid("memory sync domain");
      return {};
    default: return {};  // priority (clamped by the driver), domain map (two bytes)
  }
}

Status StreamOf(Session& s, uint64_t id, CUstream* out) { return Get(s.FindStream(id), out); }

}  // namespace

Status HandleTensorMapEncode(Session& s, const proto::TensorMapEncodeReq& req, proto::TensorMapEncodeRep* rep) {
  static CUtensorMap map;  // cuda.h aligns it (64 bytes)  // live until the reply is encoded
  RGPU_RETURN_IF_ERROR(s.UseContext(req.ctx));
  RGPU_RETURN_IF_ERROR(CheckTensorEnums(req));
  const backend::DriverTable& d = s.driver();
  uint32_t rank = req.rank;
  cuuint64_t dims[kMaxRank] = {}, strides[kMaxRank] = {};
  cuuint32_t box[kMaxRank] = {}, estrides[kMaxRank] = {};
  RGPU_RETURN_IF_ERROR(ReadArray(req.dims, rank, dims, "dims"));
  RGPU_RETURN_IF_ERROR(ReadArray(req.strides, rank - 1, strides, "strides"));
  RGPU_RETURN_IF_ERROR(ReadArray(req.estrides, rank, estrides, "element strides"));
  for (uint32_t i = 0; i < rank; ++i)
    if (dims[i] == 0) return Invalid("tensor map: zero dimension");
  uint64_t extent = 0;
  RGPU_RETURN_IF_ERROR(TensorExtent(req.dtype, rank, dims, strides, &extent));
  // The tensor may run past the allocation, as the driver allows (measured
  // on an H100: it checks the address, not the extent); a kernel that reads
  // outside faults in this session's own context.
  RGPU_RETURN_IF_ERROR(s.CheckRange(req.addr, 1, "tensor map global address"));
  void* addr = reinterpret_cast<void*>(static_cast<uintptr_t>(req.addr));
  auto dtype = static_cast<CUtensorMapDataType>(req.dtype);
  auto il = static_cast<CUtensorMapInterleave>(req.interleave);
  auto sw = static_cast<CUtensorMapSwizzle>(req.swizzle);
  auto l2 = static_cast<CUtensorMapL2promotion>(req.l2);
  auto oob = static_cast<CUtensorMapFloatOOBfill>(req.oob);
  CUresult r = CUDA_SUCCESS;
  if (req.kind == 0) {
    if (!d.cuTensorMapEncodeTiled) return NotProvided("cuTensorMapEncodeTiled");
    RGPU_RETURN_IF_ERROR(ReadArray(req.box, rank, box, "box"));
    r = d.cuTensorMapEncodeTiled(&map, dtype, rank, addr, dims, strides, box, estrides, il, sw, l2, oob);
  } else if (req.kind == 1) {
    if (!d.cuTensorMapEncodeIm2col) return NotProvided("cuTensorMapEncodeIm2col");
    if (rank < 3) return Invalid("tensor map: im2col rank");
    int lower[kMaxRank] = {}, upper[kMaxRank] = {};
    RGPU_RETURN_IF_ERROR(ReadArray(req.lower, rank - 2, lower, "lower corner"));
    RGPU_RETURN_IF_ERROR(ReadArray(req.upper, rank - 2, upper, "upper corner"));
    r = d.cuTensorMapEncodeIm2col(&map, dtype, rank, addr, dims, strides, lower, upper, req.channels, req.pixels,
                                  estrides, il, sw, l2, oob);
  } else {
    if (!d.cuTensorMapEncodeIm2colWide) return NotProvided("cuTensorMapEncodeIm2colWide");
    int lower = 0, upper = 0;
    RGPU_RETURN_IF_ERROR(ReadArray(req.lower, 1, &lower, "lower corner width"));
    RGPU_RETURN_IF_ERROR(ReadArray(req.upper, 1, &upper, "upper corner width"));
    r = d.cuTensorMapEncodeIm2colWide(&map, dtype, rank, addr, dims, strides, lower, upper, req.channels,
                                      req.pixels, estrides, il, static_cast<CUtensorMapIm2ColWideMode>(req.mode),
                                      sw, l2, oob);
  }
  RGPU_RETURN_IF_ERROR(CuStatus(r, "cuTensorMapEncode"));
  rep->map = std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(&map), sizeof map);
  return {};
}

// The opaque map does not say how large its tensor is: the new base address
// must lie in the session's memory (the encode call checked the extent).
Status HandleTensorMapReplaceAddress(Session& s, const proto::TensorMapReplaceAddressReq& req,
                                     proto::TensorMapReplaceAddressRep* rep) {
  static CUtensorMap map;  // cuda.h aligns it (64 bytes)
  RGPU_RETURN_IF_ERROR(s.UseContext(req.ctx));
  if (!s.driver().cuTensorMapReplaceAddress) return NotProvided("cuTensorMapReplaceAddress");
  if (req.map.size() != sizeof map) return Status::Protocol("tensor map: length");
  RGPU_RETURN_IF_ERROR(s.CheckRange(req.addr, 1, "tensor map global address"));
  std::memcpy(&map, req.map.data(), sizeof map);
  RGPU_RETURN_IF_ERROR(CuStatus(
      s.driver().cuTensorMapReplaceAddress(&map, reinterpret_cast<void*>(static_cast<uintptr_t>(req.addr))),
      "cuTensorMapReplaceAddress"));
  rep->map = std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(&map), sizeof map);
  return {};
}

Status HandleProfilerStart(Session& s, const proto::ProfilerStartReq& req, proto::ProfilerStartRep*) {
  RGPU_RETURN_IF_ERROR(s.UseContext(req.ctx));
  if (!s.driver().cuProfilerStart) return NotProvided("cuProfilerStart");
  return CuStatus(s.driver().cuProfilerStart(), "cuProfilerStart");
}

Status HandleProfilerStop(Session& s, const proto::ProfilerStopReq& req, proto::ProfilerStopRep*) {
  RGPU_RETURN_IF_ERROR(s.UseContext(req.ctx));
  if (!s.driver().cuProfilerStop) return NotProvided("cuProfilerStop");
  return CuStatus(s.driver().cuProfilerStop(), "cuProfilerStop");
}

Status HandleStreamSetAttribute(Session& s, const proto::StreamSetAttributeReq& req, proto::StreamSetAttributeRep*) {
  RGPU_RETURN_IF_ERROR(s.UseContext(req.ctx));
  if (!s.driver().cuStreamSetAttribute) return NotProvided("cuStreamSetAttribute");
  if (!IsStreamAttr(req.attr)) return Invalid("stream attribute " + std::to_string(req.attr));
  if (req.value.size() != sizeof(CUstreamAttrValue)) return Status::Protocol("stream attribute: value length");
  CUstream st = nullptr;
  RGPU_RETURN_IF_ERROR(StreamOf(s, req.stream, &st));
  CUstreamAttrValue v;
  std::memcpy(&v, req.value.data(), sizeof v);
  RGPU_RETURN_IF_ERROR(CheckStreamAttrValue(s, req.attr, v));
  RGPU_RETURN_IF_ERROR(CuStatus(s.driver().cuStreamSetAttribute(st, static_cast<CUstreamAttrID>(req.attr), &v),
                                "cuStreamSetAttribute"));
  s.NoteUnmovable("it set stream attributes");  // not recorded: the session stays on its GPU
  return {};
}

Status HandleStreamGetAttribute(Session& s, const proto::StreamGetAttributeReq& req, proto::StreamGetAttributeRep* rep) {
  static CUstreamAttrValue v;  // live until the reply is encoded
  RGPU_RETURN_IF_ERROR(s.UseContext(req.ctx));
  if (!s.driver().cuStreamGetAttribute) return NotProvided("cuStreamGetAttribute");
  if (!IsStreamAttr(req.attr)) return Invalid("stream attribute " + std::to_string(req.attr));
  CUstream st = nullptr;
  RGPU_RETURN_IF_ERROR(StreamOf(s, req.stream, &st));
  std::memset(&v, 0, sizeof v);
  RGPU_RETURN_IF_ERROR(CuStatus(s.driver().cuStreamGetAttribute(st, static_cast<CUstreamAttrID>(req.attr), &v),
                                "cuStreamGetAttribute"));
  rep->value = std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(&v), sizeof v);
  return {};
}

Status HandleStreamCopyAttributes(Session& s, const proto::StreamCopyAttributesReq& req,
                                  proto::StreamCopyAttributesRep*) {
  RGPU_RETURN_IF_ERROR(s.UseContext(req.ctx));
  if (!s.driver().cuStreamCopyAttributes) return NotProvided("cuStreamCopyAttributes");
  CUstream dst = nullptr, src = nullptr;
  RGPU_RETURN_IF_ERROR(StreamOf(s, req.dst, &dst));
  RGPU_RETURN_IF_ERROR(StreamOf(s, req.src, &src));
  RGPU_RETURN_IF_ERROR(CuStatus(s.driver().cuStreamCopyAttributes(dst, src), "cuStreamCopyAttributes"));
  s.NoteUnmovable("it set stream attributes");
  return {};
}

Status HandleCtxResetPersistingL2Cache(Session& s, const proto::CtxResetPersistingL2CacheReq& req,
                                       proto::CtxResetPersistingL2CacheRep*) {
  RGPU_RETURN_IF_ERROR(s.UseContext(req.ctx));
  if (!s.driver().cuCtxResetPersistingL2Cache) return NotProvided("cuCtxResetPersistingL2Cache");
  return CuStatus(s.driver().cuCtxResetPersistingL2Cache(), "cuCtxResetPersistingL2Cache");
}

Status HandleModuleFunctionCount(Session& s, const proto::ModuleFunctionCountReq& req,
                                 proto::ModuleFunctionCountRep* rep) {
  RGPU_RETURN_IF_ERROR(s.UseContext(req.ctx));
  ModuleEntry* m = nullptr;
  RGPU_RETURN_IF_ERROR(Get(s.FindModule(req.module), &m));
  const backend::DriverTable& d = s.driver();
  unsigned n = 0;
  if (m->is_library) {
    if (!d.cuLibraryGetKernelCount) return NotProvided("cuLibraryGetKernelCount");
    RGPU_RETURN_IF_ERROR(CuStatus(d.cuLibraryGetKernelCount(&n, m->library), "cuLibraryGetKernelCount"));
  } else {
    if (!d.cuModuleGetFunctionCount) return NotProvided("cuModuleGetFunctionCount");
    RGPU_RETURN_IF_ERROR(CuStatus(d.cuModuleGetFunctionCount(&n, m->module), "cuModuleGetFunctionCount"));
  }
  rep->count = n;
  return {};
}

Status HandleModuleFunctionNames(Session& s, const proto::ModuleFunctionNamesReq& req,
                                 proto::ModuleFunctionNamesRep* rep) {
  static std::vector<uint8_t> names;  // live until the reply is encoded
  RGPU_RETURN_IF_ERROR(s.UseContext(req.ctx));
  ModuleEntry* m = nullptr;
  RGPU_RETURN_IF_ERROR(Get(s.FindModule(req.module), &m));
  const backend::DriverTable& d = s.driver();
  if (req.max == 0) return Invalid("function enumeration: count 0");
  uint32_t max = std::min(req.max, kMaxEnumerated);
  names.clear();
  if (m->is_library) {
    if (!d.cuLibraryEnumerateKernels || !d.cuKernelGetName) return NotProvided("cuLibraryEnumerateKernels");
    std::vector<CUkernel> ks(max);
    RGPU_RETURN_IF_ERROR(CuStatus(d.cuLibraryEnumerateKernels(ks.data(), max, m->library), "cuLibraryEnumerateKernels"));
    for (CUkernel k : ks) {
      const char* name = nullptr;
      if (k == nullptr || d.cuKernelGetName(&name, k) != CUDA_SUCCESS || name == nullptr) break;
      names.insert(names.end(), name, name + strlen(name) + 1);
    }
  } else {
    if (!d.cuModuleEnumerateFunctions || !d.cuFuncGetName) return NotProvided("cuModuleEnumerateFunctions");
    std::vector<CUfunction> fs(max);
    RGPU_RETURN_IF_ERROR(
        CuStatus(d.cuModuleEnumerateFunctions(fs.data(), max, m->module), "cuModuleEnumerateFunctions"));
    for (CUfunction f : fs) {
      const char* name = nullptr;
      if (f == nullptr || d.cuFuncGetName(&name, f) != CUDA_SUCCESS || name == nullptr) break;
      names.insert(names.end(), name, name + strlen(name) + 1);
    }
  }
  if (names.size() > kMaxNamesBytes) return Status::Cuda(CUDA_ERROR_NOT_SUPPORTED, "function names over 16 MiB");
  rep->names = names;
  return {};
}

Status HandleMemGetAccess(Session& s, const proto::MemGetAccessReq& req, proto::MemGetAccessRep* rep) {
  RGPU_RETURN_IF_ERROR(s.UseContext(req.ctx));
  if (!s.driver().cuMemGetAccess) return NotProvided("cuMemGetAccess");
  if (req.loc_type > CU_MEM_LOCATION_TYPE_HOST_NUMA_CURRENT) return Invalid("cuMemGetAccess: location type");
  RGPU_RETURN_IF_ERROR(s.CheckRange(req.ptr, 1, "cuMemGetAccess"));
  CUmemLocation loc{};
  loc.type = static_cast<CUmemLocationType>(req.loc_type);
  loc.id = req.loc_id;
  if (req.loc_type == CU_MEM_LOCATION_TYPE_DEVICE) {
    Result<CUdevice> dev = s.Device(req.loc_id);
    if (!dev.ok()) return dev.take_status();
    loc.id = *dev;
  }
  unsigned long long flags = 0;
  RGPU_RETURN_IF_ERROR(CuStatus(s.driver().cuMemGetAccess(&flags, &loc, req.ptr), "cuMemGetAccess"));
  rep->flags = flags;
  return {};
}

Status HandlePointerSetSyncMemops(Session& s, const proto::PointerSetSyncMemopsReq& req,
                                  proto::PointerSetSyncMemopsRep*) {
  RGPU_RETURN_IF_ERROR(s.UseContext(req.ctx));
  if (!s.driver().cuPointerSetAttribute) return NotProvided("cuPointerSetAttribute");
  RGPU_RETURN_IF_ERROR(s.CheckRange(req.ptr, 1, "cuPointerSetAttribute"));
  unsigned int value = req.value != 0;
  CUresult r = s.driver().cuPointerSetAttribute(&value, CU_POINTER_ATTRIBUTE_SYNC_MEMOPS, req.ptr);
  // The session's cuMemAlloc memory is the worker's cuMemCreate memory
  // (device_heap.h), for which the driver refuses the attribute (measured on
  // an H100, driver 580); on the cuMemAlloc memory the program asked for it
  // succeeds. Every synchronous copy is synchronous anyway.
  if (r == CUDA_ERROR_NOT_SUPPORTED) r = CUDA_SUCCESS;
  return CuStatus(r, "cuPointerSetAttribute");
}

}  // namespace rgpu::worker
