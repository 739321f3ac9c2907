// Exported driver functions: init, version, device queries, error strings.
// Device queries are answered from the facts fetched once at cuInit: no
// round trip (DESIGN.md rule 1).
#include <cstring>

#include "client/api_common.h"
#include "client/error_names.h"

using namespace rgpu::client;

namespace {
constexpr int kClientDriverVersion = 13000;

bool ValidDevice(ClientState* s, CUdevice dev) { return dev >= 0 && dev < s->device_count(); }
}  // namespace

extern "C" {

CUresult cuInit(unsigned int flags) { return ClientState::Init(flags); }

// After the exit handler's deinitialisation even the calls that need no GPU
// answer CUDA_ERROR_DEINITIALIZED, as the driver's do (measured on an H100,
// driver 580: cuDriverGetVersion, cuGetErrorName; tests/programs/exit_teardown).
CUresult cuDriverGetVersion(int* version) {
  if (version == nullptr) return CUDA_ERROR_INVALID_VALUE;
  RGPU_RETURN_IF_DEINITIALIZED();
  ClientState* s = ClientState::Get();
  // Before cuInit the real driver answers too; cudart asks first.
  int remote = s ? s->info().driver_version : 0;
  *version = remote > kClientDriverVersion ? remote : kClientDriverVersion;
  return CUDA_SUCCESS;
}

CUresult cuDeviceGetCount(int* count) {
  if (count == nullptr) return CUDA_ERROR_INVALID_VALUE;
  RGPU_STATE_OR_RETURN(s);
  *count = s->device_count();
  return CUDA_SUCCESS;
}

CUresult cuDeviceGet(CUdevice* device, int ordinal) {
  if (device == nullptr) return CUDA_ERROR_INVALID_VALUE;
  RGPU_STATE_OR_RETURN(s);
  if (!ValidDevice(s, ordinal)) return CUDA_ERROR_INVALID_DEVICE;
  *device = ordinal;
  return CUDA_SUCCESS;
}

CUresult cuDeviceGetName(char* name, int len, CUdevice dev) {
  if (name == nullptr || len <= 0) return CUDA_ERROR_INVALID_VALUE;
  RGPU_STATE_OR_RETURN(s);
  if (!ValidDevice(s, dev)) return CUDA_ERROR_INVALID_DEVICE;
  const std::string& n = s->device(dev).name;
  size_t k = std::min<size_t>(n.size(), static_cast<size_t>(len - 1));
  memcpy(name, n.data(), k);
  name[k] = 0;
  return CUDA_SUCCESS;
}

CUresult cuDeviceGetUuid_v2(CUuuid* uuid, CUdevice dev) {
  if (uuid == nullptr) return CUDA_ERROR_INVALID_VALUE;
  RGPU_STATE_OR_RETURN(s);
  if (!ValidDevice(s, dev)) return CUDA_ERROR_INVALID_DEVICE;
  memcpy(uuid->bytes, s->device(dev).uuid.data(), 16);
  return CUDA_SUCCESS;
}

CUresult cuDeviceGetUuid(CUuuid* uuid, CUdevice dev) { return cuDeviceGetUuid_v2(uuid, dev); }

CUresult cuDeviceTotalMem_v2(size_t* bytes, CUdevice dev) {
  if (bytes == nullptr) return CUDA_ERROR_INVALID_VALUE;
  RGPU_STATE_OR_RETURN(s);
  if (!ValidDevice(s, dev)) return CUDA_ERROR_INVALID_DEVICE;
  *bytes = s->device(dev).total_mem;
  return CUDA_SUCCESS;
}

CUresult cuDeviceTotalMem(unsigned int* bytes, CUdevice dev) {
  size_t b = 0;
  if (bytes == nullptr) return CUDA_ERROR_INVALID_VALUE;
  CUresult r = cuDeviceTotalMem_v2(&b, dev);
  *bytes = b > 0xffffffffu ? 0xffffffffu : static_cast<unsigned>(b);
  return r;
}

CUresult cuDeviceGetAttribute(int* value, CUdevice_attribute attrib, CUdevice dev) {
  if (value == nullptr) return CUDA_ERROR_INVALID_VALUE;
  RGPU_STATE_OR_RETURN(s);
  if (!ValidDevice(s, dev)) return CUDA_ERROR_INVALID_DEVICE;
  const auto& attrs = s->device(dev).attributes;
  int a = static_cast<int>(attrib);
  if (a <= 0 || a >= static_cast<int>(attrs.size()) || a >= CU_DEVICE_ATTRIBUTE_MAX)
    return CUDA_ERROR_INVALID_VALUE;
  *value = attrs[a];
  return CUDA_SUCCESS;
}

CUresult cuDeviceComputeCapability(int* major, int* minor, CUdevice dev) {
  if (major == nullptr || minor == nullptr) return CUDA_ERROR_INVALID_VALUE;
  CUresult r = cuDeviceGetAttribute(major, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR, dev);
  if (r != CUDA_SUCCESS) return r;
  return cuDeviceGetAttribute(minor, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR, dev);
}

CUresult cuDeviceGetPCIBusId(char* pciBusId, int len, CUdevice dev) {
  if (pciBusId == nullptr || len <= 0) return CUDA_ERROR_INVALID_VALUE;
  RGPU_STATE_OR_RETURN(s);
  if (!ValidDevice(s, dev)) return CUDA_ERROR_INVALID_DEVICE;
  const std::string& id = s->device(dev).pci_bus_id;
  size_t k = std::min<size_t>(id.size(), static_cast<size_t>(len - 1));
  memcpy(pciBusId, id.data(), k);
  pciBusId[k] = 0;
  return CUDA_SUCCESS;
}

CUresult cuDeviceGetByPCIBusId(CUdevice* dev, const char* pciBusId) {
  if (dev == nullptr || pciBusId == nullptr) return CUDA_ERROR_INVALID_VALUE;
  RGPU_STATE_OR_RETURN(s);
  for (int i = 0; i < s->device_count(); ++i) {
    if (strcasecmp(s->device(i).pci_bus_id.c_str(), pciBusId) == 0 ||
        (strlen(pciBusId) > 5 && strcasecmp(s->device(i).pci_bus_id.c_str() + 5, pciBusId) == 0)) {
      *dev = i;
      return CUDA_SUCCESS;
    }
  }
  return CUDA_ERROR_INVALID_VALUE;
}

CUresult cuDeviceGetProperties(CUdevprop* prop, CUdevice dev) {
  if (prop == nullptr) return CUDA_ERROR_INVALID_VALUE;
  RGPU_STATE_OR_RETURN(s);
  if (!ValidDevice(s, dev)) return CUDA_ERROR_INVALID_DEVICE;
  auto attr = [&](CUdevice_attribute a) {
    int v = 0;
    cuDeviceGetAttribute(&v, a, dev);
    return v;
  };
  memset(prop, 0, sizeof *prop);
  prop->maxThreadsPerBlock = attr(CU_DEVICE_ATTRIBUTE_MAX_THREADS_PER_BLOCK);
  prop->maxThreadsDim[0] = attr(CU_DEVICE_ATTRIBUTE_MAX_BLOCK_DIM_X);
  prop->maxThreadsDim[1] = attr(CU_DEVICE_ATTRIBUTE_MAX_BLOCK_DIM_Y);
  prop->maxThreadsDim[2] = attr(CU_DEVICE_ATTRIBUTE_MAX_BLOCK_DIM_Z);
  prop->maxGridSize[0] = attr(CU_DEVICE_ATTRIBUTE_MAX_GRID_DIM_X);
  prop->maxGridSize[1] = attr(CU_DEVICE_ATTRIBUTE_MAX_GRID_DIM_Y);
  prop->maxGridSize[2] = attr(CU_DEVICE_ATTRIBUTE_MAX_GRID_DIM_Z);
  prop->sharedMemPerBlock = attr(CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK);
  prop->totalConstantMemory = attr(CU_DEVICE_ATTRIBUTE_TOTAL_CONSTANT_MEMORY);
  prop->SIMDWidth = attr(CU_DEVICE_ATTRIBUTE_WARP_SIZE);
  prop->memPitch = attr(CU_DEVICE_ATTRIBUTE_MAX_PITCH);
  prop->regsPerBlock = attr(CU_DEVICE_ATTRIBUTE_MAX_REGISTERS_PER_BLOCK);
  prop->clockRate = attr(CU_DEVICE_ATTRIBUTE_CLOCK_RATE);
  prop->textureAlign = attr(CU_DEVICE_ATTRIBUTE_TEXTURE_ALIGNMENT);
  return CUDA_SUCCESS;
}

CUresult cuGetErrorName(CUresult error, const char** pStr) {
  if (pStr == nullptr) return CUDA_ERROR_INVALID_VALUE;
  RGPU_RETURN_IF_DEINITIALIZED();
  const ErrorName* e = FindErrorName(error);
  if (e == nullptr) {
    *pStr = nullptr;
    return CUDA_ERROR_INVALID_VALUE;
  }
  *pStr = e->name;
  return CUDA_SUCCESS;
}

CUresult cuGetErrorString(CUresult error, const char** pStr) {
  if (pStr == nullptr) return CUDA_ERROR_INVALID_VALUE;
  RGPU_RETURN_IF_DEINITIALIZED();
  const ErrorName* e = FindErrorName(error);
  if (e == nullptr) {
    *pStr = nullptr;
    return CUDA_ERROR_INVALID_VALUE;
  }
  *pStr = e->string;
  return CUDA_SUCCESS;
}

// No atomic operation is native over the link between a GPU and this host:
// the program's host memory is on another machine, and what kernels reach
// as host memory (mapped or managed) is device memory on the GPU host, kept
// coherent at GPU-work boundaries. The device attribute
// CU_DEVICE_ATTRIBUTE_HOST_NATIVE_ATOMIC_SUPPORTED says 0 for the same reason.
CUresult cuDeviceGetHostAtomicCapabilities(unsigned int* capabilities, const CUatomicOperation* operations,
                                           unsigned int count, CUdevice dev) {
  RGPU_STATE_OR_RETURN(s);
  if (dev < 0 || dev >= s->device_count()) return CUDA_ERROR_INVALID_DEVICE;
  if (capabilities == nullptr || operations == nullptr || count == 0) return CUDA_ERROR_INVALID_VALUE;
  for (unsigned i = 0; i < count; ++i)
    if (operations[i] < 0 || operations[i] >= CU_ATOMIC_OPERATION_MAX) return CUDA_ERROR_INVALID_VALUE;
  for (unsigned i = 0; i < count; ++i) capabilities[i] = 0;
  return CUDA_SUCCESS;
}

}  // extern "C"
