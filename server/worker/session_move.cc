#include "server/worker/session_move.h"

#include <map>
#include <memory>
#include <string_view>

#include "common/log.h"
#include "image/image.h"
#include "server/worker/d2h_staging.h"
#include "server/worker/device_heap.h"
#include "server/worker/session.h"

namespace rgpu::worker {
namespace {

// The globals of an image as the driver would load it on a device of
// compute capability `cc` (major * 10 + minor).
Result<std::vector<std::string>> ImageGlobals(const std::vector<uint8_t>& bytes_in, int cc) {
  image::Bytes bytes(reinterpret_cast<const std::byte*>(bytes_in.data()), bytes_in.size());
  image::ImageKind kind = image::DetectImageKind(bytes_in.data(), bytes_in.size());
  std::vector<image::FatbinEntry> entries;
  if (kind == image::ImageKind::kFatbin) {
    Result<std::vector<image::FatbinEntry>> parsed = image::ParseFatbin(bytes);
    if (!parsed.ok()) return parsed.take_status();
    entries = std::move(parsed.value());
    if (const image::FatbinEntry* e = image::SelectCode(entries, cc)) {
      bytes = e->data();
      kind = e->is_elf() ? image::ImageKind::kElf : image::ImageKind::kPtx;
    } else {
      return Status::Invalid("no code for the device in the fatbin");
    }
  }
  Result<image::ModuleInfo> info = Status::Invalid("unknown image kind");
  if (kind == image::ImageKind::kElf) info = image::ParseCubin(bytes);
  else if (kind == image::ImageKind::kPtx)
    info = image::ParsePtx(std::string_view(reinterpret_cast<const char*>(bytes.data()), bytes.size()));
  if (!info.ok()) return info.take_status();
  std::vector<std::string> names;
  for (const image::GlobalInfo& g : info->globals) names.push_back(g.name);
  return names;
}

// A module global's address and size in the current context.
CUresult FindGlobal(const backend::DriverTable& d, const ModuleEntry& m, const std::string& name, CUdeviceptr* p,
                    size_t* size) {
  return m.is_library ? d.cuLibraryGetGlobal(p, size, m.library, name.c_str())
                      : d.cuModuleGetGlobal_v2(p, size, m.module, name.c_str());
}

}  // namespace

Result<const std::vector<std::string>*> SessionMover::GlobalNames(uint64_t id) {
  auto m = s_.modules_.find(id);
  if (m == s_.modules_.end() || m->second.image == nullptr) return Status::Invalid("its image was not kept");
  if (m->second.global_names != nullptr) return m->second.global_names.get();
  const backend::DriverTable& d = s_.driver_;
  Result<CUdevice> dev = s_.Device(0);
  if (!dev.ok()) return dev.take_status();
  int major = 0, minor = 0;
  d.cuDeviceGetAttribute(&major, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR, *dev);
  d.cuDeviceGetAttribute(&minor, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR, *dev);
  Result<std::vector<std::string>> names = ImageGlobals(*m->second.image, major * 10 + minor);
  if (!names.ok()) return names.take_status();
  m->second.global_names = std::make_shared<const std::vector<std::string>>(std::move(names.value()));
  return m->second.global_names.get();
}

std::string SessionMover::Blocker() {
  if (s_.devices_.count() != 1) return "it uses several GPUs";
  if (!s_.unmovable_.empty()) return s_.unmovable_;
  if (LiveLinkStates() > 0) return "it holds a JIT link state";
  if (!s_.global_module_.empty())
    return "the program asked for a module global's address (a reload on another GPU would place it elsewhere)";
  const backend::DriverTable& d = s_.driver_;
  if (!d.cuModuleLoadData || !d.cuLibraryLoadData || !d.cuModuleGetGlobal_v2 || !d.cuLibraryGetGlobal ||
      !d.cuCtxCreate_v4 || !d.cuStreamCreateWithPriority || !d.cuEventCreate)
    return "the backend lacks a call a move needs";
  for (auto& [id, m] : s_.modules_) {
    if (m.image == nullptr) return "a module's image was not kept";
    Result<const std::vector<std::string>*> names = GlobalNames(id);
    if (!names.ok()) return "a module's globals cannot be listed: " + names.status().message();
  }
  return "";
}

Result<uint64_t> SessionMover::MoveTo(const std::vector<int>& gpus) {
  const backend::DriverTable& d = s_.driver_;
  if (gpus.size() != 1 || s_.devices_.count() != 1) return Status::Internal("move: one GPU only");
  if (!heap_.swapped_out()) return Status::Internal("move: the session is not detached");
  const int old_b = s_.devices_.BackendOrdinal(0), new_b = gpus[0];
  CUdevice old_dev = 0, new_dev = 0;
  RGPU_RETURN_IF_ERROR(CuStatus(d.cuDeviceGet(&old_dev, old_b), "move: cuDeviceGet"));
  RGPU_RETURN_IF_ERROR(CuStatus(d.cuDeviceGet(&new_dev, new_b), "move: cuDeviceGet"));
  // Module global names are read (and cached) while the old device is still
  // the session's: the image is parsed for its compute capability.
  for (auto& [id, m] : s_.modules_) {
    Result<const std::vector<std::string>*> names = GlobalNames(id);
    if (!names.ok()) return names.take_status().With("move: module globals");
  }

  // 1. Contexts on the new GPU.
  for (auto& [dev, flags] : s_.primary_flags_)
    RGPU_RETURN_IF_ERROR(CuStatus(d.cuDevicePrimaryCtxSetFlags_v2(new_dev, flags), "move: cuDevicePrimaryCtxSetFlags"));
  CUcontext warm_new = nullptr;
  const bool move_warm = warm_device_ == old_b;
  if (move_warm)
    RGPU_RETURN_IF_ERROR(CuStatus(d.cuDevicePrimaryCtxRetain(&warm_new, new_dev), "move: cuDevicePrimaryCtxRetain"));
  std::map<uint64_t, CUcontext> fresh;  // client context id -> context on the new GPU
  std::vector<std::pair<CUcontext, CUcontext>> pairs;
  for (auto& [id, c] : s_.contexts_) {
    CUcontext n = nullptr;
    if (c.primary)
      RGPU_RETURN_IF_ERROR(CuStatus(d.cuDevicePrimaryCtxRetain(&n, new_dev), "move: cuDevicePrimaryCtxRetain"));
    else
      RGPU_RETURN_IF_ERROR(CuStatus(d.cuCtxCreate_v4(&n, nullptr, c.flags, new_dev), "move: cuCtxCreate"));
    RGPU_RETURN_IF_ERROR(CuStatus(d.cuCtxSetCurrent(n), "move: cuCtxSetCurrent"));
    for (auto& [limit, value] : c.limits)
      RGPU_RETURN_IF_ERROR(CuStatus(d.cuCtxSetLimit(static_cast<CUlimit>(limit), value), "move: cuCtxSetLimit"));
    if (c.cache_config >= 0)
      RGPU_RETURN_IF_ERROR(CuStatus(d.cuCtxSetCacheConfig(static_cast<CUfunc_cache>(c.cache_config)),
                                    "move: cuCtxSetCacheConfig"));
    fresh[id] = n;
    pairs.push_back({c.ctx, n});
  }
  auto new_ctx_of = [&](uint64_t ctx_id, CUcontext old) -> CUcontext {
    auto f = fresh.find(ctx_id);
    if (f != fresh.end()) return f->second;
    for (auto& [o, n] : pairs)
      if (o == old) return n;
    return nullptr;
  };
  // Where the heap's memory is copied back from: a context on the new GPU.
  CUcontext home = warm_new;
  for (auto& [id, c] : s_.contexts_)
    if (c.primary || home == nullptr) home = fresh[id];
  if (home == nullptr) return Status::Internal("move: no context on the new GPU");

  // 2. Memory: the same reservations, physical memory on the new GPU.
  RGPU_RETURN_IF_ERROR(heap_.MoveTo(new_dev, pairs));
  RGPU_RETURN_IF_ERROR(CuStatus(d.cuCtxSetCurrent(home), "move: cuCtxSetCurrent"));
  Result<uint64_t> restored = heap_.SwapIn();
  if (!restored.ok()) return restored.take_status().With("move: swap in");

  // 3. Modules, their globals' contents, functions.
  std::vector<uint8_t> buf;
  for (auto& [id, m] : s_.modules_) {
    CUcontext nctx = new_ctx_of(m.ctx_id, m.ctx);
    if (nctx == nullptr) continue;  // its context was destroyed: the handle is dead already
    ModuleEntry n = m;
    n.ctx = nctx;
    RGPU_RETURN_IF_ERROR(CuStatus(d.cuCtxSetCurrent(nctx), "move: cuCtxSetCurrent"));
    CUresult r = m.is_library ? d.cuLibraryLoadData(&n.library, m.image->data(), nullptr, nullptr, 0, nullptr, nullptr, 0)
                              : d.cuModuleLoadData(&n.module, m.image->data());
    RGPU_RETURN_IF_ERROR(CuStatus(r, m.is_library ? "move: cuLibraryLoadData" : "move: cuModuleLoadData"));
    for (const std::string& name : *m.global_names) {
      CUdeviceptr from = 0, to = 0;
      size_t from_size = 0, to_size = 0;
      RGPU_RETURN_IF_ERROR(CuStatus(d.cuCtxSetCurrent(m.ctx), "move: cuCtxSetCurrent"));
      if (FindGlobal(d, m, name, &from, &from_size) != CUDA_SUCCESS) continue;  // not in the loaded code
      buf.assign(from_size, 0);
      RGPU_RETURN_IF_ERROR(CuStatus(d.cuMemcpyDtoH_v2(buf.data(), from, from_size), "move: read a module global"));
      // Read: it is the session's data, and the old GPU goes to someone else.
      d.cuMemsetD8_v2(from, 0, from_size);
      RGPU_RETURN_IF_ERROR(CuStatus(d.cuCtxSetCurrent(nctx), "move: cuCtxSetCurrent"));
      RGPU_RETURN_IF_ERROR(CuStatus(FindGlobal(d, n, name, &to, &to_size), "move: find a module global"));
      if (to_size != from_size) return Status::Internal("move: module global " + name + " changed size");
      RGPU_RETURN_IF_ERROR(CuStatus(d.cuMemcpyHtoD_v2(to, buf.data(), to_size), "move: write a module global"));
    }
    RGPU_RETURN_IF_ERROR(CuStatus(d.cuCtxSetCurrent(nctx), "move: cuCtxSetCurrent"));
    for (auto& [fid, f] : s_.functions_) {
      if (f.module != id) continue;
      if (m.is_library) {
        RGPU_RETURN_IF_ERROR(
            CuStatus(d.cuLibraryGetKernel(&f.kernel, n.library, f.name.c_str()), "move: cuLibraryGetKernel"));
        f.fn = nullptr;  // resolved for the current context at the next use
        f.fn_ctx = nullptr;
        for (auto& [attr, value] : f.attrs)
          RGPU_RETURN_IF_ERROR(CuStatus(
              d.cuKernelSetAttribute(static_cast<CUfunction_attribute>(attr), value, f.kernel, new_dev),
              "move: cuKernelSetAttribute"));
      } else {
        RGPU_RETURN_IF_ERROR(
            CuStatus(d.cuModuleGetFunction(&f.fn, n.module, f.name.c_str()), "move: cuModuleGetFunction"));
        for (auto& [attr, value] : f.attrs)
          RGPU_RETURN_IF_ERROR(CuStatus(d.cuFuncSetAttribute(f.fn, static_cast<CUfunction_attribute>(attr), value),
                                        "move: cuFuncSetAttribute"));
      }
      if (f.cache_config >= 0 && !m.is_library)
        RGPU_RETURN_IF_ERROR(CuStatus(d.cuFuncSetCacheConfig(f.fn, static_cast<CUfunc_cache>(f.cache_config)),
                                      "move: cuFuncSetCacheConfig"));
    }
    // The old module goes with everything it held (its globals are zeroed).
    d.cuCtxSetCurrent(m.ctx);
    if (m.is_library) d.cuLibraryUnload(m.library);
    else d.cuModuleUnload(m.module);
    m = n;
  }

  // 4. Streams and events, same flags, in the new contexts.
  for (auto& [id, st] : s_.streams_) {
    auto info = s_.stream_info_.find(id);
    auto c = info == s_.stream_info_.end() ? s_.contexts_.end() : s_.contexts_.find(info->second.ctx_id);
    if (c == s_.contexts_.end()) continue;  // its context is gone: the handle is dead already
    CUstream n = nullptr;
    RGPU_RETURN_IF_ERROR(CuStatus(d.cuCtxSetCurrent(fresh[c->first]), "move: cuCtxSetCurrent"));
    RGPU_RETURN_IF_ERROR(CuStatus(d.cuStreamCreateWithPriority(&n, info->second.flags, info->second.priority),
                                  "move: cuStreamCreateWithPriority"));
    d.cuCtxSetCurrent(c->second.ctx);
    d.cuStreamDestroy_v2(st);
    st = n;
  }
  for (auto& [id, ev] : s_.events_) {
    auto info = s_.event_info_.find(id);
    auto c = info == s_.event_info_.end() ? s_.contexts_.end() : s_.contexts_.find(info->second.ctx_id);
    if (c == s_.contexts_.end()) continue;
    CUevent n = nullptr;
    RGPU_RETURN_IF_ERROR(CuStatus(d.cuCtxSetCurrent(fresh[c->first]), "move: cuCtxSetCurrent"));
    RGPU_RETURN_IF_ERROR(CuStatus(d.cuEventCreate(&n, info->second.flags), "move: cuEventCreate"));
    d.cuCtxSetCurrent(c->second.ctx);
    d.cuEventDestroy_v2(ev);
    ev = n;
  }

  // 5. Nothing of the session stays on the old GPU: pinned host memory made
  // in the old contexts is freed (cleared) before they are released.
  heap_.ReleaseStore();
  D2HStaging::Get(d).ReleaseBuffer();
  for (auto& [id, c] : s_.contexts_) {
    if (c.primary) d.cuDevicePrimaryCtxRelease_v2(old_dev);
    else d.cuCtxDestroy_v2(c.ctx);
    c.ctx = fresh[id];
  }
  if (move_warm) {
    d.cuDevicePrimaryCtxRelease_v2(old_dev);
    warm_device_ = new_b;
  }
  s_.devices_.Assign(gpus);
  s_.current_ctx_id_ = 0;  // the client's next call makes its context current
  s_.current_ctx_ = nullptr;
  d.cuCtxSetCurrent(home);
  RGPU_LOG_INFO("session %llu: moved from GPU ordinal %d to %d: %zu context(s), %zu module(s), %zu stream(s), "
                "%zu event(s)",
                (unsigned long long)s_.session_id_, old_b, new_b, s_.contexts_.size(), s_.modules_.size(),
                s_.streams_.size(), s_.events_.size());
  return restored;
}

}  // namespace rgpu::worker
