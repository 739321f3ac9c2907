// SwapStore: the pinned host memory a DeviceHeap saves a detached session's
// device memory in (idle detach, docs/time-slicing.md).
//
// Pinning is the slow part of a first detach (the kernel zeroes and pins
// every page: 3 s for 8 GiB on an H200 host, one thread). The store is
// therefore made of pieces (at least 64 MiB each, at most kMaxThreads of
// them) pinned by as many threads at once (cuMemHostAlloc per piece,
// CU_MEMHOSTALLOC_PORTABLE so that any of the session's contexts copies
// through it at full speed), and Prepare() starts that work in the
// background while the session is idle but not yet detached, so that the
// detach itself finds the store ready.
//
// The pieces belong to the context they were made in (cuMemHostAlloc memory
// goes with its context): DeviceHeap makes them in the primary context of
// the session's GPU, which the worker's warm retain keeps alive whatever the
// client does, and Release()s them before that context goes (session_move.h,
// when the session leaves its GPU). They are zeroed before they go back:
// they held session data.
//
// Threading: owned and called by the worker's executor thread only; the
// background pinning runs on a thread of its own, and every method except
// preparing() waits for it first. Failure: Ensure returns the driver's
// error (cuMemHostAlloc: out of memory) and holds no store then; a failed
// background Prepare is only logged (Ensure then tries again itself).
#pragma once

#include <algorithm>
#include <cstdint>
#include <thread>
#include <vector>

#include "backend/driver_table.h"
#include "common/status.h"

namespace rgpu::worker {

class SwapStore {
 public:
  static constexpr int kMaxThreads = 4;
  static constexpr uint64_t kMinPiece = uint64_t{64} << 20;

  explicit SwapStore(const backend::DriverTable& driver) : d_(driver) {}
  ~SwapStore() { Release(); }
  SwapStore(const SwapStore&) = delete;
  SwapStore& operator=(const SwapStore&) = delete;

  // At least `bytes` of pinned memory, made in context `ctx` (null: the
  // caller's current one) if it must be made now (after waiting for a
  // background Prepare). A smaller store is released and replaced.
  Status Ensure(uint64_t bytes, CUcontext ctx = nullptr);
  // Starts making a store of `bytes` in context `ctx` in the background
  // (nothing if the store is already that large or a Prepare runs).
  void Prepare(uint64_t bytes, CUcontext ctx);
  // True while a background Prepare runs.
  bool preparing() const { return bg_.joinable(); }
  // Zeroes and frees every piece (waits for a background Prepare first).
  void Release();

  uint64_t bytes() const { return bytes_; }
  // Milliseconds the last Ensure spent pinning (0: the store was ready).
  double last_pin_ms() const { return last_pin_ms_; }
  // Milliseconds the last background Prepare took (hidden from the detach).
  double background_pin_ms() const { return background_pin_ms_; }

  // Calls fn(host pointer, length) for each part of [offset, offset + len)
  // of the store, in order, split where pieces end; stops at the first
  // non-OK Status. The range must lie inside bytes().
  template <class F>
  Status ForEach(uint64_t offset, uint64_t len, F fn) const {
    uint64_t base = 0;
    for (const Piece& p : pieces_) {
      if (len == 0) break;
      if (offset < base + p.bytes) {
        uint64_t in = offset - base, n = std::min(len, p.bytes - in);
        RGPU_RETURN_IF_ERROR(fn(static_cast<uint8_t*>(p.ptr) + in, n));
        offset += n;
        len -= n;
      }
      base += p.bytes;
    }
    if (len != 0) return Status::Internal("swap store: range past the store");
    return {};
  }

 private:
  struct Piece {
    void* ptr = nullptr;
    uint64_t bytes = 0;
  };
  // Pins `bytes` in pieces, one thread per piece, with `ctx` current on each
  // (null: the caller's current context). Fills *out; on failure frees what
  // it made and returns why.
  Status Make(uint64_t bytes, CUcontext ctx, std::vector<Piece>* out) const;
  void Free(std::vector<Piece>* pieces) const;
  void Join();

  const backend::DriverTable& d_;
  std::vector<Piece> pieces_;
  uint64_t bytes_ = 0;
  double last_pin_ms_ = 0;
  double background_pin_ms_ = 0;
  // Background Prepare: writes only bg_* until joined.
  std::thread bg_;
  std::vector<Piece> bg_pieces_;
  uint64_t bg_bytes_ = 0;
  Status bg_status_;
  double bg_ms_ = 0;
};

}  // namespace rgpu::worker
