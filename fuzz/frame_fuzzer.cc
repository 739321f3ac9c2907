// Fuzzes the frame header decoder (proto/frame.h) the way the worker and the
// client use it: a byte stream cut into header + payload frames.
//
// Input: a stream of frames. Each 16-byte header is decoded with the real
// limit (kMaxFramePayload); a header that decodes must re-encode to the same
// 16 bytes and respect the limit and the flag set; its payload is then
// skipped (as far as the input goes) and AppendFrame must rebuild the frame.
// A second decode with a small limit taken from the header checks that the
// limit is enforced exactly.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "proto/frame.h"

namespace {
void Check(bool ok, const char* what) {
  if (!ok) {
    fprintf(stderr, "frame_fuzzer: %s\n", what);
    abort();
  }
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace rgpu::proto;
  size_t at = 0;
  while (size - at >= kFrameHeaderSize) {
    const uint8_t* hb = data + at;
    FrameHeader h;
    rgpu::Status st = DecodeFrameHeader(hb, kMaxFramePayload, &h);
    if (!st.ok()) {
      Check(!st.message().empty(), "error without a message");
      return 0;
    }
    Check(h.length <= kMaxFramePayload, "length over the limit accepted");
    Check((h.flags & ~(kReply | kNoReply | kAsyncError | kEvent | kCompressed)) == 0, "unknown flags accepted");
    uint8_t again[kFrameHeaderSize];
    EncodeFrameHeader(h, again);
    Check(std::memcmp(again, hb, kFrameHeaderSize) == 0, "header does not round-trip");
    // The limit is inclusive: length == limit passes, length - 1 fails.
    FrameHeader h2;
    Check(DecodeFrameHeader(hb, h.length, &h2).ok(), "length == limit refused");
    if (h.length > 0) Check(!DecodeFrameHeader(hb, h.length - 1, &h2).ok(), "limit not enforced");
    at += kFrameHeaderSize;
    size_t n = std::min<size_t>(h.length, size - at);
    std::vector<uint8_t> frame;
    AppendFrame(h, std::span<const uint8_t>(data + at, n), &frame);
    Check(frame.size() == kFrameHeaderSize + n, "AppendFrame size");
    Check(DecodeFrameHeader(frame.data(), kMaxFramePayload, &h2).ok() && h2.length == n,
          "AppendFrame header");
    at += n;
  }
  return 0;
}
