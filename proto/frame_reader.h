// FrameReader: reads whole frames from a blocking socket with few system
// calls. Small frames are parsed out of one large receive buffer (a batch of
// launches arrives in one recv); a payload larger than the buffer is read
// straight into its destination.
//
// Two ways to read: Next/NextOwned return a whole frame; NextHeader followed
// by ReadPayload calls lets the caller put parts of a payload where they
// belong (a device-to-host copy straight into the application's buffer).
//
// Over TLS the bytes come from a ByteStream (common/tls.h) instead of recv;
// plain sockets keep their direct recv.
//
// Compressed frames (proto/compression.h) are decoded here, so callers see
// every frame as it was before compression: the header without
// kCompressed, its length the decoded length, ReadPayload giving decoded
// bytes (a block that fits is decompressed straight into the destination).
// They are accepted only after set_codec names the link's codec.
//
// Not thread-safe: one reader per socket, used by one thread. A span returned
// by Next is valid until the next call.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "common/byte_stream.h"
#include "common/status.h"
#include "proto/compression.h"
#include "proto/frame.h"

namespace rgpu::proto {

class FrameReader {
 public:
  FrameReader(int fd, uint32_t max_payload, size_t buffer_size = 1 << 20)
      : FrameReader(fd, nullptr, max_payload, buffer_size) {}
  // Reads through `stream` when it is not null (it must outlive the reader).
  FrameReader(int fd, ByteStream* stream, uint32_t max_payload, size_t buffer_size = 1 << 20);

  // Blocks for the next frame. Fails with kTransport when the peer closed or
  // the read failed, kProtocol when the header is invalid (the caller must
  // then drop the connection: the stream position is lost).
  Status Next(FrameHeader* h, std::span<const uint8_t>* payload);
  // Like Next, but the payload is moved into `payload` (large payloads are
  // received straight into it: no extra copy).
  Status NextOwned(FrameHeader* h, std::vector<uint8_t>* payload);

  // Reads the next header only; its payload must then be consumed with
  // ReadPayload (exactly h->length bytes in total) before the next frame.
  Status NextHeader(FrameHeader* h);
  // Copies the next n payload bytes into dst (buffered bytes first, then
  // straight from the socket).
  Status ReadPayload(void* dst, size_t n);

  // The codec agreed in the handshake; until then (and with kNone) a
  // compressed frame is a protocol error.
  void set_codec(Codec c) { codec_ = c; }

  // Before blocking in recv, poll the socket without blocking for the
  // common/spin.h budget (plain sockets only; off by default). For the two
  // ends of a session's link: a frame that follows within microseconds is
  // then read without waking a sleeping thread, which costs several
  // microseconds on each side of every round trip.
  void set_spin(bool on) { spin_ = on; }

  // True when the next frame's header is already received (plain sockets;
  // a TLS stream's own buffer is not seen): reading it won't block.
  bool HeaderBuffered() const { return end_ - start_ >= kFrameHeaderSize; }

 private:
  // Reads until at least `n` bytes are buffered past start_ (n <= size).
  Status Fill(size_t n);
  // One recv (or stream read) of up to n bytes: > 0 bytes, or a failure.
  Result<size_t> Receive(void* dst, size_t n);
  // The next n bytes of the stream as they are on the wire.
  Status ReadRaw(void* dst, size_t n);
  // The next n decoded bytes of the current compressed frame.
  Status ReadDecoded(uint8_t* dst, size_t n);
  // Reads the next block of the current compressed frame: into dst when it
  // is exactly `want` bytes or fewer (returns its size in *direct), else into block_.
  Status NextBlock(uint8_t* dst, size_t want, size_t* direct);

  int fd_;
  ByteStream* stream_;
  uint32_t max_payload_;
  std::vector<uint8_t> buf_;
  size_t start_ = 0;  // first unconsumed byte
  size_t end_ = 0;    // one past the last received byte
  bool spin_ = false;
  Codec codec_ = Codec::kNone;
  // The current compressed frame: bytes not yet handed to the caller, and
  // the decoded block they are taken from first ([block_at_, block_end_)).
  size_t decoded_left_ = 0;
  std::vector<uint8_t> block_;
  size_t block_at_ = 0, block_end_ = 0;
  std::vector<uint8_t> wire_;  // a compressed block as received
};

}  // namespace rgpu::proto
