// The `cuda` backend: the real NVIDIA driver, loaded with dlopen.
#pragma once

#include "backend/driver_table.h"

namespace rgpu::backend {

// dlopens options.driver_path (or, when empty, the first libcuda.so.1 found
// that is not rgpu's own client) and fills `table` through the driver's
// cuGetProcAddress. Fails with a clear message when the driver is missing or
// is rgpu's client library.
Status LoadCudaBackend(const BackendOptions& options, DriverTable* table);

}  // namespace rgpu::backend
