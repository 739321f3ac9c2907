// NVML: initialization, error strings and system queries.
#include <cstdio>
#include <string>

#include "nvml/nvml_state.h"

using rgpu::nvml::CopyOut;
using rgpu::nvml::NvmlState;

RGPU_NVML_API nvmlReturn_t nvmlInit_v2() { return NvmlState::Init(0); }
RGPU_NVML_API nvmlReturn_t nvmlInit() { return NvmlState::Init(0); }
RGPU_NVML_API nvmlReturn_t nvmlInitWithFlags(unsigned int flags) { return NvmlState::Init(flags); }
RGPU_NVML_API nvmlReturn_t nvmlShutdown() { return NvmlState::Shutdown(); }

// The real library's strings, for the codes it defines; anything else is
// "Unknown Error", as there.
RGPU_NVML_API const char* nvmlErrorString(nvmlReturn_t result) {
  switch (result) {
    case NVML_SUCCESS: return "Success";
    case NVML_ERROR_UNINITIALIZED: return "Uninitialized";
    case NVML_ERROR_INVALID_ARGUMENT: return "Invalid Argument";
    case NVML_ERROR_NOT_SUPPORTED: return "Not Supported";
    case NVML_ERROR_NO_PERMISSION: return "Insufficient Permissions";
    case NVML_ERROR_ALREADY_INITIALIZED: return "Already Initialized";
    case NVML_ERROR_NOT_FOUND: return "Not Found";
    case NVML_ERROR_INSUFFICIENT_SIZE: return "Insufficient Size";
    case NVML_ERROR_INSUFFICIENT_POWER: return "Insufficient External Power";
    case NVML_ERROR_DRIVER_NOT_LOADED: return "Driver Not Loaded";
    case NVML_ERROR_TIMEOUT: return "Timeout";
    case NVML_ERROR_IRQ_ISSUE: return "Interrupt request issue";
    case NVML_ERROR_LIBRARY_NOT_FOUND: return "NVML Shared Library Not Found";
    case NVML_ERROR_FUNCTION_NOT_FOUND: return "Function Not Found";
    case NVML_ERROR_CORRUPTED_INFOROM: return "Corrupted infoROM";
    case NVML_ERROR_GPU_IS_LOST: return "GPU is lost";
    case NVML_ERROR_RESET_REQUIRED: return "GPU requires restart";
    case NVML_ERROR_OPERATING_SYSTEM: return "The operating system has blocked the request.";
    case NVML_ERROR_LIB_RM_VERSION_MISMATCH: return "RM has detected an NVML/RM version mismatch.";
    case NVML_ERROR_IN_USE: return "In use by another client";
    case NVML_ERROR_MEMORY: return "Insufficient Memory";
    case NVML_ERROR_NO_DATA: return "No data";
    case NVML_ERROR_VGPU_ECC_NOT_SUPPORTED:
      return "The requested vgpu operation is not available on target device, becasue ECC is "
             "enabled";
    case NVML_ERROR_INSUFFICIENT_RESOURCES:
      return "Ran out of critical resources, other than memory";
    case NVML_ERROR_FREQ_NOT_SUPPORTED: return "The requested frequency is not supported";
    case NVML_ERROR_ARGUMENT_VERSION_MISMATCH: return "The provided version is invalid/unsupported";
    case NVML_ERROR_DEPRECATED: return "The requested functionality has been deprecated";
    case NVML_ERROR_NOT_READY: return "The system is not ready for the request";
    case NVML_ERROR_GPU_NOT_FOUND: return "No GPUs were found";
    case NVML_ERROR_INVALID_STATE:
      return "Resource not in correct state to perform requested operation";
    case NVML_ERROR_RESET_TYPE_NOT_SUPPORTED:
      return "Reset not supported for given device/parameters";
    case NVML_ERROR_UNKNOWN: break;
  }
  return "Unknown Error";
}

// The GPU host's driver version (one round trip, then remembered).
RGPU_NVML_API nvmlReturn_t nvmlSystemGetDriverVersion(char* version, unsigned int length) {
  NvmlState* s = NvmlState::Get();
  if (s == nullptr) return NVML_ERROR_UNINITIALIZED;
  if (version == nullptr) return NVML_ERROR_INVALID_ARGUMENT;
  std::string v;
  if (nvmlReturn_t r = s->DriverVersion(&v); r != NVML_SUCCESS) return r;
  return CopyOut(v, version, length);
}

// NVML's own version: "<CUDA major>.<driver version>", e.g. "13.580.159",
// the form the real library reports.
RGPU_NVML_API nvmlReturn_t nvmlSystemGetNVMLVersion(char* version, unsigned int length) {
  NvmlState* s = NvmlState::Get();
  if (s == nullptr) return NVML_ERROR_UNINITIALIZED;
  if (version == nullptr) return NVML_ERROR_INVALID_ARGUMENT;
  std::string v;
  if (nvmlReturn_t r = s->DriverVersion(&v); r != NVML_SUCCESS) return r;
  return CopyOut(std::to_string(s->cuda_driver_version() / 1000) + "." + v, version, length);
}

// The CUDA version the driver supports (cuDriverGetVersion's answer, e.g. 13000).
RGPU_NVML_API nvmlReturn_t nvmlSystemGetCudaDriverVersion_v2(int* cuda_driver_version) {
  NvmlState* s = NvmlState::Get();
  if (s == nullptr) return NVML_ERROR_UNINITIALIZED;
  if (cuda_driver_version == nullptr) return NVML_ERROR_INVALID_ARGUMENT;
  if (s->cuda_driver_version() == 0) return NVML_ERROR_NOT_SUPPORTED;  // no GPU to ask
  *cuda_driver_version = s->cuda_driver_version();
  return NVML_SUCCESS;
}

RGPU_NVML_API nvmlReturn_t nvmlSystemGetCudaDriverVersion(int* cuda_driver_version) {
  return nvmlSystemGetCudaDriverVersion_v2(cuda_driver_version);
}

// Confidential computing: rgpu never runs in CC mode (its worker's data
// crosses a network in the clear), so CC is reported off, as NVIDIA's NVML
// reports it on an H100 whose CC mode is off: environment unavailable,
// feature disabled, dev tools off, no multi-GPU protection. NCCL reads the
// settings (else the state) at communicator init; vLLM, SGLang and
// TensorRT-LLM do the same to pick their CC code paths.
RGPU_NVML_API nvmlReturn_t nvmlSystemGetConfComputeState(nvmlConfComputeSystemState_t* state) {
  if (NvmlState::Get() == nullptr) return NVML_ERROR_UNINITIALIZED;
  if (state == nullptr) return NVML_ERROR_INVALID_ARGUMENT;
  *state = nvmlConfComputeSystemState_t{NVML_CC_SYSTEM_ENVIRONMENT_UNAVAILABLE,
                                        NVML_CC_SYSTEM_FEATURE_DISABLED,
                                        NVML_CC_SYSTEM_DEVTOOLS_MODE_OFF};
  return NVML_SUCCESS;
}

// The versioned form: version must be nvmlSystemConfComputeSettings_v1 (the
// only one 580 knows), else NVML_ERROR_ARGUMENT_VERSION_MISMATCH and nothing
// is written.
RGPU_NVML_API nvmlReturn_t nvmlSystemGetConfComputeSettings(
    nvmlSystemConfComputeSettings_t* settings) {
  if (NvmlState::Get() == nullptr) return NVML_ERROR_UNINITIALIZED;
  if (settings == nullptr) return NVML_ERROR_INVALID_ARGUMENT;
  if (settings->version != nvmlSystemConfComputeSettings_v1)
    return NVML_ERROR_ARGUMENT_VERSION_MISMATCH;
  *settings = nvmlSystemConfComputeSettings_v1_t{
      nvmlSystemConfComputeSettings_v1, NVML_CC_SYSTEM_ENVIRONMENT_UNAVAILABLE,
      NVML_CC_SYSTEM_FEATURE_DISABLED, NVML_CC_SYSTEM_DEVTOOLS_MODE_OFF,
      NVML_CC_SYSTEM_MULTIGPU_NONE};
  return NVML_SUCCESS;
}

// What rgpu offers, not what the GPU host's hardware could: CC can't be used
// through rgpu (attestation and the protected CPU-GPU channel would end at
// the worker, not in this process), so neither the CPU side nor the GPUs are
// reported CC capable.
RGPU_NVML_API nvmlReturn_t nvmlSystemGetConfComputeCapabilities(
    nvmlConfComputeSystemCaps_t* capabilities) {
  if (NvmlState::Get() == nullptr) return NVML_ERROR_UNINITIALIZED;
  if (capabilities == nullptr) return NVML_ERROR_INVALID_ARGUMENT;
  *capabilities =
      nvmlConfComputeSystemCaps_t{NVML_CC_SYSTEM_CPU_CAPS_NONE, NVML_CC_SYSTEM_GPUS_CC_NOT_CAPABLE};
  return NVML_SUCCESS;
}
