// DriverTable: the CUDA driver functions a worker executes, as pointers with
// the exact signatures of cuda.h.
//
// This is the Backend interface. The `cuda` backend fills it from the real
// driver (dlopen + cuGetProcAddress); the `sim` backend fills it with its own
// host-memory implementations. A null entry means the backend does not
// implement that function; the worker then answers CUDA_ERROR_NOT_SUPPORTED.
//
// Names are the real exported (versioned) symbols, e.g. cuMemAlloc_v2.
// To add a function: add an X() line here, then implement it in sim/.
#pragma once

#include <cuda.h>
#include <cudaProfiler.h>  // cuProfilerStart / cuProfilerStop

#include <memory>
#include <string>
#include <vector>

#include "common/status.h"

#define RGPU_DRIVER_FUNCTIONS(X)                      \
  /* init, version, devices */                        \
  X(cuInit)                                           \
  X(cuDriverGetVersion)                               \
  X(cuDeviceGet)                                      \
  X(cuDeviceGetCount)                                 \
  X(cuDeviceGetName)                                  \
  X(cuDeviceGetUuid_v2)                               \
  X(cuDeviceTotalMem_v2)                              \
  X(cuDeviceGetAttribute)                             \
  X(cuDeviceGetPCIBusId)                              \
  X(cuDeviceCanAccessPeer)                            \
  X(cuDeviceGetP2PAttribute)                          \
  /* contexts */                                      \
  X(cuDevicePrimaryCtxRetain)                         \
  X(cuDevicePrimaryCtxRelease_v2)                     \
  X(cuDevicePrimaryCtxReset_v2)                       \
  X(cuDevicePrimaryCtxSetFlags_v2)                    \
  X(cuDevicePrimaryCtxGetState)                       \
  X(cuCtxCreate_v4)                                   \
  X(cuCtxDestroy_v2)                                  \
  X(cuCtxSetCurrent)                                  \
  X(cuCtxGetCurrent)                                  \
  X(cuCtxSynchronize)                                 \
  X(cuCtxSetLimit)                                    \
  X(cuCtxGetLimit)                                    \
  X(cuCtxGetStreamPriorityRange)                      \
  X(cuCtxSetCacheConfig)                              \
  X(cuCtxGetCacheConfig)                              \
  X(cuCtxGetFlags)                                    \
  X(cuCtxGetDevice)                                    \
  X(cuCtxEnablePeerAccess)                            \
  X(cuCtxDisablePeerAccess)                           \
  /* memory */                                        \
  X(cuMemAlloc_v2)                                    \
  X(cuMemAllocPitch_v2)                               \
  X(cuMemFree_v2)                                     \
  X(cuMemGetInfo_v2)                                  \
  X(cuMemGetAddressRange_v2)                          \
  X(cuMemcpyHtoD_v2)                                  \
  X(cuMemcpyDtoH_v2)                                  \
  X(cuMemcpyDtoD_v2)                                  \
  X(cuMemcpyHtoDAsync_v2)                             \
  X(cuMemcpyDtoHAsync_v2)                             \
  X(cuMemcpyDtoDAsync_v2)                             \
  X(cuMemcpy2D_v2)                                    \
  X(cuMemcpy2DUnaligned_v2)                           \
  X(cuMemcpy2DAsync_v2)                               \
  X(cuMemcpy3D_v2)                                    \
  X(cuMemcpy3DAsync_v2)                               \
  X(cuMemsetD8_v2)                                    \
  X(cuMemsetD16_v2)                                   \
  X(cuMemsetD32_v2)                                   \
  X(cuMemsetD2D8_v2)                                  \
  X(cuMemsetD2D16_v2)                                 \
  X(cuMemsetD2D32_v2)                                 \
  X(cuMemsetD8Async)                                  \
  X(cuMemsetD16Async)                                 \
  X(cuMemsetD32Async)                                 \
  X(cuMemsetD2D8Async)                                \
  X(cuMemsetD2D16Async)                               \
  X(cuMemsetD2D32Async)                               \
  /* virtual memory management */                     \
  X(cuMemGetAllocationGranularity)                    \
  X(cuMemAddressReserve)                              \
  X(cuMemAddressFree)                                 \
  X(cuMemCreate)                                      \
  X(cuMemRelease)                                     \
  X(cuMemMap)                                         \
  X(cuMemUnmap)                                       \
  X(cuMemSetAccess)                                   \
  /* pinned host memory (the worker's swap store for idle detach) */ \
  X(cuMemHostAlloc)                                   \
  X(cuMemFreeHost)                                    \
  /* streams */                                       \
  X(cuStreamCreate)                                   \
  X(cuStreamCreateWithPriority)                       \
  X(cuStreamDestroy_v2)                               \
  X(cuStreamSynchronize)                              \
  X(cuStreamQuery)                                    \
  X(cuStreamWaitEvent)                                \
  X(cuStreamGetPriority)                              \
  X(cuStreamGetFlags)                                 \
  X(cuLaunchHostFunc)                                 \
  /* events */                                        \
  X(cuEventCreate)                                    \
  X(cuEventDestroy_v2)                                \
  X(cuEventRecord)                                    \
  X(cuEventRecordWithFlags)                           \
  X(cuEventSynchronize)                               \
  X(cuEventQuery)                                     \
  X(cuEventElapsedTime_v2)                            \
  /* modules, libraries, functions, kernels */        \
  X(cuModuleLoadData)                                 \
  X(cuModuleLoadDataEx)                               \
  X(cuModuleLoadFatBinary)                            \
  X(cuModuleUnload)                                   \
  X(cuModuleGetFunction)                              \
  X(cuModuleGetGlobal_v2)                             \
  X(cuLibraryLoadData)                                \
  X(cuLibraryUnload)                                  \
  X(cuLibraryGetKernel)                               \
  X(cuLibraryGetModule)                               \
  X(cuLibraryGetGlobal)                               \
  X(cuLibraryGetManaged)                              \
  X(cuKernelGetFunction)                              \
  X(cuKernelGetAttribute)                             \
  X(cuKernelSetAttribute)                             \
  X(cuKernelGetParamInfo)                             \
  X(cuKernelGetName)                                  \
  X(cuFuncGetAttribute)                               \
  X(cuFuncSetAttribute)                               \
  X(cuFuncSetCacheConfig)                             \
  X(cuFuncGetParamInfo)                               \
  X(cuFuncGetName)                                    \
  /* launch and occupancy */                          \
  X(cuLaunchKernel)                                   \
  X(cuLaunchKernelEx)                                 \
  X(cuOccupancyMaxActiveBlocksPerMultiprocessor)      \
  X(cuOccupancyMaxActiveBlocksPerMultiprocessorWithFlags) \
  X(cuOccupancyAvailableDynamicSMemPerBlock)          \
  X(cuOccupancyMaxActiveClusters)                     \
  X(cuOccupancyMaxPotentialClusterSize)               \
  /* stream capture and graphs */                    \
  X(cuStreamBeginCapture_v2)                          \
  X(cuStreamEndCapture)                               \
  X(cuThreadExchangeStreamCaptureMode)                \
  X(cuGraphInstantiateWithFlags)                      \
  X(cuGraphLaunch)                                    \
  X(cuGraphUpload)                                    \
  X(cuGraphExecDestroy)                               \
  X(cuGraphDestroy)                                   \
  X(cuGraphGetNodes)                                  \
  /* arrays, texture and surface objects ("arrays") */ \
  X(cuArray3DCreate_v2)                               \
  X(cuArrayDestroy)                                   \
  X(cuTexObjectCreate)                                \
  X(cuTexObjectDestroy)                               \
  X(cuSurfObjectCreate)                               \
  X(cuSurfObjectDestroy)                              \
  /* small driver calls ("misc") */                    \
  X(cuTensorMapEncodeTiled)                           \
  X(cuTensorMapEncodeIm2col)                          \
  X(cuTensorMapEncodeIm2colWide)                      \
  X(cuTensorMapReplaceAddress)                        \
  X(cuProfilerStart)                                  \
  X(cuProfilerStop)                                   \
  X(cuStreamSetAttribute)                             \
  X(cuStreamGetAttribute)                             \
  X(cuStreamCopyAttributes)                           \
  X(cuCtxResetPersistingL2Cache)                      \
  X(cuModuleGetFunctionCount)                         \
  X(cuModuleEnumerateFunctions)                       \
  X(cuLibraryGetKernelCount)                          \
  X(cuLibraryEnumerateKernels)                        \
  X(cuMemGetAccess)                                   \
  X(cuPointerSetAttribute)                            \
  X(cuLinkCreate_v2)                                  \
  X(cuLinkAddData_v2)                                 \
  X(cuLinkComplete)                                   \
  X(cuLinkDestroy)                                    \
  /* calls real programs still needed ("compat") */   \
  X(cuFuncSetSharedMemConfig)                         \
  X(cuDeviceGetTexture1DLinearMaxWidth)               \
  X(cuStreamWriteValue32_v2)                          \
  X(cuStreamWriteValue64_v2)                          \
  X(cuStreamWaitValue32_v2)                           \
  X(cuStreamWaitValue64_v2)                           \
  X(cuStreamBatchMemOp_v2)                            \
  X(cuCtxRecordEvent)                                 \
  X(cuCtxWaitEvent)                                   \
  X(cuStreamUpdateCaptureDependencies_v2)             \
  /* errors */                                        \
  X(cuGetErrorName)                                   \
  X(cuGetErrorString)

namespace rgpu::backend {

struct DriverTable {
#define RGPU_DECLARE_ENTRY(name) decltype(&::name) name = nullptr;
  RGPU_DRIVER_FUNCTIONS(RGPU_DECLARE_ENTRY)
#undef RGPU_DECLARE_ENTRY
};

// Number of entries and their names, in X() order (for logs and coverage).
int DriverTableSize();
const char* DriverTableName(int index);
// The entry at `index` as an untyped pointer (null when not implemented).
void* DriverTableEntry(const DriverTable& t, int index);

struct BackendOptions {
  std::string kind;         // "cuda" or "sim"
  std::string driver_path;  // cuda: the real libcuda.so.1 (empty: search)
  std::string profile_path; // sim: the recorded device profile (JSON)
  int sim_gpus = 1;         // sim: how many identical devices
  int sim_first_index = 0;  // sim: host-wide index of the first one (its UUID/PCI id)
  // sim: host-wide index of each device, in ordinal order (what
  // CUDA_VISIBLE_DEVICES does for the real driver); when set, its size is
  // the device count and sim_gpus / sim_first_index are ignored.
  std::vector<int> sim_indices;
};

// Loads a backend into `table`. On failure the table is left empty and the
// Status says why ("cuda: dlopen /usr/lib/libcuda.so.1: ...").
Status LoadBackend(const BackendOptions& options, DriverTable* table);

}  // namespace rgpu::backend
