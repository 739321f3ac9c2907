#include "nvml/nvml_state.h"

#include <dlfcn.h>
#include <limits.h>
#include <stdlib.h>
#include <strings.h>

#include <atomic>
#include <cstdio>
#include <cstring>

#include "common/log.h"

// Marks this file as rgpu's (see backend/cuda/cuda_backend.h,
// kClientMarkerSection): a worker looking for the GPU host's real NVML
// refuses a library that carries this section. Not exported; kept by strip.
__attribute__((section(".rgpu_client"), used)) static const char kRgpuNvmlMarker[] =
    "rgpu nvml library";

namespace rgpu::nvml {
namespace {

static_assert(int{RGPU_NVML_BRIDGE_SUCCESS} == int{NVML_SUCCESS});
static_assert(int{RGPU_NVML_BRIDGE_UNINITIALIZED} == int{NVML_ERROR_UNINITIALIZED});
static_assert(int{RGPU_NVML_BRIDGE_INVALID_ARGUMENT} == int{NVML_ERROR_INVALID_ARGUMENT});
static_assert(int{RGPU_NVML_BRIDGE_NOT_SUPPORTED} == int{NVML_ERROR_NOT_SUPPORTED});
static_assert(int{RGPU_NVML_BRIDGE_GPU_IS_LOST} == int{NVML_ERROR_GPU_IS_LOST});
static_assert(int{RGPU_NVML_BRIDGE_UNKNOWN} == int{NVML_ERROR_UNKNOWN});

// The driver functions we need from libcuda.so.1 (cuda.h is not included:
// this library shares no header with the driver beyond the bridge's).
using CuInitFn = int (*)(unsigned flags);
using CuGetExportTableFn = int (*)(const void** table, const void* uuid);
constexpr int kCudaErrorNotInitialized = 3;

std::mutex g_init_mu;
std::atomic<int> g_refs{0};
NvmlState* g_state = nullptr;  // GUARDED_BY(g_init_mu) for writes; leaked on purpose

nvmlDevice_st g_devices[kMaxDevices];  // handles: &g_devices[i]

std::string DirOf(const std::string& path) {
  const size_t slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  return slash == 0 ? "/" : path.substr(0, slash);
}

// The directory this library was loaded from, as the loader named it, then
// with symlinks resolved (the two differ when a link points elsewhere).
std::vector<std::string> OwnDirs() {
  std::vector<std::string> dirs;
  Dl_info info{};
  if (dladdr(reinterpret_cast<void*>(&ReportUnsupported), &info) == 0 || info.dli_fname == nullptr)
    return dirs;
  dirs.push_back(DirOf(info.dli_fname));
  char real[PATH_MAX];
  if (realpath(info.dli_fname, real) != nullptr && DirOf(real) != dirs[0])
    dirs.push_back(DirOf(real));
  return dirs;
}

// rgpu's libcuda.so.1 beside this library; nullptr (and *why) if none loads.
void* OpenLibcuda(std::string* why) {
  std::vector<std::string> dirs = OwnDirs();
  if (dirs.empty()) {
    *why = "cannot tell where libnvidia-ml.so.1 was loaded from (dladdr failed)";
    return nullptr;
  }
  for (const std::string& dir : dirs) {
    const std::string path = dir + "/libcuda.so.1";
    // The copy the application already uses, if it is this file ...
    if (void* h = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL | RTLD_NOLOAD)) return h;
    // ... else load it (a later dlopen("libcuda.so.1") finds it by soname).
    if (void* h = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL)) return h;
    const char* e = dlerror();
    *why += (why->empty() ? "" : "; ") + std::string(e ? e : path + ": dlopen failed");
  }
  return nullptr;
}

bool ParsePciBusId(const char* s, unsigned* domain, unsigned* bus, unsigned* device) {
  unsigned d = 0, b = 0, dev = 0, fn = 0;
  int used = 0;
  if (sscanf(s, "%x:%x:%x.%x%n", &d, &b, &dev, &fn, &used) == 4 && s[used] == 0) {
  } else if (sscanf(s, "%x:%x.%x%n", &b, &dev, &fn, &used) == 3 && s[used] == 0) {
    d = 0;
  } else {
    return false;
  }
  *domain = d;
  *bus = b;
  *device = dev;
  return true;
}

}  // namespace

nvmlReturn_t ReportUnsupported(const char* name) {
  LogOnce(LogLevel::kWarn, name, "%s is not supported by rgpu", name);
  return NVML_ERROR_NOT_SUPPORTED;
}

std::string FormatUuid(const uint8_t (&b)[16]) {
  char out[48];
  snprintf(out, sizeof out,
           "GPU-%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0], b[1],
           b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14],
           b[15]);
  return out;
}

nvmlReturn_t CopyOut(const std::string& s, char* buf, unsigned length) {
  if (buf == nullptr) return NVML_ERROR_INVALID_ARGUMENT;
  if (s.size() + 1 > length) return NVML_ERROR_INSUFFICIENT_SIZE;
  std::memcpy(buf, s.c_str(), s.size() + 1);
  return NVML_SUCCESS;
}

NvmlState* NvmlState::Get() {
  if (g_refs.load(std::memory_order_acquire) <= 0) return nullptr;
  std::lock_guard<std::mutex> lock(g_init_mu);
  return g_state;
}

nvmlReturn_t NvmlState::Init(unsigned flags) {
  std::lock_guard<std::mutex> lock(g_init_mu);
  (void)flags;  // NO_GPUS / NO_ATTACH: nothing to attach; zero GPUs is not an error here
  if (g_state == nullptr) {
    SetLogTag("rgpu-nvml");
    auto* s = new NvmlState;
    nvmlReturn_t r = s->Load();
    if (r != NVML_SUCCESS) {
      delete s;
      return r;
    }
    g_state = s;
  }
  g_refs.fetch_add(1, std::memory_order_acq_rel);
  return NVML_SUCCESS;
}

nvmlReturn_t NvmlState::Shutdown() {
  std::lock_guard<std::mutex> lock(g_init_mu);
  if (g_refs.load(std::memory_order_acquire) <= 0) return NVML_ERROR_UNINITIALIZED;
  g_refs.fetch_sub(1, std::memory_order_acq_rel);
  return NVML_SUCCESS;
}

nvmlReturn_t NvmlState::Load() {
  std::string why;
  void* cuda = OpenLibcuda(&why);
  if (cuda == nullptr) {
    LogOnce(LogLevel::kError, "nvml-no-libcuda", "nvmlInit: cannot load rgpu's libcuda.so.1: %s",
            why.c_str());
    return NVML_ERROR_LIBRARY_NOT_FOUND;
  }
  auto cu_init = reinterpret_cast<CuInitFn>(dlsym(cuda, "cuInit"));
  auto get_table = reinterpret_cast<CuGetExportTableFn>(dlsym(cuda, "cuGetExportTable"));
  if (cu_init == nullptr || get_table == nullptr) {
    LogOnce(LogLevel::kError, "nvml-bad-libcuda",
            "nvmlInit: libcuda.so.1 beside libnvidia-ml.so.1 has no cuInit/cuGetExportTable");
    return NVML_ERROR_LIBRARY_NOT_FOUND;
  }
  // The client logs why (e.g. "cuInit: cannot reach a GPU: connect ...").
  if (int r = cu_init(0); r != 0) {
    LogOnce(LogLevel::kError, "nvml-cuinit", "nvmlInit: cuInit failed with CUresult %d%s", r,
            r == kCudaErrorNotInitialized ? " (refused by the GPU server)" : "");
    return NVML_ERROR_DRIVER_NOT_LOADED;
  }
  static const uint8_t kUuid[16] = RGPU_NVML_BRIDGE_UUID_BYTES;
  const void* table = nullptr;
  if (get_table(&table, kUuid) != 0 || table == nullptr) {
    LogOnce(LogLevel::kError, "nvml-no-bridge",
            "nvmlInit: the libcuda.so.1 beside libnvidia-ml.so.1 is not rgpu's (no NVML bridge)");
    return NVML_ERROR_LIBRARY_NOT_FOUND;
  }
  const void* const* slots = static_cast<const void* const*>(table);
  const auto size = reinterpret_cast<uintptr_t>(slots[RGPU_NVML_BRIDGE_SLOT_SIZE]);
  auto abi = reinterpret_cast<RgpuNvmlBridgeAbiFn>(slots[RGPU_NVML_BRIDGE_SLOT_ABI]);
  if (size < RGPU_NVML_BRIDGE_SLOTS * sizeof(void*) || abi == nullptr ||
      abi() != RGPU_NVML_BRIDGE_ABI) {
    LogOnce(LogLevel::kError, "nvml-abi",
            "nvmlInit: libcuda.so.1 and libnvidia-ml.so.1 come from different rgpu builds "
            "(NVML bridge ABI %u, table of %zu bytes; expected ABI %u)",
            abi != nullptr ? abi() : 0u, static_cast<size_t>(size), RGPU_NVML_BRIDGE_ABI);
    return NVML_ERROR_LIB_RM_VERSION_MISMATCH;
  }
  auto count_fn =
      reinterpret_cast<RgpuNvmlDeviceCountFn>(slots[RGPU_NVML_BRIDGE_SLOT_DEVICE_COUNT]);
  auto facts_fn =
      reinterpret_cast<RgpuNvmlDeviceFactsFn>(slots[RGPU_NVML_BRIDGE_SLOT_DEVICE_FACTS]);
  query_ = reinterpret_cast<RgpuNvmlQueryFn>(slots[RGPU_NVML_BRIDGE_SLOT_QUERY]);
  uint32_t count = 0;
  if (int r = count_fn(&count); r != 0) return static_cast<nvmlReturn_t>(r);
  if (count > kMaxDevices) {
    RGPU_LOG_WARN("nvmlInit: the session has %u GPUs; NVML lists the first %u", count, kMaxDevices);
    count = kMaxDevices;
  }
  facts_.resize(count);
  for (uint32_t i = 0; i < count; ++i) {
    if (int r = facts_fn(i, &facts_[i], sizeof facts_[i]); r != 0)
      return static_cast<nvmlReturn_t>(r);
    facts_[i].name[sizeof facts_[i].name - 1] = 0;
    facts_[i].pci_bus_id[sizeof facts_[i].pci_bus_id - 1] = 0;
    uuids_.push_back(FormatUuid(facts_[i].uuid));
    g_devices[i].index = i;
    cuda_driver_version_ = facts_[i].cuda_driver_version;
  }
  RGPU_LOG_DEBUG("nvmlInit: %u GPU(s) through rgpu's libcuda.so.1", count);
  return NVML_SUCCESS;
}

nvmlDevice_t NvmlState::handle(uint32_t index) const { return &g_devices[index]; }

bool NvmlState::IndexOf(nvmlDevice_t device, uint32_t* index) const {
  if (device == nullptr) return false;
  const uintptr_t p = reinterpret_cast<uintptr_t>(device);
  const uintptr_t base = reinterpret_cast<uintptr_t>(&g_devices[0]);
  if (p < base || (p - base) % sizeof(nvmlDevice_st) != 0) return false;
  const uintptr_t i = (p - base) / sizeof(nvmlDevice_st);
  if (i >= device_count()) return false;
  *index = static_cast<uint32_t>(i);
  return true;
}

bool NvmlState::FindPciBusId(const char* bus_id, uint32_t* index) const {
  unsigned domain = 0, bus = 0, device = 0;
  if (bus_id == nullptr || !ParsePciBusId(bus_id, &domain, &bus, &device)) return false;
  for (uint32_t i = 0; i < device_count(); ++i) {
    unsigned d = 0, b = 0, dev = 0;
    if (!ParsePciBusId(facts_[i].pci_bus_id, &d, &b, &dev)) {
      d = static_cast<unsigned>(facts_[i].pci_domain);
      b = static_cast<unsigned>(facts_[i].pci_bus);
      dev = static_cast<unsigned>(facts_[i].pci_device);
    }
    if (d == domain && b == bus && dev == device) {
      *index = i;
      return true;
    }
  }
  return false;
}

bool NvmlState::FindUuid(const char* uuid, uint32_t* index) const {
  if (uuid == nullptr) return false;
  for (uint32_t i = 0; i < device_count(); ++i) {
    if (strcasecmp(uuid, uuids_[i].c_str()) == 0) {
      *index = i;
      return true;
    }
  }
  return false;
}

nvmlReturn_t NvmlState::Query(uint32_t index, uint32_t what, RgpuNvmlLive* out) const {
  return static_cast<nvmlReturn_t>(query_(index, what, out, sizeof *out));
}

nvmlReturn_t NvmlState::DriverVersion(std::string* out) {
  std::lock_guard<std::mutex> lock(version_mu_);
  if (driver_version_.empty()) {
    if (device_count() == 0) return NVML_ERROR_NOT_SUPPORTED;  // the query names a device
    RgpuNvmlLive live;
    if (nvmlReturn_t r = Query(0, RGPU_NVML_QUERY_DRIVER_VERSION, &live); r != NVML_SUCCESS)
      return r;
    live.driver_version[sizeof live.driver_version - 1] = 0;
    driver_version_ = live.driver_version;
  }
  *out = driver_version_;
  return NVML_SUCCESS;
}

}  // namespace rgpu::nvml
