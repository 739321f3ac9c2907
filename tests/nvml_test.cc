// rgpu's libnvidia-ml.so.1 end to end: a real rgpu-server over the sim
// backend, the real client libraries, and a probe process that uses NVML the
// way torch and pynvml do (dlopen by soname, then plain C calls).
//
// The probe is this binary re-run with --probe and LD_LIBRARY_PATH pointing
// at build/lib. It prints one "key value" line per fact; the tests below
// check them, so a failure names the fact and shows everything the probe saw.
#include <cuda.h>
#include <dlfcn.h>
#include <gtest/gtest.h>
#include <link.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

#include "nvml/nvml_types.h"
#include "tests/support/process.h"

namespace rgpu::testing {
namespace {

// ---------------------------------------------------------------------------
// The probe (runs in the child).

template <class F>
F Sym(void* lib, const char* name) {
  auto f = reinterpret_cast<F>(dlsym(lib, name));
  if (f == nullptr) {
    printf("missing_symbol %s\n", name);
    fflush(stdout);
    _exit(3);
  }
  return f;
}

#define NVML(name) Sym<decltype(&name)>(nvml, #name)

// Declarations with the real NVML prototypes, for decltype only.
extern "C" {
nvmlReturn_t nvmlInit_v2();
nvmlReturn_t nvmlShutdown();
const char* nvmlErrorString(nvmlReturn_t);
nvmlReturn_t nvmlDeviceGetCount_v2(unsigned*);
nvmlReturn_t nvmlDeviceGetHandleByIndex_v2(unsigned, nvmlDevice_t*);
nvmlReturn_t nvmlDeviceGetHandleByUUID(const char*, nvmlDevice_t*);
nvmlReturn_t nvmlDeviceGetHandleByPciBusId_v2(const char*, nvmlDevice_t*);
nvmlReturn_t nvmlDeviceGetIndex(nvmlDevice_t, unsigned*);
nvmlReturn_t nvmlDeviceGetName(nvmlDevice_t, char*, unsigned);
nvmlReturn_t nvmlDeviceGetUUID(nvmlDevice_t, char*, unsigned);
nvmlReturn_t nvmlDeviceGetMemoryInfo(nvmlDevice_t, nvmlMemory_t*);
nvmlReturn_t nvmlDeviceGetMemoryInfo_v2(nvmlDevice_t, nvmlMemory_v2_t*);
nvmlReturn_t nvmlDeviceGetPciInfo_v3(nvmlDevice_t, nvmlPciInfo_t*);
nvmlReturn_t nvmlDeviceGetCudaComputeCapability(nvmlDevice_t, int*, int*);
nvmlReturn_t nvmlDeviceGetUtilizationRates(nvmlDevice_t, nvmlUtilization_t*);
nvmlReturn_t nvmlDeviceGetTemperature(nvmlDevice_t, nvmlTemperatureSensors_t, unsigned*);
nvmlReturn_t nvmlDeviceGetPowerUsage(nvmlDevice_t, unsigned*);
nvmlReturn_t nvmlDeviceGetClockInfo(nvmlDevice_t, nvmlClockType_t, unsigned*);
nvmlReturn_t nvmlDeviceGetMaxClockInfo(nvmlDevice_t, nvmlClockType_t, unsigned*);
nvmlReturn_t nvmlDeviceGetComputeRunningProcesses_v3(nvmlDevice_t, unsigned*, nvmlProcessInfo_t*);
nvmlReturn_t nvmlDeviceGetNvLinkRemoteDeviceType(nvmlDevice_t, unsigned,
                                                 nvmlIntNvLinkDeviceType_t*);
nvmlReturn_t nvmlDeviceGetNvLinkRemotePciInfo_v2(nvmlDevice_t, unsigned, nvmlPciInfo_t*);
nvmlReturn_t nvmlSystemGetDriverVersion(char*, unsigned);
nvmlReturn_t nvmlSystemGetNVMLVersion(char*, unsigned);
nvmlReturn_t nvmlSystemGetCudaDriverVersion_v2(int*);
nvmlReturn_t nvmlDeviceGetSerial(nvmlDevice_t, char*, unsigned);
nvmlReturn_t nvmlDeviceGetCurrPcieLinkGeneration(nvmlDevice_t, unsigned*);
nvmlReturn_t nvmlDeviceGetMaxPcieLinkGeneration(nvmlDevice_t, unsigned*);
nvmlReturn_t nvmlDeviceGetGpuMaxPcieLinkGeneration(nvmlDevice_t, unsigned*);
nvmlReturn_t nvmlDeviceGetCurrPcieLinkWidth(nvmlDevice_t, unsigned*);
nvmlReturn_t nvmlDeviceGetMaxPcieLinkWidth(nvmlDevice_t, unsigned*);
nvmlReturn_t nvmlDeviceGetPcieSpeed(nvmlDevice_t, unsigned*);
nvmlReturn_t nvmlDeviceGetPcieLinkMaxSpeed(nvmlDevice_t, unsigned*);
nvmlReturn_t nvmlDeviceGetMigMode(nvmlDevice_t, unsigned*, unsigned*);
nvmlReturn_t nvmlDeviceGetFieldValues(nvmlDevice_t, int, nvmlFieldValue_t*);
nvmlReturn_t nvmlDeviceGetMinorNumber(nvmlDevice_t, unsigned*);
nvmlReturn_t nvmlDeviceGetP2PStatus(nvmlDevice_t, nvmlDevice_t, nvmlGpuP2PCapsIndex_t,
                                    nvmlGpuP2PStatus_t*);
nvmlReturn_t nvmlDeviceGetNvLinkState(nvmlDevice_t, unsigned, nvmlEnableState_t*);
nvmlReturn_t nvmlDeviceGetNvLinkCapability(nvmlDevice_t, unsigned, nvmlNvLinkCapability_t,
                                           unsigned*);
nvmlReturn_t nvmlDeviceGetNvLinkRemotePciInfo(nvmlDevice_t, unsigned, nvmlPciInfoV1_t*);
nvmlReturn_t nvmlDeviceGetGpuFabricInfoV(nvmlDevice_t, void*);
nvmlReturn_t nvmlDeviceGetPlatformInfo(nvmlDevice_t, void*);
nvmlReturn_t nvmlSystemGetConfComputeState(nvmlConfComputeSystemState_t*);
nvmlReturn_t nvmlSystemGetConfComputeSettings(nvmlSystemConfComputeSettings_t*);
nvmlReturn_t nvmlSystemGetConfComputeCapabilities(nvmlConfComputeSystemCaps_t*);
}

double NowMs() {
  return std::chrono::duration<double, std::milli>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

std::string LoadedPath(void* lib) {
  struct link_map* map = nullptr;
  if (dlinfo(lib, RTLD_DI_LINKMAP, &map) != 0 || map == nullptr) return "?";
  return map->l_name;
}

// Every line is printed after its call has returned: printf's arguments are
// evaluated in no particular order, so a call and the output it writes never
// share one printf.
void PrintDevice(void* nvml, unsigned i) {
  int rc = 0;
  nvmlDevice_t d = nullptr;
  rc = NVML(nvmlDeviceGetHandleByIndex_v2)(i, &d);
  printf("handle%u %d\n", i, rc);
  char name[96] = {}, uuid[96] = {}, tiny[8] = {};
  rc = NVML(nvmlDeviceGetName)(d, name, sizeof name);
  printf("name%u %d %s\n", i, rc, name);
  rc = NVML(nvmlDeviceGetUUID)(d, uuid, sizeof uuid);
  printf("uuid%u %d %s\n", i, rc, uuid);
  rc = NVML(nvmlDeviceGetName)(d, tiny, sizeof tiny);
  printf("name_tiny%u %d\n", i, rc);
  unsigned index = 99;
  rc = NVML(nvmlDeviceGetIndex)(d, &index);
  printf("index%u %d %u\n", i, rc, index);
  nvmlDevice_t by_uuid = nullptr, by_pci = nullptr, by_legacy = nullptr;
  rc = NVML(nvmlDeviceGetHandleByUUID)(uuid, &by_uuid);
  printf("by_uuid%u %d %d\n", i, rc, by_uuid == d);
  nvmlPciInfo_t pci{};
  rc = NVML(nvmlDeviceGetPciInfo_v3)(d, &pci);
  printf("pci%u %d %s %s %u %u %u 0x%08x\n", i, rc, pci.busId, pci.busIdLegacy, pci.domain, pci.bus,
         pci.device, pci.pciDeviceId);
  rc = NVML(nvmlDeviceGetHandleByPciBusId_v2)(pci.busId, &by_pci);
  printf("by_pci%u %d %d\n", i, rc, by_pci == d);
  rc = NVML(nvmlDeviceGetHandleByPciBusId_v2)(pci.busIdLegacy, &by_legacy);
  printf("by_pci_legacy%u %d %d\n", i, rc, by_legacy == d);
  int major = 0, minor = 0;
  rc = NVML(nvmlDeviceGetCudaComputeCapability)(d, &major, &minor);
  printf("cc%u %d %d.%d\n", i, rc, major, minor);
  nvmlMemory_t mem{};
  rc = NVML(nvmlDeviceGetMemoryInfo)(d, &mem);
  printf("mem%u %d %llu %llu %llu\n", i, rc, mem.total, mem.free, mem.used);
  nvmlMemory_v2_t mem2{};
  rc = NVML(nvmlDeviceGetMemoryInfo_v2)(d, &mem2);
  printf("mem2_noversion%u %d\n", i, rc);
  mem2.version = nvmlMemory_v2;
  rc = NVML(nvmlDeviceGetMemoryInfo_v2)(d, &mem2);
  printf("mem2%u %d %llu %llu %llu %llu\n", i, rc, mem2.total, mem2.reserved, mem2.free, mem2.used);
  nvmlUtilization_t util{99, 99};
  rc = NVML(nvmlDeviceGetUtilizationRates)(d, &util);
  printf("util%u %d %u %u\n", i, rc, util.gpu, util.memory);
  unsigned value = 0;
  rc = NVML(nvmlDeviceGetTemperature)(d, NVML_TEMPERATURE_GPU, &value);
  printf("temp%u %d %u\n", i, rc, value);
  rc = NVML(nvmlDeviceGetPowerUsage)(d, &value);
  printf("power%u %d %u\n", i, rc, value);
  rc = NVML(nvmlDeviceGetClockInfo)(d, NVML_CLOCK_SM, &value);
  printf("clock_sm%u %d %u\n", i, rc, value);
  rc = NVML(nvmlDeviceGetMaxClockInfo)(d, NVML_CLOCK_SM, &value);
  printf("max_clock_sm%u %d %u\n", i, rc, value);
  rc = NVML(nvmlDeviceGetMaxClockInfo)(d, NVML_CLOCK_MEM, &value);
  printf("max_clock_mem%u %d %u\n", i, rc, value);
  nvmlIntNvLinkDeviceType_t type{};
  rc = NVML(nvmlDeviceGetNvLinkRemoteDeviceType)(d, 0, &type);
  printf("nvlink_type%u %d\n", i, rc);
  rc = NVML(nvmlDeviceGetNvLinkRemotePciInfo_v2)(d, 0, &pci);
  printf("nvlink_pci%u %d\n", i, rc);
  unsigned minor_number = 99;
  rc = NVML(nvmlDeviceGetMinorNumber)(d, &minor_number);
  printf("minor%u %d %u\n", i, rc, minor_number);
  // NCCL's NVLink discovery (graph/xml.cc): for each link, capability
  // P2P_SUPPORTED, then the state, then the remote PCI info; any failure
  // means "no NVLink on this link". NVIDIA's NVML says NOT_SUPPORTED on a
  // GPU without NVLink, and so does rgpu (none is reachable through it).
  unsigned can_p2p = 7;
  rc = NVML(nvmlDeviceGetNvLinkCapability)(d, 0, NVML_NVLINK_CAP_P2P_SUPPORTED, &can_p2p);
  printf("nvlink_cap%u %d\n", i, rc);
  rc = NVML(nvmlDeviceGetNvLinkCapability)(d, 0, NVML_NVLINK_CAP_COUNT, &can_p2p);
  printf("nvlink_cap_bad%u %d\n", i, rc);
  nvmlEnableState_t active = NVML_FEATURE_ENABLED;
  rc = NVML(nvmlDeviceGetNvLinkState)(d, 17, &active);
  printf("nvlink_state%u %d\n", i, rc);
  nvmlPciInfoV1_t remote_v1{};
  rc = NVML(nvmlDeviceGetNvLinkRemotePciInfo)(d, 0, &remote_v1);
  printf("nvlink_pci_v1%u %d\n", i, rc);
  // MNNVL (NCCL's init.cc): fabric info v2 with the state preset to
  // NOT_SUPPORTED; platform info is asked only when there is a fabric.
  unsigned fabric[128];
  memset(fabric, 0, sizeof fabric);
  fabric[0] = (2u << 24) | 0x1c4;  // a version word; rgpu only reads it
  rc = NVML(nvmlDeviceGetGpuFabricInfoV)(d, fabric);
  printf("fabric%u %d\n", i, rc);
  unsigned platform[128];
  memset(platform, 0, sizeof platform);
  platform[0] = (2u << 24) | 0x118;
  rc = NVML(nvmlDeviceGetPlatformInfo)(d, platform);
  printf("platform%u %d\n", i, rc);
  rc = NVML(nvmlDeviceGetPlatformInfo)(d, nullptr);
  printf("platform_null%u %d\n", i, rc);
  char serial[64];
  rc = NVML(nvmlDeviceGetSerial)(d, serial, sizeof serial);
  printf("serial%u %d\n", i, rc);
  // The PCIe link, as XLA and nvidia-smi read it.
  const struct {
    const char* key;
    nvmlReturn_t (*fn)(nvmlDevice_t, unsigned*);
  } pcie[] = {{"pcie_gen", NVML(nvmlDeviceGetCurrPcieLinkGeneration)},
              {"pcie_max_gen", NVML(nvmlDeviceGetMaxPcieLinkGeneration)},
              {"pcie_gpu_max_gen", NVML(nvmlDeviceGetGpuMaxPcieLinkGeneration)},
              {"pcie_width", NVML(nvmlDeviceGetCurrPcieLinkWidth)},
              {"pcie_max_width", NVML(nvmlDeviceGetMaxPcieLinkWidth)},
              {"pcie_speed", NVML(nvmlDeviceGetPcieSpeed)},
              {"pcie_max_speed", NVML(nvmlDeviceGetPcieLinkMaxSpeed)}};
  for (const auto& p : pcie) {
    value = 0;
    rc = p.fn(d, &value);
    printf("%s%u %d %u\n", p.key, i, rc, value);
  }
  rc = NVML(nvmlDeviceGetCurrPcieLinkWidth)(d, nullptr);
  printf("pcie_null%u %d\n", i, rc);
  unsigned mig = 99, mig_pending = 99;
  rc = NVML(nvmlDeviceGetMigMode)(d, &mig, &mig_pending);
  printf("mig%u %d %u %u\n", i, rc, mig, mig_pending);
  // Field values: PCIe counters (from the GPU host), link counts (none
  // through rgpu), a field rgpu does not answer (memory temperature, 82).
  nvmlFieldValue_t fv[5];
  memset(fv, 0xab, sizeof fv);
  const unsigned ids[5] = {NVML_FI_DEV_PCIE_COUNT_TX_BYTES, NVML_FI_DEV_C2C_LINK_COUNT, 82,
                           NVML_FI_DEV_PCIE_REPLAY_COUNTER, NVML_FI_DEV_NVLINK_LINK_COUNT};
  for (int f = 0; f < 5; ++f) {
    fv[f].fieldId = ids[f];
    fv[f].scopeId = 0;
  }
  rc = NVML(nvmlDeviceGetFieldValues)(d, 5, fv);
  printf("fields%u %d", i, rc);
  for (int f = 0; f < 5; ++f)
    printf(" %u:%d:%d:%llu:%d", fv[f].fieldId, fv[f].nvmlReturn, fv[f].valueType, fv[f].value.ullVal,
           fv[f].timestamp > 1600000000000000LL);
  printf("\n");
  rc = NVML(nvmlDeviceGetFieldValues)(d, 1, nullptr);
  printf("fields_null%u %d\n", i, rc);
}

// nvmlDeviceGetP2PStatus for every ordered pair (a device with itself
// included) and every caps index: "p2p_A_B RC:STATUS x5" (READ, WRITE,
// NVLINK, ATOMICS, PCI). Then NCCL's own loop (misc/nvmlwrap.cc,
// ncclNvmlEnsureInitialized), which fails NCCL's init on the first error:
// "nccl_p2p_init 0", or "nccl_p2p_init RC A B INDEX" where it stopped.
void PrintP2P(void* nvml, unsigned count) {
  auto p2p = NVML(nvmlDeviceGetP2PStatus);
  std::vector<nvmlDevice_t> devs(count);
  for (unsigned i = 0; i < count; ++i) NVML(nvmlDeviceGetHandleByIndex_v2)(i, &devs[i]);
  for (unsigned a = 0; a < count; ++a) {
    for (unsigned b = 0; b < count; ++b) {
      std::string line = "p2p_" + std::to_string(a) + "_" + std::to_string(b);
      for (int index = NVML_P2P_CAPS_INDEX_READ; index <= NVML_P2P_CAPS_INDEX_PCI; ++index) {
        nvmlGpuP2PStatus_t st = NVML_P2P_STATUS_UNKNOWN;
        const int rc = p2p(devs[a], devs[b], static_cast<nvmlGpuP2PCapsIndex_t>(index), &st);
        line += " " + std::to_string(rc) + ":" + std::to_string(st);
      }
      printf("%s\n", line.c_str());
    }
  }
  std::string nccl = "0";
  for (unsigned a = 0; a < count && nccl == "0"; ++a) {
    for (unsigned b = 0; b < count && nccl == "0"; ++b) {
      for (nvmlGpuP2PCapsIndex_t index : {NVML_P2P_CAPS_INDEX_READ, NVML_P2P_CAPS_INDEX_WRITE}) {
        nvmlGpuP2PStatus_t st;
        const int rc = p2p(devs[a], devs[b], index, &st);
        if (rc != NVML_SUCCESS) {
          nccl = std::to_string(rc) + " " + std::to_string(a) + " " + std::to_string(b) + " " +
                 std::to_string(index);
          break;
        }
      }
    }
  }
  printf("nccl_p2p_init %s\n", nccl.c_str());
  nvmlGpuP2PStatus_t st = NVML_P2P_STATUS_UNKNOWN;
  int rc = p2p(devs[0], devs[0], NVML_P2P_CAPS_INDEX_UNKNOWN, &st);
  printf("p2p_bad_index %d\n", rc);
  rc = p2p(devs[0], devs[0], NVML_P2P_CAPS_INDEX_READ, nullptr);
  printf("p2p_null %d\n", rc);
  rc = p2p(devs[0], nullptr, NVML_P2P_CAPS_INDEX_READ, &st);
  printf("p2p_null_device %d\n", rc);
  rc = p2p(devs[0], reinterpret_cast<nvmlDevice_t>(&st), NVML_P2P_CAPS_INDEX_READ, &st);
  printf("p2p_bogus_device %d\n", rc);
}

// Confidential computing, as NCCL (misc/nvmlwrap.cc ncclNvmlGetCCStatus),
// vLLM and TensorRT-LLM ask: "cc_* RC FIELDS...".
void PrintConfCompute(void* nvml) {
  nvmlConfComputeSystemState_t state{7, 7, 7};
  int rc = NVML(nvmlSystemGetConfComputeState)(&state);
  printf("cc_state %d %u %u %u\n", rc, state.environment, state.ccFeature, state.devToolsMode);
  rc = NVML(nvmlSystemGetConfComputeState)(nullptr);
  printf("cc_state_null %d\n", rc);
  nvmlSystemConfComputeSettings_t settings{nvmlSystemConfComputeSettings_v1, 7, 7, 7, 7};
  rc = NVML(nvmlSystemGetConfComputeSettings)(&settings);
  printf("cc_settings %d 0x%x %u %u %u %u\n", rc, settings.version, settings.environment,
         settings.ccFeature, settings.devToolsMode, settings.multiGpuMode);
  // Without a version, and with a version this NVML does not know (a v2
  // struct of 24 bytes): refused, nothing written.
  for (unsigned version : {0u, (2u << 24) | 24u}) {
    nvmlSystemConfComputeSettings_t bad{version, 7, 7, 7, 7};
    rc = NVML(nvmlSystemGetConfComputeSettings)(&bad);
    printf("cc_settings_version_0x%x %d %u %u %u %u\n", version, rc, bad.environment,
           bad.ccFeature, bad.devToolsMode, bad.multiGpuMode);
  }
  rc = NVML(nvmlSystemGetConfComputeSettings)(nullptr);
  printf("cc_settings_null %d\n", rc);
  nvmlConfComputeSystemCaps_t caps{7, 7};
  rc = NVML(nvmlSystemGetConfComputeCapabilities)(&caps);
  printf("cc_caps %d %u %u\n", rc, caps.cpuCaps, caps.gpusCaps);
}

// Processes on device 0: "KEY RET COUNT [PID USED GPU_INSTANCE]...".
void PrintProcesses(void* nvml, const char* key) {
  nvmlDevice_t d = nullptr;
  NVML(nvmlDeviceGetHandleByIndex_v2)(0, &d);
  unsigned count = 0;
  const int sizing = NVML(nvmlDeviceGetComputeRunningProcesses_v3)(d, &count, nullptr);
  printf("%s_sizing %d %u\n", key, sizing, count);
  nvmlProcessInfo_t infos[8] = {};
  unsigned n = 8;
  const int rc = NVML(nvmlDeviceGetComputeRunningProcesses_v3)(d, &n, infos);
  printf("%s %d %u", key, rc, n);
  for (unsigned i = 0; i < n && i < 8; ++i)
    printf(" %u %llu %u", infos[i].pid, infos[i].usedGpuMemory, infos[i].gpuInstanceId);
  printf("\n");
}

int Probe() {
  printf("pid %d\n", static_cast<int>(getpid()));
  void* nvml = dlopen("libnvidia-ml.so.1", RTLD_NOW | RTLD_LOCAL);
  if (nvml == nullptr) {
    printf("dlopen_failed %s\n", dlerror());
    return 2;
  }
  printf("nvml_path %s\n", LoadedPath(nvml).c_str());
  printf("error_string_3 %s\n", NVML(nvmlErrorString)(NVML_ERROR_NOT_SUPPORTED));
  printf("error_string_9 %s\n", NVML(nvmlErrorString)(NVML_ERROR_DRIVER_NOT_LOADED));
  int rc = 0;
  unsigned count = 0;
  rc = NVML(nvmlDeviceGetCount_v2)(&count);
  printf("count_before_init %d\n", rc);
  nvmlGpuP2PStatus_t p2p_status;
  rc = NVML(nvmlDeviceGetP2PStatus)(nullptr, nullptr, NVML_P2P_CAPS_INDEX_READ, &p2p_status);
  printf("p2p_before_init %d\n", rc);
  nvmlSystemConfComputeSettings_t cc{nvmlSystemConfComputeSettings_v1, 0, 0, 0, 0};
  rc = NVML(nvmlSystemGetConfComputeSettings)(&cc);
  printf("cc_settings_before_init %d\n", rc);
  const double t0 = NowMs();
  rc = NVML(nvmlInit_v2)();
  printf("init %d %.0f\n", rc, NowMs() - t0);
  if (rc != NVML_SUCCESS) {
    rc = NVML(nvmlInit_v2)();
    printf("init_again %d\n", rc);
    return 0;
  }
  rc = NVML(nvmlDeviceGetCount_v2)(&count);
  printf("count %d %u\n", rc, count);
  // NVIDIA's NVML trusts its handles (it crashes on this one): the probe can
  // be pointed at it for comparison with RGPU_PROBE_TRUSTING_NVML=1.
  if (getenv("RGPU_PROBE_TRUSTING_NVML") == nullptr) {
    nvmlDevice_t bogus = reinterpret_cast<nvmlDevice_t>(&count);
    char buf[96];
    rc = NVML(nvmlDeviceGetName)(bogus, buf, sizeof buf);
    printf("bogus_handle %d\n", rc);
  }
  nvmlDevice_t none = nullptr;
  rc = NVML(nvmlDeviceGetHandleByIndex_v2)(count, &none);
  printf("handle_out_of_range %d\n", rc);
  rc = NVML(nvmlDeviceGetHandleByUUID)("GPU-00000000-0000-0000-0000-000000000000", &none);
  printf("by_uuid_unknown %d\n", rc);
  for (unsigned i = 0; i < count; ++i) PrintDevice(nvml, i);
  PrintP2P(nvml, count);
  PrintConfCompute(nvml);
  char version[96] = {};
  rc = NVML(nvmlSystemGetDriverVersion)(version, sizeof version);
  printf("driver_version %d %s\n", rc, version);
  rc = NVML(nvmlSystemGetNVMLVersion)(version, sizeof version);
  printf("nvml_version %d %s\n", rc, version);
  int cuda_version = 0;
  rc = NVML(nvmlSystemGetCudaDriverVersion_v2)(&cuda_version);
  printf("cuda_version %d %d\n", rc, cuda_version);
  PrintProcesses(nvml, "procs_before");

  // Allocate through the driver API in this process: NVML must see it.
  void* cuda = dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL | RTLD_NOLOAD);
  printf("libcuda_already_loaded %d\n", cuda != nullptr);
  if (cuda == nullptr) cuda = dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
  auto cu_device_get_count = Sym<CUresult (*)(int*)>(cuda, "cuDeviceGetCount");
  auto cu_device_get = Sym<CUresult (*)(CUdevice*, int)>(cuda, "cuDeviceGet");
  auto cu_retain = Sym<CUresult (*)(CUcontext*, CUdevice)>(cuda, "cuDevicePrimaryCtxRetain");
  auto cu_set_current = Sym<CUresult (*)(CUcontext)>(cuda, "cuCtxSetCurrent");
  auto cu_mem_alloc = Sym<CUresult (*)(CUdeviceptr*, size_t)>(cuda, "cuMemAlloc_v2");
  int cuda_count = 0;
  rc = cu_device_get_count(&cuda_count);
  printf("cuda_count %d %d\n", rc, cuda_count);
  CUdevice dev = 0;
  CUcontext ctx = nullptr;
  CUdeviceptr p = 0;
  CUresult r = cu_device_get(&dev, 0);
  if (r == CUDA_SUCCESS) r = cu_retain(&ctx, dev);
  if (r == CUDA_SUCCESS) r = cu_set_current(ctx);
  if (r == CUDA_SUCCESS) r = cu_mem_alloc(&p, 256u << 20);
  printf("alloc %d\n", r);
  nvmlDevice_t d = nullptr;
  NVML(nvmlDeviceGetHandleByIndex_v2)(0, &d);
  nvmlMemory_t mem{};
  rc = NVML(nvmlDeviceGetMemoryInfo)(d, &mem);
  printf("mem_after %d %llu %llu %llu\n", rc, mem.total, mem.free, mem.used);
  PrintProcesses(nvml, "procs_after");

  rc = NVML(nvmlShutdown)();
  printf("shutdown %d\n", rc);
  rc = NVML(nvmlDeviceGetCount_v2)(&count);
  printf("count_after_shutdown %d\n", rc);
  rc = NVML(nvmlShutdown)();
  printf("shutdown_again %d\n", rc);
  rc = NVML(nvmlInit_v2)();
  printf("reinit %d\n", rc);
  rc = NVML(nvmlDeviceGetCount_v2)(&count);
  printf("count_after_reinit %d\n", rc);
  printf("done\n");
  return 0;
}

// ---------------------------------------------------------------------------
// The tests (parent side).

using Facts = std::map<std::string, std::string>;

Facts Parse(const std::string& out) {
  Facts facts;
  std::istringstream lines(out);
  std::string line;
  while (std::getline(lines, line)) {
    const size_t space = line.find(' ');
    if (space == std::string::npos) {
      facts[line] = "";
    } else {
      facts[line.substr(0, space)] = line.substr(space + 1);
    }
  }
  return facts;
}

// The profile's total_mem, read the simple way.
uint64_t ProfileTotalMem() {
  std::ifstream in(RGPU_SIM_PROFILE);
  std::stringstream ss;
  ss << in.rdbuf();
  std::smatch m;
  const std::string text = ss.str();
  if (!std::regex_search(text, m, std::regex("\"total_mem\"\\s*:\\s*([0-9]+)"))) return 0;
  return std::stoull(m[1]);
}

std::vector<uint64_t> Numbers(const std::string& s) {
  std::vector<uint64_t> out;
  std::istringstream in(s);
  std::string word;
  while (in >> word) {
    try {
      out.push_back(std::stoull(word, nullptr, 0));
    } catch (...) {
      out.push_back(UINT64_MAX);
    }
  }
  return out;
}

RunResult RunProbe(const std::map<std::string, std::string>& env) {
  char self[4096] = {};
  const ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
  EXPECT_GT(n, 0);
  return RunProgram({self, "--probe"}, env, 60);
}

// CC off, as NVIDIA's NVML reports it on an H100 in normal mode; the
// settings' version word is checked.
void ExpectConfComputeOff(Facts& f) {
  EXPECT_EQ(f["cc_settings_before_init"], "1");
  EXPECT_EQ(f["cc_state"], "0 0 0 0") << "environment unavailable, feature disabled, devtools off";
  EXPECT_EQ(f["cc_state_null"], "2");
  EXPECT_EQ(f["cc_settings"], "0 0x1000014 0 0 0 0") << "version kept, multi-GPU mode none";
  EXPECT_EQ(f["cc_settings_version_0x0"], "25 7 7 7 7") << "NVML_ERROR_ARGUMENT_VERSION_MISMATCH";
  EXPECT_EQ(f["cc_settings_version_0x2000018"], "25 7 7 7 7");
  EXPECT_EQ(f["cc_settings_null"], "2");
  EXPECT_EQ(f["cc_caps"], "0 0 0") << "no CC CPU, GPUs not CC capable through rgpu";
}

TEST(Nvml, AnswersAboutTheSessionsGpus) {
  // Two GPUs in the pool; a session leases one of them.
  TestServer server({"--sim-gpus", "2"});
  const RunResult r = RunProbe(server.ClientEnv());
  const std::string all =
      "stdout:\n" + r.out + "\nstderr:\n" + r.err + "\nserver:\n" + server.Log();
  ASSERT_EQ(r.exit_code, 0) << all;
  Facts f = Parse(r.out);
  ASSERT_TRUE(f.count("done")) << all;

  EXPECT_EQ(f["nvml_path"].find(ClientLibDir()), 0u) << all;
  EXPECT_EQ(f["error_string_3"], "Not Supported");
  EXPECT_EQ(f["error_string_9"], "Driver Not Loaded");
  EXPECT_EQ(f["count_before_init"], "1");  // NVML_ERROR_UNINITIALIZED
  EXPECT_EQ(Numbers(f["init"])[0], 0u) << all;
  EXPECT_EQ(f["count"], "0 1") << "the session's GPUs";
  EXPECT_EQ(f["cuda_count"], "0 1") << "the same GPUs as the driver API";
  EXPECT_EQ(f["bogus_handle"], "2");
  EXPECT_EQ(f["handle_out_of_range"], "2");
  EXPECT_EQ(f["by_uuid_unknown"], "6");  // NVML_ERROR_NOT_FOUND

  const uint64_t total = ProfileTotalMem();
  ASSERT_GT(total, 0u);
  const std::regex uuid_re("0 GPU-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}");
  {  // device 0, the session's one GPU
    const char* i = "0";
    auto key = [i](const char* k) { return std::string(k) + i; };
    EXPECT_EQ(f[key("handle")], "0") << i;
    EXPECT_EQ(f[key("name")], "0 NVIDIA H200") << i;
    EXPECT_TRUE(std::regex_match(f[key("uuid")], uuid_re)) << f[key("uuid")];
    EXPECT_EQ(f[key("name_tiny")], "7") << "NVML_ERROR_INSUFFICIENT_SIZE";
    EXPECT_EQ(f[key("index")], std::string("0 ") + i);
    EXPECT_EQ(f[key("by_uuid")], "0 1");
    EXPECT_EQ(f[key("by_pci")], "0 1") << f[key("pci")];
    EXPECT_EQ(f[key("by_pci_legacy")], "0 1") << f[key("pci")];
    EXPECT_EQ(f[key("cc")], "0 9.0");
    const std::vector<uint64_t> mem = Numbers(f[key("mem")]);
    ASSERT_EQ(mem.size(), 4u) << f[key("mem")];
    EXPECT_EQ(mem[0], 0u);
    EXPECT_EQ(mem[1], total);
    EXPECT_EQ(mem[2] + mem[3], total);
    EXPECT_EQ(f[key("mem2_noversion")], "13");  // as NVIDIA's: NVML_ERROR_FUNCTION_NOT_FOUND
    const std::vector<uint64_t> mem2 = Numbers(f[key("mem2")]);
    ASSERT_EQ(mem2.size(), 5u);
    EXPECT_EQ(mem2[0], 0u);
    EXPECT_EQ(mem2[1], total);
    EXPECT_EQ(mem2[3] + mem2[4], total);
    EXPECT_EQ(f[key("util")], "0 0 0");
    EXPECT_EQ(Numbers(f[key("temp")])[0], 0u);
    EXPECT_EQ(Numbers(f[key("power")])[0], 0u);
    EXPECT_EQ(f[key("clock_sm")], "0 1980") << "the profile's clock rate, in MHz";
    EXPECT_EQ(f[key("max_clock_sm")], "0 1980");
    EXPECT_EQ(f[key("max_clock_mem")], "0 3201");
    EXPECT_EQ(f[key("nvlink_type")], "3");
    EXPECT_EQ(f[key("nvlink_pci")], "3");
    EXPECT_EQ(f[key("minor")], std::string("0 ") + i);
    EXPECT_EQ(f[key("nvlink_cap")], "3") << "no NVLink, as on a GPU without one";
    EXPECT_EQ(f[key("nvlink_cap_bad")], "2");
    EXPECT_EQ(f[key("nvlink_state")], "3");
    EXPECT_EQ(f[key("nvlink_pci_v1")], "3");
    EXPECT_EQ(f[key("fabric")], "3") << "no fabric: NCCL keeps its preset NOT_SUPPORTED state";
    EXPECT_EQ(f[key("platform")], "3") << "NVIDIA's NVML before Blackwell";
    EXPECT_EQ(f[key("platform_null")], "2");
    EXPECT_EQ(f[key("serial")], "3") << "an unimplemented NVML function";
    // The sim's H200 is on a PCIe Gen5 x16 link.
    EXPECT_EQ(f[key("pcie_gen")], "0 5");
    EXPECT_EQ(f[key("pcie_max_gen")], "0 5");
    EXPECT_EQ(f[key("pcie_gpu_max_gen")], "0 5");
    EXPECT_EQ(f[key("pcie_width")], "0 16");
    EXPECT_EQ(f[key("pcie_max_width")], "0 16");
    EXPECT_EQ(f[key("pcie_speed")], "0 32000");
    EXPECT_EQ(f[key("pcie_max_speed")], "0 5") << "NVML_PCIE_LINK_MAX_SPEED_32000MBPS";
    EXPECT_EQ(f[key("pcie_null")], "2");
    EXPECT_EQ(f[key("mig")], "0 0 0") << "NVML_DEVICE_MIG_DISABLE, current and pending";
    // "id:ret:type:value:timestamped": TX bytes and the replay counter (the
    // host's counters, 0 on sim, unsigned int as NVIDIA's 580 gives them);
    // C2C and NVLink link counts NOT_SUPPORTED (as NVIDIA's NVML on a PCIe
    // H100); memory temperature not answered.
    EXPECT_EQ(f[key("fields")],
              "0 197:0:1:0:1 170:3:1:0:1 82:3:1:0:1 94:0:1:0:1 91:3:1:0:1");
    EXPECT_EQ(f[key("fields_null")], "2");
  }
  // "0 00000000:00:06.0 0000:00:06.0 0 0 6 0x233510de": the profile's PCI address.
  const std::regex pci_re(
      "0 ([0-9A-F]{8}):([0-9A-F]{2}):([0-9A-F]{2})\\.0 ([0-9A-F]{4}):\\2:\\3\\.0 .* 0x233510de");
  EXPECT_TRUE(std::regex_match(f["pci0"], pci_re)) << f["pci0"];

  // P2P: a device with itself is OK for every index, so NCCL's init loop
  // (which failed with "nvmlDeviceGetP2PStatus(0,0,NVML_P2P_CAPS_INDEX_READ)
  // failed: Not Supported") passes.
  EXPECT_EQ(f["p2p_before_init"], "1");
  EXPECT_EQ(f["p2p_0_0"], "0:0 0:0 0:0 0:0 0:0");
  EXPECT_EQ(f["nccl_p2p_init"], "0") << all;
  EXPECT_EQ(f["p2p_bad_index"], "2");
  EXPECT_EQ(f["p2p_null"], "2");
  EXPECT_EQ(f["p2p_null_device"], "2");
  EXPECT_EQ(f["p2p_bogus_device"], "2");
  ExpectConfComputeOff(f);

  EXPECT_EQ(f["driver_version"], "0 580.159");
  EXPECT_EQ(f["nvml_version"], "0 13.580.159");
  EXPECT_EQ(f["cuda_version"], "0 13000");

  // The session's process is this process, with the memory it allocated.
  const uint64_t pid = std::stoull(f["pid"]);
  EXPECT_EQ(f["procs_before_sizing"], "7 1");  // NVML_ERROR_INSUFFICIENT_SIZE, one process
  EXPECT_EQ(f["alloc"], "0") << all;
  const std::vector<uint64_t> before = Numbers(f["mem0"]);
  const std::vector<uint64_t> after = Numbers(f["mem_after"]);
  ASSERT_EQ(after.size(), 4u) << f["mem_after"];
  EXPECT_EQ(after[0], 0u);
  EXPECT_EQ(after[1], total);
  EXPECT_GE(after[3], before[3] + (256u << 20)) << "used grows by the allocation";
  EXPECT_EQ(after[2] + after[3], total);
  const std::vector<uint64_t> procs = Numbers(f["procs_after"]);
  ASSERT_EQ(procs.size(), 5u) << f["procs_after"];
  EXPECT_EQ(procs[0], 0u);
  EXPECT_EQ(procs[1], 1u);
  EXPECT_EQ(procs[2], pid) << "reported under the client's own pid";
  EXPECT_GE(procs[3], 256u << 20);
  EXPECT_EQ(procs[4], 0xFFFFFFFFu) << "no MIG";

  EXPECT_EQ(f["libcuda_already_loaded"], "1") << "NVML shares the application's libcuda";
  EXPECT_EQ(f["shutdown"], "0");
  EXPECT_EQ(f["count_after_shutdown"], "1");
  EXPECT_EQ(f["shutdown_again"], "1");
  EXPECT_EQ(f["reinit"], "0");
  EXPECT_EQ(f["count_after_reinit"], "0");
  for (const char* name :
       {"nvmlDeviceGetFieldValues", "nvmlDeviceGetMigMode", "nvmlDeviceGetCurrPcieLinkGeneration",
        "nvmlDeviceGetCurrPcieLinkWidth", "nvmlDeviceGetP2PStatus", "nvmlDeviceGetNvLinkCapability",
        "nvmlDeviceGetNvLinkState", "nvmlDeviceGetPlatformInfo", "nvmlSystemGetConfComputeState",
        "nvmlSystemGetConfComputeSettings", "nvmlSystemGetConfComputeCapabilities"})
    EXPECT_EQ(r.err.find(std::string(name) + " is not supported"), std::string::npos) << r.err;
  const std::string unsupported = "nvmlDeviceGetSerial is not supported by rgpu";
  EXPECT_NE(r.err.find(unsupported), std::string::npos) << r.err;
  EXPECT_EQ(r.err.find(unsupported), r.err.rfind(unsupported)) << "logged once, by name:\n"
                                                               << r.err;
  EXPECT_TRUE(server.alive());
}

// A two-GPU session (RGPU_GPUS=2) asked what NCCL asks at communicator init:
// every pair's P2P status, from what the GPU host's driver says about peer
// access (the sim's GPUs can all reach each other, native atomics included).
TEST(Nvml, TwoGpuSessionAnswersP2PAsCudaPeers) {
  TestServer server({"--sim-gpus", "2"});
  auto env = server.ClientEnv();
  env["RGPU_GPUS"] = "2";
  const RunResult r = RunProbe(env);
  const std::string all =
      "stdout:\n" + r.out + "\nstderr:\n" + r.err + "\nserver:\n" + server.Log();
  ASSERT_EQ(r.exit_code, 0) << all;
  Facts f = Parse(r.out);
  ASSERT_TRUE(f.count("done")) << all;
  EXPECT_EQ(f["count"], "0 2") << all;
  for (const char* i : {"0", "1"}) {
    auto key = [i](const char* k) { return std::string(k) + i; };
    EXPECT_EQ(f[key("index")], std::string("0 ") + i);
    EXPECT_EQ(f[key("minor")], std::string("0 ") + i);
    EXPECT_EQ(f[key("by_pci")], "0 1") << f[key("pci")];
    EXPECT_EQ(f[key("by_uuid")], "0 1");
    EXPECT_EQ(f[key("nvlink_cap")], "3");
  }
  EXPECT_NE(f["pci0"], f["pci1"]);
  // READ, WRITE, NVLINK, ATOMICS, PCI: peers over PCIe as far as NVML says
  // (no NVLink through rgpu), OK with themselves.
  EXPECT_EQ(f["p2p_0_0"], "0:0 0:0 0:0 0:0 0:0");
  EXPECT_EQ(f["p2p_1_1"], "0:0 0:0 0:0 0:0 0:0");
  EXPECT_EQ(f["p2p_0_1"], "0:0 0:0 0:5 0:0 0:0") << "NVLINK: NVML_P2P_STATUS_NOT_SUPPORTED";
  EXPECT_EQ(f["p2p_1_0"], "0:0 0:0 0:5 0:0 0:0");
  EXPECT_EQ(f["nccl_p2p_init"], "0") << all;
  ExpectConfComputeOff(f);
  EXPECT_EQ(r.err.find("nvmlDeviceGetP2PStatus is not supported"), std::string::npos) << r.err;
}

TEST(Nvml, NoServerFailsInitWithDriverNotLoaded) {
  const std::map<std::string, std::string> env = {
      {"LD_LIBRARY_PATH", ClientLibDir()}, {"RGPU_SERVER", "127.0.0.1:9"}};  // nothing listens
  const RunResult r = RunProbe(env);
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  Facts f = Parse(r.out);
  const std::vector<uint64_t> init = Numbers(f["init"]);
  ASSERT_EQ(init.size(), 2u) << r.out;
  EXPECT_EQ(init[0], 9u) << "NVML_ERROR_DRIVER_NOT_LOADED";
  EXPECT_LT(init[1], 10000u) << "milliseconds";
  EXPECT_EQ(f["init_again"], "9") << "the failure is remembered, not retried forever";
  EXPECT_NE(r.err.find("cannot reach a GPU"), std::string::npos) << r.err;
  EXPECT_LT(r.seconds, 15);
}

}  // namespace
}  // namespace rgpu::testing

int main(int argc, char** argv) {
  if (argc > 1 && std::strcmp(argv[1], "--probe") == 0) return rgpu::testing::Probe();
  ::testing::InitGoogleTest(&argc, argv);
  return RUN_ALL_TESTS();
}
