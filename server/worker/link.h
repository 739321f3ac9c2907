// Link: the worker's side of the client connection.
//
// A reader thread takes frames off the socket and queues them for the
// executor (the thread that calls CUDA), so a host function waiting for the
// client never blocks the frames that would release it: HostFuncDone frames
// are handled by the reader itself. The queue is bounded in bytes; when it is
// full the reader stops reading and TCP pushes back on the client.
// Writes come from the executor (replies, device output) and from driver
// threads running host functions; Send serialises them.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <mutex>
#include <set>
#include <span>
#include <thread>
#include <vector>

#include "common/status.h"
#include "proto/frame.h"

namespace rgpu::worker {

struct Request {
  proto::FrameHeader header;
  std::vector<uint8_t> payload;
};

class Link {
 public:
  Link(int fd, size_t max_queued_bytes);
  ~Link();  // stops the reader; does not close the fd
  Link(const Link&) = delete;
  Link& operator=(const Link&) = delete;

  void Start();
  // The next request, in arrival order. Returns false once the client has
  // gone (*why is kTransport) or broke the protocol (*why says how).
  bool NextRequest(Request* r, Status* why);
  // Writes one whole frame. Thread-safe.
  Status Send(std::span<const uint8_t> frame);
  // Runs on a driver thread inside a host function: asks the client to run
  // callback `id` and waits until it says it has, or until the link closes.
  void RunHostFunc(uint64_t id);
  // Wakes waiting host functions (the session is ending).
  void Close();

 private:
  void ReadLoop();

  const int fd_;
  const size_t max_queued_bytes_;
  std::mutex write_mu_;
  std::mutex mu_;
  std::condition_variable cv_;        // queue, space, host functions
  std::deque<Request> queue_;         // GUARDED_BY(mu_)
  size_t queued_bytes_ = 0;           // GUARDED_BY(mu_)
  bool ended_ = false;                // GUARDED_BY(mu_)
  Status end_reason_;                 // GUARDED_BY(mu_)
  std::set<uint64_t> host_funcs_done_;  // GUARDED_BY(mu_)
  std::thread reader_;
};

}  // namespace rgpu::worker
