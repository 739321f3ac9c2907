// Sim driver functions: streams and events.
//
// The sim runs all work at submission, so every stream is always idle:
// queries return CUDA_SUCCESS, synchronisation returns at once, and an event
// completes when it is recorded (its timestamp is the host's steady clock at
// that moment, so elapsed times measure the real time spent in between).
// A capturing stream records its work instead (see sim_api_graph.cc).
#include <algorithm>
#include <chrono>

#include "backend/sim/sim_state.h"

namespace rgpu::backend::sim {
namespace {

// Hopper's range, as cuCtxGetStreamPriorityRange reports it.
constexpr int kLeastPriority = 0;
constexpr int kGreatestPriority = -5;

bool IsSpecialStream(CUstream s) {
  return s == nullptr || s == CU_STREAM_LEGACY || s == CU_STREAM_PER_THREAD;
}

Event* FindEvent(SimDevice* s, CUevent e) {
  auto it = s->events.find(FromHandle(e));
  return it == s->events.end() ? nullptr : &it->second;
}

CUresult CreateStream(CUstream* phStream, unsigned int flags, int priority) {
  SIM_ENTER(s);
  if (phStream == nullptr || (flags & ~static_cast<unsigned>(CU_STREAM_NON_BLOCKING))) {
    return CUDA_ERROR_INVALID_VALUE;
  }
  SIM_CURRENT_CTX(s, ctx);
  Stream st;
  st.ctx = ctx->id;
  st.flags = flags;
  // Out-of-range priorities are clamped, as documented.
  st.priority = std::clamp(priority, kGreatestPriority, kLeastPriority);
  uint64_t id = NextId();
  s->streams[id] = st;
  *phStream = ToHandle<CUstream>(id);
  return CUDA_SUCCESS;
}

CUresult Record(CUevent hEvent, CUstream hStream, unsigned int flags) {
  SIM_ENTER(s);
  if (flags & ~static_cast<unsigned>(CU_EVENT_RECORD_EXTERNAL)) return CUDA_ERROR_INVALID_VALUE;
  Event* e = FindEvent(s, hEvent);
  if (e == nullptr) return CUDA_ERROR_INVALID_HANDLE;
  if (CUresult r = s->CheckStream(hStream); r != CUDA_SUCCESS) return r;
  uint64_t id = FromHandle(hEvent);
  // Other streams that wait on an event recorded in a capture join it.
  e->capture = s->StreamCaptureId(hStream);
  return s->Submit(hStream, [id](SimDevice* d) {
    auto it = d->events.find(id);
    if (it == d->events.end()) return CUDA_ERROR_INVALID_HANDLE;
    it->second.recorded = true;
    it->second.time = std::chrono::steady_clock::now();
    return CUDA_SUCCESS;
  });
}

// Event operations that need the event's work to have run: not while it is
// recorded in an open capture.
CUresult CheckNotCaptured(SimDevice* s, const Event& e) {
  if (e.capture != 0 && s->captures.count(e.capture)) return CUDA_ERROR_CAPTURED_EVENT;
  return CUDA_SUCCESS;
}

// Synchronising with a capturing stream is not allowed and ends the capture.
CUresult CheckNotCapturing(SimDevice* s, CUstream stream) {
  if (Capture* c = s->CaptureOf(stream)) {
    c->invalidated = true;
    return CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED;
  }
  return CUDA_SUCCESS;
}

}  // namespace

CUresult cuStreamCreate(CUstream* phStream, unsigned int Flags) {
  return CreateStream(phStream, Flags, 0);
}

CUresult cuStreamCreateWithPriority(CUstream* phStream, unsigned int flags, int priority) {
  return CreateStream(phStream, flags, priority);
}

CUresult cuStreamDestroy_v2(CUstream hStream) {
  SIM_ENTER(s);
  if (IsSpecialStream(hStream)) return CUDA_ERROR_INVALID_HANDLE;
  return s->streams.erase(FromHandle(hStream)) ? CUDA_SUCCESS : CUDA_ERROR_INVALID_HANDLE;
}

CUresult cuStreamSynchronize(CUstream hStream) {
  SIM_ENTER(s);
  if (CUresult r = s->CheckStream(hStream); r != CUDA_SUCCESS) return r;
  return CheckNotCapturing(s, hStream);
}

CUresult cuStreamQuery(CUstream hStream) {
  SIM_ENTER(s);
  if (CUresult r = s->CheckStream(hStream); r != CUDA_SUCCESS) return r;
  return CheckNotCapturing(s, hStream);
}

CUresult cuStreamWaitEvent(CUstream hStream, CUevent hEvent, unsigned int Flags) {
  SIM_ENTER(s);
  if (Flags & ~static_cast<unsigned>(CU_EVENT_WAIT_EXTERNAL)) return CUDA_ERROR_INVALID_VALUE;
  if (CUresult r = s->CheckStream(hStream); r != CUDA_SUCCESS) return r;
  Event* e = FindEvent(s, hEvent);
  if (e == nullptr) return CUDA_ERROR_INVALID_HANDLE;
  // Waiting on an event recorded in an open capture makes a stream join it
  // (the fork of a multi-stream capture).
  if (e->capture != 0 && s->captures.count(e->capture) && !IsSpecialStream(hStream)) {
    Stream& st = s->streams[FromHandle(hStream)];
    if (st.capture == 0) st.capture = e->capture;
  }
  return CUDA_SUCCESS;
}

CUresult cuStreamGetPriority(CUstream hStream, int* priority) {
  SIM_ENTER(s);
  if (priority == nullptr) return CUDA_ERROR_INVALID_VALUE;
  if (CUresult r = s->CheckStream(hStream); r != CUDA_SUCCESS) return r;
  *priority = IsSpecialStream(hStream) ? 0 : s->streams[FromHandle(hStream)].priority;
  return CUDA_SUCCESS;
}

CUresult cuStreamGetFlags(CUstream hStream, unsigned int* flags) {
  SIM_ENTER(s);
  if (flags == nullptr) return CUDA_ERROR_INVALID_VALUE;
  if (CUresult r = s->CheckStream(hStream); r != CUDA_SUCCESS) return r;
  *flags = IsSpecialStream(hStream) ? 0 : s->streams[FromHandle(hStream)].flags;
  return CUDA_SUCCESS;
}

CUresult cuEventCreate(CUevent* phEvent, unsigned int Flags) {
  SIM_ENTER(s);
  constexpr unsigned kAll = CU_EVENT_BLOCKING_SYNC | CU_EVENT_DISABLE_TIMING | CU_EVENT_INTERPROCESS;
  if (phEvent == nullptr || (Flags & ~kAll)) return CUDA_ERROR_INVALID_VALUE;
  // "CU_EVENT_DISABLE_TIMING must be set" with CU_EVENT_INTERPROCESS.
  if ((Flags & CU_EVENT_INTERPROCESS) && !(Flags & CU_EVENT_DISABLE_TIMING)) {
    return CUDA_ERROR_INVALID_VALUE;
  }
  SIM_CURRENT_CTX(s, ctx);
  Event e;
  e.ctx = ctx->id;
  e.flags = Flags;
  uint64_t id = NextId();
  s->events[id] = e;
  *phEvent = ToHandle<CUevent>(id);
  return CUDA_SUCCESS;
}

CUresult cuEventDestroy_v2(CUevent hEvent) {
  SIM_ENTER(s);
  return s->events.erase(FromHandle(hEvent)) ? CUDA_SUCCESS : CUDA_ERROR_INVALID_HANDLE;
}

CUresult cuEventRecord(CUevent hEvent, CUstream hStream) { return Record(hEvent, hStream, 0); }

CUresult cuEventRecordWithFlags(CUevent hEvent, CUstream hStream, unsigned int flags) {
  return Record(hEvent, hStream, flags);
}

CUresult cuEventSynchronize(CUevent hEvent) {
  SIM_ENTER(s);
  Event* e = FindEvent(s, hEvent);
  return e ? CheckNotCaptured(s, *e) : CUDA_ERROR_INVALID_HANDLE;
}

CUresult cuEventQuery(CUevent hEvent) {
  SIM_ENTER(s);
  Event* e = FindEvent(s, hEvent);
  return e ? CheckNotCaptured(s, *e) : CUDA_ERROR_INVALID_HANDLE;
}

CUresult cuEventElapsedTime_v2(float* pMilliseconds, CUevent hStart, CUevent hEnd) {
  SIM_ENTER(s);
  // A null result pointer is CUDA_ERROR_INVALID_HANDLE on driver 580.
  if (pMilliseconds == nullptr) return CUDA_ERROR_INVALID_HANDLE;
  Event* a = FindEvent(s, hStart);
  Event* b = FindEvent(s, hEnd);
  if (a == nullptr || b == nullptr) return CUDA_ERROR_INVALID_HANDLE;
  if (CUresult r = CheckNotCaptured(s, *a); r != CUDA_SUCCESS) return r;
  if (CUresult r = CheckNotCaptured(s, *b); r != CUDA_SUCCESS) return r;
  // Never recorded, or created with CU_EVENT_DISABLE_TIMING: INVALID_HANDLE
  // (cuda.h, cuEventElapsedTime).
  if (!a->recorded || !b->recorded || (a->flags & CU_EVENT_DISABLE_TIMING) ||
      (b->flags & CU_EVENT_DISABLE_TIMING)) {
    return CUDA_ERROR_INVALID_HANDLE;
  }
  *pMilliseconds = std::chrono::duration<float, std::milli>(b->time - a->time).count();
  return CUDA_SUCCESS;
}

}  // namespace rgpu::backend::sim
