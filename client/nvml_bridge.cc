// The NVML bridge's slots (see nvml_bridge.h), on top of ClientState.
//
// Facts come from the DeviceInfo fetched at cuInit; live data from one
// NvmlQuery round trip (proto/nvml_query.h). A query goes through
// Connection::Call directly, not Sync(): a monitoring call must neither
// consume nor report the application's pending asynchronous CUDA error.
#include "client/nvml_bridge.h"

#include <unistd.h>

#include <cstring>
#include <string>

#include "client/client_state.h"
#include "client/export_tables.h"
#include "common/log.h"
#include "proto/calls.gen.h"
#include "proto/nvml_query.h"

namespace rgpu::client {
namespace {

static_assert(RGPU_NVML_QUERY_MEMORY == static_cast<int>(proto::NvmlWhat::kMemory));
static_assert(RGPU_NVML_QUERY_UTILIZATION == static_cast<int>(proto::NvmlWhat::kUtilization));
static_assert(RGPU_NVML_QUERY_TEMPERATURE == static_cast<int>(proto::NvmlWhat::kTemperature));
static_assert(RGPU_NVML_QUERY_POWER == static_cast<int>(proto::NvmlWhat::kPower));
static_assert(RGPU_NVML_QUERY_CLOCKS == static_cast<int>(proto::NvmlWhat::kClocks));
static_assert(RGPU_NVML_QUERY_PROCESSES == static_cast<int>(proto::NvmlWhat::kProcesses));
static_assert(RGPU_NVML_QUERY_DRIVER_VERSION == static_cast<int>(proto::NvmlWhat::kDriverVersion));
static_assert(RGPU_NVML_QUERY_PCI == static_cast<int>(proto::NvmlWhat::kPci));
static_assert(RGPU_NVML_QUERY_PCIE == static_cast<int>(proto::NvmlWhat::kPcie));
static_assert(RGPU_NVML_MAX_PROCESSES == proto::kNvmlMaxProcesses);
// The peer masks of RgpuNvmlDeviceFacts hold one bit per device of a session.
static_assert(proto::kMaxDevices <= 64);
static_assert(CU_DEVICE_P2P_ATTRIBUTE_NATIVE_ATOMIC_SUPPORTED < proto::kP2PFacts);
static_assert(RGPU_NVML_PCIE_VALUES == proto::kNvmlPcieValues);
static_assert(RGPU_NVML_MAX_FIELDS == proto::kNvmlMaxFields);
static_assert(sizeof(RgpuNvmlLive::driver_version) >= proto::kNvmlMaxDriverVersion);

const uint8_t kBridgeUuid[16] = RGPU_NVML_BRIDGE_UUID_BYTES;

// The state, or nullptr before a successful cuInit. Facts stay readable in a
// forked child (they are local); queries need the link, which stays the parent's.
ClientState* State() { return ClientState::Get(); }

uint32_t BridgeAbi() { return RGPU_NVML_BRIDGE_ABI; }

int BridgeDeviceCount(uint32_t* count) {
  if (count == nullptr) return RGPU_NVML_BRIDGE_INVALID_ARGUMENT;
  ClientState* s = State();
  if (s == nullptr) return RGPU_NVML_BRIDGE_UNINITIALIZED;
  *count = static_cast<uint32_t>(s->info().devices.size());
  return RGPU_NVML_BRIDGE_SUCCESS;
}

int32_t Attr(const proto::DeviceFacts& f, CUdevice_attribute a) {
  const size_t i = static_cast<size_t>(a);
  return i < f.attributes.size() ? f.attributes[i] : 0;
}

void CopyString(const std::string& from, char* to, size_t size) {
  const size_t n = from.size() < size - 1 ? from.size() : size - 1;
  std::memcpy(to, from.data(), n);
  to[n] = 0;
}

int BridgeDeviceFacts(uint32_t index, RgpuNvmlDeviceFacts* out, uint32_t out_size) {
  if (out == nullptr || out_size != sizeof(RgpuNvmlDeviceFacts))
    return RGPU_NVML_BRIDGE_INVALID_ARGUMENT;
  ClientState* s = State();
  if (s == nullptr) return RGPU_NVML_BRIDGE_UNINITIALIZED;
  const proto::DeviceInfo& info = s->info();
  if (index >= info.devices.size()) return RGPU_NVML_BRIDGE_INVALID_ARGUMENT;
  const proto::DeviceFacts& f = info.devices[index];
  *out = RgpuNvmlDeviceFacts{};
  CopyString(f.name, out->name, sizeof out->name);
  std::memcpy(out->uuid, f.uuid.data(), sizeof out->uuid);
  CopyString(f.pci_bus_id, out->pci_bus_id, sizeof out->pci_bus_id);
  out->total_mem = f.total_mem;
  out->cc_major = Attr(f, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR);
  out->cc_minor = Attr(f, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR);
  out->sm_count = Attr(f, CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT);
  out->clock_khz = Attr(f, CU_DEVICE_ATTRIBUTE_CLOCK_RATE);
  out->mem_clock_khz = Attr(f, CU_DEVICE_ATTRIBUTE_MEMORY_CLOCK_RATE);
  out->pci_domain = Attr(f, CU_DEVICE_ATTRIBUTE_PCI_DOMAIN_ID);
  out->pci_bus = Attr(f, CU_DEVICE_ATTRIBUTE_PCI_BUS_ID);
  out->pci_device = Attr(f, CU_DEVICE_ATTRIBUTE_PCI_DEVICE_ID);
  out->cuda_driver_version = info.driver_version;
  // proto::DeviceFacts::peers is indexed like info.devices (the worker's order).
  for (size_t j = 0; j < f.peers.size() && j < 64; ++j) {
    if (j == index) continue;
    if (f.peers[j][0] != 0) out->peer_access_mask |= uint64_t{1} << j;
    if (f.peers[j][CU_DEVICE_P2P_ATTRIBUTE_NATIVE_ATOMIC_SUPPORTED] != 0)
      out->peer_atomics_mask |= uint64_t{1} << j;
  }
  return RGPU_NVML_BRIDGE_SUCCESS;
}

// The session's own process on the GPU host is its worker; on a local GPU the
// application would see itself there, so the worker's entries are reported
// under this process's pid. Other processes on the card (there should be none:
// a lease is exclusive) have host pids that mean nothing here and could name
// an unrelated local process, so they are left out; their memory still shows
// in the memory query.
void CopyProcesses(const std::vector<proto::NvmlProcess>& from, RgpuNvmlLive* out) {
  uint64_t session_bytes = 0;
  bool any_session = false;
  for (const proto::NvmlProcess& p : from) {
    if (!p.is_session) continue;
    any_session = true;
    session_bytes += p.used_bytes;
  }
  out->process_count = 0;
  if (!any_session) return;
  out->processes[0].pid = static_cast<uint32_t>(getpid());
  out->processes[0].used_bytes = session_bytes;
  out->process_count = 1;
}

void CopyAnswer(uint32_t what, const proto::NvmlAnswer& a, RgpuNvmlLive* out) {
  switch (static_cast<proto::NvmlWhat>(what)) {
    case proto::NvmlWhat::kMemory:
      out->mem_total = a.mem_total;
      out->mem_reserved = a.mem_reserved;
      out->mem_free = a.mem_free;
      out->mem_used = a.mem_used;
      break;
    case proto::NvmlWhat::kUtilization:
      out->util_gpu = a.util_gpu;
      out->util_memory = a.util_memory;
      break;
    case proto::NvmlWhat::kTemperature: out->temperature_c = a.temperature_c; break;
    case proto::NvmlWhat::kPower: out->power_mw = a.power_mw; break;
    case proto::NvmlWhat::kClocks:
      for (int i = 0; i < proto::kNvmlClockTypes; ++i) {
        out->clock_ret[i] = a.clock_ret[i];
        out->clock_mhz[i] = a.clock_mhz[i];
        out->max_clock_ret[i] = a.max_clock_ret[i];
        out->max_clock_mhz[i] = a.max_clock_mhz[i];
      }
      break;
    case proto::NvmlWhat::kProcesses: CopyProcesses(a.processes, out); break;
    case proto::NvmlWhat::kDriverVersion:
      CopyString(a.driver_version, out->driver_version, sizeof out->driver_version);
      break;
    case proto::NvmlWhat::kPci:
      out->pci_device_id = a.pci_device_id;
      out->pci_subsystem_id = a.pci_subsystem_id;
      break;
    case proto::NvmlWhat::kPcie:
      for (int i = 0; i < proto::kNvmlPcieValues; ++i) {
        out->pcie_ret[i] = a.pcie_ret[i];
        out->pcie_value[i] = a.pcie_value[i];
      }
      out->field_count = static_cast<uint32_t>(a.fields.size());  // <= the limit (decoded)
      for (size_t i = 0; i < a.fields.size(); ++i)
        out->fields[i] = RgpuNvmlField{a.fields[i].field_id, a.fields[i].ret,
                                       a.fields[i].value_type, 0, a.fields[i].value};
      break;
  }
}

int BridgeQuery(uint32_t index, uint32_t what, RgpuNvmlLive* out, uint32_t out_size) {
  if (out == nullptr || out_size != sizeof(RgpuNvmlLive) || !proto::IsNvmlWhat(what))
    return RGPU_NVML_BRIDGE_INVALID_ARGUMENT;
  ClientState* s = State();
  if (s == nullptr) return RGPU_NVML_BRIDGE_UNINITIALIZED;
  if (index >= s->info().devices.size()) return RGPU_NVML_BRIDGE_INVALID_ARGUMENT;
  if (s->forked()) return RGPU_NVML_BRIDGE_GPU_IS_LOST;  // the link is the parent's
  *out = RgpuNvmlLive{};
  Reply reply;
  Status st = s->conn().Call(proto::CallId::kNvmlQuery,
                             proto::NvmlQueryReq{static_cast<int32_t>(index), what}, &reply);
  if (!st.ok()) {
    LogOnce(LogLevel::kError, "nvml-link", "NVML query: GPU server link failed: %s",
            st.message().c_str());
    return RGPU_NVML_BRIDGE_GPU_IS_LOST;
  }
  if (reply.cu == CUDA_ERROR_NOT_SUPPORTED) {
    // A worker without NvmlQuery (older server) or a backend that can't say.
    LogOnce(LogLevel::kWarn, "nvml-query-unsupported",
            "NVML query: the GPU server does not answer NVML queries (CUresult %d)", reply.cu);
    return RGPU_NVML_BRIDGE_NOT_SUPPORTED;
  }
  if (reply.cu == CUDA_ERROR_INVALID_VALUE) {
    // `what` was checked above: only a worker older than this client refuses
    // it (a kind added later, e.g. the PCIe query).
    LogOnce(LogLevel::kWarn, "nvml-query-unknown-" + std::to_string(what),
            "NVML query %u: the GPU server does not know it (an older rgpu-server)", what);
    return RGPU_NVML_BRIDGE_NOT_SUPPORTED;
  }
  if (reply.cu == CUDA_ERROR_INVALID_DEVICE) return RGPU_NVML_BRIDGE_INVALID_ARGUMENT;
  if (reply.cu != 0) {
    RGPU_LOG_DEBUG("NVML query %u on device %u -> CUresult %d", what, index, reply.cu);
    return RGPU_NVML_BRIDGE_UNKNOWN;
  }
  proto::Reader r(reply.payload);
  proto::NvmlQueryRep rep;
  proto::NvmlAnswer answer;
  st = proto::Decode(r, &rep);
  if (st.ok()) {
    proto::Reader data(rep.data);
    st = proto::DecodeNvmlAnswer(data, what, &answer);
  }
  if (!st.ok()) {
    LogOnce(LogLevel::kError, "nvml-decode", "NVML query: malformed answer from the worker: %s",
            st.message().c_str());
    return RGPU_NVML_BRIDGE_UNKNOWN;
  }
  if (answer.nvml_return != 0) return static_cast<int>(answer.nvml_return);
  CopyAnswer(what, answer, out);
  return RGPU_NVML_BRIDGE_SUCCESS;
}

template <class F>
const void* Fn(F* f) {
  return reinterpret_cast<const void*>(f);
}

const void* const* BridgeSlots() {
  static const void* const kSlots[RGPU_NVML_BRIDGE_SLOTS] = {
      reinterpret_cast<const void*>(RGPU_NVML_BRIDGE_SLOTS * sizeof(void*)),
      Fn(static_cast<RgpuNvmlBridgeAbiFn>(&BridgeAbi)),
      Fn(static_cast<RgpuNvmlDeviceCountFn>(&BridgeDeviceCount)),
      Fn(static_cast<RgpuNvmlDeviceFactsFn>(&BridgeDeviceFacts)),
      Fn(static_cast<RgpuNvmlQueryFn>(&BridgeQuery)),
  };
  return kSlots;
}

}  // namespace

namespace {
// Registers the bridge with cuGetExportTable when the library loads (a
// pointer store: no thread, no socket).
const bool kRegistered = (SetPrivateTableFinder(&FindNvmlBridgeTable), true);
}  // namespace

bool FindNvmlBridgeTable(const void* uuid, ExportTableView* view) {
  if (uuid == nullptr || std::memcmp(uuid, kBridgeUuid, sizeof kBridgeUuid) != 0) return false;
  view->name = "RGPU_NVML_BRIDGE";
  view->slots = BridgeSlots();
  view->slot_count = RGPU_NVML_BRIDGE_SLOTS;
  return true;
}

}  // namespace rgpu::client
