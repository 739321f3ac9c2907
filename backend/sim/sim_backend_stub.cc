// Placeholder until the sim backend lands.
#include "backend/sim/sim_backend.h"
namespace rgpu::backend {
Status LoadSimBackend(const BackendOptions&, DriverTable*) {
  return Status::Unsupported("sim backend not built yet");
}
}  // namespace rgpu::backend
