// Exported driver functions: kernel launches and occupancy.
//
// A launch is packed from the function's parameter layout (fetched once when
// the function was resolved) and sent without waiting (DESIGN.md rule 2).
// With CUDA_LAUNCH_BLOCKING=1 every launch waits for its stream and reports
// its error at the launch, as the local driver does.
#include <algorithm>
#include <cstring>
#include <map>
#include <mutex>
#include <tuple>

#include "client/api_common.h"
#include "client/managed_memory.h"
#include "client/pinned_memory.h"
#include "client/registered_memory.h"
#include "client/unsupported.h"

using namespace rgpu::client;
namespace proto = rgpu::proto;

namespace {

bool LaunchBlocking() {
  static const bool v = [] {
    const char* e = getenv("CUDA_LAUNCH_BLOCKING");
    return e != nullptr && strcmp(e, "1") == 0;
  }();
  return v;
}

// Packs kernelParams (or the `extra` buffer) at the layout's offsets.
CUresult PackParams(const FuncObj* f, void** params, void** extra, std::vector<uint8_t>* out) {
  out->assign(f->params_bytes, 0);
  if (params != nullptr) {
    for (size_t i = 0; i < f->params.size(); ++i) {
      if (params[i] == nullptr) return CUDA_ERROR_INVALID_VALUE;
      memcpy(out->data() + f->params[i].first, params[i], f->params[i].second);
    }
    return CUDA_SUCCESS;
  }
  if (extra != nullptr) {
    const void* buf = nullptr;
    size_t size = 0;
    for (size_t i = 0; extra[i] != CU_LAUNCH_PARAM_END; i += 2) {
      if (extra[i] == CU_LAUNCH_PARAM_BUFFER_POINTER) buf = extra[i + 1];
      else if (extra[i] == CU_LAUNCH_PARAM_BUFFER_SIZE) size = *static_cast<size_t*>(extra[i + 1]);
      else return CUDA_ERROR_INVALID_VALUE;
    }
    if (buf == nullptr || size < f->params_bytes) return CUDA_ERROR_INVALID_VALUE;
    memcpy(out->data(), buf, f->params_bytes);
    return CUDA_SUCCESS;
  }
  return f->params.empty() ? CUDA_SUCCESS : CUDA_ERROR_INVALID_VALUE;
}

// u32 count, then (u32 id, 64-byte value) each; events travel as our ids.
CUresult EncodeLaunchAttrs(ClientState* s, const CUlaunchAttribute* attrs, unsigned nattrs,
                           std::vector<uint8_t>* out) {
  out->clear();
  if (nattrs == 0) return CUDA_SUCCESS;
  if (attrs == nullptr || nattrs > 32) return CUDA_ERROR_INVALID_VALUE;
  proto::Writer w(out);
  w.U32(nattrs);
  for (unsigned i = 0; i < nattrs; ++i) {
    CUlaunchAttributeValue v = attrs[i].value;
    if (attrs[i].id == CU_LAUNCH_ATTRIBUTE_PROGRAMMATIC_EVENT ||
        attrs[i].id == CU_LAUNCH_ATTRIBUTE_LAUNCH_COMPLETION_EVENT) {
      CUevent e = attrs[i].id == CU_LAUNCH_ATTRIBUTE_PROGRAMMATIC_EVENT ? v.programmaticEvent.event
                                                                        : v.launchCompletionEvent.event;
      EventObj* ev = s->FindEvent(e);
      if (ev == nullptr) return CUDA_ERROR_INVALID_HANDLE;
      uint64_t id = ev->id;
      memcpy(&v, &id, sizeof id);
    }
    w.U32(attrs[i].id);
    w.Raw(&v, sizeof v);  // CUlaunchAttributeValue: same x86-64 layout on both ends
  }
  return CUDA_SUCCESS;
}

CUresult MaxActiveBlocks(int* blocks, CUfunction fn, int block_size, size_t smem, unsigned flags);

// The launch attributes whose errors the driver reports at the launch: a
// cluster shape the grid is not a multiple of, or larger than 8 blocks
// (16 with the non-portable opt-in), gets CUDA_ERROR_INVALID_CLUSTER_SIZE;
// a cooperative grid larger than what can be resident at once (occupancy
// times the SM count) gets CUDA_ERROR_COOPERATIVE_LAUNCH_TOO_LARGE.
CUresult CheckLaunchAttrs(CUfunction fn, const FuncObj* f, const CUlaunchAttribute* attrs, unsigned nattrs,
                          unsigned gx, unsigned gy, unsigned gz, uint64_t threads, unsigned shmem, int sms) {
  if (attrs == nullptr) return CUDA_SUCCESS;
  bool cooperative = false, cluster = false;
  for (unsigned i = 0; i < nattrs; ++i) {
    const CUlaunchAttributeValue& v = attrs[i].value;
    if (attrs[i].id == CU_LAUNCH_ATTRIBUTE_COOPERATIVE) cooperative = v.cooperative != 0;
    if (attrs[i].id != CU_LAUNCH_ATTRIBUTE_CLUSTER_DIMENSION) continue;
    cluster = true;
    const auto& c = v.clusterDim;
    if (c.x == 0 || c.y == 0 || c.z == 0 || gx % c.x || gy % c.y || gz % c.z) return CUDA_ERROR_INVALID_CLUSTER_SIZE;
    bool non_portable = f->attrs.size() > CU_FUNC_ATTRIBUTE_NON_PORTABLE_CLUSTER_SIZE_ALLOWED &&
                        f->attrs[CU_FUNC_ATTRIBUTE_NON_PORTABLE_CLUSTER_SIZE_ALLOWED] != 0;
    if (static_cast<uint64_t>(c.x) * c.y * c.z > (non_portable ? 16u : 8u)) return CUDA_ERROR_INVALID_CLUSTER_SIZE;
  }
  // Cooperative clusters are sized by cluster occupancy, which the server
  // checks; a plain cooperative grid is checked here (one occupancy question
  // per shape, cached).
  if (!cooperative || cluster || sms <= 0) return CUDA_SUCCESS;
  int per_sm = 0;
  CUresult r = MaxActiveBlocks(&per_sm, fn, static_cast<int>(threads), shmem, 0);
  if (r != CUDA_SUCCESS) return r;
  uint64_t grid = static_cast<uint64_t>(gx) * gy * gz;
  return grid > static_cast<uint64_t>(per_sm) * static_cast<uint64_t>(sms) ? CUDA_ERROR_COOPERATIVE_LAUNCH_TOO_LARGE
                                                                          : CUDA_SUCCESS;
}

CUresult Launch(CUfunction fn, unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by,
                unsigned bz, unsigned shmem, CUstream h, void** params, void** extra,
                const CUlaunchAttribute* attrs, unsigned nattrs, bool per_thread) {
  RGPU_STATE_OR_RETURN(s);
  RGPU_LOG_DEBUG("launch %p grid %u,%u,%u block %u,%u,%u", static_cast<void*>(fn), gx, gy, gz, bx, by, bz);
  FuncObj* f = s->FindFunc(fn);
  if (f == nullptr) {
    RGPU_LOG_DEBUG("launch: unknown function handle %p", static_cast<void*>(fn));
    return CUDA_ERROR_INVALID_HANDLE;
  }
  uint64_t stream = 0;
  if (!WireStream(s, h, per_thread, &stream)) return CUDA_ERROR_INVALID_HANDLE;
  CtxObj* c = s->Current();
  if (StreamObj* so = s->FindStream(h)) c = so->ctx;
  if (c == nullptr) return CUDA_ERROR_INVALID_CONTEXT;
  // A kernel that needs more local memory per thread than the stack limit
  // makes the driver raise that limit: forget the cached value.
  if (uint64_t stack = c->limits[CU_LIMIT_STACK_SIZE].load(std::memory_order_relaxed); stack != 0) {
    int64_t local = f->attrs.size() > CU_FUNC_ATTRIBUTE_LOCAL_SIZE_BYTES ? f->attrs[CU_FUNC_ATTRIBUTE_LOCAL_SIZE_BYTES] : -1;
    if (local < 0 || static_cast<uint64_t>(local) > stack - 1)
      c->limits[CU_LIMIT_STACK_SIZE].store(0, std::memory_order_relaxed);
  }
  // Checks the driver makes at the call, so errors come back at once.
  if (gx == 0 || gy == 0 || gz == 0 || bx == 0 || by == 0 || bz == 0) return CUDA_ERROR_INVALID_VALUE;
  const auto& dev = s->device(c->device).attributes;
  auto attr = [&](CUdevice_attribute a) { return static_cast<size_t>(a) < dev.size() ? dev[a] : 0; };
  uint64_t threads = static_cast<uint64_t>(bx) * by * bz;
  int max_threads = f->attrs.size() > CU_FUNC_ATTRIBUTE_MAX_THREADS_PER_BLOCK
                        ? f->attrs[CU_FUNC_ATTRIBUTE_MAX_THREADS_PER_BLOCK]
                        : attr(CU_DEVICE_ATTRIBUTE_MAX_THREADS_PER_BLOCK);
  if (max_threads > 0 && threads > static_cast<uint64_t>(max_threads)) return CUDA_ERROR_INVALID_VALUE;
  if ((attr(CU_DEVICE_ATTRIBUTE_MAX_GRID_DIM_X) > 0 && gx > static_cast<unsigned>(attr(CU_DEVICE_ATTRIBUTE_MAX_GRID_DIM_X))) ||
      (attr(CU_DEVICE_ATTRIBUTE_MAX_GRID_DIM_Y) > 0 && gy > static_cast<unsigned>(attr(CU_DEVICE_ATTRIBUTE_MAX_GRID_DIM_Y))) ||
      (attr(CU_DEVICE_ATTRIBUTE_MAX_GRID_DIM_Z) > 0 && gz > static_cast<unsigned>(attr(CU_DEVICE_ATTRIBUTE_MAX_GRID_DIM_Z))))
    return CUDA_ERROR_INVALID_VALUE;
  // More dynamic shared memory than the function allows (48 KiB unless
  // cuFuncSetAttribute raised it): the driver refuses the launch itself.
  if (f->attrs.size() > CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES &&
      shmem > static_cast<uint64_t>(std::max(0, f->attrs[CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES])))
    return CUDA_ERROR_INVALID_VALUE;
  CUresult r = CheckLaunchAttrs(fn, f, attrs, nattrs, gx, gy, gz, threads, shmem,
                                attr(CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT));
  if (r != CUDA_SUCCESS) return r;

  std::vector<uint8_t> packed;
  r = PackParams(f, params, extra, &packed);
  if (r != CUDA_SUCCESS) return r;
  // Host pointers into registered memory become its mirror's addresses.
  TranslateRegisteredArgs(s, packed.data(), packed.size());
  std::vector<uint8_t> attr_bytes;
  r = EncodeLaunchAttrs(s, attrs, nattrs, &attr_bytes);
  if (r != CUDA_SUCCESS) return r;
  proto::LaunchKernelReq req{c->id, f->id, gx, gy, gz, bx, by, bz, shmem, stream, packed, attr_bytes};
  // Pinned host buffers the kernel is given become reachable (and their
  // content is sent by ManagedBeforeDeviceWork).
  PromotePinnedArgs(s, packed.data(), packed.size());
  if ((r = ManagedBeforeDeviceWork(s)) != CUDA_SUCCESS) return r;
  r = Post(s, proto::CallId::kLaunchKernel, req);
  ManagedAfterDeviceWork();
  if (r != CUDA_SUCCESS || !LaunchBlocking()) return r;
  return Sync(s, proto::CallId::kStreamSynchronize, proto::StreamSynchronizeReq{c->id, stream});
}

}  // namespace

namespace rgpu::client {
// Graph kernel nodes (api_graph_nodes.cc) pack their parameters the same way.
CUresult PackKernelParams(const FuncObj* f, void** params, void** extra, std::vector<uint8_t>* out) {
  return PackParams(f, params, extra, out);
}
}  // namespace rgpu::client

namespace {

CUresult LaunchEx(const CUlaunchConfig* config, CUfunction f, void** params, void** extra, bool pt) {
  if (config == nullptr) return CUDA_ERROR_INVALID_VALUE;
  return Launch(f, config->gridDimX, config->gridDimY, config->gridDimZ, config->blockDimX,
                config->blockDimY, config->blockDimZ, config->sharedMemBytes, config->hStream,
                params, extra, config->attrs, config->numAttrs, pt);
}

// Occupancy answers depend only on (function, block size, shared memory,
// flags) and the function attributes cuFuncSetAttribute can change (the
// dynamic shared memory limit, the carveout): ask once, remember.
CUresult MaxActiveBlocks(int* blocks, CUfunction fn, int block_size, size_t smem, unsigned flags) {
  if (blocks == nullptr) return CUDA_ERROR_INVALID_VALUE;
  RGPU_STATE_OR_RETURN(s);
  // A few answers per thread in front of everything else: libraries ask the
  // same question before every launch, and a lock per ask (FindFunc, the
  // shared cache) would cost more than the driver's own answer. They are
  // keyed by the handle and the function epoch, which moves when any
  // function's attributes change or a module goes away, so they can't go
  // stale.
  struct Recent {
    const void* fn;
    int block_size;
    size_t smem;
    unsigned flags;
    uint64_t epoch;
    int blocks;
    bool used = false;
  };
  thread_local Recent recent[4];
  thread_local unsigned next_slot = 0;
  const uint64_t epoch = s->func_epoch();  // before the attributes are read
  for (const Recent& e : recent)
    if (e.used && e.fn == fn && e.block_size == block_size && e.smem == smem && e.flags == flags &&
        e.epoch == epoch) {
      *blocks = e.blocks;
      return CUDA_SUCCESS;
    }
  auto remember = [&](int value) {
    recent[next_slot++ % 4] = Recent{fn, block_size, smem, flags, epoch, value, true};
  };
  FuncObj* f = s->FindFunc(fn);
  if (f == nullptr) return CUDA_ERROR_INVALID_HANDLE;
  auto attr = [&](CUfunction_attribute a) { return static_cast<size_t>(a) < f->attrs.size() ? f->attrs[a] : -1; };
  using Key = std::tuple<uint64_t, int, size_t, unsigned, int, int>;
  static std::mutex mu;
  static auto* cache = new std::map<Key, int>;
  Key key = std::make_tuple(f->id, block_size, smem, flags, attr(CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES),
                            attr(CU_FUNC_ATTRIBUTE_PREFERRED_SHARED_MEMORY_CARVEOUT));
  {
    std::lock_guard<std::mutex> lock(mu);
    auto it = cache->find(key);
    if (it != cache->end()) {
      *blocks = it->second;
      remember(it->second);
      return CUDA_SUCCESS;
    }
  }
  CtxObj* c = s->Current() ? s->Current() : f->module->ctx;
  proto::OccupancyMaxActiveBlocksRep rep;
  CUresult r = Sync(s, proto::CallId::kOccupancyMaxActiveBlocks,
                    proto::OccupancyMaxActiveBlocksReq{c->id, f->id, block_size, smem, flags}, &rep);
  if (r != CUDA_SUCCESS) return r;
  {
    std::lock_guard<std::mutex> lock(mu);
    (*cache)[key] = rep.blocks;
  }
  remember(rep.blocks);
  *blocks = rep.blocks;
  return CUDA_SUCCESS;
}

CUresult ClusterQuery(int* out, CUfunction func, const CUlaunchConfig* config, bool potential) {
  if (out == nullptr || config == nullptr) return CUDA_ERROR_INVALID_VALUE;
  RGPU_STATE_OR_RETURN(s);
  FuncObj* f = s->FindFunc(func);
  if (f == nullptr) return CUDA_ERROR_INVALID_HANDLE;
  uint64_t stream = 0;
  if (!WireStream(s, config->hStream, false, &stream)) return CUDA_ERROR_INVALID_HANDLE;
  CtxObj* c = s->Current() ? s->Current() : f->module->ctx;
  std::vector<uint8_t> attr_bytes;
  CUresult r = EncodeLaunchAttrs(s, config->attrs, config->numAttrs, &attr_bytes);
  if (r != CUDA_SUCCESS) return r;
  proto::OccupancyMaxActiveClustersRep rep;
  r = Sync(s, proto::CallId::kOccupancyMaxActiveClusters,
           proto::OccupancyMaxActiveClustersReq{c->id, f->id, config->gridDimX, config->gridDimY,
                                                config->gridDimZ, config->blockDimX, config->blockDimY,
                                                config->blockDimZ, config->sharedMemBytes, stream,
                                                attr_bytes, static_cast<uint8_t>(potential)},
           &rep);
  if (r == CUDA_SUCCESS) *out = rep.clusters;
  return r;
}

}  // namespace

extern "C" {

CUresult cuOccupancyAvailableDynamicSMemPerBlock(size_t* bytes, CUfunction func, int numBlocks, int blockSize) {
  if (bytes == nullptr) return CUDA_ERROR_INVALID_VALUE;
  RGPU_STATE_OR_RETURN(s);
  FuncObj* f = s->FindFunc(func);
  if (f == nullptr) return CUDA_ERROR_INVALID_HANDLE;
  CtxObj* c = s->Current() ? s->Current() : f->module->ctx;
  proto::OccupancyAvailableDynamicSMemRep rep;
  CUresult r = Sync(s, proto::CallId::kOccupancyAvailableDynamicSMem,
                    proto::OccupancyAvailableDynamicSMemReq{c->id, f->id, numBlocks, blockSize}, &rep);
  if (r == CUDA_SUCCESS) *bytes = rep.bytes;
  return r;
}

CUresult cuOccupancyMaxActiveClusters(int* numClusters, CUfunction func, const CUlaunchConfig* config) {
  return ClusterQuery(numClusters, func, config, false);
}

CUresult cuOccupancyMaxPotentialClusterSize(int* clusterSize, CUfunction func, const CUlaunchConfig* config) {
  return ClusterQuery(clusterSize, func, config, true);
}

CUresult cuLaunchKernel(CUfunction f, unsigned int gx, unsigned int gy, unsigned int gz, unsigned int bx,
                        unsigned int by, unsigned int bz, unsigned int shmem, CUstream h, void** params,
                        void** extra) {
  return Launch(f, gx, gy, gz, bx, by, bz, shmem, h, params, extra, nullptr, 0, false);
}
CUresult cuLaunchKernel_ptsz(CUfunction f, unsigned int gx, unsigned int gy, unsigned int gz,
                             unsigned int bx, unsigned int by, unsigned int bz, unsigned int shmem,
                             CUstream h, void** params, void** extra) {
  return Launch(f, gx, gy, gz, bx, by, bz, shmem, h, params, extra, nullptr, 0, true);
}
// A cooperative launch is a launch with the cooperative attribute (how the
// driver's own cuLaunchKernelEx expresses it).
CUresult cuLaunchCooperativeKernel(CUfunction f, unsigned int gx, unsigned int gy, unsigned int gz,
                                   unsigned int bx, unsigned int by, unsigned int bz, unsigned int shmem,
                                   CUstream h, void** params) {
  CUlaunchAttribute attr{};
  attr.id = CU_LAUNCH_ATTRIBUTE_COOPERATIVE;
  attr.value.cooperative = 1;
  return Launch(f, gx, gy, gz, bx, by, bz, shmem, h, params, nullptr, &attr, 1, false);
}
CUresult cuLaunchCooperativeKernel_ptsz(CUfunction f, unsigned int gx, unsigned int gy, unsigned int gz,
                                        unsigned int bx, unsigned int by, unsigned int bz, unsigned int shmem,
                                        CUstream h, void** params) {
  CUlaunchAttribute attr{};
  attr.id = CU_LAUNCH_ATTRIBUTE_COOPERATIVE;
  attr.value.cooperative = 1;
  return Launch(f, gx, gy, gz, bx, by, bz, shmem, h, params, nullptr, &attr, 1, true);
}

CUresult cuLaunchKernelEx(const CUlaunchConfig* config, CUfunction f, void** params, void** extra) {
  return LaunchEx(config, f, params, extra, false);
}
CUresult cuLaunchKernelEx_ptsz(const CUlaunchConfig* config, CUfunction f, void** params, void** extra) {
  return LaunchEx(config, f, params, extra, true);
}

CUresult cuOccupancyMaxActiveBlocksPerMultiprocessor(int* n, CUfunction f, int bs, size_t smem) {
  return MaxActiveBlocks(n, f, bs, smem, 0);
}
CUresult cuOccupancyMaxActiveBlocksPerMultiprocessorWithFlags(int* n, CUfunction f, int bs,
                                                              size_t smem, unsigned int flags) {
  return MaxActiveBlocks(n, f, bs, smem, flags);
}

// The driver's search, done here with cached occupancy answers: the largest
// multiple of the warp size giving the most resident threads per SM.
CUresult cuOccupancyMaxPotentialBlockSizeWithFlags(int* minGridSize, int* blockSize, CUfunction func,
                                                   CUoccupancyB2DSize b2s, size_t dynSmem,
                                                   int blockSizeLimit, unsigned int flags) {
  if (minGridSize == nullptr || blockSize == nullptr) return CUDA_ERROR_INVALID_VALUE;
  RGPU_STATE_OR_RETURN(s);
  FuncObj* f = s->FindFunc(func);
  if (f == nullptr) return CUDA_ERROR_INVALID_HANDLE;
  CtxObj* c = s->Current() ? s->Current() : f->module->ctx;
  const auto& dev = s->device(c->device).attributes;
  int warp = dev[CU_DEVICE_ATTRIBUTE_WARP_SIZE] > 0 ? dev[CU_DEVICE_ATTRIBUTE_WARP_SIZE] : 32;
  int sms = dev[CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT];
  int limit = f->attrs.size() > CU_FUNC_ATTRIBUTE_MAX_THREADS_PER_BLOCK
                  ? f->attrs[CU_FUNC_ATTRIBUTE_MAX_THREADS_PER_BLOCK]
                  : dev[CU_DEVICE_ATTRIBUTE_MAX_THREADS_PER_BLOCK];
  if (blockSizeLimit > 0 && blockSizeLimit < limit) limit = blockSizeLimit;
  int best_threads = -1, best_bs = 0, best_blocks = 0;
  for (int bs = (limit / warp) * warp; bs > 0; bs -= warp) {
    size_t smem = b2s ? b2s(bs) : dynSmem;
    int blocks = 0;
    CUresult r = MaxActiveBlocks(&blocks, func, bs, smem, flags);
    if (r != CUDA_SUCCESS) return r;
    if (blocks * bs > best_threads) {
      best_threads = blocks * bs;
      best_bs = bs;
      best_blocks = blocks;
    }
  }
  *blockSize = best_bs;
  *minGridSize = best_blocks * sms;
  return CUDA_SUCCESS;
}

CUresult cuOccupancyMaxPotentialBlockSize(int* minGridSize, int* blockSize, CUfunction func,
                                          CUoccupancyB2DSize b2s, size_t dynSmem, int blockSizeLimit) {
  return cuOccupancyMaxPotentialBlockSizeWithFlags(minGridSize, blockSize, func, b2s, dynSmem,
                                                   blockSizeLimit, 0);
}

}  // extern "C"
