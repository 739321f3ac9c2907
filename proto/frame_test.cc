#include "proto/frame.h"

#include <gtest/gtest.h>

namespace rgpu::proto {
namespace {

TEST(Frame, HeaderRoundTrip) {
  uint8_t b[kFrameHeaderSize];
  EncodeFrameHeader({123, 7, kReply, 0x1122334455667788ull}, b);
  FrameHeader h;
  ASSERT_TRUE(DecodeFrameHeader(b, kMaxFramePayload, &h).ok());
  EXPECT_EQ(h.length, 123u);
  EXPECT_EQ(h.call, 7);
  EXPECT_EQ(h.flags, kReply);
  EXPECT_EQ(h.request_id, 0x1122334455667788ull);
}

TEST(Frame, HugeLengthRefused) {
  uint8_t b[kFrameHeaderSize];
  EncodeFrameHeader({0xffffffffu, 1, 0, 1}, b);  // 4 GiB
  FrameHeader h;
  Status s = DecodeFrameHeader(b, kMaxFramePayload, &h);
  EXPECT_EQ(s.code(), Code::kProtocol);
}

TEST(Frame, UnknownFlagsRefused) {
  uint8_t b[kFrameHeaderSize];
  EncodeFrameHeader({0, 1, 0x8000, 1}, b);
  FrameHeader h;
  EXPECT_FALSE(DecodeFrameHeader(b, kMaxFramePayload, &h).ok());
}

TEST(Frame, AppendFrameSetsLength) {
  std::vector<uint8_t> out;
  std::vector<uint8_t> payload = {9, 8, 7};
  AppendFrame({0, 3, 0, 5}, payload, &out);
  ASSERT_EQ(out.size(), kFrameHeaderSize + 3);
  FrameHeader h;
  ASSERT_TRUE(DecodeFrameHeader(out.data(), kMaxFramePayload, &h).ok());
  EXPECT_EQ(h.length, 3u);
  EXPECT_EQ(out[kFrameHeaderSize], 9);
}

}  // namespace
}  // namespace rgpu::proto
