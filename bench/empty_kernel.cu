// The kernel rgpu bench launches to measure launch rates: it does nothing, so
// a launch costs only what the driver (and rgpu's link) adds. extern "C" keeps
// its name unmangled: "rgpu_bench_empty" in the cubin, and the name the sim
// backend's host implementation is registered under (backend/sim/test_kernels.cc).
// Built into a fatbin (sm_90 SASS + compute_90 PTX) by bench/CMakeLists.txt and
// embedded in the rgpu binary (bench/bench_kernel.h).
extern "C" __global__ void rgpu_bench_empty() {}
