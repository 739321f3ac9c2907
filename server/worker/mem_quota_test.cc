#include "server/worker/mem_quota.h"

#include <cuda.h>
#include <gtest/gtest.h>

namespace rgpu::worker {
namespace {

TEST(MemQuota, NoLimitAllowsEverything) {
  MemQuota q;
  EXPECT_TRUE(q.Check(~uint64_t{0}, "cuMemAlloc").ok());
  q.AddAllocation(0x1000, 1ull << 40);
  EXPECT_TRUE(q.Check(1ull << 40, "cuMemAlloc").ok());
}

TEST(MemQuota, RefusesPastTheLimitWithOutOfMemoryAndGivesBackOnFree) {
  MemQuota q;
  q.set_limit(100);
  EXPECT_TRUE(q.Check(100, "cuMemAlloc").ok());
  q.AddAllocation(0x1000, 60);
  Status st = q.Check(41, "cuMemAlloc");
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.cu_result(), CUDA_ERROR_OUT_OF_MEMORY);
  EXPECT_NE(st.message().find("--max-mem limit is 100 bytes"), std::string::npos) << st.message();
  EXPECT_TRUE(q.Check(40, "cuMemAlloc").ok());
  EXPECT_FALSE(q.Check(~uint64_t{0}, "cuMemAlloc").ok());  // no overflow
  q.RemoveAllocation(0x1000);
  q.RemoveAllocation(0x1000);  // twice: no-op
  EXPECT_EQ(q.used(), 0u);
  q.AddAllocation(0x2000, 10);
  q.AddAllocation(0x2000, 20);  // the same address again replaces, never counts twice
  EXPECT_EQ(q.used(), 20u);
}

TEST(MemQuota, PhysicalMemoryCountsUntilReleasedAndUnmapped) {
  MemQuota q;
  q.set_limit(100);
  q.AddPhysical(7, 50);
  q.Map(0xa000, 7);
  q.Map(0xb000, 7);
  q.ReleasePhysical(7);
  EXPECT_EQ(q.used(), 50u);  // still mapped twice
  q.Unmap(0xa000);
  EXPECT_EQ(q.used(), 50u);
  q.Unmap(0xb000);
  EXPECT_EQ(q.used(), 0u);
  // Unmapped first, released later.
  q.AddPhysical(8, 30);
  q.Map(0xc000, 8);
  q.Unmap(0xc000);
  EXPECT_EQ(q.used(), 30u);
  q.ReleasePhysical(8);
  EXPECT_EQ(q.used(), 0u);
  q.AddPhysical(9, 30);
  q.Clear();
  EXPECT_EQ(q.used(), 0u);
}

}  // namespace
}  // namespace rgpu::worker
