#include "backend/cuda/cuda_backend.h"
#include "backend/driver_table.h"
#include "backend/sim/sim_backend.h"

namespace rgpu::backend {

Status LoadBackend(const BackendOptions& options, DriverTable* table) {
  *table = DriverTable{};
  if (options.kind == "cuda") return LoadCudaBackend(options, table);
  if (options.kind == "sim") return LoadSimBackend(options, table);
  return Status::Invalid("unknown backend '" + options.kind + "' (expected cuda or sim)");
}

}  // namespace rgpu::backend
