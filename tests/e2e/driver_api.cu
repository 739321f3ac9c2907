// driver_api: the CUDA driver API only (no cudart calls). Loads an embedded
// fatbin and cubin (built from driver_kernels.cu), queries parameter layouts,
// launches with kernelParams, with `extra` and with cuLaunchKernelEx
// attributes, uses pitched memory with cuMemcpy2D / cuMemcpy3D, module
// globals, libraries and kernels, events, and the context stack.
// Exits non-zero on any CUDA error or wrong result.
#include <cuda.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <algorithm>
#include <vector>

#include "driver_kernels_cubin.h"   // unsigned char driver_kernels_cubin[] (bin2c)
#include "driver_kernels_fatbin.h"  // unsigned char driver_kernels_fatbin[] (bin2c)

#define CHECK(call)                                                                        \
  do {                                                                                     \
    CUresult r_ = (call);                                                                  \
    if (r_ != CUDA_SUCCESS) {                                                              \
      const char* name_ = nullptr;                                                         \
      cuGetErrorName(r_, &name_);                                                          \
      fprintf(stderr, "driver_api: %s:%d: %s failed: %s (%d)\n", __FILE__, __LINE__, #call, \
              name_ ? name_ : "?", static_cast<int>(r_));                                  \
      exit(1);                                                                             \
    }                                                                                      \
  } while (0)

#define EXPECT(cond, ...)                                   \
  do {                                                      \
    if (!(cond)) {                                          \
      fprintf(stderr, "driver_api: FAILED: " __VA_ARGS__);  \
      fprintf(stderr, "\n");                                \
      exit(1);                                              \
    }                                                       \
  } while (0)

struct Affine {
  float scale;
  int offset;
  double bias;
};

static const char kScaleOffset[] = "_Z11scaleOffsetPKfPfi6Affine";

// bin2c arrays are byte-aligned; images are handed to the driver 8-byte
// aligned, as nvcc-embedded ones are.
template <size_t N>
static std::vector<unsigned long long> Aligned(const unsigned char (&bytes)[N]) {
  std::vector<unsigned long long> v((N + 7) / 8, 0);
  memcpy(v.data(), bytes, N);
  return v;
}

// Loops cuFuncGetParamInfo until CUDA_ERROR_INVALID_VALUE, like a client that
// has to learn a kernel's layout.
static void CheckLayout(CUfunction f, const char* name, const std::vector<size_t>& offsets,
                        const std::vector<size_t>& sizes) {
  size_t i = 0;
  for (;; ++i) {
    size_t off = 0, size = 0;
    CUresult r = cuFuncGetParamInfo(f, i, &off, &size);
    if (r == CUDA_ERROR_INVALID_VALUE) break;
    CHECK(r);
    EXPECT(i < offsets.size(), "%s: more than %zu parameters", name, offsets.size());
    EXPECT(off == offsets[i] && size == sizes[i], "%s param %zu: offset %zu size %zu, want %zu %zu",
           name, i, off, size, offsets[i], sizes[i]);
  }
  EXPECT(i == offsets.size(), "%s: %zu parameters, want %zu", name, i, offsets.size());
}

int main() {
  CHECK(cuInit(0));
  int count = 0;
  CHECK(cuDeviceGetCount(&count));
  EXPECT(count > 0, "no device");
  CUdevice dev;
  CHECK(cuDeviceGet(&dev, 0));
  char name[256];
  CHECK(cuDeviceGetName(name, sizeof name, dev));
  int major = 0, minor = 0;
  CHECK(cuDeviceGetAttribute(&major, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR, dev));
  CHECK(cuDeviceGetAttribute(&minor, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR, dev));
  printf("driver_api: %d device(s), device 0: %s (cc %d.%d)\n", count, name, major, minor);

  CUcontext ctx;
  CHECK(cuCtxCreate(&ctx, nullptr, 0, dev));
  CUcontext cur = nullptr;
  CHECK(cuCtxGetCurrent(&cur));
  EXPECT(cur == ctx, "new context is not current");

  const std::vector<unsigned long long> fatbin = Aligned(driver_kernels_fatbin);
  const std::vector<unsigned long long> cubin = Aligned(driver_kernels_cubin);

  // --- module from the fatbin; parameter layouts ---
  CUmodule mod;
  CHECK(cuModuleLoadData(&mod, fatbin.data()));
  CUfunction scale_offset, multiply, add_row, cluster_rank;
  CHECK(cuModuleGetFunction(&scale_offset, mod, kScaleOffset));
  CHECK(cuModuleGetFunction(&multiply, mod, "multiplyByGlobal"));
  CHECK(cuModuleGetFunction(&add_row, mod, "addRowIndex"));
  CHECK(cuModuleGetFunction(&cluster_rank, mod, "clusterRank"));
  // One handle per function, however often it is looked up or listed (the
  // driver's: cuFFT compares what TOOLS_MODULE lists with what it resolved).
  CUfunction looked_up = nullptr;
  CHECK(cuModuleGetFunction(&looked_up, mod, "multiplyByGlobal"));
  EXPECT(looked_up == multiply, "a second lookup of multiplyByGlobal gave another handle");
  unsigned listed_count = 0;
  CHECK(cuModuleGetFunctionCount(&listed_count, mod));
  std::vector<CUfunction> listed(listed_count);
  CHECK(cuModuleEnumerateFunctions(listed.data(), listed_count, mod));
  EXPECT(std::find(listed.begin(), listed.end(), multiply) != listed.end(),
         "cuModuleEnumerateFunctions did not list multiplyByGlobal's handle");
  CUfunction missing;
  EXPECT(cuModuleGetFunction(&missing, mod, "noSuchKernel") == CUDA_ERROR_NOT_FOUND,
         "missing kernel not reported as CUDA_ERROR_NOT_FOUND");
  CheckLayout(scale_offset, "scaleOffset", {0, 8, 16, 24}, {8, 8, 4, 16});
  CheckLayout(multiply, "multiplyByGlobal", {0, 8}, {8, 4});
  CheckLayout(add_row, "addRowIndex", {0, 8, 16, 20}, {8, 8, 4, 4});
  int regs = 0, max_threads = 0;
  CHECK(cuFuncGetAttribute(&regs, CU_FUNC_ATTRIBUTE_NUM_REGS, scale_offset));
  CHECK(cuFuncGetAttribute(&max_threads, CU_FUNC_ATTRIBUTE_MAX_THREADS_PER_BLOCK, scale_offset));
  EXPECT(regs > 0 && max_threads >= 256, "regs %d max threads %d", regs, max_threads);
  printf("driver_api: parameter layouts correct (scaleOffset: %d regs)\n", regs);

  // --- launch with kernelParams ---
  const int n = 5000;
  std::vector<float> in(n), out(n);
  for (int i = 0; i < n; ++i) in[i] = static_cast<float>(i % 97);
  CUdeviceptr d_in, d_out;
  CHECK(cuMemAlloc(&d_in, n * sizeof(float)));
  CHECK(cuMemAlloc(&d_out, n * sizeof(float)));
  CHECK(cuMemcpyHtoD(d_in, in.data(), n * sizeof(float)));
  Affine aff = {2.0f, 3, 0.5};
  int nn = n;
  void* params[] = {&d_in, &d_out, &nn, &aff};
  CHECK(cuLaunchKernel(scale_offset, (n + 127) / 128, 1, 1, 128, 1, 1, 0, nullptr, params, nullptr));
  CHECK(cuCtxSynchronize());
  CHECK(cuMemcpyDtoH(out.data(), d_out, n * sizeof(float)));
  for (int i = 0; i < n; ++i) EXPECT(out[i] == in[i] * 2.0f + 3.5f, "out[%d] = %f", i, out[i]);

  // --- launch with `extra`: one packed buffer laid out as the kernel expects ---
  struct {
    CUdeviceptr in, out;
    int n;
    int pad;
    Affine a;
  } packed = {d_in, d_out, n, 0, {-1.0f, 0, 0.0}};
  static_assert(sizeof(packed) == 40, "packed layout");
  size_t packed_size = sizeof packed;
  void* extra[] = {CU_LAUNCH_PARAM_BUFFER_POINTER, &packed, CU_LAUNCH_PARAM_BUFFER_SIZE,
                   &packed_size, CU_LAUNCH_PARAM_END};
  CHECK(cuLaunchKernel(scale_offset, (n + 255) / 256, 1, 1, 256, 1, 1, 0, nullptr, nullptr, extra));
  CHECK(cuMemcpyDtoH(out.data(), d_out, n * sizeof(float)));
  for (int i = 0; i < n; ++i) EXPECT(out[i] == -in[i], "extra: out[%d] = %f", i, out[i]);

  // --- module globals ---
  CUdeviceptr g_launches, g_factor;
  size_t g_bytes = 0;
  CHECK(cuModuleGetGlobal(&g_launches, &g_bytes, mod, "g_launches"));
  EXPECT(g_bytes == sizeof(int), "g_launches is %zu bytes", g_bytes);
  int launches = 0;
  CHECK(cuMemcpyDtoH(&launches, g_launches, sizeof launches));
  EXPECT(launches == 2, "g_launches = %d, want 2", launches);
  CHECK(cuModuleGetGlobal(&g_factor, &g_bytes, mod, "g_factor"));
  float factor = 0;
  CHECK(cuMemcpyDtoH(&factor, g_factor, sizeof factor));
  EXPECT(factor == 3.0f, "g_factor initialised to %f, want 3", factor);
  factor = -2.0f;
  CHECK(cuMemcpyHtoD(g_factor, &factor, sizeof factor));
  void* mparams[] = {&d_in, &nn};
  CHECK(cuLaunchKernel(multiply, (n + 127) / 128, 1, 1, 128, 1, 1, 0, nullptr, mparams, nullptr));
  CHECK(cuMemcpyDtoH(out.data(), d_in, n * sizeof(float)));
  for (int i = 0; i < n; ++i) EXPECT(out[i] == -2.0f * in[i], "global: [%d] = %f", i, out[i]);
  printf("driver_api: kernelParams, extra and module globals correct\n");

  // --- cuLaunchKernelEx with a cluster dimension and a priority ---
  CUstream stream;
  CHECK(cuStreamCreate(&stream, CU_STREAM_NON_BLOCKING));
  const int blocks = 8;
  CUdeviceptr d_rank;
  CHECK(cuMemAlloc(&d_rank, blocks * sizeof(int)));
  CHECK(cuMemsetD32Async(d_rank, 0xffffffffu, blocks, stream));
  CUlaunchAttribute attrs[2];
  memset(attrs, 0, sizeof attrs);
  attrs[0].id = CU_LAUNCH_ATTRIBUTE_CLUSTER_DIMENSION;
  attrs[0].value.clusterDim.x = 2;
  attrs[0].value.clusterDim.y = 1;
  attrs[0].value.clusterDim.z = 1;
  attrs[1].id = CU_LAUNCH_ATTRIBUTE_PRIORITY;
  attrs[1].value.priority = -1;
  CUlaunchConfig cfg;
  memset(&cfg, 0, sizeof cfg);
  cfg.gridDimX = blocks;
  cfg.gridDimY = cfg.gridDimZ = 1;
  cfg.blockDimX = 32;
  cfg.blockDimY = cfg.blockDimZ = 1;
  cfg.hStream = stream;
  cfg.attrs = attrs;
  cfg.numAttrs = 2;
  void* rparams[] = {&d_rank};
  CHECK(cuLaunchKernelEx(&cfg, cluster_rank, rparams, nullptr));
  std::vector<int> ranks(blocks);
  CHECK(cuMemcpyDtoHAsync(ranks.data(), d_rank, blocks * sizeof(int), stream));
  CHECK(cuStreamSynchronize(stream));
  for (int b = 0; b < blocks; ++b) EXPECT(ranks[b] == b % 2, "cluster rank of block %d = %d", b, ranks[b]);
  printf("driver_api: cuLaunchKernelEx with clusters correct\n");

  // --- launches the driver refuses at the call, not at the next sync ---
  // More dynamic shared memory than the function allows without opting in.
  EXPECT(cuLaunchKernel(scale_offset, 1, 1, 1, 32, 1, 1, 64 << 10, nullptr, params, nullptr) ==
             CUDA_ERROR_INVALID_VALUE, "64 KiB of dynamic shared memory accepted without the opt-in");
  // Allowed once raised, through any handle of the function: the driver has
  // one function per module and name, however often it is looked up.
  CUfunction again;
  CHECK(cuModuleGetFunction(&again, mod, kScaleOffset));
  CHECK(cuFuncSetAttribute(scale_offset, CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES, 64 << 10));
  int raised = 0;
  CHECK(cuFuncGetAttribute(&raised, CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES, again));
  EXPECT(raised == 64 << 10, "the raised limit reads %d through another handle", raised);
  CHECK(cuLaunchKernel(again, 1, 1, 1, 32, 1, 1, 64 << 10, nullptr, params, nullptr));
  CHECK(cuCtxSynchronize());
  // A grid that is not a whole number of clusters.
  cfg.gridDimX = 7;
  EXPECT(cuLaunchKernelEx(&cfg, cluster_rank, rparams, nullptr) == CUDA_ERROR_INVALID_CLUSTER_SIZE,
         "7 blocks in clusters of 2 accepted");
  cfg.gridDimX = blocks;
  // A cooperative grid that can't be resident at once.
  int sms = 0, per_sm = 0;
  CHECK(cuDeviceGetAttribute(&sms, CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT, dev));
  CHECK(cuOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, scale_offset, 128, 0));
  EXPECT(per_sm > 0, "occupancy %d", per_sm);
  EXPECT(cuLaunchCooperativeKernel(scale_offset, sms * per_sm + 1, 1, 1, 128, 1, 1, 0, nullptr, params) ==
             CUDA_ERROR_COOPERATIVE_LAUNCH_TOO_LARGE, "a cooperative grid of %d blocks accepted", sms * per_sm + 1);
  // None of them left an error behind for the next synchronisation.
  CHECK(cuCtxSynchronize());
  printf("driver_api: refused launches reported at the call\n");

  // --- pitched memory: cuMemAllocPitch, cuMemsetD2D32, cuMemcpy2D, kernel, cuMemcpy3D ---
  const int w = 50, h = 9;
  CUdeviceptr pm;
  size_t pitch = 0;
  CHECK(cuMemAllocPitch(&pm, &pitch, w * sizeof(int), h, sizeof(int)));
  EXPECT(pitch >= w * sizeof(int), "pitch %zu", pitch);
  CHECK(cuMemsetD2D32(pm, pitch, 5, w, h));
  std::vector<int> hm(w * h, -1);
  CUDA_MEMCPY2D c2 = {};
  c2.srcMemoryType = CU_MEMORYTYPE_DEVICE;
  c2.srcDevice = pm;
  c2.srcPitch = pitch;
  c2.dstMemoryType = CU_MEMORYTYPE_HOST;
  c2.dstHost = hm.data();
  c2.dstPitch = w * sizeof(int);
  c2.WidthInBytes = w * sizeof(int);
  c2.Height = h;
  CHECK(cuMemcpy2D(&c2));
  for (int i = 0; i < w * h; ++i) EXPECT(hm[i] == 5, "memsetD2D32 [%d] = %d", i, hm[i]);
  int ww = w, hh = h;
  void* aparams[] = {&pm, &pitch, &ww, &hh};
  CHECK(cuLaunchKernel(add_row, (w + 31) / 32, h, 1, 32, 1, 1, 0, nullptr, aparams, nullptr));
  CUDA_MEMCPY3D c3 = {};
  c3.srcMemoryType = CU_MEMORYTYPE_DEVICE;
  c3.srcDevice = pm;
  c3.srcPitch = pitch;
  c3.srcHeight = h;
  c3.dstMemoryType = CU_MEMORYTYPE_HOST;
  c3.dstHost = hm.data();
  c3.dstPitch = w * sizeof(int);
  c3.dstHeight = h;
  c3.WidthInBytes = w * sizeof(int);
  c3.Height = h;
  c3.Depth = 1;
  CHECK(cuMemcpy3D(&c3));
  for (int y = 0; y < h; ++y) {
    for (int x = 0; x < w; ++x) EXPECT(hm[y * w + x] == 5 + y + 1, "2D kernel (%d,%d) = %d", x, y, hm[y * w + x]);
  }
  printf("driver_api: pitched memory (pitch %zu) correct\n", pitch);

  // --- events ---
  CUevent start, stop;
  CHECK(cuEventCreate(&start, CU_EVENT_DEFAULT));
  CHECK(cuEventCreate(&stop, CU_EVENT_DEFAULT));
  CHECK(cuEventRecord(start, stream));
  CHECK(cuMemsetD8Async(d_out, 0, n * sizeof(float), stream));
  CHECK(cuEventRecord(stop, stream));
  CHECK(cuEventSynchronize(stop));
  float ms = -1;
  CHECK(cuEventElapsedTime(&ms, start, stop));
  EXPECT(ms >= 0, "elapsed %f", ms);

  // --- the context stack: a second context pushed and popped ---
  CUcontext ctx2;
  CHECK(cuCtxCreate(&ctx2, nullptr, 0, dev));
  CHECK(cuCtxGetCurrent(&cur));
  EXPECT(cur == ctx2, "cuCtxCreate did not make the new context current");
  CUdeviceptr in_ctx2;
  CHECK(cuMemAlloc(&in_ctx2, 4096));
  CUcontext popped = nullptr;
  CHECK(cuCtxPopCurrent(&popped));
  EXPECT(popped == ctx2, "popped the wrong context");
  CHECK(cuCtxGetCurrent(&cur));
  EXPECT(cur == ctx, "after pop, current is not the first context");
  CHECK(cuCtxPushCurrent(ctx2));
  CHECK(cuMemFree(in_ctx2));
  CHECK(cuCtxPopCurrent(&popped));
  CHECK(cuCtxDestroy(ctx2));
  CHECK(cuCtxGetCurrent(&cur));
  EXPECT(cur == ctx, "after destroying the second context, current changed");
  printf("driver_api: context push/pop correct\n");

  // --- the same kernels from the cubin, and as a library ---
  CUmodule mod_cubin;
  CHECK(cuModuleLoadData(&mod_cubin, cubin.data()));
  CUfunction from_cubin;
  CHECK(cuModuleGetFunction(&from_cubin, mod_cubin, kScaleOffset));
  CheckLayout(from_cubin, "scaleOffset (cubin)", {0, 8, 16, 24}, {8, 8, 4, 16});
  CUlibrary lib;
  CHECK(cuLibraryLoadData(&lib, fatbin.data(), nullptr, nullptr, 0, nullptr, nullptr, 0));
  CUkernel kern;
  CHECK(cuLibraryGetKernel(&kern, lib, kScaleOffset));
  size_t off = 0, size = 0;
  CHECK(cuKernelGetParamInfo(kern, 3, &off, &size));
  EXPECT(off == 24 && size == 16, "kernel param 3: %zu %zu", off, size);
  EXPECT(cuKernelGetParamInfo(kern, 4, &off, &size) == CUDA_ERROR_INVALID_VALUE,
         "param 4 of a 4-parameter kernel");
  CUfunction kfunc;
  CHECK(cuKernelGetFunction(&kfunc, kern));
  aff = {1.0f, 1, 0.0};
  CHECK(cuMemcpyHtoD(d_in, in.data(), n * sizeof(float)));
  CHECK(cuLaunchKernel(kfunc, (n + 127) / 128, 1, 1, 128, 1, 1, 0, stream, params, nullptr));
  CHECK(cuStreamSynchronize(stream));
  CHECK(cuMemcpyDtoH(out.data(), d_out, n * sizeof(float)));
  for (int i = 0; i < n; ++i) EXPECT(out[i] == in[i] + 1.0f, "library: out[%d] = %f", i, out[i]);
  printf("driver_api: cubin module and library kernel correct\n");

  CHECK(cuLibraryUnload(lib));
  CHECK(cuModuleUnload(mod_cubin));
  CHECK(cuEventDestroy(start));
  CHECK(cuEventDestroy(stop));
  CHECK(cuStreamDestroy(stream));
  CHECK(cuMemFree(pm));
  CHECK(cuMemFree(d_rank));
  CHECK(cuMemFree(d_in));
  CHECK(cuMemFree(d_out));
  CHECK(cuModuleUnload(mod));
  CHECK(cuCtxDestroy(ctx));
  printf("driver_api: PASS\n");
  return 0;
}
