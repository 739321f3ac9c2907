// Tests for the sim backend: profile, devices, contexts, memory, copies,
// memsets, streams, events, errors. Modules and launches: sim_module_test.cc.
#include <cstring>
#include <thread>
#include <vector>

#include "backend/sim/sim_test_util.h"

namespace rgpu::backend {
namespace {

TEST(SimLoad, EveryTableEntryIsFilled) {
  BackendOptions o;
  o.profile_path = RGPU_SIM_PROFILE;
  DriverTable t;
  ASSERT_TRUE(LoadSimBackend(o, &t).ok());
  for (int i = 0; i < DriverTableSize(); ++i) {
    EXPECT_NE(DriverTableEntry(t, i), nullptr) << DriverTableName(i);
  }
}

TEST(SimLoad, BadProfiles) {
  DriverTable t;
  BackendOptions o;
  o.profile_path = "/nonexistent/profile.json";
  Status s = LoadSimBackend(o, &t);
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find("/nonexistent/profile.json"), std::string::npos) << s.message();
  EXPECT_EQ(t.cuInit, nullptr);  // table left empty
  o.profile_path = "/proc/self/status";  // not JSON
  EXPECT_FALSE(LoadSimBackend(o, &t).ok());
  o.profile_path = RGPU_SIM_PROFILE;
  o.sim_gpus = 0;
  EXPECT_FALSE(LoadSimBackend(o, &t).ok());
}

TEST(SimLoad, NothingWorksBeforeCuInit) {
  BackendOptions o;
  o.profile_path = RGPU_SIM_PROFILE;
  DriverTable t;
  ASSERT_TRUE(LoadSimBackend(o, &t).ok());
  int n = 0;
  EXPECT_EQ(t.cuDeviceGetCount(&n), CUDA_ERROR_NOT_INITIALIZED);
  CUdeviceptr p;
  EXPECT_EQ(t.cuMemAlloc_v2(&p, 16), CUDA_ERROR_NOT_INITIALIZED);
  int v = 0;
  EXPECT_CU(t.cuDriverGetVersion(&v));  // allowed before cuInit
  EXPECT_EQ(v, 13000);
  EXPECT_EQ(t.cuInit(1), CUDA_ERROR_INVALID_VALUE);
  EXPECT_CU(t.cuInit(0));
  EXPECT_CU(t.cuDeviceGetCount(&n));
  EXPECT_EQ(n, 1);
}

using SimDevice = SimTest;

TEST_F(SimDevice, FactsFromTheProfile) {
  char name[64];
  ASSERT_CU(t.cuDeviceGetName(name, sizeof name, 0));
  EXPECT_STREQ(name, "NVIDIA H200");
  char small[6];
  ASSERT_CU(t.cuDeviceGetName(small, sizeof small, 0));
  EXPECT_STREQ(small, "NVIDI");  // truncated, terminated
  size_t total = 0;
  ASSERT_CU(t.cuDeviceTotalMem_v2(&total, 0));
  EXPECT_EQ(total, 150109880320u);
  int major = 0, minor = -1, sms = 0;
  ASSERT_CU(t.cuDeviceGetAttribute(&major, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR, 0));
  ASSERT_CU(t.cuDeviceGetAttribute(&minor, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR, 0));
  ASSERT_CU(t.cuDeviceGetAttribute(&sms, CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT, 0));
  EXPECT_EQ(major * 10 + minor, 90);
  EXPECT_EQ(sms, 132);
  int v;
  EXPECT_EQ(t.cuDeviceGetAttribute(&v, static_cast<CUdevice_attribute>(9999), 0), CUDA_ERROR_INVALID_VALUE);
  EXPECT_EQ(t.cuDeviceGetAttribute(&v, CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT, 1), CUDA_ERROR_INVALID_DEVICE);
  EXPECT_EQ(t.cuDeviceGetAttribute(nullptr, CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT, 0), CUDA_ERROR_INVALID_VALUE);
  CUdevice d;
  EXPECT_EQ(t.cuDeviceGet(&d, 1), CUDA_ERROR_INVALID_DEVICE);
  CUuuid u;
  ASSERT_CU(t.cuDeviceGetUuid_v2(&u, 0));
  EXPECT_EQ(static_cast<unsigned char>(u.bytes[0]), 0xb3);
  char bus[32];
  ASSERT_CU(t.cuDeviceGetPCIBusId(bus, sizeof bus, 0));
  EXPECT_STREQ(bus, "0000:00:06.0");
}

class SimTwoGpus : public SimTest {
  int gpus() const override { return 2; }
};

TEST_F(SimTwoGpus, DevicesDifferInUuidAndBus) {
  int n = 0;
  ASSERT_CU(t.cuDeviceGetCount(&n));
  ASSERT_EQ(n, 2);
  CUuuid a, b;
  ASSERT_CU(t.cuDeviceGetUuid_v2(&a, 0));
  ASSERT_CU(t.cuDeviceGetUuid_v2(&b, 1));
  EXPECT_NE(std::memcmp(&a, &b, sizeof a), 0);
  char bus0[32], bus1[32];
  ASSERT_CU(t.cuDeviceGetPCIBusId(bus0, sizeof bus0, 0));
  ASSERT_CU(t.cuDeviceGetPCIBusId(bus1, sizeof bus1, 1));
  EXPECT_STRNE(bus0, bus1);
  // Memory of each device lives in its own arena.
  CUcontext c1;
  ASSERT_CU(t.cuCtxCreate_v4(&c1, nullptr, 0, 1));
  CUdeviceptr p1;
  ASSERT_CU(t.cuMemAlloc_v2(&p1, 1024));
  ASSERT_CU(t.cuCtxSetCurrent(ctx));
  CUdeviceptr p0;
  ASSERT_CU(t.cuMemAlloc_v2(&p0, 1024));
  EXPECT_GT(p1 > p0 ? p1 - p0 : p0 - p1, uint64_t{1} << 30);
  ASSERT_CU(t.cuMemcpyDtoD_v2(p0, p1, 1024));  // unified addressing: any device
  ASSERT_CU(t.cuCtxDestroy_v2(c1));
}

TEST_F(SimDevice, PrimaryContextLifecycle) {
  unsigned flags = 99;
  int active = 0;
  ASSERT_CU(t.cuDevicePrimaryCtxGetState(0, &flags, &active));
  EXPECT_EQ(active, 1);
  EXPECT_EQ(flags, 0u);
  ASSERT_CU(t.cuDevicePrimaryCtxSetFlags_v2(0, CU_CTX_SCHED_BLOCKING_SYNC));
  EXPECT_EQ(t.cuDevicePrimaryCtxSetFlags_v2(0, 0x3), CUDA_ERROR_INVALID_VALUE);
  CUcontext again;
  ASSERT_CU(t.cuDevicePrimaryCtxRetain(&again, 0));
  EXPECT_EQ(again, ctx);
  CUdeviceptr p;
  ASSERT_CU(t.cuMemAlloc_v2(&p, 4096));
  ASSERT_CU(t.cuDevicePrimaryCtxRelease_v2(0));
  ASSERT_CU(t.cuDevicePrimaryCtxRelease_v2(0));  // last reference: reset
  ASSERT_CU(t.cuDevicePrimaryCtxGetState(0, &flags, &active));
  EXPECT_EQ(active, 0);
  EXPECT_EQ(t.cuDevicePrimaryCtxRelease_v2(0), CUDA_ERROR_INVALID_CONTEXT);
  // Still current on this thread, but destroyed.
  EXPECT_EQ(t.cuMemAlloc_v2(&p, 16), CUDA_ERROR_CONTEXT_IS_DESTROYED);
  ASSERT_CU(t.cuDevicePrimaryCtxRetain(&again, 0));
  size_t free_bytes, total;
  ASSERT_CU(t.cuMemGetInfo_v2(&free_bytes, &total));
  EXPECT_EQ(free_bytes, total);  // the allocation died with the context
}

TEST_F(SimDevice, RegularContextsAndTheThreadStack) {
  CUcontext c2, cur;
  ASSERT_CU(t.cuCtxCreate_v4(&c2, nullptr, CU_CTX_SCHED_YIELD, 0));
  ASSERT_CU(t.cuCtxGetCurrent(&cur));
  EXPECT_EQ(cur, c2);
  unsigned flags = 0;
  ASSERT_CU(t.cuCtxGetFlags(&flags));
  EXPECT_EQ(flags, static_cast<unsigned>(CU_CTX_SCHED_YIELD));
  CUdevice d = -1;
  ASSERT_CU(t.cuCtxGetDevice(&d));
  EXPECT_EQ(d, 0);
  // Another thread has no current context.
  std::thread([&] {
    CUcontext c = reinterpret_cast<CUcontext>(1);
    EXPECT_CU(t.cuCtxGetCurrent(&c));
    EXPECT_EQ(c, nullptr);
    EXPECT_EQ(t.cuCtxSynchronize(), CUDA_ERROR_INVALID_CONTEXT);
    EXPECT_CU(t.cuCtxSetCurrent(c2));
    EXPECT_CU(t.cuCtxSynchronize());
  }).join();
  ASSERT_CU(t.cuCtxDestroy_v2(c2));
  ASSERT_CU(t.cuCtxGetCurrent(&cur));
  EXPECT_EQ(cur, ctx);  // popped back to the primary context
  EXPECT_EQ(t.cuCtxDestroy_v2(c2), CUDA_ERROR_INVALID_CONTEXT);
  EXPECT_EQ(t.cuCtxDestroy_v2(ctx), CUDA_ERROR_INVALID_CONTEXT);  // primary
  EXPECT_EQ(t.cuCtxSetCurrent(reinterpret_cast<CUcontext>(0x1234)), CUDA_ERROR_INVALID_CONTEXT);
  ASSERT_CU(t.cuCtxSetCurrent(nullptr));
  EXPECT_EQ(t.cuCtxSynchronize(), CUDA_ERROR_INVALID_CONTEXT);
}

TEST_F(SimDevice, LimitsAndConfig) {
  size_t v = 0;
  ASSERT_CU(t.cuCtxGetLimit(&v, CU_LIMIT_STACK_SIZE));
  EXPECT_EQ(v, 1024u);
  ASSERT_CU(t.cuCtxGetLimit(&v, CU_LIMIT_MALLOC_HEAP_SIZE));
  EXPECT_EQ(v, 8u << 20);
  ASSERT_CU(t.cuCtxSetLimit(CU_LIMIT_STACK_SIZE, 4096));
  ASSERT_CU(t.cuCtxGetLimit(&v, CU_LIMIT_STACK_SIZE));
  EXPECT_EQ(v, 4096u);
  EXPECT_EQ(t.cuCtxSetLimit(CU_LIMIT_MAX_L2_FETCH_GRANULARITY, 256), CUDA_ERROR_INVALID_VALUE);
  // As an H200 with driver 580 answers (sim_driver_probe):
  EXPECT_EQ(t.cuCtxSetLimit(CU_LIMIT_SHMEM_SIZE, 1), CUDA_ERROR_NOT_PERMITTED);
  EXPECT_EQ(t.cuCtxSetLimit(static_cast<CUlimit>(77), 1), CUDA_ERROR_INVALID_VALUE);
  EXPECT_EQ(t.cuCtxGetLimit(&v, static_cast<CUlimit>(77)), CUDA_ERROR_INVALID_VALUE);
  EXPECT_EQ(t.cuCtxGetLimit(&v, CU_LIMIT_DEV_RUNTIME_SYNC_DEPTH), CUDA_ERROR_UNSUPPORTED_LIMIT);
  ASSERT_CU(t.cuCtxGetLimit(&v, CU_LIMIT_PRINTF_FIFO_SIZE));
  EXPECT_EQ(v, 8650752u);
  ASSERT_CU(t.cuCtxGetLimit(&v, CU_LIMIT_SHMEM_SIZE));
  EXPECT_EQ(v, 232448u);
  int least = 9, greatest = 9;
  ASSERT_CU(t.cuCtxGetStreamPriorityRange(&least, &greatest));
  EXPECT_EQ(least, 0);
  EXPECT_EQ(greatest, -5);
  ASSERT_CU(t.cuCtxGetStreamPriorityRange(nullptr, nullptr));
  ASSERT_CU(t.cuCtxSetCacheConfig(CU_FUNC_CACHE_PREFER_L1));
  CUfunc_cache cc;
  ASSERT_CU(t.cuCtxGetCacheConfig(&cc));
  EXPECT_EQ(cc, CU_FUNC_CACHE_PREFER_L1);
  EXPECT_EQ(t.cuCtxSetCacheConfig(static_cast<CUfunc_cache>(9)), CUDA_ERROR_INVALID_VALUE);
}

using SimMemory = SimTest;

TEST_F(SimMemory, AllocCopyFreeRoundTrip) {
  const size_t n = 1 << 20;
  std::vector<uint32_t> h(n), back(n);
  for (size_t i = 0; i < n; ++i) h[i] = static_cast<uint32_t>(i * 2654435761u);
  CUdeviceptr a, b;
  ASSERT_CU(t.cuMemAlloc_v2(&a, n * 4));
  ASSERT_CU(t.cuMemAlloc_v2(&b, n * 4));
  ASSERT_CU(t.cuMemcpyHtoD_v2(a, h.data(), n * 4));
  ASSERT_CU(t.cuMemcpyDtoD_v2(b, a, n * 4));
  ASSERT_CU(t.cuMemcpyDtoH_v2(back.data(), b, n * 4));
  EXPECT_EQ(back, h);
  ASSERT_CU(t.cuMemcpyDtoHAsync_v2(back.data(), a + 4, 4, nullptr));
  EXPECT_EQ(back[0], h[1]);
  ASSERT_CU(t.cuMemFree_v2(a));
  ASSERT_CU(t.cuMemFree_v2(b));
}

TEST_F(SimMemory, NewAllocationsReadAsZero) {
  const size_t n = 3 << 20;
  std::vector<unsigned char> ones(n, 1), back(n, 7);
  for (int round = 0; round < 3; ++round) {
    CUdeviceptr p;
    ASSERT_CU(t.cuMemAlloc_v2(&p, n));
    ASSERT_CU(t.cuMemcpyDtoH_v2(back.data(), p, n));
    for (size_t i = 0; i < n; ++i) ASSERT_EQ(back[i], 0) << "round " << round << " byte " << i;
    ASSERT_CU(t.cuMemcpyHtoD_v2(p, ones.data(), n));
    ASSERT_CU(t.cuMemFree_v2(p));
  }
}

TEST_F(SimMemory, BadPointersAndSizesAreRejected) {
  CUdeviceptr p;
  ASSERT_CU(t.cuMemAlloc_v2(&p, 1000));
  std::vector<char> h(2000);
  EXPECT_EQ(t.cuMemcpyHtoD_v2(p, h.data(), 1001), CUDA_ERROR_INVALID_VALUE);  // past the end
  EXPECT_EQ(t.cuMemcpyHtoD_v2(p + 1000, h.data(), 1), CUDA_ERROR_INVALID_VALUE);
  EXPECT_EQ(t.cuMemcpyDtoH_v2(h.data(), 0x1234, 4), CUDA_ERROR_INVALID_VALUE);  // not device memory
  EXPECT_EQ(t.cuMemcpyHtoD_v2(p, nullptr, 4), CUDA_ERROR_INVALID_VALUE);
  EXPECT_CU(t.cuMemcpyHtoD_v2(p, nullptr, 0));
  EXPECT_EQ(t.cuMemsetD8_v2(p + 10, 0, 991), CUDA_ERROR_INVALID_VALUE);
  EXPECT_EQ(t.cuMemsetD32_v2(p + 2, 0, 1), CUDA_ERROR_INVALID_VALUE);  // misaligned
  EXPECT_EQ(t.cuMemsetD16_v2(p + 1, 0, 1), CUDA_ERROR_INVALID_VALUE);
  EXPECT_EQ(t.cuMemFree_v2(p + 8), CUDA_ERROR_INVALID_VALUE);  // not the start
  EXPECT_CU(t.cuMemFree_v2(0));  // like free(NULL)
  EXPECT_EQ(t.cuMemAlloc_v2(&p, 0), CUDA_ERROR_INVALID_VALUE);
  EXPECT_EQ(t.cuMemAlloc_v2(nullptr, 8), CUDA_ERROR_INVALID_VALUE);
  EXPECT_EQ(t.cuMemAlloc_v2(&p, size_t{1} << 50), CUDA_ERROR_OUT_OF_MEMORY);
  CUdeviceptr q;
  ASSERT_CU(t.cuMemAlloc_v2(&q, 64));
  ASSERT_CU(t.cuMemFree_v2(q));
  EXPECT_EQ(t.cuMemFree_v2(q), CUDA_ERROR_INVALID_VALUE);  // double free
  EXPECT_EQ(t.cuMemcpyHtoD_v2(q, h.data(), 4), CUDA_ERROR_INVALID_VALUE);  // use after free
  EXPECT_EQ(t.cuMemsetD8Async(p, 0, 1, reinterpret_cast<CUstream>(0x777)), CUDA_ERROR_INVALID_HANDLE);
}

TEST_F(SimMemory, InfoAndAddressRange) {
  size_t free0, total;
  ASSERT_CU(t.cuMemGetInfo_v2(&free0, &total));
  EXPECT_EQ(total, 150109880320u);
  CUdeviceptr p;
  ASSERT_CU(t.cuMemAlloc_v2(&p, 5 << 20));
  size_t free1;
  ASSERT_CU(t.cuMemGetInfo_v2(&free1, &total));
  EXPECT_EQ(free0 - free1, 6u << 20);  // rounded to 2 MiB
  CUdeviceptr base;
  size_t size;
  ASSERT_CU(t.cuMemGetAddressRange_v2(&base, &size, p + 12345));
  EXPECT_EQ(base, p);
  EXPECT_EQ(size, 5u << 20);
  ASSERT_CU(t.cuMemGetAddressRange_v2(nullptr, nullptr, p));
  EXPECT_EQ(t.cuMemGetAddressRange_v2(&base, &size, p + (5 << 20)), CUDA_ERROR_NOT_FOUND);
  ASSERT_CU(t.cuMemFree_v2(p));
  ASSERT_CU(t.cuMemGetInfo_v2(&free1, &total));
  EXPECT_EQ(free1, free0);
}

TEST_F(SimMemory, Memsets) {
  CUdeviceptr p;
  ASSERT_CU(t.cuMemAlloc_v2(&p, 64));
  ASSERT_CU(t.cuMemsetD32_v2(p, 0x11223344, 16));
  ASSERT_CU(t.cuMemsetD16Async(p + 2, 0xaabb, 1, nullptr));
  ASSERT_CU(t.cuMemsetD8_v2(p + 63, 0x7f, 1));
  uint8_t h[64];
  ASSERT_CU(t.cuMemcpyDtoH_v2(h, p, 64));
  EXPECT_EQ(h[0], 0x44);
  EXPECT_EQ(h[2], 0xbb);
  EXPECT_EQ(h[3], 0xaa);
  EXPECT_EQ(h[4], 0x44);
  EXPECT_EQ(h[63], 0x7f);
  // 2D: 3 rows of 5 ints, pitch 32 bytes.
  CUdeviceptr m;
  ASSERT_CU(t.cuMemAlloc_v2(&m, 3 * 32));
  ASSERT_CU(t.cuMemsetD2D32_v2(m, 32, 9, 5, 3));
  uint32_t rows[24];
  ASSERT_CU(t.cuMemcpyDtoH_v2(rows, m, sizeof rows));
  for (int y = 0; y < 3; ++y) {
    for (int x = 0; x < 8; ++x) EXPECT_EQ(rows[y * 8 + x], x < 5 ? 9u : 0u) << y << "," << x;
  }
  EXPECT_EQ(t.cuMemsetD2D32_v2(m, 16, 9, 5, 3), CUDA_ERROR_INVALID_VALUE);  // pitch < row
  EXPECT_EQ(t.cuMemsetD2D32_v2(m, 40, 9, 5, 3), CUDA_ERROR_INVALID_VALUE);  // past the end
}

TEST_F(SimMemory, PitchAnd2DCopies) {
  CUdeviceptr m;
  size_t pitch = 0;
  ASSERT_CU(t.cuMemAllocPitch_v2(&m, &pitch, 100, 10, 4));
  EXPECT_EQ(pitch, 512u);
  EXPECT_EQ(t.cuMemAllocPitch_v2(&m, &pitch, 100, 10, 3), CUDA_ERROR_INVALID_VALUE);
  std::vector<uint8_t> src(10 * 100), dst(20 * 60, 0xee);
  for (size_t i = 0; i < src.size(); ++i) src[i] = static_cast<uint8_t>(i);
  CUDA_MEMCPY2D c = {};
  c.srcMemoryType = CU_MEMORYTYPE_HOST;
  c.srcHost = src.data();
  c.srcPitch = 100;
  c.dstMemoryType = CU_MEMORYTYPE_DEVICE;
  c.dstDevice = m;
  c.dstPitch = pitch;
  c.WidthInBytes = 100;
  c.Height = 10;
  ASSERT_CU(t.cuMemcpy2D_v2(&c));
  // Copy a 40 x 5 window at (x=10, y=2) back, through unified addressing,
  // into a host matrix of pitch 60 at (x=3, y=4).
  CUDA_MEMCPY2D d = {};
  d.srcMemoryType = CU_MEMORYTYPE_UNIFIED;
  d.srcDevice = m;
  d.srcPitch = pitch;
  d.srcXInBytes = 10;
  d.srcY = 2;
  d.dstMemoryType = CU_MEMORYTYPE_UNIFIED;
  d.dstDevice = reinterpret_cast<CUdeviceptr>(dst.data());
  d.dstPitch = 60;
  d.dstXInBytes = 3;
  d.dstY = 4;
  d.WidthInBytes = 40;
  d.Height = 5;
  ASSERT_CU(t.cuMemcpy2DAsync_v2(&d, nullptr));
  for (int y = 0; y < 20; ++y) {
    for (int x = 0; x < 60; ++x) {
      bool inside = y >= 4 && y < 9 && x >= 3 && x < 43;
      uint8_t want = inside ? src[(y - 4 + 2) * 100 + (x - 3 + 10)] : 0xee;
      ASSERT_EQ(dst[y * 60 + x], want) << x << "," << y;
    }
  }
  d.srcY = 6;  // rows 6..10 of a 10-row allocation: past the end
  EXPECT_EQ(t.cuMemcpy2D_v2(&d), CUDA_ERROR_INVALID_VALUE);
  d.srcY = 2;
  d.srcPitch = 30;  // smaller than the width
  EXPECT_EQ(t.cuMemcpy2D_v2(&d), CUDA_ERROR_INVALID_VALUE);
  d.srcPitch = 0;  // even for one row
  d.Height = 1;
  EXPECT_EQ(t.cuMemcpy2D_v2(&d), CUDA_ERROR_INVALID_VALUE);
  d.Height = 5;
  d.srcPitch = pitch;
  d.srcMemoryType = CU_MEMORYTYPE_ARRAY;  // with no array named
  EXPECT_EQ(t.cuMemcpy2D_v2(&d), CUDA_ERROR_INVALID_HANDLE);
  EXPECT_EQ(t.cuMemcpy2D_v2(nullptr), CUDA_ERROR_INVALID_VALUE);
}

TEST_F(SimMemory, Copy3D) {
  // A 4 x 3 x 2 box of bytes, device pitch 8 and 5 rows per slice.
  CUdeviceptr m;
  ASSERT_CU(t.cuMemAlloc_v2(&m, 8 * 5 * 2));
  ASSERT_CU(t.cuMemsetD8_v2(m, 0, 80));
  uint8_t box[2][3][4];
  for (int i = 0; i < 24; ++i) (&box[0][0][0])[i] = static_cast<uint8_t>(i + 1);
  CUDA_MEMCPY3D c = {};
  c.srcMemoryType = CU_MEMORYTYPE_HOST;
  c.srcHost = box;
  c.srcPitch = 4;
  c.srcHeight = 3;
  c.dstMemoryType = CU_MEMORYTYPE_DEVICE;
  c.dstDevice = m;
  c.dstPitch = 8;
  c.dstHeight = 5;
  c.dstXInBytes = 2;
  c.dstY = 1;
  c.WidthInBytes = 4;
  c.Height = 3;
  c.Depth = 2;
  ASSERT_CU(t.cuMemcpy3D_v2(&c));
  uint8_t dev[2][5][8];
  ASSERT_CU(t.cuMemcpyDtoH_v2(dev, m, sizeof dev));
  for (int z = 0; z < 2; ++z) {
    for (int y = 0; y < 5; ++y) {
      for (int x = 0; x < 8; ++x) {
        bool inside = y >= 1 && y < 4 && x >= 2 && x < 6;
        EXPECT_EQ(dev[z][y][x], inside ? box[z][y - 1][x - 2] : 0) << z << y << x;
      }
    }
  }
  c.dstZ = 1;  // the second slice would end past the allocation
  EXPECT_EQ(t.cuMemcpy3DAsync_v2(&c, nullptr), CUDA_ERROR_INVALID_VALUE);
  c.dstZ = 0;
  c.srcLOD = 1;
  EXPECT_EQ(t.cuMemcpy3D_v2(&c), CUDA_ERROR_INVALID_VALUE);
}

using SimStreams = SimTest;

TEST_F(SimStreams, StreamsAndPriorities) {
  CUstream s1, s2;
  ASSERT_CU(t.cuStreamCreate(&s1, CU_STREAM_NON_BLOCKING));
  ASSERT_CU(t.cuStreamCreateWithPriority(&s2, 0, -100));  // clamped
  int prio = 0;
  ASSERT_CU(t.cuStreamGetPriority(s2, &prio));
  EXPECT_EQ(prio, -5);
  unsigned flags = 0;
  ASSERT_CU(t.cuStreamGetFlags(s1, &flags));
  EXPECT_EQ(flags, 1u);
  ASSERT_CU(t.cuStreamGetPriority(nullptr, &prio));
  EXPECT_EQ(prio, 0);
  EXPECT_CU(t.cuStreamQuery(s1));
  EXPECT_CU(t.cuStreamSynchronize(CU_STREAM_PER_THREAD));
  EXPECT_EQ(t.cuStreamCreate(&s1, 4), CUDA_ERROR_INVALID_VALUE);
  ASSERT_CU(t.cuStreamDestroy_v2(s2));
  EXPECT_EQ(t.cuStreamDestroy_v2(s2), CUDA_ERROR_INVALID_HANDLE);
  EXPECT_EQ(t.cuStreamSynchronize(s2), CUDA_ERROR_INVALID_HANDLE);
  EXPECT_EQ(t.cuStreamDestroy_v2(nullptr), CUDA_ERROR_INVALID_HANDLE);
}

TEST_F(SimStreams, EventsAndElapsedTime) {
  CUstream s;
  ASSERT_CU(t.cuStreamCreate(&s, 0));
  CUevent a, b, quiet;
  ASSERT_CU(t.cuEventCreate(&a, CU_EVENT_DEFAULT));
  ASSERT_CU(t.cuEventCreate(&b, CU_EVENT_BLOCKING_SYNC));
  ASSERT_CU(t.cuEventCreate(&quiet, CU_EVENT_DISABLE_TIMING));
  float ms = -1;
  EXPECT_EQ(t.cuEventElapsedTime_v2(&ms, a, b), CUDA_ERROR_INVALID_HANDLE);  // never recorded
  EXPECT_CU(t.cuEventQuery(a));  // an unrecorded event counts as complete
  ASSERT_CU(t.cuEventRecord(a, s));
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  ASSERT_CU(t.cuEventRecordWithFlags(b, s, 0));
  ASSERT_CU(t.cuEventRecord(quiet, nullptr));
  ASSERT_CU(t.cuStreamWaitEvent(s, b, 0));
  ASSERT_CU(t.cuEventSynchronize(b));
  ASSERT_CU(t.cuEventElapsedTime_v2(&ms, a, b));
  EXPECT_GE(ms, 15.0f);
  EXPECT_LT(ms, 5000.0f);
  EXPECT_EQ(t.cuEventElapsedTime_v2(&ms, a, quiet), CUDA_ERROR_INVALID_HANDLE);
  EXPECT_EQ(t.cuEventElapsedTime_v2(nullptr, a, b), CUDA_ERROR_INVALID_HANDLE);  // as driver 580
  EXPECT_EQ(t.cuEventCreate(&a, CU_EVENT_INTERPROCESS), CUDA_ERROR_INVALID_VALUE);
  EXPECT_EQ(t.cuStreamWaitEvent(s, b, 2), CUDA_ERROR_INVALID_VALUE);
  ASSERT_CU(t.cuEventDestroy_v2(b));
  EXPECT_EQ(t.cuEventSynchronize(b), CUDA_ERROR_INVALID_HANDLE);
  EXPECT_EQ(t.cuStreamWaitEvent(s, b, 0), CUDA_ERROR_INVALID_HANDLE);
}

TEST(SimErrors, NamesAndStrings) {
  BackendOptions o;
  o.profile_path = RGPU_SIM_PROFILE;
  DriverTable t;
  ASSERT_TRUE(LoadSimBackend(o, &t).ok());
  const char* s = nullptr;
  ASSERT_CU(t.cuGetErrorName(CUDA_ERROR_INVALID_VALUE, &s));
  EXPECT_STREQ(s, "CUDA_ERROR_INVALID_VALUE");
  ASSERT_CU(t.cuGetErrorString(CUDA_ERROR_OUT_OF_MEMORY, &s));
  EXPECT_STREQ(s, "out of memory");
  ASSERT_CU(t.cuGetErrorName(CUDA_ERROR_ILLEGAL_ADDRESS, &s));
  EXPECT_STREQ(s, "CUDA_ERROR_ILLEGAL_ADDRESS");
  EXPECT_EQ(t.cuGetErrorName(static_cast<CUresult>(12345), &s), CUDA_ERROR_INVALID_VALUE);
  EXPECT_EQ(s, nullptr);
}

}  // namespace
}  // namespace rgpu::backend

namespace rgpu::backend {
namespace {

TEST_F(SimStreams, HostFunctionsRunInStreamOrder) {
  CUstream s;
  ASSERT_CU(t.cuStreamCreate(&s, 0));
  static int calls = 0;
  calls = 0;
  auto fn = [](void* p) { ++*static_cast<int*>(p); };
  ASSERT_CU(t.cuLaunchHostFunc(s, fn, &calls));
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(t.cuLaunchHostFunc(s, nullptr, &calls), CUDA_ERROR_INVALID_VALUE);
  // Captured: runs at each graph launch.
  ASSERT_CU(t.cuStreamBeginCapture_v2(s, CU_STREAM_CAPTURE_MODE_GLOBAL));
  ASSERT_CU(t.cuLaunchHostFunc(s, fn, &calls));
  CUgraph g;
  ASSERT_CU(t.cuStreamEndCapture(s, &g));
  EXPECT_EQ(calls, 1);
  CUgraphExec e;
  ASSERT_CU(t.cuGraphInstantiateWithFlags(&e, g, 0));
  ASSERT_CU(t.cuGraphLaunch(e, s));
  ASSERT_CU(t.cuGraphLaunch(e, s));
  EXPECT_EQ(calls, 3);
  // A host function that (against the rules) calls the driver does not hang.
  auto calls_driver = [](void* p) {
    auto* table = static_cast<DriverTable*>(p);
    CUcontext c;
    table->cuCtxGetCurrent(&c);
  };
  EXPECT_CU(t.cuLaunchHostFunc(s, calls_driver, &t));
}

}  // namespace
}  // namespace rgpu::backend
