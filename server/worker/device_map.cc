#include "server/worker/device_map.h"

#include <string>

namespace rgpu::worker {

int DeviceMap::BackendOrdinal(int client_ordinal) const {
  if (client_ordinal < 0 || client_ordinal >= count()) return -1;
  return backend_[client_ordinal];
}

int DeviceMap::ClientOrdinal(int backend_ordinal) const {
  for (int i = 0; i < count(); ++i)
    if (backend_[i] == backend_ordinal) return i;
  return -1;
}

Result<CUdevice> DeviceMap::Device(const backend::DriverTable& driver, int client_ordinal) const {
  int b = BackendOrdinal(client_ordinal);
  if (b < 0)
    return Status::Cuda(CUDA_ERROR_INVALID_DEVICE, "device " + std::to_string(client_ordinal) +
                                                       " is not one of this session's " +
                                                       std::to_string(count()) + " device(s)");
  if (driver.cuDeviceGet == nullptr)
    return Status::Cuda(CUDA_ERROR_NOT_SUPPORTED, "cuDeviceGet is not provided by this backend");
  CUdevice dev = 0;
  CUresult r = driver.cuDeviceGet(&dev, b);
  if (r != CUDA_SUCCESS)
    return Status::Cuda(r, "cuDeviceGet(" + std::to_string(b) + ") failed with CUresult " + std::to_string(r));
  return dev;
}

}  // namespace rgpu::worker
