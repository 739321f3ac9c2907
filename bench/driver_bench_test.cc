// The copy patterns of the driver bench (driver_bench.h): what they hold and
// that they are the same every time.
#include <cstring>
#include <set>
#include <vector>

#include <gtest/gtest.h>

#include "bench/driver_bench.h"

namespace rgpu::bench {
namespace {

std::vector<uint8_t> Filled(CopyPattern p, size_t n) {
  std::vector<uint8_t> v(n, 0xee);
  FillCopyPattern(p, v.data(), n);
  return v;
}

TEST(CopyPatternTest, ReluIsHalfZerosAndPositiveFloats) {
  constexpr size_t kFloats = 1 << 18;
  std::vector<uint8_t> bytes = Filled(CopyPattern::kRelu, kFloats * 4);
  std::vector<float> f(kFloats);
  memcpy(f.data(), bytes.data(), bytes.size());
  size_t zeros = 0;
  std::set<uint32_t> mantissas;
  for (float x : f) {
    uint32_t bits;
    memcpy(&bits, &x, 4);
    if (bits == 0) {  // exactly +0.0f, as ReLU gives
      ++zeros;
      continue;
    }
    ASSERT_GE(x, 1.0f / 16) << bits;
    ASSERT_LT(x, 4.0f) << bits;
    mantissas.insert(bits & 0x7fffff);
  }
  EXPECT_NEAR(static_cast<double>(zeros) / kFloats, 0.5, 0.01);
  // Full random mantissas: nearly every non-zero value has its own.
  EXPECT_GT(mantissas.size(), (kFloats - zeros) * 95 / 100);
}

TEST(CopyPatternTest, DeterministicAndDistinct) {
  for (CopyPattern p : {CopyPattern::kFill, CopyPattern::kRelu, CopyPattern::kRandom})
    EXPECT_EQ(Filled(p, 100003), Filled(p, 100003)) << CopyPatternName(p);
  EXPECT_NE(Filled(CopyPattern::kRelu, 4096), Filled(CopyPattern::kRandom, 4096));
  std::vector<uint8_t> fill = Filled(CopyPattern::kFill, 4099);
  EXPECT_EQ(fill, std::vector<uint8_t>(4099, 0x3c));  // [4]'s data, unchanged
}

TEST(CopyPatternTest, RandomBytesAreUniformAndEveryByteIsWritten) {
  constexpr size_t kBytes = (1 << 20) + 5;  // a tail that is not a multiple of 8
  std::vector<uint8_t> v = Filled(CopyPattern::kRandom, kBytes);
  std::vector<size_t> hist(256);
  for (uint8_t b : v) hist[b]++;
  for (size_t count : hist) {
    EXPECT_GT(count, kBytes / 256 * 9 / 10);
    EXPECT_LT(count, kBytes / 256 * 11 / 10);
  }
  // The tail bytes are written (the buffer started as 0xee).
  std::vector<uint8_t> small = Filled(CopyPattern::kRandom, 13);
  EXPECT_NE(std::vector<uint8_t>(small.begin() + 8, small.end()), std::vector<uint8_t>(5, 0xee));
  std::vector<uint8_t> relu = Filled(CopyPattern::kRelu, 7);
  EXPECT_EQ(std::vector<uint8_t>(relu.begin() + 4, relu.end()), std::vector<uint8_t>(3, 0));
}

TEST(CopyPatternTest, ParsesLists) {
  Result<std::vector<CopyPattern>> p = ParseCopyPatterns("relu,random");
  ASSERT_TRUE(p.ok()) << p.status().message();
  EXPECT_EQ(*p, (std::vector<CopyPattern>{CopyPattern::kRelu, CopyPattern::kRandom}));
  ASSERT_TRUE(ParseCopyPatterns("fill").ok());
  for (const char* bad : {"", "relu,", "zeros", "relu,,random"}) {
    Result<std::vector<CopyPattern>> r = ParseCopyPatterns(bad);
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_NE(r.status().message().find("copy pattern"), std::string::npos);
  }
}

}  // namespace
}  // namespace rgpu::bench
