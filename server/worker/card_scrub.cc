#include "server/worker/card_scrub.h"

#include <map>

#include "server/worker/session.h"

namespace rgpu::worker {

Result<uint64_t> ScrubFreeMemory(const backend::DriverTable& d, bool paranoid) {
  if (!d.cuMemAlloc_v2 || !d.cuMemFree_v2) return Status::Internal("scrub: backend lacks cuMemAlloc/cuMemFree");
  constexpr uint64_t kMinChunk = 2ull << 20, kMaxChunk = 1ull << 30;
  std::map<CUdeviceptr, uint64_t> taken;
  uint64_t chunk = kMaxChunk;
  // The driver's free figure moves as it carves its own bookkeeping out of
  // what is left: ask until even the smallest chunk is refused.
  while (chunk >= kMinChunk) {
    CUdeviceptr p = 0;
    if (d.cuMemAlloc_v2(&p, chunk) == CUDA_SUCCESS) {
      taken[p] = chunk;
    } else {
      chunk /= 2;
    }
  }
  Result<uint64_t> wiped = WipeRanges(d, taken, paranoid);
  for (const auto& [p, size] : taken) (void)d.cuMemFree_v2(p);
  return wiped;
}

}  // namespace rgpu::worker
