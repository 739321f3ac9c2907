// Handlers: streams, events, modules, functions, launches, occupancy.
#include <cstring>
#include <vector>

#include "common/log.h"
#include "image/image.h"
#include "proto/coding.h"
#include "server/worker/handlers.gen.h"
#include "server/worker/session.h"

namespace rgpu::worker {
namespace {
constexpr uint32_t kMaxParams = 4096;

constexpr size_t kAttrValueSize = sizeof(CUlaunchAttributeValue);
static_assert(kAttrValueSize == 64, "CUlaunchAttributeValue is 64 bytes in cuda.h");


Status Stream(Session& s, uint64_t id, CUstream* out) { return Get(s.FindStream(id), out); }

// A function handle usable in the current context. Library kernels resolve
// per context (cuKernelGetFunction) and are re-resolved when it changes.
Status LaunchableFunction(Session& s, uint64_t id, FunctionEntry** out) {
  RGPU_RETURN_IF_ERROR(Get(s.FindFunction(id), out));
  FunctionEntry* f = *out;
  if (f->kernel != nullptr) {
    // Every launch of a library kernel (all of cudart's) asks: the session
    // knows the current context without a driver call.
    CUcontext cur = s.current_context();
    if (cur == nullptr) s.driver().cuCtxGetCurrent(&cur);
    if (cur != f->fn_ctx || f->fn == nullptr) {
      RGPU_RETURN_IF_ERROR(
          CuStatus(s.driver().cuKernelGetFunction(&f->fn, f->kernel), "cuKernelGetFunction"));
      f->fn_ctx = cur;
    }
  }
  return {};
}
}  // namespace

Status DecodeLaunchAttrs(Session& s, std::span<const uint8_t> bytes, CUlaunchAttribute* attrs,
                         uint32_t* count) {
  *count = 0;
  if (bytes.empty()) return {};
  proto::Reader ar(bytes);
  uint32_t nattrs = 0;
  RGPU_RETURN_IF_ERROR(ar.U32(&nattrs));
  if (nattrs > kMaxLaunchAttrs) return Status::Protocol("launch: too many attributes");
  for (uint32_t i = 0; i < nattrs; ++i) {
    uint32_t id = 0;
    std::span<const uint8_t> value;
    RGPU_RETURN_IF_ERROR(ar.U32(&id));
    RGPU_RETURN_IF_ERROR(ar.Raw(kAttrValueSize, &value));
    // Below 32 stays inside CUlaunchAttributeID's range; the driver refuses
    // ids it does not know.
    if (id >= 32) return Status::Cuda(CUDA_ERROR_INVALID_VALUE, "launch attribute id out of range");
    attrs[i] = CUlaunchAttribute{};
    attrs[i].id = static_cast<CUlaunchAttributeID>(id);
    memcpy(&attrs[i].value, value.data(), kAttrValueSize);
    if (id == CU_LAUNCH_ATTRIBUTE_PROGRAMMATIC_EVENT || id == CU_LAUNCH_ATTRIBUTE_LAUNCH_COMPLETION_EVENT) {
      // The client sent its event id where the CUevent goes.
      uint64_t event_id = 0;
      memcpy(&event_id, value.data(), 8);
      CUevent ev = nullptr;
      RGPU_RETURN_IF_ERROR(Get(s.FindEvent(event_id), &ev));
      if (id == CU_LAUNCH_ATTRIBUTE_PROGRAMMATIC_EVENT) attrs[i].value.programmaticEvent.event = ev;
      else attrs[i].value.launchCompletionEvent.event = ev;
    }
  }
  RGPU_RETURN_IF_ERROR(ar.Finish());
  *count = nattrs;
  return {};
}

Status LaunchableFunctionFor(Session& s, uint64_t id, FunctionEntry** out) {
  return LaunchableFunction(s, id, out);
}

Status HandleStreamCreate(Session& s, const proto::StreamCreateReq& req, proto::StreamCreateRep*) {
  RGPU_RETURN_IF_ERROR(s.UseContext(req.ctx));
  CUstream st = nullptr;
  RGPU_RETURN_IF_ERROR(CuStatus(
      s.driver().cuStreamCreateWithPriority(&st, req.flags, req.priority), "cuStreamCreate"));
  Status added = s.AddStream(req.stream, st, req.flags, req.priority);
  if (!added.ok()) s.driver().cuStreamDestroy_v2(st);
  return added;
}

Status HandleStreamDestroy(Session& s, const proto::StreamDestroyReq& req, proto::StreamDestroyRep*) {
  RGPU_RETURN_IF_ERROR(s.UseContext(req.ctx));
  CUstream st = nullptr;
  RGPU_RETURN_IF_ERROR(Get(s.TakeStream(req.stream), &st));
  return CuStatus(s.driver().cuStreamDestroy_v2(st), "cuStreamDestroy");
}

Status HandleStreamSynchronize(Session& s, const proto::StreamSynchronizeReq& req,
                               proto::StreamSynchronizeRep*) {
  RGPU_RETURN_IF_ERROR(s.UseContext(req.ctx));
  CUstream st = nullptr;
  RGPU_RETURN_IF_ERROR(Stream(s, req.stream, &st));
  return CuStatus(s.driver().cuStreamSynchronize(st), "cuStreamSynchronize");
}

Status HandleStreamQuery(Session& s, const proto::StreamQueryReq& req, proto::StreamQueryRep*) {
  RGPU_RETURN_IF_ERROR(s.UseContext(req.ctx));
  CUstream st = nullptr;
  RGPU_RETURN_IF_ERROR(Stream(s, req.stream, &st));
  return CuStatus(s.driver().cuStreamQuery(st), "cuStreamQuery");
}

Status HandleStreamWaitEvent(Session& s, const proto::StreamWaitEventReq& req,
                             proto::StreamWaitEventRep*) {
  RGPU_RETURN_IF_ERROR(s.UseContext(req.ctx));
  CUstream st = nullptr;
  CUevent ev = nullptr;
  RGPU_RETURN_IF_ERROR(Stream(s, req.stream, &st));
  RGPU_RETURN_IF_ERROR(Get(s.FindEvent(req.event), &ev));
  return CuStatus(s.driver().cuStreamWaitEvent(st, ev, req.flags), "cuStreamWaitEvent");
}

Status HandleEventCreate(Session& s, const proto::EventCreateReq& req, proto::EventCreateRep*) {
  RGPU_RETURN_IF_ERROR(s.UseContext(req.ctx));
  CUevent ev = nullptr;
  RGPU_RETURN_IF_ERROR(CuStatus(s.driver().cuEventCreate(&ev, req.flags), "cuEventCreate"));
  Status added = s.AddEvent(req.event, ev, req.flags);
  if (!added.ok()) s.driver().cuEventDestroy_v2(ev);
  return added;
}

Status HandleEventDestroy(Session& s, const proto::EventDestroyReq& req, proto::EventDestroyRep*) {
  RGPU_RETURN_IF_ERROR(s.UseContext(req.ctx));
  CUevent ev = nullptr;
  RGPU_RETURN_IF_ERROR(Get(s.TakeEvent(req.event), &ev));
  return CuStatus(s.driver().cuEventDestroy_v2(ev), "cuEventDestroy");
}

Status HandleEventRecord(Session& s, const proto::EventRecordReq& req, proto::EventRecordRep*) {
  RGPU_RETURN_IF_ERROR(s.UseContext(req.ctx));
  CUevent ev = nullptr;
  CUstream st = nullptr;
  RGPU_RETURN_IF_ERROR(Get(s.FindEvent(req.event), &ev));
  RGPU_RETURN_IF_ERROR(Stream(s, req.stream, &st));
  if (req.flags != 0)
    return CuStatus(s.driver().cuEventRecordWithFlags(ev, st, req.flags), "cuEventRecordWithFlags");
  return CuStatus(s.driver().cuEventRecord(ev, st), "cuEventRecord");
}

Status HandleEventSynchronize(Session& s, const proto::EventSynchronizeReq& req,
                              proto::EventSynchronizeRep*) {
  RGPU_RETURN_IF_ERROR(s.UseContext(req.ctx));
  CUevent ev = nullptr;
  RGPU_RETURN_IF_ERROR(Get(s.FindEvent(req.event), &ev));
  return CuStatus(s.driver().cuEventSynchronize(ev), "cuEventSynchronize");
}

Status HandleEventQuery(Session& s, const proto::EventQueryReq& req, proto::EventQueryRep*) {
  RGPU_RETURN_IF_ERROR(s.UseContext(req.ctx));
  CUevent ev = nullptr;
  RGPU_RETURN_IF_ERROR(Get(s.FindEvent(req.event), &ev));
  return CuStatus(s.driver().cuEventQuery(ev), "cuEventQuery");
}

Status HandleEventElapsedTime(Session& s, const proto::EventElapsedTimeReq& req,
                              proto::EventElapsedTimeRep* rep) {
  RGPU_RETURN_IF_ERROR(s.UseContext(req.ctx));
  CUevent a = nullptr, b = nullptr;
  RGPU_RETURN_IF_ERROR(Get(s.FindEvent(req.start), &a));
  RGPU_RETURN_IF_ERROR(Get(s.FindEvent(req.end), &b));
  float ms = 0;
  Status st = CuStatus(s.driver().cuEventElapsedTime_v2(&ms, a, b), "cuEventElapsedTime");
  rep->ms = ms;
  return st;
}

Status HandleModuleLoad(Session& s, const proto::ModuleLoadReq& req, proto::ModuleLoadRep*) {
  RGPU_RETURN_IF_ERROR(s.UseContext(req.ctx));
  if (req.image.empty()) return Status::Cuda(CUDA_ERROR_INVALID_IMAGE, "empty module image");
  // The driver finds an image's length from its contents: it must be
  // checked to lie inside what the client sent before the driver reads it.
  // A fatbin wrapper holds a pointer (meaningless here, and never followed):
  // the client sends the fatbin itself.
  image::ImageKind kind = image::DetectImageKind(req.image.data(), req.image.size());
  if (kind == image::ImageKind::kFatbinWrapper || kind == image::ImageKind::kUnknown)
    return Status::Cuda(CUDA_ERROR_INVALID_IMAGE, std::string("module image: ") + image::ImageKindName(kind));
  Result<uint64_t> size = image::ImageSize(req.image.data(), req.image.size());
  if (!size.ok() || *size > req.image.size())
    return Status::Cuda(CUDA_ERROR_INVALID_IMAGE,
                        "module image extends past the bytes sent: " + size.status().message());
  // The driver copies the image (no BINARY_IS_PRESERVED option is passed),
  // so the frame buffer may be reused after the load.
  ModuleEntry m;
  CUresult r;
  if (req.kind == 0) {
    r = s.driver().cuModuleLoadData(&m.module, req.image.data());
  } else if (req.kind == 1) {
    m.is_library = true;
    r = s.driver().cuLibraryLoadData(&m.library, req.image.data(), nullptr, nullptr, 0, nullptr,
                                     nullptr, 0);
  } else {
    return Status::Protocol("module kind " + std::to_string(req.kind));
  }
  RGPU_RETURN_IF_ERROR(CuStatus(r, req.kind == 0 ? "cuModuleLoadData" : "cuLibraryLoadData"));
  s.driver().cuCtxGetCurrent(&m.ctx);
  m.ctx_id = s.current_context_id();
  // Idle detach may move the session to another GPU, where the module is
  // loaded again from these bytes (session_move.h).
  if (s.keep_module_images())
    m.image = std::make_shared<const std::vector<uint8_t>>(req.image.begin(), req.image.begin() + *size);
  return s.AddModule(req.module, m);
}

Status HandleModuleUnload(Session& s, const proto::ModuleUnloadReq& req, proto::ModuleUnloadRep*) {
  RGPU_RETURN_IF_ERROR(s.UseContext(req.ctx));
  ModuleEntry* m = nullptr;
  RGPU_RETURN_IF_ERROR(Get(s.FindModule(req.module), &m));
  CUresult r = m->is_library ? s.driver().cuLibraryUnload(m->library)
                             : s.driver().cuModuleUnload(m->module);
  RGPU_RETURN_IF_ERROR(s.RemoveModule(req.module));
  return CuStatus(r, "cuModuleUnload");
}

Status HandleGetFunction(Session& s, const proto::GetFunctionReq& req, proto::GetFunctionRep* rep) {
  static std::vector<uint8_t> params_buf, attrs_buf;  // live until the reply is encoded
  RGPU_RETURN_IF_ERROR(s.UseContext(req.ctx));
  ModuleEntry* m = nullptr;
  RGPU_RETURN_IF_ERROR(Get(s.FindModule(req.module), &m));
  std::string name(req.name);
  FunctionEntry f;
  f.module = req.module;
  f.name = name;
  const backend::DriverTable& d = s.driver();
  if (m->is_library) {
    RGPU_RETURN_IF_ERROR(
        CuStatus(d.cuLibraryGetKernel(&f.kernel, m->library, name.c_str()), "cuLibraryGetKernel"));
    RGPU_RETURN_IF_ERROR(CuStatus(d.cuKernelGetFunction(&f.fn, f.kernel), "cuKernelGetFunction"));
    d.cuCtxGetCurrent(&f.fn_ctx);
  } else {
    RGPU_RETURN_IF_ERROR(
        CuStatus(d.cuModuleGetFunction(&f.fn, m->module, name.c_str()), "cuModuleGetFunction"));
  }
  for (uint32_t i = 0; i < kMaxParams; ++i) {
    size_t off = 0, size = 0;
    if (d.cuFuncGetParamInfo(f.fn, i, &off, &size) != CUDA_SUCCESS) break;
    f.params.push_back({static_cast<uint32_t>(off), static_cast<uint32_t>(size)});
  }
  params_buf.clear();
  proto::Writer pw(&params_buf);
  pw.U32(static_cast<uint32_t>(f.params.size()));
  for (const ParamSlot& p : f.params) {
    pw.U32(p.offset);
    pw.U32(p.size);
  }
  attrs_buf.clear();
  proto::Writer aw(&attrs_buf);
  for (int a = 0; a < CU_FUNC_ATTRIBUTE_MAX; ++a) {
    int v = 0;
    d.cuFuncGetAttribute(&v, static_cast<CUfunction_attribute>(a), f.fn);
    aw.I32(v);
  }
  rep->params = params_buf;
  rep->attrs = attrs_buf;
  return s.AddFunction(req.func, std::move(f));
}

Status HandleGetGlobal(Session& s, const proto::GetGlobalReq& req, proto::GetGlobalRep* rep) {
  RGPU_RETURN_IF_ERROR(s.UseContext(req.ctx));
  ModuleEntry* m = nullptr;
  RGPU_RETURN_IF_ERROR(Get(s.FindModule(req.module), &m));
  std::string name(req.name);
  CUdeviceptr p = 0;
  size_t size = 0;
  CUresult r = m->is_library ? s.driver().cuLibraryGetGlobal(&p, &size, m->library, name.c_str())
                             : s.driver().cuModuleGetGlobal_v2(&p, &size, m->module, name.c_str());
  RGPU_RETURN_IF_ERROR(CuStatus(r, "cuModuleGetGlobal"));
  // Globals are session memory too: copies to them must pass CheckRange.
  s.AddModuleGlobal(req.module, p, size);
  rep->dptr = p;
  rep->size = size;
  return {};
}

Status HandleLibraryGetManaged(Session& s, const proto::LibraryGetManagedReq& req,
                               proto::LibraryGetManagedRep* rep) {
  RGPU_RETURN_IF_ERROR(s.UseContext(req.ctx));
  ModuleEntry* m = nullptr;
  RGPU_RETURN_IF_ERROR(Get(s.FindModule(req.module), &m));
  if (!m->is_library) return Status::Cuda(CUDA_ERROR_INVALID_HANDLE, "cuLibraryGetManaged: not a library");
  if (!s.driver().cuLibraryGetManaged) return Status::Cuda(CUDA_ERROR_NOT_SUPPORTED, "cuLibraryGetManaged: not in this driver");
  std::string name(req.name);
  CUdeviceptr p = 0;
  size_t size = 0;
  RGPU_RETURN_IF_ERROR(CuStatus(s.driver().cuLibraryGetManaged(&p, &size, m->library, name.c_str()),
                                "cuLibraryGetManaged"));
  // Session memory like other module globals: the client's coherence copies
  // must pass CheckRange, and the session-end wipe clears it.
  s.AddModuleGlobal(req.module, p, size);
  rep->dptr = p;
  rep->size = size;
  return {};
}

Status HandleFuncSetAttribute(Session& s, const proto::FuncSetAttributeReq& req,
                              proto::FuncSetAttributeRep*) {
  if (req.attr >= CU_FUNC_ATTRIBUTE_MAX) return Status::Cuda(CUDA_ERROR_INVALID_VALUE, "function attribute out of range");
  RGPU_RETURN_IF_ERROR(s.UseContext(req.ctx));
  FunctionEntry* f = nullptr;
  RGPU_RETURN_IF_ERROR(LaunchableFunction(s, req.func, &f));
  if (f->kernel != nullptr) {
    // A kernel's attributes are per device: the current context's.
    CUdevice dev = 0;
    if (s.driver().cuCtxGetDevice) RGPU_RETURN_IF_ERROR(CuStatus(s.driver().cuCtxGetDevice(&dev), "cuCtxGetDevice"));
    RGPU_RETURN_IF_ERROR(CuStatus(s.driver().cuKernelSetAttribute(static_cast<CUfunction_attribute>(req.attr),
                                                                  req.value, f->kernel, dev),
                                  "cuKernelSetAttribute"));
    f->attrs[static_cast<int>(req.attr)] = req.value;  // applied again after a move
    return {};
  }
  RGPU_RETURN_IF_ERROR(CuStatus(
      s.driver().cuFuncSetAttribute(f->fn, static_cast<CUfunction_attribute>(req.attr), req.value),
      "cuFuncSetAttribute"));
  f->attrs[static_cast<int>(req.attr)] = req.value;
  return {};
}

Status HandleFuncSetCacheConfig(Session& s, const proto::FuncSetCacheConfigReq& req,
                                proto::FuncSetCacheConfigRep*) {
  if (req.config > CU_FUNC_CACHE_PREFER_EQUAL) return Status::Cuda(CUDA_ERROR_INVALID_VALUE, "cache config out of range");
  RGPU_RETURN_IF_ERROR(s.UseContext(req.ctx));
  FunctionEntry* f = nullptr;
  RGPU_RETURN_IF_ERROR(LaunchableFunction(s, req.func, &f));
  RGPU_RETURN_IF_ERROR(CuStatus(s.driver().cuFuncSetCacheConfig(f->fn, static_cast<CUfunc_cache>(req.config)),
                                "cuFuncSetCacheConfig"));
  f->cache_config = static_cast<int>(req.config);
  return {};
}

Status HandleLaunchKernel(Session& s, const proto::LaunchKernelReq& req, proto::LaunchKernelRep*) {
  RGPU_RETURN_IF_ERROR(s.UseContext(req.ctx));
  FunctionEntry* f = nullptr;
  RGPU_RETURN_IF_ERROR(LaunchableFunction(s, req.func, &f));
  CUstream stream = nullptr;
  RGPU_RETURN_IF_ERROR(Stream(s, req.stream, &stream));
  // Copy the argument bytes to aligned storage: kernels (and the sim's host
  // functions) read parameters at their natural alignment.
  static std::vector<uint64_t> storage;
  storage.assign((req.params.size() + 7) / 8 + 1, 0);
  memcpy(storage.data(), req.params.data(), req.params.size());
  auto* base = reinterpret_cast<uint8_t*>(storage.data());
  static std::vector<void*> args;
  args.clear();
  for (const ParamSlot& p : f->params) {
    if (static_cast<uint64_t>(p.offset) + p.size > req.params.size())
      return Status::Cuda(CUDA_ERROR_INVALID_VALUE, "launch: argument bytes shorter than layout");
    args.push_back(base + p.offset);
  }
  CUlaunchAttribute attrs[kMaxLaunchAttrs];
  uint32_t nattrs = 0;
  RGPU_RETURN_IF_ERROR(DecodeLaunchAttrs(s, req.attrs, attrs, &nattrs));
  void** kernel_params = args.empty() ? nullptr : args.data();
  if (nattrs == 0) {
    return CuStatus(s.driver().cuLaunchKernel(f->fn, req.gx, req.gy, req.gz, req.bx, req.by, req.bz,
                                              req.shmem, stream, kernel_params, nullptr),
                    "cuLaunchKernel");
  }
  CUlaunchConfig cfg{};
  cfg.gridDimX = req.gx;
  cfg.gridDimY = req.gy;
  cfg.gridDimZ = req.gz;
  cfg.blockDimX = req.bx;
  cfg.blockDimY = req.by;
  cfg.blockDimZ = req.bz;
  cfg.sharedMemBytes = req.shmem;
  cfg.hStream = stream;
  cfg.attrs = attrs;
  cfg.numAttrs = nattrs;
  return CuStatus(s.driver().cuLaunchKernelEx(&cfg, f->fn, kernel_params, nullptr),
                  "cuLaunchKernelEx");
}

Status HandleOccupancyMaxActiveBlocks(Session& s, const proto::OccupancyMaxActiveBlocksReq& req,
                                      proto::OccupancyMaxActiveBlocksRep* rep) {
  RGPU_RETURN_IF_ERROR(s.UseContext(req.ctx));
  FunctionEntry* f = nullptr;
  RGPU_RETURN_IF_ERROR(LaunchableFunction(s, req.func, &f));
  int blocks = 0;
  Status st = CuStatus(s.driver().cuOccupancyMaxActiveBlocksPerMultiprocessorWithFlags(
                           &blocks, f->fn, req.block_size, req.dyn_smem, req.flags),
                       "cuOccupancyMaxActiveBlocksPerMultiprocessor");
  rep->blocks = blocks;
  return st;
}

}  // namespace rgpu::worker
