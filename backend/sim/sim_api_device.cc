// Sim driver functions: init, devices, primary and regular contexts, limits.
// Return codes follow cuda.h's documentation of each function (and the real
// driver where the documentation is silent).
#include <algorithm>
#include <cstdio>
#include <cstring>

#include "backend/sim/sim_state.h"
#include "common/log.h"

namespace rgpu::backend::sim {
namespace {

// Defaults of a fresh context, as cuCtxGetLimit reads them on an H200 with
// driver 580 (sim_driver_probe). DEV_RUNTIME_SYNC_DEPTH and
// CIG_SHMEM_FALLBACK_ENABLED are CUDA_ERROR_UNSUPPORTED_LIMIT there.
void InitLimits(const SimDevice& s, Context* c) {
  c->limits[CU_LIMIT_STACK_SIZE] = 1024;
  c->limits[CU_LIMIT_PRINTF_FIFO_SIZE] = 8650752;
  c->limits[CU_LIMIT_MALLOC_HEAP_SIZE] = 8388608;
  c->limits[CU_LIMIT_DEV_RUNTIME_PENDING_LAUNCH_COUNT] = 2048;
  c->limits[CU_LIMIT_MAX_L2_FETCH_GRANULARITY] = 64;
  c->limits[CU_LIMIT_PERSISTING_L2_CACHE_SIZE] = 11796480;
  c->limits[CU_LIMIT_SHMEM_SIZE] = static_cast<size_t>(
      s.Attr(c->device, CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK_OPTIN));
  c->limits[CU_LIMIT_CIG_ENABLED] = 0;
}

bool UnsupportedLimit(CUlimit l) {
  return l == CU_LIMIT_DEV_RUNTIME_SYNC_DEPTH || l == CU_LIMIT_CIG_SHMEM_FALLBACK_ENABLED;
}

bool ValidCtxFlags(unsigned flags) {
  if (flags & ~static_cast<unsigned>(CU_CTX_FLAGS_MASK)) return false;
  unsigned sched = flags & CU_CTX_SCHED_MASK;
  return sched == 0 || sched == CU_CTX_SCHED_SPIN || sched == CU_CTX_SCHED_YIELD ||
         sched == CU_CTX_SCHED_BLOCKING_SYNC;
}

// Copies `s` into a caller buffer of `len` bytes, truncating, NUL-terminated.
void CopyString(const std::string& s, char* out, int len) {
  size_t n = std::min<size_t>(s.size(), static_cast<size_t>(len) - 1);
  std::memcpy(out, s.data(), n);
  out[n] = 0;
}

}  // namespace

CUresult cuInit(unsigned int Flags) {
  SimDevice* dev = SimDevice::Get();
  if (dev == nullptr) return CUDA_ERROR_NOT_INITIALIZED;
  if (Flags != 0) return CUDA_ERROR_INVALID_VALUE;
  std::lock_guard<std::mutex> lock(dev->mu);
  dev->initialized = true;
  return CUDA_SUCCESS;
}

CUresult cuDriverGetVersion(int* driverVersion) {
  if (driverVersion == nullptr) return CUDA_ERROR_INVALID_VALUE;
  SimDevice* dev = SimDevice::Get();
  if (dev == nullptr) return CUDA_ERROR_NOT_INITIALIZED;
  *driverVersion = dev->driver_version;  // no cuInit needed, like the driver
  return CUDA_SUCCESS;
}

CUresult cuDeviceGet(CUdevice* device, int ordinal) {
  SIM_ENTER(s);
  if (device == nullptr) return CUDA_ERROR_INVALID_VALUE;
  if (CUresult r = s->CheckDevice(ordinal); r != CUDA_SUCCESS) return r;
  *device = ordinal;
  return CUDA_SUCCESS;
}

CUresult cuDeviceGetCount(int* count) {
  SIM_ENTER(s);
  if (count == nullptr) return CUDA_ERROR_INVALID_VALUE;
  *count = static_cast<int>(s->devices.size());
  return CUDA_SUCCESS;
}

CUresult cuDeviceGetName(char* name, int len, CUdevice dev) {
  SIM_ENTER(s);
  if (name == nullptr || len <= 0) return CUDA_ERROR_INVALID_VALUE;
  if (CUresult r = s->CheckDevice(dev); r != CUDA_SUCCESS) return r;
  CopyString(s->devices[dev]->facts.name, name, len);
  return CUDA_SUCCESS;
}

CUresult cuDeviceGetUuid_v2(CUuuid* uuid, CUdevice dev) {
  SIM_ENTER(s);
  if (uuid == nullptr) return CUDA_ERROR_INVALID_VALUE;
  if (CUresult r = s->CheckDevice(dev); r != CUDA_SUCCESS) return r;
  *uuid = s->devices[dev]->facts.uuid;
  return CUDA_SUCCESS;
}

CUresult cuDeviceTotalMem_v2(size_t* bytes, CUdevice dev) {
  SIM_ENTER(s);
  if (bytes == nullptr) return CUDA_ERROR_INVALID_VALUE;
  if (CUresult r = s->CheckDevice(dev); r != CUDA_SUCCESS) return r;
  *bytes = s->devices[dev]->facts.total_mem;
  return CUDA_SUCCESS;
}

CUresult cuDeviceGetAttribute(int* pi, CUdevice_attribute attrib, CUdevice dev) {
  SIM_ENTER(s);
  if (pi == nullptr) return CUDA_ERROR_INVALID_VALUE;
  if (CUresult r = s->CheckDevice(dev); r != CUDA_SUCCESS) return r;
  const auto& attrs = s->devices[dev]->facts.attributes;
  auto it = attrs.find(attrib);
  // Attributes the profile does not list are ones this driver does not know.
  if (it == attrs.end()) return CUDA_ERROR_INVALID_VALUE;
  *pi = it->second;
  return CUDA_SUCCESS;
}

CUresult cuDeviceGetPCIBusId(char* pciBusId, int len, CUdevice dev) {
  SIM_ENTER(s);
  if (pciBusId == nullptr || len <= 0) return CUDA_ERROR_INVALID_VALUE;
  if (CUresult r = s->CheckDevice(dev); r != CUDA_SUCCESS) return r;
  // "[domain]:[bus]:[device].[function]", upper-case hex as the driver
  // writes it (NCCL lower-cases the driver's answer before using it).
  char buf[32];
  snprintf(buf, sizeof buf, "%04X:%02X:%02X.0", s->Attr(dev, CU_DEVICE_ATTRIBUTE_PCI_DOMAIN_ID),
           s->Attr(dev, CU_DEVICE_ATTRIBUTE_PCI_BUS_ID),
           s->Attr(dev, CU_DEVICE_ATTRIBUTE_PCI_DEVICE_ID));
  CopyString(buf, pciBusId, len);
  return CUDA_SUCCESS;
}

// ---- primary contexts ------------------------------------------------------

CUresult cuDevicePrimaryCtxRetain(CUcontext* pctx, CUdevice dev) {
  SIM_ENTER(s);
  if (pctx == nullptr) return CUDA_ERROR_INVALID_VALUE;
  if (CUresult r = s->CheckDevice(dev); r != CUDA_SUCCESS) return r;
  Context* c = s->FindContext(s->devices[dev]->primary_ctx);
  if (!c->active) {
    c->active = true;
    c->sticky = CUDA_SUCCESS;
    InitLimits(*s, c);
  }
  ++c->refcount;
  *pctx = ToHandle<CUcontext>(c->id);
  return CUDA_SUCCESS;
}

CUresult cuDevicePrimaryCtxRelease_v2(CUdevice dev) {
  SIM_ENTER(s);
  if (CUresult r = s->CheckDevice(dev); r != CUDA_SUCCESS) return r;
  Context* c = s->FindContext(s->devices[dev]->primary_ctx);
  if (c->refcount <= 0) return CUDA_ERROR_INVALID_CONTEXT;
  if (--c->refcount == 0) {
    // "The context is automatically reset once the last reference to it is
    // released." It stays on thread stacks (release never pops).
    s->DestroyContextResources(c->id);
    c->active = false;
    c->flags = 0;
  }
  return CUDA_SUCCESS;
}

CUresult cuDevicePrimaryCtxReset_v2(CUdevice dev) {
  SIM_ENTER(s);
  if (CUresult r = s->CheckDevice(dev); r != CUDA_SUCCESS) return r;
  Context* c = s->FindContext(s->devices[dev]->primary_ctx);
  // Destroys all allocations and state; does not release the references.
  s->DestroyContextResources(c->id);
  c->active = false;
  c->flags = 0;
  c->cache_config = CU_FUNC_CACHE_PREFER_NONE;
  return CUDA_SUCCESS;
}

CUresult cuDevicePrimaryCtxSetFlags_v2(CUdevice dev, unsigned int flags) {
  SIM_ENTER(s);
  if (CUresult r = s->CheckDevice(dev); r != CUDA_SUCCESS) return r;
  if (!ValidCtxFlags(flags)) return CUDA_ERROR_INVALID_VALUE;
  s->FindContext(s->devices[dev]->primary_ctx)->flags = flags;
  return CUDA_SUCCESS;
}

CUresult cuDevicePrimaryCtxGetState(CUdevice dev, unsigned int* flags, int* active) {
  SIM_ENTER(s);
  if (flags == nullptr || active == nullptr) return CUDA_ERROR_INVALID_VALUE;
  if (CUresult r = s->CheckDevice(dev); r != CUDA_SUCCESS) return r;
  const Context* c = s->FindContext(s->devices[dev]->primary_ctx);
  *flags = c->flags;
  *active = c->active && c->refcount > 0 ? 1 : 0;
  return CUDA_SUCCESS;
}

// ---- regular contexts and the thread's context stack ----------------------

CUresult cuCtxCreate_v4(CUcontext* pctx, CUctxCreateParams* ctxCreateParams, unsigned int flags,
                        CUdevice dev) {
  SIM_ENTER(s);
  if (pctx == nullptr || !ValidCtxFlags(flags)) return CUDA_ERROR_INVALID_VALUE;
  if (CUresult r = s->CheckDevice(dev); r != CUDA_SUCCESS) return r;
  if (ctxCreateParams != nullptr &&
      (ctxCreateParams->numExecAffinityParams != 0 || ctxCreateParams->cigParams != nullptr)) {
    LogOnce(LogLevel::kWarn, "sim:cuCtxCreate_v4:params",
            "sim: cuCtxCreate_v4 with execution affinity or CIG parameters is not supported");
    return CUDA_ERROR_NOT_SUPPORTED;
  }
  Context c;
  c.id = NextId();
  c.device = dev;
  c.flags = flags;
  InitLimits(*s, &c);
  s->contexts[c.id] = c;
  s->ThreadStack().push_back(c.id);
  *pctx = ToHandle<CUcontext>(c.id);
  return CUDA_SUCCESS;
}

CUresult cuCtxDestroy_v2(CUcontext ctx) {
  SIM_ENTER(s);
  if (ctx == nullptr) return CUDA_ERROR_INVALID_VALUE;
  uint64_t id = FromHandle(ctx);
  Context* c = s->FindContext(id);
  if (c == nullptr || c->primary) return CUDA_ERROR_INVALID_CONTEXT;
  s->DestroyContextResources(id);
  s->contexts.erase(id);
  // Popped from the calling thread's stack; other threads see
  // CUDA_ERROR_CONTEXT_IS_DESTROYED until they set another context.
  std::erase(s->ThreadStack(), id);
  return CUDA_SUCCESS;
}

CUresult cuCtxSetCurrent(CUcontext ctx) {
  SIM_ENTER(s);
  std::vector<uint64_t>& st = s->ThreadStack();
  if (ctx == nullptr) {
    if (!st.empty()) st.pop_back();
    return CUDA_SUCCESS;
  }
  if (s->FindContext(FromHandle(ctx)) == nullptr) return CUDA_ERROR_INVALID_CONTEXT;
  if (st.empty()) {
    st.push_back(FromHandle(ctx));
  } else {
    st.back() = FromHandle(ctx);
  }
  return CUDA_SUCCESS;
}

CUresult cuCtxGetCurrent(CUcontext* pctx) {
  SIM_ENTER(s);
  if (pctx == nullptr) return CUDA_ERROR_INVALID_VALUE;
  std::vector<uint64_t>& st = s->ThreadStack();
  *pctx = st.empty() ? nullptr : ToHandle<CUcontext>(st.back());
  return CUDA_SUCCESS;
}

CUresult cuCtxSynchronize() {
  SIM_ENTER(s);
  SIM_CURRENT_CTX(s, ctx);
  return s->CheckUnsafeCall();  // all work already ran at submission
}

CUresult cuCtxSetLimit(CUlimit limit, size_t value) {
  SIM_ENTER(s);
  SIM_CURRENT_CTX(s, ctx);
  switch (limit) {
    case CU_LIMIT_STACK_SIZE:
    case CU_LIMIT_PRINTF_FIFO_SIZE:
    case CU_LIMIT_MALLOC_HEAP_SIZE:
    case CU_LIMIT_DEV_RUNTIME_PENDING_LAUNCH_COUNT:
      break;
    case CU_LIMIT_DEV_RUNTIME_SYNC_DEPTH:
    case CU_LIMIT_CIG_SHMEM_FALLBACK_ENABLED:
      return CUDA_ERROR_UNSUPPORTED_LIMIT;
    case CU_LIMIT_MAX_L2_FETCH_GRANULARITY:
      if (value > 128) return CUDA_ERROR_INVALID_VALUE;
      break;
    case CU_LIMIT_PERSISTING_L2_CACHE_SIZE:
      if (value > static_cast<size_t>(
                      s->Attr(ctx->device, CU_DEVICE_ATTRIBUTE_MAX_PERSISTING_L2_CACHE_SIZE))) {
        return CUDA_ERROR_INVALID_VALUE;
      }
      break;
    case CU_LIMIT_SHMEM_SIZE:
    case CU_LIMIT_CIG_ENABLED:
      return CUDA_ERROR_NOT_PERMITTED;  // query-only
    default:
      return CUDA_ERROR_INVALID_VALUE;
  }
  ctx->limits[limit] = value;
  return CUDA_SUCCESS;
}

CUresult cuCtxGetLimit(size_t* pvalue, CUlimit limit) {
  SIM_ENTER(s);
  if (pvalue == nullptr) return CUDA_ERROR_INVALID_VALUE;
  SIM_CURRENT_CTX(s, ctx);
  if (limit < 0 || limit >= CU_LIMIT_MAX) return CUDA_ERROR_INVALID_VALUE;
  if (UnsupportedLimit(limit)) return CUDA_ERROR_UNSUPPORTED_LIMIT;
  *pvalue = ctx->limits[limit];
  return CUDA_SUCCESS;
}

CUresult cuCtxGetStreamPriorityRange(int* leastPriority, int* greatestPriority) {
  SIM_ENTER(s);
  SIM_CURRENT_CTX(s, ctx);
  // Either pointer may be null. Volta through Hopper: [0, -5].
  if (leastPriority != nullptr) *leastPriority = 0;
  if (greatestPriority != nullptr) *greatestPriority = -5;
  return CUDA_SUCCESS;
}

CUresult cuCtxSetCacheConfig(CUfunc_cache config) {
  SIM_ENTER(s);
  SIM_CURRENT_CTX(s, ctx);
  if (config < CU_FUNC_CACHE_PREFER_NONE || config > CU_FUNC_CACHE_PREFER_EQUAL) {
    return CUDA_ERROR_INVALID_VALUE;
  }
  ctx->cache_config = config;
  return CUDA_SUCCESS;
}

CUresult cuCtxGetCacheConfig(CUfunc_cache* pconfig) {
  SIM_ENTER(s);
  if (pconfig == nullptr) return CUDA_ERROR_INVALID_VALUE;
  SIM_CURRENT_CTX(s, ctx);
  *pconfig = ctx->cache_config;
  return CUDA_SUCCESS;
}

CUresult cuCtxGetDevice(CUdevice* device) {
  SIM_ENTER(s);
  if (device == nullptr) return CUDA_ERROR_INVALID_VALUE;
  SIM_CURRENT_CTX(s, ctx);
  *device = ctx->device;
  return CUDA_SUCCESS;
}

CUresult cuCtxGetFlags(unsigned int* flags) {
  SIM_ENTER(s);
  if (flags == nullptr) return CUDA_ERROR_INVALID_VALUE;
  SIM_CURRENT_CTX(s, ctx);
  *flags = ctx->flags;
  return CUDA_SUCCESS;
}

}  // namespace rgpu::backend::sim
