// Fuzzes proto::FrameReader (proto/frame_reader.h), the buffered reader the
// worker reads its client's frames with: refills, moving the tail to the
// front of the buffer, payloads larger than the buffer, EOF mid-frame.
//
// Input: byte 0 picks the buffer size (16 + 4 * byte: 16..1036 bytes, so
// that small inputs reach every path), the rest is what the peer sends; it is
// written to a socketpair whose far end is then shut down. Oracle: the frames
// FrameReader returns are exactly those a plain linear parse of the stream
// finds (same headers, same payload bytes), and it fails where the parse
// does (kProtocol at a bad header, kTransport at the end of the data).
// This reader agreed on no compression, so a frame flagged kCompressed is a
// protocol error where it starts (compression_fuzzer covers decoding).
// The payload limit is 1 MiB instead of kMaxFramePayload (72 MiB) so that a
// header announcing a big frame costs little.
#include <sys/socket.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "proto/frame.h"
#include "proto/frame_reader.h"

namespace {
void Check(bool ok, const char* what) {
  if (!ok) {
    fprintf(stderr, "frame_reader_fuzzer: %s\n", what);
    abort();
  }
}
constexpr uint32_t kLimit = 1u << 20;
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace rgpu;
  using namespace rgpu::proto;
  if (size < 1 || size > (64u << 10)) return 0;  // stays within a socket buffer
  size_t buffer_size = 16 + 4 * size_t{data[0]};
  const uint8_t* stream = data + 1;
  size_t n = size - 1;
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) return 0;
  int sndbuf = 1 << 20;
  setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof sndbuf);
  size_t sent = 0;
  while (sent < n) {
    ssize_t w = write(sv[0], stream + sent, n - sent);
    if (w <= 0) break;
    sent += static_cast<size_t>(w);
  }
  Check(sent == n, "could not queue the input");
  shutdown(sv[0], SHUT_WR);

  FrameReader reader(sv[1], kLimit, buffer_size);
  size_t at = 0;
  for (;;) {
    FrameHeader h;
    std::span<const uint8_t> payload;
    Status st = reader.Next(&h, &payload);
    // The linear parse of the same bytes.
    FrameHeader want;
    bool have_header = n - at >= kFrameHeaderSize;
    Status want_st = have_header ? DecodeFrameHeader(stream + at, kLimit, &want)
                                 : Status::Transport("end");
    if (want_st.ok() && (want.flags & kCompressed)) want_st = Status::Protocol("compressed");
    if (want_st.ok() && want.length > n - at - kFrameHeaderSize) want_st = Status::Transport("end");
    if (!want_st.ok()) {
      Check(!st.ok(), "a frame where the stream has none");
      Check(st.code() == want_st.code(), "wrong failure kind");
      break;
    }
    Check(st.ok(), "no frame where the stream has one");
    Check(h.length == want.length && h.call == want.call && h.flags == want.flags &&
              h.request_id == want.request_id,
          "header differs");
    Check(payload.size() == want.length &&
              (want.length == 0 ||
               memcmp(payload.data(), stream + at + kFrameHeaderSize, want.length) == 0),
          "payload differs");
    at += kFrameHeaderSize + want.length;
  }
  close(sv[0]);
  close(sv[1]);
  return 0;
}
