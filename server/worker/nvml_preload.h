// PreloadNvml: loads the GPU host's NVML (what the NvmlQuery handler uses,
// handlers_nvml.cc) ahead of the first query.
//
// NVML's own init takes tens of milliseconds (on an H100, ~75 ms: 200
// nvmlDeviceGetMemoryInfo through rgpu took 79 ms when the first of them
// loaded it, 16 µs each after). A warm worker calls this on a thread of its
// own while it waits for its session, so that a program's first NVML query
// costs one round trip like the others. Safe to call more than once and
// concurrently with queries (they wait for the one load). A backend that is
// not `cuda` loads nothing.
#pragma once

#include <string>

#include "backend/driver_table.h"

namespace rgpu::worker {

void PreloadNvml(const backend::DriverTable& d, const std::string& backend_kind);

}  // namespace rgpu::worker
