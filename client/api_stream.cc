// Exported driver functions: streams and events. Creation is asynchronous:
// the client names the handle, so no round trip is needed (DESIGN.md rule 4).
#include <functional>

#include "client/api_common.h"
#include "client/unsupported.h"

using namespace rgpu::client;
namespace proto = rgpu::proto;

namespace rgpu::client {
bool WireStream(ClientState* s, CUstream h, bool per_thread, uint64_t* id) {
  if (h == nullptr) {
    *id = per_thread ? kWireStreamPerThread : kWireStreamLegacyDefault;
    return true;
  }
  if (h == CU_STREAM_LEGACY) {
    *id = kWireStreamLegacy;
    return true;
  }
  if (h == CU_STREAM_PER_THREAD) {
    *id = kWireStreamPerThread;
    return true;
  }
  StreamObj* so = s->FindStream(h);
  if (so == nullptr) return false;
  *id = so->id;
  return true;
}
}  // namespace rgpu::client

namespace {
// The context a stream belongs to (the current one for the special streams).
CtxObj* StreamCtx(ClientState* s, CUstream h) {
  if (StreamObj* so = s->FindStream(h)) return so->ctx;
  return s->Current();
}

#define RGPU_STREAM(s, h, pt, c, id)                                   \
  RGPU_STATE_OR_RETURN(s);                                             \
  uint64_t id = 0;                                                     \
  if (!WireStream(s, h, pt, &id)) return CUDA_ERROR_INVALID_HANDLE;    \
  CtxObj* c = StreamCtx(s, h);                                         \
  if (c == nullptr) return CUDA_ERROR_INVALID_CONTEXT

CUresult StreamSynchronize(CUstream h, bool pt) {
  RGPU_STREAM(s, h, pt, c, id);
  return AfterSync(s, Sync(s, proto::CallId::kStreamSynchronize, proto::StreamSynchronizeReq{c->id, id}));
}
CUresult StreamQuery(CUstream h, bool pt) {
  RGPU_STREAM(s, h, pt, c, id);
  return AfterSync(s, Sync(s, proto::CallId::kStreamQuery, proto::StreamQueryReq{c->id, id}));
}
CUresult StreamWaitEvent(CUstream h, CUevent e, unsigned flags, bool pt) {
  RGPU_STREAM(s, h, pt, c, id);
  EventObj* ev = s->FindEvent(e);
  if (ev == nullptr) return CUDA_ERROR_INVALID_HANDLE;
  // Waiting on an event recorded inside a capture joins the waiter to it.
  if (ev->capture.id != 0 && s->GetCapture(ev->capture.origin).id == ev->capture.id)
    s->SetCapture(id, ev->capture);
  return Post(s, proto::CallId::kStreamWaitEvent, proto::StreamWaitEventReq{c->id, id, ev->id, flags});
}
CUresult StreamGetPriority(CUstream h, int* priority, bool pt) {
  if (priority == nullptr) return CUDA_ERROR_INVALID_VALUE;
  RGPU_STREAM(s, h, pt, c, id);
  StreamObj* so = s->FindStream(h);
  *priority = so ? so->priority : 0;
  return CUDA_SUCCESS;
}
CUresult StreamGetFlags(CUstream h, unsigned* flags, bool pt) {
  if (flags == nullptr) return CUDA_ERROR_INVALID_VALUE;
  RGPU_STREAM(s, h, pt, c, id);
  StreamObj* so = s->FindStream(h);
  *flags = so ? so->flags : 0;
  return CUDA_SUCCESS;
}
CUresult StreamGetCtx(CUstream h, CUcontext* pctx, bool pt) {
  if (pctx == nullptr) return CUDA_ERROR_INVALID_VALUE;
  RGPU_STREAM(s, h, pt, c, id);
  *pctx = reinterpret_cast<CUcontext>(c);
  return CUDA_SUCCESS;
}
// Green contexts are not offered (cuGreenCtxCreate refuses), so every stream
// belongs to a regular context and the green one is null, as the driver
// answers for such a stream.
CUresult StreamGetCtxV2(CUstream h, CUcontext* c, CUgreenCtx* green, bool pt) {
  if (green == nullptr) return CUDA_ERROR_INVALID_VALUE;
  CUresult r = StreamGetCtx(h, c, pt);
  if (r == CUDA_SUCCESS) *green = nullptr;
  return r;
}
CUresult StreamGetId(CUstream h, unsigned long long* out, bool pt) {
  if (out == nullptr) return CUDA_ERROR_INVALID_VALUE;
  RGPU_STREAM(s, h, pt, c, id);
  // Stream 0 outside the per-thread entry points is the legacy stream: one
  // stream, one id (the wire keeps the two handles apart; the driver does not).
  *out = id == kWireStreamLegacyDefault ? kWireStreamLegacy : id;
  return CUDA_SUCCESS;
}
CUresult StreamGetDevice(CUstream h, CUdevice* dev, bool pt) {
  if (dev == nullptr) return CUDA_ERROR_INVALID_VALUE;
  RGPU_STREAM(s, h, pt, c, id);
  *dev = c->device;
  return CUDA_SUCCESS;
}
CUresult StreamIsCapturing(CUstream h, CUstreamCaptureStatus* st, bool pt) {
  if (st == nullptr) return CUDA_ERROR_INVALID_VALUE;
  // Hot: PyTorch asks before most operations. One lookup, no capture open
  // means no lookup of the capture table.
  RGPU_STATE_OR_RETURN(s);
  uint64_t id = 0;
  if (!WireStream(s, h, pt, &id)) return CUDA_ERROR_INVALID_HANDLE;
  if (!s->any_capture()) {
    if (s->Current() == nullptr && h == nullptr) return CUDA_ERROR_INVALID_CONTEXT;
    *st = CU_STREAM_CAPTURE_STATUS_NONE;
    return CUDA_SUCCESS;
  }
  CtxObj* c = StreamCtx(s, h);
  if (c == nullptr) return CUDA_ERROR_INVALID_CONTEXT;
  *st = s->GetCapture(id).id != 0 ? CU_STREAM_CAPTURE_STATUS_ACTIVE : CU_STREAM_CAPTURE_STATUS_NONE;
  return CUDA_SUCCESS;
}
CUresult HostFunc(CUstream h, std::function<void()> fn, bool pt) {
  RGPU_STREAM(s, h, pt, c, id);
  // In a capture the function becomes a graph node that runs at every launch
  // of the graph: it stays registered on both sides.
  bool keep = s->any_capture() && s->GetCapture(id).id != 0;
  uint64_t cb = s->host_funcs().Register(std::move(fn), keep);
  CUresult r = keep ? Post(s, proto::CallId::kLaunchHostFuncKept, proto::LaunchHostFuncKeptReq{c->id, id, cb})
                    : Post(s, proto::CallId::kLaunchHostFunc, proto::LaunchHostFuncReq{c->id, id, cb});
  if (r != CUDA_SUCCESS) s->host_funcs().Forget(cb);
  return r;
}

CUresult EventRecord(CUevent e, CUstream h, unsigned flags, bool pt) {
  RGPU_STATE_OR_RETURN(s);
  EventObj* ev = s->FindEvent(e);
  if (ev == nullptr) return CUDA_ERROR_INVALID_HANDLE;
  uint64_t id = 0;
  if (!WireStream(s, h, pt, &id)) return CUDA_ERROR_INVALID_HANDLE;
  ev->capture = s->GetCapture(id);
  return Post(s, proto::CallId::kEventRecord, proto::EventRecordReq{ev->ctx->id, ev->id, id, flags});
}
}  // namespace

namespace rgpu::client {
CUresult EnqueueHostWork(CUstream h, std::function<void()> fn, bool per_thread) {
  return HostFunc(h, std::move(fn), per_thread);
}
}  // namespace rgpu::client

extern "C" {

CUresult cuStreamCreateWithPriority(CUstream* ph, unsigned int flags, int priority) {
  if (ph == nullptr) return CUDA_ERROR_INVALID_VALUE;
  RGPU_STATE_OR_RETURN(s);
  RGPU_CTX_OR_RETURN(s, c);
  if (flags & ~CU_STREAM_NON_BLOCKING) return CUDA_ERROR_INVALID_VALUE;
  // Clamp like the driver does to [greatest, least].
  int least = 0, greatest = 0;
  cuCtxGetStreamPriorityRange(&least, &greatest);
  if (priority > least) priority = least;
  if (priority < greatest) priority = greatest;
  auto so = std::make_unique<StreamObj>();
  so->id = s->NewId();
  so->ctx = c;
  so->flags = flags;
  so->priority = priority;
  StreamObj* raw = s->AddStream(std::move(so));
  CUresult r = Post(s, proto::CallId::kStreamCreate, proto::StreamCreateReq{c->id, raw->id, flags, priority});
  if (r != CUDA_SUCCESS) {
    s->DropStream(raw);
    return r;
  }
  *ph = reinterpret_cast<CUstream>(raw);
  return CUDA_SUCCESS;
}

CUresult cuStreamCreate(CUstream* ph, unsigned int flags) { return cuStreamCreateWithPriority(ph, flags, 0); }

CUresult cuStreamDestroy_v2(CUstream h) {
  RGPU_STATE_OR_RETURN(s);
  StreamObj* so = s->FindStream(h);
  if (so == nullptr) return CUDA_ERROR_INVALID_HANDLE;
  CUresult r = Post(s, proto::CallId::kStreamDestroy, proto::StreamDestroyReq{so->ctx->id, so->id});
  s->DropStream(so);
  return r;
}
CUresult cuStreamDestroy(CUstream h) { return cuStreamDestroy_v2(h); }


CUresult cuStreamSynchronize(CUstream h) { return StreamSynchronize(h, false); }
CUresult cuStreamSynchronize_ptsz(CUstream h) { return StreamSynchronize(h, true); }
CUresult cuStreamQuery(CUstream h) { return StreamQuery(h, false); }
CUresult cuStreamQuery_ptsz(CUstream h) { return StreamQuery(h, true); }
CUresult cuStreamWaitEvent(CUstream h, CUevent e, unsigned int f) { return StreamWaitEvent(h, e, f, false); }
CUresult cuStreamWaitEvent_ptsz(CUstream h, CUevent e, unsigned int f) { return StreamWaitEvent(h, e, f, true); }
CUresult cuStreamGetPriority(CUstream h, int* p) { return StreamGetPriority(h, p, false); }
CUresult cuStreamGetPriority_ptsz(CUstream h, int* p) { return StreamGetPriority(h, p, true); }
CUresult cuStreamGetFlags(CUstream h, unsigned int* f) { return StreamGetFlags(h, f, false); }
CUresult cuStreamGetFlags_ptsz(CUstream h, unsigned int* f) { return StreamGetFlags(h, f, true); }
CUresult cuStreamGetCtx(CUstream h, CUcontext* c) { return StreamGetCtx(h, c, false); }
CUresult cuStreamGetCtx_ptsz(CUstream h, CUcontext* c) { return StreamGetCtx(h, c, true); }
CUresult cuStreamGetCtx_v2(CUstream h, CUcontext* c, CUgreenCtx* g) { return StreamGetCtxV2(h, c, g, false); }
CUresult cuStreamGetCtx_v2_ptsz(CUstream h, CUcontext* c, CUgreenCtx* g) {
  return StreamGetCtxV2(h, c, g, true);
}
CUresult cuStreamGetId(CUstream h, unsigned long long* id) { return StreamGetId(h, id, false); }
CUresult cuStreamGetId_ptsz(CUstream h, unsigned long long* id) { return StreamGetId(h, id, true); }
CUresult cuStreamGetDevice(CUstream h, CUdevice* d) { return StreamGetDevice(h, d, false); }
CUresult cuStreamGetDevice_ptsz(CUstream h, CUdevice* d) { return StreamGetDevice(h, d, true); }
CUresult cuStreamIsCapturing(CUstream h, CUstreamCaptureStatus* st) { return StreamIsCapturing(h, st, false); }
CUresult cuStreamIsCapturing_ptsz(CUstream h, CUstreamCaptureStatus* st) { return StreamIsCapturing(h, st, true); }

CUresult cuLaunchHostFunc(CUstream h, CUhostFn fn, void* data) {
  if (fn == nullptr) return CUDA_ERROR_INVALID_VALUE;
  return HostFunc(h, [fn, data] { fn(data); }, false);
}
CUresult cuLaunchHostFunc_ptsz(CUstream h, CUhostFn fn, void* data) {
  if (fn == nullptr) return CUDA_ERROR_INVALID_VALUE;
  return HostFunc(h, [fn, data] { fn(data); }, true);
}
// The driver passes the stream and the status of the work before it; the
// status is success here (a failure surfaces as an error at the next call).
CUresult cuStreamAddCallback(CUstream h, CUstreamCallback cb, void* data, unsigned int flags) {
  if (cb == nullptr || flags != 0) return CUDA_ERROR_INVALID_VALUE;
  return HostFunc(h, [cb, h, data] { cb(h, CUDA_SUCCESS, data); }, false);
}
CUresult cuStreamAddCallback_ptsz(CUstream h, CUstreamCallback cb, void* data, unsigned int flags) {
  if (cb == nullptr || flags != 0) return CUDA_ERROR_INVALID_VALUE;
  return HostFunc(h, [cb, h, data] { cb(h, CUDA_SUCCESS, data); }, true);
}

CUresult cuEventCreate(CUevent* ph, unsigned int flags) {
  if (ph == nullptr) return CUDA_ERROR_INVALID_VALUE;
  RGPU_STATE_OR_RETURN(s);
  RGPU_CTX_OR_RETURN(s, c);
  constexpr unsigned kKnown = CU_EVENT_BLOCKING_SYNC | CU_EVENT_DISABLE_TIMING | CU_EVENT_INTERPROCESS;
  if (flags & ~kKnown) return CUDA_ERROR_INVALID_VALUE;
  if (flags & CU_EVENT_INTERPROCESS) return ReportUnsupported("cuEventCreate(CU_EVENT_INTERPROCESS)");
  auto ev = std::make_unique<EventObj>();
  ev->id = s->NewId();
  ev->ctx = c;
  ev->flags = flags;
  EventObj* raw = s->AddEvent(std::move(ev));
  CUresult r = Post(s, proto::CallId::kEventCreate, proto::EventCreateReq{c->id, raw->id, flags});
  if (r != CUDA_SUCCESS) {
    s->DropEvent(raw);
    return r;
  }
  *ph = reinterpret_cast<CUevent>(raw);
  return CUDA_SUCCESS;
}

CUresult cuEventDestroy_v2(CUevent e) {
  RGPU_STATE_OR_RETURN(s);
  EventObj* ev = s->FindEvent(e);
  if (ev == nullptr) return CUDA_ERROR_INVALID_HANDLE;
  CUresult r = Post(s, proto::CallId::kEventDestroy, proto::EventDestroyReq{ev->ctx->id, ev->id});
  s->DropEvent(ev);
  return r;
}
CUresult cuEventDestroy(CUevent e) { return cuEventDestroy_v2(e); }

CUresult cuEventRecord(CUevent e, CUstream h) { return EventRecord(e, h, 0, false); }
CUresult cuEventRecord_ptsz(CUevent e, CUstream h) { return EventRecord(e, h, 0, true); }
CUresult cuEventRecordWithFlags(CUevent e, CUstream h, unsigned int f) { return EventRecord(e, h, f, false); }
CUresult cuEventRecordWithFlags_ptsz(CUevent e, CUstream h, unsigned int f) { return EventRecord(e, h, f, true); }

CUresult cuEventSynchronize(CUevent e) {
  RGPU_STATE_OR_RETURN(s);
  EventObj* ev = s->FindEvent(e);
  if (ev == nullptr) return CUDA_ERROR_INVALID_HANDLE;
  return AfterSync(s, Sync(s, proto::CallId::kEventSynchronize, proto::EventSynchronizeReq{ev->ctx->id, ev->id}));
}

CUresult cuEventQuery(CUevent e) {
  RGPU_STATE_OR_RETURN(s);
  EventObj* ev = s->FindEvent(e);
  if (ev == nullptr) return CUDA_ERROR_INVALID_HANDLE;
  return AfterSync(s, Sync(s, proto::CallId::kEventQuery, proto::EventQueryReq{ev->ctx->id, ev->id}));
}

CUresult cuEventElapsedTime_v2(float* ms, CUevent start, CUevent end) {
  if (ms == nullptr) return CUDA_ERROR_INVALID_VALUE;
  RGPU_STATE_OR_RETURN(s);
  EventObj* a = s->FindEvent(start);
  EventObj* b = s->FindEvent(end);
  if (a == nullptr || b == nullptr) return CUDA_ERROR_INVALID_HANDLE;
  if ((a->flags | b->flags) & CU_EVENT_DISABLE_TIMING) return CUDA_ERROR_INVALID_HANDLE;
  proto::EventElapsedTimeRep rep;
  CUresult r = Sync(s, proto::CallId::kEventElapsedTime,
                    proto::EventElapsedTimeReq{a->ctx->id, a->id, b->id}, &rep);
  if (r == CUDA_SUCCESS) *ms = rep.ms;
  return r;
}
CUresult cuEventElapsedTime(float* ms, CUevent start, CUevent end) {
  return cuEventElapsedTime_v2(ms, start, end);
}

}  // extern "C"
