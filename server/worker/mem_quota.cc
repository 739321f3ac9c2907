#include "server/worker/mem_quota.h"

#include <cuda.h>

#include <string>

#include "common/log.h"

namespace rgpu::worker {

Status MemQuota::Check(uint64_t bytes, const char* call) {
  if (limit_ == 0 || (bytes <= limit_ && used_ <= limit_ - bytes)) return {};
  std::string msg = std::string(call) + " of " + std::to_string(bytes) + " bytes refused: the session holds " +
                    std::to_string(used_) + " bytes and the server's --max-mem limit is " +
                    std::to_string(limit_) + " bytes per session";
  if (!logged_) RGPU_LOG_WARN("%s", msg.c_str());
  else RGPU_LOG_DEBUG("%s", msg.c_str());
  logged_ = true;
  return Status::Cuda(CUDA_ERROR_OUT_OF_MEMORY, msg);
}

void MemQuota::AddAllocation(uint64_t dptr, uint64_t bytes) {
  RemoveAllocation(dptr);  // an address reused without a free: never counted twice
  allocations_[dptr] = bytes;
  used_ += bytes;
}

void MemQuota::RemoveAllocation(uint64_t dptr) {
  auto it = allocations_.find(dptr);
  if (it == allocations_.end()) return;
  Refund(it->second);
  allocations_.erase(it);
}

void MemQuota::AddPhysical(uint64_t handle, uint64_t bytes) {
  physical_[handle] = Physical{bytes, 0, false};
  used_ += bytes;
}

void MemQuota::MaybeDrop(uint64_t handle) {
  auto it = physical_.find(handle);
  if (it == physical_.end() || !it->second.released || it->second.mappings > 0) return;
  Refund(it->second.bytes);
  physical_.erase(it);
}

void MemQuota::ReleasePhysical(uint64_t handle) {
  auto it = physical_.find(handle);
  if (it == physical_.end()) return;
  it->second.released = true;
  MaybeDrop(handle);
}

void MemQuota::Map(uint64_t ptr, uint64_t handle) {
  auto it = physical_.find(handle);
  if (it == physical_.end()) return;
  Unmap(ptr);
  ++it->second.mappings;
  mappings_[ptr] = handle;
}

void MemQuota::Unmap(uint64_t ptr) {
  auto it = mappings_.find(ptr);
  if (it == mappings_.end()) return;
  uint64_t handle = it->second;
  mappings_.erase(it);
  auto p = physical_.find(handle);
  if (p != physical_.end() && p->second.mappings > 0) --p->second.mappings;
  MaybeDrop(handle);
}

void MemQuota::Clear() {
  allocations_.clear();
  physical_.clear();
  mappings_.clear();
  used_ = 0;
}

}  // namespace rgpu::worker
