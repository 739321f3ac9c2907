// Sim driver functions: CUDA arrays, texture objects, surface objects.
//
// Arrays are host buffers with their descriptor (sim_arrays.h); copies into
// and out of them go through the 3D copy path (sim_api_memory.cc). Texture
// and surface objects are opaque ids that remember their resource: enough
// to validate creation and destruction. Texture sampling is not modelled;
// a host kernel may read an array through its surface (FindSimSurface).
// Formats: the classic ones (8/16/32-bit integers, half, float) with 1, 2
// or 4 channels; others give CUDA_ERROR_NOT_SUPPORTED here.
#include <map>

#include "backend/sim/sim_arrays.h"
#include "backend/sim/sim_state.h"
#include "common/array_format.h"

namespace rgpu::backend::sim {
namespace {

struct ArrayState {
  std::map<uint64_t, SimArray> arrays;
  std::map<uint64_t, CUDA_RESOURCE_DESC> textures;  // object id -> resource
  std::map<uint64_t, CUDA_RESOURCE_DESC> surfaces;
};
ArrayState& State() {
  static ArrayState* a = new ArrayState;  // guarded by the sim lock
  return *a;
}

// Bytes of one channel, 0 for a format the sim does not model.
uint64_t FormatBytes(int format) { return rgpu::ArrayFormatBytes(static_cast<uint32_t>(format)); }

constexpr unsigned kKnownFlags = CUDA_ARRAY3D_LAYERED | CUDA_ARRAY3D_SURFACE_LDST |
                                 CUDA_ARRAY3D_CUBEMAP | CUDA_ARRAY3D_TEXTURE_GATHER;

// Device memory behind a linear or pitched resource is not checked against
// allocations, as the GPU's driver does not check it (H100, driver 580: a
// texture over pitched memory past an allocation is made).
CUresult CheckResource(const CUDA_RESOURCE_DESC& r) {
  switch (EnumValue(r.resType)) {
    case CU_RESOURCE_TYPE_ARRAY:
      return FindSimArray(FromHandle(r.res.array.hArray)) ? CUDA_SUCCESS : CUDA_ERROR_INVALID_HANDLE;
    case CU_RESOURCE_TYPE_LINEAR: {
      const auto& l = r.res.linear;
      if (FormatBytes(EnumValue(l.format)) == 0) return CUDA_ERROR_INVALID_VALUE;
      if (l.numChannels != 1 && l.numChannels != 2 && l.numChannels != 4) return CUDA_ERROR_INVALID_VALUE;
      return l.sizeInBytes > 0 ? CUDA_SUCCESS : CUDA_ERROR_INVALID_VALUE;
    }
    case CU_RESOURCE_TYPE_PITCH2D: {
      const auto& p = r.res.pitch2D;
      uint64_t elem = FormatBytes(EnumValue(p.format)) * p.numChannels;
      if (elem == 0 || (p.numChannels != 1 && p.numChannels != 2 && p.numChannels != 4))
        return CUDA_ERROR_INVALID_VALUE;
      if (p.width == 0 || p.height == 0 || p.pitchInBytes < p.width * elem) return CUDA_ERROR_INVALID_VALUE;
      return CUDA_SUCCESS;
    }
    case CU_RESOURCE_TYPE_MIPMAPPED_ARRAY:
      return CUDA_ERROR_NOT_SUPPORTED;
    default:
      return CUDA_ERROR_INVALID_VALUE;
  }
}

}  // namespace

SimArray* FindSimArray(uint64_t id) {
  auto it = State().arrays.find(id);
  return it == State().arrays.end() ? nullptr : &it->second;
}

SimArray* FindSimSurface(uint64_t surf) {
  auto it = State().surfaces.find(surf);
  if (it == State().surfaces.end()) return nullptr;
  return FindSimArray(FromHandle(it->second.res.array.hArray));
}

CUresult cuArray3DCreate_v2(CUarray* pHandle, const CUDA_ARRAY3D_DESCRIPTOR* d) {
  SIM_ENTER(s);
  if (pHandle == nullptr || d == nullptr) return CUDA_ERROR_INVALID_VALUE;
  SIM_CURRENT_CTX(s, ctx);
  if (CUresult r = s->CheckUnsafeCall(); r != CUDA_SUCCESS) return r;
  uint64_t elem = FormatBytes(EnumValue(d->Format));
  if (elem == 0) return CUDA_ERROR_NOT_SUPPORTED;
  if (d->NumChannels != 1 && d->NumChannels != 2 && d->NumChannels != 4) return CUDA_ERROR_INVALID_VALUE;
  if (d->Flags & ~kKnownFlags) return CUDA_ERROR_NOT_SUPPORTED;
  bool layered = d->Flags & CUDA_ARRAY3D_LAYERED;
  if (d->Width == 0 || (d->Depth != 0 && d->Height == 0 && !layered)) return CUDA_ERROR_INVALID_VALUE;
  if (layered && d->Depth == 0) return CUDA_ERROR_INVALID_VALUE;
  if ((d->Flags & CUDA_ARRAY3D_CUBEMAP) && (d->Width != d->Height || d->Depth == 0 || d->Depth % 6 != 0))
    return CUDA_ERROR_INVALID_VALUE;
  // Hopper's largest 3D array is 16384 per side; 2D 131072 x 65536.
  if (d->Width > 131072 || d->Height > 65536 || d->Depth > 16384) return CUDA_ERROR_INVALID_VALUE;
  SimArray a;
  a.ctx = ctx->id;
  a.desc = *d;
  a.row_bytes = d->Width * elem * d->NumChannels;
  a.rows = d->Height ? d->Height : 1;
  a.slices = d->Depth ? d->Depth : 1;
  uint64_t total = 0;
  if (__builtin_mul_overflow(a.row_bytes * a.rows, a.slices, &total) || total > (uint64_t{4} << 30))
    return CUDA_ERROR_OUT_OF_MEMORY;
  a.bytes.assign(total, 0);
  uint64_t id = NextId();
  State().arrays.emplace(id, std::move(a));
  *pHandle = ToHandle<CUarray>(id);
  return CUDA_SUCCESS;
}

CUresult cuArrayDestroy(CUarray hArray) {
  SIM_ENTER(s);
  uint64_t id = FromHandle(hArray);
  if (State().arrays.erase(id) == 0) return CUDA_ERROR_INVALID_HANDLE;
  return CUDA_SUCCESS;
}

CUresult cuTexObjectCreate(CUtexObject* pTexObject, const CUDA_RESOURCE_DESC* pResDesc,
                           const CUDA_TEXTURE_DESC* pTexDesc, const CUDA_RESOURCE_VIEW_DESC*) {
  SIM_ENTER(s);
  if (pTexObject == nullptr || pResDesc == nullptr || pTexDesc == nullptr) return CUDA_ERROR_INVALID_VALUE;
  SIM_CURRENT_CTX(s, ctx);
  if (CUresult r = CheckResource(*pResDesc); r != CUDA_SUCCESS) return r;
  for (const auto& m : pTexDesc->addressMode)
    if (EnumValue(m) < 0 || EnumValue(m) > CU_TR_ADDRESS_MODE_BORDER) return CUDA_ERROR_INVALID_VALUE;
  if (EnumValue(pTexDesc->filterMode) < 0 || EnumValue(pTexDesc->filterMode) > CU_TR_FILTER_MODE_LINEAR)
    return CUDA_ERROR_INVALID_VALUE;
  uint64_t id = NextId();
  State().textures[id] = *pResDesc;
  *pTexObject = id;
  return CUDA_SUCCESS;
}

CUresult cuTexObjectDestroy(CUtexObject texObject) {
  SIM_ENTER(s);
  return State().textures.erase(texObject) ? CUDA_SUCCESS : CUDA_ERROR_INVALID_VALUE;
}

CUresult cuSurfObjectCreate(CUsurfObject* pSurfObject, const CUDA_RESOURCE_DESC* pResDesc) {
  SIM_ENTER(s);
  if (pSurfObject == nullptr || pResDesc == nullptr) return CUDA_ERROR_INVALID_VALUE;
  SIM_CURRENT_CTX(s, ctx);
  // "resType must be CU_RESOURCE_TYPE_ARRAY and ... hArray must be set to a
  // valid CUDA array handle" (cuSurfObjectCreate, cuda.h). The array need
  // not have CUDA_ARRAY3D_SURFACE_LDST (only the deprecated surface
  // references require it): the GPU's driver made a surface over an array
  // without it (H100, driver 580).
  if (EnumValue(pResDesc->resType) != CU_RESOURCE_TYPE_ARRAY) return CUDA_ERROR_INVALID_VALUE;
  SimArray* a = FindSimArray(FromHandle(pResDesc->res.array.hArray));
  if (a == nullptr) return CUDA_ERROR_INVALID_HANDLE;
  uint64_t id = NextId();
  State().surfaces[id] = *pResDesc;
  *pSurfObject = id;
  return CUDA_SUCCESS;
}

CUresult cuSurfObjectDestroy(CUsurfObject surfObject) {
  SIM_ENTER(s);
  return State().surfaces.erase(surfObject) ? CUDA_SUCCESS : CUDA_ERROR_INVALID_VALUE;
}

}  // namespace rgpu::backend::sim
