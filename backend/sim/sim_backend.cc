// LoadSimBackend: builds the process's SimDevice and fills the DriverTable
// with the sim functions (sim_api_*.cc, sim_errors.cc).
#include "backend/sim/sim_backend.h"

#include "backend/sim/sim_state.h"
#include "common/log.h"

namespace rgpu::backend {

// Defined in test_kernels.cc; referencing it keeps that file's static
// RGPU_SIM_KERNEL registrations in any binary that links the sim backend
// (a static library's unreferenced objects would otherwise be dropped).
extern const int kSimTestKernelCount;

Status LoadSimBackend(const BackendOptions& options, DriverTable* table) {
  *table = DriverTable{};
  Result<std::unique_ptr<sim::SimDevice>> dev = sim::SimDevice::Create(options);
  if (!dev.ok()) return dev.take_status();
  RGPU_LOG_INFO("sim: %zu x %s (%llu bytes, cc %d.%d), %d host kernels built in",
                dev.value()->devices.size(), dev.value()->devices[0]->facts.name.c_str(),
                static_cast<unsigned long long>(dev.value()->devices[0]->facts.total_mem),
                dev.value()->devices[0]->facts.cc / 10, dev.value()->devices[0]->facts.cc % 10,
                kSimTestKernelCount);
  sim::SimDevice::Install(std::move(dev.value()));
#define RGPU_SIM_FILL(name) table->name = &sim::name;
  RGPU_DRIVER_FUNCTIONS(RGPU_SIM_FILL)
#undef RGPU_SIM_FILL
  return Status();
}

}  // namespace rgpu::backend
