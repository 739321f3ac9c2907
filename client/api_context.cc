// Exported driver functions: primary and regular contexts, the per-thread
// current-context stack, context-wide settings. The stack and the primary
// context state are mirrored locally: cuCtxGetCurrent, cuCtxGetDevice and
// cuDevicePrimaryCtxGetState never leave the process.
#include "client/api_common.h"
#include "client/export_tables.h"
#include "client/unsupported.h"

using namespace rgpu::client;
namespace proto = rgpu::proto;

namespace {

// Flags every context reports: since CUDA 11 all contexts behave as though
// CU_CTX_MAP_HOST were given (cuda.h), and the driver says so (an H100,
// driver 580: cudaGetDeviceFlags gives cudaDeviceMapHost unasked).
constexpr unsigned kAlwaysOnFlags = CU_CTX_MAP_HOST;

CtxObj* AsCtx(ClientState* s, CUcontext c) {
  return s->IsContext(c) ? reinterpret_cast<CtxObj*>(c) : nullptr;
}

// Sends the primary context's retain to the worker on first use.
CUresult ActivatePrimary(ClientState* s, CtxObj* p) {
  if (p->active) return CUDA_SUCCESS;
  CUresult r = Sync(s, proto::CallId::kPrimaryCtxRetain,
                    proto::PrimaryCtxRetainReq{p->id, s->RemoteOrdinal(p->device)});
  if (r == CUDA_SUCCESS) p->active = true;
  return r;
}

}  // namespace

extern "C" {

CUresult cuDevicePrimaryCtxRetain(CUcontext* pctx, CUdevice dev) {
  if (pctx == nullptr) return CUDA_ERROR_INVALID_VALUE;
  RGPU_STATE_OR_RETURN(s);
  if (dev < 0 || dev >= s->device_count()) return CUDA_ERROR_INVALID_DEVICE;
  CtxObj* p = s->Primary(dev);
  CUresult r = ActivatePrimary(s, p);
  if (r != CUDA_SUCCESS) return r;
  ++p->retains;
  *pctx = reinterpret_cast<CUcontext>(p);
  return CUDA_SUCCESS;
}

CUresult cuDevicePrimaryCtxRelease_v2(CUdevice dev) {
  RGPU_STATE_OR_RETURN(s);
  if (dev < 0 || dev >= s->device_count()) return CUDA_ERROR_INVALID_DEVICE;
  CtxObj* p = s->Primary(dev);
  if (p->retains <= 0) return CUDA_ERROR_INVALID_CONTEXT;
  // The worker keeps the context until the session ends: releasing it there
  // would free every allocation while handles to them may still be in use.
  --p->retains;
  return CUDA_SUCCESS;
}
CUresult cuDevicePrimaryCtxRelease(CUdevice dev) { return cuDevicePrimaryCtxRelease_v2(dev); }

CUresult cuDevicePrimaryCtxReset_v2(CUdevice dev) {
  RGPU_STATE_OR_RETURN(s);
  if (dev < 0 || dev >= s->device_count()) return CUDA_ERROR_INVALID_DEVICE;
  CtxObj* p = s->Primary(dev);
  for (auto& l : p->limits) l.store(0, std::memory_order_relaxed);
  RunContextStorageDestructors(reinterpret_cast<CUcontext>(p));
  if (!p->active) return CUDA_SUCCESS;
  CUresult r = Sync(s, proto::CallId::kCtxSynchronize, proto::CtxSynchronizeReq{p->id});
  if (r != CUDA_SUCCESS) return r;
  return CUDA_SUCCESS;
}
CUresult cuDevicePrimaryCtxReset(CUdevice dev) { return cuDevicePrimaryCtxReset_v2(dev); }

CUresult cuDevicePrimaryCtxSetFlags_v2(CUdevice dev, unsigned int flags) {
  RGPU_STATE_OR_RETURN(s);
  if (dev < 0 || dev >= s->device_count()) return CUDA_ERROR_INVALID_DEVICE;
  CUresult r = Sync(s, proto::CallId::kPrimaryCtxSetFlags,
                    proto::PrimaryCtxSetFlagsReq{s->RemoteOrdinal(dev), flags});
  if (r == CUDA_SUCCESS) s->Primary(dev)->flags = flags;
  return r;
}
CUresult cuDevicePrimaryCtxSetFlags(CUdevice dev, unsigned int flags) {
  return cuDevicePrimaryCtxSetFlags_v2(dev, flags);
}

CUresult cuDevicePrimaryCtxGetState(CUdevice dev, unsigned int* flags, int* active) {
  if (flags == nullptr || active == nullptr) return CUDA_ERROR_INVALID_VALUE;
  RGPU_STATE_OR_RETURN(s);
  if (dev < 0 || dev >= s->device_count()) return CUDA_ERROR_INVALID_DEVICE;
  CtxObj* p = s->Primary(dev);
  *flags = p->flags | kAlwaysOnFlags;
  *active = p->retains > 0 ? 1 : 0;
  return CUDA_SUCCESS;
}

CUresult cuCtxCreate_v4(CUcontext* pctx, CUctxCreateParams* params, unsigned int flags, CUdevice dev) {
  if (pctx == nullptr) return CUDA_ERROR_INVALID_VALUE;
  RGPU_STATE_OR_RETURN(s);
  if (dev < 0 || dev >= s->device_count()) return CUDA_ERROR_INVALID_DEVICE;
  if (params != nullptr && (params->execAffinityParams != nullptr || params->cigParams != nullptr))
    return ReportUnsupported("cuCtxCreate with exec-affinity or CIG parameters");
  CtxObj* c = s->NewContext(dev, flags);
  CUresult r = Sync(s, proto::CallId::kCtxCreate,
                    proto::CtxCreateReq{c->id, flags, s->RemoteOrdinal(dev)});
  if (r != CUDA_SUCCESS) {
    s->DropContext(c);
    return r;
  }
  ClientState::Stack().push_back(c);
  *pctx = reinterpret_cast<CUcontext>(c);
  return CUDA_SUCCESS;
}
CUresult cuCtxCreate_v3(CUcontext* pctx, CUexecAffinityParam* p, int n, unsigned int flags, CUdevice dev) {
  if (p != nullptr && n > 0) return ReportUnsupported("cuCtxCreate_v3 with exec affinity");
  return cuCtxCreate_v4(pctx, nullptr, flags, dev);
}
CUresult cuCtxCreate_v2(CUcontext* pctx, unsigned int flags, CUdevice dev) {
  return cuCtxCreate_v4(pctx, nullptr, flags, dev);
}

CUresult cuCtxDestroy_v2(CUcontext ctx) {
  RGPU_STATE_OR_RETURN(s);
  CtxObj* c = AsCtx(s, ctx);
  if (c == nullptr || c->primary) return CUDA_ERROR_INVALID_CONTEXT;
  RunContextStorageDestructors(ctx);
  CUresult r = Sync(s, proto::CallId::kCtxDestroy, proto::CtxDestroyReq{c->id});
  auto& st = ClientState::Stack();
  for (auto it = st.begin(); it != st.end();) {
    if (*it == c) it = st.erase(it);
    else ++it;
  }
  s->DropContext(c);
  return r;
}
CUresult cuCtxDestroy(CUcontext ctx) { return cuCtxDestroy_v2(ctx); }

CUresult cuCtxPushCurrent_v2(CUcontext ctx) {
  RGPU_STATE_OR_RETURN(s);
  CtxObj* c = AsCtx(s, ctx);
  if (c == nullptr) return CUDA_ERROR_INVALID_CONTEXT;
  if (c->primary) {
    CUresult r = ActivatePrimary(s, c);
    if (r != CUDA_SUCCESS) return r;
  }
  ClientState::Stack().push_back(c);
  return CUDA_SUCCESS;
}
CUresult cuCtxPushCurrent(CUcontext ctx) { return cuCtxPushCurrent_v2(ctx); }

CUresult cuCtxPopCurrent_v2(CUcontext* pctx) {
  RGPU_STATE_OR_RETURN(s);
  auto& st = ClientState::Stack();
  if (st.empty()) return CUDA_ERROR_INVALID_CONTEXT;
  if (pctx != nullptr) *pctx = reinterpret_cast<CUcontext>(st.back());
  st.pop_back();
  return CUDA_SUCCESS;
}
CUresult cuCtxPopCurrent(CUcontext* pctx) { return cuCtxPopCurrent_v2(pctx); }

CUresult cuCtxSetCurrent(CUcontext ctx) {
  RGPU_STATE_OR_RETURN(s);
  auto& st = ClientState::Stack();
  if (ctx == nullptr) {
    if (!st.empty()) st.pop_back();
    return CUDA_SUCCESS;
  }
  CtxObj* c = AsCtx(s, ctx);
  if (c == nullptr) return CUDA_ERROR_INVALID_CONTEXT;
  if (c->primary) {
    CUresult r = ActivatePrimary(s, c);
    if (r != CUDA_SUCCESS) return r;
  }
  if (st.empty()) st.push_back(c);
  else st.back() = c;
  return CUDA_SUCCESS;
}

CUresult cuCtxGetCurrent(CUcontext* pctx) {
  if (pctx == nullptr) return CUDA_ERROR_INVALID_VALUE;
  RGPU_STATE_OR_RETURN(s);
  *pctx = reinterpret_cast<CUcontext>(s->Current());
  return CUDA_SUCCESS;
}

CUresult cuCtxGetDevice(CUdevice* device) {
  if (device == nullptr) return CUDA_ERROR_INVALID_VALUE;
  RGPU_STATE_OR_RETURN(s);
  RGPU_CTX_OR_RETURN(s, c);
  *device = c->device;
  return CUDA_SUCCESS;
}

CUresult cuCtxGetDevice_v2(CUdevice* device, CUcontext ctx) {
  if (ctx == nullptr) return cuCtxGetDevice(device);
  if (device == nullptr) return CUDA_ERROR_INVALID_VALUE;
  RGPU_STATE_OR_RETURN(s);
  CtxObj* c = AsCtx(s, ctx);
  if (c == nullptr) return CUDA_ERROR_INVALID_CONTEXT;
  *device = c->device;
  return CUDA_SUCCESS;
}

CUresult cuCtxGetFlags(unsigned int* flags) {
  if (flags == nullptr) return CUDA_ERROR_INVALID_VALUE;
  RGPU_STATE_OR_RETURN(s);
  RGPU_CTX_OR_RETURN(s, c);
  *flags = c->flags | kAlwaysOnFlags;
  return CUDA_SUCCESS;
}

CUresult cuCtxGetId(CUcontext ctx, unsigned long long* id) {
  if (id == nullptr) return CUDA_ERROR_INVALID_VALUE;
  RGPU_STATE_OR_RETURN(s);
  CtxObj* c = ctx ? AsCtx(s, ctx) : s->Current();
  if (c == nullptr) return CUDA_ERROR_INVALID_CONTEXT;
  *id = c->id;
  return CUDA_SUCCESS;
}

CUresult cuCtxGetApiVersion(CUcontext ctx, unsigned int* version) {
  if (version == nullptr) return CUDA_ERROR_INVALID_VALUE;
  RGPU_STATE_OR_RETURN(s);
  CtxObj* c = ctx ? AsCtx(s, ctx) : s->Current();
  if (c == nullptr) return CUDA_ERROR_INVALID_CONTEXT;
  *version = 3020;  // what the driver reports for contexts made by the v2+ API
  return CUDA_SUCCESS;
}

CUresult cuCtxSynchronize(void) {
  RGPU_STATE_OR_RETURN(s);
  RGPU_CTX_OR_RETURN(s, c);
  return AfterSync(s, Sync(s, proto::CallId::kCtxSynchronize, proto::CtxSynchronizeReq{c->id}));
}

CUresult cuCtxSynchronize_v2(CUcontext ctx) {
  if (ctx == nullptr) return cuCtxSynchronize();
  RGPU_STATE_OR_RETURN(s);
  CtxObj* c = AsCtx(s, ctx);
  if (c == nullptr) return CUDA_ERROR_INVALID_CONTEXT;
  return AfterSync(s, Sync(s, proto::CallId::kCtxSynchronize, proto::CtxSynchronizeReq{c->id}));
}

CUresult cuCtxSetLimit(CUlimit limit, size_t value) {
  RGPU_STATE_OR_RETURN(s);
  RGPU_CTX_OR_RETURN(s, c);
  // The driver may round or refuse the value: the next get asks again.
  if (limit >= 0 && limit < CtxObj::kCachedLimits) c->limits[limit].store(0, std::memory_order_relaxed);
  return Sync(s, proto::CallId::kCtxSetLimit,
              proto::CtxSetLimitReq{c->id, static_cast<uint32_t>(limit), value});
}

// Libraries ask for limits around their kernels (cuDNN's attention asks for
// the stack size four times per layer per step): after the first answer,
// they are answered here (CtxObj::limits says when one is forgotten).
CUresult cuCtxGetLimit(size_t* value, CUlimit limit) {
  if (value == nullptr) return CUDA_ERROR_INVALID_VALUE;
  RGPU_STATE_OR_RETURN(s);
  RGPU_CTX_OR_RETURN(s, c);
  const bool cacheable = limit >= 0 && limit < CtxObj::kCachedLimits;
  if (cacheable) {
    if (uint64_t v = c->limits[limit].load(std::memory_order_relaxed); v != 0) {
      *value = static_cast<size_t>(v - 1);
      return s->TakeAsyncError();  // a query still reports earlier async failures
    }
  }
  proto::CtxGetLimitRep rep;
  CUresult r = Sync(s, proto::CallId::kCtxGetLimit,
                    proto::CtxGetLimitReq{c->id, static_cast<uint32_t>(limit)}, &rep);
  if (r == CUDA_SUCCESS) {
    *value = rep.value;
    if (cacheable) c->limits[limit].store(rep.value + 1, std::memory_order_relaxed);
  }
  return r;
}

CUresult cuCtxSetCacheConfig(CUfunc_cache config) {
  RGPU_STATE_OR_RETURN(s);
  RGPU_CTX_OR_RETURN(s, c);
  if (config < CU_FUNC_CACHE_PREFER_NONE || config > CU_FUNC_CACHE_PREFER_EQUAL)
    return CUDA_ERROR_INVALID_VALUE;
  return Post(s, proto::CallId::kCtxSetCacheConfig,
              proto::CtxSetCacheConfigReq{c->id, static_cast<uint32_t>(config)});
}

CUresult cuCtxGetCacheConfig(CUfunc_cache* config) {
  if (config == nullptr) return CUDA_ERROR_INVALID_VALUE;
  RGPU_STATE_OR_RETURN(s);
  RGPU_CTX_OR_RETURN(s, c);
  *config = CU_FUNC_CACHE_PREFER_NONE;
  return CUDA_SUCCESS;
}

CUresult cuCtxGetSharedMemConfig(CUsharedconfig* config) {
  RGPU_RETURN_IF_DEINITIALIZED();
  if (config == nullptr) return CUDA_ERROR_INVALID_VALUE;
  *config = CU_SHARED_MEM_CONFIG_FOUR_BYTE_BANK_SIZE;
  return CUDA_SUCCESS;
}

CUresult cuCtxSetSharedMemConfig(CUsharedconfig config) {
  RGPU_RETURN_IF_DEINITIALIZED();
  // Hopper has a fixed bank size; the driver accepts and ignores this.
  return config <= CU_SHARED_MEM_CONFIG_EIGHT_BYTE_BANK_SIZE ? CUDA_SUCCESS : CUDA_ERROR_INVALID_VALUE;
}

CUresult cuCtxGetStreamPriorityRange(int* leastPriority, int* greatestPriority) {
  RGPU_STATE_OR_RETURN(s);
  RGPU_CTX_OR_RETURN(s, c);
  const proto::DeviceFacts& d = s->device(c->device);
  if (d.stream_priority_least == 0 && d.stream_priority_greatest == 0) {
    // Not in the device facts: ask once and keep the answer.
    proto::CtxGetStreamPriorityRangeRep rep;
    CUresult r = Sync(s, proto::CallId::kCtxGetStreamPriorityRange,
                      proto::CtxGetStreamPriorityRangeReq{c->id}, &rep);
    if (r != CUDA_SUCCESS) return r;
    auto& facts = const_cast<proto::DeviceFacts&>(d);
    facts.stream_priority_least = rep.least;
    facts.stream_priority_greatest = rep.greatest;
  }
  if (leastPriority) *leastPriority = d.stream_priority_least;
  if (greatestPriority) *greatestPriority = d.stream_priority_greatest;
  return CUDA_SUCCESS;
}


}  // extern "C"

namespace rgpu::client {
// cudart's CUDART_INTERFACE[2]: the primary context's handle, without
// retaining or activating it (the real driver leaves it inactive).
CUresult PrimaryContextHandle(CUdevice dev, CUcontext* ctx) {
  ClientState* s = ClientState::Get();
  if (s == nullptr) return CUDA_ERROR_NOT_INITIALIZED;
  RGPU_RETURN_IF_DEINITIALIZED();
  if (dev < 0 || dev >= s->device_count()) return CUDA_ERROR_INVALID_DEVICE;
  *ctx = reinterpret_cast<CUcontext>(s->Primary(dev));
  return CUDA_SUCCESS;
}
}  // namespace rgpu::client
