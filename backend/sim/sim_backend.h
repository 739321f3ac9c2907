// The `sim` backend: device memory in host memory, device facts from a
// recorded profile, kernels as host functions registered by name. For tests.
#pragma once

#include "backend/driver_table.h"

namespace rgpu::backend {

// Fills `table` with the sim implementations. Reads options.profile_path
// (JSON, see data/driver/h200-device-profile.json) and options.sim_gpus.
Status LoadSimBackend(const BackendOptions& options, DriverTable* table);

}  // namespace rgpu::backend
