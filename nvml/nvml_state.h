// NvmlState: everything rgpu's libnvidia-ml.so.1 knows, in one place.
//
// The library opens no connection of its own. nvmlInit loads rgpu's
// libcuda.so.1 from this library's own directory (dladdr on one of our
// symbols; RTLD_NOW|RTLD_LOCAL|RTLD_NOLOAD first, so the copy the application
// already uses is shared, then a plain dlopen), calls cuInit(0) and asks
// cuGetExportTable for the private NVML bridge (client/nvml_bridge.h). Device
// facts are copied once, at the first successful init; live data goes
// through the bridge's Query slot (one round trip each).
//
// Init and shutdown count references, as NVML does: every successful
// nvmlInit* needs one nvmlShutdown; calls other than init, shutdown,
// nvmlErrorString and the version getters fail with NVML_ERROR_UNINITIALIZED
// while the count is 0. What was loaded is kept after the last shutdown
// (libcuda is never unloaded: the application may be using it), so a later
// init costs nothing.
//
// Failure of nvmlInit, as the real NVML would report it:
//   libcuda.so.1 missing beside us, or not rgpu's   NVML_ERROR_LIBRARY_NOT_FOUND
//   cuInit failed (no reachable server, refused)    NVML_ERROR_DRIVER_NOT_LOADED
//   the bridge's ABI differs from ours              NVML_ERROR_LIB_RM_VERSION_MISMATCH
// Each failure is logged once, with its reason, on stderr.
//
// Device handles are pointers into a static table of kMaxDevices entries and
// stay valid for the life of the process. Devices are the session's GPUs in
// the worker's order, ignoring CUDA_VISIBLE_DEVICES (as the real NVML does).
//
// Thread-safe: init/shutdown take a mutex; everything read after init is
// immutable, apart from the cached driver version (its own mutex).
#pragma once

#include <cstdint>
#include <mutex>
#include <string>
#include <vector>

#include "client/nvml_bridge.h"
#include "nvml/nvml_types.h"

// What an nvmlDevice_t points to.
struct nvmlDevice_st {
  uint32_t index;
};

// Every exported NVML function is defined with this (C linkage, exported
// despite -fvisibility=hidden; the version script limits exports to NVML's).
#define RGPU_NVML_API extern "C" __attribute__((visibility("default")))

namespace rgpu::nvml {

constexpr uint32_t kMaxDevices = 64;

class NvmlState {
 public:
  // The state while initialized (reference count > 0), else nullptr.
  static NvmlState* Get();
  static nvmlReturn_t Init(unsigned flags);
  static nvmlReturn_t Shutdown();

  uint32_t device_count() const { return static_cast<uint32_t>(facts_.size()); }
  // REQUIRES: index < device_count().
  const RgpuNvmlDeviceFacts& facts(uint32_t index) const { return facts_[index]; }
  const std::string& uuid_string(uint32_t index) const { return uuids_[index]; }
  nvmlDevice_t handle(uint32_t index) const;
  // The index of a handle this library handed out; false for anything else.
  bool IndexOf(nvmlDevice_t device, uint32_t* index) const;
  // The index of the device with this PCI bus id ("0000:19:00.0",
  // "00000000:19:00.0" or "19:00.0", any hex case); false if none.
  bool FindPciBusId(const char* bus_id, uint32_t* index) const;
  // The device whose UUID string ("GPU-...") is `uuid`; false if none.
  bool FindUuid(const char* uuid, uint32_t* index) const;

  // One bridge query (see nvml_bridge.h); returns an NVML code.
  nvmlReturn_t Query(uint32_t index, uint32_t what, RgpuNvmlLive* out) const;
  // The GPU host's driver version ("580.159"), asked once and remembered.
  nvmlReturn_t DriverVersion(std::string* out);
  int cuda_driver_version() const { return cuda_driver_version_; }

 private:
  NvmlState() = default;
  nvmlReturn_t Load();

  RgpuNvmlQueryFn query_ = nullptr;
  std::vector<RgpuNvmlDeviceFacts> facts_;
  std::vector<std::string> uuids_;
  int cuda_driver_version_ = 0;

  std::mutex version_mu_;
  std::string driver_version_;  // GUARDED_BY(version_mu_); empty until asked
};

// Logs "<name> is not supported by rgpu" once per name (warn level, stderr)
// and returns NVML_ERROR_NOT_SUPPORTED, every time. For the generated stubs.
nvmlReturn_t ReportUnsupported(const char* name);

// "GPU-xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx" from 16 UUID bytes.
std::string FormatUuid(const uint8_t (&uuid)[16]);

// Copies `s` into buf[length] with its terminator; NVML_ERROR_INVALID_ARGUMENT
// for a null buffer, NVML_ERROR_INSUFFICIENT_SIZE when it does not fit.
nvmlReturn_t CopyOut(const std::string& s, char* buf, unsigned length);

}  // namespace rgpu::nvml
