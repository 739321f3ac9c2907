// MemQuota: the device memory one session may hold (`rgpu-server --max-mem`).
//
// Charged: cuMemAlloc (and so cuMemAllocAsync and managed memory, which the
// client builds on it), cuMemAllocPitch (pitch x height, as allocated), and
// the physical memory of cuMemCreate (PyTorch's expandable segments). A
// physical allocation stays charged while any mapping of it lives, even
// after cuMemRelease, as the driver keeps the memory until the last unmap.
// Not charged: module globals (sized by the module image, which is itself
// bounded) and address reservations (no memory behind them).
//
// A request that would take the session past its limit fails with
// CUDA_ERROR_OUT_OF_MEMORY, as the driver's own answer to a full card, so
// that caching allocators free what they cache and retry. The first refusal
// of a session is logged with the limit; later ones at debug level.
//
// Used only from the worker's executor thread.
#pragma once

#include <cstdint>
#include <unordered_map>

#include "common/status.h"

namespace rgpu::worker {

class MemQuota {
 public:
  // 0: no limit (the GPU's own memory is the only bound).
  void set_limit(uint64_t limit) { limit_ = limit; }
  uint64_t limit() const { return limit_; }
  uint64_t used() const { return used_; }

  // OK when `bytes` more fit under the limit; otherwise a kCuda
  // CUDA_ERROR_OUT_OF_MEMORY status naming `call`, the request and the limit.
  Status Check(uint64_t bytes, const char* call);

  // Device allocations, by their address.
  void AddAllocation(uint64_t dptr, uint64_t bytes);
  void RemoveAllocation(uint64_t dptr);  // no-op for an address not charged

  // Physical allocations (cuMemCreate), by the client's handle id, and the
  // mappings (by address) that keep them alive.
  void AddPhysical(uint64_t handle, uint64_t bytes);
  void ReleasePhysical(uint64_t handle);
  void Map(uint64_t ptr, uint64_t handle);
  void Unmap(uint64_t ptr);

  // Session end: everything is given back.
  void Clear();

 private:
  struct Physical {
    uint64_t bytes = 0;
    int mappings = 0;
    bool released = false;
  };
  void Refund(uint64_t bytes) { used_ = bytes > used_ ? 0 : used_ - bytes; }
  void MaybeDrop(uint64_t handle);

  uint64_t limit_ = 0;
  uint64_t used_ = 0;
  bool logged_ = false;
  std::unordered_map<uint64_t, uint64_t> allocations_;  // dptr -> bytes
  std::unordered_map<uint64_t, Physical> physical_;     // handle id -> state
  std::unordered_map<uint64_t, uint64_t> mappings_;     // mapped address -> handle id
};

}  // namespace rgpu::worker
