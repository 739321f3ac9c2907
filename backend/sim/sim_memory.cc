#include "backend/sim/sim_memory.h"

#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace rgpu::backend::sim {
namespace {
uint64_t RoundUp(uint64_t v, uint64_t a) { return (v + a - 1) / a * a; }
uint64_t RoundDown(uint64_t v, uint64_t a) { return v / a * a; }
}  // namespace

Arena::~Arena() {
  if (base_ != 0) munmap(reinterpret_cast<void*>(base_), size_);
}

Status Arena::Reserve(uint64_t bytes) {
  page_ = static_cast<uint64_t>(sysconf(_SC_PAGESIZE));
  uint64_t size = RoundUp(std::max<uint64_t>(bytes, kLargeAlign), kLargeAlign);
  // Over-reserve by one large page so the usable base can be 2 MiB aligned.
  void* p = mmap(nullptr, size + kLargeAlign, PROT_NONE,
                 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (p == MAP_FAILED) {
    return Status::Errno(Code::kInternal, "sim: mmap " + std::to_string(size) + " bytes", errno);
  }
  uint64_t raw = reinterpret_cast<uint64_t>(p);
  uint64_t aligned = RoundUp(raw, kLargeAlign);
  if (aligned > raw) munmap(p, aligned - raw);
  uint64_t tail = raw + size + kLargeAlign - (aligned + size);
  if (tail > 0) munmap(reinterpret_cast<void*>(aligned + size), tail);
  base_ = aligned;
  size_ = size;
  free_.clear();
  free_[base_] = size_;
  return Status();
}

uint64_t Arena::Allocate(uint64_t size, uint64_t owner, uint64_t ctx) {
  if (size == 0 || size > size_) return 0;
  bool large = size >= kLargeThreshold;
  uint64_t align = large ? kLargeAlign : kSmallAlign;
  uint64_t reserved = RoundUp(size, align);
  for (auto it = free_.begin(); it != free_.end(); ++it) {
    uint64_t start = RoundUp(it->first, align);
    uint64_t end = it->first + it->second;
    if (start >= end || end - start < reserved) continue;
    uint64_t fbegin = it->first, flen = it->second;
    free_.erase(it);
    if (start > fbegin) free_[fbegin] = start - fbegin;
    if (start + reserved < fbegin + flen) free_[start + reserved] = fbegin + flen - start - reserved;
    live_[start] = Block{start, size, reserved, owner, ctx};
    used_ += reserved;
    Commit(start, start + reserved);
    return start;
  }
  return 0;
}

bool Arena::Free(uint64_t base) {
  auto it = live_.find(base);
  if (it == live_.end()) return false;
  uint64_t begin = it->second.base, end = begin + it->second.reserved;
  used_ -= it->second.reserved;
  live_.erase(it);
  Release(begin, end);
  // Return the range to the free list, merging with its neighbours.
  uint64_t fbegin = begin, fend = end;
  auto next = free_.lower_bound(begin);
  if (next != free_.end() && next->first == end) {
    fend = next->first + next->second;
    next = free_.erase(next);
  }
  if (next != free_.begin()) {
    auto prev = std::prev(next);
    if (prev->first + prev->second == begin) {
      fbegin = prev->first;
      free_.erase(prev);
    }
  }
  free_[fbegin] = fend - fbegin;
  return true;
}

const Block* Arena::Find(uint64_t p) const {
  auto it = live_.upper_bound(p);
  if (it == live_.begin()) return nullptr;
  --it;
  const Block& b = it->second;
  return p - b.base < b.size ? &b : nullptr;
}

bool Arena::ContainsRange(uint64_t p, uint64_t bytes) const {
  const Block* b = Find(p);
  if (b == nullptr) return false;
  return bytes <= b->size - (p - b->base);
}

void Arena::Commit(uint64_t begin, uint64_t end) {
  uint64_t pb = RoundDown(begin, page_), pe = RoundUp(end, page_);
  // Pages outside any live block are uncommitted or all zero (see header).
  mprotect(reinterpret_cast<void*>(pb), pe - pb, PROT_READ | PROT_WRITE);
}

bool Arena::PageHasLiveBlock(uint64_t page_begin, uint64_t page_end) const {
  auto it = live_.lower_bound(page_begin);
  if (it != live_.end() && it->first < page_end) return true;
  if (it == live_.begin()) return false;
  --it;
  return it->first + it->second.reserved > page_begin;
}

void Arena::Release(uint64_t begin, uint64_t end) {
  // Whole pages no live block touches go back to the host; the freed bytes in
  // pages shared with live neighbours are zeroed instead.
  uint64_t head = RoundDown(begin, page_);
  if (head < begin && PageHasLiveBlock(head, begin)) head = RoundUp(begin, page_);
  uint64_t tail = RoundUp(end, page_);
  if (tail > end && PageHasLiveBlock(end, tail)) tail = RoundDown(end, page_);
  if (head >= tail) {
    std::memset(reinterpret_cast<void*>(begin), 0, end - begin);
    return;
  }
  if (head > begin) std::memset(reinterpret_cast<void*>(begin), 0, head - begin);
  if (tail < end) std::memset(reinterpret_cast<void*>(tail), 0, end - tail);
  madvise(reinterpret_cast<void*>(head), tail - head, MADV_DONTNEED);
  mprotect(reinterpret_cast<void*>(head), tail - head, PROT_NONE);
}

}  // namespace rgpu::backend::sim
