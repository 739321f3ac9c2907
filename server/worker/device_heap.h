// DeviceHeap: a session's cuMemAlloc memory, made through the driver's
// virtual memory API so that it can leave the GPU and come back at the same
// device addresses (idle detach, docs/time-slicing.md).
//
// Every chunk is an address reservation (cuMemAddressReserve) backed by one
// physical allocation (cuMemCreate + cuMemMap + cuMemSetAccess). Requests of
// 1 MiB or more get a chunk of their own, rounded up to the granularity
// (2 MiB on every card we know), as the driver's own allocator rounds them;
// smaller ones are carved first-fit, 512-byte aligned, out of shared
// granularity-sized chunks ("slabs"), so a 4-byte cudaMalloc does not cost
// 2 MiB. A slab is released when its last allocation is freed (one empty
// slab is kept to avoid churn).
//
// SwapOut copies every chunk into pinned host memory, zeroes it on the
// device and reads the zeros back (sampled pages, or all with `paranoid`),
// then unmaps and releases the physical memory; the reservations stay, so
// nobody else in this process can take those addresses. SwapIn creates
// physical memory again, maps it at the same addresses and copies the
// contents back. Both copy through the session's pinned host store
// (swap_store.h: pinned in parallel pieces, in the background while the
// session idles when PrepareStore is called), kept after SwapIn so that the
// next detach does not pay for pinning again; it is freed with the heap.
//
// MoveTo (while swapped out) points every chunk at another device: the next
// SwapIn creates the physical memory there and maps it into the same
// reservations (they are the process's, not a device's), which is how a
// session moves to another GPU at the same addresses (session_move.h).
//
// Needs a current context on the device the memory lives on (the worker's
// session keeps one current). Memory belongs to the context current when it
// was allocated, as cuMemAlloc memory does: small allocations share chunks
// only within one context, and ForgetContext drops a context's chunks before
// the context is destroyed. Single-threaded: the worker's executor only.
// Failure: Alloc returns the driver's error (CUDA_ERROR_OUT_OF_MEMORY...);
// SwapOut leaves everything mapped and intact when it fails before the wipe;
// SwapIn failing leaves the heap unusable (the worker ends the session).
#pragma once

#include <cstdint>
#include <map>
#include <vector>

#include "backend/driver_table.h"
#include "common/status.h"
#include "server/worker/swap_store.h"

namespace rgpu::worker {

class DeviceHeap {
 public:
  explicit DeviceHeap(const backend::DriverTable& driver) : d_(driver), store_(driver) {}
  ~DeviceHeap() { ReleaseAll(); }
  DeviceHeap(const DeviceHeap&) = delete;
  DeviceHeap& operator=(const DeviceHeap&) = delete;

  // True when the backend offers everything the heap needs.
  bool Usable() const;
  // `size` > 0 bytes on the current context's device.
  Result<CUdeviceptr> Alloc(uint64_t size);
  // True when `p` is the base of a live allocation of this heap.
  bool Owns(CUdeviceptr p) const { return allocs_.count(p) != 0; }
  // Frees the allocation at `p` (which Owns).
  Status Free(CUdeviceptr p);
  // The context `ctx` is about to be destroyed (or reset): its memory goes
  // with it, as cuMemAlloc memory would. Returns the allocation bases freed.
  std::vector<CUdeviceptr> ForgetContext(CUcontext ctx);

  // Bytes of device memory backing the heap (whole chunks).
  uint64_t chunk_bytes() const { return chunk_bytes_; }
  bool swapped_out() const { return swapped_out_; }
  // Milliseconds the last SwapOut spent pinning a (larger) swap store; 0
  // when the store was reused.
  double last_pin_ms() const { return store_.last_pin_ms(); }
  // Starts pinning a store for the current chunks in the background (the
  // session is idle and may be detached soon); nothing if it is large enough.
  void PrepareStore();
  // Zeroes and frees the store (its pieces belong to the context current
  // when they were made: before that context goes).
  void ReleaseStore() { store_.Release(); }
  // While swapped out: the memory comes back on backend device `dev` at the
  // next SwapIn, and chunks made in context `from` now serve `to` (each
  // pair of `contexts`).
  Status MoveTo(int dev, const std::vector<std::pair<CUcontext, CUcontext>>& contexts);
  // Devices the chunks live on (or will, after MoveTo).
  std::vector<int> Devices() const;
  // Returns the bytes moved out.
  Result<uint64_t> SwapOut(bool paranoid_wipe);
  // Returns the bytes moved back.
  Result<uint64_t> SwapIn();
  // Zeroes every chunk (whole, slack included) and verifies it; skipped
  // while swapped out (already wiped). Returns the bytes wiped.
  Result<uint64_t> Wipe(bool paranoid);
  // Unmaps and frees everything, addresses included, and the swap store.
  void ReleaseAll();

 private:
  struct Chunk {
    uint64_t size = 0;  // bytes reserved and mapped
    int dev = 0;
    CUcontext ctx = nullptr;  // current when it was made: slabs serve only it
    CUmemGenericAllocationHandle handle = 0;  // 0 while swapped out
    bool slab = false;
    std::map<uint64_t, uint64_t> free;  // slabs: offset -> length, coalesced
    uint64_t live = 0;                  // slabs: allocations inside
  };
  Result<uint64_t> Granularity(int dev);
  Status Map(CUdeviceptr base, Chunk& c);
  void Unmap(CUdeviceptr base, Chunk& c);
  Result<CUdeviceptr> NewChunk(uint64_t size, int dev, CUcontext ctx, bool slab);
  // The primary context of the current context's device, which the swap
  // store is made in (it outlives the client's own contexts: the worker
  // retains it); null if there is none.
  CUcontext StoreContext() const;
  void DropChunk(std::map<CUdeviceptr, Chunk>::iterator it);

  const backend::DriverTable& d_;
  std::map<CUdeviceptr, Chunk> chunks_;   // base -> chunk
  std::map<CUdeviceptr, uint64_t> allocs_;  // base -> bytes taken (slabs: rounded)
  std::map<int, uint64_t> granularity_;   // device -> bytes
  uint64_t chunk_bytes_ = 0;
  bool swapped_out_ = false;
  SwapStore store_;  // pinned host memory, at least chunk_bytes_ while swapped out
};

}  // namespace rgpu::worker
