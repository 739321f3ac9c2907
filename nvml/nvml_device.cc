// NVML: device handles and device queries, about the session's remote GPUs.
//
// Static facts (name, UUID, PCI address, compute capability, total memory,
// MIG mode, NVLink absence, P2P status between the session's GPUs) are
// answered locally; live data (memory in use,
// utilization, temperature, power, clocks, processes, PCI ids, the PCIe link
// and its counters) costs one round trip to the worker.
// Argument checks come first and follow the real library: no init ->
// UNINITIALIZED; a handle we did not hand out or a null output ->
// INVALID_ARGUMENT; a short buffer -> INSUFFICIENT_SIZE.
#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>

#include "common/log.h"
#include "nvml/nvml_state.h"

using rgpu::nvml::CopyOut;
using rgpu::nvml::NvmlState;

namespace {

// Resolves (state, device) or returns the NVML error from the calling function.
#define RGPU_NVML_DEVICE_OR_RETURN(state, device, index) \
  NvmlState* state = NvmlState::Get();                   \
  if (state == nullptr) return NVML_ERROR_UNINITIALIZED; \
  uint32_t index = 0;                                    \
  (void)index;                                           \
  if (!state->IndexOf(device, &index)) return NVML_ERROR_INVALID_ARGUMENT

nvmlReturn_t Live(NvmlState* s, uint32_t index, uint32_t what, RgpuNvmlLive* live) {
  return s->Query(index, what, live);
}

// Fills both PCI layouts' common head (busIdLegacy/busId[16], domain, bus,
// device) from the facts.
void PciHead(const RgpuNvmlDeviceFacts& f, char* legacy, unsigned* domain, unsigned* bus,
             unsigned* device) {
  *domain = static_cast<unsigned>(f.pci_domain);
  *bus = static_cast<unsigned>(f.pci_bus);
  *device = static_cast<unsigned>(f.pci_device);
  snprintf(legacy, NVML_DEVICE_PCI_BUS_ID_BUFFER_V2_SIZE, NVML_DEVICE_PCI_BUS_ID_LEGACY_FMT,
           *domain & 0xffff, *bus & 0xff, *device & 0xff);
}

nvmlReturn_t PciInfo(nvmlDevice_t device, nvmlPciInfo_t* pci) {
  RGPU_NVML_DEVICE_OR_RETURN(s, device, index);
  if (pci == nullptr) return NVML_ERROR_INVALID_ARGUMENT;
  RgpuNvmlLive live;
  if (nvmlReturn_t r = Live(s, index, RGPU_NVML_QUERY_PCI, &live); r != NVML_SUCCESS) return r;
  nvmlPciInfo_t out{};
  PciHead(s->facts(index), out.busIdLegacy, &out.domain, &out.bus, &out.device);
  snprintf(out.busId, sizeof out.busId, NVML_DEVICE_PCI_BUS_ID_FMT, out.domain, out.bus & 0xff,
           out.device & 0xff);
  out.pciDeviceId = live.pci_device_id;
  out.pciSubSystemId = live.pci_subsystem_id;
  *pci = out;
  return NVML_SUCCESS;
}

// *count in: capacity of `infos`; out: the number of processes. Fills `infos`
// through `put(i, pid, used_bytes)`.
template <class Put>
nvmlReturn_t Processes(nvmlDevice_t device, unsigned int* count, bool infos_null, Put put) {
  RGPU_NVML_DEVICE_OR_RETURN(s, device, index);
  if (count == nullptr || (infos_null && *count != 0)) return NVML_ERROR_INVALID_ARGUMENT;
  RgpuNvmlLive live;
  if (nvmlReturn_t r = Live(s, index, RGPU_NVML_QUERY_PROCESSES, &live); r != NVML_SUCCESS)
    return r;
  const unsigned n = live.process_count;
  if (*count < n) {
    *count = n;
    return NVML_ERROR_INSUFFICIENT_SIZE;
  }
  for (unsigned i = 0; i < n; ++i) put(i, live.processes[i].pid, live.processes[i].used_bytes);
  *count = n;
  return NVML_SUCCESS;
}

nvmlReturn_t ProcessesV2(nvmlDevice_t device, unsigned int* count, nvmlProcessInfo_t* infos) {
  return Processes(device, count, infos == nullptr,
                   [infos](unsigned i, uint32_t pid, uint64_t used) {
                     infos[i] = nvmlProcessInfo_t{pid, used, 0xFFFFFFFFu, 0xFFFFFFFFu};
                   });
}

nvmlReturn_t Clock(nvmlDevice_t device, nvmlClockType_t type, unsigned int* clock, bool max) {
  RGPU_NVML_DEVICE_OR_RETURN(s, device, index);
  if (clock == nullptr || static_cast<unsigned>(type) >= NVML_CLOCK_COUNT)
    return NVML_ERROR_INVALID_ARGUMENT;
  RgpuNvmlLive live;
  if (nvmlReturn_t r = Live(s, index, RGPU_NVML_QUERY_CLOCKS, &live); r != NVML_SUCCESS) return r;
  const unsigned ret = max ? live.max_clock_ret[type] : live.clock_ret[type];
  if (ret != NVML_SUCCESS) return static_cast<nvmlReturn_t>(ret);
  *clock = max ? live.max_clock_mhz[type] : live.clock_mhz[type];
  return NVML_SUCCESS;
}

// One value of the PCIe link (RGPU_NVML_PCIE_*): live, as the link may train
// down when idle and back up under load.
nvmlReturn_t PcieValue(nvmlDevice_t device, int which, unsigned int* out) {
  RGPU_NVML_DEVICE_OR_RETURN(s, device, index);
  if (out == nullptr) return NVML_ERROR_INVALID_ARGUMENT;
  RgpuNvmlLive live;
  if (nvmlReturn_t r = Live(s, index, RGPU_NVML_QUERY_PCIE, &live); r != NVML_SUCCESS) return r;
  if (live.pcie_ret[which] != NVML_SUCCESS) return static_cast<nvmlReturn_t>(live.pcie_ret[which]);
  *out = live.pcie_value[which];
  return NVML_SUCCESS;
}

long long NowMicros() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

nvmlReturn_t HandleByIndex(unsigned int index, nvmlDevice_t* device) {
  NvmlState* s = NvmlState::Get();
  if (s == nullptr) return NVML_ERROR_UNINITIALIZED;
  if (device == nullptr || index >= s->device_count()) return NVML_ERROR_INVALID_ARGUMENT;
  *device = s->handle(index);
  return NVML_SUCCESS;
}

nvmlReturn_t Count(unsigned int* count) {
  NvmlState* s = NvmlState::Get();
  if (s == nullptr) return NVML_ERROR_UNINITIALIZED;
  if (count == nullptr) return NVML_ERROR_INVALID_ARGUMENT;
  *count = s->device_count();
  return NVML_SUCCESS;
}

nvmlReturn_t HandleByPciBusId(const char* bus_id, nvmlDevice_t* device) {
  NvmlState* s = NvmlState::Get();
  if (s == nullptr) return NVML_ERROR_UNINITIALIZED;
  if (bus_id == nullptr || device == nullptr) return NVML_ERROR_INVALID_ARGUMENT;
  uint32_t index = 0;
  if (!s->FindPciBusId(bus_id, &index)) return NVML_ERROR_NOT_FOUND;
  *device = s->handle(index);
  return NVML_SUCCESS;
}

// Answers "no NVLink": the client sees no link between GPUs (or to
// anything else) that it could use. Logged once at debug level only: c10 and
// NCCL ask this routinely and the answer is not a missing feature.
nvmlReturn_t NoNvLink(const char* name) {
  rgpu::LogOnce(rgpu::LogLevel::kDebug, name, "%s: no NVLink through rgpu", name);
  return NVML_ERROR_NOT_SUPPORTED;
}

}  // namespace

RGPU_NVML_API nvmlReturn_t nvmlDeviceGetCount_v2(unsigned int* count) { return Count(count); }
RGPU_NVML_API nvmlReturn_t nvmlDeviceGetCount(unsigned int* count) { return Count(count); }

RGPU_NVML_API nvmlReturn_t nvmlDeviceGetHandleByIndex_v2(unsigned int index, nvmlDevice_t* device) {
  return HandleByIndex(index, device);
}
RGPU_NVML_API nvmlReturn_t nvmlDeviceGetHandleByIndex(unsigned int index, nvmlDevice_t* device) {
  return HandleByIndex(index, device);
}

RGPU_NVML_API nvmlReturn_t nvmlDeviceGetHandleByUUID(const char* uuid, nvmlDevice_t* device) {
  NvmlState* s = NvmlState::Get();
  if (s == nullptr) return NVML_ERROR_UNINITIALIZED;
  if (uuid == nullptr || device == nullptr) return NVML_ERROR_INVALID_ARGUMENT;
  uint32_t index = 0;
  if (!s->FindUuid(uuid, &index)) return NVML_ERROR_NOT_FOUND;
  *device = s->handle(index);
  return NVML_SUCCESS;
}

RGPU_NVML_API nvmlReturn_t nvmlDeviceGetHandleByPciBusId_v2(const char* bus_id,
                                                            nvmlDevice_t* device) {
  return HandleByPciBusId(bus_id, device);
}
RGPU_NVML_API nvmlReturn_t nvmlDeviceGetHandleByPciBusId(const char* bus_id, nvmlDevice_t* device) {
  return HandleByPciBusId(bus_id, device);
}

RGPU_NVML_API nvmlReturn_t nvmlDeviceGetIndex(nvmlDevice_t device, unsigned int* index_out) {
  RGPU_NVML_DEVICE_OR_RETURN(s, device, index);
  if (index_out == nullptr) return NVML_ERROR_INVALID_ARGUMENT;
  *index_out = index;
  return NVML_SUCCESS;
}

// /dev/nvidiaN has no meaning on this machine; the index is the stable answer.
RGPU_NVML_API nvmlReturn_t nvmlDeviceGetMinorNumber(nvmlDevice_t device, unsigned int* minor) {
  RGPU_NVML_DEVICE_OR_RETURN(s, device, index);
  if (minor == nullptr) return NVML_ERROR_INVALID_ARGUMENT;
  *minor = index;
  return NVML_SUCCESS;
}

RGPU_NVML_API nvmlReturn_t nvmlDeviceGetName(nvmlDevice_t device, char* name, unsigned int length) {
  RGPU_NVML_DEVICE_OR_RETURN(s, device, index);
  return CopyOut(s->facts(index).name, name, length);
}

RGPU_NVML_API nvmlReturn_t nvmlDeviceGetUUID(nvmlDevice_t device, char* uuid, unsigned int length) {
  RGPU_NVML_DEVICE_OR_RETURN(s, device, index);
  return CopyOut(s->uuid_string(index), uuid, length);
}

RGPU_NVML_API nvmlReturn_t nvmlDeviceGetCudaComputeCapability(nvmlDevice_t device, int* major,
                                                              int* minor) {
  RGPU_NVML_DEVICE_OR_RETURN(s, device, index);
  if (major == nullptr || minor == nullptr) return NVML_ERROR_INVALID_ARGUMENT;
  *major = s->facts(index).cc_major;
  *minor = s->facts(index).cc_minor;
  return NVML_SUCCESS;
}

RGPU_NVML_API nvmlReturn_t nvmlDeviceGetMemoryInfo(nvmlDevice_t device, nvmlMemory_t* memory) {
  RGPU_NVML_DEVICE_OR_RETURN(s, device, index);
  if (memory == nullptr) return NVML_ERROR_INVALID_ARGUMENT;
  RgpuNvmlLive live;
  if (nvmlReturn_t r = Live(s, index, RGPU_NVML_QUERY_MEMORY, &live); r != NVML_SUCCESS) return r;
  memory->total = live.mem_total;
  memory->free = live.mem_free;
  // v1: "Sum of Reserved and Allocated device memory".
  memory->used = live.mem_total >= live.mem_free ? live.mem_total - live.mem_free : live.mem_used;
  return NVML_SUCCESS;
}

RGPU_NVML_API nvmlReturn_t nvmlDeviceGetMemoryInfo_v2(nvmlDevice_t device,
                                                      nvmlMemory_v2_t* memory) {
  RGPU_NVML_DEVICE_OR_RETURN(s, device, index);
  if (memory == nullptr) return NVML_ERROR_INVALID_ARGUMENT;
  // NVIDIA's 580.159.04 answers FUNCTION_NOT_FOUND, not ARGUMENT_VERSION_MISMATCH,
  // for a struct without the version word (measured on an H200 with version 0).
  if (memory->version != nvmlMemory_v2) return NVML_ERROR_FUNCTION_NOT_FOUND;
  RgpuNvmlLive live;
  if (nvmlReturn_t r = Live(s, index, RGPU_NVML_QUERY_MEMORY, &live); r != NVML_SUCCESS) return r;
  memory->total = live.mem_total;
  memory->reserved = live.mem_reserved;
  memory->free = live.mem_free;
  memory->used = live.mem_used;
  return NVML_SUCCESS;
}

RGPU_NVML_API nvmlReturn_t nvmlDeviceGetUtilizationRates(nvmlDevice_t device,
                                                         nvmlUtilization_t* utilization) {
  RGPU_NVML_DEVICE_OR_RETURN(s, device, index);
  if (utilization == nullptr) return NVML_ERROR_INVALID_ARGUMENT;
  RgpuNvmlLive live;
  if (nvmlReturn_t r = Live(s, index, RGPU_NVML_QUERY_UTILIZATION, &live); r != NVML_SUCCESS)
    return r;
  utilization->gpu = live.util_gpu;
  utilization->memory = live.util_memory;
  return NVML_SUCCESS;
}

RGPU_NVML_API nvmlReturn_t nvmlDeviceGetTemperature(nvmlDevice_t device,
                                                    nvmlTemperatureSensors_t sensor,
                                                    unsigned int* temp) {
  RGPU_NVML_DEVICE_OR_RETURN(s, device, index);
  if (temp == nullptr || sensor != NVML_TEMPERATURE_GPU) return NVML_ERROR_INVALID_ARGUMENT;
  RgpuNvmlLive live;
  if (nvmlReturn_t r = Live(s, index, RGPU_NVML_QUERY_TEMPERATURE, &live); r != NVML_SUCCESS)
    return r;
  *temp = live.temperature_c;
  return NVML_SUCCESS;
}

RGPU_NVML_API nvmlReturn_t nvmlDeviceGetPowerUsage(nvmlDevice_t device, unsigned int* power) {
  RGPU_NVML_DEVICE_OR_RETURN(s, device, index);
  if (power == nullptr) return NVML_ERROR_INVALID_ARGUMENT;
  RgpuNvmlLive live;
  if (nvmlReturn_t r = Live(s, index, RGPU_NVML_QUERY_POWER, &live); r != NVML_SUCCESS) return r;
  *power = live.power_mw;
  return NVML_SUCCESS;
}

RGPU_NVML_API nvmlReturn_t nvmlDeviceGetClockInfo(nvmlDevice_t device, nvmlClockType_t type,
                                                  unsigned int* clock) {
  return Clock(device, type, clock, /*max=*/false);
}

RGPU_NVML_API nvmlReturn_t nvmlDeviceGetMaxClockInfo(nvmlDevice_t device, nvmlClockType_t type,
                                                     unsigned int* clock) {
  return Clock(device, type, clock, /*max=*/true);
}

RGPU_NVML_API nvmlReturn_t nvmlDeviceGetPciInfo_v3(nvmlDevice_t device, nvmlPciInfo_t* pci) {
  return PciInfo(device, pci);
}
RGPU_NVML_API nvmlReturn_t nvmlDeviceGetPciInfo_v2(nvmlDevice_t device, nvmlPciInfo_t* pci) {
  return PciInfo(device, pci);
}

// The unversioned entry point: programs built against the nvml.h that
// predates busIdLegacy pass the 52-byte layout; only that much is written.
RGPU_NVML_API nvmlReturn_t nvmlDeviceGetPciInfo(nvmlDevice_t device, nvmlPciInfoV1_t* pci) {
  if (pci == nullptr)
    return NvmlState::Get() == nullptr ? NVML_ERROR_UNINITIALIZED : NVML_ERROR_INVALID_ARGUMENT;
  nvmlPciInfo_t full{};
  if (nvmlReturn_t r = PciInfo(device, &full); r != NVML_SUCCESS) return r;
  nvmlPciInfoV1_t out{};
  std::memcpy(out.busId, full.busIdLegacy, sizeof out.busId);
  out.domain = full.domain;
  out.bus = full.bus;
  out.device = full.device;
  out.pciDeviceId = full.pciDeviceId;
  out.pciSubSystemId = full.pciSubSystemId;
  *pci = out;
  return NVML_SUCCESS;
}

RGPU_NVML_API nvmlReturn_t nvmlDeviceGetComputeRunningProcesses_v3(nvmlDevice_t device,
                                                                   unsigned int* count,
                                                                   nvmlProcessInfo_t* infos) {
  return ProcessesV2(device, count, infos);
}
RGPU_NVML_API nvmlReturn_t nvmlDeviceGetComputeRunningProcesses_v2(nvmlDevice_t device,
                                                                   unsigned int* count,
                                                                   nvmlProcessInfo_t* infos) {
  return ProcessesV2(device, count, infos);
}
RGPU_NVML_API nvmlReturn_t nvmlDeviceGetComputeRunningProcesses(nvmlDevice_t device,
                                                                unsigned int* count,
                                                                nvmlProcessInfo_v1_t* infos) {
  return Processes(device, count, infos == nullptr,
                   [infos](unsigned i, uint32_t pid, uint64_t used) {
                     infos[i] = nvmlProcessInfo_v1_t{pid, used};
                   });
}

RGPU_NVML_API nvmlReturn_t nvmlDeviceGetNvLinkRemoteDeviceType(nvmlDevice_t device,
                                                               unsigned int link,
                                                               nvmlIntNvLinkDeviceType_t* type) {
  RGPU_NVML_DEVICE_OR_RETURN(s, device, index);
  if (type == nullptr) return NVML_ERROR_INVALID_ARGUMENT;
  return NoNvLink("nvmlDeviceGetNvLinkRemoteDeviceType");
}

RGPU_NVML_API nvmlReturn_t nvmlDeviceGetNvLinkRemotePciInfo_v2(nvmlDevice_t device,
                                                               unsigned int link,
                                                               nvmlPciInfo_t* pci) {
  RGPU_NVML_DEVICE_OR_RETURN(s, device, index);
  if (pci == nullptr) return NVML_ERROR_INVALID_ARGUMENT;
  return NoNvLink("nvmlDeviceGetNvLinkRemotePciInfo_v2");
}

RGPU_NVML_API nvmlReturn_t nvmlDeviceGetNvLinkRemotePciInfo(nvmlDevice_t device, unsigned int link,
                                                            nvmlPciInfoV1_t* pci) {
  RGPU_NVML_DEVICE_OR_RETURN(s, device, index);
  if (pci == nullptr) return NVML_ERROR_INVALID_ARGUMENT;
  return NoNvLink("nvmlDeviceGetNvLinkRemotePciInfo");
}

RGPU_NVML_API nvmlReturn_t nvmlDeviceGetNvLinkState(nvmlDevice_t device, unsigned int link,
                                                    nvmlEnableState_t* is_active) {
  RGPU_NVML_DEVICE_OR_RETURN(s, device, index);
  if (is_active == nullptr) return NVML_ERROR_INVALID_ARGUMENT;
  return NoNvLink("nvmlDeviceGetNvLinkState");
}

RGPU_NVML_API nvmlReturn_t nvmlDeviceGetNvLinkCapability(nvmlDevice_t device, unsigned int link,
                                                         nvmlNvLinkCapability_t capability,
                                                         unsigned int* cap_result) {
  RGPU_NVML_DEVICE_OR_RETURN(s, device, index);
  if (cap_result == nullptr || static_cast<unsigned>(capability) >= NVML_NVLINK_CAP_COUNT)
    return NVML_ERROR_INVALID_ARGUMENT;
  return NoNvLink("nvmlDeviceGetNvLinkCapability");
}

RGPU_NVML_API nvmlReturn_t nvmlDeviceGetNvLinkVersion(nvmlDevice_t device, unsigned int link,
                                                      unsigned int* version) {
  RGPU_NVML_DEVICE_OR_RETURN(s, device, index);
  if (version == nullptr) return NVML_ERROR_INVALID_ARGUMENT;
  return NoNvLink("nvmlDeviceGetNvLinkVersion");
}

// P2P between two of the session's GPUs, from what the GPU host's driver said
// at cuInit (no round trip): READ, WRITE and PCI are OK where
// cuDeviceCanAccessPeer is 1, ATOMICS where native atomics over the link are
// supported too; NVLINK never (no NVLink is reachable through rgpu, as the
// NVLink calls say). A device with itself: OK for every index (NCCL asks
// READ and WRITE for every pair, a device with itself included, and fails
// its init on any error). What CUDA refuses is NVML_P2P_STATUS_NOT_SUPPORTED:
// the reason (chipset, topology, regkey) is not known here.
RGPU_NVML_API nvmlReturn_t nvmlDeviceGetP2PStatus(nvmlDevice_t device1, nvmlDevice_t device2,
                                                  nvmlGpuP2PCapsIndex_t p2p_index,
                                                  nvmlGpuP2PStatus_t* p2p_status) {
  NvmlState* s = NvmlState::Get();
  if (s == nullptr) return NVML_ERROR_UNINITIALIZED;
  uint32_t a = 0, b = 0;
  const unsigned what = static_cast<unsigned>(p2p_index);
  if (!s->IndexOf(device1, &a) || !s->IndexOf(device2, &b) || p2p_status == nullptr ||
      what >= NVML_P2P_CAPS_INDEX_UNKNOWN)
    return NVML_ERROR_INVALID_ARGUMENT;
  if (a == b) {
    *p2p_status = NVML_P2P_STATUS_OK;
    return NVML_SUCCESS;
  }
  const RgpuNvmlDeviceFacts& f = s->facts(a);
  const uint64_t bit = uint64_t{1} << b;
  bool ok = false;
  switch (what) {
    case NVML_P2P_CAPS_INDEX_READ:
    case NVML_P2P_CAPS_INDEX_WRITE:
    case NVML_P2P_CAPS_INDEX_PCI: ok = (f.peer_access_mask & bit) != 0; break;
    case NVML_P2P_CAPS_INDEX_ATOMICS:
      ok = (f.peer_access_mask & bit) != 0 && (f.peer_atomics_mask & bit) != 0;
      break;
    case NVML_P2P_CAPS_INDEX_NVLINK: ok = false; break;
  }
  *p2p_status = ok ? NVML_P2P_STATUS_OK : NVML_P2P_STATUS_NOT_SUPPORTED;
  return NVML_SUCCESS;
}

// Rack and tray of a multi-node NVLink system: Blackwell and newer only;
// NVIDIA's NVML answers NOT_SUPPORTED on Hopper, and there is no fabric
// through rgpu (NCCL asks only when fabric info says there is one).
RGPU_NVML_API nvmlReturn_t nvmlDeviceGetPlatformInfo(nvmlDevice_t device, void* info) {
  RGPU_NVML_DEVICE_OR_RETURN(s, device, index);
  if (info == nullptr) return NVML_ERROR_INVALID_ARGUMENT;
  return NoNvLink("nvmlDeviceGetPlatformInfo");
}

// No GPU fabric (multi-node NVLink) is reachable through rgpu; callers
// (c10's expandable segments, NCCL) then take their non-fabric path.
RGPU_NVML_API nvmlReturn_t nvmlDeviceGetGpuFabricInfoV(nvmlDevice_t device, void* info) {
  RGPU_NVML_DEVICE_OR_RETURN(s, device, index);
  if (info == nullptr) return NVML_ERROR_INVALID_ARGUMENT;
  return NoNvLink("nvmlDeviceGetGpuFabricInfoV");
}

RGPU_NVML_API nvmlReturn_t nvmlDeviceGetGpuFabricInfo(nvmlDevice_t device, void* info) {
  RGPU_NVML_DEVICE_OR_RETURN(s, device, index);
  if (info == nullptr) return NVML_ERROR_INVALID_ARGUMENT;
  return NoNvLink("nvmlDeviceGetGpuFabricInfo");
}

RGPU_NVML_API nvmlReturn_t nvmlDeviceGetCurrPcieLinkGeneration(nvmlDevice_t device,
                                                               unsigned int* gen) {
  return PcieValue(device, RGPU_NVML_PCIE_CURR_GEN, gen);
}

RGPU_NVML_API nvmlReturn_t nvmlDeviceGetMaxPcieLinkGeneration(nvmlDevice_t device,
                                                              unsigned int* gen) {
  return PcieValue(device, RGPU_NVML_PCIE_MAX_GEN, gen);
}

RGPU_NVML_API nvmlReturn_t nvmlDeviceGetGpuMaxPcieLinkGeneration(nvmlDevice_t device,
                                                                 unsigned int* gen) {
  return PcieValue(device, RGPU_NVML_PCIE_GPU_MAX_GEN, gen);
}

RGPU_NVML_API nvmlReturn_t nvmlDeviceGetCurrPcieLinkWidth(nvmlDevice_t device,
                                                          unsigned int* width) {
  return PcieValue(device, RGPU_NVML_PCIE_CURR_WIDTH, width);
}

RGPU_NVML_API nvmlReturn_t nvmlDeviceGetMaxPcieLinkWidth(nvmlDevice_t device, unsigned int* width) {
  return PcieValue(device, RGPU_NVML_PCIE_MAX_WIDTH, width);
}

RGPU_NVML_API nvmlReturn_t nvmlDeviceGetPcieSpeed(nvmlDevice_t device, unsigned int* speed) {
  return PcieValue(device, RGPU_NVML_PCIE_SPEED, speed);
}

RGPU_NVML_API nvmlReturn_t nvmlDeviceGetPcieLinkMaxSpeed(nvmlDevice_t device, unsigned int* speed) {
  return PcieValue(device, RGPU_NVML_PCIE_LINK_MAX_SPEED, speed);
}

// rgpu hands out whole GPUs and never creates MIG instances: the session's
// GPU is used as one device, which is what "MIG disabled" tells a caller.
RGPU_NVML_API nvmlReturn_t nvmlDeviceGetMigMode(nvmlDevice_t device, unsigned int* current,
                                                unsigned int* pending) {
  RGPU_NVML_DEVICE_OR_RETURN(s, device, index);
  if (current == nullptr || pending == nullptr) return NVML_ERROR_INVALID_ARGUMENT;
  *current = NVML_DEVICE_MIG_DISABLE;
  *pending = NVML_DEVICE_MIG_DISABLE;
  return NVML_SUCCESS;
}

// Answers the PCIe counters of nvml::kPcieFieldIds with the GPU host's NVML's
// values (one round trip for all of them, only when one is asked for) and
// says NOT_SUPPORTED in every other field's nvmlReturn; the call itself
// succeeds, as NVIDIA's does. NVLink and C2C link counts are among the
// others: NVIDIA's NVML says the same for a PCIe board without such links,
// and none is reachable through rgpu (as the NVLink calls above say).
RGPU_NVML_API nvmlReturn_t nvmlDeviceGetFieldValues(nvmlDevice_t device, int count,
                                                    nvmlFieldValue_t* values) {
  RGPU_NVML_DEVICE_OR_RETURN(s, device, index);
  if (values == nullptr || count < 0) return NVML_ERROR_INVALID_ARGUMENT;
  RgpuNvmlLive live;
  bool asked = false;
  nvmlReturn_t live_ret = NVML_SUCCESS;
  long long latency = 0;
  for (int i = 0; i < count; ++i) {
    nvmlFieldValue_t& v = values[i];
    v.timestamp = NowMicros();
    v.latencyUsec = 0;
    v.value.ullVal = 0;
    v.valueType = NVML_VALUE_TYPE_UNSIGNED_INT;
    v.nvmlReturn = NVML_ERROR_NOT_SUPPORTED;
    if (!rgpu::nvml::IsPcieField(v.fieldId)) {
      rgpu::LogOnce(rgpu::LogLevel::kDebug, "nvml-field-" + std::to_string(v.fieldId),
                    "nvmlDeviceGetFieldValues: field %u is not answered by rgpu", v.fieldId);
      continue;
    }
    if (!asked) {
      const long long t0 = NowMicros();
      live_ret = Live(s, index, RGPU_NVML_QUERY_PCIE, &live);
      latency = NowMicros() - t0;
      asked = true;
    }
    v.latencyUsec = latency;
    if (live_ret != NVML_SUCCESS) {
      v.nvmlReturn = live_ret;
      continue;
    }
    for (uint32_t f = 0; f < live.field_count && f < RGPU_NVML_MAX_FIELDS; ++f) {
      if (live.fields[f].field_id != v.fieldId) continue;
      v.nvmlReturn = static_cast<nvmlReturn_t>(live.fields[f].ret);
      if (v.nvmlReturn == NVML_SUCCESS) {
        v.valueType = static_cast<nvmlValueType_t>(live.fields[f].value_type);
        static_assert(sizeof v.value == sizeof live.fields[f].value);
        std::memcpy(&v.value, &live.fields[f].value, sizeof v.value);
      }
      break;
    }
  }
  return NVML_SUCCESS;
}
