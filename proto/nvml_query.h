// The `data` of an NvmlQuery reply (calls.spec id 60): live facts about one
// GPU that only the GPU host knows (memory in use, utilization, temperature,
// power, clocks, processes, the host's driver version, PCI ids, the PCIe
// link and its counters).
//
// Encoding (little-endian, through Writer/Reader): u32 nvml_return, the GPU
// host's NVML answer (nvmlReturn_t); when it is 0, the fields of `what`:
//   kMemory          u64 total, u64 reserved, u64 free, u64 used
//   kUtilization     u32 gpu, u32 memory                     (percent)
//   kTemperature     u32 celsius
//   kPower           u32 milliwatts
//   kClocks          4 x (u32 ret, u32 mhz) current, then 4 x (u32 ret, u32 mhz)
//                    max, by nvmlClockType_t (graphics, SM, memory, video)
//   kProcesses       u32 count (<= kNvmlMaxProcesses), then per process
//                    u32 pid, u64 used_bytes, u8 is_session (the pid is the
//                    session's own worker)
//   kDriverVersion   str<80> version
//   kPci             u32 pci_device_id, u32 pci_subsystem_id
//   kPcie            kNvmlPcieValues x (u32 ret, u32 value): the link's
//                    generation (current, max, GPU max), width (current, max)
//                    speed and max speed (client/nvml_bridge.h RGPU_NVML_PCIE_*); then
//                    u32 count (<= kNvmlMaxFields), per field u32 field_id,
//                    u32 ret, u32 value_type, u64 value (nvmlFieldValue_t's)
// A request for an unknown `what` or device is refused with a CUresult
// (CUDA_ERROR_INVALID_VALUE / CUDA_ERROR_INVALID_DEVICE) before any of this.
//
// Header-only: both the worker (server/worker/handlers_nvml.cc) and the
// client (client/nvml_bridge.cc) include it. Decode checks every length and
// count against what is left and the limits here, and refuses trailing bytes.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/status.h"
#include "proto/coding.h"

namespace rgpu::proto {

enum class NvmlWhat : uint32_t {
  kMemory = 1,
  kUtilization = 2,
  kTemperature = 3,
  kPower = 4,
  kClocks = 5,
  kProcesses = 6,
  kDriverVersion = 7,
  kPci = 8,
  kPcie = 9,  // added after protocol 3's first release: an older worker refuses it
};
constexpr uint32_t kNvmlWhatFirst = 1;
constexpr uint32_t kNvmlWhatLast = 9;
constexpr uint32_t kNvmlMaxProcesses = 64;
constexpr uint32_t kNvmlMaxDriverVersion = 80;
constexpr int kNvmlClockTypes = 4;
constexpr int kNvmlPcieValues = 7;
constexpr uint32_t kNvmlMaxFields = 32;

// One field value of nvmlDeviceGetFieldValues (kPcie).
struct NvmlField {
  uint32_t field_id = 0;
  uint32_t ret = 0;
  uint32_t value_type = 0;
  uint64_t value = 0;  // the nvmlValue_t's 8 bytes
};

struct NvmlProcess {
  uint32_t pid = 0;
  uint64_t used_bytes = 0;
  bool is_session = false;
};

struct NvmlAnswer {
  uint32_t nvml_return = 0;  // 0: the fields of `what` below are valid
  uint64_t mem_total = 0, mem_reserved = 0, mem_free = 0, mem_used = 0;
  uint32_t util_gpu = 0, util_memory = 0;
  uint32_t temperature_c = 0;
  uint32_t power_mw = 0;
  uint32_t clock_ret[kNvmlClockTypes] = {}, clock_mhz[kNvmlClockTypes] = {};
  uint32_t max_clock_ret[kNvmlClockTypes] = {}, max_clock_mhz[kNvmlClockTypes] = {};
  std::vector<NvmlProcess> processes;
  std::string driver_version;
  uint32_t pci_device_id = 0, pci_subsystem_id = 0;
  uint32_t pcie_ret[kNvmlPcieValues] = {}, pcie_value[kNvmlPcieValues] = {};
  std::vector<NvmlField> fields;
};

inline bool IsNvmlWhat(uint32_t what) { return what >= kNvmlWhatFirst && what <= kNvmlWhatLast; }

// REQUIRES: IsNvmlWhat(what); a.processes.size() <= kNvmlMaxProcesses,
// a.fields.size() <= kNvmlMaxFields and a.driver_version.size() <=
// kNvmlMaxDriverVersion (the worker trims them).
inline void EncodeNvmlAnswer(Writer& w, uint32_t what, const NvmlAnswer& a) {
  w.U32(a.nvml_return);
  if (a.nvml_return != 0) return;
  switch (static_cast<NvmlWhat>(what)) {
    case NvmlWhat::kMemory:
      w.U64(a.mem_total);
      w.U64(a.mem_reserved);
      w.U64(a.mem_free);
      w.U64(a.mem_used);
      break;
    case NvmlWhat::kUtilization:
      w.U32(a.util_gpu);
      w.U32(a.util_memory);
      break;
    case NvmlWhat::kTemperature: w.U32(a.temperature_c); break;
    case NvmlWhat::kPower: w.U32(a.power_mw); break;
    case NvmlWhat::kClocks:
      for (int i = 0; i < kNvmlClockTypes; ++i) {
        w.U32(a.clock_ret[i]);
        w.U32(a.clock_mhz[i]);
      }
      for (int i = 0; i < kNvmlClockTypes; ++i) {
        w.U32(a.max_clock_ret[i]);
        w.U32(a.max_clock_mhz[i]);
      }
      break;
    case NvmlWhat::kProcesses:
      w.U32(static_cast<uint32_t>(a.processes.size()));
      for (const NvmlProcess& p : a.processes) {
        w.U32(p.pid);
        w.U64(p.used_bytes);
        w.U8(p.is_session ? 1 : 0);
      }
      break;
    case NvmlWhat::kDriverVersion: w.Str(a.driver_version); break;
    case NvmlWhat::kPci:
      w.U32(a.pci_device_id);
      w.U32(a.pci_subsystem_id);
      break;
    case NvmlWhat::kPcie:
      for (int i = 0; i < kNvmlPcieValues; ++i) {
        w.U32(a.pcie_ret[i]);
        w.U32(a.pcie_value[i]);
      }
      w.U32(static_cast<uint32_t>(a.fields.size()));
      for (const NvmlField& f : a.fields) {
        w.U32(f.field_id);
        w.U32(f.ret);
        w.U32(f.value_type);
        w.U64(f.value);
      }
      break;
  }
}

// Decodes the whole of `r` as the answer to `what`. Fails (kProtocol) on an
// unknown `what`, truncation, a count or length over its limit, a flag other
// than 0/1, or trailing bytes.
inline Status DecodeNvmlAnswer(Reader& r, uint32_t what, NvmlAnswer* a) {
  if (!IsNvmlWhat(what)) return Status::Protocol("NvmlQuery: unknown what " + std::to_string(what));
  *a = NvmlAnswer();
  RGPU_RETURN_IF_ERROR(r.U32(&a->nvml_return));
  if (a->nvml_return != 0) return r.Finish();
  switch (static_cast<NvmlWhat>(what)) {
    case NvmlWhat::kMemory:
      RGPU_RETURN_IF_ERROR(r.U64(&a->mem_total));
      RGPU_RETURN_IF_ERROR(r.U64(&a->mem_reserved));
      RGPU_RETURN_IF_ERROR(r.U64(&a->mem_free));
      RGPU_RETURN_IF_ERROR(r.U64(&a->mem_used));
      break;
    case NvmlWhat::kUtilization:
      RGPU_RETURN_IF_ERROR(r.U32(&a->util_gpu));
      RGPU_RETURN_IF_ERROR(r.U32(&a->util_memory));
      break;
    case NvmlWhat::kTemperature: RGPU_RETURN_IF_ERROR(r.U32(&a->temperature_c)); break;
    case NvmlWhat::kPower: RGPU_RETURN_IF_ERROR(r.U32(&a->power_mw)); break;
    case NvmlWhat::kClocks:
      for (int i = 0; i < kNvmlClockTypes; ++i) {
        RGPU_RETURN_IF_ERROR(r.U32(&a->clock_ret[i]));
        RGPU_RETURN_IF_ERROR(r.U32(&a->clock_mhz[i]));
      }
      for (int i = 0; i < kNvmlClockTypes; ++i) {
        RGPU_RETURN_IF_ERROR(r.U32(&a->max_clock_ret[i]));
        RGPU_RETURN_IF_ERROR(r.U32(&a->max_clock_mhz[i]));
      }
      break;
    case NvmlWhat::kProcesses: {
      uint32_t count = 0;
      RGPU_RETURN_IF_ERROR(r.U32(&count));
      constexpr uint64_t kEntryBytes = 4 + 8 + 1;
      if (count > kNvmlMaxProcesses)
        return Status::Protocol("NvmlQuery: " + std::to_string(count) + " processes > limit " +
                                std::to_string(kNvmlMaxProcesses));
      if (uint64_t{count} * kEntryBytes > r.remaining())
        return Status::Protocol("NvmlQuery: " + std::to_string(count) +
                                " processes > rest of frame");
      a->processes.resize(count);
      for (NvmlProcess& p : a->processes) {
        uint8_t flag = 0;
        RGPU_RETURN_IF_ERROR(r.U32(&p.pid));
        RGPU_RETURN_IF_ERROR(r.U64(&p.used_bytes));
        RGPU_RETURN_IF_ERROR(r.U8(&flag));
        if (flag > 1) return Status::Protocol("NvmlQuery: is_session flag " + std::to_string(flag));
        p.is_session = flag == 1;
      }
      break;
    }
    case NvmlWhat::kDriverVersion:
      RGPU_RETURN_IF_ERROR(r.Str(kNvmlMaxDriverVersion, &a->driver_version));
      break;
    case NvmlWhat::kPci:
      RGPU_RETURN_IF_ERROR(r.U32(&a->pci_device_id));
      RGPU_RETURN_IF_ERROR(r.U32(&a->pci_subsystem_id));
      break;
    case NvmlWhat::kPcie: {
      for (int i = 0; i < kNvmlPcieValues; ++i) {
        RGPU_RETURN_IF_ERROR(r.U32(&a->pcie_ret[i]));
        RGPU_RETURN_IF_ERROR(r.U32(&a->pcie_value[i]));
      }
      uint32_t count = 0;
      RGPU_RETURN_IF_ERROR(r.U32(&count));
      constexpr uint64_t kEntryBytes = 4 + 4 + 4 + 8;
      if (count > kNvmlMaxFields)
        return Status::Protocol("NvmlQuery: " + std::to_string(count) + " fields > limit " +
                                std::to_string(kNvmlMaxFields));
      if (uint64_t{count} * kEntryBytes > r.remaining())
        return Status::Protocol("NvmlQuery: " + std::to_string(count) + " fields > rest of frame");
      a->fields.resize(count);
      for (NvmlField& f : a->fields) {
        RGPU_RETURN_IF_ERROR(r.U32(&f.field_id));
        RGPU_RETURN_IF_ERROR(r.U32(&f.ret));
        RGPU_RETURN_IF_ERROR(r.U32(&f.value_type));
        RGPU_RETURN_IF_ERROR(r.U64(&f.value));
      }
      break;
    }
  }
  return r.Finish();
}

}  // namespace rgpu::proto
