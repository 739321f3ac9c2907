// Placeholder until the cuda backend lands.
#include "backend/cuda/cuda_backend.h"
namespace rgpu::backend {
Status LoadCudaBackend(const BackendOptions&, DriverTable*) {
  return Status::Unsupported("cuda backend not built yet");
}
}  // namespace rgpu::backend
