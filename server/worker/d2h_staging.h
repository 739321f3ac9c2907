// D2HStaging: device-to-host reply data staged in pinned memory and sent
// while it is still arriving (DESIGN.md rule 5).
//
// Copying device memory into pageable memory goes through the driver's own
// bounce buffer, at a fraction of the PCIe speed, and the reply could only
// start once the whole chunk was there: a 64 MiB chunk then costs the device
// copy plus the send, one after the other. Here the copy goes into a pinned
// buffer (this worker's, kept for the session) as pieces of kPiece bytes on
// the request's stream, each followed by an event; the first piece is waited
// for before the handler returns (so an error already pending on the stream
// is the copy's result, as the driver would report it), and the reply's
// sender waits for each further piece just before writing it. The copy of
// piece i+1 overlaps the send of piece i.
//
// One per worker process (Get), used by the executor thread only. The pinned
// buffer is portable (usable from every context) and kept; the events are
// made in the current context at Start and destroyed by Finish, so none
// outlives the context it belongs to (creating a few costs microseconds,
// against milliseconds for the data).
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "backend/driver_table.h"
#include "common/status.h"

namespace rgpu::worker {

class D2HStaging {
 public:
  static constexpr uint64_t kPiece = 4u << 20;
  // Copies of this size and more are staged; smaller ones (a loss value, a
  // flag) are not worth the events.
  static constexpr uint64_t kMinStaged = 1u << 20;
  static constexpr uint64_t kMaxBytes = 64u << 20;  // one reply chunk

  // The worker's one instance (never destroyed: the process ends with the
  // session, and the driver may already be gone in exit handlers).
  static D2HStaging& Get(const backend::DriverTable& driver);

  // Whether staging can be used: the pinned buffer is allocated on the first
  // call; if that fails (or the backend lacks a call), it says why once in
  // the log and copies go the unstaged way for the rest of the session.
  bool Available();
  // Starts copying [src, src + n) (n <= kMaxBytes) on `stream` in the
  // current context, and waits for the first piece. On success *data is the
  // staged bytes; pieces after the first are still arriving until
  // WaitFor says they are there. A CUDA error is returned as a kCuda Status.
  Status Start(CUdeviceptr src, uint64_t n, CUstream stream, std::span<const uint8_t>* data);
  // Blocks until the first `upto` bytes of the started copy have landed.
  Status WaitFor(uint64_t upto);
  // True from a successful Start until End: the reply being encoded carries
  // staged data (the executor's dispatcher asks, then calls End).
  bool active() const { return active_; }
  void End() { active_ = false; }
  // After the reply was sent (or failed): waits for whatever is still in
  // flight into the buffer and destroys the events. Start calls it too.
  void Finish();
  // Frees the pinned buffer (made again at the next use): it belongs to the
  // context that was current when it was made, which is about to go (the
  // session moves to another GPU, session_move.h). Call between requests.
  void ReleaseBuffer();

 private:
  explicit D2HStaging(const backend::DriverTable& driver) : d_(driver) {}
  Status MakeEvents(size_t count);  // in the current context

  const backend::DriverTable& d_;
  uint8_t* buf_ = nullptr;
  bool tried_ = false;  // Available() ran once
  std::vector<CUevent> events_;  // one per piece of the started copy
  uint64_t size_ = 0;           // of the started copy
  uint64_t landed_ = 0;         // bytes known to be there
  bool active_ = false;
};

}  // namespace rgpu::worker
