// Sim driver functions: tensor maps, the profiler, stream attributes,
// persisting-L2 reset, function / kernel enumeration, pointer SYNC_MEMOPS.
//
// Tensor maps: the real encoding is opaque and undocumented, so the sim
// validates the arguments as cuda.h documents them (cuTensorMapEncodeTiled
// et al.) and writes a deterministic stand-in: qword 0 the global address,
// qword 1 a tag with the kind, data type, rank and modes, then the dims,
// strides and box. Only the sim reads it back (cuTensorMapReplaceAddress).
// Stream attributes are stored per stream and read back as set; the default
// synchronisation policy reads as CU_SYNC_POLICY_AUTO.
#include <algorithm>
#include <cstring>
#include <map>
#include <utility>
#include <vector>

#include "backend/sim/sim_state.h"

namespace rgpu::backend::sim {
namespace {

constexpr uint64_t kTensorMapTag = 0x524750554d410000ull;  // "RGPUMA", low 16 bits: fields
constexpr uint64_t kTagMask = 0xffffffffffff0000ull;

enum class MapKind { kTiled = 0, kIm2col = 1, kIm2colWide = 2 };

// Bytes per element times 2 (packed 4-bit types take half a byte).
uint64_t ElementHalfBytes(int dtype) {
  static const uint8_t kHalf[] = {2, 4, 8, 8, 16, 16, 4, 8, 16, 4, 8, 8, 8, 1, 2, 2};
  return kHalf[dtype];
}

bool IsFloat(int dtype) { return dtype >= CU_TENSOR_MAP_DATA_TYPE_FLOAT16 && dtype <= CU_TENSOR_MAP_DATA_TYPE_TFLOAT32_FTZ; }

uint64_t AddressAlignment(int dtype, int interleave) {
  bool wide = interleave == CU_TENSOR_MAP_INTERLEAVE_32B || dtype == CU_TENSOR_MAP_DATA_TYPE_16U6_ALIGN16B ||
              dtype == CU_TENSOR_MAP_DATA_TYPE_16U4_ALIGN16B;
  return wide ? 32 : 16;
}

// The checks cuda.h lists for all three encoders. `inner_elems` is boxDim[0]
// (tiled) or channelsPerPixel (im2col), for the swizzle span rule.
CUresult ValidateCommon(MapKind kind, int dtype, cuuint32_t rank, void* addr, const cuuint64_t* dims,
                        const cuuint64_t* strides, const cuuint32_t* estrides, int interleave, int swizzle,
                        int l2, int oob, uint64_t inner_elems) {
  if (dtype < 0 || dtype > CU_TENSOR_MAP_DATA_TYPE_16U6_ALIGN16B) return CUDA_ERROR_INVALID_VALUE;
  if (interleave < 0 || interleave > CU_TENSOR_MAP_INTERLEAVE_32B) return CUDA_ERROR_INVALID_VALUE;
  if (swizzle < 0 || swizzle > CU_TENSOR_MAP_SWIZZLE_128B_ATOM_64B) return CUDA_ERROR_INVALID_VALUE;
  if (l2 < 0 || l2 > CU_TENSOR_MAP_L2_PROMOTION_L2_256B) return CUDA_ERROR_INVALID_VALUE;
  if (oob < 0 || oob > CU_TENSOR_MAP_FLOAT_OOB_FILL_NAN_REQUEST_ZERO_FMA) return CUDA_ERROR_INVALID_VALUE;
  if (oob != CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE && !IsFloat(dtype)) return CUDA_ERROR_INVALID_VALUE;
  uint32_t min_rank = kind == MapKind::kTiled && interleave == CU_TENSOR_MAP_INTERLEAVE_NONE ? 1 : 3;
  if (rank < min_rank || rank > 5) return CUDA_ERROR_INVALID_VALUE;
  if (dims == nullptr || estrides == nullptr || (rank > 1 && strides == nullptr)) return CUDA_ERROR_INVALID_VALUE;
  uint64_t a = reinterpret_cast<uintptr_t>(addr);
  if (a == 0 || a % AddressAlignment(dtype, interleave) != 0) return CUDA_ERROR_INVALID_VALUE;
  bool packed16 = dtype == CU_TENSOR_MAP_DATA_TYPE_16U6_ALIGN16B || dtype == CU_TENSOR_MAP_DATA_TYPE_16U4_ALIGN16B;
  for (cuuint32_t i = 0; i < rank; ++i) {
    if (dims[i] == 0 || dims[i] > (uint64_t{1} << 32)) return CUDA_ERROR_INVALID_VALUE;
    if (estrides[i] == 0 || estrides[i] > 8) return CUDA_ERROR_INVALID_VALUE;
  }
  if (packed16 && dims[0] % 128 != 0) return CUDA_ERROR_INVALID_VALUE;
  if (dtype == CU_TENSOR_MAP_DATA_TYPE_16U4_ALIGN8B && dims[0] % 2 != 0) return CUDA_ERROR_INVALID_VALUE;
  uint64_t stride_align = interleave == CU_TENSOR_MAP_INTERLEAVE_32B || packed16 ? 32 : 16;
  for (cuuint32_t i = 0; i + 1 < rank; ++i) {
    if (strides[i] % stride_align != 0 || strides[i] >= (uint64_t{1} << 40)) return CUDA_ERROR_INVALID_VALUE;
  }
  if (interleave == CU_TENSOR_MAP_INTERLEAVE_32B && swizzle != CU_TENSOR_MAP_SWIZZLE_32B) return CUDA_ERROR_INVALID_VALUE;
  if (dtype == CU_TENSOR_MAP_DATA_TYPE_16U6_ALIGN16B && interleave != CU_TENSOR_MAP_INTERLEAVE_NONE)
    return CUDA_ERROR_INVALID_VALUE;
  if (interleave == CU_TENSOR_MAP_INTERLEAVE_NONE && swizzle != CU_TENSOR_MAP_SWIZZLE_NONE) {
    uint64_t span = swizzle == CU_TENSOR_MAP_SWIZZLE_32B ? 32 : swizzle == CU_TENSOR_MAP_SWIZZLE_64B ? 64 : 128;
    if (inner_elems * ElementHalfBytes(dtype) > span * 2) return CUDA_ERROR_INVALID_VALUE;
  }
  return CUDA_SUCCESS;
}

void WriteStandIn(CUtensorMap* map, MapKind kind, int dtype, cuuint32_t rank, void* addr, const cuuint64_t* dims,
                  const cuuint64_t* strides, const cuuint32_t* box, int interleave, int swizzle, int l2, int oob) {
  std::memset(map, 0, sizeof *map);
  map->opaque[0] = reinterpret_cast<uintptr_t>(addr);
  map->opaque[1] = kTensorMapTag | (static_cast<uint64_t>(kind) << 12) | (static_cast<uint64_t>(dtype) << 8) |
                   (rank << 5) | (interleave << 3) | 0;
  map->opaque[2] = (static_cast<uint64_t>(swizzle) << 8) | (l2 << 4) | oob;
  for (cuuint32_t i = 0; i < rank; ++i) map->opaque[3 + i] = dims[i];
  for (cuuint32_t i = 0; i + 1 < rank; ++i) map->opaque[8 + i] = strides[i];
  if (box != nullptr) {
    for (cuuint32_t i = 0; i < rank; ++i) map->opaque[12 + i / 2] |= static_cast<uint64_t>(box[i]) << (32 * (i % 2));
  }
}

// Stream attributes by (context, stream): special streams are per context.
std::map<std::pair<uint64_t, uint64_t>, std::map<int, CUstreamAttrValue>>& StreamAttrs() {
  static auto* m = new std::map<std::pair<uint64_t, uint64_t>, std::map<int, CUstreamAttrValue>>;
  return *m;  // guarded by the sim lock
}

bool IsStreamAttr(int a) {
  return a == CU_LAUNCH_ATTRIBUTE_ACCESS_POLICY_WINDOW || a == CU_LAUNCH_ATTRIBUTE_SYNCHRONIZATION_POLICY ||
         a == CU_LAUNCH_ATTRIBUTE_PRIORITY || a == CU_LAUNCH_ATTRIBUTE_MEM_SYNC_DOMAIN_MAP ||
         a == CU_LAUNCH_ATTRIBUTE_MEM_SYNC_DOMAIN;
}

// The key of `h` (CheckStream it first).
std::pair<uint64_t, uint64_t> StreamKey(SimDevice* s, CUstream h) {
  uint64_t id = FromHandle(h);
  auto it = s->streams.find(id);
  if (it != s->streams.end()) return {it->second.ctx, id};
  Context* ctx = nullptr;
  s->CurrentContext(&ctx);
  return {ctx ? ctx->id : 0, id};
}

}  // namespace

CUresult cuTensorMapEncodeTiled(CUtensorMap* tensorMap, CUtensorMapDataType tensorDataType, cuuint32_t tensorRank,
                                void* globalAddress, const cuuint64_t* globalDim, const cuuint64_t* globalStrides,
                                const cuuint32_t* boxDim, const cuuint32_t* elementStrides,
                                CUtensorMapInterleave interleave, CUtensorMapSwizzle swizzle,
                                CUtensorMapL2promotion l2Promotion, CUtensorMapFloatOOBfill oobFill) {
  SIM_ENTER(s);
  SIM_CURRENT_CTX(s, ctx);
  if (tensorMap == nullptr || reinterpret_cast<uintptr_t>(tensorMap) % 64 != 0 || boxDim == nullptr)
    return CUDA_ERROR_INVALID_VALUE;
  int dtype = EnumValue(tensorDataType), il = EnumValue(interleave);
  if (tensorRank >= 1 && tensorRank <= 5) {
    for (cuuint32_t i = 0; i < tensorRank; ++i)
      if (boxDim[i] == 0 || boxDim[i] > 256) return CUDA_ERROR_INVALID_VALUE;
    if (dtype >= 0 && dtype <= CU_TENSOR_MAP_DATA_TYPE_16U6_ALIGN16B) {
      if (il == CU_TENSOR_MAP_INTERLEAVE_NONE && (boxDim[0] * ElementHalfBytes(dtype)) % 32 != 0)
        return CUDA_ERROR_INVALID_VALUE;
      if ((dtype == CU_TENSOR_MAP_DATA_TYPE_16U6_ALIGN16B || dtype == CU_TENSOR_MAP_DATA_TYPE_16U4_ALIGN16B) &&
          boxDim[0] != 128)
        return CUDA_ERROR_INVALID_VALUE;
    }
  }
  CUresult r = ValidateCommon(MapKind::kTiled, dtype, tensorRank, globalAddress, globalDim, globalStrides,
                              elementStrides, il, EnumValue(swizzle), EnumValue(l2Promotion), EnumValue(oobFill),
                              tensorRank >= 1 ? boxDim[0] : 0);
  if (r != CUDA_SUCCESS) return r;
  WriteStandIn(tensorMap, MapKind::kTiled, dtype, tensorRank, globalAddress, globalDim, globalStrides, boxDim, il,
               EnumValue(swizzle), EnumValue(l2Promotion), EnumValue(oobFill));
  return CUDA_SUCCESS;
}

CUresult cuTensorMapEncodeIm2col(CUtensorMap* tensorMap, CUtensorMapDataType tensorDataType, cuuint32_t tensorRank,
                                 void* globalAddress, const cuuint64_t* globalDim, const cuuint64_t* globalStrides,
                                 const int* lower, const int* upper, cuuint32_t channelsPerPixel,
                                 cuuint32_t pixelsPerColumn, const cuuint32_t* elementStrides,
                                 CUtensorMapInterleave interleave, CUtensorMapSwizzle swizzle,
                                 CUtensorMapL2promotion l2Promotion, CUtensorMapFloatOOBfill oobFill) {
  SIM_ENTER(s);
  SIM_CURRENT_CTX(s, ctx);
  if (tensorMap == nullptr || reinterpret_cast<uintptr_t>(tensorMap) % 64 != 0 || lower == nullptr ||
      upper == nullptr)
    return CUDA_ERROR_INVALID_VALUE;
  if (channelsPerPixel == 0 || channelsPerPixel > 256 || pixelsPerColumn == 0 || pixelsPerColumn > 1024)
    return CUDA_ERROR_INVALID_VALUE;
  int dtype = EnumValue(tensorDataType), il = EnumValue(interleave);
  CUresult r = ValidateCommon(MapKind::kIm2col, dtype, tensorRank, globalAddress, globalDim, globalStrides,
                              elementStrides, il, EnumValue(swizzle), EnumValue(l2Promotion), EnumValue(oobFill),
                              channelsPerPixel);
  if (r != CUDA_SUCCESS) return r;
  // Corner offsets: one per spatial dimension, narrower as the rank grows.
  int limit = tensorRank == 3 ? 32768 : tensorRank == 4 ? 128 : 16;
  for (cuuint32_t i = 0; i + 2 < tensorRank; ++i) {
    if (lower[i] < -limit || lower[i] >= limit || upper[i] < -limit || upper[i] >= limit)
      return CUDA_ERROR_INVALID_VALUE;
  }
  WriteStandIn(tensorMap, MapKind::kIm2col, dtype, tensorRank, globalAddress, globalDim, globalStrides, nullptr, il,
               EnumValue(swizzle), EnumValue(l2Promotion), EnumValue(oobFill));
  tensorMap->opaque[12] = (static_cast<uint64_t>(channelsPerPixel) << 32) | pixelsPerColumn;
  return CUDA_SUCCESS;
}

CUresult cuTensorMapEncodeIm2colWide(CUtensorMap* tensorMap, CUtensorMapDataType tensorDataType,
                                     cuuint32_t tensorRank, void* globalAddress, const cuuint64_t* globalDim,
                                     const cuuint64_t* globalStrides, int lowerWidth, int upperWidth,
                                     cuuint32_t channelsPerPixel, cuuint32_t pixelsPerColumn,
                                     const cuuint32_t* elementStrides, CUtensorMapInterleave interleave,
                                     CUtensorMapIm2ColWideMode mode, CUtensorMapSwizzle swizzle,
                                     CUtensorMapL2promotion l2Promotion, CUtensorMapFloatOOBfill oobFill) {
  SIM_ENTER(s);
  SIM_CURRENT_CTX(s, ctx);
  if (tensorMap == nullptr || reinterpret_cast<uintptr_t>(tensorMap) % 64 != 0) return CUDA_ERROR_INVALID_VALUE;
  int m = EnumValue(mode);
  if (m < CU_TENSOR_MAP_IM2COL_WIDE_MODE_W || m > CU_TENSOR_MAP_IM2COL_WIDE_MODE_W128) return CUDA_ERROR_INVALID_VALUE;
  if (channelsPerPixel == 0 || channelsPerPixel > 256 || pixelsPerColumn == 0 || pixelsPerColumn > 1024)
    return CUDA_ERROR_INVALID_VALUE;
  if (lowerWidth < -32768 || lowerWidth > 32767 || upperWidth < -32768 || upperWidth > 32767)
    return CUDA_ERROR_INVALID_VALUE;
  int dtype = EnumValue(tensorDataType), il = EnumValue(interleave);
  CUresult r = ValidateCommon(MapKind::kIm2colWide, dtype, tensorRank, globalAddress, globalDim, globalStrides,
                              elementStrides, il, EnumValue(swizzle), EnumValue(l2Promotion), EnumValue(oobFill),
                              channelsPerPixel);
  if (r != CUDA_SUCCESS) return r;
  WriteStandIn(tensorMap, MapKind::kIm2colWide, dtype, tensorRank, globalAddress, globalDim, globalStrides, nullptr,
               il, EnumValue(swizzle), EnumValue(l2Promotion), EnumValue(oobFill));
  tensorMap->opaque[12] = (static_cast<uint64_t>(channelsPerPixel) << 32) | pixelsPerColumn;
  tensorMap->opaque[13] = static_cast<uint64_t>(m);
  return CUDA_SUCCESS;
}

CUresult cuTensorMapReplaceAddress(CUtensorMap* tensorMap, void* globalAddress) {
  SIM_ENTER(s);
  SIM_CURRENT_CTX(s, ctx);
  if (tensorMap == nullptr || reinterpret_cast<uintptr_t>(tensorMap) % 64 != 0) return CUDA_ERROR_INVALID_VALUE;
  uint64_t tag = tensorMap->opaque[1];
  if ((tag & kTagMask) != kTensorMapTag) return CUDA_ERROR_INVALID_VALUE;  // not a map the sim made
  int dtype = static_cast<int>((tag >> 8) & 0xf), il = static_cast<int>((tag >> 3) & 3);
  uint64_t a = reinterpret_cast<uintptr_t>(globalAddress);
  if (a == 0 || a % AddressAlignment(dtype, il) != 0) return CUDA_ERROR_INVALID_VALUE;
  tensorMap->opaque[0] = a;
  return CUDA_SUCCESS;
}

// Profiling needs a context; the sim has nothing to collect.
CUresult cuProfilerStart() {
  SIM_ENTER(s);
  SIM_CURRENT_CTX(s, ctx);
  return CUDA_SUCCESS;
}

CUresult cuProfilerStop() {
  SIM_ENTER(s);
  SIM_CURRENT_CTX(s, ctx);
  return CUDA_SUCCESS;
}

CUresult cuStreamSetAttribute(CUstream hStream, CUstreamAttrID attr, const CUstreamAttrValue* value) {
  SIM_ENTER(s);
  if (value == nullptr || !IsStreamAttr(EnumValue(attr))) return CUDA_ERROR_INVALID_VALUE;
  if (CUresult r = s->CheckStream(hStream); r != CUDA_SUCCESS) return r;
  int a = EnumValue(attr);
  CUstreamAttrValue v = *value;
  if (a == CU_LAUNCH_ATTRIBUTE_ACCESS_POLICY_WINDOW) {
    const CUaccessPolicyWindow& w = v.accessPolicyWindow;
    int hit = EnumValue(w.hitProp), miss = EnumValue(w.missProp);
    if (!(w.hitRatio >= 0.0f && w.hitRatio <= 1.0f) || hit < 0 || hit > CU_ACCESS_PROPERTY_PERSISTING || miss < 0 ||
        miss > CU_ACCESS_PROPERTY_PERSISTING)
      return CUDA_ERROR_INVALID_VALUE;
  } else if (a == CU_LAUNCH_ATTRIBUTE_SYNCHRONIZATION_POLICY) {
    int p = EnumValue(v.syncPolicy);
    if (p < CU_SYNC_POLICY_AUTO || p > CU_SYNC_POLICY_BLOCKING_SYNC) return CUDA_ERROR_INVALID_VALUE;
  } else if (a == CU_LAUNCH_ATTRIBUTE_PRIORITY) {
    auto it = s->streams.find(FromHandle(hStream));
    if (it != s->streams.end()) it->second.priority = std::min(0, std::max(-5, v.priority));
  }
  StreamAttrs()[StreamKey(s, hStream)][a] = v;
  return CUDA_SUCCESS;
}

CUresult cuStreamGetAttribute(CUstream hStream, CUstreamAttrID attr, CUstreamAttrValue* value) {
  SIM_ENTER(s);
  if (value == nullptr || !IsStreamAttr(EnumValue(attr))) return CUDA_ERROR_INVALID_VALUE;
  if (CUresult r = s->CheckStream(hStream); r != CUDA_SUCCESS) return r;
  int a = EnumValue(attr);
  std::memset(value, 0, sizeof *value);
  if (a == CU_LAUNCH_ATTRIBUTE_PRIORITY) {
    auto it = s->streams.find(FromHandle(hStream));
    value->priority = it != s->streams.end() ? it->second.priority : 0;
    return CUDA_SUCCESS;
  }
  auto& attrs = StreamAttrs()[StreamKey(s, hStream)];
  if (auto it = attrs.find(a); it != attrs.end()) {
    *value = it->second;
  } else if (a == CU_LAUNCH_ATTRIBUTE_SYNCHRONIZATION_POLICY) {
    value->syncPolicy = CU_SYNC_POLICY_AUTO;
  }
  return CUDA_SUCCESS;
}

CUresult cuStreamCopyAttributes(CUstream dst, CUstream src) {
  SIM_ENTER(s);
  if (CUresult r = s->CheckStream(dst); r != CUDA_SUCCESS) return r;
  if (CUresult r = s->CheckStream(src); r != CUDA_SUCCESS) return r;
  auto from = StreamAttrs()[StreamKey(s, src)];
  StreamAttrs()[StreamKey(s, dst)] = from;
  auto fs = s->streams.find(FromHandle(src));
  auto ds = s->streams.find(FromHandle(dst));
  if (fs != s->streams.end() && ds != s->streams.end()) ds->second.priority = fs->second.priority;
  return CUDA_SUCCESS;
}

CUresult cuCtxResetPersistingL2Cache() {
  SIM_ENTER(s);
  SIM_CURRENT_CTX(s, ctx);
  return CUDA_SUCCESS;
}

CUresult cuModuleGetFunctionCount(unsigned int* count, CUmodule mod) {
  SIM_ENTER(s);
  if (count == nullptr) return CUDA_ERROR_INVALID_VALUE;
  auto it = s->modules.find(FromHandle(mod));
  if (it == s->modules.end()) return CUDA_ERROR_INVALID_HANDLE;
  *count = static_cast<unsigned>(it->second.image->info.kernels.size());
  return CUDA_SUCCESS;
}

CUresult cuModuleEnumerateFunctions(CUfunction* functions, unsigned int numFunctions, CUmodule mod) {
  SIM_ENTER(s);
  if (functions == nullptr) return CUDA_ERROR_INVALID_VALUE;
  auto it = s->modules.find(FromHandle(mod));
  if (it == s->modules.end()) return CUDA_ERROR_INVALID_HANDLE;
  const Module& m = it->second;
  unsigned n = 0;
  for (const image::KernelInfo& k : m.image->info.kernels) {
    if (n == numFunctions) break;
    auto f = m.functions.find(k.name);
    if (f == m.functions.end()) return CUDA_ERROR_UNKNOWN;
    functions[n++] = ToHandle<CUfunction>(f->second);
  }
  return CUDA_SUCCESS;
}

CUresult cuLibraryGetKernelCount(unsigned int* count, CUlibrary lib) {
  SIM_ENTER(s);
  if (count == nullptr) return CUDA_ERROR_INVALID_VALUE;
  auto it = s->libraries.find(FromHandle(lib));
  if (it == s->libraries.end()) return CUDA_ERROR_INVALID_HANDLE;
  *count = static_cast<unsigned>(it->second.image->info.kernels.size());
  return CUDA_SUCCESS;
}

CUresult cuLibraryEnumerateKernels(CUkernel* kernels, unsigned int numKernels, CUlibrary lib) {
  SIM_ENTER(s);
  if (kernels == nullptr) return CUDA_ERROR_INVALID_VALUE;
  auto it = s->libraries.find(FromHandle(lib));
  if (it == s->libraries.end()) return CUDA_ERROR_INVALID_HANDLE;
  const Library& l = it->second;
  unsigned n = 0;
  for (const image::KernelInfo& k : l.image->info.kernels) {
    if (n == numKernels) break;
    auto kk = l.kernels.find(k.name);
    if (kk == l.kernels.end()) return CUDA_ERROR_UNKNOWN;
    kernels[n++] = ToHandle<CUkernel>(kk->second);
  }
  return CUDA_SUCCESS;
}

// Only CU_POINTER_ATTRIBUTE_SYNC_MEMOPS is settable; the sim's copies are
// always synchronous, so it changes nothing here.
CUresult cuPointerSetAttribute(const void* value, CUpointer_attribute attribute, CUdeviceptr ptr) {
  SIM_ENTER(s);
  if (value == nullptr) return CUDA_ERROR_INVALID_VALUE;
  if (EnumValue(attribute) != CU_POINTER_ATTRIBUTE_SYNC_MEMOPS) return CUDA_ERROR_INVALID_VALUE;
  if (!s->IsDeviceRange(ptr, 1)) return CUDA_ERROR_INVALID_VALUE;
  return CUDA_SUCCESS;
}

// JIT linking. The sim has no linker: a link of exactly one cubin, fatbin or
// PTX input yields that input's bytes (which the sim's module loader takes);
// several inputs, or objects and libraries, are CUDA_ERROR_NOT_SUPPORTED.
// Options are checked (known CUjit_option values) and logs left empty.
namespace {
struct SimLink {
  std::vector<uint8_t> image;
  int inputs = 0;
  bool unsupported = false;
};
std::map<uint64_t, SimLink>& Links() {
  static auto* m = new std::map<uint64_t, SimLink>;
  return *m;  // guarded by the sim lock
}
}  // namespace

CUresult cuLinkCreate_v2(unsigned int numOptions, CUjit_option* options, void** optionValues, CUlinkState* stateOut) {
  SIM_ENTER(s);
  SIM_CURRENT_CTX(s, ctx);
  if (stateOut == nullptr || (numOptions > 0 && (options == nullptr || optionValues == nullptr)))
    return CUDA_ERROR_INVALID_VALUE;
  for (unsigned i = 0; i < numOptions; ++i)
    if (EnumValue(options[i]) < 0 || EnumValue(options[i]) >= CU_JIT_NUM_OPTIONS) return CUDA_ERROR_INVALID_VALUE;
  uint64_t id = NextId();
  Links()[id] = SimLink{};
  *stateOut = ToHandle<CUlinkState>(id);
  return CUDA_SUCCESS;
}

CUresult cuLinkAddData_v2(CUlinkState state, CUjitInputType type, void* data, size_t size, const char* name,
                          unsigned int numOptions, CUjit_option* options, void** optionValues) {
  SIM_ENTER(s);
  auto it = Links().find(FromHandle(state));
  if (it == Links().end()) return CUDA_ERROR_INVALID_HANDLE;
  if (data == nullptr || size == 0) return CUDA_ERROR_INVALID_VALUE;
  (void)name, (void)numOptions, (void)options, (void)optionValues;
  int t = EnumValue(type);
  if (t < 0 || t >= CU_JIT_NUM_INPUT_TYPES) return CUDA_ERROR_INVALID_VALUE;
  SimLink& l = it->second;
  ++l.inputs;
  if (t != CU_JIT_INPUT_CUBIN && t != CU_JIT_INPUT_PTX && t != CU_JIT_INPUT_FATBINARY) l.unsupported = true;
  const uint8_t* p = static_cast<const uint8_t*>(data);
  l.image.assign(p, p + size);
  if (t == CU_JIT_INPUT_PTX && l.image.back() != 0) l.image.push_back(0);
  return CUDA_SUCCESS;
}

CUresult cuLinkComplete(CUlinkState state, void** cubinOut, size_t* sizeOut) {
  SIM_ENTER(s);
  auto it = Links().find(FromHandle(state));
  if (it == Links().end()) return CUDA_ERROR_INVALID_HANDLE;
  if (cubinOut == nullptr) return CUDA_ERROR_INVALID_VALUE;
  SimLink& l = it->second;
  if (l.inputs == 0) return CUDA_ERROR_INVALID_VALUE;
  if (l.inputs > 1 || l.unsupported) return CUDA_ERROR_NOT_SUPPORTED;
  *cubinOut = l.image.data();
  if (sizeOut) *sizeOut = l.image.size();
  return CUDA_SUCCESS;
}

CUresult cuLinkDestroy(CUlinkState state) {
  SIM_ENTER(s);
  return Links().erase(FromHandle(state)) ? CUDA_SUCCESS : CUDA_ERROR_INVALID_HANDLE;
}

}  // namespace rgpu::backend::sim
