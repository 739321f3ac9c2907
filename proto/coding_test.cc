#include "proto/coding.h"

#include <gtest/gtest.h>

namespace rgpu::proto {
namespace {

TEST(Coding, RoundTripsEveryWidthLittleEndian) {
  std::vector<uint8_t> buf;
  Writer w(&buf);
  w.U8(0xab);
  w.U16(0x1234);
  w.U32(0xdeadbeef);
  w.U64(0x0102030405060708ull);
  w.I32(-5);
  w.F32(1.5f);
  w.Str("hello");
  EXPECT_EQ(buf[1], 0x34);  // little-endian
  EXPECT_EQ(buf[2], 0x12);
  Reader r(buf);
  uint8_t a;
  uint16_t b;
  uint32_t c;
  uint64_t d;
  int32_t e;
  float f;
  std::string s;
  ASSERT_TRUE(r.U8(&a).ok());
  ASSERT_TRUE(r.U16(&b).ok());
  ASSERT_TRUE(r.U32(&c).ok());
  ASSERT_TRUE(r.U64(&d).ok());
  ASSERT_TRUE(r.I32(&e).ok());
  ASSERT_TRUE(r.F32(&f).ok());
  ASSERT_TRUE(r.Str(100, &s).ok());
  EXPECT_EQ(a, 0xab);
  EXPECT_EQ(b, 0x1234);
  EXPECT_EQ(c, 0xdeadbeefu);
  EXPECT_EQ(d, 0x0102030405060708ull);
  EXPECT_EQ(e, -5);
  EXPECT_EQ(f, 1.5f);
  EXPECT_EQ(s, "hello");
  EXPECT_TRUE(r.Finish().ok());
}

TEST(Coding, TruncationFails) {
  std::vector<uint8_t> buf = {1, 2, 3};
  Reader r(buf);
  uint32_t v;
  Status s = r.U32(&v);
  EXPECT_EQ(s.code(), Code::kProtocol);
}

TEST(Coding, LengthOverLimitFailsBeforeUse) {
  std::vector<uint8_t> buf;
  Writer w(&buf);
  w.U64(1ull << 40);  // announces a terabyte
  Reader r(buf);
  std::span<const uint8_t> out;
  Status s = r.Bytes(1024, &out);
  EXPECT_EQ(s.code(), Code::kProtocol);
  EXPECT_NE(s.message().find("limit"), std::string::npos);
}

TEST(Coding, LengthOverFrameFails) {
  std::vector<uint8_t> buf;
  Writer w(&buf);
  w.U64(10);
  w.U8(1);
  Reader r(buf);
  std::span<const uint8_t> out;
  EXPECT_FALSE(r.Bytes(100, &out).ok());
}

TEST(Coding, TrailingBytesRefused) {
  std::vector<uint8_t> buf = {1, 2};
  Reader r(buf);
  uint8_t v;
  ASSERT_TRUE(r.U8(&v).ok());
  EXPECT_FALSE(r.Finish().ok());
}

}  // namespace
}  // namespace rgpu::proto
