// Handlers: device info, contexts.
#include <cstring>
#include <array>
#include <chrono>

#include "common/log.h"
#include "proto/device_info.h"
#include "server/worker/handlers.gen.h"
#include "server/worker/session.h"
#include "server/worker/device_heap.h"

namespace rgpu::worker {
namespace {
// The last CUdevice_attribute value we ask for (exclusive). cuda.h does not
// define a MAX for device attributes; values past the driver's list answer
// CUDA_ERROR_INVALID_VALUE and are stored as 0.
constexpr int kAttributeLimit = 160;

// What a program reaches through rgpu, where it differs from the GPU: the
// client's memory is not the GPU host's, so kernels cannot touch the
// client's pageable memory (HMM) or its registered host memory through the
// host pointer, and the host cannot reach device memory directly. Programs
// that check these attributes then take the path that works (explicit
// copies) instead of one that cannot. Concurrent managed access stays as the
// GPU says: the emulation (client/managed_memory.h) serves a host access
// during GPU work by waiting for that work, a valid order of the concurrent
// accesses, so programs that branch on it compute the same results. No
// atomic operation is native between the GPU and the client's host (0 on
// PCIe GPUs anyway; Grace Hopper says 1), as cuDeviceGetHostAtomicCapabilities
// answers on the client.
constexpr std::array<std::pair<CUdevice_attribute, int>, 5> kThroughRgpu = {{
    {CU_DEVICE_ATTRIBUTE_HOST_NATIVE_ATOMIC_SUPPORTED, 0},
    {CU_DEVICE_ATTRIBUTE_PAGEABLE_MEMORY_ACCESS, 0},
    {CU_DEVICE_ATTRIBUTE_PAGEABLE_MEMORY_ACCESS_USES_HOST_PAGE_TABLES, 0},
    {CU_DEVICE_ATTRIBUTE_CAN_USE_HOST_POINTER_FOR_REGISTERED_MEM, 0},
    {CU_DEVICE_ATTRIBUTE_DIRECT_MANAGED_MEM_ACCESS_FROM_HOST, 0},
}};

// Client ordinals are the session's (DeviceMap): a client names only the
// GPUs its session leased.
Result<CUdevice> Device(Session& s, int32_t ordinal) { return s.Device(ordinal); }

// What device `dev` can do with each of the session's devices
// (proto::DeviceFacts::peers). A driver that refuses a query leaves 0.
std::vector<std::array<int32_t, proto::kP2PFacts>> PeerFacts(Session& s, int self, CUdevice dev) {
  const backend::DriverTable& d = s.driver();
  std::vector<std::array<int32_t, proto::kP2PFacts>> out(s.devices().count());
  for (int j = 0; j < s.devices().count(); ++j) {
    Result<CUdevice> peer = s.Device(j);
    if (j == self || !peer.ok()) continue;
    int v = 0;
    if (d.cuDeviceCanAccessPeer && d.cuDeviceCanAccessPeer(&v, dev, *peer) == CUDA_SUCCESS) out[j][0] = v;
    for (size_t a = 1; a < proto::kP2PFacts; ++a) {
      v = 0;
      if (d.cuDeviceGetP2PAttribute &&
          d.cuDeviceGetP2PAttribute(&v, static_cast<CUdevice_P2PAttribute>(a), dev, *peer) == CUDA_SUCCESS)
        out[j][a] = v;
    }
  }
  return out;
}
}  // namespace

Status HandlePing(Session&, const proto::PingReq&, proto::PingRep*) { return {}; }

Status HandleGetDeviceInfo(Session& s, const proto::GetDeviceInfoReq&,
                           proto::GetDeviceInfoRep* rep) {
  // The encoded info must outlive the reply encoding: keep it in a static
  // buffer owned by this (single-threaded) worker.
  static std::vector<uint8_t> encoded;
  const backend::DriverTable& d = s.driver();
  proto::DeviceInfo info;
  info.backend = s.backend_kind();
  RGPU_RETURN_IF_ERROR(CuStatus(d.cuDriverGetVersion(&info.driver_version), "cuDriverGetVersion"));
  // The session's devices only, in the client's numbering.
  const int count = s.devices().count();
  for (int i = 0; i < count && i < static_cast<int>(proto::kMaxDevices); ++i) {
    Result<CUdevice> dev = Device(s, i);
    if (!dev.ok()) return dev.take_status();
    proto::DeviceFacts f;
    char name[256] = {};
    RGPU_RETURN_IF_ERROR(CuStatus(d.cuDeviceGetName(name, sizeof name - 1, *dev), "cuDeviceGetName"));
    f.name = name;
    CUuuid uuid{};
    RGPU_RETURN_IF_ERROR(CuStatus(d.cuDeviceGetUuid_v2(&uuid, *dev), "cuDeviceGetUuid"));
    memcpy(f.uuid.data(), uuid.bytes, 16);
    size_t total = 0;
    RGPU_RETURN_IF_ERROR(CuStatus(d.cuDeviceTotalMem_v2(&total, *dev), "cuDeviceTotalMem"));
    f.total_mem = total;
    char bus[64] = {};
    if (d.cuDeviceGetPCIBusId && d.cuDeviceGetPCIBusId(bus, sizeof bus - 1, *dev) == CUDA_SUCCESS)
      f.pci_bus_id = bus;
    f.attributes.assign(kAttributeLimit, 0);
    for (int a = 1; a < kAttributeLimit; ++a) {
      int v = 0;
      if (d.cuDeviceGetAttribute(&v, static_cast<CUdevice_attribute>(a), *dev) == CUDA_SUCCESS)
        f.attributes[a] = v;
    }
    for (auto [a, v] : kThroughRgpu) f.attributes[a] = v;
    if (count > 1) f.peers = PeerFacts(s, i, *dev);
    info.devices.push_back(std::move(f));
  }
  encoded = proto::EncodeDeviceInfo(info);
  rep->info = encoded;
  return {};
}

Status HandlePrimaryCtxRetain(Session& s, const proto::PrimaryCtxRetainReq& req,
                              proto::PrimaryCtxRetainRep*) {
  Result<CUdevice> dev = Device(s, req.dev);
  if (!dev.ok()) return dev.take_status();
  CUcontext ctx = nullptr;
  // Only the worker's own GPU has a warm context: on a multi-GPU session's
  // other GPUs this creates it (timed: the cost of a GPU's first use).
  auto start = std::chrono::steady_clock::now();
  RGPU_RETURN_IF_ERROR(
      CuStatus(s.driver().cuDevicePrimaryCtxRetain(&ctx, *dev), "cuDevicePrimaryCtxRetain"));
  if (s.devices().count() > 1)
    RGPU_LOG_INFO("session %llu: device %d (GPU ordinal %d): primary context retained in %.2f ms",
                  (unsigned long long)s.id(), req.dev, s.devices().BackendOrdinal(req.dev),
                  std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count());
  return s.AddContext(req.ctx, ctx, /*primary=*/true, req.dev);
}

Status HandlePrimaryCtxRelease(Session& s, const proto::PrimaryCtxReleaseReq& req,
                               proto::PrimaryCtxReleaseRep*) {
  Result<CUdevice> dev = Device(s, req.dev);
  if (!dev.ok()) return dev.take_status();
  RGPU_RETURN_IF_ERROR(s.RemoveContext(req.ctx));
  return CuStatus(s.driver().cuDevicePrimaryCtxRelease_v2(*dev), "cuDevicePrimaryCtxRelease");
}

// Idle detach's heap (device_heap.h): a context's memory goes with it, as
// its cuMemAlloc memory would.
static void ForgetHeapMemory(Session& s, CUcontext ctx) {
  if (s.heap() == nullptr) return;
  for (CUdeviceptr p : s.heap()->ForgetContext(ctx)) s.RemoveAllocation(p);
}

Status HandlePrimaryCtxReset(Session& s, const proto::PrimaryCtxResetReq& req,
                             proto::PrimaryCtxResetRep*) {
  Result<CUdevice> dev = Device(s, req.dev);
  if (!dev.ok()) return dev.take_status();
  // The client resets only its own retained primary context: release our
  // retain and retain again, which gives a fresh context state. The driver's
  // reset would also destroy allocations, which the client forgets too.
  if (Result<CUcontext> ctx = s.FindContext(req.ctx); ctx.ok()) ForgetHeapMemory(s, *ctx);
  (void)s.RemoveContext(req.ctx);
  RGPU_RETURN_IF_ERROR(
      CuStatus(s.driver().cuDevicePrimaryCtxReset_v2(*dev), "cuDevicePrimaryCtxReset"));
  return {};
}

Status HandlePrimaryCtxSetFlags(Session& s, const proto::PrimaryCtxSetFlagsReq& req,
                                proto::PrimaryCtxSetFlagsRep*) {
  Result<CUdevice> dev = Device(s, req.dev);
  if (!dev.ok()) return dev.take_status();
  RGPU_RETURN_IF_ERROR(CuStatus(s.driver().cuDevicePrimaryCtxSetFlags_v2(*dev, req.flags),
                                "cuDevicePrimaryCtxSetFlags"));
  s.NotePrimaryFlags(req.dev, req.flags);
  return {};
}

Status HandleCtxCreate(Session& s, const proto::CtxCreateReq& req, proto::CtxCreateRep*) {
  Result<CUdevice> dev = Device(s, req.dev);
  if (!dev.ok()) return dev.take_status();
  CUcontext ctx = nullptr;
  RGPU_RETURN_IF_ERROR(
      CuStatus(s.driver().cuCtxCreate_v4(&ctx, nullptr, req.flags, *dev), "cuCtxCreate"));
  return s.AddContext(req.ctx, ctx, /*primary=*/false, req.dev, req.flags);
}

Status HandleCtxDestroy(Session& s, const proto::CtxDestroyReq& req, proto::CtxDestroyRep*) {
  Result<CUcontext> ctx = s.FindContext(req.ctx);
  if (!ctx.ok()) return ctx.take_status();
  RGPU_RETURN_IF_ERROR(s.RemoveContext(req.ctx));
  ForgetHeapMemory(s, *ctx);
  return CuStatus(s.driver().cuCtxDestroy_v2(*ctx), "cuCtxDestroy");
}

Status HandleCtxSynchronize(Session& s, const proto::CtxSynchronizeReq& req,
                            proto::CtxSynchronizeRep*) {
  RGPU_RETURN_IF_ERROR(s.UseContext(req.ctx));
  return CuStatus(s.driver().cuCtxSynchronize(), "cuCtxSynchronize");
}

// Client values become CUDA enums only after a range check (an enum holding
// a value outside its range is undefined behaviour).
Status CheckEnum(uint32_t v, uint32_t end, const char* what) {
  if (v >= end) return Status::Cuda(CUDA_ERROR_INVALID_VALUE, std::string(what) + " out of range");
  return {};
}

Status HandleCtxSetLimit(Session& s, const proto::CtxSetLimitReq& req, proto::CtxSetLimitRep*) {
  RGPU_RETURN_IF_ERROR(CheckEnum(req.limit, CU_LIMIT_MAX, "limit"));
  RGPU_RETURN_IF_ERROR(s.UseContext(req.ctx));
  RGPU_RETURN_IF_ERROR(
      CuStatus(s.driver().cuCtxSetLimit(static_cast<CUlimit>(req.limit), req.value), "cuCtxSetLimit"));
  s.NoteContextLimit(static_cast<int>(req.limit), req.value);
  return {};
}

Status HandleCtxGetLimit(Session& s, const proto::CtxGetLimitReq& req, proto::CtxGetLimitRep* rep) {
  RGPU_RETURN_IF_ERROR(CheckEnum(req.limit, CU_LIMIT_MAX, "limit"));
  RGPU_RETURN_IF_ERROR(s.UseContext(req.ctx));
  size_t v = 0;
  Status st = CuStatus(s.driver().cuCtxGetLimit(&v, static_cast<CUlimit>(req.limit)), "cuCtxGetLimit");
  rep->value = v;
  return st;
}

Status HandleCtxSetCacheConfig(Session& s, const proto::CtxSetCacheConfigReq& req,
                               proto::CtxSetCacheConfigRep*) {
  RGPU_RETURN_IF_ERROR(CheckEnum(req.config, CU_FUNC_CACHE_PREFER_EQUAL + 1, "cache config"));
  RGPU_RETURN_IF_ERROR(s.UseContext(req.ctx));
  RGPU_RETURN_IF_ERROR(CuStatus(s.driver().cuCtxSetCacheConfig(static_cast<CUfunc_cache>(req.config)),
                                "cuCtxSetCacheConfig"));
  s.NoteContextCacheConfig(static_cast<int>(req.config));
  return {};
}

Status HandleCtxGetStreamPriorityRange(Session& s, const proto::CtxGetStreamPriorityRangeReq& req,
                                       proto::CtxGetStreamPriorityRangeRep* rep) {
  RGPU_RETURN_IF_ERROR(s.UseContext(req.ctx));
  int least = 0, greatest = 0;
  Status st = CuStatus(s.driver().cuCtxGetStreamPriorityRange(&least, &greatest),
                       "cuCtxGetStreamPriorityRange");
  rep->least = least;
  rep->greatest = greatest;
  return st;
}

Status HandleCtxGetFlags(Session& s, const proto::CtxGetFlagsReq& req, proto::CtxGetFlagsRep* rep) {
  RGPU_RETURN_IF_ERROR(s.UseContext(req.ctx));
  unsigned flags = 0;
  Status st = CuStatus(s.driver().cuCtxGetFlags(&flags), "cuCtxGetFlags");
  rep->flags = flags;
  return st;
}

}  // namespace rgpu::worker
