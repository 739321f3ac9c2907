// Host implementations of CUDA kernels for the sim backend, by mangled name.
//
// The sim never runs device code: cuLaunchKernel(Ex) looks up the function's
// mangled name here and calls the registered host function once per launch
// (not once per thread) with the launch geometry and a pointer to each
// parameter, exactly like the kernelParams array of cuLaunchKernel. The host
// function walks the grid itself and must do what the device code would do for
// that geometry (e.g. a kernel without a grid-stride loop touches only the
// first gridDim.x * blockDim.x elements).
//
// Device pointers are host addresses in the sim (CUdeviceptr == address), so a
// host kernel dereferences them directly — after checking them with
// SimLaunch::DeviceSpan(), which fails the launch with
// CUDA_ERROR_ILLEGAL_ADDRESS instead of crashing the worker.
//
// Registration: at static-initialisation time with RGPU_SIM_KERNEL (or at any
// time with RegisterSimKernel). The registry is process-wide and thread-safe.
// Names must be unique: registering a name twice keeps the first and returns
// false.
//
// Threading: a host kernel runs on the thread that called cuLaunchKernel while
// the sim device lock is held; it must not call back into the sim's driver
// functions (SimLaunch's own helpers are safe).
#pragma once

#include <cuda.h>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <type_traits>

namespace rgpu::backend {

struct SimDim3 {
  uint32_t x = 1, y = 1, z = 1;
  uint64_t count() const { return uint64_t{x} * y * z; }
};

// Services the sim offers to a running host kernel (implemented in sim/).
class SimLaunchServices {
 public:
  // True when [p, p + bytes) lies inside one live device allocation.
  virtual bool IsDeviceRange(const void* p, size_t bytes) const = 0;
  // Address and size of a __device__ / __constant__ variable of the launched
  // kernel's module; null if the module has no such global.
  virtual void* Global(const char* name, size_t* bytes) const = 0;

 protected:
  ~SimLaunchServices() = default;
};

struct SimLaunch {
  const char* name = nullptr;      // mangled kernel name
  SimDim3 grid, block, cluster;    // cluster is {1,1,1} unless set by attribute / image
  uint32_t shared_mem_bytes = 0;   // dynamic shared memory requested
  bool cooperative = false;
  CUstream stream = nullptr;       // as passed to the launch
  void* const* params = nullptr;   // params[i] points to parameter i
  uint32_t num_params = 0;
  const size_t* param_sizes = nullptr;  // from the module image
  const SimLaunchServices* services = nullptr;
  // Set by the host kernel to fail the launch (e.g. CUDA_ERROR_ILLEGAL_ADDRESS).
  mutable CUresult error = CUDA_SUCCESS;

  uint64_t total_threads() const { return grid.count() * block.count(); }

  // Parameter i by value (copied, so no alignment assumptions). Reading past
  // the parameter list, or a type whose size differs from the image's record
  // of that parameter, fails the launch with CUDA_ERROR_INVALID_VALUE and
  // returns T{}.
  template <class T>
  T Arg(uint32_t i) const {
    static_assert(std::is_trivially_copyable_v<T>);
    T v{};
    if (i >= num_params || (param_sizes != nullptr && param_sizes[i] != sizeof(T))) {
      error = CUDA_ERROR_INVALID_VALUE;
      return v;
    }
    std::memcpy(&v, params[i], sizeof(T));
    return v;
  }

  // `count` elements of T at device address `p`, or null (and the launch fails
  // with CUDA_ERROR_ILLEGAL_ADDRESS) if they are not all inside one live
  // allocation. count == 0 checks only that p points into an allocation.
  template <class T>
  T* DeviceSpan(T* p, uint64_t count) const {
    uint64_t bytes = count * sizeof(T);
    if (p == nullptr || (count != 0 && bytes / count != sizeof(T)) || services == nullptr ||
        !services->IsDeviceRange(p, bytes)) {
      error = CUDA_ERROR_ILLEGAL_ADDRESS;
      return nullptr;
    }
    return p;
  }
};

using SimKernelFn = void (*)(const SimLaunch&);

// Registers `fn` for the kernel with mangled name `mangled_name` (copied).
// Returns false if the name is empty or already registered.
bool RegisterSimKernel(const char* mangled_name, SimKernelFn fn);
// The host function for `mangled_name`, or null.
SimKernelFn FindSimKernel(const char* mangled_name);

}  // namespace rgpu::backend

// Registers `fn` for `mangled_name` before main(). Use at namespace scope:
//   RGPU_SIM_KERNEL("_Z6vecAddPKfS0_Pfi", VecAdd);
#define RGPU_SIM_KERNEL_CAT2(a, b) a##b
#define RGPU_SIM_KERNEL_CAT(a, b) RGPU_SIM_KERNEL_CAT2(a, b)
#define RGPU_SIM_KERNEL(mangled_name, fn)                                         \
  [[maybe_unused]] static const bool RGPU_SIM_KERNEL_CAT(rgpu_sim_kernel_, __LINE__) = \
      ::rgpu::backend::RegisterSimKernel(mangled_name, fn)
