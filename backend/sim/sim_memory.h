// Arena: one sim device's memory, carved out of a host virtual reservation.
//
// At creation the arena reserves `bytes` of address space (PROT_NONE,
// MAP_NORESERVE: no memory is committed). Allocate() hands out ranges of it and
// makes their pages readable and writable; Free() gives pages that no live
// allocation touches back to the kernel (MADV_DONTNEED + PROT_NONE) and zeroes
// freed bytes in pages that stay committed. Invariant: every byte outside a
// live allocation is either uncommitted or zero, so newly allocated memory
// always reads as zero, like a fresh page from the GPU driver, and freed memory
// is really returned to the host.
//
// Layout, like the real allocator: sizes round up to 512 bytes; requests of
// 1 MiB or more round up to and are aligned on 2 MiB. First fit in address
// order. The address of an allocation is its CUdeviceptr.
//
// Threading: not thread-safe; the sim device's mutex guards every arena.
// Failure: Reserve() returns an error Status when mmap fails; Allocate()
// returns 0 when the arena is full.
#pragma once

#include <cstdint>
#include <map>

#include "common/status.h"

namespace rgpu::backend::sim {

struct Block {
  uint64_t base = 0;      // address (== CUdeviceptr)
  uint64_t size = 0;      // bytes requested
  uint64_t reserved = 0;  // bytes taken from the arena (rounded)
  uint64_t owner = 0;     // 0: user allocation; else the module handle id
  uint64_t ctx = 0;       // context handle id that allocated it
};

class Arena {
 public:
  static constexpr uint64_t kSmallAlign = 512;
  static constexpr uint64_t kLargeThreshold = uint64_t{1} << 20;
  static constexpr uint64_t kLargeAlign = uint64_t{2} << 20;

  Arena() = default;
  ~Arena();
  Arena(const Arena&) = delete;
  Arena& operator=(const Arena&) = delete;

  // Reserves `bytes` (rounded up to 2 MiB) of address space.
  Status Reserve(uint64_t bytes);

  // Allocates `size` (> 0) bytes; returns the address, or 0 when full.
  uint64_t Allocate(uint64_t size, uint64_t owner, uint64_t ctx);
  // Frees the allocation starting exactly at `base`; false if there is none.
  bool Free(uint64_t base);

  // The live allocation containing address `p`, or null.
  const Block* Find(uint64_t p) const;
  // True when [p, p + bytes) lies inside one live allocation (bytes may be 0:
  // then p itself must lie inside one).
  bool ContainsRange(uint64_t p, uint64_t bytes) const;
  bool Owns(uint64_t p) const { return p >= base_ && p - base_ < size_; }

  uint64_t used() const { return used_; }
  uint64_t capacity() const { return size_; }
  const std::map<uint64_t, Block>& blocks() const { return live_; }

 private:
  void Commit(uint64_t begin, uint64_t end);
  void Release(uint64_t begin, uint64_t end);  // freed range [begin, end)
  bool PageHasLiveBlock(uint64_t page_begin, uint64_t page_end) const;

  uint64_t base_ = 0;
  uint64_t size_ = 0;
  uint64_t page_ = 4096;
  uint64_t used_ = 0;
  std::map<uint64_t, uint64_t> free_;  // address -> length, coalesced
  std::map<uint64_t, Block> live_;     // address -> block
};

}  // namespace rgpu::backend::sim
