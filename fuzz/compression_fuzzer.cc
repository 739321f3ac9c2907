// Fuzzes wire compression (proto/compression.h) on both sides.
//
// Input: byte 0 picks the mode and codec, byte 1 the reader's buffer size;
// the rest is
//  - mode decode (byte 0 bit 0 clear): what the peer sends to a FrameReader
//    that agreed on the codec. Oracle: it never crashes or reads out of
//    bounds (ASan), every frame it returns has exactly the length its header
//    announced, and it fails only with kProtocol (bad header or block) or
//    kTransport (end of data);
//  - mode round trip (bit 0 set): a frame's bulk data, encoded with
//    BlockEncoder (the split between fields and bulk from byte 1) and read
//    back in pieces. Oracle: the same bytes come out.
// Block sizes are the real ones (1 MiB), so decode mode mostly exercises
// block headers, short and corrupt blocks; round trip uses inputs up to
// 64 KiB, a fraction of one block.
#include <sys/socket.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "proto/compression.h"
#include "proto/frame.h"
#include "proto/frame_reader.h"

namespace {
void Check(bool ok, const char* what) {
  if (!ok) {
    fprintf(stderr, "compression_fuzzer: %s\n", what);
    abort();
  }
}
constexpr uint32_t kLimit = 4u << 20;

// Queues `bytes` on a socketpair whose far end is then shut down; returns
// the reading end (or -1).
int Feed(const std::vector<uint8_t>& bytes, int* writer) {
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) return -1;
  int sndbuf = 1 << 20;
  setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof sndbuf);
  size_t sent = 0;
  while (sent < bytes.size()) {
    ssize_t w = write(sv[0], bytes.data() + sent, bytes.size() - sent);
    if (w <= 0) break;
    sent += static_cast<size_t>(w);
  }
  Check(sent == bytes.size(), "could not queue the input");
  shutdown(sv[0], SHUT_WR);
  *writer = sv[0];
  return sv[1];
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace rgpu;
  using namespace rgpu::proto;
  if (size < 2 || size > (64u << 10)) return 0;
  const Codec codec = (data[0] & 2) ? Codec::kZstd : Codec::kLz4;
  const size_t buffer_size = 16 + 4 * size_t{data[1]};
  const bool round_trip = data[0] & 1;
  std::vector<uint8_t> body(data + 2, data + size);

  std::vector<uint8_t> stream;
  std::vector<uint8_t> want;
  if (round_trip) {
    size_t split = std::min(body.size(), size_t{data[1]});
    BlockEncoder enc(codec);
    Status st = enc.WriteFrame(7, kNoReply, 9, std::span(body).first(split), std::span(body).subspan(split),
                               [&](const uint8_t* p, size_t n) {
                                 stream.insert(stream.end(), p, p + n);
                                 return Status();
                               });
    Check(st.ok(), "encoding failed");
    want = body;
  } else {
    stream = body;
  }
  int writer = -1;
  int fd = Feed(stream, &writer);
  if (fd < 0) return 0;
  FrameReader reader(fd, kLimit, buffer_size);
  reader.set_codec(codec);
  for (int frames = 0;; ++frames) {
    FrameHeader h;
    Status st = reader.NextHeader(&h);
    std::vector<uint8_t> got;
    if (st.ok()) {
      Check((h.flags & kCompressed) == 0, "kCompressed handed on");
      got.resize(h.length);
      // In two pieces: the decoded stream must not care where reads split.
      size_t first = std::min<size_t>(got.size(), 13);
      st = reader.ReadPayload(got.data(), first);
      if (st.ok()) st = reader.ReadPayload(got.data() + first, got.size() - first);
    }
    if (round_trip) {
      Check(frames > 0 || st.ok(), "the encoded frame did not decode");
      if (frames == 0) {
        Check(got == want, "round trip changed the data");
        Check(h.call == 7 && h.flags == kNoReply && h.request_id == 9, "round trip changed the header");
        continue;
      }
      Check(!st.ok() && st.code() == Code::kTransport, "data after the encoded frame");
      break;
    }
    if (!st.ok()) {
      Check(st.code() == Code::kProtocol || st.code() == Code::kTransport, "unexpected failure kind");
      break;
    }
  }
  close(fd);
  close(writer);
  return 0;
}
