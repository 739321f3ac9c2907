// Handlers: CUDA arrays, texture objects, surface objects (arrays.h).
//
// Every descriptor field from the client is checked before the driver sees
// it: formats and channel counts, enum ranges, array ids (this session's
// only), pitched extents (no overflow). The device ranges of linear and
// pitched resources are not checked against the session's allocations: the
// driver does not check them (a texture over pitched memory past an
// allocation is made on an H100, driver 580), making a texture object reads
// no memory, and a kernel sampling it reads in this session's own context,
// as with any pointer a kernel is given.
#include "server/worker/arrays.h"
#include "server/worker/handlers.gen.h"
#include "server/worker/session.h"

namespace rgpu::worker {
namespace {

constexpr uint32_t kArrayFlags = CUDA_ARRAY3D_LAYERED | CUDA_ARRAY3D_SURFACE_LDST | CUDA_ARRAY3D_CUBEMAP |
                                 CUDA_ARRAY3D_TEXTURE_GATHER;
// Largest extent the wire accepts per side (Hopper's largest is 131072).
constexpr uint64_t kMaxArraySide = 1u << 20;

Status Invalid(const std::string& what) { return Status::Cuda(CUDA_ERROR_INVALID_VALUE, what); }

Status CheckChannels(uint32_t format, uint32_t channels, uint64_t* elem, const char* what) {
  uint64_t b = ArrayFormatBytes(format);
  if (b == 0)
    return Status::Cuda(CUDA_ERROR_NOT_SUPPORTED, std::string(what) + ": format " + std::to_string(format) +
                                                      " is not carried");
  if (channels != 1 && channels != 2 && channels != 4) return Invalid(std::string(what) + ": channels must be 1, 2 or 4");
  *elem = b * channels;
  return {};
}

// A resource descriptor from the wire, translated and checked.
Status BuildResource(Session& s, uint32_t type, uint64_t handle, uint32_t format, uint32_t channels,
                     uint64_t width, uint64_t height, uint64_t pitch, uint32_t flags, CUDA_RESOURCE_DESC* out) {
  *out = CUDA_RESOURCE_DESC{};
  if (flags != 0) return Invalid("resource flags must be 0");
  switch (type) {
    case CU_RESOURCE_TYPE_ARRAY: {
      Result<ArrayEntry*> a = s.arrays().Find(handle);
      if (!a.ok()) return a.take_status();
      out->resType = CU_RESOURCE_TYPE_ARRAY;
      out->res.array.hArray = (*a)->array;
      return {};
    }
    case CU_RESOURCE_TYPE_LINEAR: {
      uint64_t elem = 0;
      RGPU_RETURN_IF_ERROR(CheckChannels(format, channels, &elem, "linear resource"));
      out->resType = CU_RESOURCE_TYPE_LINEAR;
      out->res.linear.devPtr = handle;
      out->res.linear.format = static_cast<CUarray_format>(format);
      out->res.linear.numChannels = channels;
      out->res.linear.sizeInBytes = width;
      return {};
    }
    case CU_RESOURCE_TYPE_PITCH2D: {
      uint64_t elem = 0;
      RGPU_RETURN_IF_ERROR(CheckChannels(format, channels, &elem, "pitch2D resource"));
      if (width == 0 || height == 0 || width > kMaxArraySide || height > kMaxArraySide)
        return Invalid("pitch2D resource: bad extent");
      if (pitch < width * elem) return Invalid("pitch2D resource: pitch smaller than a row");
      uint64_t span = 0;
      if (__builtin_mul_overflow(pitch, height - 1, &span) || __builtin_add_overflow(span, width * elem, &span))
        return Invalid("pitch2D resource: size overflows");
      out->resType = CU_RESOURCE_TYPE_PITCH2D;
      out->res.pitch2D.devPtr = handle;
      out->res.pitch2D.format = static_cast<CUarray_format>(format);
      out->res.pitch2D.numChannels = channels;
      out->res.pitch2D.width = width;
      out->res.pitch2D.height = height;
      out->res.pitch2D.pitchInBytes = pitch;
      return {};
    }
    case CU_RESOURCE_TYPE_MIPMAPPED_ARRAY:
      return Status::Cuda(CUDA_ERROR_NOT_SUPPORTED, "mipmapped arrays are not supported");
    default:
      return Invalid("unknown resource type " + std::to_string(type));
  }
}

}  // namespace

Status HandleArrayCreate(Session& s, const proto::ArrayCreateReq& req, proto::ArrayCreateRep*) {
  RGPU_RETURN_IF_ERROR(s.UseContext(req.ctx));
  if (!s.driver().cuArray3DCreate_v2) return NotProvided("cuArray3DCreate");
  uint64_t elem = 0;
  RGPU_RETURN_IF_ERROR(CheckChannels(req.format, req.channels, &elem, "cuArrayCreate"));
  if (req.flags & ~kArrayFlags)
    return Status::Cuda(CUDA_ERROR_NOT_SUPPORTED, "cuArray3DCreate: flags " + std::to_string(req.flags));
  if (req.width == 0 || req.width > kMaxArraySide || req.height > kMaxArraySide || req.depth > kMaxArraySide)
    return Invalid("cuArrayCreate: bad extent");
  ArrayEntry e;
  e.row_bytes = req.width * elem;
  e.rows = req.height ? req.height : 1;
  e.slices = req.depth ? req.depth : 1;
  e.flags = req.flags;
  e.ctx_id = req.ctx;
  RGPU_RETURN_IF_ERROR(Get(s.FindContext(req.ctx), &e.ctx));
  uint64_t bytes = 0;
  if (__builtin_mul_overflow(e.row_bytes * e.rows, e.slices, &bytes)) return Invalid("cuArrayCreate: size overflows");
  RGPU_RETURN_IF_ERROR(s.quota().Check(bytes, "cuArrayCreate"));
  CUDA_ARRAY3D_DESCRIPTOR d{};
  d.Width = req.width;
  d.Height = req.height;
  d.Depth = req.depth;
  d.Format = static_cast<CUarray_format>(req.format);
  d.NumChannels = req.channels;
  d.Flags = req.flags;
  RGPU_RETURN_IF_ERROR(CuStatus(s.driver().cuArray3DCreate_v2(&e.array, &d), "cuArray3DCreate"));
  if (Status st = s.arrays().Add(req.array, e); !st.ok()) {
    s.driver().cuArrayDestroy(e.array);
    return st;
  }
  // Charged like a physical allocation, by the client's id (ids are unique
  // across kinds): refunded when the array is destroyed.
  s.quota().AddPhysical(req.array, bytes);
  return {};
}

Status HandleArrayDestroy(Session& s, const proto::ArrayDestroyReq& req, proto::ArrayDestroyRep*) {
  RGPU_RETURN_IF_ERROR(s.UseContext(req.ctx));
  if (!s.driver().cuArrayDestroy) return NotProvided("cuArrayDestroy");
  Result<ArrayEntry> e = s.arrays().Take(req.array);
  if (!e.ok()) return e.take_status();
  s.quota().ReleasePhysical(req.array);
  return CuStatus(s.driver().cuArrayDestroy(e->array), "cuArrayDestroy");
}

Status HandleTexObjectCreate(Session& s, const proto::TexObjectCreateReq& req, proto::TexObjectCreateRep* rep) {
  RGPU_RETURN_IF_ERROR(s.UseContext(req.ctx));
  if (!s.driver().cuTexObjectCreate) return NotProvided("cuTexObjectCreate");
  CUDA_RESOURCE_DESC res;
  RGPU_RETURN_IF_ERROR(BuildResource(s, req.res_type, req.res_handle, req.res_format, req.res_channels,
                                     req.res_width, req.res_height, req.res_pitch, req.res_flags, &res));
  CUDA_TEXTURE_DESC tex{};
  uint32_t modes[3] = {req.addr0, req.addr1, req.addr2};
  for (int i = 0; i < 3; ++i) {
    if (modes[i] > CU_TR_ADDRESS_MODE_BORDER) return Invalid("cuTexObjectCreate: address mode");
    tex.addressMode[i] = static_cast<CUaddress_mode>(modes[i]);
  }
  if (req.filter > CU_TR_FILTER_MODE_LINEAR || req.mip_filter > CU_TR_FILTER_MODE_LINEAR)
    return Invalid("cuTexObjectCreate: filter mode");
  tex.filterMode = static_cast<CUfilter_mode>(req.filter);
  tex.mipmapFilterMode = static_cast<CUfilter_mode>(req.mip_filter);
  constexpr uint32_t kTexFlags = CU_TRSF_READ_AS_INTEGER | CU_TRSF_NORMALIZED_COORDINATES | CU_TRSF_SRGB |
                                 CU_TRSF_DISABLE_TRILINEAR_OPTIMIZATION | CU_TRSF_SEAMLESS_CUBEMAP;
  if (req.tex_flags & ~kTexFlags) return Invalid("cuTexObjectCreate: unknown texture flags");
  tex.flags = req.tex_flags;
  tex.maxAnisotropy = req.max_aniso;
  tex.mipmapLevelBias = req.mip_bias;
  tex.minMipmapLevelClamp = req.min_mip_clamp;
  tex.maxMipmapLevelClamp = req.max_mip_clamp;
  tex.borderColor[0] = req.border0;
  tex.borderColor[1] = req.border1;
  tex.borderColor[2] = req.border2;
  tex.borderColor[3] = req.border3;
  CUDA_RESOURCE_VIEW_DESC view{};
  if (req.has_view > 1) return Invalid("cuTexObjectCreate: has_view");
  if (req.has_view) {
    if (req.view_format > CU_RES_VIEW_FORMAT_UNSIGNED_BC7 || req.res_type != CU_RESOURCE_TYPE_ARRAY)
      return Invalid("cuTexObjectCreate: resource view");
    view.format = static_cast<CUresourceViewFormat>(req.view_format);
    view.width = req.view_width;
    view.height = req.view_height;
    view.depth = req.view_depth;
    view.firstMipmapLevel = req.view_first_mip;
    view.lastMipmapLevel = req.view_last_mip;
    view.firstLayer = req.view_first_layer;
    view.lastLayer = req.view_last_layer;
  }
  CUtexObject t = 0;
  RGPU_RETURN_IF_ERROR(
      CuStatus(s.driver().cuTexObjectCreate(&t, &res, &tex, req.has_view ? &view : nullptr), "cuTexObjectCreate"));
  s.arrays().AddObject(false, t, req.ctx);
  rep->tex = t;
  return {};
}

Status HandleTexObjectDestroy(Session& s, const proto::TexObjectDestroyReq& req, proto::TexObjectDestroyRep*) {
  RGPU_RETURN_IF_ERROR(s.UseContext(req.ctx));
  if (!s.driver().cuTexObjectDestroy) return NotProvided("cuTexObjectDestroy");
  if (!s.arrays().TakeObject(false, req.tex)) return Invalid("cuTexObjectDestroy: not a texture object of this session");
  return CuStatus(s.driver().cuTexObjectDestroy(req.tex), "cuTexObjectDestroy");
}

Status HandleSurfObjectCreate(Session& s, const proto::SurfObjectCreateReq& req, proto::SurfObjectCreateRep* rep) {
  RGPU_RETURN_IF_ERROR(s.UseContext(req.ctx));
  if (!s.driver().cuSurfObjectCreate) return NotProvided("cuSurfObjectCreate");
  // "CUDA_RESOURCE_DESC::resType must be CU_RESOURCE_TYPE_ARRAY" (cuda.h).
  if (req.res_type != CU_RESOURCE_TYPE_ARRAY) return Invalid("cuSurfObjectCreate: resource must be an array");
  CUDA_RESOURCE_DESC res;
  RGPU_RETURN_IF_ERROR(BuildResource(s, req.res_type, req.res_handle, 0, 0, 0, 0, 0, req.res_flags, &res));
  CUsurfObject o = 0;
  RGPU_RETURN_IF_ERROR(CuStatus(s.driver().cuSurfObjectCreate(&o, &res), "cuSurfObjectCreate"));
  s.arrays().AddObject(true, o, req.ctx);
  rep->surf = o;
  return {};
}

Status HandleSurfObjectDestroy(Session& s, const proto::SurfObjectDestroyReq& req, proto::SurfObjectDestroyRep*) {
  RGPU_RETURN_IF_ERROR(s.UseContext(req.ctx));
  if (!s.driver().cuSurfObjectDestroy) return NotProvided("cuSurfObjectDestroy");
  if (!s.arrays().TakeObject(true, req.surf)) return Invalid("cuSurfObjectDestroy: not a surface object of this session");
  return CuStatus(s.driver().cuSurfObjectDestroy(req.surf), "cuSurfObjectDestroy");
}

}  // namespace rgpu::worker
