// Exported driver functions: small calls real programs use ("misc"):
// tensor maps (Hopper TMA descriptors), the profiler, stream attributes,
// persisting-L2 reset, cuMemGetAccess, cuPointerSetAttribute.
//
// A CUtensorMap is 128 opaque bytes that only the real driver can write and
// that a kernel takes by value, so encoding is a round trip to the worker,
// which encodes with the real driver (and checks the tensor lies in the
// session's memory). Stream attributes set here are remembered per stream
// and read back locally (DESIGN.md rule 1); setting one is queued like other
// stream work (rule 2).
#include <cudaProfiler.h>

#include <algorithm>
#include <cstring>

#include "client/api_common.h"

using namespace rgpu::client;
namespace proto = rgpu::proto;

namespace {

constexpr cuuint32_t kMaxTensorRank = 5;

template <class T>
std::vector<uint8_t> PackArray(const T* values, uint32_t n) {
  std::vector<uint8_t> out;
  proto::Writer w(&out);
  for (uint32_t i = 0; i < n; ++i) {
    if constexpr (sizeof(T) == 8) {
      w.U64(static_cast<uint64_t>(values[i]));
    } else {
      uint32_t v = 0;
      std::memcpy(&v, &values[i], 4);
      w.U32(v);
    }
  }
  return out;
}

// What all three encoders share; `box` is null except for tiled maps.
struct TensorArgs {
  uint8_t kind = 0;
  CUtensorMapDataType dtype{};
  cuuint32_t rank = 0;
  void* addr = nullptr;
  const cuuint64_t* dims = nullptr;
  const cuuint64_t* strides = nullptr;
  const cuuint32_t* box = nullptr;
  const cuuint32_t* estrides = nullptr;
  std::vector<uint8_t> lower, upper;
  cuuint32_t channels = 0, pixels = 0;
  CUtensorMapInterleave interleave{};
  CUtensorMapSwizzle swizzle{};
  CUtensorMapL2promotion l2{};
  CUtensorMapFloatOOBfill oob{};
  uint32_t mode = 0;
};

uint32_t Raw32(const void* enum_value) {
  uint32_t v = 0;
  std::memcpy(&v, enum_value, 4);
  return v;
}

// The arguments every encoding takes, in the order the driver's calls list them.
TensorArgs Common(uint8_t kind, CUtensorMapDataType dtype, cuuint32_t rank, void* addr, const cuuint64_t* dims,
                  const cuuint64_t* strides, const cuuint32_t* estrides, CUtensorMapInterleave interleave,
                  CUtensorMapSwizzle swizzle, CUtensorMapL2promotion l2, CUtensorMapFloatOOBfill oob) {
  TensorArgs a;
  a.kind = kind;
  a.dtype = dtype;
  a.rank = rank;
  a.addr = addr;
  a.dims = dims;
  a.strides = strides;
  a.estrides = estrides;
  a.interleave = interleave;
  a.swizzle = swizzle;
  a.l2 = l2;
  a.oob = oob;
  return a;
}

CUresult Encode(CUtensorMap* map, const TensorArgs& a) {
  // The driver's own argument checks on what it reads before the arrays.
  if (map == nullptr || reinterpret_cast<uintptr_t>(map) % 64 != 0) return CUDA_ERROR_INVALID_VALUE;
  if (a.rank == 0 || a.rank > kMaxTensorRank) return CUDA_ERROR_INVALID_VALUE;
  if (a.dims == nullptr || a.estrides == nullptr || (a.rank > 1 && a.strides == nullptr))
    return CUDA_ERROR_INVALID_VALUE;
  RGPU_STATE_OR_RETURN(s);
  RGPU_CTX_OR_RETURN(s, ctx);
  std::vector<uint8_t> dims = PackArray(a.dims, a.rank);
  std::vector<uint8_t> strides = PackArray(a.strides, a.rank - 1);
  std::vector<uint8_t> box = a.box ? PackArray(a.box, a.rank) : std::vector<uint8_t>();
  std::vector<uint8_t> estrides = PackArray(a.estrides, a.rank);
  proto::TensorMapEncodeRep rep;
  CUresult r = Sync(s, proto::CallId::kTensorMapEncode,
                    proto::TensorMapEncodeReq{ctx->id, a.kind, Raw32(&a.dtype), a.rank,
                                              reinterpret_cast<uintptr_t>(a.addr), dims, strides, box, estrides,
                                              a.lower, a.upper, a.channels, a.pixels, Raw32(&a.interleave),
                                              Raw32(&a.swizzle), Raw32(&a.l2), Raw32(&a.oob), a.mode},
                    &rep);
  if (r != CUDA_SUCCESS) return r;
  if (rep.map.size() != sizeof *map) return CUDA_ERROR_UNKNOWN;
  std::memcpy(map, rep.map.data(), sizeof *map);
  return CUDA_SUCCESS;
}

bool IsStreamAttr(uint32_t a) {
  return a == CU_LAUNCH_ATTRIBUTE_ACCESS_POLICY_WINDOW || a == CU_LAUNCH_ATTRIBUTE_SYNCHRONIZATION_POLICY ||
         a == CU_LAUNCH_ATTRIBUTE_PRIORITY || a == CU_LAUNCH_ATTRIBUTE_MEM_SYNC_DOMAIN_MAP ||
         a == CU_LAUNCH_ATTRIBUTE_MEM_SYNC_DOMAIN;
}

// The driver refuses these at the call; checked here too, since the set
// itself is queued (the worker checks again).
bool ValidStreamAttrValue(uint32_t a, const CUstreamAttrValue& v) {
  if (a == CU_LAUNCH_ATTRIBUTE_ACCESS_POLICY_WINDOW) {
    const CUaccessPolicyWindow& w = v.accessPolicyWindow;
    return Raw32(&w.hitProp) <= CU_ACCESS_PROPERTY_PERSISTING && Raw32(&w.missProp) <= CU_ACCESS_PROPERTY_PERSISTING &&
           w.hitRatio >= 0.0f && w.hitRatio <= 1.0f;
  }
  if (a == CU_LAUNCH_ATTRIBUTE_SYNCHRONIZATION_POLICY)
    return Raw32(&v.syncPolicy) >= CU_SYNC_POLICY_AUTO && Raw32(&v.syncPolicy) <= CU_SYNC_POLICY_BLOCKING_SYNC;
  if (a == CU_LAUNCH_ATTRIBUTE_MEM_SYNC_DOMAIN) return Raw32(&v.memSyncDomain) <= CU_LAUNCH_MEM_SYNC_DOMAIN_REMOTE;
  return true;
}

CUresult SetStreamAttr(CUstream h, CUstreamAttrID attr, const CUstreamAttrValue* value, bool pt) {
  if (value == nullptr || !IsStreamAttr(Raw32(&attr)) || !ValidStreamAttrValue(Raw32(&attr), *value))
    return CUDA_ERROR_INVALID_VALUE;
  RGPU_STATE_OR_RETURN(s);
  uint64_t id = 0;
  if (!WireStream(s, h, pt, &id)) return CUDA_ERROR_INVALID_HANDLE;
  StreamObj* so = s->FindStream(h);
  CtxObj* c = so ? so->ctx : s->Current();
  if (c == nullptr) return CUDA_ERROR_INVALID_CONTEXT;
  uint32_t a = Raw32(&attr);
  CUstreamAttrValue v = *value;
  if (a == CU_LAUNCH_ATTRIBUTE_PRIORITY) {
    // Clamped to the context's range, as at stream creation.
    int least = 0, greatest = 0;
    if (cuCtxGetStreamPriorityRange(&least, &greatest) == CUDA_SUCCESS)
      v.priority = std::max(greatest, std::min(least, v.priority));
  }
  std::span<const uint8_t> bytes(reinterpret_cast<const uint8_t*>(&v), sizeof v);
  CUresult r = Post(s, proto::CallId::kStreamSetAttribute, proto::StreamSetAttributeReq{c->id, id, a, bytes});
  // Remembered only for streams this client made; a value the worker
  // refuses surfaces at the next synchronising call, as the driver's
  // asynchronous errors do.
  if (r == CUDA_SUCCESS && so != nullptr) {
    std::lock_guard<std::mutex> lock(so->attrs_mu);
    so->attrs[a] = v;
    if (a == CU_LAUNCH_ATTRIBUTE_PRIORITY) so->priority = v.priority;  // cuStreamGetPriority agrees
  }
  return r;
}

CUresult GetStreamAttr(CUstream h, CUstreamAttrID attr, CUstreamAttrValue* value, bool pt) {
  if (value == nullptr || !IsStreamAttr(Raw32(&attr))) return CUDA_ERROR_INVALID_VALUE;
  RGPU_STATE_OR_RETURN(s);
  uint64_t id = 0;
  if (!WireStream(s, h, pt, &id)) return CUDA_ERROR_INVALID_HANDLE;
  StreamObj* so = s->FindStream(h);
  CtxObj* c = so ? so->ctx : s->Current();
  if (c == nullptr) return CUDA_ERROR_INVALID_CONTEXT;
  uint32_t a = Raw32(&attr);
  if (so != nullptr) {
    std::lock_guard<std::mutex> lock(so->attrs_mu);
    auto it = so->attrs.find(a);
    if (it != so->attrs.end()) {
      *value = it->second;
      return CUDA_SUCCESS;
    }
  }
  proto::StreamGetAttributeRep rep;
  CUresult r = Sync(s, proto::CallId::kStreamGetAttribute, proto::StreamGetAttributeReq{c->id, id, a}, &rep);
  if (r != CUDA_SUCCESS) return r;
  if (rep.value.size() != sizeof *value) return CUDA_ERROR_UNKNOWN;
  std::memcpy(value, rep.value.data(), sizeof *value);
  return CUDA_SUCCESS;
}

CUresult CopyStreamAttrs(CUstream dst, CUstream src, bool pt) {
  RGPU_STATE_OR_RETURN(s);
  uint64_t did = 0, sid = 0;
  if (!WireStream(s, dst, pt, &did) || !WireStream(s, src, pt, &sid)) return CUDA_ERROR_INVALID_HANDLE;
  StreamObj* dso = s->FindStream(dst);
  StreamObj* sso = s->FindStream(src);
  CtxObj* c = dso ? dso->ctx : s->Current();
  if (c == nullptr) return CUDA_ERROR_INVALID_CONTEXT;
  CUresult r = Post(s, proto::CallId::kStreamCopyAttributes, proto::StreamCopyAttributesReq{c->id, did, sid});
  if (r != CUDA_SUCCESS || dso == nullptr) return r;
  // The source's attributes are known here only if it is one of ours and
  // its values were all set here: otherwise ask the worker from now on.
  std::map<uint32_t, CUstreamAttrValue> copied;
  if (sso != nullptr) {
    std::lock_guard<std::mutex> lock(sso->attrs_mu);
    copied = sso->attrs;
  }
  std::lock_guard<std::mutex> lock(dso->attrs_mu);
  dso->attrs = std::move(copied);
  return r;
}

}  // namespace

extern "C" {

CUresult cuTensorMapEncodeTiled(CUtensorMap* tensorMap, CUtensorMapDataType tensorDataType, cuuint32_t tensorRank,
                                void* globalAddress, const cuuint64_t* globalDim, const cuuint64_t* globalStrides,
                                const cuuint32_t* boxDim, const cuuint32_t* elementStrides,
                                CUtensorMapInterleave interleave, CUtensorMapSwizzle swizzle,
                                CUtensorMapL2promotion l2Promotion, CUtensorMapFloatOOBfill oobFill) {
  RGPU_LOG_DEBUG("cuTensorMapEncodeTiled");
  RGPU_RETURN_IF_DEINITIALIZED();
  if (boxDim == nullptr) return CUDA_ERROR_INVALID_VALUE;
  TensorArgs a = Common(0, tensorDataType, tensorRank, globalAddress, globalDim, globalStrides, elementStrides,
                        interleave, swizzle, l2Promotion, oobFill);
  a.box = boxDim;
  return Encode(tensorMap, a);
}

CUresult cuTensorMapEncodeIm2col(CUtensorMap* tensorMap, CUtensorMapDataType tensorDataType, cuuint32_t tensorRank,
                                 void* globalAddress, const cuuint64_t* globalDim, const cuuint64_t* globalStrides,
                                 const int* pixelBoxLowerCorner, const int* pixelBoxUpperCorner,
                                 cuuint32_t channelsPerPixel, cuuint32_t pixelsPerColumn,
                                 const cuuint32_t* elementStrides, CUtensorMapInterleave interleave,
                                 CUtensorMapSwizzle swizzle, CUtensorMapL2promotion l2Promotion,
                                 CUtensorMapFloatOOBfill oobFill) {
  RGPU_LOG_DEBUG("cuTensorMapEncodeIm2col");
  RGPU_RETURN_IF_DEINITIALIZED();
  // Im2col maps are 3- to 5-dimensional (one corner offset per spatial dim).
  if (tensorRank < 3 || tensorRank > kMaxTensorRank || pixelBoxLowerCorner == nullptr ||
      pixelBoxUpperCorner == nullptr)
    return CUDA_ERROR_INVALID_VALUE;
  TensorArgs a = Common(1, tensorDataType, tensorRank, globalAddress, globalDim, globalStrides, elementStrides,
                        interleave, swizzle, l2Promotion, oobFill);
  a.lower = PackArray(pixelBoxLowerCorner, tensorRank - 2);
  a.upper = PackArray(pixelBoxUpperCorner, tensorRank - 2);
  a.channels = channelsPerPixel;
  a.pixels = pixelsPerColumn;
  return Encode(tensorMap, a);
}

CUresult cuTensorMapEncodeIm2colWide(CUtensorMap* tensorMap, CUtensorMapDataType tensorDataType,
                                     cuuint32_t tensorRank, void* globalAddress, const cuuint64_t* globalDim,
                                     const cuuint64_t* globalStrides, int pixelBoxLowerCornerWidth,
                                     int pixelBoxUpperCornerWidth, cuuint32_t channelsPerPixel,
                                     cuuint32_t pixelsPerColumn, const cuuint32_t* elementStrides,
                                     CUtensorMapInterleave interleave, CUtensorMapIm2ColWideMode mode,
                                     CUtensorMapSwizzle swizzle, CUtensorMapL2promotion l2Promotion,
                                     CUtensorMapFloatOOBfill oobFill) {
  RGPU_LOG_DEBUG("cuTensorMapEncodeIm2colWide");
  RGPU_RETURN_IF_DEINITIALIZED();
  TensorArgs a = Common(2, tensorDataType, tensorRank, globalAddress, globalDim, globalStrides, elementStrides,
                        interleave, swizzle, l2Promotion, oobFill);
  a.lower = PackArray(&pixelBoxLowerCornerWidth, 1);
  a.upper = PackArray(&pixelBoxUpperCornerWidth, 1);
  a.channels = channelsPerPixel;
  a.pixels = pixelsPerColumn;
  a.mode = Raw32(&mode);
  return Encode(tensorMap, a);
}

CUresult cuTensorMapReplaceAddress(CUtensorMap* tensorMap, void* globalAddress) {
  RGPU_LOG_DEBUG("cuTensorMapReplaceAddress");
  if (tensorMap == nullptr || reinterpret_cast<uintptr_t>(tensorMap) % 64 != 0) return CUDA_ERROR_INVALID_VALUE;
  RGPU_STATE_OR_RETURN(s);
  RGPU_CTX_OR_RETURN(s, ctx);
  std::span<const uint8_t> bytes(reinterpret_cast<const uint8_t*>(tensorMap), sizeof *tensorMap);
  proto::TensorMapReplaceAddressRep rep;
  CUresult r = Sync(s, proto::CallId::kTensorMapReplaceAddress,
                    proto::TensorMapReplaceAddressReq{ctx->id, bytes, reinterpret_cast<uintptr_t>(globalAddress)},
                    &rep);
  if (r != CUDA_SUCCESS) return r;
  if (rep.map.size() != sizeof *tensorMap) return CUDA_ERROR_UNKNOWN;
  std::memcpy(tensorMap, rep.map.data(), sizeof *tensorMap);
  return CUDA_SUCCESS;
}

// Profiling is collected on the GPU host (nsys / ncu there see the worker).
// cudaProfiler.h, unlike cuda.h, does not mark its declarations for export.
__attribute__((visibility("default"))) CUresult cuProfilerStart() {
  RGPU_STATE_OR_RETURN(s);
  RGPU_CTX_OR_RETURN(s, ctx);
  return Sync(s, proto::CallId::kProfilerStart, proto::ProfilerStartReq{ctx->id});
}

__attribute__((visibility("default"))) CUresult cuProfilerStop() {
  RGPU_STATE_OR_RETURN(s);
  RGPU_CTX_OR_RETURN(s, ctx);
  return Sync(s, proto::CallId::kProfilerStop, proto::ProfilerStopReq{ctx->id});
}

CUresult cuStreamSetAttribute(CUstream h, CUstreamAttrID attr, const CUstreamAttrValue* v) {
  return SetStreamAttr(h, attr, v, false);
}
CUresult cuStreamSetAttribute_ptsz(CUstream h, CUstreamAttrID attr, const CUstreamAttrValue* v) {
  return SetStreamAttr(h, attr, v, true);
}
CUresult cuStreamGetAttribute(CUstream h, CUstreamAttrID attr, CUstreamAttrValue* v) {
  return GetStreamAttr(h, attr, v, false);
}
CUresult cuStreamGetAttribute_ptsz(CUstream h, CUstreamAttrID attr, CUstreamAttrValue* v) {
  return GetStreamAttr(h, attr, v, true);
}
CUresult cuStreamCopyAttributes(CUstream dst, CUstream src) { return CopyStreamAttrs(dst, src, false); }
CUresult cuStreamCopyAttributes_ptsz(CUstream dst, CUstream src) { return CopyStreamAttrs(dst, src, true); }

CUresult cuCtxResetPersistingL2Cache() {
  RGPU_STATE_OR_RETURN(s);
  RGPU_CTX_OR_RETURN(s, ctx);
  return Post(s, proto::CallId::kCtxResetPersistingL2Cache, proto::CtxResetPersistingL2CacheReq{ctx->id});
}

CUresult cuMemGetAccess(unsigned long long* flags, const CUmemLocation* location, CUdeviceptr ptr) {
  RGPU_LOG_DEBUG("cuMemGetAccess");
  if (flags == nullptr || location == nullptr) return CUDA_ERROR_INVALID_VALUE;
  RGPU_STATE_OR_RETURN(s);
  CtxObj* c = s->Current();
  CtxObj* owner = nullptr;
  CUdeviceptr base = 0;
  uint64_t size = 0;
  if (s->FindAllocation(ptr, &base, &size, &owner) && owner != nullptr) c = owner;
  if (c == nullptr) return CUDA_ERROR_INVALID_CONTEXT;
  proto::MemGetAccessRep rep;
  CUresult r = Sync(s, proto::CallId::kMemGetAccess,
                    proto::MemGetAccessReq{c->id, Raw32(&location->type), location->id, ptr}, &rep);
  if (r == CUDA_SUCCESS) *flags = rep.flags;
  return r;
}

// Only CU_POINTER_ATTRIBUTE_SYNC_MEMOPS can be set (cuda.h).
CUresult cuPointerSetAttribute(const void* value, CUpointer_attribute attribute, CUdeviceptr ptr) {
  RGPU_LOG_DEBUG("cuPointerSetAttribute");
  if (value == nullptr || Raw32(&attribute) != CU_POINTER_ATTRIBUTE_SYNC_MEMOPS) return CUDA_ERROR_INVALID_VALUE;
  RGPU_STATE_OR_RETURN(s);
  CtxObj* c = nullptr;
  CUdeviceptr base = 0;
  uint64_t size = 0;
  if (!s->FindAllocation(ptr, &base, &size, &c)) return CUDA_ERROR_INVALID_VALUE;
  if (c == nullptr) c = s->Current();
  if (c == nullptr) return CUDA_ERROR_INVALID_CONTEXT;
  unsigned int v = 0;
  std::memcpy(&v, value, sizeof v);
  return Sync(s, proto::CallId::kPointerSetSyncMemops, proto::PointerSetSyncMemopsReq{c->id, ptr, v});
}

}  // extern "C"
