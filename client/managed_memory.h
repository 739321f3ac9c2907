// ManagedMemory: cuMemAllocManaged emulated across the network.
//
// The worker allocates plain device memory (never driver-managed memory on
// the GPU host); the client maps a host shadow at the very same address, so
// one pointer works on both sides. Coherence follows CUDA's rules for
// devices without concurrent access: the host copy is authoritative between
// GPU work, the device copy during and after it.
//   - Host pages are kept PROT_READ when clean; the first write faults and
//     marks the page dirty (read-write).
//   - Before any GPU work, dirty pages are sent to the device.
//   - After GPU work that may write device memory, every shadow becomes
//     PROT_NONE; the next host access faults and fetches the containing
//     block from the device (after a context synchronisation).
// Faults are served by a SIGSEGV handler installed at the first managed
// allocation; faults outside managed ranges go to the previous handler.
// Thread-safe. The fast paths cost one atomic load when nothing is managed.
#pragma once

#include <cuda.h>

#include <cstdint>

namespace rgpu::client {

class ClientState;
struct CtxObj;

// Allocates `size` managed bytes in context `ctx`.
CUresult AllocManaged(ClientState* s, CtxObj* ctx, size_t size, CUdeviceptr* out);
// Frees a managed allocation (true if `p` was one; *result holds the outcome).
bool FreeManaged(ClientState* s, CUdeviceptr p, CUresult* result);
bool IsManaged(CUdeviceptr p);

// The host page size (the unit of the emulation's mappings).
size_t PageSize();

// Pinned host memory promoted for kernels (client/pinned_memory.h): the host
// mapping [p, p + size) and device memory at the same address exist already;
// from now on they are kept coherent like a managed allocation. Every page
// starts dirty (read-write), so the next ManagedBeforeDeviceWork sends the
// host's content to the device. `size` is page-rounded.
void AdoptManagedRange(CtxObj* ctx, CUdeviceptr p, size_t size);
// Stops keeping an adopted range coherent; unmaps and frees nothing (the
// caller owns the mapping and the device memory). True if it was one.
bool ForgetManagedRange(CUdeviceptr p);

// __managed__ variables of modules (cuLibraryGetManaged): the variable
// [p, p + size) of library `module` lives in the worker's process; its page
// is mirrored here at the same address and kept coherent like managed
// allocations, copying only the variables' bytes. Idempotent; fails with
// CUDA_ERROR_NOT_SUPPORTED (logged) if this process uses that address.
CUresult AdoptManagedGlobal(CtxObj* ctx, uint64_t module, CUdeviceptr p, size_t size);
// The module is unloaded: its variables stop being mirrored.
void ForgetManagedGlobals(uint64_t module);

// The copies posted on context `ctx`'s legacy stream complete before any
// later work of any stream starts. A synchronous copy from pageable memory
// returns once its data is staged, and work on a non-blocking stream is not
// ordered after the legacy stream: without this, the next launch could read
// the device copy before the data is there.
CUresult OrderAfterLegacyCopies(ClientState* s, CtxObj* ctx);

// Call before GPU work: sends dirty host pages to the device (and the
// changes of registered memory to its mirrors, client/registered_memory.h).
CUresult ManagedBeforeDeviceWork(ClientState* s);
// Call after GPU work that may write device memory: invalidates host copies
// (and notes that registered memory's mirrors may have changed).
void ManagedAfterDeviceWork();
// Prefetch to the host (fetch everything now) or to the device (flush).
CUresult ManagedPrefetch(ClientState* s, CUdeviceptr p, size_t n, bool to_host);

}  // namespace rgpu::client
