// ByteStream: a source of bytes other than a plain socket (today: a TLS
// session, common/tls.h). Readers that take one (proto::FrameReader) call
// recv() directly when they have none, so plain TCP pays nothing for the
// abstraction: not a virtual call, not a copy.
#pragma once

#include <cstddef>

#include "common/status.h"

namespace rgpu {

class ByteStream {
 public:
  virtual ~ByteStream() = default;
  // Blocks until at least one byte is available, then returns how many were
  // stored in buf (1..n). kTransport when the peer closed or the link failed.
  virtual Result<size_t> Read(void* buf, size_t n) = 0;
};

}  // namespace rgpu
