// Sim CUDA arrays, texture and surface objects (sim_api_array.cc).
#include <gtest/gtest.h>

#include <cstring>
#include <vector>

#include "backend/sim/sim_test_util.h"

namespace rgpu::backend::sim {
namespace {

using SimArrays = SimTest;

CUDA_ARRAY3D_DESCRIPTOR Desc(size_t w, size_t h, size_t d, unsigned flags = 0) {
  CUDA_ARRAY3D_DESCRIPTOR a{};
  a.Format = CU_AD_FORMAT_FLOAT;
  a.NumChannels = 1;
  a.Width = w;
  a.Height = h;
  a.Depth = d;
  a.Flags = flags;
  return a;
}

TEST_F(SimArrays, HostArrayDeviceRoundTrip) {
  CUDA_ARRAY3D_DESCRIPTOR ad = Desc(8, 4, 0, CUDA_ARRAY3D_SURFACE_LDST);
  CUarray a = nullptr, b = nullptr;
  ASSERT_CU(t.cuArray3DCreate_v2(&a, &ad));
  ASSERT_CU(t.cuArray3DCreate_v2(&b, &ad));
  std::vector<float> in(32), out(32, -1);
  for (int i = 0; i < 32; ++i) in[i] = static_cast<float>(i);
  CUDA_MEMCPY3D c{};
  c.srcMemoryType = CU_MEMORYTYPE_HOST, c.srcHost = in.data(), c.srcPitch = 32;
  c.dstMemoryType = CU_MEMORYTYPE_ARRAY, c.dstArray = a;
  c.WidthInBytes = 32, c.Height = 4, c.Depth = 1;
  ASSERT_CU(t.cuMemcpy3D_v2(&c));
  CUDA_MEMCPY3D aa{};
  aa.srcMemoryType = CU_MEMORYTYPE_ARRAY, aa.srcArray = a;
  aa.dstMemoryType = CU_MEMORYTYPE_ARRAY, aa.dstArray = b;
  aa.WidthInBytes = 32, aa.Height = 4, aa.Depth = 1;
  ASSERT_CU(t.cuMemcpy3D_v2(&aa));
  CUDA_MEMCPY3D back{};
  back.srcMemoryType = CU_MEMORYTYPE_ARRAY, back.srcArray = b;
  back.dstMemoryType = CU_MEMORYTYPE_HOST, back.dstHost = out.data(), back.dstPitch = 32;
  back.WidthInBytes = 32, back.Height = 4, back.Depth = 1;
  ASSERT_CU(t.cuMemcpy3D_v2(&back));
  EXPECT_EQ(std::memcmp(in.data(), out.data(), 128), 0);
  // Past the array's end: refused before any byte moves.
  back.srcY = 1;
  EXPECT_EQ(t.cuMemcpy3D_v2(&back), CUDA_ERROR_INVALID_VALUE);

  CUDA_RESOURCE_DESC rd{};
  rd.resType = CU_RESOURCE_TYPE_ARRAY;
  rd.res.array.hArray = a;
  CUsurfObject surf = 0;
  ASSERT_CU(t.cuSurfObjectCreate(&surf, &rd));
  CUDA_TEXTURE_DESC td{};
  CUtexObject tex = 0;
  ASSERT_CU(t.cuTexObjectCreate(&tex, &rd, &td, nullptr));
  EXPECT_CU(t.cuTexObjectDestroy(tex));
  EXPECT_CU(t.cuSurfObjectDestroy(surf));
  EXPECT_EQ(t.cuSurfObjectDestroy(surf), CUDA_ERROR_INVALID_VALUE);
  EXPECT_CU(t.cuArrayDestroy(a));
  EXPECT_CU(t.cuArrayDestroy(b));
  EXPECT_EQ(t.cuArrayDestroy(a), CUDA_ERROR_INVALID_HANDLE);
}

TEST_F(SimArrays, BadDescriptorsAreRefused) {
  CUarray a = nullptr;
  CUDA_ARRAY3D_DESCRIPTOR d = Desc(0, 4, 0);
  EXPECT_EQ(t.cuArray3DCreate_v2(&a, &d), CUDA_ERROR_INVALID_VALUE);
  d = Desc(4, 0, 3);  // depth without height, not layered
  EXPECT_EQ(t.cuArray3DCreate_v2(&a, &d), CUDA_ERROR_INVALID_VALUE);
  d = Desc(4, 4, 0);
  d.NumChannels = 3;
  EXPECT_EQ(t.cuArray3DCreate_v2(&a, &d), CUDA_ERROR_INVALID_VALUE);
  // A surface over an array made without CUDA_ARRAY3D_SURFACE_LDST is made,
  // as the GPU's driver makes it (H100, driver 580); over pitched memory it
  // is refused.
  d = Desc(4, 4, 0);
  ASSERT_CU(t.cuArray3DCreate_v2(&a, &d));
  CUDA_RESOURCE_DESC rd{};
  rd.resType = CU_RESOURCE_TYPE_ARRAY;
  rd.res.array.hArray = a;
  CUsurfObject surf = 0;
  ASSERT_CU(t.cuSurfObjectCreate(&surf, &rd));
  EXPECT_CU(t.cuSurfObjectDestroy(surf));
  // Pitched memory is not checked against allocations (neither does the
  // driver); a pitch smaller than a row, a zero height or a 3-channel format
  // are refused.
  CUDA_RESOURCE_DESC pd{};
  pd.resType = CU_RESOURCE_TYPE_PITCH2D;
  pd.res.pitch2D.devPtr = 0x1000;
  pd.res.pitch2D.format = CU_AD_FORMAT_FLOAT;
  pd.res.pitch2D.numChannels = 1;
  pd.res.pitch2D.width = 4;
  pd.res.pitch2D.height = 4;
  pd.res.pitch2D.pitchInBytes = 512;
  EXPECT_EQ(t.cuSurfObjectCreate(&surf, &pd), CUDA_ERROR_INVALID_VALUE);
  CUDA_TEXTURE_DESC td{};
  CUtexObject tex = 0;
  ASSERT_CU(t.cuTexObjectCreate(&tex, &pd, &td, nullptr));
  EXPECT_CU(t.cuTexObjectDestroy(tex));
  pd.res.pitch2D.pitchInBytes = 8;
  EXPECT_EQ(t.cuTexObjectCreate(&tex, &pd, &td, nullptr), CUDA_ERROR_INVALID_VALUE);
  pd.res.pitch2D.pitchInBytes = 512;
  pd.res.pitch2D.height = 0;
  EXPECT_EQ(t.cuTexObjectCreate(&tex, &pd, &td, nullptr), CUDA_ERROR_INVALID_VALUE);
  pd.res.pitch2D.height = 4;
  pd.res.pitch2D.numChannels = 3;
  EXPECT_EQ(t.cuTexObjectCreate(&tex, &pd, &td, nullptr), CUDA_ERROR_INVALID_VALUE);
  EXPECT_CU(t.cuArrayDestroy(a));
}

}  // namespace
}  // namespace rgpu::backend::sim
