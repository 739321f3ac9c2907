// DeviceInfo: everything about the GPUs that never changes during a session,
// fetched once at cuInit so that device queries are answered locally.
#pragma once

#include <array>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "common/status.h"

namespace rgpu::proto {

constexpr uint32_t kMaxDevices = 64;
constexpr uint32_t kMaxAttributes = 1024;
constexpr size_t kP2PFacts = 6;

struct DeviceFacts {
  std::string name;
  std::array<uint8_t, 16> uuid{};
  uint64_t total_mem = 0;
  std::string pci_bus_id;           // "0000:19:00.0"
  std::vector<int32_t> attributes;  // indexed by CUdevice_attribute; [0] unused
  int32_t stream_priority_least = 0;
  int32_t stream_priority_greatest = 0;
  // What this device can do with each device of the session (index = peer
  // ordinal): [0] cuDeviceCanAccessPeer, [1..5] cuDeviceGetP2PAttribute by
  // CUdevice_P2PAttribute value (0 for itself and where the driver refused).
  // Empty when the server sent none (then no peer access is offered).
  std::vector<std::array<int32_t, kP2PFacts>> peers;
};

struct DeviceInfo {
  int32_t driver_version = 0;
  std::string backend;  // "cuda" or "sim"
  std::vector<DeviceFacts> devices;
};

std::vector<uint8_t> EncodeDeviceInfo(const DeviceInfo& info);
// Checks counts against kMaxDevices / kMaxAttributes.
Status DecodeDeviceInfo(std::span<const uint8_t> data, DeviceInfo* info);

}  // namespace rgpu::proto
