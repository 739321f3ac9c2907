// Fuzzes the handshake decoders (proto/handshake.h): DecodeHello (the
// supervisor reads it from any peer, before authentication),
// DecodeHelloReply (the client reads it from the server), and TLS's
// hand-over pair: DecodeBind (a worker reads it from the client before it
// knows the client holds the secret) and DecodeHandOver (the client).
//
// Input: byte 0 selects the decoder (mod 4: Hello, HelloReply, HandOver,
// Bind), the rest is the frame payload. Oracle: ASan/UBSan; a successful decode respects the
// documented limits and re-encodes to the same payload.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "proto/frame.h"
#include "proto/handshake.h"

namespace {
void Check(bool ok, const char* what) {
  if (!ok) {
    fprintf(stderr, "handshake_fuzzer: %s\n", what);
    abort();
  }
}
void CheckSamePayload(const std::vector<uint8_t>& frame, std::span<const uint8_t> payload) {
  using rgpu::proto::kFrameHeaderSize;
  Check(frame.size() == kFrameHeaderSize + payload.size(), "re-encoded size differs");
  Check(payload.empty() ||
            std::memcmp(frame.data() + kFrameHeaderSize, payload.data(), payload.size()) == 0,
        "re-encoded bytes differ");
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace rgpu::proto;
  if (size < 1) return 0;
  std::span<const uint8_t> payload(data + 1, size - 1);
  if ((data[0] & 3) == 2 || (data[0] & 3) == 3) {
    std::string secret;
    bool bind = (data[0] & 3) == 3;
    rgpu::Status st = bind ? DecodeBind(payload, &secret) : DecodeHandOver(payload, &secret);
    if (!st.ok()) return 0;
    Check(secret.size() == kHandOverSecretSize, "secret of the wrong size accepted");
    // A hand-over is an event frame: its leading i32 (an event's CUresult
    // slot) is ignored by the decoder and written as 0.
    std::vector<uint8_t> frame = bind ? EncodeBindFrame(secret) : EncodeHandOverFrame(secret);
    if (!bind) {
      Check(frame.size() == kFrameHeaderSize + payload.size(), "re-encoded size differs");
      Check(std::memcmp(frame.data() + kFrameHeaderSize + 4, payload.data() + 4, payload.size() - 4) == 0,
            "re-encoded secret differs");
    } else {
      CheckSamePayload(frame, payload);
    }
  } else if ((data[0] & 1) == 0) {
    Hello h;
    if (!DecodeHello(payload, &h).ok()) return 0;
    Check(h.token.size() <= kMaxTokenLength, "token over the limit");
    Check(h.identity.size() <= kMaxIdentityLength, "identity over the limit");
    (void)ConstantTimeEquals(h.token, h.identity);
    CheckSamePayload(EncodeHelloFrame(h), payload);
  } else {
    HelloReply r;
    if (!DecodeHelloReply(payload, &r).ok()) return 0;
    Check(static_cast<int32_t>(r.status) >= 0 &&
              r.status <= HelloStatus::kMalformed, "unknown status accepted");
    CheckSamePayload(EncodeHelloReplyFrame(r), payload);
  }
  return 0;
}
