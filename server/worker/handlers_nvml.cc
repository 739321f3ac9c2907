// Handler: NvmlQuery (calls.spec id 60), the live facts behind rgpu's
// libnvidia-ml.so.1 on the client (client/nvml_bridge.h, proto/nvml_query.h).
//
// `cuda` backend: the answer comes from the GPU host's real NVML, loaded
// by the warm worker before its session (nvml_preload.h), else on the first
// query, and kept for the worker's life. The session's
// ordinal is mapped to the NVML device by the PCI bus id the worker's own
// driver reports (cuDeviceGetPCIBusId), else by UUID: NVML ignores
// CUDA_VISIBLE_DEVICES, so NVML's index is not the session's ordinal.
//
// `sim` backend: plausible values are synthesized. Memory used is the sum of
// this session's allocations (Session::bytes_allocated(); with several sim
// GPUs it is counted on each, as the session does not track which device an
// allocation is on), utilization 0, a fixed temperature and power, clocks
// from the profile's attributes, one process: this worker, and for the
// H100/H200 profiles a PCIe Gen5 x16 link whose counters read 0.
//
// Processes: the worker cannot know the client's pid (it is only in the
// handshake identity, on the supervisor's side), so it reports NVML's list
// with the entries that are this worker flagged `is_session`; the client
// reports those under its own pid (client/nvml_bridge.cc).
//
// Which NVML is loaded: first the libnvidia-ml.so.1 beside the real libcuda
// the backend loaded, then the usual driver directories, then the loader's
// search. A library that is rgpu's own (it carries the ELF section
// backend::kClientMarkerSection, or sits in rgpu's client directory:
// $RGPU_CLIENT_LIB_DIR or <exe dir>/../lib) is refused after checking the file
// dlopen actually resolved (link map, realpath): ours would ask this worker's
// client library, i.e. nobody. Without a usable NVML, every query answers
// NVML_ERROR_NOT_SUPPORTED (logged once with the reasons).
//
// Threading: called from the worker's request thread only; the NVML state is
// built once behind a function-local static.
#include <dlfcn.h>
#include <limits.h>
#include <link.h>
#include <stdlib.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <iterator>
#include <string>
#include <vector>

#include "backend/cuda/cuda_backend.h"
#include "common/log.h"
#include "nvml/nvml_types.h"
#include "proto/nvml_query.h"
#include "server/worker/nvml_preload.h"
#include "server/worker/handlers.gen.h"
#include "server/worker/session.h"

namespace rgpu::worker {
namespace {

using proto::NvmlAnswer;
using proto::NvmlWhat;

// The driver the sim profile was recorded with (data/driver/*-580.159-*).
constexpr char kSimDriverVersion[] = "580.159";
constexpr uint32_t kSimTemperatureC = 35;
constexpr uint32_t kSimPowerMw = 75000;

// ---------------------------------------------------------------------------
// The real NVML.

struct RealNvml {
  bool ok = false;
  std::string why;  // when !ok: every candidate and why it was refused
  std::string path;
  nvmlReturn_t (*Init)() = nullptr;
  nvmlReturn_t (*ByPciBusId)(const char*, nvmlDevice_t*) = nullptr;
  nvmlReturn_t (*ByUuid)(const char*, nvmlDevice_t*) = nullptr;
  nvmlReturn_t (*MemoryInfo)(nvmlDevice_t, nvmlMemory_t*) = nullptr;
  nvmlReturn_t (*MemoryInfoV2)(nvmlDevice_t, nvmlMemory_v2_t*) = nullptr;
  nvmlReturn_t (*Utilization)(nvmlDevice_t, nvmlUtilization_t*) = nullptr;
  nvmlReturn_t (*Temperature)(nvmlDevice_t, nvmlTemperatureSensors_t, unsigned*) = nullptr;
  nvmlReturn_t (*Power)(nvmlDevice_t, unsigned*) = nullptr;
  nvmlReturn_t (*Clock)(nvmlDevice_t, nvmlClockType_t, unsigned*) = nullptr;
  nvmlReturn_t (*MaxClock)(nvmlDevice_t, nvmlClockType_t, unsigned*) = nullptr;
  nvmlReturn_t (*ProcessesV3)(nvmlDevice_t, unsigned*, nvmlProcessInfo_t*) = nullptr;
  nvmlReturn_t (*ProcessesV2)(nvmlDevice_t, unsigned*, nvmlProcessInfo_t*) = nullptr;
  nvmlReturn_t (*ProcessesV1)(nvmlDevice_t, unsigned*, nvmlProcessInfo_v1_t*) = nullptr;
  nvmlReturn_t (*DriverVersion)(char*, unsigned) = nullptr;
  nvmlReturn_t (*PciInfoV3)(nvmlDevice_t, nvmlPciInfo_t*) = nullptr;
  // By RGPU_NVML_PCIE_* (client/nvml_bridge.h): the PCIe link's values.
  nvmlReturn_t (*PcieValue[proto::kNvmlPcieValues])(nvmlDevice_t, unsigned*) = {};
  nvmlReturn_t (*FieldValues)(nvmlDevice_t, int, nvmlFieldValue_t*) = nullptr;
  std::vector<nvmlDevice_t> by_ordinal;  // by backend ordinal, filled lazily; nullptr: not mapped yet
};

std::string RealPath(const std::string& path) {
  char buf[PATH_MAX];
  return ::realpath(path.c_str(), buf) != nullptr ? std::string(buf) : std::string();
}

std::string DirName(const std::string& path) {
  const size_t slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  return slash == 0 ? "/" : path.substr(0, slash);
}

// Directories where rgpu's client libraries live (see the file comment).
std::vector<std::string> ClientDirs() {
  std::vector<std::string> dirs;
  if (const char* dir = getenv("RGPU_CLIENT_LIB_DIR"); dir != nullptr && *dir != 0) {
    if (std::string d = RealPath(dir); !d.empty()) dirs.push_back(d);
  }
  if (std::string exe = RealPath("/proc/self/exe"); !exe.empty()) {
    if (std::string d = RealPath(DirName(exe) + "/../lib"); !d.empty()) dirs.push_back(d);
  }
  return dirs;
}

// OK unless `file` (realpath'd) is rgpu's own NVML library.
Status CheckNotRgpuNvml(const std::string& file) {
  if (backend::HasClientMarkerSection(file))
    return Status::Invalid(file + " is rgpu's NVML library (ELF section " +
                           backend::kClientMarkerSection + "), not NVIDIA's");
  const std::string dir = DirName(file);
  for (const std::string& client_dir : ClientDirs()) {
    if (dir == client_dir)
      return Status::Invalid(file + " is in rgpu's client directory " + client_dir);
  }
  return {};
}

std::string LoadedFile(void* handle, const std::string& requested) {
  struct link_map* map = nullptr;
  std::string name = requested;
  if (dlinfo(handle, RTLD_DI_LINKMAP, &map) == 0 && map != nullptr && map->l_name != nullptr &&
      map->l_name[0] != 0) {
    name = map->l_name;
  }
  std::string real = RealPath(name);
  return real.empty() ? name : real;
}

std::vector<std::string> Candidates(const backend::DriverTable& d) {
  std::vector<std::string> out;
  Dl_info info{};
  if (d.cuInit != nullptr && dladdr(reinterpret_cast<void*>(d.cuInit), &info) != 0 && info.dli_fname != nullptr &&
      info.dli_fname[0] == '/') {
    out.push_back(DirName(info.dli_fname) + "/libnvidia-ml.so.1");
  }
  for (const char* p :
       {"/usr/local/nvidia/lib64/libnvidia-ml.so.1", "/usr/lib/x86_64-linux-gnu/libnvidia-ml.so.1",
        "/usr/lib64/libnvidia-ml.so.1", "libnvidia-ml.so.1"}) {
    out.push_back(p);
  }
  return out;
}

template <class F>
void Sym(void* handle, const char* name, F* out) {
  *out = reinterpret_cast<F>(dlsym(handle, name));
}

Status LoadOne(const std::string& path, RealNvml* n) {
  void* handle = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (handle == nullptr) {
    const char* e = dlerror();
    return Status::Invalid("dlopen " + path + ": " + (e ? e : "?"));
  }
  const std::string file = LoadedFile(handle, path);
  if (Status s = CheckNotRgpuNvml(file); !s.ok()) {
    dlclose(handle);
    return s;
  }
  Sym(handle, "nvmlInit_v2", &n->Init);
  Sym(handle, "nvmlDeviceGetHandleByPciBusId_v2", &n->ByPciBusId);
  Sym(handle, "nvmlDeviceGetHandleByUUID", &n->ByUuid);
  Sym(handle, "nvmlDeviceGetMemoryInfo", &n->MemoryInfo);
  Sym(handle, "nvmlDeviceGetMemoryInfo_v2", &n->MemoryInfoV2);
  Sym(handle, "nvmlDeviceGetUtilizationRates", &n->Utilization);
  Sym(handle, "nvmlDeviceGetTemperature", &n->Temperature);
  Sym(handle, "nvmlDeviceGetPowerUsage", &n->Power);
  Sym(handle, "nvmlDeviceGetClockInfo", &n->Clock);
  Sym(handle, "nvmlDeviceGetMaxClockInfo", &n->MaxClock);
  Sym(handle, "nvmlDeviceGetComputeRunningProcesses_v3", &n->ProcessesV3);
  Sym(handle, "nvmlDeviceGetComputeRunningProcesses_v2", &n->ProcessesV2);
  Sym(handle, "nvmlDeviceGetComputeRunningProcesses", &n->ProcessesV1);
  Sym(handle, "nvmlSystemGetDriverVersion", &n->DriverVersion);
  Sym(handle, "nvmlDeviceGetPciInfo_v3", &n->PciInfoV3);
  static const char* const kPcieFns[proto::kNvmlPcieValues] = {
      "nvmlDeviceGetCurrPcieLinkGeneration", "nvmlDeviceGetMaxPcieLinkGeneration",
      "nvmlDeviceGetGpuMaxPcieLinkGeneration", "nvmlDeviceGetCurrPcieLinkWidth",
      "nvmlDeviceGetMaxPcieLinkWidth", "nvmlDeviceGetPcieSpeed", "nvmlDeviceGetPcieLinkMaxSpeed"};
  for (int i = 0; i < proto::kNvmlPcieValues; ++i) Sym(handle, kPcieFns[i], &n->PcieValue[i]);
  Sym(handle, "nvmlDeviceGetFieldValues", &n->FieldValues);
  if (n->Init == nullptr || (n->ByPciBusId == nullptr && n->ByUuid == nullptr)) {
    dlclose(handle);
    return Status::Invalid(file + " is not NVML: no nvmlInit_v2 / nvmlDeviceGetHandleBy*");
  }
  if (nvmlReturn_t r = n->Init(); r != NVML_SUCCESS) {
    // Not closed: a library that ran its init may have started threads.
    return Status::Invalid(file + ": nvmlInit_v2 returned " + std::to_string(r));
  }
  n->path = file;
  return {};
}

RealNvml& Nvml(const backend::DriverTable& d) {
  static RealNvml* nvml = [&d] {
    auto* n = new RealNvml;  // leaked: NVML is never shut down in a worker
    for (const std::string& path : Candidates(d)) {
      Status st = LoadOne(path, n);
      if (st.ok()) {
        n->ok = true;
        RGPU_LOG_INFO("nvml: using %s", n->path.c_str());
        return n;
      }
      std::string why = n->why + (n->why.empty() ? "" : "; ") + st.message();
      *n = RealNvml{};  // drop what a refused candidate left behind
      n->why = std::move(why);
    }
    LogOnce(LogLevel::kWarn, "nvml-unavailable",
            "nvml: no usable NVIDIA NVML on this host (NVML queries answer NOT_SUPPORTED): %s",
            n->why.c_str());
    return n;
  }();
  return *nvml;
}

std::string UuidString(const CUuuid& u) {
  const auto* b = reinterpret_cast<const unsigned char*>(u.bytes);
  char out[64];
  snprintf(out, sizeof out,
           "GPU-%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0], b[1],
           b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14],
           b[15]);
  return out;
}

// The NVML device of the session's ordinal `dev`, or an NVML error.
nvmlReturn_t MapDevice(const Session& s, RealNvml& n, int dev, nvmlDevice_t* out) {
  // Cached by backend ordinal: the session's GPUs may change (reattach).
  const int b = s.devices().BackendOrdinal(dev);
  if (b < 0) return NVML_ERROR_INVALID_ARGUMENT;
  if (n.by_ordinal.size() <= static_cast<size_t>(b)) n.by_ordinal.resize(b + 1, nullptr);
  if (n.by_ordinal[b] != nullptr) {
    *out = n.by_ordinal[b];
    return NVML_SUCCESS;
  }
  Result<CUdevice> mapped = s.Device(dev);
  if (!mapped.ok()) return NVML_ERROR_INVALID_ARGUMENT;
  CUdevice cu_dev = *mapped;
  nvmlReturn_t r = NVML_ERROR_NOT_FOUND;
  nvmlDevice_t handle = nullptr;
  char bus[64] = {};
  if (n.ByPciBusId != nullptr && s.driver().cuDeviceGetPCIBusId != nullptr &&
      s.driver().cuDeviceGetPCIBusId(bus, sizeof bus - 1, cu_dev) == CUDA_SUCCESS) {
    r = n.ByPciBusId(bus, &handle);
  }
  CUuuid uuid{};
  if (r != NVML_SUCCESS && n.ByUuid != nullptr && s.driver().cuDeviceGetUuid_v2 != nullptr &&
      s.driver().cuDeviceGetUuid_v2(&uuid, cu_dev) == CUDA_SUCCESS) {
    r = n.ByUuid(UuidString(uuid).c_str(), &handle);
  }
  if (r != NVML_SUCCESS) {
    LogOnce(LogLevel::kWarn, "nvml-map-" + std::to_string(dev),
            "nvml: no NVML device for session device %d (PCI %s): NVML error %d", dev, bus, r);
    return r;
  }
  n.by_ordinal[b] = handle;
  *out = handle;
  return NVML_SUCCESS;
}

nvmlReturn_t RealProcesses(RealNvml& n, nvmlDevice_t d, NvmlAnswer* a) {
  const pid_t self = getpid();
  unsigned count = proto::kNvmlMaxProcesses;
  auto add = [&](unsigned pid, unsigned long long used) {
    // NVML_VALUE_NOT_AVAILABLE (all ones) when the driver can't attribute memory.
    const uint64_t bytes =
        used == static_cast<unsigned long long>(NVML_VALUE_NOT_AVAILABLE) ? 0 : used;
    a->processes.push_back({pid, bytes, static_cast<pid_t>(pid) == self});
  };
  auto list = n.ProcessesV3 != nullptr ? n.ProcessesV3 : n.ProcessesV2;
  if (list != nullptr) {
    nvmlProcessInfo_t infos[proto::kNvmlMaxProcesses];
    nvmlReturn_t r = list(d, &count, infos);
    if (r != NVML_SUCCESS) return r;  // INSUFFICIENT_SIZE: more than the limit; refuse
    for (unsigned i = 0; i < count && i < proto::kNvmlMaxProcesses; ++i)
      add(infos[i].pid, infos[i].usedGpuMemory);
    return NVML_SUCCESS;
  }
  if (n.ProcessesV1 == nullptr) return NVML_ERROR_NOT_SUPPORTED;
  nvmlProcessInfo_v1_t infos[proto::kNvmlMaxProcesses];
  nvmlReturn_t r = n.ProcessesV1(d, &count, infos);
  if (r != NVML_SUCCESS) return r;
  for (unsigned i = 0; i < count && i < proto::kNvmlMaxProcesses; ++i)
    add(infos[i].pid, infos[i].usedGpuMemory);
  return NVML_SUCCESS;
}

template <class F, class... Args>
nvmlReturn_t Call(F* fn, Args... args) {
  return fn == nullptr ? NVML_ERROR_NOT_SUPPORTED : fn(args...);
}

// The link's values one by one (each may fail alone, e.g. NOT_SUPPORTED in a
// VM), then the PCIe counters in one nvmlDeviceGetFieldValues.
void RealPcie(RealNvml& n, nvmlDevice_t d, NvmlAnswer* a) {
  for (int i = 0; i < proto::kNvmlPcieValues; ++i) {
    a->pcie_ret[i] = Call(n.PcieValue[i], d, &a->pcie_value[i]);
    if (a->pcie_ret[i] != NVML_SUCCESS) a->pcie_value[i] = 0;
  }
  constexpr size_t kCount = std::size(nvml::kPcieFieldIds);
  static_assert(kCount <= proto::kNvmlMaxFields);
  nvmlFieldValue_t values[kCount] = {};
  for (size_t i = 0; i < kCount; ++i) values[i].fieldId = nvml::kPcieFieldIds[i];
  const nvmlReturn_t r = Call(n.FieldValues, d, static_cast<int>(kCount), values);
  for (size_t i = 0; i < kCount; ++i) {
    proto::NvmlField f;
    f.field_id = nvml::kPcieFieldIds[i];
    f.ret = r != NVML_SUCCESS ? r : values[i].nvmlReturn;
    if (f.ret == NVML_SUCCESS) {
      f.value_type = values[i].valueType;
      static_assert(sizeof values[i].value == sizeof f.value);
      std::memcpy(&f.value, &values[i].value, sizeof f.value);
    }
    a->fields.push_back(f);
  }
}

void RealAnswer(const Session& s, int dev, NvmlWhat what, NvmlAnswer* a) {
  RealNvml& n = Nvml(s.driver());
  if (!n.ok) {
    a->nvml_return = NVML_ERROR_NOT_SUPPORTED;
    return;
  }
  nvmlReturn_t r = NVML_SUCCESS;
  if (what == NvmlWhat::kDriverVersion) {
    char version[proto::kNvmlMaxDriverVersion] = {};
    r = Call(n.DriverVersion, version, static_cast<unsigned>(sizeof version));
    if (r == NVML_SUCCESS) a->driver_version.assign(version, strnlen(version, sizeof version));
    a->nvml_return = r;
    return;
  }
  nvmlDevice_t d = nullptr;
  if (r = MapDevice(s, n, dev, &d); r != NVML_SUCCESS) {
    a->nvml_return = r;
    return;
  }
  switch (what) {
    case NvmlWhat::kMemory: {
      nvmlMemory_v2_t m2{};
      m2.version = nvmlMemory_v2;
      r = Call(n.MemoryInfoV2, d, &m2);
      if (r == NVML_SUCCESS) {
        a->mem_total = m2.total;
        a->mem_reserved = m2.reserved;
        a->mem_free = m2.free;
        a->mem_used = m2.used;
        break;
      }
      nvmlMemory_t m1{};
      r = Call(n.MemoryInfo, d, &m1);
      a->mem_total = m1.total;
      a->mem_free = m1.free;
      a->mem_used = m1.used;
      break;
    }
    case NvmlWhat::kUtilization: {
      nvmlUtilization_t u{};
      r = Call(n.Utilization, d, &u);
      a->util_gpu = u.gpu;
      a->util_memory = u.memory;
      break;
    }
    case NvmlWhat::kTemperature:
      r = Call(n.Temperature, d, NVML_TEMPERATURE_GPU, &a->temperature_c);
      break;
    case NvmlWhat::kPower: r = Call(n.Power, d, &a->power_mw); break;
    case NvmlWhat::kClocks:
      for (int c = 0; c < proto::kNvmlClockTypes; ++c) {
        const auto type = static_cast<nvmlClockType_t>(c);
        a->clock_ret[c] = Call(n.Clock, d, type, &a->clock_mhz[c]);
        a->max_clock_ret[c] = Call(n.MaxClock, d, type, &a->max_clock_mhz[c]);
      }
      break;
    case NvmlWhat::kProcesses: r = RealProcesses(n, d, a); break;
    case NvmlWhat::kPci: {
      nvmlPciInfo_t pci{};
      r = Call(n.PciInfoV3, d, &pci);
      a->pci_device_id = pci.pciDeviceId;
      a->pci_subsystem_id = pci.pciSubSystemId;
      break;
    }
    case NvmlWhat::kPcie: RealPcie(n, d, a); break;
    case NvmlWhat::kDriverVersion: break;  // answered above
  }
  if (r != NVML_SUCCESS) *a = NvmlAnswer{};
  a->nvml_return = r;
}

// ---------------------------------------------------------------------------
// The sim backend.

int Attribute(const Session& s, CUdevice dev, CUdevice_attribute attr) {
  int v = 0;
  return s.driver().cuDeviceGetAttribute(&v, attr, dev) == CUDA_SUCCESS ? v : 0;
}

// PCI device ids (device << 16 | 0x10DE) of the profiles we record.
uint32_t SimPciDeviceId(const std::string& name) {
  if (name.find("H200") != std::string::npos) return 0x233510DE;
  if (name.find("H100") != std::string::npos) return 0x233010DE;
  return 0x000010DE;
}

Status SimAnswer(const Session& s, int dev, NvmlWhat what, NvmlAnswer* a) {
  CUdevice cu_dev = 0;
  RGPU_RETURN_IF_ERROR(Get(s.Device(dev), &cu_dev));
  switch (what) {
    case NvmlWhat::kMemory: {
      size_t total = 0;
      RGPU_RETURN_IF_ERROR(
          CuStatus(s.driver().cuDeviceTotalMem_v2(&total, cu_dev), "cuDeviceTotalMem"));
      const uint64_t used = s.bytes_allocated() < total ? s.bytes_allocated() : total;
      a->mem_total = total;
      a->mem_used = used;
      a->mem_free = total - used;
      break;
    }
    case NvmlWhat::kUtilization: break;  // nothing runs on a simulated GPU between calls
    case NvmlWhat::kTemperature: a->temperature_c = kSimTemperatureC; break;
    case NvmlWhat::kPower: a->power_mw = kSimPowerMw; break;
    case NvmlWhat::kClocks: {
      const uint32_t sm = Attribute(s, cu_dev, CU_DEVICE_ATTRIBUTE_CLOCK_RATE) / 1000;
      const uint32_t mem = Attribute(s, cu_dev, CU_DEVICE_ATTRIBUTE_MEMORY_CLOCK_RATE) / 1000;
      const uint32_t mhz[proto::kNvmlClockTypes] = {sm, sm, mem, 0};
      for (int c = 0; c < proto::kNvmlClockTypes; ++c) {
        const uint32_t ret = mhz[c] == 0 ? NVML_ERROR_NOT_SUPPORTED : NVML_SUCCESS;
        a->clock_ret[c] = a->max_clock_ret[c] = ret;
        a->clock_mhz[c] = a->max_clock_mhz[c] = mhz[c];
      }
      break;
    }
    case NvmlWhat::kProcesses:
      a->processes.push_back({static_cast<uint32_t>(getpid()), s.bytes_allocated(), true});
      break;
    case NvmlWhat::kDriverVersion: a->driver_version = kSimDriverVersion; break;
    case NvmlWhat::kPci: {
      char name[256] = {};
      RGPU_RETURN_IF_ERROR(
          CuStatus(s.driver().cuDeviceGetName(name, sizeof name - 1, cu_dev), "cuDeviceGetName"));
      a->pci_device_id = SimPciDeviceId(name);
      break;
    }
    case NvmlWhat::kPcie: {
      char name[256] = {};
      RGPU_RETURN_IF_ERROR(
          CuStatus(s.driver().cuDeviceGetName(name, sizeof name - 1, cu_dev), "cuDeviceGetName"));
      // H100 and H200 boards are PCIe Gen5 x16 (32 GT/s a lane), as NVIDIA's
      // NVML reports them (max speed 5: NVML_PCIE_LINK_MAX_SPEED_32000MBPS);
      // another profile's link is unknown.
      const bool hopper = SimPciDeviceId(name) != 0x000010DE;
      const uint32_t values[proto::kNvmlPcieValues] = {5, 5, 5, 16, 16, 32000, 5};
      for (int i = 0; i < proto::kNvmlPcieValues; ++i) {
        a->pcie_ret[i] = hopper ? NVML_SUCCESS : NVML_ERROR_NOT_SUPPORTED;
        a->pcie_value[i] = hopper ? values[i] : 0;
      }
      // Nothing crosses a simulated bus: every counter reads 0 (unsigned
      // int, the type NVIDIA's 580 driver gives them all).
      for (unsigned id : nvml::kPcieFieldIds)
        a->fields.push_back({id, NVML_SUCCESS, NVML_VALUE_TYPE_UNSIGNED_INT, 0});
      break;
    }
  }
  return {};
}

}  // namespace

void PreloadNvml(const backend::DriverTable& d, const std::string& backend_kind) {
  if (backend_kind == "cuda") (void)Nvml(d);
}

Status HandleNvmlQuery(Session& s, const proto::NvmlQueryReq& req, proto::NvmlQueryRep* rep) {
  // The reply's span points here until the dispatcher has encoded it.
  thread_local std::vector<uint8_t> encoded;
  if (!proto::IsNvmlWhat(req.what))
    return Status::Cuda(CUDA_ERROR_INVALID_VALUE,
                        "NvmlQuery: unknown what " + std::to_string(req.what));
  const int count = s.devices().count();  // the session's devices only
  if (req.dev < 0 || req.dev >= count)
    return Status::Cuda(CUDA_ERROR_INVALID_DEVICE,
                        "NvmlQuery: no device " + std::to_string(req.dev));
  const auto what = static_cast<NvmlWhat>(req.what);
  NvmlAnswer answer;
  if (s.backend_kind() == "sim") {
    RGPU_RETURN_IF_ERROR(SimAnswer(s, req.dev, what, &answer));
  } else {
    RealAnswer(s, req.dev, what, &answer);
  }
  if (answer.processes.size() > proto::kNvmlMaxProcesses)
    answer.processes.resize(proto::kNvmlMaxProcesses);
  if (answer.fields.size() > proto::kNvmlMaxFields) answer.fields.resize(proto::kNvmlMaxFields);
  if (answer.driver_version.size() > proto::kNvmlMaxDriverVersion)
    answer.driver_version.resize(proto::kNvmlMaxDriverVersion);
  encoded.clear();
  proto::Writer w(&encoded);
  proto::EncodeNvmlAnswer(w, req.what, answer);
  rep->data = encoded;
  return {};
}

}  // namespace rgpu::worker
