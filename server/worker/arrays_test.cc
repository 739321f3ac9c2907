// ArrayTable over the sim backend: the session-end wipe zeroes every byte of
// every array before it is destroyed, and objects go first.
#include "server/worker/arrays.h"

#include <algorithm>
#include <vector>

#include <gtest/gtest.h>

namespace rgpu::worker {
namespace {

std::vector<CUarray>* g_destroyed = nullptr;
CUresult RecordDestroy(CUarray a) {
  g_destroyed->push_back(a);
  return CUDA_SUCCESS;
}

class ArrayTableTest : public ::testing::Test {
 protected:
  void SetUp() override {
    backend::BackendOptions o;
    o.kind = "sim";
    o.profile_path = RGPU_SIM_PROFILE;
    ASSERT_TRUE(backend::LoadBackend(o, &d_).ok());
    ASSERT_EQ(d_.cuInit(0), CUDA_SUCCESS);
    ASSERT_EQ(d_.cuDevicePrimaryCtxRetain(&ctx_, 0), CUDA_SUCCESS);
    ASSERT_EQ(d_.cuCtxSetCurrent(ctx_), CUDA_SUCCESS);
  }
  void TearDown() override { d_.cuDevicePrimaryCtxRelease_v2(0); }

  // A 3D array of `w` x `h` x `dep` uchar4, filled with nonzero bytes.
  ArrayEntry Make(size_t w, size_t h, size_t dep) {
    CUDA_ARRAY3D_DESCRIPTOR desc{};
    desc.Width = w, desc.Height = h, desc.Depth = dep;
    desc.Format = CU_AD_FORMAT_UNSIGNED_INT8;
    desc.NumChannels = 4;
    ArrayEntry e;
    EXPECT_EQ(d_.cuArray3DCreate_v2(&e.array, &desc), CUDA_SUCCESS);
    e.ctx = ctx_;
    e.row_bytes = w * 4, e.rows = h ? h : 1, e.slices = dep ? dep : 1;
    std::vector<uint8_t> fill(e.row_bytes * e.rows * e.slices, 0x5a);
    CUDA_MEMCPY3D c{};
    c.srcMemoryType = CU_MEMORYTYPE_HOST, c.srcHost = fill.data(), c.srcPitch = e.row_bytes, c.srcHeight = e.rows;
    c.dstMemoryType = CU_MEMORYTYPE_ARRAY, c.dstArray = e.array;
    c.WidthInBytes = e.row_bytes, c.Height = e.rows, c.Depth = e.slices;
    EXPECT_EQ(d_.cuMemcpy3D_v2(&c), CUDA_SUCCESS);
    return e;
  }
  std::vector<uint8_t> Read(const ArrayEntry& e) {
    std::vector<uint8_t> out(e.row_bytes * e.rows * e.slices, 0xff);
    CUDA_MEMCPY3D c{};
    c.srcMemoryType = CU_MEMORYTYPE_ARRAY, c.srcArray = e.array;
    c.dstMemoryType = CU_MEMORYTYPE_HOST, c.dstHost = out.data(), c.dstPitch = e.row_bytes, c.dstHeight = e.rows;
    c.WidthInBytes = e.row_bytes, c.Height = e.rows, c.Depth = e.slices;
    EXPECT_EQ(d_.cuMemcpy3D_v2(&c), CUDA_SUCCESS);
    return out;
  }

  backend::DriverTable d_;
  CUcontext ctx_ = nullptr;
};

TEST_F(ArrayTableTest, ReleaseAllWipesEveryByteThenDestroys) {
  ArrayTable t;
  ArrayEntry a = Make(300, 70, 3), b = Make(1000, 0, 0);
  ASSERT_TRUE(t.Add(0x100, a).ok());
  ASSERT_TRUE(t.Add(0x110, b).ok());
  EXPECT_FALSE(t.Add(0x100, a).ok());  // an id in use
  CUDA_RESOURCE_DESC rd{};
  rd.resType = CU_RESOURCE_TYPE_ARRAY;
  rd.res.array.hArray = a.array;
  CUDA_TEXTURE_DESC td{};
  CUtexObject tex = 0;
  ASSERT_EQ(d_.cuTexObjectCreate(&tex, &rd, &td, nullptr), CUDA_SUCCESS);
  t.AddObject(false, tex, 1);
  EXPECT_FALSE(t.empty());

  // Destruction recorded instead of done, so the bytes can be read after.
  std::vector<CUarray> destroyed;
  g_destroyed = &destroyed;
  backend::DriverTable hooked = d_;
  hooked.cuArrayDestroy = &RecordDestroy;
  Result<uint64_t> wiped = t.ReleaseAll(hooked);
  ASSERT_TRUE(wiped.ok()) << wiped.status().ToString();
  EXPECT_EQ(*wiped, 300u * 4 * 70 * 3 + 1000u * 4);
  EXPECT_TRUE(t.empty());
  EXPECT_EQ(destroyed.size(), 2u);
  for (const ArrayEntry* e : {&a, &b}) {
    std::vector<uint8_t> bytes = Read(*e);
    EXPECT_TRUE(std::all_of(bytes.begin(), bytes.end(), [](uint8_t v) { return v == 0; }));
    EXPECT_EQ(d_.cuArrayDestroy(e->array), CUDA_SUCCESS);
  }
  // The texture object was destroyed by ReleaseAll.
  EXPECT_EQ(d_.cuTexObjectDestroy(tex), CUDA_ERROR_INVALID_VALUE);
}

TEST_F(ArrayTableTest, ForgetContextDropsItsArrays) {
  ArrayTable t;
  ArrayEntry a = Make(8, 8, 0);
  a.ctx_id = 7;
  ASSERT_TRUE(t.Add(0x100, a).ok());
  t.AddObject(true, 0x55, 7);
  t.ForgetContext(7);
  EXPECT_TRUE(t.empty());
  EXPECT_FALSE(t.Find(0x100).ok());
  EXPECT_EQ(d_.cuArrayDestroy(a.array), CUDA_SUCCESS);
}

}  // namespace
}  // namespace rgpu::worker
