// Exported driver functions: copies and memsets in every direction.
//
// Host->device data is copied into the request at the call, so the caller
// may reuse its buffer at once (what CUDA guarantees for pageable memory).
// Device->host data comes back in replies; asynchronous ones are written into
// the caller's buffer by the receiver thread before any later reply is
// handled, so a later synchronisation sees them. Transfers above the frame
// limit are split into kMaxChunk pieces, pipelined on the link.
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>

#include "client/api_common.h"
#include "client/managed_memory.h"
#include "client/registered_memory.h"
#include "client/unsupported.h"
#include "proto/frame.h"

using namespace rgpu::client;
namespace proto = rgpu::proto;

namespace {

constexpr uint64_t kChunk = proto::kMaxChunk;
// Host-to-device data goes in smaller frames: the worker copies a frame to
// the device while the next ones are still on the wire, and only the last
// frame's device copy is not hidden behind the link (16 MiB of 256 MiB:
// ~2 ms at the driver's pageable rate, against ~8 ms for a 64 MiB frame).
constexpr uint64_t kHtoDChunk = 16u << 20;

// Resolves the stream and context a copy runs in.
CUresult Target(ClientState* s, CUstream h, bool per_thread, CtxObj** ctx, uint64_t* stream) {
  if (!WireStream(s, h, per_thread, stream)) return CUDA_ERROR_INVALID_HANDLE;
  *ctx = s->Current();
  if (StreamObj* so = s->FindStream(h)) *ctx = so->ctx;
  return *ctx == nullptr ? CUDA_ERROR_INVALID_CONTEXT : CUDA_SUCCESS;
}

bool IsDevice(ClientState* s, CUdeviceptr p, uint64_t n) { return s->CoveredByAllocations(p, n); }

// GPU work wrote device memory at `dst`: host copies of it (managed memory,
// registered memory's mirrors) may be stale from now on.
void AfterDeviceWrite(CUdeviceptr dst) {
  if (IsManaged(dst) || IsRegisteredMirror(dst)) ManagedAfterDeviceWork();
}

// Why [p, p+n) was refused, once per API name: the driver's answer is a bare
// CUDA_ERROR_INVALID_VALUE, and the program's log rarely says which memory it
// meant. Kept out of line: the success path only pays for IsDevice.
__attribute__((noinline, cold)) void ReportOutside(ClientState* s, const char* api, const char* role,
                                                   CUdeviceptr p, uint64_t n) {
  if (rgpu::CurrentLogLevel() < rgpu::LogLevel::kWarn) return;
  CUdeviceptr base = 0;
  uint64_t size = 0;
  char why[160];
  if (s->FindAllocation(p, &base, &size)) {
    snprintf(why, sizeof why, "it runs %llu bytes past the end of the allocation at 0x%llx of %llu bytes",
             static_cast<unsigned long long>(p + n - (base + size)), static_cast<unsigned long long>(base),
             static_cast<unsigned long long>(size));
  } else if (s->IsHostRange(reinterpret_cast<const void*>(p))) {
    snprintf(why, sizeof why, "it is pinned or registered host memory, not device memory");
  } else {
    snprintf(why, sizeof why, "no allocation of this process contains 0x%llx", static_cast<unsigned long long>(p));
  }
  rgpu::LogOnce(rgpu::LogLevel::kWarn, std::string("outside-allocation:") + api,
                "%s: %s0x%llx + %llu bytes is not inside any allocation made through rgpu (%s): "
                "CUDA_ERROR_INVALID_VALUE (logged once for %s)",
                api, role, static_cast<unsigned long long>(p), static_cast<unsigned long long>(n), why,
                api);
}

// IsDevice for an operand the call requires to be device memory: a refusal
// is logged (ReportOutside); the answer is the same.
bool CheckDevice(ClientState* s, const char* api, const char* role, CUdeviceptr p, uint64_t n) {
  if (IsDevice(s, p, n)) [[likely]]
    return true;
  ReportOutside(s, api, role, p, n);
  return false;
}

// `api` names the exported call, for the log line of a refused operand.
CUresult DtoD(ClientState* s, CtxObj* c, uint64_t stream, bool async, CUdeviceptr dst,
              CUdeviceptr src, uint64_t n, const char* api);

CUresult HtoD(ClientState* s, CtxObj* c, uint64_t stream, bool async, CUdeviceptr dst,
              const void* src, uint64_t n, const char* api) {
  if (n == 0) return CUDA_SUCCESS;
  // A managed source lives on the device too: never read its host shadow
  // here (a fault while the link is locked could not be served).
  if (IsManaged(reinterpret_cast<CUdeviceptr>(src)))
    return DtoD(s, c, stream, async, dst, reinterpret_cast<CUdeviceptr>(src), n, api);
  if (CUresult r = ManagedBeforeDeviceWork(s); r != CUDA_SUCCESS) return r;
  if (src == nullptr || !CheckDevice(s, api, "destination ", dst, n)) return CUDA_ERROR_INVALID_VALUE;
  const auto* p = static_cast<const uint8_t*>(src);
  std::vector<uint8_t> head;
  for (uint64_t off = 0; off < n; off += kHtoDChunk) {
    uint64_t len = std::min(kHtoDChunk, n - off);
    proto::MemcpyHtoDReq req{c->id, stream, static_cast<uint8_t>(async), dst + off,
                             std::span<const uint8_t>(p + off, len)};
    head.clear();
    proto::Writer w(&head);
    proto::EncodeHead(w, req);
    // Written from the caller's buffer: no copy on this side.
    CUresult r = ToCu(s->conn().PostBulk(proto::CallId::kMemcpyHtoD, head, req.data));
    if (r != CUDA_SUCCESS) return r;
  }
  if (IsRegisteredMirror(dst)) ManagedAfterDeviceWork();
  return CUDA_SUCCESS;
}

// Shared by the chunks of one device->host copy: the first failure wins.
struct DtoHState {
  std::atomic<int> error{0};
};

CUresult DtoH(ClientState* s, CtxObj* c, uint64_t stream, bool async, void* dst, CUdeviceptr src,
              uint64_t n, const char* api) {
  if (n == 0) return CUDA_SUCCESS;
  if (IsManaged(reinterpret_cast<CUdeviceptr>(dst)))
    return DtoD(s, c, stream, async, reinterpret_cast<CUdeviceptr>(dst), src, n, api);
  if (CUresult r = ManagedBeforeDeviceWork(s); r != CUDA_SUCCESS) return r;
  if (dst == nullptr || !CheckDevice(s, api, "source ", src, n)) return CUDA_ERROR_INVALID_VALUE;
  auto* out = static_cast<uint8_t*>(dst);
  auto state = std::make_shared<DtoHState>();
  std::vector<uint8_t> payload;
  for (uint64_t off = 0; off < n; off += kChunk) {
    uint64_t len = std::min(kChunk, n - off);
    proto::MemcpyDtoHReq req{c->id, stream, static_cast<uint8_t>(async), src + off, len};
    payload.clear();
    proto::Writer w(&payload);
    proto::Encode(w, req);
    bool last = off + len >= n;
    // The data is received straight into the caller's buffer. An async copy
    // into pageable memory returns only once the copy has completed, as
    // CUDA's API synchronization behavior says (the program may free or
    // reuse the buffer at once); into pinned memory it is asynchronous.
    if (last && (!async || !s->IsHostRange(dst))) {
      int cu = 0;
      rgpu::Status st = s->conn().CallInto(proto::CallId::kMemcpyDtoH, payload, out + off, len, &cu);
      if (!st.ok()) return ToCu(st);
      int earlier = state->error.load();
      if (earlier != 0) return static_cast<CUresult>(earlier);
      if (cu != 0) return static_cast<CUresult>(cu);
      CUresult r = s->TakeAsyncError();
      // A synchronous copy synchronises: registered memory's mirrors too.
      if (r == CUDA_SUCCESS && !async) r = RegisteredAfterSync(s);
      return r;
    }
    auto done = [s, state](int cu) {
      if (cu == 0) return;
      int expected = 0;
      state->error.compare_exchange_strong(expected, cu);
      s->RecordAsyncError(cu, "cuMemcpyDtoH");
    };
    CUresult r = ToCu(s->conn().PostInto(proto::CallId::kMemcpyDtoH, payload, out + off, len, done));
    if (r != CUDA_SUCCESS) return r;
  }
  return CUDA_SUCCESS;
}

CUresult DtoD(ClientState* s, CtxObj* c, uint64_t stream, bool async, CUdeviceptr dst,
              CUdeviceptr src, uint64_t n, const char* api) {
  if (n == 0) return CUDA_SUCCESS;
  if (!CheckDevice(s, api, "destination ", dst, n) || !CheckDevice(s, api, "source ", src, n))
    return CUDA_ERROR_INVALID_VALUE;
  if (CUresult r = ManagedBeforeDeviceWork(s); r != CUDA_SUCCESS) return r;
  CUresult r = Post(s, proto::CallId::kMemcpyDtoD,
                    proto::MemcpyDtoDReq{c->id, stream, static_cast<uint8_t>(async), dst, src, n});
  AfterDeviceWrite(dst);
  return r;
}

// cuMemcpy / cuMemcpyAsync: the direction comes from which side this client
// allocated on the device (unified addressing).
CUresult Unified(CUdeviceptr dst, CUdeviceptr src, size_t n, CUstream h, bool async, bool per_thread,
                 const char* api) {
  RGPU_STATE_OR_RETURN(s);
  CtxObj* c = nullptr;
  uint64_t stream = 0;
  CUresult r = Target(s, h, per_thread, &c, &stream);
  if (r != CUDA_SUCCESS) return r;
  // Probes, not checks: memory outside every allocation is host memory here.
  bool d_dev = IsDevice(s, dst, n), s_dev = IsDevice(s, src, n);
  if (d_dev && s_dev) return DtoD(s, c, stream, async, dst, src, n, api);
  if (d_dev) return HtoD(s, c, stream, async, dst, reinterpret_cast<const void*>(src), n, api);
  if (s_dev) return DtoH(s, c, stream, async, reinterpret_cast<void*>(dst), src, n, api);
  if (n == 0) return CUDA_SUCCESS;
  // Host to host: the driver does it with a CPU copy, ordered on the stream.
  if (async) {
    r = Sync(s, proto::CallId::kStreamSynchronize, proto::StreamSynchronizeReq{c->id, stream});
    if (r != CUDA_SUCCESS) return r;
  }
  memmove(reinterpret_cast<void*>(dst), reinterpret_cast<const void*>(src), n);
  return CUDA_SUCCESS;
}

// True when [p, p + n) is pinned or registered host memory of this process
// (both ends are: ranges never overlap, and a gap between two is not
// something a program could have asked to fill).
bool IsPinnedHost(ClientState* s, CUdeviceptr p, uint64_t n) {
  return s->IsHostRange(reinterpret_cast<void*>(p)) && s->IsHostRange(reinterpret_cast<void*>(p + n - 1));
}

// A memset of pinned host memory. With unified addressing the driver fills
// host memory like device memory (XLA's autotuner does this on a stream);
// here the memory is this process's, so the fill runs on this host when the
// stream reaches it, as a host function would. The synchronous forms are
// synchronous with respect to the host for pinned memory (cuda.h), so they
// wait for it.
CUresult HostMemset(CUdeviceptr dst, size_t pitch, uint32_t value, uint8_t elem, size_t width, size_t height,
                    CUstream h, bool async, bool per_thread) {
  auto fill = [dst, pitch, value, elem, width, height] {
    for (size_t row = 0; row < height; ++row) {
      auto* p = reinterpret_cast<uint8_t*>(dst + row * pitch);
      for (size_t i = 0; i < width; ++i) memcpy(p + i * elem, &value, elem);  // little-endian: low bytes
    }
  };
  CUresult r = EnqueueHostWork(h, fill, per_thread);
  if (r != CUDA_SUCCESS || async) return r;
  return per_thread ? cuStreamSynchronize_ptsz(h) : cuStreamSynchronize(h);
}

CUresult Memset(CUdeviceptr dst, size_t pitch, uint32_t value, uint8_t elem, size_t width,
                size_t height, CUstream h, bool async, bool per_thread, const char* api) {
  RGPU_STATE_OR_RETURN(s);
  CtxObj* c = nullptr;
  uint64_t stream = 0;
  CUresult r = Target(s, h, per_thread, &c, &stream);
  if (r != CUDA_SUCCESS) return r;
  if (width == 0 || height == 0) return CUDA_SUCCESS;
  uint64_t extent = height > 1 ? pitch * (height - 1) + width * elem : width * elem;
  if (height > 1 && pitch < width * elem) return CUDA_ERROR_INVALID_VALUE;
  if (!IsDevice(s, dst, extent)) {
    if (!IsPinnedHost(s, dst, extent)) {
      ReportOutside(s, api, "", dst, extent);
      return CUDA_ERROR_INVALID_VALUE;
    }
    if (dst % elem != 0) return CUDA_ERROR_INVALID_VALUE;
    return HostMemset(dst, pitch, value, elem, width, height, h, async, per_thread);
  }
  if (dst % elem != 0) return CUDA_ERROR_INVALID_VALUE;
  if (CUresult mr = ManagedBeforeDeviceWork(s); mr != CUDA_SUCCESS) return mr;
  r = Post(s, proto::CallId::kMemset,
           proto::MemsetReq{c->id, stream, static_cast<uint8_t>(async), dst, pitch, value, elem,
                            width, height});
  AfterDeviceWrite(dst);
  return r;
}

// One side of a 3D copy, as the driver describes it.
struct Side {
  CUmemorytype type;
  const uint8_t* host;
  CUdeviceptr dev;
  size_t x, y, z, pitch, height;
};

CUresult Copy3D(const CUDA_MEMCPY3D& c, CUstream h, bool async, bool per_thread) {
  RGPU_STATE_OR_RETURN(s);
  CtxObj* ctx = nullptr;
  uint64_t stream = 0;
  CUresult r = Target(s, h, per_thread, &ctx, &stream);
  if (r != CUDA_SUCCESS) return r;
  Side src{c.srcMemoryType, static_cast<const uint8_t*>(c.srcHost), c.srcDevice, c.srcXInBytes,
           c.srcY, c.srcZ, c.srcPitch, c.srcHeight};
  Side dst{c.dstMemoryType, static_cast<uint8_t*>(c.dstHost), c.dstDevice, c.dstXInBytes,
           c.dstY, c.dstZ, c.dstPitch, c.dstHeight};
  // An array side travels as its wire id in `dev` (proto/calls.spec); the
  // box must lie inside the array, checked here so that a posted copy fails
  // at the call, as the driver's does.
  {
    size_t w = c.WidthInBytes, hh = c.Height ? c.Height : 1, dd = c.Depth ? c.Depth : 1;
    for (auto [side, handle] : {std::pair{&src, c.srcArray}, std::pair{&dst, c.dstArray}}) {
      if (side->type != CU_MEMORYTYPE_ARRAY) continue;
      ArrayObj a;
      if (!FindArray(s, handle, &a)) return CUDA_ERROR_INVALID_HANDLE;
      if (side->x > a.row_bytes || w > a.row_bytes - side->x || side->y > a.rows || hh > a.rows - side->y ||
          side->z > a.slices || dd > a.slices - side->z)
        return CUDA_ERROR_INVALID_VALUE;
      side->dev = a.id;
      side->host = nullptr;
      side->pitch = side->height = 0;
    }
  }
  for (Side* side : {&src, &dst}) {
    if (side->type == CU_MEMORYTYPE_ARRAY) continue;
    if (side->type == CU_MEMORYTYPE_HOST && IsManaged(reinterpret_cast<CUdeviceptr>(side->host))) {
      side->type = CU_MEMORYTYPE_DEVICE;  // managed: use the device copy
      side->dev = reinterpret_cast<CUdeviceptr>(side->host);
    }
    if (side->type == CU_MEMORYTYPE_UNIFIED) {
      bool dev = IsDevice(s, side->dev, 1);
      side->type = dev ? CU_MEMORYTYPE_DEVICE : CU_MEMORYTYPE_HOST;
      if (!dev) side->host = reinterpret_cast<const uint8_t*>(side->dev);
    }
    if (side->type != CU_MEMORYTYPE_HOST && side->type != CU_MEMORYTYPE_DEVICE)
      return CUDA_ERROR_INVALID_VALUE;
    if (side->type == CU_MEMORYTYPE_HOST && side->host == nullptr) return CUDA_ERROR_INVALID_VALUE;
    if (side->height == 0) side->height = c.Height;
    if (c.Height > 1 && side->pitch < c.WidthInBytes + side->x) return CUDA_ERROR_INVALID_VALUE;
    if (c.Height <= 1 && side->pitch == 0) side->pitch = c.WidthInBytes + side->x;
  }
  size_t width = c.WidthInBytes, height = c.Height ? c.Height : 1, depth = c.Depth ? c.Depth : 1;
  if (width == 0) return CUDA_SUCCESS;
  auto host_row = [&](const Side& sd, size_t y, size_t z) {
    return sd.host + (sd.z + z) * sd.pitch * sd.height + (sd.y + y) * sd.pitch + sd.x;
  };
  if (src.type == CU_MEMORYTYPE_HOST && dst.type == CU_MEMORYTYPE_HOST) {
    for (size_t z = 0; z < depth; ++z)
      for (size_t y = 0; y < height; ++y)
        memmove(const_cast<uint8_t*>(host_row(dst, y, z)), host_row(src, y, z), width);
    return CUDA_SUCCESS;
  }
  if (CUresult mr = ManagedBeforeDeviceWork(s); mr != CUDA_SUCCESS) return mr;
  if (dst.type == CU_MEMORYTYPE_DEVICE) AfterDeviceWrite(dst.dev);
  size_t rows_per_chunk = std::max<size_t>(1, kChunk / width);
  if (width > kChunk) return ReportUnsupported("cuMemcpy2D/3D rows over 64 MiB");
  std::vector<uint8_t> packed;
  for (size_t z = 0; z < depth; ++z) {
    for (size_t y0 = 0; y0 < height; y0 += rows_per_chunk) {
      size_t rows = std::min(rows_per_chunk, height - y0);
      proto::Memcpy3DReq req{};
      req.ctx = ctx->id;
      req.stream = stream;
      req.is_async = async;
      req.width_bytes = width;
      req.height = rows;
      req.depth = 1;
      req.src_type = src.type;
      req.dst_type = dst.type;
      if (src.type != CU_MEMORYTYPE_HOST) {  // device or array
        req.src_dev = src.dev;
        req.src_x = src.x;
        req.src_y = src.y + y0;
        req.src_z = src.z + z;
        req.src_pitch = src.pitch;
        req.src_height = src.height;
      } else {
        packed.resize(rows * width);
        for (size_t y = 0; y < rows; ++y) memcpy(&packed[y * width], host_row(src, y0 + y, z), width);
        req.data = packed;
      }
      if (dst.type != CU_MEMORYTYPE_HOST) {  // device or array
        req.dst_dev = dst.dev;
        req.dst_x = dst.x;
        req.dst_y = dst.y + y0;
        req.dst_z = dst.z + z;
        req.dst_pitch = dst.pitch;
        req.dst_height = dst.height;
        r = Post(s, proto::CallId::kMemcpy3D, req);
        // Memcpy3D is a sync call on the wire (it may return data); posting
        // with a completion keeps it ordered without waiting here.
      } else {
        proto::Memcpy3DRep rep;
        r = Sync(s, proto::CallId::kMemcpy3D, req, &rep);
        if (r == CUDA_SUCCESS && rep.data.size() != rows * width) r = CUDA_ERROR_UNKNOWN;
        if (r == CUDA_SUCCESS)
          for (size_t y = 0; y < rows; ++y)
            memcpy(const_cast<uint8_t*>(host_row(dst, y0 + y, z)), &rep.data[y * width], width);
      }
      if (r != CUDA_SUCCESS) return r;
    }
  }
  return CUDA_SUCCESS;
}

}  // namespace

namespace rgpu::client {
CUresult Memcpy3DAny(const CUDA_MEMCPY3D& c, CUstream h, bool async, bool per_thread) {
  return Copy3D(c, h, async, per_thread);
}
}  // namespace rgpu::client

namespace {

CUDA_MEMCPY3D From2D(const CUDA_MEMCPY2D& p) {
  CUDA_MEMCPY3D c{};
  c.srcXInBytes = p.srcXInBytes;
  c.srcY = p.srcY;
  c.srcMemoryType = p.srcMemoryType;
  c.srcHost = p.srcHost;
  c.srcDevice = p.srcDevice;
  c.srcArray = p.srcArray;
  c.srcPitch = p.srcPitch;
  c.dstXInBytes = p.dstXInBytes;
  c.dstY = p.dstY;
  c.dstMemoryType = p.dstMemoryType;
  c.dstHost = p.dstHost;
  c.dstDevice = p.dstDevice;
  c.dstArray = p.dstArray;
  c.dstPitch = p.dstPitch;
  c.WidthInBytes = p.WidthInBytes;
  c.Height = p.Height;
  c.Depth = 1;
  c.srcHeight = p.Height;
  c.dstHeight = p.Height;
  return c;
}

CUresult Copy2D(const CUDA_MEMCPY2D* p, CUstream h, bool async, bool per_thread) {
  if (p == nullptr) return CUDA_ERROR_INVALID_VALUE;
  return Copy3D(From2D(*p), h, async, per_thread);
}

#define RGPU_RESOLVE(s, h, pt, c, stream)                      \
  RGPU_STATE_OR_RETURN(s);                                     \
  CtxObj* c = nullptr;                                         \
  uint64_t stream = 0;                                         \
  if (CUresult _r = Target(s, h, pt, &c, &stream); _r != CUDA_SUCCESS) return _r

// cuMemcpyPeer*: with unified addressing a copy between two devices' memory
// is a device-to-device copy; the worker's driver moves it over the peer
// link (or through host memory where there is none), as cuMemcpyDtoD does
// for pointers on two devices. The contexts are checked, not sent. The copy
// runs in the stream's context, else the current one, else the destination's.
CUresult Peer(CUdeviceptr dst, CUcontext dst_ctx, CUdeviceptr src, CUcontext src_ctx, size_t n, CUstream h,
              bool async, bool per_thread) {
  RGPU_STATE_OR_RETURN(s);
  if (!s->IsContext(dst_ctx) || !s->IsContext(src_ctx)) return CUDA_ERROR_INVALID_CONTEXT;
  uint64_t stream = 0;
  if (!WireStream(s, h, per_thread, &stream)) return CUDA_ERROR_INVALID_HANDLE;
  CtxObj* c = s->Current();
  if (StreamObj* so = s->FindStream(h)) c = so->ctx;
  if (c == nullptr) c = reinterpret_cast<CtxObj*>(dst_ctx);
  return DtoD(s, c, stream, async, dst, src, n, async ? "cuMemcpyPeerAsync" : "cuMemcpyPeer");
}

}  // namespace

extern "C" {

CUresult cuMemcpyPeer(CUdeviceptr dst, CUcontext dstCtx, CUdeviceptr src, CUcontext srcCtx, size_t n) {
  return Peer(dst, dstCtx, src, srcCtx, n, nullptr, false, false);
}
CUresult cuMemcpyPeer_ptds(CUdeviceptr dst, CUcontext dstCtx, CUdeviceptr src, CUcontext srcCtx, size_t n) {
  return Peer(dst, dstCtx, src, srcCtx, n, nullptr, false, true);
}
CUresult cuMemcpyPeerAsync(CUdeviceptr dst, CUcontext dstCtx, CUdeviceptr src, CUcontext srcCtx, size_t n,
                           CUstream h) {
  return Peer(dst, dstCtx, src, srcCtx, n, h, true, false);
}
CUresult cuMemcpyPeerAsync_ptsz(CUdeviceptr dst, CUcontext dstCtx, CUdeviceptr src, CUcontext srcCtx, size_t n,
                                CUstream h) {
  return Peer(dst, dstCtx, src, srcCtx, n, h, true, true);
}

// Host <-> device, device <-> device. Synchronous forms run on the legacy
// stream (_ptds: the per-thread one).
#define RGPU_COPY_FAMILY(SUFFIX, PT)                                                                 \
  CUresult cuMemcpyHtoD_v2##SUFFIX(CUdeviceptr dst, const void* src, size_t n) {                     \
    RGPU_RESOLVE(s, nullptr, PT, c, stream);                                                         \
    return HtoD(s, c, stream, false, dst, src, n, "cuMemcpyHtoD_v2" #SUFFIX);                        \
  }                                                                                                  \
  CUresult cuMemcpyDtoH_v2##SUFFIX(void* dst, CUdeviceptr src, size_t n) {                           \
    RGPU_RESOLVE(s, nullptr, PT, c, stream);                                                         \
    return DtoH(s, c, stream, false, dst, src, n, "cuMemcpyDtoH_v2" #SUFFIX);                        \
  }                                                                                                  \
  CUresult cuMemcpyDtoD_v2##SUFFIX(CUdeviceptr dst, CUdeviceptr src, size_t n) {                     \
    RGPU_RESOLVE(s, nullptr, PT, c, stream);                                                         \
    return DtoD(s, c, stream, false, dst, src, n, "cuMemcpyDtoD_v2" #SUFFIX);                        \
  }                                                                                                  \
  CUresult cuMemcpy##SUFFIX(CUdeviceptr dst, CUdeviceptr src, size_t n) {                            \
    return Unified(dst, src, n, nullptr, false, PT, "cuMemcpy" #SUFFIX);                             \
  }                                                                                                  \
  CUresult cuMemcpy2D_v2##SUFFIX(const CUDA_MEMCPY2D* p) { return Copy2D(p, nullptr, false, PT); }   \
  CUresult cuMemcpy2DUnaligned_v2##SUFFIX(const CUDA_MEMCPY2D* p) {                                  \
    return Copy2D(p, nullptr, false, PT);                                                            \
  }                                                                                                  \
  CUresult cuMemcpy3D_v2##SUFFIX(const CUDA_MEMCPY3D* p) {                                           \
    if (p == nullptr) return CUDA_ERROR_INVALID_VALUE;                                               \
    return Copy3D(*p, nullptr, false, PT);                                                           \
  }                                                                                                  \
  CUresult cuMemsetD8_v2##SUFFIX(CUdeviceptr d, unsigned char v, size_t n) {                         \
    return Memset(d, 0, v, 1, n, 1, nullptr, false, PT, "cuMemsetD8_v2" #SUFFIX);                    \
  }                                                                                                  \
  CUresult cuMemsetD16_v2##SUFFIX(CUdeviceptr d, unsigned short v, size_t n) {                       \
    return Memset(d, 0, v, 2, n, 1, nullptr, false, PT, "cuMemsetD16_v2" #SUFFIX);                   \
  }                                                                                                  \
  CUresult cuMemsetD32_v2##SUFFIX(CUdeviceptr d, unsigned int v, size_t n) {                         \
    return Memset(d, 0, v, 4, n, 1, nullptr, false, PT, "cuMemsetD32_v2" #SUFFIX);                   \
  }                                                                                                  \
  CUresult cuMemsetD2D8_v2##SUFFIX(CUdeviceptr d, size_t p, unsigned char v, size_t w, size_t h) {   \
    return Memset(d, p, v, 1, w, h, nullptr, false, PT, "cuMemsetD2D8_v2" #SUFFIX);                  \
  }                                                                                                  \
  CUresult cuMemsetD2D16_v2##SUFFIX(CUdeviceptr d, size_t p, unsigned short v, size_t w, size_t h) { \
    return Memset(d, p, v, 2, w, h, nullptr, false, PT, "cuMemsetD2D16_v2" #SUFFIX);                 \
  }                                                                                                  \
  CUresult cuMemsetD2D32_v2##SUFFIX(CUdeviceptr d, size_t p, unsigned int v, size_t w, size_t h) {   \
    return Memset(d, p, v, 4, w, h, nullptr, false, PT, "cuMemsetD2D32_v2" #SUFFIX);                 \
  }

#define RGPU_ASYNC_FAMILY(SUFFIX, PT)                                                                \
  CUresult cuMemcpyHtoDAsync_v2##SUFFIX(CUdeviceptr dst, const void* src, size_t n, CUstream h) {    \
    RGPU_RESOLVE(s, h, PT, c, stream);                                                               \
    return HtoD(s, c, stream, true, dst, src, n, "cuMemcpyHtoDAsync_v2" #SUFFIX);                    \
  }                                                                                                  \
  CUresult cuMemcpyDtoHAsync_v2##SUFFIX(void* dst, CUdeviceptr src, size_t n, CUstream h) {          \
    RGPU_RESOLVE(s, h, PT, c, stream);                                                               \
    return DtoH(s, c, stream, true, dst, src, n, "cuMemcpyDtoHAsync_v2" #SUFFIX);                    \
  }                                                                                                  \
  CUresult cuMemcpyDtoDAsync_v2##SUFFIX(CUdeviceptr dst, CUdeviceptr src, size_t n, CUstream h) {    \
    RGPU_RESOLVE(s, h, PT, c, stream);                                                               \
    return DtoD(s, c, stream, true, dst, src, n, "cuMemcpyDtoDAsync_v2" #SUFFIX);                    \
  }                                                                                                  \
  CUresult cuMemcpyAsync##SUFFIX(CUdeviceptr dst, CUdeviceptr src, size_t n, CUstream h) {           \
    return Unified(dst, src, n, h, true, PT, "cuMemcpyAsync" #SUFFIX);                               \
  }                                                                                                  \
  CUresult cuMemcpy2DAsync_v2##SUFFIX(const CUDA_MEMCPY2D* p, CUstream h) {                          \
    return Copy2D(p, h, true, PT);                                                                   \
  }                                                                                                  \
  CUresult cuMemcpy3DAsync_v2##SUFFIX(const CUDA_MEMCPY3D* p, CUstream h) {                          \
    if (p == nullptr) return CUDA_ERROR_INVALID_VALUE;                                               \
    return Copy3D(*p, h, true, PT);                                                                  \
  }                                                                                                  \
  CUresult cuMemsetD8Async##SUFFIX(CUdeviceptr d, unsigned char v, size_t n, CUstream h) {           \
    return Memset(d, 0, v, 1, n, 1, h, true, PT, "cuMemsetD8Async" #SUFFIX);                         \
  }                                                                                                  \
  CUresult cuMemsetD16Async##SUFFIX(CUdeviceptr d, unsigned short v, size_t n, CUstream h) {         \
    return Memset(d, 0, v, 2, n, 1, h, true, PT, "cuMemsetD16Async" #SUFFIX);                        \
  }                                                                                                  \
  CUresult cuMemsetD32Async##SUFFIX(CUdeviceptr d, unsigned int v, size_t n, CUstream h) {           \
    return Memset(d, 0, v, 4, n, 1, h, true, PT, "cuMemsetD32Async" #SUFFIX);                        \
  }                                                                                                  \
  CUresult cuMemsetD2D8Async##SUFFIX(CUdeviceptr d, size_t p, unsigned char v, size_t w, size_t hh,  \
                                     CUstream h) {                                                   \
    return Memset(d, p, v, 1, w, hh, h, true, PT, "cuMemsetD2D8Async" #SUFFIX);                      \
  }                                                                                                  \
  CUresult cuMemsetD2D16Async##SUFFIX(CUdeviceptr d, size_t p, unsigned short v, size_t w,           \
                                      size_t hh, CUstream h) {                                       \
    return Memset(d, p, v, 2, w, hh, h, true, PT, "cuMemsetD2D16Async" #SUFFIX);                     \
  }                                                                                                  \
  CUresult cuMemsetD2D32Async##SUFFIX(CUdeviceptr d, size_t p, unsigned int v, size_t w, size_t hh,  \
                                      CUstream h) {                                                  \
    return Memset(d, p, v, 4, w, hh, h, true, PT, "cuMemsetD2D32Async" #SUFFIX);                     \
  }

RGPU_COPY_FAMILY(, false)
RGPU_COPY_FAMILY(_ptds, true)
RGPU_ASYNC_FAMILY(, false)
RGPU_ASYNC_FAMILY(_ptsz, true)

}  // extern "C"
