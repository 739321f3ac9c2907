// Tests for sim modules, libraries, functions, launches and occupancy, on
// real nvcc outputs of image/testdata/sample_kernels.cu.
#include <algorithm>
#include <cstring>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "backend/sim/kernel_registry.h"
#include "backend/sim/sim_test_util.h"

namespace rgpu::backend {
namespace {

std::vector<char> ReadFile(const std::string& name) {
  std::ifstream in(std::string(RGPU_IMAGE_TESTDATA) + "/" + name, std::ios::binary);
  EXPECT_TRUE(in.good()) << name;
  return std::vector<char>((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

// Host versions of sample_kernels.cu's kernels (test-only registrations).
void Add(const SimLaunch& l) {  // extern "C" add(const float* a, const float* b, float* c, int n)
  int n = l.Arg<int>(3);
  uint64_t m = std::min<uint64_t>(n > 0 ? n : 0, uint64_t{l.grid.x} * l.block.x);
  const float* a = l.DeviceSpan(l.Arg<const float*>(0), m);
  const float* b = l.DeviceSpan(l.Arg<const float*>(1), m);
  float* c = l.DeviceSpan(l.Arg<float*>(2), m);
  size_t bytes = 0;
  const float* coef = static_cast<const float*>(l.services->Global("c_coef", &bytes));
  const float* table = static_cast<const float*>(l.services->Global("g_table", &bytes));
  if (l.error != CUDA_SUCCESS || coef == nullptr || table == nullptr) return;
  for (uint64_t i = 0; i < m; ++i) c[i] = a[i] + b[i] + coef[0] - 0.5f + table[0] - 1.0f;
}
void Nothing(const SimLaunch&) {}
void Fill(const SimLaunch& l) {  // fill<int>(int* p, int v, size_t n)
  uint64_t n = std::min<uint64_t>(l.Arg<uint64_t>(2), uint64_t{l.grid.x} * l.block.x);
  int* p = l.DeviceSpan(l.Arg<int*>(0), n);
  if (p != nullptr) std::fill(p, p + n, l.Arg<int>(1));
}
RGPU_SIM_KERNEL("add", Add);
RGPU_SIM_KERNEL("_Z4fillIiEvPT_S0_m", Fill);
RGPU_SIM_KERNEL("_Z5saxpyfPKfPfi6Triplecd", Nothing);
RGPU_SIM_KERNEL("_Z7boundedPfi", Nothing);
RGPU_SIM_KERNEL("_Z9clusteredPf", Nothing);
RGPU_SIM_KERNEL("_Z8bigparam3BigPi", Nothing);
// _Z8noparamsv is deliberately not registered.

using SimModule = SimTest;

TEST_F(SimModule, LoadsEveryImageForm) {
  for (const char* name : {"sample_sm90.cubin", "sample.fatbin", "sample_zstd.fatbin",
                           "sample_lz4.fatbin", "sample_plain.fatbin"}) {
    std::vector<char> img = ReadFile(name);
    CUmodule m;
    ASSERT_CU(t.cuModuleLoadData(&m, img.data())) << name;
    CUfunction f;
    EXPECT_CU(t.cuModuleGetFunction(&f, m, "_Z8bigparam3BigPi")) << name;
    ASSERT_CU(t.cuModuleUnload(m));
  }
  // The fatbin wrapper that cudart registers.
  std::vector<char> fatbin = ReadFile("sample.fatbin");
  struct {
    uint32_t magic, version;
    const void* data;
    void* unused;
  } wrapper = {0x466243B1, 1, fatbin.data(), nullptr};
  CUmodule m;
  ASSERT_CU(t.cuModuleLoadFatBinary(&m, &wrapper));
  CUjit_option opts[] = {CU_JIT_INFO_LOG_BUFFER, CU_JIT_INFO_LOG_BUFFER_SIZE_BYTES};
  char log[16] = "garbage";
  void* values[] = {log, reinterpret_cast<void*>(sizeof log)};
  CUmodule m2;
  ASSERT_CU(t.cuModuleLoadDataEx(&m2, fatbin.data(), 2, opts, values));
  EXPECT_EQ(log[0], 0);
  EXPECT_EQ(values[1], nullptr);  // nothing logged
}

TEST_F(SimModule, RejectsWhatTheDeviceCannotRun) {
  std::vector<char> sm75 = ReadFile("sample_sm75.cubin");
  CUmodule m;
  EXPECT_EQ(t.cuModuleLoadData(&m, sm75.data()), CUDA_ERROR_NO_BINARY_FOR_GPU);
  const char junk[] = "\x01\x02\x03\x04garbage";
  EXPECT_EQ(t.cuModuleLoadData(&m, junk), CUDA_ERROR_INVALID_IMAGE);
  std::vector<char> cubin = ReadFile("sample_sm90.cubin");
  cubin.resize(cubin.size() / 2);
  cubin[0x3c] = 0x7f;  // absurd section count
  EXPECT_EQ(t.cuModuleLoadData(&m, cubin.data()), CUDA_ERROR_INVALID_IMAGE);
  // PTX only: refused while a kernel lacks a host implementation (the sim
  // never JITs; _Z8noparamsv is registered by no test)...
  std::vector<char> ptx_fatbin = ReadFile("sample_ptxonly.fatbin");
  EXPECT_EQ(t.cuModuleLoadData(&m, ptx_fatbin.data()), CUDA_ERROR_NO_BINARY_FOR_GPU);
  const char* unknown = ".version 8.0\n.target sm_90\n.address_size 64\n"
                        ".visible .entry no_host_version(.param .u32 x) { ret; }\n";
  EXPECT_EQ(t.cuModuleLoadData(&m, unknown), CUDA_ERROR_NO_BINARY_FOR_GPU);
  // ... and accepted when every kernel has one.
  const char* known = ".version 8.0\n.target sm_90\n.address_size 64\n"
                      ".global .align 4 .u32 counter = 7;\n"
                      ".visible .entry _Z4fillIiEvPT_S0_m(.param .u64 p, .param .u32 v, "
                      ".param .u64 n) { ret; }\n";
  ASSERT_CU(t.cuModuleLoadData(&m, known));
  size_t off = 0, size = 0;
  CUfunction f;
  ASSERT_CU(t.cuModuleGetFunction(&f, m, "_Z4fillIiEvPT_S0_m"));
  ASSERT_CU(t.cuFuncGetParamInfo(f, 2, &off, &size));
  EXPECT_EQ(off, 16u);
  EXPECT_EQ(size, 8u);
  CUdeviceptr counter;
  ASSERT_CU(t.cuModuleGetGlobal_v2(&counter, nullptr, m, "counter"));
  int v = 0;
  ASSERT_CU(t.cuMemcpyDtoH_v2(&v, counter, 4));
  EXPECT_EQ(v, 7);
  CUdeviceptr p;
  ASSERT_CU(t.cuMemAlloc_v2(&p, 64));
  int value = 2;
  size_t n = 16;
  void* params[] = {&p, &value, &n};
  ASSERT_CU(t.cuLaunchKernel(f, 1, 1, 1, 16, 1, 1, 0, nullptr, params, nullptr));
  ASSERT_CU(t.cuMemcpyDtoH_v2(&v, p + 60, 4));
  EXPECT_EQ(v, 2);
}

TEST_F(SimModule, ParamInfoAttributesAndNames) {
  std::vector<char> img = ReadFile("sample.fatbin");
  CUmodule m;
  ASSERT_CU(t.cuModuleLoadData(&m, img.data()));
  CUfunction saxpy, bounded, big;
  ASSERT_CU(t.cuModuleGetFunction(&saxpy, m, "_Z5saxpyfPKfPfi6Triplecd"));
  ASSERT_CU(t.cuModuleGetFunction(&bounded, m, "_Z7boundedPfi"));
  ASSERT_CU(t.cuModuleGetFunction(&big, m, "_Z8bigparam3BigPi"));
  CUfunction none;
  EXPECT_EQ(t.cuModuleGetFunction(&none, m, "saxpy"), CUDA_ERROR_NOT_FOUND);
  const size_t want_off[] = {0, 8, 16, 24, 32, 48, 56}, want_size[] = {4, 8, 8, 4, 16, 1, 8};
  size_t i = 0;
  for (;; ++i) {
    size_t off = 0, size = 0;
    CUresult r = t.cuFuncGetParamInfo(saxpy, i, &off, &size);
    if (r == CUDA_ERROR_INVALID_VALUE) break;
    ASSERT_CU(r);
    ASSERT_LT(i, 7u);
    EXPECT_EQ(off, want_off[i]);
    EXPECT_EQ(size, want_size[i]);
  }
  EXPECT_EQ(i, 7u);
  size_t off = 0;
  ASSERT_CU(t.cuFuncGetParamInfo(big, 1, &off, nullptr));  // size is optional
  EXPECT_EQ(off, 304u);
  EXPECT_EQ(t.cuFuncGetParamInfo(big, 0, nullptr, nullptr), CUDA_ERROR_INVALID_VALUE);
  const char* name = nullptr;
  ASSERT_CU(t.cuFuncGetName(&name, bounded));
  EXPECT_STREQ(name, "_Z7boundedPfi");
  int v = 0;
  ASSERT_CU(t.cuFuncGetAttribute(&v, CU_FUNC_ATTRIBUTE_MAX_THREADS_PER_BLOCK, bounded));
  EXPECT_EQ(v, 256);  // __launch_bounds__(256, 2)
  ASSERT_CU(t.cuFuncGetAttribute(&v, CU_FUNC_ATTRIBUTE_SHARED_SIZE_BYTES, bounded));
  EXPECT_EQ(v, 512);  // the H200 says 512 for its 1536-byte section
  ASSERT_CU(t.cuFuncGetAttribute(&v, CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES, bounded));
  EXPECT_EQ(v, 48 * 1024 - 512);
  ASSERT_CU(t.cuFuncGetAttribute(&v, CU_FUNC_ATTRIBUTE_MAX_THREADS_PER_BLOCK, saxpy));
  EXPECT_EQ(v, 1024);
  ASSERT_CU(t.cuFuncGetAttribute(&v, CU_FUNC_ATTRIBUTE_NUM_REGS, saxpy));
  EXPECT_GT(v, 0);
  ASSERT_CU(t.cuFuncGetAttribute(&v, CU_FUNC_ATTRIBUTE_BINARY_VERSION, saxpy));
  EXPECT_EQ(v, 90);
  ASSERT_CU(t.cuFuncGetAttribute(&v, CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES, saxpy));
  EXPECT_EQ(v, 48 * 1024);
  EXPECT_EQ(t.cuFuncGetAttribute(&v, static_cast<CUfunction_attribute>(99), saxpy), CUDA_ERROR_INVALID_VALUE);
  ASSERT_CU(t.cuFuncSetAttribute(saxpy, CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES, 200000));
  EXPECT_EQ(t.cuFuncSetAttribute(saxpy, CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES, 300000),
            CUDA_ERROR_INVALID_VALUE);
  EXPECT_EQ(t.cuFuncSetAttribute(saxpy, CU_FUNC_ATTRIBUTE_NUM_REGS, 3), CUDA_ERROR_INVALID_VALUE);
  ASSERT_CU(t.cuFuncSetCacheConfig(saxpy, CU_FUNC_CACHE_PREFER_SHARED));
  EXPECT_EQ(t.cuFuncGetName(&name, reinterpret_cast<CUfunction>(0x99)), CUDA_ERROR_INVALID_HANDLE);
}

TEST_F(SimModule, GlobalsAreInitialisedAndFreedWithTheModule) {
  size_t free0, total;
  ASSERT_CU(t.cuMemGetInfo_v2(&free0, &total));
  std::vector<char> img = ReadFile("sample_sm90.cubin");
  CUmodule m;
  ASSERT_CU(t.cuModuleLoadData(&m, img.data()));
  CUdeviceptr table, coef, counter;
  size_t bytes = 0;
  ASSERT_CU(t.cuModuleGetGlobal_v2(&table, &bytes, m, "g_table"));
  EXPECT_EQ(bytes, 64u);
  float f[16];
  ASSERT_CU(t.cuMemcpyDtoH_v2(f, table, sizeof f));
  EXPECT_EQ(f[0], 1.0f);
  EXPECT_EQ(f[2], 3.0f);
  EXPECT_EQ(f[3], 0.0f);
  ASSERT_CU(t.cuModuleGetGlobal_v2(&coef, nullptr, m, "c_coef"));
  ASSERT_CU(t.cuMemcpyDtoH_v2(f, coef, 16));
  EXPECT_EQ(f[3], 3.5f);
  ASSERT_CU(t.cuModuleGetGlobal_v2(&counter, &bytes, m, "g_counter"));
  EXPECT_EQ(bytes, 4u);
  EXPECT_EQ(t.cuModuleGetGlobal_v2(&counter, &bytes, m, "nope"), CUDA_ERROR_NOT_FOUND);
  EXPECT_EQ(t.cuMemFree_v2(table), CUDA_ERROR_INVALID_VALUE);  // not the user's to free
  ASSERT_CU(t.cuModuleUnload(m));
  EXPECT_EQ(t.cuModuleUnload(m), CUDA_ERROR_INVALID_HANDLE);
  size_t free1;
  ASSERT_CU(t.cuMemGetInfo_v2(&free1, &total));
  EXPECT_EQ(free1, free0);
}

TEST_F(SimModule, LaunchRunsTheHostKernel) {
  std::vector<char> img = ReadFile("sample.fatbin");
  CUmodule m;
  ASSERT_CU(t.cuModuleLoadData(&m, img.data()));
  CUfunction add, fill, noparams;
  ASSERT_CU(t.cuModuleGetFunction(&add, m, "add"));
  ASSERT_CU(t.cuModuleGetFunction(&fill, m, "_Z4fillIiEvPT_S0_m"));
  ASSERT_CU(t.cuModuleGetFunction(&noparams, m, "_Z8noparamsv"));
  const int n = 1000;
  std::vector<float> a(n), b(n), c(n);
  for (int i = 0; i < n; ++i) a[i] = i, b[i] = 2 * i;
  CUdeviceptr da, db, dc;
  ASSERT_CU(t.cuMemAlloc_v2(&da, n * 4));
  ASSERT_CU(t.cuMemAlloc_v2(&db, n * 4));
  ASSERT_CU(t.cuMemAlloc_v2(&dc, n * 4));
  ASSERT_CU(t.cuMemcpyHtoD_v2(da, a.data(), n * 4));
  ASSERT_CU(t.cuMemcpyHtoD_v2(db, b.data(), n * 4));
  int nn = n;
  void* params[] = {&da, &db, &dc, &nn};
  ASSERT_CU(t.cuLaunchKernel(add, 4, 1, 1, 256, 1, 1, 0, nullptr, params, nullptr));
  ASSERT_CU(t.cuMemcpyDtoH_v2(c.data(), dc, n * 4));
  for (int i = 0; i < n; ++i) ASSERT_EQ(c[i], 3.0f * i) << i;  // + coef 0.5 - 0.5 + table 1 - 1

  // Only 2 x 128 threads: a kernel without a grid-stride loop covers 256.
  CUdeviceptr di;
  ASSERT_CU(t.cuMemAlloc_v2(&di, n * 4));
  int value = 7;
  size_t count = n;
  void* fparams[] = {&di, &value, &count};
  ASSERT_CU(t.cuLaunchKernel(fill, 2, 1, 1, 128, 1, 1, 0, nullptr, fparams, nullptr));
  std::vector<int> ints(n);
  ASSERT_CU(t.cuMemcpyDtoH_v2(ints.data(), di, n * 4));
  EXPECT_EQ(std::count(ints.begin(), ints.end(), 7), 256);

  // The same through `extra`.
  struct {
    CUdeviceptr p;
    int v;
    int pad;
    size_t n;
  } buf = {di, 9, 0, size_t(n)};
  size_t buf_size = sizeof buf;
  void* extra[] = {CU_LAUNCH_PARAM_BUFFER_POINTER, &buf, CU_LAUNCH_PARAM_BUFFER_SIZE, &buf_size,
                   CU_LAUNCH_PARAM_END};
  ASSERT_CU(t.cuLaunchKernel(fill, 4, 1, 1, 256, 1, 1, 0, nullptr, nullptr, extra));
  ASSERT_CU(t.cuMemcpyDtoH_v2(ints.data(), di, n * 4));
  EXPECT_EQ(std::count(ints.begin(), ints.end(), 9), n);
  buf_size = 8;
  EXPECT_EQ(t.cuLaunchKernel(fill, 1, 1, 1, 1, 1, 1, 0, nullptr, nullptr, extra), CUDA_ERROR_INVALID_VALUE);

  // Unregistered kernel: a clear error, not a crash.
  EXPECT_EQ(t.cuLaunchKernel(noparams, 1, 1, 1, 1, 1, 1, 0, nullptr, nullptr, nullptr),
            CUDA_ERROR_NOT_SUPPORTED);
  // Launch validation.
  EXPECT_EQ(t.cuLaunchKernel(add, 0, 1, 1, 256, 1, 1, 0, nullptr, params, nullptr), CUDA_ERROR_INVALID_VALUE);
  EXPECT_EQ(t.cuLaunchKernel(add, 1, 1, 1, 2048, 1, 1, 0, nullptr, params, nullptr), CUDA_ERROR_INVALID_VALUE);
  EXPECT_EQ(t.cuLaunchKernel(add, 1, 1, 1, 64, 1, 65, 0, nullptr, params, nullptr), CUDA_ERROR_INVALID_VALUE);
  EXPECT_EQ(t.cuLaunchKernel(add, 1, 1, 1, 32, 1, 1, 49153, nullptr, params, nullptr), CUDA_ERROR_INVALID_VALUE);
  EXPECT_EQ(t.cuLaunchKernel(add, 1, 1, 1, 32, 1, 1, 0, nullptr, nullptr, nullptr), CUDA_ERROR_INVALID_VALUE);
  EXPECT_EQ(t.cuLaunchKernel(add, 1, 1, 1, 32, 1, 1, 0, reinterpret_cast<CUstream>(0x5), params, nullptr),
            CUDA_ERROR_INVALID_HANDLE);
  EXPECT_EQ(t.cuLaunchKernel(reinterpret_cast<CUfunction>(0x40), 1, 1, 1, 1, 1, 1, 0, nullptr, params, nullptr),
            CUDA_ERROR_INVALID_HANDLE);
  CUfunction bounded;
  ASSERT_CU(t.cuModuleGetFunction(&bounded, m, "_Z7boundedPfi"));
  void* bparams[] = {&da, &nn};
  EXPECT_EQ(t.cuLaunchKernel(bounded, 1, 1, 1, 512, 1, 1, 0, nullptr, bparams, nullptr),
            CUDA_ERROR_INVALID_VALUE);  // above __launch_bounds__(256)
  EXPECT_CU(t.cuLaunchKernel(bounded, 1, 1, 1, 256, 1, 1, 0, nullptr, bparams, nullptr));
}

TEST_F(SimModule, IllegalAddressIsStickyForTheContext) {
  std::vector<char> img = ReadFile("sample_sm90.cubin");
  CUmodule m;
  ASSERT_CU(t.cuModuleLoadData(&m, img.data()));
  CUfunction fill;
  ASSERT_CU(t.cuModuleGetFunction(&fill, m, "_Z4fillIiEvPT_S0_m"));
  CUdeviceptr small;
  ASSERT_CU(t.cuMemAlloc_v2(&small, 16));
  int value = 1;
  size_t count = 1000;  // 4000 bytes into a 16-byte allocation
  void* params[] = {&small, &value, &count};
  EXPECT_EQ(t.cuLaunchKernel(fill, 4, 1, 1, 256, 1, 1, 0, nullptr, params, nullptr),
            CUDA_ERROR_ILLEGAL_ADDRESS);
  EXPECT_EQ(t.cuCtxSynchronize(), CUDA_ERROR_ILLEGAL_ADDRESS);
  CUdeviceptr p;
  EXPECT_EQ(t.cuMemAlloc_v2(&p, 4), CUDA_ERROR_ILLEGAL_ADDRESS);
  // Only a reset clears it, as on a GPU.
  ASSERT_CU(t.cuDevicePrimaryCtxReset_v2(0));
  ASSERT_CU(t.cuDevicePrimaryCtxRetain(&ctx, 0));
  EXPECT_CU(t.cuMemAlloc_v2(&p, 4));
}

TEST_F(SimModule, LaunchExAttributes) {
  std::vector<char> img = ReadFile("sample.fatbin");
  CUmodule m;
  ASSERT_CU(t.cuModuleLoadData(&m, img.data()));
  CUfunction clustered, add;
  ASSERT_CU(t.cuModuleGetFunction(&clustered, m, "_Z9clusteredPf"));
  ASSERT_CU(t.cuModuleGetFunction(&add, m, "add"));
  int v = 0;
  ASSERT_CU(t.cuFuncGetAttribute(&v, CU_FUNC_ATTRIBUTE_REQUIRED_CLUSTER_WIDTH, clustered));
  EXPECT_EQ(v, 2);
  ASSERT_CU(t.cuFuncGetAttribute(&v, CU_FUNC_ATTRIBUTE_CLUSTER_SIZE_MUST_BE_SET, clustered));
  EXPECT_EQ(v, 1);
  CUdeviceptr p;
  ASSERT_CU(t.cuMemAlloc_v2(&p, 4096));
  void* params[] = {&p};
  CUlaunchConfig cfg = {};
  cfg.gridDimX = 3;  // not a multiple of __cluster_dims__(2)
  cfg.gridDimY = cfg.gridDimZ = 1;
  cfg.blockDimX = 32;
  cfg.blockDimY = cfg.blockDimZ = 1;
  EXPECT_EQ(t.cuLaunchKernelEx(&cfg, clustered, params, nullptr), CUDA_ERROR_INVALID_CLUSTER_SIZE);
  cfg.gridDimX = 4;
  EXPECT_CU(t.cuLaunchKernelEx(&cfg, clustered, params, nullptr));
  CUlaunchAttribute attrs[2] = {};
  attrs[0].id = CU_LAUNCH_ATTRIBUTE_COOPERATIVE;
  attrs[0].value.cooperative = 1;
  attrs[1].id = CU_LAUNCH_ATTRIBUTE_PRIORITY;
  attrs[1].value.priority = -2;
  cfg.attrs = attrs;
  cfg.numAttrs = 2;
  CUdeviceptr a;
  ASSERT_CU(t.cuMemAlloc_v2(&a, 4 * 1024 * 1024));
  int n = 0;
  void* aparams[] = {&a, &a, &a, &n};
  cfg.blockDimX = 1024;
  cfg.gridDimX = 132 * 2;  // two 1024-thread blocks fit on each of 132 SMs
  EXPECT_CU(t.cuLaunchKernelEx(&cfg, add, aparams, nullptr));
  cfg.gridDimX = 132 * 2 + 1;
  EXPECT_EQ(t.cuLaunchKernelEx(&cfg, add, aparams, nullptr), CUDA_ERROR_COOPERATIVE_LAUNCH_TOO_LARGE);
  attrs[0].id = static_cast<CUlaunchAttributeID>(999);
  EXPECT_EQ(t.cuLaunchKernelEx(&cfg, add, aparams, nullptr), CUDA_ERROR_INVALID_VALUE);
  EXPECT_EQ(t.cuLaunchKernelEx(nullptr, add, aparams, nullptr), CUDA_ERROR_INVALID_VALUE);
}

TEST_F(SimModule, Occupancy) {
  std::vector<char> img = ReadFile("sample.fatbin");
  CUmodule m;
  ASSERT_CU(t.cuModuleLoadData(&m, img.data()));
  CUfunction add, bounded;
  ASSERT_CU(t.cuModuleGetFunction(&add, m, "add"));
  ASSERT_CU(t.cuModuleGetFunction(&bounded, m, "_Z7boundedPfi"));
  int blocks = 0;
  ASSERT_CU(t.cuOccupancyMaxActiveBlocksPerMultiprocessor(&blocks, add, 256, 0));
  EXPECT_EQ(blocks, 8);  // 2048 threads per SM
  ASSERT_CU(t.cuOccupancyMaxActiveBlocksPerMultiprocessor(&blocks, add, 32, 0));
  EXPECT_EQ(blocks, 32);  // 32 blocks per SM
  ASSERT_CU(t.cuOccupancyMaxActiveBlocksPerMultiprocessorWithFlags(&blocks, add, 128, 48 * 1024, 1));
  EXPECT_EQ(blocks, 4);   // 228 KiB / (48 KiB + 1 KiB reserved)
  ASSERT_CU(t.cuOccupancyMaxActiveBlocksPerMultiprocessor(&blocks, bounded, 512, 0));
  EXPECT_EQ(blocks, 4);   // the driver ignores __launch_bounds__ here
  EXPECT_EQ(t.cuOccupancyMaxActiveBlocksPerMultiprocessor(&blocks, add, 0, 0), CUDA_ERROR_INVALID_VALUE);
  // Values an H200 gives for these kernels (sim_driver_probe).
  size_t smem = 0;
  ASSERT_CU(t.cuOccupancyAvailableDynamicSMemPerBlock(&smem, add, 8, 128));
  EXPECT_EQ(smem, 233472u / 8);
  ASSERT_CU(t.cuOccupancyAvailableDynamicSMemPerBlock(&smem, bounded, 8, 128));
  EXPECT_EQ(smem, 233472u / 8 - 512);
  ASSERT_CU(t.cuOccupancyAvailableDynamicSMemPerBlock(&smem, add, 1, 256));
  EXPECT_EQ(smem, 49152u);  // capped by MAX_DYNAMIC_SHARED_SIZE_BYTES
  EXPECT_EQ(t.cuOccupancyAvailableDynamicSMemPerBlock(&smem, add, 40, 64), CUDA_ERROR_INVALID_VALUE);
}

TEST_F(SimModule, LibrariesAndKernels) {
  std::vector<char> img = ReadFile("sample.fatbin");
  CUlibrary lib;
  CUlibraryOption lopt[] = {CU_LIBRARY_BINARY_IS_PRESERVED};
  void* lval[] = {reinterpret_cast<void*>(1)};
  ASSERT_CU(t.cuLibraryLoadData(&lib, img.data(), nullptr, nullptr, 0, lopt, lval, 1));
  CUkernel k;
  ASSERT_CU(t.cuLibraryGetKernel(&k, lib, "_Z4fillIiEvPT_S0_m"));
  EXPECT_EQ(t.cuLibraryGetKernel(&k, lib, "nope"), CUDA_ERROR_NOT_FOUND);
  ASSERT_CU(t.cuLibraryGetKernel(&k, lib, "_Z4fillIiEvPT_S0_m"));
  size_t off = 0, size = 0;
  ASSERT_CU(t.cuKernelGetParamInfo(k, 2, &off, &size));
  EXPECT_EQ(off, 16u);
  EXPECT_EQ(size, 8u);
  EXPECT_EQ(t.cuKernelGetParamInfo(k, 3, &off, &size), CUDA_ERROR_INVALID_VALUE);
  const char* name = nullptr;
  ASSERT_CU(t.cuKernelGetName(&name, k));
  EXPECT_STREQ(name, "_Z4fillIiEvPT_S0_m");
  ASSERT_CU(t.cuKernelSetAttribute(CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES, 100000, k, 0));
  int v = 0;
  ASSERT_CU(t.cuKernelGetAttribute(&v, CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES, k, 0));
  EXPECT_EQ(v, 100000);
  CUfunction f;
  ASSERT_CU(t.cuKernelGetFunction(&f, k));
  ASSERT_CU(t.cuFuncGetAttribute(&v, CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES, f));
  EXPECT_EQ(v, 100000);
  // Launch both the CUfunction and the CUkernel itself.
  CUdeviceptr p;
  ASSERT_CU(t.cuMemAlloc_v2(&p, 64 * 4));
  int value = 3;
  size_t n = 64;
  void* params[] = {&p, &value, &n};
  ASSERT_CU(t.cuLaunchKernel(f, 1, 1, 1, 32, 1, 1, 0, nullptr, params, nullptr));
  value = 4;
  ASSERT_CU(t.cuLaunchKernel(reinterpret_cast<CUfunction>(k), 1, 1, 1, 64, 1, 1, 0, nullptr, params, nullptr));
  std::vector<int> h(64);
  ASSERT_CU(t.cuMemcpyDtoH_v2(h.data(), p, 64 * 4));
  EXPECT_EQ(std::count(h.begin(), h.end(), 4), 64);
  CUdeviceptr g;
  size_t bytes = 0;
  ASSERT_CU(t.cuLibraryGetGlobal(&g, &bytes, lib, "g_table"));
  EXPECT_EQ(bytes, 64u);
  CUmodule mod;
  ASSERT_CU(t.cuLibraryGetModule(&mod, lib));
  CUdeviceptr g2;
  ASSERT_CU(t.cuModuleGetGlobal_v2(&g2, nullptr, mod, "g_table"));
  EXPECT_EQ(g, g2);  // one module per context
  ASSERT_CU(t.cuLibraryUnload(lib));
  EXPECT_EQ(t.cuKernelGetName(&name, k), CUDA_ERROR_INVALID_HANDLE);
  EXPECT_EQ(t.cuFuncGetName(&name, f), CUDA_ERROR_INVALID_HANDLE);
  EXPECT_EQ(t.cuLibraryUnload(lib), CUDA_ERROR_INVALID_HANDLE);
}

}  // namespace
}  // namespace rgpu::backend

namespace rgpu::backend {
namespace {

TEST_F(SimModule, CaptureAndReplay) {
  std::vector<char> img = ReadFile("sample.fatbin");
  CUmodule m;
  ASSERT_CU(t.cuModuleLoadData(&m, img.data()));
  CUfunction fill;
  ASSERT_CU(t.cuModuleGetFunction(&fill, m, "_Z4fillIiEvPT_S0_m"));
  CUstream main_stream, side;
  ASSERT_CU(t.cuStreamCreate(&main_stream, CU_STREAM_NON_BLOCKING));
  ASSERT_CU(t.cuStreamCreate(&side, CU_STREAM_NON_BLOCKING));
  CUevent fork, join;
  ASSERT_CU(t.cuEventCreate(&fork, CU_EVENT_DISABLE_TIMING));
  ASSERT_CU(t.cuEventCreate(&join, CU_EVENT_DISABLE_TIMING));
  CUdeviceptr p, q;
  ASSERT_CU(t.cuMemAlloc_v2(&p, 256 * 4));
  ASSERT_CU(t.cuMemAlloc_v2(&q, 256 * 4));
  std::vector<int> host(256, -1);

  ASSERT_CU(t.cuStreamBeginCapture_v2(main_stream, CU_STREAM_CAPTURE_MODE_GLOBAL));
  EXPECT_EQ(t.cuStreamBeginCapture_v2(main_stream, CU_STREAM_CAPTURE_MODE_GLOBAL), CUDA_ERROR_ILLEGAL_STATE);
  int value = 5;
  size_t n = 256;
  void* params[] = {&p, &value, &n};
  ASSERT_CU(t.cuLaunchKernel(fill, 1, 1, 1, 256, 1, 1, 0, main_stream, params, nullptr));
  value = 6;  // parameters were copied at capture: the graph keeps 5
  ASSERT_CU(t.cuEventRecord(fork, main_stream));
  ASSERT_CU(t.cuStreamWaitEvent(side, fork, 0));  // side joins the capture
  ASSERT_CU(t.cuMemcpyDtoDAsync_v2(q, p, 256 * 4, side));
  ASSERT_CU(t.cuEventRecord(join, side));
  ASSERT_CU(t.cuStreamWaitEvent(main_stream, join, 0));
  ASSERT_CU(t.cuMemcpyDtoHAsync_v2(host.data(), q, 256 * 4, main_stream));
  EXPECT_EQ(t.cuEventQuery(join), CUDA_ERROR_CAPTURED_EVENT);
  EXPECT_EQ(t.cuStreamEndCapture(side, nullptr), CUDA_ERROR_INVALID_VALUE);
  CUgraph graph;
  EXPECT_EQ(t.cuStreamEndCapture(side, &graph), CUDA_ERROR_STREAM_CAPTURE_UNMATCHED);
  ASSERT_CU(t.cuStreamEndCapture(main_stream, &graph));
  EXPECT_EQ(host[0], -1);  // nothing ran yet
  CUgraphExec exec;
  ASSERT_CU(t.cuGraphInstantiateWithFlags(&exec, graph, 0));
  ASSERT_CU(t.cuGraphUpload(exec, main_stream));
  ASSERT_CU(t.cuGraphLaunch(exec, main_stream));
  ASSERT_CU(t.cuStreamSynchronize(main_stream));
  EXPECT_EQ(std::count(host.begin(), host.end(), 5), 256);
  std::fill(host.begin(), host.end(), 0);
  ASSERT_CU(t.cuGraphLaunch(exec, side));  // replays, on any stream
  EXPECT_EQ(std::count(host.begin(), host.end(), 5), 256);
  ASSERT_CU(t.cuGraphExecDestroy(exec));
  ASSERT_CU(t.cuGraphDestroy(graph));
  EXPECT_EQ(t.cuGraphDestroy(graph), CUDA_ERROR_INVALID_VALUE);
  EXPECT_EQ(t.cuGraphLaunch(exec, main_stream), CUDA_ERROR_INVALID_VALUE);
}

TEST_F(SimModule, UnsafeCallsInvalidateACapture) {
  CUstream st;
  ASSERT_CU(t.cuStreamCreate(&st, 0));
  CUdeviceptr p;
  ASSERT_CU(t.cuMemAlloc_v2(&p, 64));
  ASSERT_CU(t.cuStreamBeginCapture_v2(st, CU_STREAM_CAPTURE_MODE_GLOBAL));
  ASSERT_CU(t.cuMemsetD8Async(p, 1, 64, st));
  CUdeviceptr q;
  EXPECT_EQ(t.cuMemAlloc_v2(&q, 64), CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED);
  EXPECT_EQ(t.cuMemsetD8Async(p, 1, 64, st), CUDA_ERROR_STREAM_CAPTURE_INVALIDATED);
  CUgraph g = reinterpret_cast<CUgraph>(1);
  EXPECT_EQ(t.cuStreamEndCapture(st, &g), CUDA_ERROR_STREAM_CAPTURE_INVALIDATED);
  EXPECT_EQ(g, nullptr);
  uint8_t h[64];
  ASSERT_CU(t.cuMemcpyDtoH_v2(h, p, 64));  // capture over: allowed again
  EXPECT_EQ(h[0], 0);                       // the captured memset never ran

  // A thread in relaxed mode may make unsafe calls; the capture survives.
  ASSERT_CU(t.cuStreamBeginCapture_v2(st, CU_STREAM_CAPTURE_MODE_GLOBAL));
  CUstreamCaptureMode mode = CU_STREAM_CAPTURE_MODE_RELAXED;
  ASSERT_CU(t.cuThreadExchangeStreamCaptureMode(&mode));
  EXPECT_EQ(mode, CU_STREAM_CAPTURE_MODE_GLOBAL);
  EXPECT_CU(t.cuMemAlloc_v2(&q, 64));
  ASSERT_CU(t.cuThreadExchangeStreamCaptureMode(&mode));
  ASSERT_CU(t.cuStreamEndCapture(st, &g));
  ASSERT_NE(g, nullptr);
  ASSERT_CU(t.cuGraphDestroy(g));
  // A relaxed capture allows them too, but not synchronising with it.
  ASSERT_CU(t.cuStreamBeginCapture_v2(st, CU_STREAM_CAPTURE_MODE_RELAXED));
  EXPECT_CU(t.cuMemAlloc_v2(&q, 64));
  EXPECT_EQ(t.cuStreamQuery(st), CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED);
  EXPECT_EQ(t.cuStreamEndCapture(st, &g), CUDA_ERROR_STREAM_CAPTURE_INVALIDATED);
  EXPECT_EQ(t.cuStreamBeginCapture_v2(nullptr, CU_STREAM_CAPTURE_MODE_GLOBAL),
            CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED);
  // Legacy-stream work while a blocking stream captures.
  ASSERT_CU(t.cuStreamBeginCapture_v2(st, CU_STREAM_CAPTURE_MODE_RELAXED));
  EXPECT_EQ(t.cuMemsetD8Async(p, 1, 64, nullptr), CUDA_ERROR_STREAM_CAPTURE_IMPLICIT);
  EXPECT_EQ(t.cuStreamEndCapture(st, &g), CUDA_ERROR_STREAM_CAPTURE_INVALIDATED);
}

}  // namespace
}  // namespace rgpu::backend
