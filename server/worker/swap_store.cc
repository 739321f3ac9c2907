#include "server/worker/swap_store.h"

#include <chrono>
#include <cstring>

#include "common/log.h"
#include "server/worker/session.h"

namespace rgpu::worker {
namespace {
double MsSince(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
}
}  // namespace

Status SwapStore::Make(uint64_t bytes, CUcontext ctx, std::vector<Piece>* out) const {
  out->clear();
  if (bytes == 0) return {};
  if (ctx == nullptr && d_.cuCtxGetCurrent) d_.cuCtxGetCurrent(&ctx);
  // Pieces of at least kMinPiece, 2 MiB aligned, at most kMaxThreads.
  constexpr uint64_t kAlign = uint64_t{2} << 20;
  uint64_t piece = (bytes + kMaxThreads - 1) / kMaxThreads;
  piece = std::max(kMinPiece, (piece + kAlign - 1) / kAlign * kAlign);
  size_t n = static_cast<size_t>((bytes + piece - 1) / piece);
  out->resize(n);
  std::vector<CUresult> results(n, CUDA_SUCCESS);
  auto pin = [&](size_t i) {
    // The driver's context stack is per thread: each pinning thread uses
    // the session's context, so the pieces belong to it.
    if (ctx != nullptr && d_.cuCtxSetCurrent) d_.cuCtxSetCurrent(ctx);
    uint64_t len = std::min(piece, bytes - i * piece);
    void* p = nullptr;
    results[i] = d_.cuMemHostAlloc(&p, len, CU_MEMHOSTALLOC_PORTABLE);
    if (results[i] == CUDA_SUCCESS) (*out)[i] = Piece{p, len};
  };
  // Always on threads of their own, even one piece: the caller's current
  // context stays as it is (the session caches which context is current).
  std::vector<std::thread> threads;
  for (size_t i = 0; i < n; ++i) threads.emplace_back(pin, i);
  for (std::thread& t : threads) t.join();
  for (size_t i = 0; i < n; ++i) {
    if (results[i] == CUDA_SUCCESS) continue;
    std::vector<Piece> made = std::move(*out);
    out->clear();
    Free(&made);
    return CuStatus(results[i], "cuMemHostAlloc (swap store)");
  }
  return {};
}

void SwapStore::Free(std::vector<Piece>* pieces) const {
  for (Piece& p : *pieces) {
    if (p.ptr == nullptr) continue;
    memset(p.ptr, 0, p.bytes);  // session data: cleared before the pages go back
    d_.cuMemFreeHost(p.ptr);
  }
  pieces->clear();
}

void SwapStore::Join() {
  if (!bg_.joinable()) return;
  bg_.join();
  if (!bg_status_.ok()) {
    RGPU_LOG_WARN("swap store: pinning %llu bytes in the background failed: %s", (unsigned long long)bg_bytes_,
                  bg_status_.message().c_str());
    bg_status_ = Status();
    return;
  }
  if (bg_bytes_ <= bytes_) {  // grew meanwhile (cannot happen today): keep the larger one
    Free(&bg_pieces_);
    return;
  }
  Free(&pieces_);
  pieces_ = std::move(bg_pieces_);
  bg_pieces_.clear();
  bytes_ = bg_bytes_;
  background_pin_ms_ = bg_ms_;
  RGPU_LOG_INFO("swap store: %llu bytes pinned in the background in %.1f ms (%zu piece(s))",
                (unsigned long long)bytes_, bg_ms_, pieces_.size());
}

void SwapStore::Prepare(uint64_t bytes, CUcontext ctx) {
  if (bg_.joinable() || bytes <= bytes_ || bytes == 0) return;
  bg_bytes_ = bytes;
  bg_status_ = Status();
  bg_ = std::thread([this, bytes, ctx] {
    auto t0 = std::chrono::steady_clock::now();
    bg_status_ = Make(bytes, ctx, &bg_pieces_);
    bg_ms_ = MsSince(t0);
  });
}

Status SwapStore::Ensure(uint64_t bytes, CUcontext ctx) {
  Join();
  last_pin_ms_ = 0;
  if (bytes_ >= bytes) return {};
  auto t0 = std::chrono::steady_clock::now();
  Free(&pieces_);
  bytes_ = 0;
  RGPU_RETURN_IF_ERROR(Make(bytes, ctx, &pieces_));
  bytes_ = bytes;
  last_pin_ms_ = MsSince(t0);
  return {};
}

void SwapStore::Release() {
  Join();
  Free(&pieces_);
  bytes_ = 0;
}

}  // namespace rgpu::worker
