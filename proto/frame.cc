#include "proto/frame.h"

#include <string>

namespace rgpu::proto {
namespace {
void Put(uint8_t* p, uint64_t v, int n) {
  for (int i = 0; i < n; ++i) p[i] = static_cast<uint8_t>(v >> (8 * i));
}
uint64_t Get(const uint8_t* p, int n) {
  uint64_t v = 0;
  for (int i = 0; i < n; ++i) v |= static_cast<uint64_t>(p[i]) << (8 * i);
  return v;
}
}  // namespace

void EncodeFrameHeader(const FrameHeader& h, uint8_t out[kFrameHeaderSize]) {
  Put(out, h.length, 4);
  Put(out + 4, h.call, 2);
  Put(out + 6, h.flags, 2);
  Put(out + 8, h.request_id, 8);
}

Status DecodeFrameHeader(const uint8_t in[kFrameHeaderSize], uint32_t max_payload,
                         FrameHeader* h) {
  h->length = static_cast<uint32_t>(Get(in, 4));
  h->call = static_cast<uint16_t>(Get(in + 4, 2));
  h->flags = static_cast<uint16_t>(Get(in + 6, 2));
  h->request_id = Get(in + 8, 8);
  if (h->length > max_payload)
    return Status::Protocol("frame announces " + std::to_string(h->length) +
                            " bytes > limit " + std::to_string(max_payload));
  constexpr uint16_t kKnown = kReply | kNoReply | kAsyncError | kEvent | kCompressed;
  if (h->flags & ~kKnown) return Status::Protocol("unknown frame flags " + std::to_string(h->flags));
  return {};
}

void AppendFrame(const FrameHeader& h, std::span<const uint8_t> payload,
                 std::vector<uint8_t>* out) {
  FrameHeader hh = h;
  hh.length = static_cast<uint32_t>(payload.size());
  size_t at = out->size();
  out->resize(at + kFrameHeaderSize);
  EncodeFrameHeader(hh, out->data() + at);
  out->insert(out->end(), payload.begin(), payload.end());
}

}  // namespace rgpu::proto
