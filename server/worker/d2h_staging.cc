#include "server/worker/d2h_staging.h"

#include "common/log.h"
#include "server/worker/session.h"

namespace rgpu::worker {

D2HStaging& D2HStaging::Get(const backend::DriverTable& driver) {
  static D2HStaging* staging = new D2HStaging(driver);
  return *staging;
}

bool D2HStaging::Available() {
  if (tried_) return buf_ != nullptr;
  tried_ = true;
  if (!d_.cuMemHostAlloc || !d_.cuEventCreate || !d_.cuEventRecord || !d_.cuEventSynchronize ||
      !d_.cuEventDestroy_v2 || !d_.cuMemcpyDtoHAsync_v2) {
    RGPU_LOG_WARN("device-to-host copies are not staged: the backend lacks a call it needs");
    return false;
  }
  void* p = nullptr;
  if (CUresult r = d_.cuMemHostAlloc(&p, kMaxBytes, CU_MEMHOSTALLOC_PORTABLE); r != CUDA_SUCCESS) {
    RGPU_LOG_WARN("device-to-host copies are not staged: cuMemHostAlloc of %llu bytes failed (CUresult %d)",
                  (unsigned long long)kMaxBytes, r);
    return false;
  }
  buf_ = static_cast<uint8_t*>(p);
  return true;
}

void D2HStaging::ReleaseBuffer() {
  Finish();
  if (buf_ != nullptr && d_.cuMemFreeHost) d_.cuMemFreeHost(buf_);
  buf_ = nullptr;
  tried_ = false;
}

Status D2HStaging::MakeEvents(size_t count) {
  while (events_.size() < count) {
    CUevent e = nullptr;
    RGPU_RETURN_IF_ERROR(CuStatus(d_.cuEventCreate(&e, CU_EVENT_DISABLE_TIMING), "cuEventCreate"));
    events_.push_back(e);
  }
  return {};
}

void D2HStaging::Finish() {
  // A reply that broke off may have left pieces in flight into the buffer.
  if (landed_ < size_) (void)WaitFor(size_);
  for (CUevent e : events_)
    if (d_.cuEventDestroy_v2) d_.cuEventDestroy_v2(e);
  events_.clear();
  active_ = false;
  size_ = landed_ = 0;
}

Status D2HStaging::Start(CUdeviceptr src, uint64_t n, CUstream stream, std::span<const uint8_t>* data) {
  if (n == 0 || n > kMaxBytes || !Available())
    return Status::Internal("D2HStaging::Start: size out of range or staging unavailable");
  Finish();
  Status st = MakeEvents((n + kPiece - 1) / kPiece);
  for (uint64_t at = 0, i = 0; st.ok() && at < n; at += kPiece, ++i) {
    uint64_t len = std::min(kPiece, n - at);
    st = CuStatus(d_.cuMemcpyDtoHAsync_v2(buf_ + at, src + at, len, stream), "cuMemcpyDtoHAsync");
    if (st.ok()) st = CuStatus(d_.cuEventRecord(events_[i], stream), "cuEventRecord");
    if (st.ok()) size_ = at + len;  // enqueued and marked: what Finish waits for
  }
  if (!st.ok()) {
    // Nothing may still be writing into the buffer when the next copy
    // starts, whatever failed here.
    if (d_.cuStreamSynchronize) (void)d_.cuStreamSynchronize(stream);
    Finish();
    return st;
  }
  RGPU_RETURN_IF_ERROR(WaitFor(std::min(kPiece, n)));
  *data = std::span<const uint8_t>(buf_, n);
  active_ = true;
  return {};
}

Status D2HStaging::WaitFor(uint64_t upto) {
  upto = std::min(upto, size_);
  while (landed_ < upto) {
    CUevent e = events_[landed_ / kPiece];
    RGPU_RETURN_IF_ERROR(CuStatus(d_.cuEventSynchronize(e), "cuEventSynchronize"));
    landed_ = std::min(size_, landed_ + kPiece);
  }
  return {};
}

}  // namespace rgpu::worker
