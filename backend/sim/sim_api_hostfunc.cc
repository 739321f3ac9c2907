// Sim driver functions: host functions (cuLaunchHostFunc). The sim runs work
// at submission, so a host function runs at once, on the submitting thread,
// after the work queued before it (which is already done).
#include "backend/sim/sim_state.h"

namespace rgpu::backend::sim {

// Runs `fn(userData)` in stream order: at once (the stream is always idle),
// outside the device lock so that a host function that breaks the rules and
// calls the driver does not deadlock. A capturing stream records it instead;
// graph replay then calls it with the lock held (host functions must not make
// CUDA calls, cuda.h: cuLaunchHostFunc).
CUresult cuLaunchHostFunc(CUstream hStream, CUhostFn fn, void* userData) {
  SimDevice* s = SimDevice::Get();
  if (s == nullptr) return CUDA_ERROR_NOT_INITIALIZED;
  std::unique_lock<std::mutex> lock(s->mu);
  if (!s->initialized) return CUDA_ERROR_NOT_INITIALIZED;
  if (fn == nullptr) return CUDA_ERROR_INVALID_VALUE;
  if (CUresult r = s->CheckStream(hStream); r != CUDA_SUCCESS) return r;
  if (s->CaptureOf(hStream) != nullptr) {
    return s->Submit(hStream, [fn, userData](SimDevice*) {
      fn(userData);
      return CUDA_SUCCESS;
    });
  }
  // Legacy-stream rules (an open capture in this context) still apply.
  if (CUresult r = s->Submit(hStream, [](SimDevice*) { return CUDA_SUCCESS; }); r != CUDA_SUCCESS) {
    return r;
  }
  lock.unlock();
  fn(userData);
  return CUDA_SUCCESS;
}

}  // namespace rgpu::backend::sim
