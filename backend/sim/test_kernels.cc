// Host implementations of the kernels that tests/e2e/*.cu launch, registered
// by mangled name (names from the sm_90 cubins: readelf -s, STT_FUNC symbols).
//
// Each function does for the whole launch what the device code does per
// thread, for exactly the launched geometry: a kernel without a grid-stride
// loop covers only gridDim * blockDim elements. Every device range is checked
// with SimLaunch::DeviceSpan first, so a wrong pointer fails the launch with
// CUDA_ERROR_ILLEGAL_ADDRESS instead of crashing the worker. Arithmetic is
// written in the device code's order so results match bit for bit (the e2e
// programs use values that are exact in float either way).
#include <cstdio>
#include <algorithm>
#include <chrono>
#include <thread>
#include <cstdint>
#include <cstring>

#include "backend/sim/kernel_registry.h"
#include "backend/sim/sim_arrays.h"

namespace rgpu::backend {
namespace {

// Elements a 1D kernel without a grid-stride loop touches: min(n, threads in x).
uint64_t Covered1D(const SimLaunch& l, int n) {
  if (n <= 0) return 0;
  return std::min<uint64_t>(static_cast<uint64_t>(n), uint64_t{l.grid.x} * l.block.x);
}

// ---- vector_add.cu ----------------------------------------------------------

// __global__ void vectorAdd(const float* a, const float* b, float* c, int n)
void VectorAdd(const SimLaunch& l) {
  int n = l.Arg<int>(3);
  uint64_t m = Covered1D(l, n);
  const float* a = l.DeviceSpan(l.Arg<const float*>(0), m);
  const float* b = l.DeviceSpan(l.Arg<const float*>(1), m);
  float* c = l.DeviceSpan(l.Arg<float*>(2), m);
  if (m == 0 || l.error != CUDA_SUCCESS) return;
  for (uint64_t i = 0; i < m; ++i) c[i] = a[i] + b[i];
}
RGPU_SIM_KERNEL("_Z9vectorAddPKfS0_Pfi", VectorAdd);

// __global__ void scaleInPlace(float* x, float s, int n)
void ScaleInPlace(const SimLaunch& l) {
  float s = l.Arg<float>(1);
  uint64_t m = Covered1D(l, l.Arg<int>(2));
  if (m == 0) return;
  float* x = l.DeviceSpan(l.Arg<float*>(0), m);
  if (l.error != CUDA_SUCCESS) return;
  for (uint64_t i = 0; i < m; ++i) x[i] *= s;
}
RGPU_SIM_KERNEL("_Z12scaleInPlacePffi", ScaleInPlace);

// ---- streams_events.cu ------------------------------------------------------

// __global__ void addDelta(int* p, int n, int delta)
void AddDelta(const SimLaunch& l) {
  int delta = l.Arg<int>(2);
  uint64_t m = Covered1D(l, l.Arg<int>(1));
  if (m == 0) return;
  int* p = l.DeviceSpan(l.Arg<int*>(0), m);
  if (l.error != CUDA_SUCCESS) return;
  for (uint64_t i = 0; i < m; ++i) p[i] += delta;
}
RGPU_SIM_KERNEL("_Z8addDeltaPiii", AddDelta);

// ---- host_register_mapped.cu ------------------------------------------------

// __global__ void setEven(int* p, int n, int v): p[2t] = v + 2t per thread t
void SetEven(const SimLaunch& l) {
  int n = l.Arg<int>(1), v = l.Arg<int>(2);
  uint64_t threads = uint64_t{l.grid.x} * l.block.x;
  uint64_t m = n <= 0 ? 0 : std::min<uint64_t>(static_cast<uint64_t>(n), 2 * threads);
  if (m == 0) return;
  int* p = l.DeviceSpan(l.Arg<int*>(0), m);
  if (l.error != CUDA_SUCCESS) return;
  for (uint64_t i = 0; i < m; i += 2) p[i] = v + static_cast<int>(i);
}
RGPU_SIM_KERNEL("_Z7setEvenPiii", SetEven);

// __global__ void fill2D(float* p, size_t pitch, int w, int h)
void Fill2D(const SimLaunch& l) {
  auto* base = reinterpret_cast<char*>(l.Arg<float*>(0));
  uint64_t pitch = l.Arg<uint64_t>(1);
  int w = l.Arg<int>(2), h = l.Arg<int>(3);
  uint64_t xs = std::min<uint64_t>(std::max(w, 0), uint64_t{l.grid.x} * l.block.x);
  uint64_t ys = std::min<uint64_t>(std::max(h, 0), uint64_t{l.grid.y} * l.block.y);
  if (xs == 0 || ys == 0 || l.error != CUDA_SUCCESS) return;
  for (uint64_t y = 0; y < ys; ++y) {
    float* row = l.DeviceSpan(reinterpret_cast<float*>(base + y * pitch), xs);
    if (row == nullptr) return;
    for (uint64_t x = 0; x < xs; ++x) row[x] = row[x] * 2.0f + static_cast<float>(y);
  }
}
RGPU_SIM_KERNEL("_Z6fill2DPfmii", Fill2D);

// ---- saxpy_grid.cu ------------------------------------------------------------

struct Tweak {
  float bias;
  int every;
  double bonus;
};
static_assert(sizeof(Tweak) == 16);

// __global__ void saxpyGrid(float a, const float* x, float* y, int n, Tweak t)
// Grid-stride: every i < n is covered whatever the grid.
void SaxpyGrid(const SimLaunch& l) {
  float a = l.Arg<float>(0);
  int n = l.Arg<int>(3);
  Tweak t = l.Arg<Tweak>(4);
  if (n <= 0 || l.total_threads() == 0) return;
  const float* x = l.DeviceSpan(l.Arg<const float*>(1), n);
  float* y = l.DeviceSpan(l.Arg<float*>(2), n);
  if (l.error != CUDA_SUCCESS) return;
  for (int i = 0; i < n; ++i) {
    float v = a * x[i] + y[i] + t.bias;
    if (t.every > 0 && i % t.every == 0) v += static_cast<float>(t.bonus);
    y[i] = v;
  }
}
RGPU_SIM_KERNEL("_Z9saxpyGridfPKfPfi5Tweak", SaxpyGrid);

// __global__ void countAbove(const float* y, int n, float threshold, unsigned* count)
void CountAbove(const SimLaunch& l) {
  int n = l.Arg<int>(1);
  float threshold = l.Arg<float>(2);
  if (n <= 0) return;
  const float* y = l.DeviceSpan(l.Arg<const float*>(0), n);
  unsigned* count = l.DeviceSpan(l.Arg<unsigned*>(3), 1);
  if (l.error != CUDA_SUCCESS) return;
  for (int i = 0; i < n; ++i) {
    if (y[i] > threshold) ++*count;
  }
}
RGPU_SIM_KERNEL("_Z10countAbovePKfifPj", CountAbove);

// ---- driver_kernels.cu (driver_api) -----------------------------------------------

struct Affine {
  float scale;
  int offset;
  double bias;
};
static_assert(sizeof(Affine) == 16);

// __global__ void scaleOffset(const float* in, float* out, int n, Affine a)
// Also counts launches in __device__ int g_launches.
void ScaleOffset(const SimLaunch& l) {
  Affine a = l.Arg<Affine>(3);
  uint64_t m = Covered1D(l, l.Arg<int>(2));
  const float* in = m ? l.DeviceSpan(l.Arg<const float*>(0), m) : nullptr;
  float* out = m ? l.DeviceSpan(l.Arg<float*>(1), m) : nullptr;
  if (l.error != CUDA_SUCCESS) return;
  for (uint64_t i = 0; i < m; ++i) {
    out[i] = in[i] * a.scale + static_cast<float>(a.offset) + static_cast<float>(a.bias);
  }
  size_t bytes = 0;
  if (auto* launches = static_cast<int*>(l.services->Global("g_launches", &bytes));
      launches != nullptr && bytes == sizeof(int)) {
    ++*launches;
  }
}
RGPU_SIM_KERNEL("_Z11scaleOffsetPKfPfi6Affine", ScaleOffset);

// extern "C" __global__ void multiplyByGlobal(float* p, int n): p[i] *= g_factor
void MultiplyByGlobal(const SimLaunch& l) {
  uint64_t m = Covered1D(l, l.Arg<int>(1));
  size_t bytes = 0;
  const auto* factor = static_cast<const float*>(l.services->Global("g_factor", &bytes));
  if (factor == nullptr || bytes != sizeof(float)) {
    l.error = CUDA_ERROR_ILLEGAL_ADDRESS;
    return;
  }
  if (m == 0) return;
  float* p = l.DeviceSpan(l.Arg<float*>(0), m);
  if (l.error != CUDA_SUCCESS) return;
  for (uint64_t i = 0; i < m; ++i) p[i] *= *factor;
}
RGPU_SIM_KERNEL("multiplyByGlobal", MultiplyByGlobal);

// extern "C" __global__ void addRowIndex(int* p, size_t pitch, int width, int height)
// x = blockIdx.x * blockDim.x + threadIdx.x, y = blockIdx.y.
void AddRowIndex(const SimLaunch& l) {
  auto* base = reinterpret_cast<char*>(l.Arg<int*>(0));
  uint64_t pitch = l.Arg<uint64_t>(1);
  int width = l.Arg<int>(2), height = l.Arg<int>(3);
  uint64_t xs = std::min<uint64_t>(std::max(width, 0), uint64_t{l.grid.x} * l.block.x);
  uint64_t ys = std::min<uint64_t>(std::max(height, 0), l.grid.y);
  if (xs == 0 || ys == 0 || l.error != CUDA_SUCCESS) return;
  for (uint64_t y = 0; y < ys; ++y) {
    int* row = l.DeviceSpan(reinterpret_cast<int*>(base + y * pitch), xs);
    if (row == nullptr) return;
    for (uint64_t x = 0; x < xs; ++x) row[x] += static_cast<int>(y) + 1;
  }
}
RGPU_SIM_KERNEL("addRowIndex", AddRowIndex);

// extern "C" __global__ void clusterRank(int* out): out[blockIdx.x] = %cluster_ctarank
void ClusterRank(const SimLaunch& l) {
  int* out = l.DeviceSpan(l.Arg<int*>(0), l.grid.x);
  if (out == nullptr) return;
  const SimDim3& c = l.cluster;
  for (uint32_t z = 0; z < l.grid.z; ++z) {
    for (uint32_t y = 0; y < l.grid.y; ++y) {
      for (uint32_t x = 0; x < l.grid.x; ++x) {
        out[x] = static_cast<int>(x % c.x + (y % c.y) * c.x + (z % c.z) * c.x * c.y);
      }
    }
  }
}
RGPU_SIM_KERNEL("clusterRank", ClusterRank);

}  // namespace

// Referenced by LoadSimBackend so that this object file (and its static
// registrations above) is linked into every binary that uses the sim.
extern const int kSimTestKernelCount = 11;

}  // namespace rgpu::backend

// ---- bench/empty_kernel.cu (rgpu bench) ------------------------------------------

namespace rgpu::backend {
namespace {

// extern "C" __global__ void rgpu_bench_empty(): does nothing, so a launch
// measures only what the driver and the link cost.
void BenchEmpty(const SimLaunch&) {}
RGPU_SIM_KERNEL("rgpu_bench_empty", BenchEmpty);

}  // namespace
}  // namespace rgpu::backend

// ---- tests/programs/stuck_kernel.cu -------------------------------------------

namespace rgpu::backend {
namespace {

// extern "C" __global__ void rgpu_sleep_ms(unsigned ms): spins for `ms`
// milliseconds on the GPU's clock; here it sleeps (at most 10 minutes), so
// the worker's executor is held inside a launch as by a kernel that runs long.
void SleepMs(const SimLaunch& l) {
  uint32_t ms = std::min<uint32_t>(l.Arg<uint32_t>(0), 600000);
  std::this_thread::sleep_for(std::chrono::milliseconds(ms));
}
RGPU_SIM_KERNEL("rgpu_sleep_ms", SleepMs);

}  // namespace
}  // namespace rgpu::backend

// ---- tests/programs/device_output.cu ------------------------------------------

namespace rgpu::backend {
namespace {

// __global__ void say(int v): printf("device says %d (thread %d)\n", v, tid)
// from every thread, as device printf does (the driver writes it to the
// worker's stdout, which rgpu carries to the client).
void Say(const SimLaunch& l) {
  int v = l.Arg<int>(0);
  for (uint64_t t = 0; t < l.total_threads(); ++t) printf("device says %d (thread %llu)\n", v, (unsigned long long)t);
  fflush(stdout);
}
RGPU_SIM_KERNEL("_Z3sayi", Say);

}  // namespace
}  // namespace rgpu::backend

// ---- tests/e2e/arrays.cu -----------------------------------------------------

namespace rgpu::backend {
namespace {

// __global__ void surfRead2D(cudaSurfaceObject_t s, float* out, int w, int h):
// one thread per element of a 2D grid; for x < w, y < h:
//   out[y * w + x] = 2 * surf2Dread<float>(s, x * 4, y)
// The surface's array is read as float rows (the program makes it float, 1
// channel); a read outside it traps on the GPU (cudaBoundaryModeTrap).
void SurfRead2D(const SimLaunch& l) {
  uint64_t surf = l.Arg<uint64_t>(0);
  int w = l.Arg<int>(2), h = l.Arg<int>(3);
  if (l.error != CUDA_SUCCESS || w <= 0 || h <= 0) return;
  uint64_t cw = std::min<uint64_t>(w, uint64_t{l.grid.x} * l.block.x);
  uint64_t chh = std::min<uint64_t>(h, uint64_t{l.grid.y} * l.block.y);
  sim::SimArray* a = sim::FindSimSurface(surf);
  if (a == nullptr || cw * 4 > a->row_bytes || chh > a->rows) {
    l.error = CUDA_ERROR_ILLEGAL_ADDRESS;
    return;
  }
  float* out = l.DeviceSpan(l.Arg<float*>(1), static_cast<uint64_t>(w) * h);
  if (l.error != CUDA_SUCCESS) return;
  for (uint64_t y = 0; y < chh; ++y)
    for (uint64_t x = 0; x < cw; ++x) {
      float v;
      std::memcpy(&v, a->bytes.data() + y * a->row_bytes + x * 4, 4);
      out[y * w + x] = 2 * v;
    }
}
RGPU_SIM_KERNEL("_Z10surfRead2DyPfii", SurfRead2D);

}  // namespace
}  // namespace rgpu::backend
