// Tests for the sim device arena (sim_memory.h).
#include "backend/sim/sim_memory.h"

#include <gtest/gtest.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstring>
#include <vector>

namespace rgpu::backend::sim {
namespace {

bool Resident(uint64_t addr) {
  long page = sysconf(_SC_PAGESIZE);
  unsigned char v = 0;
  void* p = reinterpret_cast<void*>(addr / page * page);
  return mincore(p, page, &v) == 0 && (v & 1);
}

bool AllZero(uint64_t p, size_t n) {
  const auto* b = reinterpret_cast<const unsigned char*>(p);
  for (size_t i = 0; i < n; ++i) {
    if (b[i] != 0) return false;
  }
  return true;
}

TEST(Arena, AlignmentAndRounding) {
  Arena a;
  ASSERT_TRUE(a.Reserve(uint64_t{1} << 30).ok());
  uint64_t p1 = a.Allocate(1, 0, 1);
  uint64_t p2 = a.Allocate(100, 0, 1);
  ASSERT_NE(p1, 0u);
  ASSERT_NE(p2, 0u);
  EXPECT_EQ(p1 % Arena::kSmallAlign, 0u);
  EXPECT_EQ(p2 - p1, Arena::kSmallAlign);  // 1 byte still takes 512
  uint64_t big = a.Allocate(3 << 20, 0, 1);
  EXPECT_EQ(big % Arena::kLargeAlign, 0u);
  EXPECT_EQ(a.used(), 2 * Arena::kSmallAlign + (4u << 20));
  EXPECT_EQ(a.Find(p2 + 99)->base, p2);
  EXPECT_EQ(a.Find(p2 + 100), nullptr);  // past the requested size
  EXPECT_TRUE(a.ContainsRange(p2, 100));
  EXPECT_FALSE(a.ContainsRange(p2, 101));
  EXPECT_FALSE(a.ContainsRange(p2 + 50, 51));
  EXPECT_FALSE(a.Free(p2 + 1));
  EXPECT_TRUE(a.Free(p2));
  EXPECT_FALSE(a.Free(p2));
}

TEST(Arena, NewMemoryIsZeroEvenInSharedPages) {
  Arena a;
  ASSERT_TRUE(a.Reserve(uint64_t{1} << 30).ok());
  // Three small blocks in one page: free the middle one after dirtying it.
  uint64_t x = a.Allocate(512, 0, 1), y = a.Allocate(512, 0, 1), z = a.Allocate(512, 0, 1);
  std::memset(reinterpret_cast<void*>(x), 0xaa, 512);
  std::memset(reinterpret_cast<void*>(y), 0xbb, 512);
  std::memset(reinterpret_cast<void*>(z), 0xcc, 512);
  ASSERT_TRUE(a.Free(y));
  uint64_t y2 = a.Allocate(200, 0, 1);
  EXPECT_EQ(y2, y);  // first fit reuses the hole
  EXPECT_TRUE(AllZero(y2, 512));
  // The neighbours are untouched.
  EXPECT_EQ(reinterpret_cast<unsigned char*>(x)[511], 0xaa);
  EXPECT_EQ(reinterpret_cast<unsigned char*>(z)[0], 0xcc);
}

TEST(Arena, FreedPagesGoBackToTheHost) {
  Arena a;
  ASSERT_TRUE(a.Reserve(uint64_t{1} << 30).ok());
  uint64_t p = a.Allocate(8 << 20, 0, 1);
  ASSERT_NE(p, 0u);
  std::memset(reinterpret_cast<void*>(p), 1, 8 << 20);
  EXPECT_TRUE(Resident(p + (4 << 20)));
  ASSERT_TRUE(a.Free(p));
  EXPECT_FALSE(Resident(p + (4 << 20)));
  uint64_t q = a.Allocate(8 << 20, 0, 1);
  EXPECT_EQ(q, p);
  EXPECT_TRUE(AllZero(q, 8 << 20));
}

TEST(Arena, CoalescesAndFillsUp) {
  Arena a;
  ASSERT_TRUE(a.Reserve(uint64_t{64} << 20).ok());
  std::vector<uint64_t> blocks;
  for (uint64_t p; (p = a.Allocate(2 << 20, 0, 1)) != 0;) blocks.push_back(p);
  EXPECT_EQ(blocks.size(), 32u);
  EXPECT_EQ(a.Allocate(1, 0, 1), 0u);  // full
  for (uint64_t p : blocks) ASSERT_TRUE(a.Free(p));
  EXPECT_EQ(a.used(), 0u);
  // After coalescing the whole arena is one block again.
  EXPECT_NE(a.Allocate(64 << 20, 0, 1), 0u);
}

TEST(Arena, ManySmallAllocationsRoundTrip) {
  Arena a;
  ASSERT_TRUE(a.Reserve(uint64_t{1} << 30).ok());
  std::vector<uint64_t> live;
  unsigned seed = 7;
  for (int i = 0; i < 2000; ++i) {
    seed = seed * 1103515245 + 12345;
    if (!live.empty() && seed % 3 == 0) {
      size_t k = seed % live.size();
      ASSERT_TRUE(a.Free(live[k]));
      live.erase(live.begin() + k);
    } else {
      uint64_t size = 1 + seed % 20000;
      uint64_t p = a.Allocate(size, 0, 1);
      ASSERT_NE(p, 0u);
      ASSERT_TRUE(AllZero(p, size)) << i;
      std::memset(reinterpret_cast<void*>(p), 0x5a, size);
      live.push_back(p);
    }
  }
}

}  // namespace
}  // namespace rgpu::backend::sim
