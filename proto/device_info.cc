#include "proto/device_info.h"

#include "proto/coding.h"

namespace rgpu::proto {

std::vector<uint8_t> EncodeDeviceInfo(const DeviceInfo& info) {
  std::vector<uint8_t> out;
  Writer w(&out);
  w.I32(info.driver_version);
  w.Str(info.backend);
  w.U32(static_cast<uint32_t>(info.devices.size()));
  for (const DeviceFacts& d : info.devices) {
    w.Str(d.name);
    w.Raw(d.uuid.data(), d.uuid.size());
    w.U64(d.total_mem);
    w.Str(d.pci_bus_id);
    w.U32(static_cast<uint32_t>(d.attributes.size()));
    for (int32_t a : d.attributes) w.I32(a);
    w.I32(d.stream_priority_least);
    w.I32(d.stream_priority_greatest);
    w.U32(static_cast<uint32_t>(d.peers.size()));
    for (const auto& p : d.peers)
      for (int32_t v : p) w.I32(v);
  }
  return out;
}

Status DecodeDeviceInfo(std::span<const uint8_t> data, DeviceInfo* info) {
  Reader r(data);
  RGPU_RETURN_IF_ERROR(r.I32(&info->driver_version));
  RGPU_RETURN_IF_ERROR(r.Str(64, &info->backend));
  uint32_t n = 0;
  RGPU_RETURN_IF_ERROR(r.U32(&n));
  if (n > kMaxDevices) return Status::Protocol("device info: " + std::to_string(n) + " devices");
  info->devices.assign(n, DeviceFacts{});
  for (DeviceFacts& d : info->devices) {
    RGPU_RETURN_IF_ERROR(r.Str(256, &d.name));
    std::span<const uint8_t> uuid;
    RGPU_RETURN_IF_ERROR(r.Raw(16, &uuid));
    std::copy(uuid.begin(), uuid.end(), d.uuid.begin());
    RGPU_RETURN_IF_ERROR(r.U64(&d.total_mem));
    RGPU_RETURN_IF_ERROR(r.Str(64, &d.pci_bus_id));
    uint32_t na = 0;
    RGPU_RETURN_IF_ERROR(r.U32(&na));
    if (na > kMaxAttributes) return Status::Protocol("device info: too many attributes");
    d.attributes.resize(na);
    for (int32_t& a : d.attributes) RGPU_RETURN_IF_ERROR(r.I32(&a));
    RGPU_RETURN_IF_ERROR(r.I32(&d.stream_priority_least));
    RGPU_RETURN_IF_ERROR(r.I32(&d.stream_priority_greatest));
    uint32_t np = 0;
    RGPU_RETURN_IF_ERROR(r.U32(&np));
    if (np != 0 && np != n) return Status::Protocol("device info: peer facts for " + std::to_string(np) + " devices");
    d.peers.resize(np);
    for (auto& p : d.peers)
      for (int32_t& v : p) RGPU_RETURN_IF_ERROR(r.I32(&v));
  }
  return r.Finish();
}

}  // namespace rgpu::proto
