// The CUmemAllocationProp of plain device memory on one GPU (pinned
// physical memory located on the device), as cuMemCreate and
// cuMemGetAllocationGranularity take it. Shared by the client (promoted
// pinned host buffers, client/pinned_memory.h) and the worker (its
// swappable heap, server/worker/device_heap.h).
#pragma once

#include <cuda.h>

namespace rgpu {

inline CUmemAllocationProp DeviceMemoryProp(int device) {
  CUmemAllocationProp prop{};
  prop.type = CU_MEM_ALLOCATION_TYPE_PINNED;
  prop.location.type = CU_MEM_LOCATION_TYPE_DEVICE;
  prop.location.id = device;
  return prop;
}

}  // namespace rgpu
