// FrameReader: reads whole frames from a blocking socket with few system
// calls. Small frames are parsed out of one large receive buffer (a batch of
// launches arrives in one recv); a payload larger than the buffer is read
// straight into its own storage.
//
// Not thread-safe: one reader per socket, used by one thread. A returned
// payload span is valid until the next call to Next().
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "common/status.h"
#include "proto/frame.h"

namespace rgpu::proto {

class FrameReader {
 public:
  FrameReader(int fd, uint32_t max_payload, size_t buffer_size = 1 << 20);

  // Blocks for the next frame. Fails with kTransport when the peer closed or
  // the read failed, kProtocol when the header is invalid (the caller must
  // then drop the connection: the stream position is lost).
  Status Next(FrameHeader* h, std::span<const uint8_t>* payload);

  // Like Next, but the payload is moved into `payload` (large payloads are
  // received straight into it: no extra copy).
  Status NextOwned(FrameHeader* h, std::vector<uint8_t>* payload);

  // True when a whole frame is already buffered (Next will not block).
  bool HasBufferedFrame() const;

 private:
  // Reads until at least `n` bytes are buffered past start_.
  Status Fill(size_t n);

  int fd_;
  uint32_t max_payload_;
  std::vector<uint8_t> buf_;
  size_t start_ = 0;  // first unconsumed byte
  size_t end_ = 0;    // one past the last received byte
  std::vector<uint8_t> big_;
};

}  // namespace rgpu::proto
