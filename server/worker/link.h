// Link: the worker's side of the client connection.
//
// A reader thread takes frames off the socket and queues them for the
// executor (the thread that calls CUDA), so a host function waiting for the
// client never blocks the frames that would release it: HostFuncDone frames
// are handled by the reader itself. The queue is bounded in bytes; when it is
// full the reader stops reading and TCP pushes back on the client.
// Writes come from the executor (replies, device output) and from driver
// threads running host functions; Send serialises them. Over TLS the same
// holds, through tls::Stream (which lets the reader and writers share the
// session).
// With a codec agreed in the handshake, bulk replies (Send with a bulk part,
// SendStaged) go out as compressed frames (proto/compression.h), and the
// reader decodes compressed requests.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <set>
#include <span>
#include <thread>
#include <vector>

#include "common/status.h"
#include "common/tls.h"
#include "proto/compression.h"
#include "proto/frame.h"

namespace rgpu::worker {

// Payload storage that is not zero-filled on resize: a 64 MiB copy chunk is
// overwritten by recv at once, and clearing it first would cost as much as
// the copy itself.
template <class T>
struct UninitAllocator : std::allocator<T> {
  template <class U>
  struct rebind {
    using other = UninitAllocator<U>;
  };
  UninitAllocator() = default;
  template <class U>
  UninitAllocator(const UninitAllocator<U>&) {}
  template <class U>
  void construct(U* p) noexcept {
    ::new (static_cast<void*>(p)) U;
  }
  template <class U, class... Args>
  void construct(U* p, Args&&... args) {
    ::new (static_cast<void*>(p)) U(std::forward<Args>(args)...);
  }
};
using PayloadBuffer = std::vector<uint8_t, UninitAllocator<uint8_t>>;

struct Request {
  proto::FrameHeader header;
  PayloadBuffer payload;
};

class Link {
 public:
  Link(int fd, size_t max_queued_bytes) : Link(fd, nullptr, max_queued_bytes) {}
  // Over TLS: every byte goes through `tls` (which must outlive the Link);
  // with null, straight through the socket as before.
  Link(int fd, tls::Stream* tls, size_t max_queued_bytes, proto::Codec codec = proto::Codec::kNone);
  ~Link();  // stops the reader; does not close the fd
  Link(const Link&) = delete;
  Link& operator=(const Link&) = delete;

  // Starts the reader. `on_end` (optional) runs on the reader thread once the
  // link has ended (the client left or broke the protocol).
  void Start(std::function<void()> on_end = {});
  // The next request, in arrival order. Returns false once the client has
  // gone (*why is kTransport) or broke the protocol (*why says how).
  // Executor thread only (it takes queued requests in batches).
  bool NextRequest(Request* r, Status* why);
  // Waits up to `timeout` for a request (or the end). False when the time
  // ran out with nothing to serve (idle detach ticks on that).
  bool WaitForRequest(std::chrono::milliseconds timeout);
  // True once the client has gone or broken the protocol (requests that
  // arrived before may still be queued).
  bool ended();
  // Writes one whole frame. Thread-safe.
  Status Send(std::span<const uint8_t> frame);
  // Writes one frame given in two pieces (head, then bulk data sent from
  // where it lies). Thread-safe.
  Status Send(std::span<const uint8_t> head, std::span<const uint8_t> bulk);
  // The same for bulk data still arriving (d2h_staging.h): before writing
  // bulk bytes [at, at + piece) it calls ready(at + piece), which blocks
  // until they are there. If ready fails, the rest of the frame is written
  // anyway (the stream must stay framed) and ready's error is returned
  // (kCuda); a transport failure is returned as such.
  Status SendStaged(std::span<const uint8_t> head, std::span<const uint8_t> bulk, size_t piece,
                    const std::function<Status(size_t upto)>& ready);
  // Runs on a driver thread inside a host function: asks the client to run
  // callback `id` and waits until it says it has, or until the link closes.
  void RunHostFunc(uint64_t id);
  // Wakes waiting host functions (the session is ending).
  void Close();
  // Gives a served request's storage back for reuse. Large buffers avoid
  // page faults on every bulk copy; small ones a malloc on the reader and a
  // free on the executor for every launch (they go back in bulk, under the
  // lock each side takes anyway: NextRequest per batch, the reader per hand-over).
  // Executor thread only.
  void Recycle(Request&& r);

 private:
  void ReadLoop();
  // Queues the reader's collected requests in one go (waiting for room in
  // the bounded queue) and empties `pending`; false when the session ended
  // meanwhile (the requests are then dropped with it).
  bool Hand(std::vector<Request>* pending);
  // Writes to the socket or through TLS. Caller holds write_mu_.
  Status Write(const uint8_t* p, size_t n);
  // Whether a frame with `bulk` bytes of bulk data goes out compressed.
  bool Compresses(size_t bulk) const {
    return encoder_.codec() != proto::Codec::kNone && bulk >= proto::kMinCompressedBulk;
  }
  // A frame given as head (header + fields) and bulk, through encoder_.
  // Caller holds write_mu_.
  Status SendCompressed(std::span<const uint8_t> head, std::span<const uint8_t> bulk,
                        const proto::ReadyFn& ready);

  const int fd_;
  tls::Stream* const tls_;
  const size_t max_queued_bytes_;
  std::mutex write_mu_;
  // GUARDED_BY(write_mu_), but for its codec (constant), which the reader reads too.
  proto::BlockEncoder encoder_;
  std::mutex mu_;
  std::condition_variable cv_;        // queue, space, host functions
  std::deque<Request> queue_;         // GUARDED_BY(mu_)
  std::deque<Request> batch_;         // the executor's only: taken from queue_ in one go
  size_t queued_bytes_ = 0;           // GUARDED_BY(mu_)
  std::atomic<size_t> queued_count_{0};  // queue_.size(), readable without mu_
  bool ended_ = false;                // GUARDED_BY(mu_)
  Status end_reason_;                 // GUARDED_BY(mu_)
  std::set<uint64_t> host_funcs_done_;  // GUARDED_BY(mu_)
  std::vector<PayloadBuffer> spare_;  // GUARDED_BY(mu_): recycled large buffers
  std::vector<PayloadBuffer> small_spare_;     // GUARDED_BY(mu_): small ones, executor -> reader
  std::vector<PayloadBuffer> small_returned_;  // the executor's only: served, not yet handed back
  std::vector<PayloadBuffer> small_free_;      // the reader's only: ready for its next frames
  std::thread reader_;
};

}  // namespace rgpu::worker
