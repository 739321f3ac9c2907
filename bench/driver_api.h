// DriverApi: the driver functions rgpu bench calls, resolved with dlsym from
// one driver library (NVIDIA's libcuda.so.1 or rgpu's client), so that the
// same measuring code runs against either.
//
// Each function is looked up by the name cuda.h maps its public name to (e.g.
// cuMemAlloc -> "cuMemAlloc_v2", cuStreamDestroy -> "cuStreamDestroy_v2"):
// exactly the symbol a program compiled against this cuda.h would call.
// Members are named by the public names (api.cuMemAlloc(...)).
#pragma once

#include <cuda.h>

#include <string>

#include "common/status.h"

namespace rgpu::bench {

#define RGPU_BENCH_DRIVER_FUNCTIONS(X)                                             \
  X(cuInit) X(cuDriverGetVersion) X(cuDeviceGet) X(cuDeviceGetName)                 \
  X(cuDeviceGetAttribute) X(cuDevicePrimaryCtxRetain) X(cuDevicePrimaryCtxRelease) \
  X(cuDevicePrimaryCtxGetState) X(cuCtxSetCurrent) X(cuCtxGetCurrent)              \
  X(cuCtxGetDevice) X(cuCtxSynchronize) X(cuStreamCreate) X(cuStreamDestroy)        \
  X(cuStreamIsCapturing) X(cuModuleLoadData) X(cuModuleUnload)                      \
  X(cuModuleGetFunction) X(cuFuncGetAttribute)                                      \
  X(cuOccupancyMaxActiveBlocksPerMultiprocessor) X(cuLaunchKernel) X(cuMemAlloc)    \
  X(cuMemFree) X(cuMemGetInfo) X(cuMemAllocHost) X(cuMemFreeHost) X(cuMemcpyHtoD) X(cuMemcpyDtoH)   \
  X(cuGetErrorName)

struct DriverApi {
  void* handle = nullptr;  // from dlopen; never closed (drivers don't unload cleanly)
#define RGPU_BENCH_DRIVER_MEMBER(name) decltype(&::name) name = nullptr;
  RGPU_BENCH_DRIVER_FUNCTIONS(RGPU_BENCH_DRIVER_MEMBER)
#undef RGPU_BENCH_DRIVER_MEMBER

  // "CUDA_ERROR_INVALID_VALUE" for r, via the library's own cuGetErrorName;
  // "CUresult N" if it has no name for it.
  std::string ErrorName(CUresult r) const;
};

// dlopen(path, RTLD_NOW | RTLD_LOCAL) and resolve every function above. Fails
// with "dlopen <dlerror>" when the library cannot be loaded, or
// "<path>: no symbol <name>" naming the first function it lacks.
Result<DriverApi> LoadDriverApi(const std::string& path);

}  // namespace rgpu::bench
