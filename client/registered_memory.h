// Registered host memory that kernels use (cuMemHostRegister).
//
// On a local GPU with unified addressing every registered buffer is mapped
// for the GPU at once: kernels reach it through cuMemHostGetDevicePointer's
// pointer, or through the host pointer itself. Across the network the GPU
// cannot reach this host, and the buffer sits at an address the program
// chose, which the GPU host cannot be made to map (unlike promotable pinned
// memory, client/pinned_memory.h, whose address rgpu picks). So a registered
// buffer that a kernel is given gets a *mirror*: device memory of its size at
// another address, kept coherent at GPU-work boundaries:
//   - cuMemHostGetDevicePointer answers the mirror's address, and a host
//     pointer into the buffer among a kernel's packed parameters (any 8-byte
//     aligned word that is not also an address of the session's device
//     memory: the two address spaces are separate and may overlap) is
//     rewritten to the mirror's address, as unified addressing would have
//     let the kernel use it;
//   - before GPU work, the pages whose host content differs from a snapshot
//     of what the device holds are sent (a compare, not page protection:
//     the program's own memory may be handed to system calls at any time);
//   - after GPU work that may write the mirror, the next synchronising call
//     (context, stream or event synchronisation, a query that finds the work
//     done, a synchronous device-to-host copy) fetches the mirror after all
//     of the context's work and writes into the host buffer only the bytes
//     the device changed since the snapshot, so host writes made meanwhile
//     to other bytes survive.
// The snapshot doubles the buffer's host memory. Coherence is at those
// boundaries only: a kernel that polls host writes made while it runs does
// not see them, as with managed memory (client/managed_memory.h).
// Thread-safe; every entry point costs one relaxed load while no registered
// buffer exists.
#pragma once

#include <cuda.h>

#include <atomic>
#include <cstddef>
#include <cstdint>

namespace rgpu::client {

class ClientState;
struct CtxObj;

// Registered buffers (the fast paths' check).
extern std::atomic<int> g_registered_buffers;

// cuMemHostRegister / cuMemHostUnregister of [p, p + size) in context `ctx`.
void NoteRegistered(CtxObj* ctx, const void* p, size_t size);
// Brings a mirror's device changes back first, then frees the mirror.
void NoteUnregistered(ClientState* s, const void* p);

// The device address for host address `p` inside a registered buffer (its
// mirror, made on first use). CUDA_ERROR_INVALID_VALUE if `p` is in none;
// the allocation's error if the mirror cannot be made.
CUresult RegisteredDevicePointer(ClientState* s, const void* p, CUdeviceptr* out);

void TranslateRegisteredArgsSlow(ClientState* s, uint8_t* params, size_t n);
// Rewrites host pointers into registered buffers among a kernel's packed
// parameters to their mirrors' addresses.
inline void TranslateRegisteredArgs(ClientState* s, uint8_t* params, size_t n) {
  if (g_registered_buffers.load(std::memory_order_relaxed) == 0) [[likely]]
    return;
  TranslateRegisteredArgsSlow(s, params, n);
}

// GPU-work boundaries (called by ManagedBeforeDeviceWork and
// ManagedAfterDeviceWork): sends host changes to the mirrors; notes that
// the mirrors may have changed.
CUresult RegisteredBeforeDeviceWork(ClientState* s);
void RegisteredAfterDeviceWork();

// After a synchronising call succeeded: fetches mirrors the GPU may have
// written into their host buffers.
CUresult RegisteredAfterSync(ClientState* s);

// True if [p, p + n) touches a mirror (device memory the program did not
// allocate: cuMemFree refuses it).
bool IsRegisteredMirror(CUdeviceptr p);

}  // namespace rgpu::client
