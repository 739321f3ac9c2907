// Plain pinned host memory that kernels may dereference.
//
// On a local GPU, unified addressing lets a kernel read and write any pinned
// host buffer (cuMemAllocHost, cuMemHostAlloc without DEVICEMAP) through its
// host pointer. Across the network the GPU cannot reach this host, so such
// memory is made promotable: cuMemHostAlloc reserves a device address range
// on the worker and maps the host buffer at that very address. The first
// time a kernel launch (or graph kernel node, or cuMemHostGetDevicePointer)
// is given a pointer into the buffer, it is promoted: device memory is mapped
// at the reserved range and the buffer is handed to the managed-memory
// emulation (client/managed_memory.h) with every page dirty, so the launch
// sees the host's content. From then on it behaves like mapped pinned memory
// (coherent at GPU-work boundaries). Buffers never given to a kernel stay
// ordinary host memory and cost nothing but the reservation.
#pragma once

#include <cuda.h>

#include <atomic>
#include <cstddef>
#include <cstdint>

namespace rgpu::client {

class ClientState;
struct CtxObj;

// Promotable buffers not promoted yet (the launch path's fast check).
extern std::atomic<int> g_unpromoted_pinned;

// A promotable buffer of `size` bytes for context `ctx`, or null when none
// can be made (the caller falls back to ordinary memory).
void* AllocPromotablePinned(ClientState* s, CtxObj* ctx, size_t size);
// Frees `p` if it is a promotable buffer's base (true; *result says how).
bool FreePromotablePinned(ClientState* s, void* p, CUresult* result);
// Promotes the buffer containing `p`. *promotable says whether it is one
// (then the result is the promotion's, CUDA_SUCCESS if done before).
CUresult PromotePinned(ClientState* s, const void* p, bool* promotable);
// True if `p` lies in a promoted buffer.
bool IsPromotedPinned(const void* p);

void PromotePinnedArgsSlow(ClientState* s, const uint8_t* params, size_t n);
// Promotes every unpromoted buffer that a kernel's packed parameters point
// into (any 8-byte aligned word). One relaxed load when there is none.
inline void PromotePinnedArgs(ClientState* s, const uint8_t* params, size_t n) {
  if (g_unpromoted_pinned.load(std::memory_order_relaxed) == 0) [[likely]]
    return;
  PromotePinnedArgsSlow(s, params, n);
}

}  // namespace rgpu::client
