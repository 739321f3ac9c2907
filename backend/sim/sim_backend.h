// The `sim` backend: device memory in host memory, device facts from a
// recorded profile, kernels as host functions registered by name. For tests:
// CI runs the whole chain (nvcc-built programs, real cudart, rgpu's libcuda,
// TCP, worker) over it.
//
// What it simulates, and how faithfully:
// - devices: options.sim_gpus copies of the profile (name, memory, UUID,
//   attributes); device i > 0 gets UUID byte 15 += i and PCI bus += i.
// - memory: one PROT_NONE / MAP_NORESERVE reservation of total_mem per device
//   (sim_memory.h); CUdeviceptr == host address; new memory reads as zero;
//   freed pages go back to the host. Copies and memsets check that every
//   device range lies in one live allocation.
// - contexts, streams, events, modules, libraries, launches, occupancy,
//   stream capture and graphs: sim_api_*.cc. Work runs synchronously at
//   submission (captured work at cuGraphLaunch).
// - return codes: those of cuda.h's documentation, checked against an H200
//   with driver 580 by sim_driver_probe (testdata/probe_h200_driver580.txt,
//   test sim_driver_conformance).
// - kernels: host functions from kernel_registry.h; an unregistered kernel
//   launches with CUDA_ERROR_NOT_SUPPORTED (logged once per name).
//
// Ownership and threading: the sim state is one object per process. Each
// LoadSimBackend() call replaces it (freeing all memory and handles of the
// previous one) and must not run concurrently with sim driver calls; the
// driver calls themselves are thread-safe (one mutex).
#pragma once

#include "backend/driver_table.h"

namespace rgpu::backend {

// Fills `table` with the sim implementations. Reads options.profile_path
// (JSON, see data/driver/h200-device-profile.json) and options.sim_gpus
// (1..64). On failure (unreadable or invalid profile, bad sim_gpus, address
// space not reservable) the table is left empty and the Status names the file
// and field.
Status LoadSimBackend(const BackendOptions& options, DriverTable* table);

}  // namespace rgpu::backend
