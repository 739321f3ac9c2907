// The few NVML types rgpu's libnvidia-ml.so.1 needs, written here because
// there is no nvml.h in this tree.
//
// Layouts and values are NVIDIA's public nvml.h (NVML API version 11/12, as
// shipped with CUDA 12/13 and mirrored in e.g. NVIDIA/go-nvml
// pkg/nvml/nvml.h): nvmlReturn_t, nvmlPciInfo_t (busIdLegacy[16], domain,
// bus, device, pciDeviceId, pciSubSystemId, busId[32]: 68 bytes),
// nvmlMemory_t, nvmlMemory_v2_t, nvmlUtilization_t, nvmlProcessInfo_v1_t,
// nvmlProcessInfo_t (= _v2), nvmlClockType_t, nvmlTemperatureSensors_t,
// nvmlIntNvLinkDeviceType_t, nvmlEnableState_t, nvmlNvLinkCapability_t,
// nvmlGpuP2PCapsIndex_t, nvmlGpuP2PStatus_t, the confidential-computing
// structs and NVML_CC_* values, nvmlFieldValue_t (with nvmlValue_t,
// nvmlValueType_t and the NVML_FI_* ids rgpu answers), the MIG modes, the
// buffer sizes and NVML_STRUCT_VERSION. The
// static_asserts below pin the sizes on x86-64; a layout that drifts from the
// real library's breaks the build, not a caller's memory.
//
// nvmlPciInfoV1_t is the layout that nvml.h had before busIdLegacy existed
// (busId[16], domain, bus, device, pciDeviceId, pciSubSystemId, 4 reserved
// words: 52 bytes), which the unversioned nvmlDeviceGetPciInfo still fills for
// programs built against it. Its first 36 bytes agree with nvmlPciInfo_t.
#pragma once

#include <cstddef>
#include <cstdint>

extern "C" {

typedef enum nvmlReturn_enum {
  NVML_SUCCESS = 0,
  NVML_ERROR_UNINITIALIZED = 1,
  NVML_ERROR_INVALID_ARGUMENT = 2,
  NVML_ERROR_NOT_SUPPORTED = 3,
  NVML_ERROR_NO_PERMISSION = 4,
  NVML_ERROR_ALREADY_INITIALIZED = 5,
  NVML_ERROR_NOT_FOUND = 6,
  NVML_ERROR_INSUFFICIENT_SIZE = 7,
  NVML_ERROR_INSUFFICIENT_POWER = 8,
  NVML_ERROR_DRIVER_NOT_LOADED = 9,
  NVML_ERROR_TIMEOUT = 10,
  NVML_ERROR_IRQ_ISSUE = 11,
  NVML_ERROR_LIBRARY_NOT_FOUND = 12,
  NVML_ERROR_FUNCTION_NOT_FOUND = 13,
  NVML_ERROR_CORRUPTED_INFOROM = 14,
  NVML_ERROR_GPU_IS_LOST = 15,
  NVML_ERROR_RESET_REQUIRED = 16,
  NVML_ERROR_OPERATING_SYSTEM = 17,
  NVML_ERROR_LIB_RM_VERSION_MISMATCH = 18,
  NVML_ERROR_IN_USE = 19,
  NVML_ERROR_MEMORY = 20,
  NVML_ERROR_NO_DATA = 21,
  NVML_ERROR_VGPU_ECC_NOT_SUPPORTED = 22,
  NVML_ERROR_INSUFFICIENT_RESOURCES = 23,
  NVML_ERROR_FREQ_NOT_SUPPORTED = 24,
  NVML_ERROR_ARGUMENT_VERSION_MISMATCH = 25,
  NVML_ERROR_DEPRECATED = 26,
  NVML_ERROR_NOT_READY = 27,
  NVML_ERROR_GPU_NOT_FOUND = 28,
  NVML_ERROR_INVALID_STATE = 29,
  NVML_ERROR_RESET_TYPE_NOT_SUPPORTED = 30,
  NVML_ERROR_UNKNOWN = 999
} nvmlReturn_t;

// Opaque to callers; rgpu's handles point into a static table (nvml_state.h).
typedef struct nvmlDevice_st* nvmlDevice_t;

#define NVML_STRUCT_VERSION(data, ver) \
  (unsigned int)(sizeof(nvml##data##_v##ver##_t) | ((ver) << 24U))

#define NVML_DEVICE_NAME_BUFFER_SIZE 64
#define NVML_DEVICE_NAME_V2_BUFFER_SIZE 96
#define NVML_DEVICE_UUID_BUFFER_SIZE 80
#define NVML_DEVICE_UUID_V2_BUFFER_SIZE 96
#define NVML_SYSTEM_DRIVER_VERSION_BUFFER_SIZE 80
#define NVML_SYSTEM_NVML_VERSION_BUFFER_SIZE 80
#define NVML_DEVICE_PCI_BUS_ID_BUFFER_SIZE 32
#define NVML_DEVICE_PCI_BUS_ID_BUFFER_V2_SIZE 16
#define NVML_DEVICE_PCI_BUS_ID_LEGACY_FMT "%04X:%02X:%02X.0"
#define NVML_DEVICE_PCI_BUS_ID_FMT "%08X:%02X:%02X.0"

// nvmlInitWithFlags
#define NVML_INIT_FLAG_NO_GPUS 1
#define NVML_INIT_FLAG_NO_ATTACH 2

typedef struct nvmlPciInfo_st {
  char busIdLegacy[NVML_DEVICE_PCI_BUS_ID_BUFFER_V2_SIZE];
  unsigned int domain;
  unsigned int bus;
  unsigned int device;
  unsigned int pciDeviceId;  // (16-bit device id << 16) | 16-bit vendor id
  unsigned int pciSubSystemId;
  char busId[NVML_DEVICE_PCI_BUS_ID_BUFFER_SIZE];
} nvmlPciInfo_t;

typedef struct nvmlPciInfoV1_st {
  char busId[NVML_DEVICE_PCI_BUS_ID_BUFFER_V2_SIZE];
  unsigned int domain;
  unsigned int bus;
  unsigned int device;
  unsigned int pciDeviceId;
  unsigned int pciSubSystemId;
  unsigned int reserved0, reserved1, reserved2, reserved3;
} nvmlPciInfoV1_t;

typedef struct nvmlMemory_st {
  unsigned long long total;
  unsigned long long free;
  unsigned long long used;  // v1: reserved + allocated
} nvmlMemory_t;

typedef struct nvmlMemory_v2_st {
  unsigned int version;  // must be nvmlMemory_v2
  unsigned long long total;
  unsigned long long reserved;
  unsigned long long free;
  unsigned long long used;
} nvmlMemory_v2_t;
#define nvmlMemory_v2 NVML_STRUCT_VERSION(Memory, 2)

typedef struct nvmlUtilization_st {
  unsigned int gpu;
  unsigned int memory;
} nvmlUtilization_t;

typedef struct nvmlProcessInfo_v1_st {
  unsigned int pid;
  unsigned long long usedGpuMemory;
} nvmlProcessInfo_v1_t;

// nvmlDeviceGetComputeRunningProcesses_v2 and _v3 both take this layout.
typedef struct nvmlProcessInfo_st {
  unsigned int pid;
  unsigned long long usedGpuMemory;
  unsigned int gpuInstanceId;      // 0xFFFFFFFF without MIG
  unsigned int computeInstanceId;  // 0xFFFFFFFF without MIG
} nvmlProcessInfo_t;

typedef enum nvmlClockType_enum {
  NVML_CLOCK_GRAPHICS = 0,
  NVML_CLOCK_SM = 1,
  NVML_CLOCK_MEM = 2,
  NVML_CLOCK_VIDEO = 3,
  NVML_CLOCK_COUNT
} nvmlClockType_t;

typedef enum nvmlTemperatureSensors_enum {
  NVML_TEMPERATURE_GPU = 0,
  NVML_TEMPERATURE_COUNT
} nvmlTemperatureSensors_t;

typedef enum nvmlIntNvLinkDeviceType_enum {
  NVML_NVLINK_DEVICE_TYPE_GPU = 0x00,
  NVML_NVLINK_DEVICE_TYPE_IBMNPU = 0x01,
  NVML_NVLINK_DEVICE_TYPE_SWITCH = 0x02,
  NVML_NVLINK_DEVICE_TYPE_UNKNOWN = 0xFF
} nvmlIntNvLinkDeviceType_t;

// nvmlDeviceGetGpuFabricInfoV takes a versioned struct whose first word is
// its version; rgpu only reads that word (the answer is "not supported").
// nvmlDeviceGetPlatformInfo likewise (not supported before Blackwell).
#define NVML_VALUE_NOT_AVAILABLE (-1)

typedef enum nvmlEnableState_enum {
  NVML_FEATURE_DISABLED = 0,
  NVML_FEATURE_ENABLED = 1
} nvmlEnableState_t;

typedef enum nvmlNvLinkCapability_enum {
  NVML_NVLINK_CAP_P2P_SUPPORTED = 0,
  NVML_NVLINK_CAP_SYSMEM_ACCESS = 1,
  NVML_NVLINK_CAP_P2P_ATOMICS = 2,
  NVML_NVLINK_CAP_SYSMEM_ATOMICS = 3,
  NVML_NVLINK_CAP_SLI_BRIDGE = 4,
  NVML_NVLINK_CAP_VALID = 5,
  NVML_NVLINK_CAP_COUNT
} nvmlNvLinkCapability_t;

// nvmlDeviceGetP2PStatus: what is asked (PROP is the deprecated name of PCI)
// and the answer.
typedef enum nvmlGpuP2PCapsIndex_enum {
  NVML_P2P_CAPS_INDEX_READ = 0,
  NVML_P2P_CAPS_INDEX_WRITE = 1,
  NVML_P2P_CAPS_INDEX_NVLINK = 2,
  NVML_P2P_CAPS_INDEX_ATOMICS = 3,
  NVML_P2P_CAPS_INDEX_PCI = 4,
  NVML_P2P_CAPS_INDEX_PROP = NVML_P2P_CAPS_INDEX_PCI,
  NVML_P2P_CAPS_INDEX_UNKNOWN = 5
} nvmlGpuP2PCapsIndex_t;

typedef enum nvmlGpuP2PStatus_enum {
  NVML_P2P_STATUS_OK = 0,
  NVML_P2P_STATUS_CHIPSET_NOT_SUPPORED = 1,  // sic, nvml.h's spelling
  NVML_P2P_STATUS_CHIPSET_NOT_SUPPORTED = 1,
  NVML_P2P_STATUS_GPU_NOT_SUPPORTED = 2,
  NVML_P2P_STATUS_IOH_TOPOLOGY_NOT_SUPPORTED = 3,
  NVML_P2P_STATUS_DISABLED_BY_REGKEY = 4,
  NVML_P2P_STATUS_NOT_SUPPORTED = 5,
  NVML_P2P_STATUS_UNKNOWN = 6
} nvmlGpuP2PStatus_t;

// Confidential computing (nvmlSystemGetConfCompute*): the values rgpu
// reports (it never runs in CC mode), the others callers compare with, and
// the structs they are reported in.
#define NVML_CC_SYSTEM_CPU_CAPS_NONE 0
#define NVML_CC_SYSTEM_GPUS_CC_NOT_CAPABLE 0
#define NVML_CC_SYSTEM_GPUS_CC_CAPABLE 1
#define NVML_CC_SYSTEM_DEVTOOLS_MODE_OFF 0
#define NVML_CC_SYSTEM_ENVIRONMENT_UNAVAILABLE 0
#define NVML_CC_SYSTEM_FEATURE_DISABLED 0
#define NVML_CC_SYSTEM_FEATURE_ENABLED 1
#define NVML_CC_SYSTEM_MULTIGPU_NONE 0
#define NVML_CC_SYSTEM_MULTIGPU_PROTECTED_PCIE 1
#define NVML_CC_SYSTEM_MULTIGPU_NVLE 2

typedef struct nvmlConfComputeSystemCaps_st {
  unsigned int cpuCaps;
  unsigned int gpusCaps;
} nvmlConfComputeSystemCaps_t;

typedef struct nvmlConfComputeSystemState_st {
  unsigned int environment;
  unsigned int ccFeature;
  unsigned int devToolsMode;
} nvmlConfComputeSystemState_t;

typedef struct {
  unsigned int version;  // must be nvmlSystemConfComputeSettings_v1
  unsigned int environment;
  unsigned int ccFeature;
  unsigned int devToolsMode;
  unsigned int multiGpuMode;
} nvmlSystemConfComputeSettings_v1_t;
typedef nvmlSystemConfComputeSettings_v1_t nvmlSystemConfComputeSettings_t;
#define nvmlSystemConfComputeSettings_v1 NVML_STRUCT_VERSION(SystemConfComputeSettings, 1)

// nvmlDeviceGetMigMode
#define NVML_DEVICE_MIG_DISABLE 0x0
#define NVML_DEVICE_MIG_ENABLE 0x1

// nvmlDeviceGetFieldValues: a value, its type, and one request/answer.
typedef enum nvmlValueType_enum {
  NVML_VALUE_TYPE_DOUBLE = 0,
  NVML_VALUE_TYPE_UNSIGNED_INT = 1,
  NVML_VALUE_TYPE_UNSIGNED_LONG = 2,
  NVML_VALUE_TYPE_UNSIGNED_LONG_LONG = 3,
  NVML_VALUE_TYPE_SIGNED_LONG_LONG = 4,
  NVML_VALUE_TYPE_SIGNED_INT = 5,
  NVML_VALUE_TYPE_UNSIGNED_SHORT = 6,
  NVML_VALUE_TYPE_COUNT
} nvmlValueType_t;

typedef union nvmlValue_st {
  double dVal;
  int siVal;
  unsigned int uiVal;
  unsigned long ulVal;
  unsigned long long ullVal;
  signed long long sllVal;
  unsigned short usVal;
} nvmlValue_t;

typedef struct nvmlFieldValue_st {
  unsigned int fieldId;     // NVML_FI_*, set by the caller
  unsigned int scopeId;     // e.g. the link, for per-link fields; set by the caller
  long long timestamp;      // CPU time of the value, microseconds since 1970
  long long latencyUsec;    // how long the value took to get
  nvmlValueType_t valueType;
  nvmlReturn_t nvmlReturn;  // per field: value is valid only when NVML_SUCCESS
  nvmlValue_t value;
} nvmlFieldValue_t;

// Field ids (NVML_FI_*) rgpu answers or tests; the numbers are NVML's ABI.
#define NVML_FI_DEV_NVLINK_LINK_COUNT 91             // NVLinks on the device (not answered)
#define NVML_FI_DEV_PCIE_REPLAY_COUNTER 94
#define NVML_FI_DEV_PCIE_REPLAY_ROLLOVER_COUNTER 95
#define NVML_FI_DEV_PCIE_L0_TO_RECOVERY_COUNTER 169
#define NVML_FI_DEV_C2C_LINK_COUNT 170               // C2C (chip-to-chip) links (not answered)
#define NVML_FI_DEV_PCIE_COUNT_CORRECTABLE_ERRORS 173
#define NVML_FI_DEV_PCIE_COUNT_NAKS_RECEIVED 174
#define NVML_FI_DEV_PCIE_COUNT_RECEIVER_ERROR 175
#define NVML_FI_DEV_PCIE_COUNT_BAD_TLP 176
#define NVML_FI_DEV_PCIE_COUNT_NAKS_SENT 177
#define NVML_FI_DEV_PCIE_COUNT_BAD_DLLP 178
#define NVML_FI_DEV_PCIE_COUNT_NON_FATAL_ERROR 179
#define NVML_FI_DEV_PCIE_COUNT_FATAL_ERROR 180
#define NVML_FI_DEV_PCIE_COUNT_UNSUPPORTED_REQ 181
#define NVML_FI_DEV_PCIE_COUNT_LCRC_ERROR 182
#define NVML_FI_DEV_PCIE_COUNT_TX_BYTES 197
#define NVML_FI_DEV_PCIE_COUNT_RX_BYTES 198

}  // extern "C"

namespace rgpu::nvml {
// The PCIe counters of nvmlDeviceGetFieldValues that the GPU host's NVML is
// asked for (one batch per call, scope 0: none of them is per lane or link).
// Shared by the worker (which asks) and the NVML library (which looks a
// requested field up in the answer).
inline constexpr unsigned kPcieFieldIds[] = {
    NVML_FI_DEV_PCIE_REPLAY_COUNTER,         NVML_FI_DEV_PCIE_REPLAY_ROLLOVER_COUNTER,
    NVML_FI_DEV_PCIE_L0_TO_RECOVERY_COUNTER, NVML_FI_DEV_PCIE_COUNT_CORRECTABLE_ERRORS,
    NVML_FI_DEV_PCIE_COUNT_NAKS_RECEIVED,    NVML_FI_DEV_PCIE_COUNT_RECEIVER_ERROR,
    NVML_FI_DEV_PCIE_COUNT_BAD_TLP,          NVML_FI_DEV_PCIE_COUNT_NAKS_SENT,
    NVML_FI_DEV_PCIE_COUNT_BAD_DLLP,         NVML_FI_DEV_PCIE_COUNT_NON_FATAL_ERROR,
    NVML_FI_DEV_PCIE_COUNT_FATAL_ERROR,      NVML_FI_DEV_PCIE_COUNT_UNSUPPORTED_REQ,
    NVML_FI_DEV_PCIE_COUNT_LCRC_ERROR,       NVML_FI_DEV_PCIE_COUNT_TX_BYTES,
    NVML_FI_DEV_PCIE_COUNT_RX_BYTES,
};
inline constexpr bool IsPcieField(unsigned id) {
  for (unsigned f : kPcieFieldIds)
    if (f == id) return true;
  return false;
}
}  // namespace rgpu::nvml

static_assert(sizeof(nvmlPciInfo_t) == 68, "nvmlPciInfo_t layout (nvml.h)");
static_assert(offsetof(nvmlPciInfo_t, busId) == 36, "nvmlPciInfo_t layout (nvml.h)");
static_assert(sizeof(nvmlPciInfoV1_t) == 52, "legacy nvmlPciInfo_t layout");
static_assert(sizeof(nvmlMemory_t) == 24, "nvmlMemory_t layout (nvml.h)");
static_assert(sizeof(nvmlMemory_v2_t) == 40, "nvmlMemory_v2_t layout (nvml.h)");
static_assert(nvmlMemory_v2 == 0x02000028, "nvmlMemory_v2 version word");
static_assert(sizeof(nvmlUtilization_t) == 8, "nvmlUtilization_t layout (nvml.h)");
static_assert(sizeof(nvmlProcessInfo_v1_t) == 16, "nvmlProcessInfo_v1_t layout (nvml.h)");
static_assert(sizeof(nvmlProcessInfo_t) == 24, "nvmlProcessInfo_t layout (nvml.h)");
static_assert(sizeof(nvmlReturn_t) == 4, "nvmlReturn_t is an int-sized enum");
static_assert(sizeof(nvmlValue_t) == 8, "nvmlValue_t layout (nvml.h)");
static_assert(sizeof(nvmlGpuP2PStatus_t) == 4, "nvmlGpuP2PStatus_t is an int-sized enum");
static_assert(sizeof(nvmlConfComputeSystemCaps_t) == 8, "nvmlConfComputeSystemCaps_t (nvml.h)");
static_assert(sizeof(nvmlConfComputeSystemState_t) == 12, "nvmlConfComputeSystemState_t (nvml.h)");
static_assert(sizeof(nvmlSystemConfComputeSettings_v1_t) == 20,
              "nvmlSystemConfComputeSettings_v1_t layout (nvml.h)");
static_assert(nvmlSystemConfComputeSettings_v1 == 0x01000014,
              "nvmlSystemConfComputeSettings_v1 version word");
static_assert(sizeof(nvmlFieldValue_t) == 40, "nvmlFieldValue_t layout (nvml.h)");
static_assert(offsetof(nvmlFieldValue_t, valueType) == 24, "nvmlFieldValue_t layout (nvml.h)");
static_assert(offsetof(nvmlFieldValue_t, value) == 32, "nvmlFieldValue_t layout (nvml.h)");
