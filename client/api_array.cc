// Exported driver functions: CUDA arrays, texture objects, surface objects.
//
// Arrays are client-named (client/arrays.h): creating one validates the
// descriptor here and queues ArrayCreate without waiting (an allocation
// failure on the GPU surfaces at the next synchronising call, as the
// driver's asynchronous errors do); descriptor queries are answered here.
// Copies into and out of arrays are 3D copies (client/api_copy.cc).
//
// Texture and surface objects are different: a CUtexObject / CUsurfObject
// is a 64-bit value that kernels receive as an argument and the GPU
// interprets, so the application must hold the worker driver's own value.
// Creating one is therefore a synchronous round trip that returns it, and
// the client hands it out unchanged.
//
// Formats carried: 8/16/32-bit integers, half and float with 1, 2 or 4
// channels. Others (block-compressed, YUV, packed normalized) and mipmapped
// arrays return CUDA_ERROR_NOT_SUPPORTED and say so once in the log.
#include <cstring>

#include "client/api_common.h"
#include "client/unsupported.h"
#include "common/array_format.h"

using namespace rgpu::client;
namespace proto = rgpu::proto;

namespace rgpu::client {
bool FindArray(ClientState* s, CUarray a, ArrayObj* out) {
  std::lock_guard<std::mutex> lock(s->arrays().mu);
  auto it = s->arrays().arrays.find(a);
  if (it == s->arrays().arrays.end()) return false;
  *out = *it->second;
  return true;
}

uint64_t FormatBytes(int format) { return rgpu::ArrayFormatBytes(static_cast<uint32_t>(format)); }
}  // namespace rgpu::client

namespace {

// Texture and surface objects are described from what the client recorded
// at creation: queries cost no round trip. Unknown objects are
// CUDA_ERROR_INVALID_VALUE, as the driver answers.
template <class Out, class Pick>
CUresult DescribeObject(ClientState* s, bool surface, uint64_t id, Out* out, Pick pick) {
  if (out == nullptr) return CUDA_ERROR_INVALID_VALUE;
  std::lock_guard<std::mutex> lock(s->arrays().mu);
  auto& table = surface ? s->arrays().surfaces : s->arrays().textures;
  auto it = table.find(id);
  if (it == table.end()) return CUDA_ERROR_INVALID_VALUE;
  *out = pick(it->second);
  return CUDA_SUCCESS;
}

// Forgets a texture or surface object; `ctx` gets the context it was made in
// (its destruction is then queued there). False if the object is unknown.
bool ForgetObject(ClientState* s, bool surface, uint64_t id, uint64_t* ctx) {
  std::lock_guard<std::mutex> lock(s->arrays().mu);
  auto& table = surface ? s->arrays().surfaces : s->arrays().textures;
  auto it = table.find(id);
  if (it == table.end()) return false;
  *ctx = it->second.ctx_id;
  table.erase(it);
  return true;
}

constexpr unsigned kCarriedFlags = CUDA_ARRAY3D_LAYERED | CUDA_ARRAY3D_SURFACE_LDST | CUDA_ARRAY3D_CUBEMAP |
                                   CUDA_ARRAY3D_TEXTURE_GATHER;

CUresult CreateArray(CUarray* out, const CUDA_ARRAY3D_DESCRIPTOR& d) {
  RGPU_STATE_OR_RETURN(s);
  if (out == nullptr) return CUDA_ERROR_INVALID_VALUE;
  CtxObj* ctx = s->Current();
  if (ctx == nullptr) return CUDA_ERROR_INVALID_CONTEXT;
  uint64_t elem = FormatBytes(d.Format);
  if (elem == 0) return ReportUnsupported("cuArrayCreate with a block-compressed, YUV or packed format");
  if (d.NumChannels != 1 && d.NumChannels != 2 && d.NumChannels != 4) return CUDA_ERROR_INVALID_VALUE;
  if (d.Flags & ~kCarriedFlags) return ReportUnsupported("cuArray3DCreate flags (sparse, deferred, video, depth)");
  bool layered = d.Flags & CUDA_ARRAY3D_LAYERED;
  if (d.Width == 0 || (d.Depth != 0 && d.Height == 0 && !layered) || (layered && d.Depth == 0))
    return CUDA_ERROR_INVALID_VALUE;
  if ((d.Flags & CUDA_ARRAY3D_CUBEMAP) && (d.Width != d.Height || d.Depth == 0 || d.Depth % 6 != 0))
    return CUDA_ERROR_INVALID_VALUE;
  if (d.Width > (1u << 20) || d.Height > (1u << 20) || d.Depth > (1u << 20)) return CUDA_ERROR_INVALID_VALUE;
  auto a = std::make_unique<ArrayObj>();
  a->id = s->NewId();
  a->ctx_id = ctx->id;
  a->desc = d;
  a->row_bytes = d.Width * elem * d.NumChannels;
  a->rows = d.Height ? d.Height : 1;
  a->slices = d.Depth ? d.Depth : 1;
  proto::ArrayCreateReq req{ctx->id, a->id, static_cast<uint32_t>(d.Format), d.NumChannels, d.Width,
                            d.Height, d.Depth, d.Flags};
  if (CUresult r = Post(s, proto::CallId::kArrayCreate, req); r != CUDA_SUCCESS) return r;
  *out = reinterpret_cast<CUarray>(a.get());
  std::lock_guard<std::mutex> lock(s->arrays().mu);
  s->arrays().arrays[a.get()] = std::move(a);
  return CUDA_SUCCESS;
}

// A resource descriptor on the wire: array id, or a device range. A range is
// not checked against allocations: the driver does not either (a texture
// over pitched memory past an allocation is made on an H100, driver 580;
// sampling it reads whatever lies there, in the session's own context).
CUresult WireResource(ClientState* s, const CUDA_RESOURCE_DESC& r, uint64_t* handle, uint32_t* format,
                      uint32_t* channels, uint64_t* width, uint64_t* height, uint64_t* pitch) {
  *format = *channels = 0;
  *width = *height = *pitch = 0;
  if (r.flags != 0) return CUDA_ERROR_INVALID_VALUE;
  switch (r.resType) {
    case CU_RESOURCE_TYPE_ARRAY: {
      ArrayObj a;
      if (!FindArray(s, r.res.array.hArray, &a)) return CUDA_ERROR_INVALID_HANDLE;
      *handle = a.id;
      return CUDA_SUCCESS;
    }
    case CU_RESOURCE_TYPE_LINEAR: {
      const auto& l = r.res.linear;
      if (FormatBytes(l.format) == 0) return ReportUnsupported("texture over a block-compressed or YUV format");
      *handle = l.devPtr, *format = l.format, *channels = l.numChannels, *width = l.sizeInBytes;
      return CUDA_SUCCESS;
    }
    case CU_RESOURCE_TYPE_PITCH2D: {
      const auto& p = r.res.pitch2D;
      uint64_t elem = FormatBytes(p.format) * p.numChannels;
      if (FormatBytes(p.format) == 0) return ReportUnsupported("texture over a block-compressed or YUV format");
      if (p.height == 0 || p.pitchInBytes < p.width * elem) return CUDA_ERROR_INVALID_VALUE;
      *handle = p.devPtr, *format = p.format, *channels = p.numChannels;
      *width = p.width, *height = p.height, *pitch = p.pitchInBytes;
      return CUDA_SUCCESS;
    }
    case CU_RESOURCE_TYPE_MIPMAPPED_ARRAY:
      return ReportUnsupported("texture objects over mipmapped arrays");
    default:
      return CUDA_ERROR_INVALID_VALUE;
  }
}

// cuMemcpy{HtoA,AtoH,DtoA,AtoD,AtoA}: `ByteCount` bytes at byte `offset` of
// the array's first row (they are documented for 1D arrays). A range that
// runs past the first row of a 2D/3D array is refused as not supported.
CUresult ArrayRow(CUarray a, size_t offset, size_t n, CUDA_MEMCPY3D* c, bool dst) {
  RGPU_STATE_OR_RETURN(s);
  ArrayObj obj;
  if (!FindArray(s, a, &obj)) return CUDA_ERROR_INVALID_HANDLE;
  if (offset > obj.row_bytes || n > obj.row_bytes - offset) {
    if (obj.rows > 1 || obj.slices > 1) return ReportUnsupported("cuMemcpy*A* across rows of a 2D/3D array");
    return CUDA_ERROR_INVALID_VALUE;
  }
  if (dst) {
    c->dstMemoryType = CU_MEMORYTYPE_ARRAY, c->dstArray = a, c->dstXInBytes = offset;
  } else {
    c->srcMemoryType = CU_MEMORYTYPE_ARRAY, c->srcArray = a, c->srcXInBytes = offset;
  }
  c->WidthInBytes = n;
  c->Height = 1;
  c->Depth = 1;
  return CUDA_SUCCESS;
}

CUresult ObjectContext(ClientState* s) { return s->Current() == nullptr ? CUDA_ERROR_INVALID_CONTEXT : CUDA_SUCCESS; }

}  // namespace

extern "C" {

CUresult cuArrayCreate_v2(CUarray* pHandle, const CUDA_ARRAY_DESCRIPTOR* p) {
  if (p == nullptr) return CUDA_ERROR_INVALID_VALUE;
  CUDA_ARRAY3D_DESCRIPTOR d{};
  d.Width = p->Width;
  d.Height = p->Height;
  d.Format = p->Format;
  d.NumChannels = p->NumChannels;
  return CreateArray(pHandle, d);
}

CUresult cuArray3DCreate_v2(CUarray* pHandle, const CUDA_ARRAY3D_DESCRIPTOR* p) {
  if (p == nullptr) return CUDA_ERROR_INVALID_VALUE;
  return CreateArray(pHandle, *p);
}

CUresult cuArrayDestroy(CUarray hArray) {
  RGPU_STATE_OR_RETURN(s);
  std::unique_ptr<ArrayObj> a;
  {
    std::lock_guard<std::mutex> lock(s->arrays().mu);
    auto it = s->arrays().arrays.find(hArray);
    if (it == s->arrays().arrays.end()) return CUDA_ERROR_INVALID_HANDLE;
    a = std::move(it->second);
    s->arrays().arrays.erase(it);
  }
  return Post(s, proto::CallId::kArrayDestroy, proto::ArrayDestroyReq{a->ctx_id, a->id});
}

CUresult cuArrayGetDescriptor_v2(CUDA_ARRAY_DESCRIPTOR* out, CUarray hArray) {
  RGPU_STATE_OR_RETURN(s);
  if (out == nullptr) return CUDA_ERROR_INVALID_VALUE;
  ArrayObj a;
  if (!FindArray(s, hArray, &a)) return CUDA_ERROR_INVALID_HANDLE;
  out->Width = a.desc.Width;
  out->Height = a.desc.Height;
  out->Format = a.desc.Format;
  out->NumChannels = a.desc.NumChannels;
  return CUDA_SUCCESS;
}

CUresult cuArray3DGetDescriptor_v2(CUDA_ARRAY3D_DESCRIPTOR* out, CUarray hArray) {
  RGPU_STATE_OR_RETURN(s);
  if (out == nullptr) return CUDA_ERROR_INVALID_VALUE;
  ArrayObj a;
  if (!FindArray(s, hArray, &a)) return CUDA_ERROR_INVALID_HANDLE;
  *out = a.desc;
  return CUDA_SUCCESS;
}

#define RGPU_ARRAY_COPY_FAMILY(SUFFIX, PT)                                                            \
  CUresult cuMemcpyHtoA_v2##SUFFIX(CUarray dst, size_t off, const void* src, size_t n) {              \
    CUDA_MEMCPY3D c{};                                                                                \
    if (CUresult r = ArrayRow(dst, off, n, &c, true); r != CUDA_SUCCESS) return r;                    \
    c.srcMemoryType = CU_MEMORYTYPE_HOST, c.srcHost = src, c.srcPitch = n;                            \
    return Memcpy3DAny(c, nullptr, false, PT);                                                             \
  }                                                                                                   \
  CUresult cuMemcpyAtoH_v2##SUFFIX(void* dst, CUarray src, size_t off, size_t n) {                    \
    CUDA_MEMCPY3D c{};                                                                                \
    if (CUresult r = ArrayRow(src, off, n, &c, false); r != CUDA_SUCCESS) return r;                   \
    c.dstMemoryType = CU_MEMORYTYPE_HOST, c.dstHost = dst, c.dstPitch = n;                            \
    return Memcpy3DAny(c, nullptr, false, PT);                                                             \
  }                                                                                                   \
  CUresult cuMemcpyDtoA_v2##SUFFIX(CUarray dst, size_t off, CUdeviceptr src, size_t n) {              \
    CUDA_MEMCPY3D c{};                                                                                \
    if (CUresult r = ArrayRow(dst, off, n, &c, true); r != CUDA_SUCCESS) return r;                    \
    c.srcMemoryType = CU_MEMORYTYPE_DEVICE, c.srcDevice = src, c.srcPitch = n;                        \
    return Memcpy3DAny(c, nullptr, false, PT);                                                             \
  }                                                                                                   \
  CUresult cuMemcpyAtoD_v2##SUFFIX(CUdeviceptr dst, CUarray src, size_t off, size_t n) {              \
    CUDA_MEMCPY3D c{};                                                                                \
    if (CUresult r = ArrayRow(src, off, n, &c, false); r != CUDA_SUCCESS) return r;                   \
    c.dstMemoryType = CU_MEMORYTYPE_DEVICE, c.dstDevice = dst, c.dstPitch = n;                        \
    return Memcpy3DAny(c, nullptr, false, PT);                                                             \
  }                                                                                                   \
  CUresult cuMemcpyAtoA_v2##SUFFIX(CUarray dst, size_t doff, CUarray src, size_t soff, size_t n) {    \
    CUDA_MEMCPY3D c{};                                                                                \
    if (CUresult r = ArrayRow(src, soff, n, &c, false); r != CUDA_SUCCESS) return r;                  \
    if (CUresult r = ArrayRow(dst, doff, n, &c, true); r != CUDA_SUCCESS) return r;                   \
    return Memcpy3DAny(c, nullptr, false, PT);                                                             \
  }

#define RGPU_ARRAY_ASYNC_FAMILY(SUFFIX, PT)                                                           \
  CUresult cuMemcpyHtoAAsync_v2##SUFFIX(CUarray dst, size_t off, const void* src, size_t n,           \
                                        CUstream h) {                                                 \
    CUDA_MEMCPY3D c{};                                                                                \
    if (CUresult r = ArrayRow(dst, off, n, &c, true); r != CUDA_SUCCESS) return r;                    \
    c.srcMemoryType = CU_MEMORYTYPE_HOST, c.srcHost = src, c.srcPitch = n;                            \
    return Memcpy3DAny(c, h, true, PT);                                                                    \
  }                                                                                                   \
  CUresult cuMemcpyAtoHAsync_v2##SUFFIX(void* dst, CUarray src, size_t off, size_t n, CUstream h) {   \
    CUDA_MEMCPY3D c{};                                                                                \
    if (CUresult r = ArrayRow(src, off, n, &c, false); r != CUDA_SUCCESS) return r;                   \
    c.dstMemoryType = CU_MEMORYTYPE_HOST, c.dstHost = dst, c.dstPitch = n;                            \
    return Memcpy3DAny(c, h, true, PT);                                                                    \
  }

RGPU_ARRAY_COPY_FAMILY(, false)
RGPU_ARRAY_COPY_FAMILY(_ptds, true)
RGPU_ARRAY_ASYNC_FAMILY(, false)
RGPU_ARRAY_ASYNC_FAMILY(_ptsz, true)

CUresult cuTexObjectCreate(CUtexObject* out, const CUDA_RESOURCE_DESC* res, const CUDA_TEXTURE_DESC* tex,
                           const CUDA_RESOURCE_VIEW_DESC* view) {
  RGPU_STATE_OR_RETURN(s);
  if (out == nullptr || res == nullptr || tex == nullptr) return CUDA_ERROR_INVALID_VALUE;
  if (CUresult r = ObjectContext(s); r != CUDA_SUCCESS) return r;
  proto::TexObjectCreateReq req{};
  req.ctx = s->Current()->id;
  req.res_type = res->resType;
  if (CUresult r = WireResource(s, *res, &req.res_handle, &req.res_format, &req.res_channels, &req.res_width,
                                &req.res_height, &req.res_pitch);
      r != CUDA_SUCCESS)
    return r;
  req.res_flags = res->flags;
  req.addr0 = tex->addressMode[0];
  req.addr1 = tex->addressMode[1];
  req.addr2 = tex->addressMode[2];
  req.filter = tex->filterMode;
  req.tex_flags = tex->flags;
  req.max_aniso = tex->maxAnisotropy;
  req.mip_filter = tex->mipmapFilterMode;
  req.mip_bias = tex->mipmapLevelBias;
  req.min_mip_clamp = tex->minMipmapLevelClamp;
  req.max_mip_clamp = tex->maxMipmapLevelClamp;
  req.border0 = tex->borderColor[0];
  req.border1 = tex->borderColor[1];
  req.border2 = tex->borderColor[2];
  req.border3 = tex->borderColor[3];
  if (view != nullptr) {
    req.has_view = 1;
    req.view_format = view->format;
    req.view_width = view->width;
    req.view_height = view->height;
    req.view_depth = view->depth;
    req.view_first_mip = view->firstMipmapLevel;
    req.view_last_mip = view->lastMipmapLevel;
    req.view_first_layer = view->firstLayer;
    req.view_last_layer = view->lastLayer;
  }
  proto::TexObjectCreateRep rep;
  if (CUresult r = Sync(s, proto::CallId::kTexObjectCreate, req, &rep); r != CUDA_SUCCESS) return r;
  TexObj t;
  t.ctx_id = req.ctx;
  t.res = *res;
  t.tex = *tex;
  t.has_view = view != nullptr;
  if (view != nullptr) t.view = *view;
  std::lock_guard<std::mutex> lock(s->arrays().mu);
  s->arrays().textures[rep.tex] = t;
  *out = rep.tex;
  return CUDA_SUCCESS;
}

CUresult cuTexObjectDestroy(CUtexObject t) {
  RGPU_STATE_OR_RETURN(s);
  uint64_t ctx = 0;
  if (!ForgetObject(s, /*surface=*/false, t, &ctx)) return CUDA_ERROR_INVALID_VALUE;
  return Post(s, proto::CallId::kTexObjectDestroy, proto::TexObjectDestroyReq{ctx, t});
}

CUresult cuTexObjectGetResourceDesc(CUDA_RESOURCE_DESC* out, CUtexObject t) {
  RGPU_STATE_OR_RETURN(s);
  return DescribeObject(s, /*surface=*/false, t, out, [](const TexObj& o) { return o.res; });
}

CUresult cuTexObjectGetTextureDesc(CUDA_TEXTURE_DESC* out, CUtexObject t) {
  RGPU_STATE_OR_RETURN(s);
  return DescribeObject(s, /*surface=*/false, t, out, [](const TexObj& o) { return o.tex; });
}

// Without a view at creation there is none to describe: the descriptor
// comes back zeroed (format CU_RES_VIEW_FORMAT_NONE).
CUresult cuTexObjectGetResourceViewDesc(CUDA_RESOURCE_VIEW_DESC* out, CUtexObject t) {
  RGPU_STATE_OR_RETURN(s);
  return DescribeObject(s, /*surface=*/false, t, out,
                        [](const TexObj& o) { return o.has_view ? o.view : CUDA_RESOURCE_VIEW_DESC{}; });
}

CUresult cuSurfObjectCreate(CUsurfObject* out, const CUDA_RESOURCE_DESC* res) {
  RGPU_STATE_OR_RETURN(s);
  if (out == nullptr || res == nullptr) return CUDA_ERROR_INVALID_VALUE;
  if (CUresult r = ObjectContext(s); r != CUDA_SUCCESS) return r;
  // "CUDA_RESOURCE_DESC::resType must be CU_RESOURCE_TYPE_ARRAY" (cuda.h).
  if (res->resType != CU_RESOURCE_TYPE_ARRAY) return CUDA_ERROR_INVALID_VALUE;
  proto::SurfObjectCreateReq req{};
  req.ctx = s->Current()->id;
  req.res_type = res->resType;
  uint32_t f = 0, ch = 0;
  uint64_t w = 0, h = 0, p = 0;
  if (CUresult r = WireResource(s, *res, &req.res_handle, &f, &ch, &w, &h, &p); r != CUDA_SUCCESS) return r;
  req.res_flags = res->flags;
  proto::SurfObjectCreateRep rep;
  if (CUresult r = Sync(s, proto::CallId::kSurfObjectCreate, req, &rep); r != CUDA_SUCCESS) return r;
  std::lock_guard<std::mutex> lock(s->arrays().mu);
  TexObj so;
  so.ctx_id = req.ctx;
  so.res = *res;
  s->arrays().surfaces[rep.surf] = so;
  *out = rep.surf;
  return CUDA_SUCCESS;
}

CUresult cuSurfObjectDestroy(CUsurfObject o) {
  RGPU_STATE_OR_RETURN(s);
  uint64_t ctx = 0;
  if (!ForgetObject(s, /*surface=*/true, o, &ctx)) return CUDA_ERROR_INVALID_VALUE;
  return Post(s, proto::CallId::kSurfObjectDestroy, proto::SurfObjectDestroyReq{ctx, o});
}

CUresult cuSurfObjectGetResourceDesc(CUDA_RESOURCE_DESC* out, CUsurfObject o) {
  RGPU_STATE_OR_RETURN(s);
  return DescribeObject(s, /*surface=*/true, o, out, [](const TexObj& so) { return so.res; });
}

}  // extern "C"
