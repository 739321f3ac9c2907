// Sim driver functions: streams and events.
//
// The sim runs all work at submission, so every stream is always idle:
// queries return CUDA_SUCCESS, synchronisation returns at once, and an event
// completes when it is recorded (its timestamp is the host's steady clock at
// that moment, so elapsed times measure the real time spent in between).
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
  e->recorded = true;
  e->time = std::chrono::steady_clock::now();
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
  return s->CheckStream(hStream);
}

CUresult cuStreamQuery(CUstream hStream) {
  SIM_ENTER(s);
  return s->CheckStream(hStream);
}

CUresult cuStreamWaitEvent(CUstream hStream, CUevent hEvent, unsigned int Flags) {
  SIM_ENTER(s);
  if (Flags & ~static_cast<unsigned>(CU_EVENT_WAIT_EXTERNAL)) return CUDA_ERROR_INVALID_VALUE;
  if (CUresult r = s->CheckStream(hStream); r != CUDA_SUCCESS) return r;
  return FindEvent(s, hEvent) ? CUDA_SUCCESS : CUDA_ERROR_INVALID_HANDLE;
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
  return FindEvent(s, hEvent) ? CUDA_SUCCESS : CUDA_ERROR_INVALID_HANDLE;
}

CUresult cuEventQuery(CUevent hEvent) {
  SIM_ENTER(s);
  return FindEvent(s, hEvent) ? CUDA_SUCCESS : CUDA_ERROR_INVALID_HANDLE;
}

CUresult cuEventElapsedTime_v2(float* pMilliseconds, CUevent hStart, CUevent hEnd) {
  SIM_ENTER(s);
  if (pMilliseconds == nullptr) return CUDA_ERROR_INVALID_VALUE;
  Event* a = FindEvent(s, hStart);
  Event* b = FindEvent(s, hEnd);
  if (a == nullptr || b == nullptr) return CUDA_ERROR_INVALID_HANDLE;
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
