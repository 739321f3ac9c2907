// DeviceMap: which GPUs a session may use, and how the client numbers them.
//
// A worker process sees every GPU of the pool (the supervisor starts it with
// CUDA_VISIBLE_DEVICES listing the pool, and the sim backend with one device
// per pool GPU), so its backend ordinal for a GPU is the GPU's position in
// the pool. A session leases some of them; its client numbers them 0..N-1 in
// lease order. Every device ordinal that comes from the client goes through
// Device() before it reaches the driver: a client can name only the GPUs its
// session leased, never another session's.
//
// The map is the one place that knows the client -> backend translation, so
// that a session can be moved: Assign() points the same client ordinals at
// other GPUs (reattach after idle detach, on the same or another GPU of the
// same type). The caller owns what that implies (contexts and memory on the
// old GPUs must be gone or moved first).
//
// Not thread-safe: used from the worker's request thread only.
#pragma once

#include <cuda.h>

#include <vector>

#include "backend/driver_table.h"
#include "common/status.h"

namespace rgpu::worker {

class DeviceMap {
 public:
  DeviceMap() = default;
  // `backend_ordinals[i]` is the backend ordinal of client device i.
  explicit DeviceMap(std::vector<int> backend_ordinals) : backend_(std::move(backend_ordinals)) {}

  // Replaces the mapping (same client ordinals, other GPUs).
  void Assign(std::vector<int> backend_ordinals) { backend_ = std::move(backend_ordinals); }

  // Number of devices the client sees.
  int count() const { return static_cast<int>(backend_.size()); }
  const std::vector<int>& backend_ordinals() const { return backend_; }

  // The backend ordinal of client device `client_ordinal`, or -1 when the
  // session has no such device.
  int BackendOrdinal(int client_ordinal) const;
  // The client ordinal of backend device `backend_ordinal`, or -1 when it is
  // not one of the session's devices.
  int ClientOrdinal(int backend_ordinal) const;

  // The driver's CUdevice for client device `client_ordinal`:
  // CUDA_ERROR_INVALID_DEVICE (a kCuda Status) when the session has no such
  // device, else whatever cuDeviceGet answers.
  Result<CUdevice> Device(const backend::DriverTable& driver, int client_ordinal) const;

 private:
  std::vector<int> backend_;
};

}  // namespace rgpu::worker
