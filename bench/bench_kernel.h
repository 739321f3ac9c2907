// The fatbin of bench/empty_kernel.cu (one kernel, "rgpu_bench_empty", no
// parameters), embedded at build time. kBenchKernelImageSize is 0 when the
// build found no nvcc; rgpu bench then reports the launch measures as n/a.
#pragma once

#include <cstddef>

namespace rgpu::bench {

inline constexpr char kBenchKernelName[] = "rgpu_bench_empty";
extern const unsigned char kBenchKernelImage[];  // 64-byte aligned, as cuModuleLoadData wants
extern const size_t kBenchKernelImageSize;

}  // namespace rgpu::bench
