// Sim driver functions: kernel launch, occupancy; function attribute model.
//
// Launch: validates like the driver (geometry against the device limits and
// the function's max threads, dynamic shared memory against the function's
// MAX_DYNAMIC_SHARED_SIZE_BYTES, parameters, stream, launch attributes), then
// calls the host implementation registered for the kernel's mangled name
// (kernel_registry.h) synchronously. No registered implementation:
// CUDA_ERROR_NOT_SUPPORTED, logged once per kernel name. A host kernel that
// reports a device fault (illegal address...) makes the context's error
// sticky, as a faulting kernel does on a GPU.
//
// Occupancy model (per SM; limits from the device profile):
//   warps/block   = ceil(blockSize / 32)
//   by threads    = (MAX_THREADS_PER_MULTIPROCESSOR / 32) / warps/block
//   by blocks     = MAX_BLOCKS_PER_MULTIPROCESSOR (32 on Hopper)
//   by registers  = (MAX_REGISTERS_PER_MULTIPROCESSOR / regs/warp) / warps/block,
//                   regs/warp = roundup(num_regs * 32, 256)
//   by shared mem = MAX_SHARED_MEMORY_PER_MULTIPROCESSOR /
//                   roundup(static + dynamic + RESERVED_SHARED_MEMORY_PER_BLOCK, 128)
//   result        = the smallest; 0 if dynamic shared memory exceeds the
//                   function's MAX_DYNAMIC_SHARED_SIZE_BYTES.
// Available dynamic shared memory for n blocks per SM:
//   min(MAX_DYNAMIC_SHARED_SIZE_BYTES, MAX_SHARED_MEMORY_PER_MULTIPROCESSOR / n
//       - static); CUDA_ERROR_INVALID_VALUE when n blocks cannot be resident
//   for the other limits.
// This ignores per-sub-partition warp allocation and the shared-memory
// carveout steps of the real hardware. sim_driver_probe compared it with an
// H200 (driver 580) on image/testdata's kernels: every value matched.
#include <algorithm>
#include <cstring>
#include <string>

#include "backend/sim/kernel_registry.h"
#include "backend/sim/sim_state.h"
#include "common/log.h"

namespace rgpu::backend::sim {
namespace {

constexpr int kDefaultRegs = 32;         // PTX-only kernels (never compiled here)
constexpr int kDefaultSharedLimit = 48 * 1024;
constexpr int kSmemGranularity = 128;

int Regs(const image::KernelInfo& k) { return k.num_regs > 0 ? k.num_regs : kDefaultRegs; }

int Product(const uint32_t d[3]) {
  return d[0] == 0 ? 0 : static_cast<int>(d[0] * std::max(d[1], 1u) * std::max(d[2], 1u));
}

// Threads per block the function's own bounds allow (__launch_bounds__,
// .reqntid); the device limit otherwise.
int BoundsThreads(const SimDevice& s, int device, const image::KernelInfo& k) {
  int limit = s.Attr(device, CU_DEVICE_ATTRIBUTE_MAX_THREADS_PER_BLOCK);
  if (int bounds = Product(k.max_threads); bounds > 0) limit = std::min(limit, bounds);
  if (int req = Product(k.req_threads); req > 0) limit = std::min(limit, req);
  return limit;
}

// CU_FUNC_ATTRIBUTE_MAX_THREADS_PER_BLOCK: bounds and registers.
int MaxThreads(const SimDevice& s, int device, const image::KernelInfo& k) {
  int regs_per_warp = (Regs(k) * 32 + 255) / 256 * 256;
  int warps = s.Attr(device, CU_DEVICE_ATTRIBUTE_MAX_REGISTERS_PER_BLOCK) / regs_per_warp;
  return std::min(BoundsThreads(s, device, k), warps * 32);
}

int MaxActiveBlocks(const SimDevice& s, int device, const image::KernelInfo& k, const FuncAttrs& a,
                    int block_size, size_t dynamic_smem) {
  // (The driver does not apply __launch_bounds__ here: a 256-thread-bounded
  // kernel still gets 4 blocks of 512 threads per SM.)
  if (dynamic_smem > static_cast<size_t>(a.max_dynamic_shared)) return 0;
  int warps = (block_size + 31) / 32;
  int by_threads = s.Attr(device, CU_DEVICE_ATTRIBUTE_MAX_THREADS_PER_MULTIPROCESSOR) / 32 / warps;
  int by_blocks = s.Attr(device, CU_DEVICE_ATTRIBUTE_MAX_BLOCKS_PER_MULTIPROCESSOR);
  int regs_per_warp = (Regs(k) * 32 + 255) / 256 * 256;
  int by_regs =
      s.Attr(device, CU_DEVICE_ATTRIBUTE_MAX_REGISTERS_PER_MULTIPROCESSOR) / regs_per_warp / warps;
  uint64_t smem = k.static_shared_bytes + dynamic_smem +
                  s.Attr(device, CU_DEVICE_ATTRIBUTE_RESERVED_SHARED_MEMORY_PER_BLOCK);
  smem = (smem + kSmemGranularity - 1) / kSmemGranularity * kSmemGranularity;
  uint64_t sm_smem = s.Attr(device, CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_MULTIPROCESSOR);
  int by_smem = smem == 0 ? by_blocks : static_cast<int>(sm_smem / smem);
  return std::max(0, std::min({by_threads, by_blocks, by_regs, by_smem}));
}

// Services a running host kernel may use (called with the device lock held).
class LaunchServices final : public SimLaunchServices {
 public:
  LaunchServices(SimDevice* s, const Module* m) : s_(s), m_(m) {}
  bool IsDeviceRange(const void* p, size_t bytes) const override {
    return s_->IsDeviceRange(reinterpret_cast<uint64_t>(p), bytes);
  }
  void* Global(const char* name, size_t* bytes) const override {
    auto it = m_->globals.find(std::string_view(name ? name : ""));
    if (it == m_->globals.end()) return nullptr;
    if (bytes != nullptr) *bytes = it->second.second;
    return reinterpret_cast<void*>(it->second.first);
  }

 private:
  SimDevice* s_;
  const Module* m_;
};

struct LaunchArgs {
  CUfunction f;
  SimDim3 grid, block;
  unsigned shared = 0;
  CUstream stream = nullptr;
  void** params = nullptr;
  void** extra = nullptr;
  const CUlaunchAttribute* attrs = nullptr;
  unsigned num_attrs = 0;
};

// A validated launch with its own copy of the parameter bytes, so that it can
// run now or later (when a capturing stream recorded it).
struct Prepared {
  uint64_t fid = 0;
  SimDim3 grid, block, cluster;
  unsigned shared = 0;
  bool cooperative = false;
  CUstream stream = nullptr;
  std::vector<char> params;  // laid out as the kernel's parameter buffer
};

// CU_LAUNCH_PARAM_BUFFER_POINTER / _SIZE: the packed parameter buffer.
CUresult UnpackExtra(void** extra, const image::KernelInfo& k, std::vector<char>* out) {
  char* buffer = nullptr;
  size_t* size = nullptr;
  for (int i = 0; i < 64; i += 2) {  // bounded: a garbage list cannot run away
    void* key = extra[i];
    if (key == CU_LAUNCH_PARAM_END) {
      if (buffer == nullptr || size == nullptr || *size < k.param_bytes) return CUDA_ERROR_INVALID_VALUE;
      out->assign(buffer, buffer + k.param_bytes);
      return CUDA_SUCCESS;
    }
    if (key == CU_LAUNCH_PARAM_BUFFER_POINTER) {
      buffer = static_cast<char*>(extra[i + 1]);
    } else if (key == CU_LAUNCH_PARAM_BUFFER_SIZE) {
      size = static_cast<size_t*>(extra[i + 1]);
    } else {
      return CUDA_ERROR_INVALID_VALUE;
    }
  }
  return CUDA_ERROR_INVALID_VALUE;
}

// Geometry, shared memory and launch attributes, as the driver checks them.
// Fills p->cluster and p->cooperative.
CUresult Validate(SimDevice* s, int dev, const image::KernelInfo& k, const Function& f,
                  const LaunchArgs& a, Prepared* p) {
  const CUdevice_attribute grid_max[3] = {CU_DEVICE_ATTRIBUTE_MAX_GRID_DIM_X,
                                          CU_DEVICE_ATTRIBUTE_MAX_GRID_DIM_Y,
                                          CU_DEVICE_ATTRIBUTE_MAX_GRID_DIM_Z};
  const CUdevice_attribute block_max[3] = {CU_DEVICE_ATTRIBUTE_MAX_BLOCK_DIM_X,
                                           CU_DEVICE_ATTRIBUTE_MAX_BLOCK_DIM_Y,
                                           CU_DEVICE_ATTRIBUTE_MAX_BLOCK_DIM_Z};
  const uint32_t g[3] = {a.grid.x, a.grid.y, a.grid.z}, b[3] = {a.block.x, a.block.y, a.block.z};
  for (int i = 0; i < 3; ++i) {
    if (g[i] == 0 || g[i] > static_cast<uint32_t>(s->Attr(dev, grid_max[i]))) {
      return CUDA_ERROR_INVALID_VALUE;
    }
    if (b[i] == 0 || b[i] > static_cast<uint32_t>(s->Attr(dev, block_max[i]))) {
      return CUDA_ERROR_INVALID_VALUE;
    }
  }
  uint64_t threads = a.block.count();
  if (threads > static_cast<uint64_t>(s->Attr(dev, CU_DEVICE_ATTRIBUTE_MAX_THREADS_PER_BLOCK))) {
    return CUDA_ERROR_INVALID_VALUE;
  }
  // Above the function's __launch_bounds__: INVALID_VALUE (as the driver
  // answers); within them but above what its registers allow: out of resources.
  if (threads > static_cast<uint64_t>(BoundsThreads(*s, dev, k))) return CUDA_ERROR_INVALID_VALUE;
  if (threads > static_cast<uint64_t>(MaxThreads(*s, dev, k))) return CUDA_ERROR_LAUNCH_OUT_OF_RESOURCES;
  if (a.shared > static_cast<unsigned>(f.attrs.max_dynamic_shared)) return CUDA_ERROR_INVALID_VALUE;

  if (a.num_attrs != 0 && a.attrs == nullptr) return CUDA_ERROR_INVALID_VALUE;
  SimDim3 cluster{static_cast<uint32_t>(std::max(f.attrs.cluster[0], 0)),
                  static_cast<uint32_t>(std::max(f.attrs.cluster[1], 0)),
                  static_cast<uint32_t>(std::max(f.attrs.cluster[2], 0))};
  bool have_cluster = cluster.x != 0;
  for (unsigned i = 0; i < a.num_attrs; ++i) {
    const CUlaunchAttribute& at = a.attrs[i];
    switch (EnumValue(at.id)) {
      case CU_LAUNCH_ATTRIBUTE_COOPERATIVE: p->cooperative = at.value.cooperative != 0; break;
      case CU_LAUNCH_ATTRIBUTE_CLUSTER_DIMENSION: {
        SimDim3 c{at.value.clusterDim.x, at.value.clusterDim.y, at.value.clusterDim.z};
        if (have_cluster && Product(k.cluster_dims) > 0 &&
            (c.x != cluster.x || c.y != cluster.y || c.z != cluster.z)) {
          return CUDA_ERROR_INVALID_CLUSTER_SIZE;  // conflicts with __cluster_dims__
        }
        cluster = c;
        have_cluster = true;
        break;
      }
      case CU_LAUNCH_ATTRIBUTE_IGNORE:
      case CU_LAUNCH_ATTRIBUTE_ACCESS_POLICY_WINDOW:
      case CU_LAUNCH_ATTRIBUTE_SYNCHRONIZATION_POLICY:
      case CU_LAUNCH_ATTRIBUTE_CLUSTER_SCHEDULING_POLICY_PREFERENCE:
      case CU_LAUNCH_ATTRIBUTE_PROGRAMMATIC_STREAM_SERIALIZATION:
      case CU_LAUNCH_ATTRIBUTE_PROGRAMMATIC_EVENT:
      case CU_LAUNCH_ATTRIBUTE_PRIORITY:
      case CU_LAUNCH_ATTRIBUTE_MEM_SYNC_DOMAIN_MAP:
      case CU_LAUNCH_ATTRIBUTE_MEM_SYNC_DOMAIN:
      case CU_LAUNCH_ATTRIBUTE_PREFERRED_CLUSTER_DIMENSION:
      case CU_LAUNCH_ATTRIBUTE_LAUNCH_COMPLETION_EVENT:
      case CU_LAUNCH_ATTRIBUTE_DEVICE_UPDATABLE_KERNEL_NODE:
      case CU_LAUNCH_ATTRIBUTE_PREFERRED_SHARED_MEMORY_CARVEOUT:
      case CU_LAUNCH_ATTRIBUTE_NVLINK_UTIL_CENTRIC_SCHEDULING:
        break;  // scheduling hints: nothing to simulate
      default:
        return CUDA_ERROR_INVALID_VALUE;
    }
  }
  if (have_cluster) {
    if (cluster.x == 0 || cluster.y == 0 || cluster.z == 0 || a.grid.x % cluster.x ||
        a.grid.y % cluster.y || a.grid.z % cluster.z) {
      return CUDA_ERROR_INVALID_CLUSTER_SIZE;
    }
    uint64_t limit = f.attrs.non_portable_cluster ? 16 : 8;  // Hopper: 8 portable, 16 opt-in
    if (cluster.count() > limit) return CUDA_ERROR_INVALID_CLUSTER_SIZE;
    p->cluster = cluster;
  }
  if (p->cooperative) {
    uint64_t per_sm = static_cast<uint64_t>(
        MaxActiveBlocks(*s, dev, k, f.attrs, static_cast<int>(threads), a.shared));
    if (a.grid.count() > per_sm * s->Attr(dev, CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT)) {
      return CUDA_ERROR_COOPERATIVE_LAUNCH_TOO_LARGE;
    }
  }
  return CUDA_SUCCESS;
}

// Runs a prepared launch (device lock held).
CUresult Execute(SimDevice* s, const Prepared& p) {
  auto fit = s->functions.find(p.fid);
  if (fit == s->functions.end()) return CUDA_ERROR_INVALID_HANDLE;  // module unloaded since
  const Function& f = fit->second;
  const Module& m = s->modules[f.module];
  Context* ctx = s->FindContext(m.ctx);
  if (ctx == nullptr || !ctx->active) return CUDA_ERROR_CONTEXT_IS_DESTROYED;
  if (ctx->sticky != CUDA_SUCCESS) return ctx->sticky;
  const image::KernelInfo& k = *f.info;
  SimKernelFn fn = FindSimKernel(k.name.c_str());
  if (fn == nullptr) return CUDA_ERROR_NOT_SUPPORTED;
  std::vector<char> bytes = p.params;  // host kernels get a fresh copy every run
  std::vector<void*> params;
  for (const image::KernelParam& kp : k.params) params.push_back(bytes.data() + kp.offset);
  LaunchServices services(s, &m);
  SimLaunch launch;
  launch.name = k.name.c_str();
  launch.grid = p.grid;
  launch.block = p.block;
  launch.cluster = p.cluster;
  launch.shared_mem_bytes = p.shared;
  launch.cooperative = p.cooperative;
  launch.stream = p.stream;
  launch.params = params.data();
  launch.num_params = static_cast<uint32_t>(params.size());
  launch.param_sizes = f.param_sizes.data();
  launch.services = &services;
  fn(launch);
  switch (launch.error) {
    case CUDA_SUCCESS: return CUDA_SUCCESS;
    case CUDA_ERROR_ILLEGAL_ADDRESS:
    case CUDA_ERROR_MISALIGNED_ADDRESS:
    case CUDA_ERROR_ASSERT:
    case CUDA_ERROR_LAUNCH_FAILED:
      RGPU_LOG_WARN("sim: kernel %s failed: error %d (sticky for its context)", k.name.c_str(),
                    static_cast<int>(launch.error));
      ctx->sticky = launch.error;
      return launch.error;
    default:
      return launch.error;
  }
}

CUresult Launch(const LaunchArgs& a) {
  SIM_ENTER(s);
  SIM_CURRENT_CTX(s, ctx);
  uint64_t fid = 0;
  Function* f = nullptr;
  if (CUresult r = s->ResolveFunction(a.f, &fid, &f); r != CUDA_SUCCESS) return r;
  const Module& m = s->modules[f->module];
  if (m.ctx != ctx->id) return CUDA_ERROR_INVALID_HANDLE;  // function of another context
  if (CUresult r = s->CheckStream(a.stream); r != CUDA_SUCCESS) return r;
  const image::KernelInfo& k = *f->info;
  int dev = ctx->device;
  Prepared p;
  p.fid = fid;
  p.grid = a.grid;
  p.block = a.block;
  p.shared = a.shared;
  p.stream = a.stream;
  if (CUresult r = Validate(s, dev, k, *f, a, &p); r != CUDA_SUCCESS) return r;

  // Parameters.
  if (a.params != nullptr && a.extra != nullptr) return CUDA_ERROR_INVALID_VALUE;
  if (a.extra != nullptr) {
    if (CUresult r = UnpackExtra(a.extra, k, &p.params); r != CUDA_SUCCESS) return r;
  } else if (!k.params.empty()) {
    if (a.params == nullptr) return CUDA_ERROR_INVALID_VALUE;
    p.params.assign(k.param_bytes, 0);
    for (size_t i = 0; i < k.params.size(); ++i) {
      if (a.params[i] == nullptr) return CUDA_ERROR_INVALID_VALUE;
      std::memcpy(p.params.data() + k.params[i].offset, a.params[i], k.params[i].size);
    }
  }

  if (FindSimKernel(k.name.c_str()) == nullptr) {
    LogOnce(LogLevel::kWarn, "sim:kernel:" + k.name,
            "sim: no host implementation registered for kernel %s", k.name.c_str());
    return CUDA_ERROR_NOT_SUPPORTED;
  }
  return s->Submit(a.stream, [p = std::move(p)](SimDevice* d) { return Execute(d, p); });
}

}  // namespace

// ---- function attributes -------------------------------------------------------

FuncAttrs DefaultFuncAttrs(const image::KernelInfo& k) {
  FuncAttrs a;
  a.max_dynamic_shared = std::max(0, kDefaultSharedLimit - static_cast<int>(k.static_shared_bytes));
  for (int i = 0; i < 3; ++i) a.cluster[i] = static_cast<int>(k.cluster_dims[i]);
  return a;
}

CUresult GetFuncAttribute(const SimDevice& s, int device, const image::KernelInfo& k,
                          const FuncAttrs& a, const LoadedImage& img, CUfunction_attribute attr,
                          int* value) {
  switch (attr) {
    case CU_FUNC_ATTRIBUTE_MAX_THREADS_PER_BLOCK: *value = MaxThreads(s, device, k); break;
    case CU_FUNC_ATTRIBUTE_SHARED_SIZE_BYTES: *value = static_cast<int>(k.static_shared_bytes); break;
    case CU_FUNC_ATTRIBUTE_CONST_SIZE_BYTES: {
      uint64_t bytes = 0;
      for (const image::GlobalInfo& g : img.info.globals) bytes += g.is_constant ? g.size : 0;
      *value = static_cast<int>(std::min<uint64_t>(bytes, INT32_MAX));
      break;
    }
    case CU_FUNC_ATTRIBUTE_LOCAL_SIZE_BYTES: *value = static_cast<int>(k.local_bytes); break;
    case CU_FUNC_ATTRIBUTE_NUM_REGS: *value = Regs(k); break;
    case CU_FUNC_ATTRIBUTE_PTX_VERSION:
    case CU_FUNC_ATTRIBUTE_BINARY_VERSION: *value = img.binary_version; break;
    case CU_FUNC_ATTRIBUTE_CACHE_MODE_CA: *value = 0; break;
    case CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES: *value = a.max_dynamic_shared; break;
    case CU_FUNC_ATTRIBUTE_PREFERRED_SHARED_MEMORY_CARVEOUT: *value = a.carveout; break;
    case CU_FUNC_ATTRIBUTE_CLUSTER_SIZE_MUST_BE_SET: *value = Product(k.cluster_dims) > 0; break;
    case CU_FUNC_ATTRIBUTE_REQUIRED_CLUSTER_WIDTH: *value = a.cluster[0]; break;
    case CU_FUNC_ATTRIBUTE_REQUIRED_CLUSTER_HEIGHT: *value = a.cluster[1]; break;
    case CU_FUNC_ATTRIBUTE_REQUIRED_CLUSTER_DEPTH: *value = a.cluster[2]; break;
    case CU_FUNC_ATTRIBUTE_NON_PORTABLE_CLUSTER_SIZE_ALLOWED: *value = a.non_portable_cluster; break;
    case CU_FUNC_ATTRIBUTE_CLUSTER_SCHEDULING_POLICY_PREFERENCE: *value = a.cluster_policy; break;
    default: return CUDA_ERROR_INVALID_VALUE;
  }
  return CUDA_SUCCESS;
}

CUresult SetFuncAttribute(const SimDevice& s, int device, const image::KernelInfo& k,
                          CUfunction_attribute attr, int value, FuncAttrs* a) {
  switch (attr) {
    case CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES: {
      int optin = s.Attr(device, CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK_OPTIN);
      if (value < 0 || value > optin - static_cast<int>(k.static_shared_bytes)) {
        return CUDA_ERROR_INVALID_VALUE;
      }
      a->max_dynamic_shared = value;
      return CUDA_SUCCESS;
    }
    case CU_FUNC_ATTRIBUTE_PREFERRED_SHARED_MEMORY_CARVEOUT:
      if (value < -1 || value > 100) return CUDA_ERROR_INVALID_VALUE;
      a->carveout = value;
      return CUDA_SUCCESS;
    case CU_FUNC_ATTRIBUTE_REQUIRED_CLUSTER_WIDTH:
    case CU_FUNC_ATTRIBUTE_REQUIRED_CLUSTER_HEIGHT:
    case CU_FUNC_ATTRIBUTE_REQUIRED_CLUSTER_DEPTH:
      if (value < 0 || Product(k.cluster_dims) > 0) return CUDA_ERROR_INVALID_VALUE;
      a->cluster[attr - CU_FUNC_ATTRIBUTE_REQUIRED_CLUSTER_WIDTH] = value;
      return CUDA_SUCCESS;
    case CU_FUNC_ATTRIBUTE_NON_PORTABLE_CLUSTER_SIZE_ALLOWED:
      if (value != 0 && value != 1) return CUDA_ERROR_INVALID_VALUE;
      a->non_portable_cluster = value;
      return CUDA_SUCCESS;
    case CU_FUNC_ATTRIBUTE_CLUSTER_SCHEDULING_POLICY_PREFERENCE:
      if (value < CU_CLUSTER_SCHEDULING_POLICY_DEFAULT ||
          value > CU_CLUSTER_SCHEDULING_POLICY_LOAD_BALANCING) {
        return CUDA_ERROR_INVALID_VALUE;
      }
      a->cluster_policy = value;
      return CUDA_SUCCESS;
    default:
      return CUDA_ERROR_INVALID_VALUE;  // read-only or unknown
  }
}

// ---- launch ----------------------------------------------------------------------

CUresult cuLaunchKernel(CUfunction f, unsigned int gridDimX, unsigned int gridDimY,
                        unsigned int gridDimZ, unsigned int blockDimX, unsigned int blockDimY,
                        unsigned int blockDimZ, unsigned int sharedMemBytes, CUstream hStream,
                        void** kernelParams, void** extra) {
  LaunchArgs a;
  a.f = f;
  a.grid = {gridDimX, gridDimY, gridDimZ};
  a.block = {blockDimX, blockDimY, blockDimZ};
  a.shared = sharedMemBytes;
  a.stream = hStream;
  a.params = kernelParams;
  a.extra = extra;
  return Launch(a);
}

CUresult cuLaunchKernelEx(const CUlaunchConfig* config, CUfunction f, void** kernelParams,
                          void** extra) {
  if (config == nullptr) return CUDA_ERROR_INVALID_VALUE;
  LaunchArgs a;
  a.f = f;
  a.grid = {config->gridDimX, config->gridDimY, config->gridDimZ};
  a.block = {config->blockDimX, config->blockDimY, config->blockDimZ};
  a.shared = config->sharedMemBytes;
  a.stream = config->hStream;
  a.params = kernelParams;
  a.extra = extra;
  a.attrs = config->attrs;
  a.num_attrs = config->numAttrs;
  return Launch(a);
}

// ---- occupancy -------------------------------------------------------------------

CUresult cuOccupancyMaxActiveBlocksPerMultiprocessorWithFlags(int* numBlocks, CUfunction func,
                                                              int blockSize, size_t dynamicSMemSize,
                                                              unsigned int flags) {
  SIM_ENTER(s);
  if (numBlocks == nullptr || blockSize <= 0 || (flags & ~1u)) return CUDA_ERROR_INVALID_VALUE;
  uint64_t id = 0;
  Function* f = nullptr;
  if (CUresult r = s->ResolveFunction(func, &id, &f); r != CUDA_SUCCESS) return r;
  int dev = s->contexts[s->modules[f->module].ctx].device;
  *numBlocks = MaxActiveBlocks(*s, dev, *f->info, f->attrs, blockSize, dynamicSMemSize);
  return CUDA_SUCCESS;
}

CUresult cuOccupancyMaxActiveBlocksPerMultiprocessor(int* numBlocks, CUfunction func, int blockSize,
                                                     size_t dynamicSMemSize) {
  return sim::cuOccupancyMaxActiveBlocksPerMultiprocessorWithFlags(numBlocks, func, blockSize,
                                                              dynamicSMemSize, 0);
}

CUresult cuOccupancyAvailableDynamicSMemPerBlock(size_t* dynamicSmemSize, CUfunction func,
                                                 int numBlocks, int blockSize) {
  SIM_ENTER(s);
  if (dynamicSmemSize == nullptr || numBlocks <= 0 || blockSize <= 0) return CUDA_ERROR_INVALID_VALUE;
  uint64_t id = 0;
  Function* f = nullptr;
  if (CUresult r = s->ResolveFunction(func, &id, &f); r != CUDA_SUCCESS) return r;
  int dev = s->contexts[s->modules[f->module].ctx].device;
  const image::KernelInfo& k = *f->info;
  // numBlocks must be resident by every limit but shared memory.
  FuncAttrs unlimited = f->attrs;
  unlimited.max_dynamic_shared = INT32_MAX;
  image::KernelInfo no_smem = k;
  no_smem.static_shared_bytes = 0;
  if (MaxActiveBlocks(*s, dev, no_smem, unlimited, blockSize, 0) < numBlocks) {
    return CUDA_ERROR_INVALID_VALUE;
  }
  int64_t per_block = s->Attr(dev, CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_MULTIPROCESSOR) / numBlocks -
                      static_cast<int64_t>(k.static_shared_bytes);
  *dynamicSmemSize = static_cast<size_t>(
      std::clamp<int64_t>(per_block, 0, std::max(f->attrs.max_dynamic_shared, 0)));
  return CUDA_SUCCESS;
}

// ---- cluster occupancy -----------------------------------------------------------
//
// A cluster's blocks must sit in one GPC. The profile has no GPC layout; the
// model below reproduces what an H200 (driver 580) answers for
// image/testdata's kernels (sim_driver_probe), except for non-portable sizes
// (16), where the real GPU fits a few clusters fewer:
//   - 8 GPCs; with 132 SMs they hold 17,17,17,17,17,17,15,15 SMs, otherwise
//     the SMs are spread evenly;
//   - at most 8 blocks of a clustered launch per SM;
//   - clusters of 1 or 2 blocks use every SM; larger ones only whole TPCs
//     (pairs of SMs), so an odd SM per GPC stays out;
//   - clusters per GPC = floor(usable SMs * blocks per SM / cluster size).
// Cluster size: the launch config's CLUSTER_DIMENSION attribute, or the
// kernel's __cluster_dims__; both must agree, and exceed neither 8 nor, with
// NON_PORTABLE_CLUSTER_SIZE_ALLOWED, 16 (else CUDA_ERROR_INVALID_CLUSTER_SIZE).

namespace {

constexpr int kGpcs = 8;
constexpr int kMaxClusterBlocksPerSm = 8;

struct ClusterQuery {
  const Function* f = nullptr;
  int device = 0;
  int per_sm = 0;       // blocks of the config's shape per SM
  uint64_t size = 0;    // cluster size asked for (config or kernel), 0 if none
  uint64_t limit = 8;   // largest allowed cluster size
};

CUresult PrepareClusterQuery(SimDevice* s, CUfunction func, const CUlaunchConfig* config,
                             ClusterQuery* q) {
  if (config == nullptr || (config->numAttrs != 0 && config->attrs == nullptr)) {
    return CUDA_ERROR_INVALID_VALUE;
  }
  uint64_t id = 0;
  Function* f = nullptr;
  if (CUresult r = s->ResolveFunction(func, &id, &f); r != CUDA_SUCCESS) return r;
  uint64_t threads = uint64_t{config->blockDimX} * config->blockDimY * config->blockDimZ;
  if (threads == 0 || threads > 1024) return CUDA_ERROR_INVALID_VALUE;
  q->f = f;
  q->device = s->contexts[s->modules[f->module].ctx].device;
  q->per_sm = std::min(kMaxClusterBlocksPerSm,
                       MaxActiveBlocks(*s, q->device, *f->info, f->attrs, static_cast<int>(threads),
                                       config->sharedMemBytes));
  q->limit = f->attrs.non_portable_cluster ? 16 : 8;
  uint64_t required = static_cast<uint64_t>(Product(f->info->cluster_dims));
  q->size = required;
  for (unsigned i = 0; i < config->numAttrs; ++i) {
    if (EnumValue(config->attrs[i].id) != CU_LAUNCH_ATTRIBUTE_CLUSTER_DIMENSION) continue;
    const auto& c = config->attrs[i].value.clusterDim;
    uint64_t asked = uint64_t{c.x} * c.y * c.z;
    if (asked == 0 || asked > q->limit || (required != 0 && asked != required)) {
      return CUDA_ERROR_INVALID_CLUSTER_SIZE;
    }
    q->size = asked;
  }
  return CUDA_SUCCESS;
}

// SMs of GPC g that clusters of `size` blocks can use.
int UsableSms(const SimDevice& s, int device, int g, uint64_t size) {
  int sms = s.Attr(device, CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT);
  int in_gpc = sms == 132 ? (g < 6 ? 17 : 15) : sms / kGpcs + (g < sms % kGpcs ? 1 : 0);
  return size <= 2 ? in_gpc : in_gpc / 2 * 2;
}

}  // namespace

CUresult cuOccupancyMaxPotentialClusterSize(int* clusterSize, CUfunction func,
                                            const CUlaunchConfig* config) {
  SIM_ENTER(s);
  if (clusterSize == nullptr) return CUDA_ERROR_INVALID_VALUE;
  ClusterQuery q;
  if (CUresult r = PrepareClusterQuery(s, func, config, &q); r != CUDA_SUCCESS) return r;
  int smallest = UsableSms(*s, q.device, kGpcs - 1, q.limit);
  *clusterSize = static_cast<int>(std::min<uint64_t>(q.limit, uint64_t(smallest) * q.per_sm));
  return CUDA_SUCCESS;
}

CUresult cuOccupancyMaxActiveClusters(int* numClusters, CUfunction func, const CUlaunchConfig* config) {
  SIM_ENTER(s);
  if (numClusters == nullptr) return CUDA_ERROR_INVALID_VALUE;
  ClusterQuery q;
  if (CUresult r = PrepareClusterQuery(s, func, config, &q); r != CUDA_SUCCESS) return r;
  int total = 0;
  if (q.size != 0) {  // no cluster size anywhere: 0 clusters, as the driver says
    for (int g = 0; g < kGpcs; ++g) {
      total += static_cast<int>(uint64_t(UsableSms(*s, q.device, g, q.size)) * q.per_sm / q.size);
    }
  }
  *numClusters = total;
  return CUDA_SUCCESS;
}

}  // namespace rgpu::backend::sim
