// Bytes per channel of a CUDA array format (CUarray_format), shared by the
// client, the worker and the sim backend, which each check array and texture
// descriptions against it. 0 for the formats rgpu does not carry
// (block-compressed, YUV, packed): callers refuse those.
#pragma once

#include <cuda.h>

#include <cstdint>

namespace rgpu {

inline uint64_t ArrayFormatBytes(uint32_t format) {
  switch (format) {
    case CU_AD_FORMAT_UNSIGNED_INT8: case CU_AD_FORMAT_SIGNED_INT8: return 1;
    case CU_AD_FORMAT_UNSIGNED_INT16: case CU_AD_FORMAT_SIGNED_INT16: case CU_AD_FORMAT_HALF: return 2;
    case CU_AD_FORMAT_UNSIGNED_INT32: case CU_AD_FORMAT_SIGNED_INT32: case CU_AD_FORMAT_FLOAT: return 4;
    default: return 0;
  }
}

}  // namespace rgpu
