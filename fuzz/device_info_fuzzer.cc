// Fuzzes DecodeDeviceInfo (proto/device_info.h): the client decodes it from
// the server at cuInit and answers device queries from it.
//
// Oracle: ASan/UBSan; counts within kMaxDevices / kMaxAttributes; a
// successful decode re-encodes to the same bytes.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "proto/device_info.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace rgpu::proto;
  DeviceInfo info;
  if (!DecodeDeviceInfo(std::span<const uint8_t>(data, size), &info).ok()) return 0;
  bool ok = info.devices.size() <= kMaxDevices;
  for (const DeviceFacts& d : info.devices) ok = ok && d.attributes.size() <= kMaxAttributes;
  std::vector<uint8_t> again = EncodeDeviceInfo(info);
  ok = ok && again.size() == size && (size == 0 || std::memcmp(again.data(), data, size) == 0);
  if (!ok) {
    fprintf(stderr, "device_info_fuzzer: decoded info breaks a limit or does not round-trip\n");
    abort();
  }
  return 0;
}
