// Sim CUDA arrays: host buffers with their descriptor (sim_api_array.cc).
//
// An array's bytes are rows of width * element size, `height` rows per slice
// (1 for a 1D array) and `depth` slices (1 for 1D/2D); copies address them
// like pitched memory with pitch = row bytes. Texture and surface objects
// are opaque ids naming their resource. All of this is guarded by the sim
// lock (SimDevice::mu): callers hold it.
#pragma once

#include <cuda.h>

#include <cstdint>
#include <vector>

namespace rgpu::backend::sim {

struct SimArray {
  uint64_t ctx = 0;
  CUDA_ARRAY3D_DESCRIPTOR desc{};
  uint64_t row_bytes = 0, rows = 1, slices = 1;
  std::vector<uint8_t> bytes;
};

// The array named by handle `id`, or null. Requires the sim lock.
SimArray* FindSimArray(uint64_t id);
// The array behind live surface object `surf`, or null. Requires the sim
// lock (host kernels run with it held).
SimArray* FindSimSurface(uint64_t surf);

}  // namespace rgpu::backend::sim
