// Frames: the unit on the wire after the handshake.
//
//   u32 payload_length | u16 call | u16 flags | u64 request_id | payload
//
// All little-endian. A request's call is a CallId from proto/calls.spec. A
// reply (flags & kReply) carries the same call and request_id; its payload
// starts with an i32 CUresult. Requests flagged kNoReply are asynchronous:
// the worker answers them only when they fail, with a kAsyncError frame.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "common/status.h"

namespace rgpu::proto {

constexpr size_t kFrameHeaderSize = 16;
// Largest payload either side accepts. Bulk copies are split into chunks
// below this (see kMaxChunk). A header announcing more is refused at once.
constexpr uint32_t kMaxFramePayload = 72u << 20;
constexpr uint32_t kMaxChunk = 64u << 20;

enum FrameFlags : uint16_t {
  kReply = 1 << 0,       // worker -> client answer to request_id
  kNoReply = 1 << 1,     // asynchronous request: answer only on failure
  kAsyncError = 1 << 2,  // worker -> client: an async request failed
  kEvent = 1 << 3,       // worker -> client: unsolicited notice (e.g. printf output)
  // The payload travels as compressed blocks (proto/compression.h); the
  // length is the payload's before compression. Only on links that agreed
  // on a codec; FrameReader decodes it and hands the frame on without it.
  kCompressed = 1 << 4,
};

struct FrameHeader {
  uint32_t length = 0;
  uint16_t call = 0;
  uint16_t flags = 0;
  uint64_t request_id = 0;
};

void EncodeFrameHeader(const FrameHeader& h, uint8_t out[kFrameHeaderSize]);
// Fails when the announced length exceeds `max_payload`.
Status DecodeFrameHeader(const uint8_t in[kFrameHeaderSize], uint32_t max_payload,
                         FrameHeader* h);

// Appends a whole frame (header + payload) to `out`.
void AppendFrame(const FrameHeader& h, std::span<const uint8_t> payload, std::vector<uint8_t>* out);

}  // namespace rgpu::proto
