#include "proto/handshake.h"

#include <gtest/gtest.h>

#include "proto/frame.h"
#include "proto/version.h"

namespace rgpu::proto {
namespace {

std::span<const uint8_t> Payload(const std::vector<uint8_t>& frame) {
  return std::span<const uint8_t>(frame).subspan(kFrameHeaderSize);
}

TEST(Handshake, HelloRoundTrip) {
  Hello h{kHelloMagic, kProtocolVersion, "secret", "me@host pid=1", 2};
  auto frame = EncodeHelloFrame(h);
  Hello out;
  ASSERT_TRUE(DecodeHello(Payload(frame), &out).ok());
  EXPECT_EQ(out.token, "secret");
  EXPECT_EQ(out.identity, "me@host pid=1");
  EXPECT_EQ(out.gpus_wanted, 2u);
}

TEST(Handshake, BadMagicRefused) {
  Hello h{0x12345678, kProtocolVersion, "", "", 1};
  auto frame = EncodeHelloFrame(h);
  Hello out;
  EXPECT_EQ(DecodeHello(Payload(frame), &out).code(), Code::kProtocol);
}

TEST(Handshake, OversizedTokenRefused) {
  Hello h{kHelloMagic, kProtocolVersion, std::string(kMaxTokenLength + 1, 'x'), "", 1};
  auto frame = EncodeHelloFrame(h);
  Hello out;
  EXPECT_FALSE(DecodeHello(Payload(frame), &out).ok());
}

TEST(Handshake, EveryTruncationRefused) {
  Hello h{kHelloMagic, kProtocolVersion, "tok", "id", 1};
  auto frame = EncodeHelloFrame(h);
  auto p = Payload(frame);
  for (size_t n = 0; n < p.size(); ++n) {
    Hello out;
    EXPECT_FALSE(DecodeHello(p.first(n), &out).ok()) << n;
  }
}

TEST(Handshake, ReplyRoundTripAndUnknownStatus) {
  auto frame = EncodeHelloReplyFrame({HelloStatus::kBadToken, "wrong token", 0});
  HelloReply r;
  ASSERT_TRUE(DecodeHelloReply(Payload(frame), &r).ok());
  EXPECT_EQ(r.status, HelloStatus::kBadToken);
  EXPECT_EQ(r.message, "wrong token");
  auto bad = EncodeHelloReplyFrame({static_cast<HelloStatus>(99), "", 0});
  EXPECT_FALSE(DecodeHelloReply(Payload(bad), &r).ok());
}

TEST(Handshake, HandOverAndBindRoundTripAndRefuseEveryTruncation) {
  const std::string secret(kHandOverSecretSize, '\x5a');
  auto hand = EncodeHandOverFrame(secret);
  auto bind = EncodeBindFrame(secret);
  FrameHeader h;
  ASSERT_TRUE(DecodeFrameHeader(hand.data(), 1024, &h).ok());
  EXPECT_EQ(h.call, kEventHandOver);
  EXPECT_EQ(h.flags, kEvent);
  std::string got;
  ASSERT_TRUE(DecodeHandOver(Payload(hand), &got).ok());
  EXPECT_EQ(got, secret);
  ASSERT_TRUE(DecodeBind(Payload(bind), &got).ok());
  EXPECT_EQ(got, secret);
  for (size_t n = 0; n < Payload(bind).size(); ++n) {
    EXPECT_FALSE(DecodeBind(Payload(bind).first(n), &got).ok()) << n;
    EXPECT_FALSE(DecodeHandOver(Payload(hand).first(n), &got).ok()) << n;
  }
  // A short secret, or a Hello where a Bind belongs, is refused.
  EXPECT_FALSE(DecodeBind(Payload(EncodeBindFrame("short")), &got).ok());
  auto hello = EncodeHelloFrame({kHelloMagic, kProtocolVersion, "tok", "id", 1});
  EXPECT_FALSE(DecodeBind(Payload(hello), &got).ok());
}

TEST(Handshake, ConstantTimeEquals) {
  EXPECT_TRUE(ConstantTimeEquals("abc", "abc"));
  EXPECT_FALSE(ConstantTimeEquals("abc", "abd"));
  EXPECT_FALSE(ConstantTimeEquals("abc", "abcd"));
  EXPECT_FALSE(ConstantTimeEquals("", "a"));
  EXPECT_TRUE(ConstantTimeEquals("", ""));
}

}  // namespace
}  // namespace rgpu::proto
