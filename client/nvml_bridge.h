/* The NVML bridge: how rgpu's libnvidia-ml.so.1 asks rgpu's libcuda.so.1 about
 * the remote GPUs, inside one process.
 *
 * rgpu's NVML library opens no connection of its own. It dlopens the
 * libcuda.so.1 that sits in its own directory, calls cuInit(0), then
 * cuGetExportTable(&table, &kRgpuNvmlBridgeUuid) and calls the table's slots.
 * The table is private to rgpu: its UUID spells "rgpu-nvml-bridge", which no
 * NVIDIA library asks for, and the real driver answers CUDA_ERROR_INVALID_VALUE
 * for it (so the NVML library can tell a real driver from ours).
 *
 * This header is shared by both libraries and is plain C on purpose: only
 * fixed-width integers, chars and structs of them cross the boundary, never a
 * C++ type, so the two libraries (each with its own static libstdc++) can't
 * disagree about a layout.
 *
 * Table layout (an array of pointers, as the driver's own export tables):
 *   [0] the table's size in bytes (slot count * sizeof(void*))
 *   [1] uint32_t AbiVersion(void)       RGPU_NVML_BRIDGE_ABI; a caller refuses
 *                                       any other value
 *   [2] DeviceCount, [3] DeviceFacts, [4] Query: see the typedefs below.
 *
 * Device numbering: index i is the i-th GPU of the session as the worker
 * lists it, *ignoring* CUDA_VISIBLE_DEVICES, as the real NVML does.
 *
 * Return codes: every slot except [1] returns an NVML return code
 * (nvmlReturn_t values, named RGPU_NVML_BRIDGE_* below) so that the NVML
 * library can hand it on unchanged.
 *
 * Threading: every slot is thread-safe. [2] and [3] are answered from the
 * facts the client fetched at cuInit (no round trip); [4] makes one round
 * trip to the worker per call.
 */
#ifndef RGPU_CLIENT_NVML_BRIDGE_H_
#define RGPU_CLIENT_NVML_BRIDGE_H_

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* "rgpu-nvml-bridge", byte for byte, in the order cuGetExportTable compares. */
#define RGPU_NVML_BRIDGE_UUID_BYTES                                                            \
  {'r', 'g', 'p', 'u', '-', 'n', 'v', 'm', 'l', '-', 'b', 'r', 'i', 'd', 'g', 'e'}

#define RGPU_NVML_BRIDGE_ABI 3u  /* 2: PCIE query (RgpuNvmlLive grew); 3: peer masks in the facts */
#define RGPU_NVML_BRIDGE_SLOTS 5

enum {
  RGPU_NVML_BRIDGE_SLOT_SIZE = 0,
  RGPU_NVML_BRIDGE_SLOT_ABI = 1,
  RGPU_NVML_BRIDGE_SLOT_DEVICE_COUNT = 2,
  RGPU_NVML_BRIDGE_SLOT_DEVICE_FACTS = 3,
  RGPU_NVML_BRIDGE_SLOT_QUERY = 4
};

/* NVML return codes the slots use (equal to nvmlReturn_t's). */
enum {
  RGPU_NVML_BRIDGE_SUCCESS = 0,
  RGPU_NVML_BRIDGE_UNINITIALIZED = 1,     /* cuInit did not succeed */
  RGPU_NVML_BRIDGE_INVALID_ARGUMENT = 2,  /* bad index, null pointer, wrong struct size */
  RGPU_NVML_BRIDGE_NOT_SUPPORTED = 3,     /* the GPU host can't answer this */
  RGPU_NVML_BRIDGE_GPU_IS_LOST = 15,      /* the link to the GPU host failed */
  RGPU_NVML_BRIDGE_UNKNOWN = 999          /* the worker answered something malformed */
};

/* Facts that never change during a session (from the client's DeviceInfo). */
typedef struct RgpuNvmlDeviceFacts {
  char name[256];         /* "NVIDIA H200", NUL-terminated */
  uint8_t uuid[16];       /* the CUDA UUID; NVML prints it as "GPU-xxxxxxxx-..." */
  char pci_bus_id[32];    /* as cuDeviceGetPCIBusId on the GPU host: "0000:19:00.0" */
  uint64_t total_mem;     /* bytes */
  int32_t cc_major, cc_minor;
  int32_t sm_count;
  int32_t clock_khz;      /* peak SM clock (CU_DEVICE_ATTRIBUTE_CLOCK_RATE) */
  int32_t mem_clock_khz;  /* peak memory clock */
  int32_t pci_domain, pci_bus, pci_device;
  int32_t cuda_driver_version; /* e.g. 13000 */
  int32_t reserved0;
  /* Bit j (j = the j-th GPU of the session, as `index` counts): what the GPU
   * host's driver said at cuInit about this device and device j
   * (proto::DeviceFacts::peers): cuDeviceCanAccessPeer, and
   * CU_DEVICE_P2P_ATTRIBUTE_NATIVE_ATOMIC_SUPPORTED. Never set for the device
   * itself; 0 when the worker sent no peer facts. */
  uint64_t peer_access_mask;
  uint64_t peer_atomics_mask;
} RgpuNvmlDeviceFacts;

/* What a Query asks for (the wire's NvmlQuery `what`, proto/nvml_query.h). */
enum {
  RGPU_NVML_QUERY_MEMORY = 1,
  RGPU_NVML_QUERY_UTILIZATION = 2,
  RGPU_NVML_QUERY_TEMPERATURE = 3,
  RGPU_NVML_QUERY_POWER = 4,
  RGPU_NVML_QUERY_CLOCKS = 5,
  RGPU_NVML_QUERY_PROCESSES = 6,
  RGPU_NVML_QUERY_DRIVER_VERSION = 7, /* the GPU host's; `index` must still be valid */
  RGPU_NVML_QUERY_PCI = 8,
  RGPU_NVML_QUERY_PCIE = 9            /* the PCIe link and the PCIe counter fields */
};

#define RGPU_NVML_MAX_PROCESSES 64

/* PCIE: the link's values, each with its own NVML return (indexes of
 * RgpuNvmlLive's pcie_value / pcie_ret). Widths are lanes; SPEED is what
 * nvmlDeviceGetPcieSpeed says (Mbps per lane: 32000 at Gen5). */
enum {
  RGPU_NVML_PCIE_CURR_GEN = 0,     /* nvmlDeviceGetCurrPcieLinkGeneration */
  RGPU_NVML_PCIE_MAX_GEN = 1,      /* nvmlDeviceGetMaxPcieLinkGeneration (device and system) */
  RGPU_NVML_PCIE_GPU_MAX_GEN = 2,  /* nvmlDeviceGetGpuMaxPcieLinkGeneration (the device alone) */
  RGPU_NVML_PCIE_CURR_WIDTH = 3,   /* nvmlDeviceGetCurrPcieLinkWidth */
  RGPU_NVML_PCIE_MAX_WIDTH = 4,    /* nvmlDeviceGetMaxPcieLinkWidth */
  RGPU_NVML_PCIE_SPEED = 5,        /* nvmlDeviceGetPcieSpeed */
  RGPU_NVML_PCIE_LINK_MAX_SPEED = 6, /* nvmlDeviceGetPcieLinkMaxSpeed: NVML_PCIE_LINK_MAX_SPEED_* */
  RGPU_NVML_PCIE_VALUES = 7
};

/* One nvmlFieldValue_t as the GPU host's NVML answered it: `value` holds the
 * 8 bytes of its nvmlValue_t, `value_type` its nvmlValueType_t. */
typedef struct RgpuNvmlField {
  uint32_t field_id;
  uint32_t ret;
  uint32_t value_type;
  uint32_t reserved;
  uint64_t value;
} RgpuNvmlField;

#define RGPU_NVML_MAX_FIELDS 32

typedef struct RgpuNvmlProcess {
  uint32_t pid;
  uint32_t reserved;
  uint64_t used_bytes;
} RgpuNvmlProcess;

/* One answer. Only the fields of the kind asked for are filled; the rest are
 * zero. Clocks: index by nvmlClockType_t (graphics, SM, memory, video); a
 * clock the host can't report has its *_ret set to that NVML code. */
typedef struct RgpuNvmlLive {
  /* MEMORY */
  uint64_t mem_total, mem_reserved, mem_free, mem_used;
  /* UTILIZATION, in percent over the host's sample period */
  uint32_t util_gpu, util_memory;
  /* TEMPERATURE (GPU die, Celsius), POWER (milliwatts) */
  uint32_t temperature_c;
  uint32_t power_mw;
  /* CLOCKS (MHz) */
  uint32_t clock_mhz[4], clock_ret[4];
  uint32_t max_clock_mhz[4], max_clock_ret[4];
  /* PROCESSES: the session's own process is reported under the calling
   * process's pid (see nvml_bridge.cc); process_count <= RGPU_NVML_MAX_PROCESSES */
  uint32_t process_count;
  RgpuNvmlProcess processes[RGPU_NVML_MAX_PROCESSES];
  /* DRIVER_VERSION, e.g. "580.159" */
  char driver_version[80];
  /* PCI */
  uint32_t pci_device_id, pci_subsystem_id;
  /* PCIE: the link (by RGPU_NVML_PCIE_*), then the PCIe counter fields the
   * host answered (field_count <= RGPU_NVML_MAX_FIELDS; each with its own ret) */
  uint32_t pcie_value[RGPU_NVML_PCIE_VALUES], pcie_ret[RGPU_NVML_PCIE_VALUES];
  uint32_t field_count;
  uint32_t reserved0;
  RgpuNvmlField fields[RGPU_NVML_MAX_FIELDS];
} RgpuNvmlLive;

typedef uint32_t (*RgpuNvmlBridgeAbiFn)(void);
/* *count = number of GPUs in the session. */
typedef int (*RgpuNvmlDeviceCountFn)(uint32_t* count);
/* Fills *out (whose size the caller passes, to catch a header mismatch). */
typedef int (*RgpuNvmlDeviceFactsFn)(uint32_t index, RgpuNvmlDeviceFacts* out, uint32_t out_size);
/* Asks the GPU host; returns the host's NVML answer (NOT_SUPPORTED when its
 * NVML or backend can't say) or a bridge error. */
typedef int (*RgpuNvmlQueryFn)(uint32_t index, uint32_t what, RgpuNvmlLive* out, uint32_t out_size);

#ifdef __cplusplus
}  /* extern "C" */

namespace rgpu::client {
struct ExportTableView;
// Fills *view and returns true when `uuid` (16 bytes) is the bridge's UUID.
// nvml_bridge.cc registers it with export_tables.cc's lookup when the
// library loads (SetPrivateTableFinder), so the surface's unit tests link
// without this file.
bool FindNvmlBridgeTable(const void* uuid, ExportTableView* view);
}  // namespace rgpu::client
#endif

#endif  /* RGPU_CLIENT_NVML_BRIDGE_H_ */
