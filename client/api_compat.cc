// Exported driver functions that real programs reach and that fit no other
// file ("compat"): cuFuncSetSharedMemConfig (deprecated, but cudart's
// cudaFuncSetSharedMemConfig still calls it), cuDeviceGetTexture1DLinearMaxWidth,
// cuCtxRecordEvent / cuCtxWaitEvent and cuMemcpy3DPeer[Async].
//
// cuMemcpy3DPeer is a 3D copy whose sides name their contexts: under unified
// addressing a device pointer already says which GPU it lies on, so it runs
// as cuMemcpy3D (array and host sides included) after the contexts are
// checked, as cuMemcpyPeer runs as a device-to-device copy (api_copy.cc).
// Setting and recording are queued (DESIGN.md rule 2); only the texture
// width query, whose answer is the driver's, waits for a reply.
#include "client/api_common.h"
#include "client/unsupported.h"

using namespace rgpu::client;
namespace proto = rgpu::proto;

extern "C" {
// cuda.h declares the per-thread forms of these only when a program asks for
// per-thread streams; the driver exports them all the same.
CUresult cuMemcpy3D_v2_ptds(const CUDA_MEMCPY3D* pCopy);
CUresult cuMemcpy3DAsync_v2_ptsz(const CUDA_MEMCPY3D* pCopy, CUstream hStream);
}

namespace {

// The context an event-on-context call names (null: the current one).
CUresult CtxOf(ClientState* s, CUcontext h, CtxObj** out) {
  if (h == nullptr) {
    *out = s->Current();
    return *out == nullptr ? CUDA_ERROR_INVALID_CONTEXT : CUDA_SUCCESS;
  }
  if (!s->IsContext(h)) return CUDA_ERROR_INVALID_CONTEXT;
  *out = reinterpret_cast<CtxObj*>(h);
  return CUDA_SUCCESS;
}

// cuCtxRecordEvent / cuCtxWaitEvent: the event must be the context's, and
// neither may be called while one of the context's streams captures
// (cuda.h: CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED).
CUresult CtxEventCall(CUcontext hCtx, CUevent hEvent, bool record) {
  RGPU_STATE_OR_RETURN(s);
  CtxObj* c = nullptr;
  if (CUresult r = CtxOf(s, hCtx, &c); r != CUDA_SUCCESS) return r;
  EventObj* ev = s->FindEvent(hEvent);
  if (ev == nullptr || ev->ctx != c) return CUDA_ERROR_INVALID_HANDLE;
  if (s->ContextCaptures(c)) return CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED;
  if (record) {
    ev->capture = Capture{};  // recorded outside any capture
    return Post(s, proto::CallId::kCtxRecordEvent, proto::CtxRecordEventReq{c->id, ev->id});
  }
  return Post(s, proto::CallId::kCtxWaitEvent, proto::CtxWaitEventReq{c->id, ev->id});
}

CUresult Peer3D(const CUDA_MEMCPY3D_PEER* p, CUstream h, bool async, bool pt) {
  if (p == nullptr) return CUDA_ERROR_INVALID_VALUE;
  RGPU_STATE_OR_RETURN(s);
  // A side in device memory must name a context of this client; host and
  // array sides may leave it null.
  for (auto [type, ctx] : {std::pair{p->srcMemoryType, p->srcContext}, std::pair{p->dstMemoryType, p->dstContext}})
    if ((ctx != nullptr || type == CU_MEMORYTYPE_DEVICE) && !s->IsContext(ctx)) return CUDA_ERROR_INVALID_CONTEXT;
  CUDA_MEMCPY3D c{};
  c.srcXInBytes = p->srcXInBytes;
  c.srcY = p->srcY;
  c.srcZ = p->srcZ;
  c.srcLOD = p->srcLOD;
  c.srcMemoryType = p->srcMemoryType;
  c.srcHost = p->srcHost;
  c.srcDevice = p->srcDevice;
  c.srcArray = p->srcArray;
  c.srcPitch = p->srcPitch;
  c.srcHeight = p->srcHeight;
  c.dstXInBytes = p->dstXInBytes;
  c.dstY = p->dstY;
  c.dstZ = p->dstZ;
  c.dstLOD = p->dstLOD;
  c.dstMemoryType = p->dstMemoryType;
  c.dstHost = p->dstHost;
  c.dstDevice = p->dstDevice;
  c.dstArray = p->dstArray;
  c.dstPitch = p->dstPitch;
  c.dstHeight = p->dstHeight;
  c.WidthInBytes = p->WidthInBytes;
  c.Height = p->Height;
  c.Depth = p->Depth;
  if (async) return pt ? cuMemcpy3DAsync_v2_ptsz(&c, h) : cuMemcpy3DAsync_v2(&c, h);
  return pt ? cuMemcpy3D_v2_ptds(&c) : cuMemcpy3D_v2(&c);
}

}  // namespace

extern "C" {

// The bank size is a hint the driver has ignored since Volta, but it still
// checks the function and the value: both are checked here and on the worker.
CUresult cuFuncSetSharedMemConfig(CUfunction hfunc, CUsharedconfig config) {
  RGPU_LOG_DEBUG("cuFuncSetSharedMemConfig");
  RGPU_STATE_OR_RETURN(s);
  FuncObj* f = s->FindFunc(hfunc);
  if (f == nullptr) return CUDA_ERROR_INVALID_HANDLE;
  auto v = static_cast<uint32_t>(config);
  if (v > CU_SHARED_MEM_CONFIG_EIGHT_BYTE_BANK_SIZE) return CUDA_ERROR_INVALID_VALUE;
  CtxObj* c = s->Current() ? s->Current() : f->module->ctx;
  if (c == nullptr) return CUDA_ERROR_INVALID_CONTEXT;
  return Post(s, proto::CallId::kFuncSetSharedMemConfig, proto::FuncSetSharedMemConfigReq{c->id, f->id, v});
}

CUresult cuDeviceGetTexture1DLinearMaxWidth(size_t* maxWidthInElements, CUarray_format format, unsigned numChannels,
                                            CUdevice dev) {
  RGPU_LOG_DEBUG("cuDeviceGetTexture1DLinearMaxWidth");
  if (maxWidthInElements == nullptr) return CUDA_ERROR_INVALID_VALUE;
  RGPU_STATE_OR_RETURN(s);
  if (dev < 0 || dev >= s->device_count()) return CUDA_ERROR_INVALID_DEVICE;
  proto::DeviceGetTexture1DLinearMaxWidthRep rep;
  CUresult r = Sync(s, proto::CallId::kDeviceGetTexture1DLinearMaxWidth,
                    proto::DeviceGetTexture1DLinearMaxWidthReq{s->RemoteOrdinal(dev), static_cast<uint32_t>(format),
                                                               numChannels},
                    &rep);
  if (r == CUDA_SUCCESS) *maxWidthInElements = rep.width;
  return r;
}

CUresult cuCtxRecordEvent(CUcontext hCtx, CUevent hEvent) { return CtxEventCall(hCtx, hEvent, true); }
CUresult cuCtxWaitEvent(CUcontext hCtx, CUevent hEvent) { return CtxEventCall(hCtx, hEvent, false); }

CUresult cuMemcpy3DPeer(const CUDA_MEMCPY3D_PEER* p) { return Peer3D(p, nullptr, false, false); }
__attribute__((visibility("default"))) CUresult cuMemcpy3DPeer_ptds(const CUDA_MEMCPY3D_PEER* p) {
  return Peer3D(p, nullptr, false, true);
}
CUresult cuMemcpy3DPeerAsync(const CUDA_MEMCPY3D_PEER* p, CUstream h) { return Peer3D(p, h, true, false); }
__attribute__((visibility("default"))) CUresult cuMemcpy3DPeerAsync_ptsz(const CUDA_MEMCPY3D_PEER* p, CUstream h) {
  return Peer3D(p, h, true, true);
}

}  // extern "C"
