#include "server/worker/session.h"

#include "common/log.h"
#include "server/worker/device_heap.h"

namespace rgpu::worker {

Status CuStatus(CUresult r, const char* what) {
  if (r == CUDA_SUCCESS) return {};
  return Status::Cuda(r, std::string(what) + " failed with CUresult " + std::to_string(r));
}

namespace {
Status BadHandle(const char* kind, uint64_t id) {
  return Status::Cuda(CUDA_ERROR_INVALID_HANDLE, std::string("unknown ") + kind + " id " +
                                                     std::to_string(id));
}
}  // namespace

Session::Session(const backend::DriverTable& driver, uint64_t session_id, std::string backend_kind,
                 DeviceMap devices)
    : driver_(driver), session_id_(session_id), backend_kind_(std::move(backend_kind)),
      devices_(std::move(devices)) {}

Session::~Session() { ReleaseAll(); }

Status Session::UseContext(uint64_t ctx_id) {
  if (ctx_id == current_ctx_id_ && ctx_id != 0) return {};
  auto it = contexts_.find(ctx_id);
  if (it == contexts_.end())
    return Status::Cuda(CUDA_ERROR_INVALID_CONTEXT, "no context with id " + std::to_string(ctx_id));
  RGPU_RETURN_IF_ERROR(CuStatus(driver_.cuCtxSetCurrent(it->second.ctx), "cuCtxSetCurrent"));
  current_ctx_id_ = ctx_id;
  current_ctx_ = it->second.ctx;
  return {};
}

Status Session::AddContext(uint64_t ctx_id, CUcontext ctx, bool primary, int dev, unsigned flags) {
  if (ctx_id == 0) return Status::Cuda(CUDA_ERROR_INVALID_VALUE, "context id 0 is reserved");
  ContextEntry e;
  e.ctx = ctx;
  e.primary = primary;
  e.dev = dev;
  e.flags = flags;
  contexts_[ctx_id] = std::move(e);
  return {};
}

void Session::NoteContextLimit(int limit, uint64_t value) {
  auto it = contexts_.find(current_ctx_id_);
  if (it != contexts_.end()) it->second.limits[limit] = value;
}

void Session::NoteContextCacheConfig(int config) {
  auto it = contexts_.find(current_ctx_id_);
  if (it != contexts_.end()) it->second.cache_config = config;
}

Status Session::RemoveContext(uint64_t ctx_id) {
  auto c = contexts_.find(ctx_id);
  if (c == contexts_.end()) return BadHandle("context", ctx_id);
  CUcontext ctx = c->second.ctx;
  contexts_.erase(c);
  if (current_ctx_id_ == ctx_id) {
    current_ctx_id_ = 0;
    current_ctx_ = nullptr;
  }
  // Destroying a context frees its memory and modules: forget them, so the
  // session-end wipe does not touch addresses that are no longer ours.
  std::vector<CUdeviceptr> gone;
  for (auto& [ptr, owner] : range_ctx_)
    if (owner == ctx_id) gone.push_back(ptr);
  for (CUdeviceptr p : gone) {
    RemoveAllocation(p);
    quota_.RemoveAllocation(p);
  }
  std::vector<uint64_t> modules;
  for (auto& [id, m] : modules_)
    if (m.ctx == ctx && ctx != nullptr) modules.push_back(id);
  for (uint64_t id : modules) (void)RemoveModule(id);  // the context goes: what fails to unload goes with it
  arrays_.ForgetContext(ctx_id);
  return {};
}

Result<CUcontext> Session::FindContext(uint64_t ctx_id) const {
  auto it = contexts_.find(ctx_id);
  if (it == contexts_.end())
    return Status::Cuda(CUDA_ERROR_INVALID_CONTEXT, "no context with id " + std::to_string(ctx_id));
  return it->second.ctx;
}

Result<CUstream> Session::FindStream(uint64_t id) const {
  if (id == kStreamLegacyDefault) return static_cast<CUstream>(nullptr);
  if (id == kStreamLegacy) return CU_STREAM_LEGACY;
  if (id == kStreamPerThread) return CU_STREAM_PER_THREAD;
  auto it = streams_.find(id);
  if (it == streams_.end()) return BadHandle("stream", id);
  return it->second;
}

Status Session::AddStream(uint64_t id, CUstream s, unsigned flags, int priority) {
  if (id <= kStreamPerThread || streams_.count(id))
    return Status::Protocol("stream id " + std::to_string(id) + " reserved or in use");
  streams_[id] = s;
  stream_info_[id] = StreamInfo{current_ctx_id_, flags, priority};
  return {};
}

Result<CUstream> Session::TakeStream(uint64_t id) {
  auto it = streams_.find(id);
  if (it == streams_.end()) return BadHandle("stream", id);
  CUstream s = it->second;
  streams_.erase(it);
  stream_info_.erase(id);
  return s;
}

Result<CUevent> Session::FindEvent(uint64_t id) const {
  auto it = events_.find(id);
  if (it == events_.end()) return BadHandle("event", id);
  return it->second;
}

Status Session::AddEvent(uint64_t id, CUevent e, unsigned flags) {
  if (id == 0 || events_.count(id))
    return Status::Protocol("event id " + std::to_string(id) + " reserved or in use");
  events_[id] = e;
  event_info_[id] = EventInfo{current_ctx_id_, flags};
  return {};
}

Result<CUevent> Session::TakeEvent(uint64_t id) {
  auto it = events_.find(id);
  if (it == events_.end()) return BadHandle("event", id);
  CUevent e = it->second;
  events_.erase(it);
  event_info_.erase(id);
  return e;
}

Status Session::AddModule(uint64_t id, ModuleEntry m) {
  if (id == 0 || modules_.count(id))
    return Status::Protocol("module id " + std::to_string(id) + " reserved or in use");
  modules_[id] = m;
  return {};
}

Result<ModuleEntry*> Session::FindModule(uint64_t id) {
  auto it = modules_.find(id);
  if (it == modules_.end()) return BadHandle("module", id);
  return &it->second;
}

Status Session::RemoveModule(uint64_t id) {
  if (modules_.erase(id) == 0) return BadHandle("module", id);
  std::vector<CUdeviceptr> globals;
  for (auto& [ptr, module] : global_module_)
    if (module == id) globals.push_back(ptr);
  for (CUdeviceptr p : globals) RemoveAllocation(p);
  for (auto it = functions_.begin(); it != functions_.end();) {
    if (it->second.module == id) it = functions_.erase(it);
    else ++it;
  }
  return {};
}

Status Session::AddFunction(uint64_t id, FunctionEntry f) {
  if (id == 0) return Status::Protocol("function id 0 is reserved");
  functions_[id] = std::move(f);  // re-resolving the same id is allowed
  return {};
}

Result<FunctionEntry*> Session::FindFunction(uint64_t id) {
  auto it = functions_.find(id);
  if (it == functions_.end()) return BadHandle("function", id);
  return &it->second;
}

namespace {
template <class Map, class T>
Status AddTo(Map& m, uint64_t id, T v, const char* kind) {
  if (id == 0 || m.count(id)) return Status::Protocol(std::string(kind) + " id " + std::to_string(id) + " reserved or in use");
  m[id] = v;
  return {};
}
template <class Map>
auto FindIn(const Map& m, uint64_t id, const char* kind) -> Result<typename Map::mapped_type> {
  auto it = m.find(id);
  if (it == m.end()) return BadHandle(kind, id);
  return it->second;
}
template <class Map>
auto TakeFrom(Map& m, uint64_t id, const char* kind) -> Result<typename Map::mapped_type> {
  auto it = m.find(id);
  if (it == m.end()) return BadHandle(kind, id);
  auto v = it->second;
  m.erase(it);
  return v;
}
}  // namespace

Status Session::AddGraph(uint64_t id, CUgraph g) { return AddTo(graphs_, id, g, "graph"); }
Result<CUgraph> Session::FindGraph(uint64_t id) const { return FindIn(graphs_, id, "graph"); }
Result<CUgraph> Session::TakeGraph(uint64_t id) { return TakeFrom(graphs_, id, "graph"); }
Status Session::AddExec(uint64_t id, CUgraphExec e) { return AddTo(execs_, id, e, "graph exec"); }
Result<CUgraphExec> Session::FindExec(uint64_t id) const { return FindIn(execs_, id, "graph exec"); }
Result<CUgraphExec> Session::TakeExec(uint64_t id) { return TakeFrom(execs_, id, "graph exec"); }

Status Session::AddMemHandle(uint64_t id, CUmemGenericAllocationHandle h) {
  if (id == 0 || mem_handles_.count(id)) return Status::Protocol("memory handle id " + std::to_string(id) + " reserved or in use");
  mem_handles_[id] = h;
  return {};
}
Result<CUmemGenericAllocationHandle> Session::FindMemHandle(uint64_t id) const {
  auto it = mem_handles_.find(id);
  if (it == mem_handles_.end()) return Status::Cuda(CUDA_ERROR_INVALID_VALUE, "unknown memory handle " + std::to_string(id));
  return it->second;
}
Result<CUmemGenericAllocationHandle> Session::TakeMemHandle(uint64_t id) {
  Result<CUmemGenericAllocationHandle> h = FindMemHandle(id);
  if (h.ok()) mem_handles_.erase(id);
  return h;
}
bool Session::RemoveReservation(CUdeviceptr p, uint64_t size) {
  auto it = reservations_.find(p);
  if (it == reservations_.end() || it->second != size) return false;
  reservations_.erase(it);
  return true;
}
bool Session::RemoveMapping(CUdeviceptr p, uint64_t size) {
  auto it = mappings_.find(p);
  if (it == mappings_.end() || it->second != size) return false;
  mappings_.erase(it);
  return true;
}

void Session::AddAllocation(CUdeviceptr ptr, uint64_t size, bool owned) {
  if (!owned) registered_only_.insert(ptr);
  else registered_only_.erase(ptr);
  allocations_[ptr] = size;
  bytes_allocated_ += size;
  range_ctx_[ptr] = current_ctx_id_;
}

void Session::AddModuleGlobal(uint64_t module_id, CUdeviceptr ptr, uint64_t size) {
  if (allocations_.count(ptr) && !registered_only_.count(ptr)) return;  // never shadow an allocation
  if (allocations_.count(ptr)) RemoveAllocation(ptr);  // looked up again: keep one entry
  AddAllocation(ptr, size, /*owned=*/false);
  global_module_[ptr] = module_id;
}

bool Session::RemoveAllocation(CUdeviceptr ptr) {
  auto it = allocations_.find(ptr);
  if (it == allocations_.end()) return false;
  bytes_allocated_ -= it->second;
  registered_only_.erase(it->first);
  range_ctx_.erase(it->first);
  global_module_.erase(it->first);
  allocations_.erase(it);
  return true;
}

Status Session::CheckRange(CUdeviceptr ptr, uint64_t size, const char* what) const {
  auto it = allocations_.upper_bound(ptr);
  if (it != allocations_.begin()) {
    --it;
    uint64_t base = it->first, len = it->second;
    if (ptr >= base && ptr - base <= len) {
      // Walk across allocations that touch end to end.
      uint64_t covered_end = base + len;
      uint64_t want_end = ptr + size;
      if (want_end < ptr) want_end = UINT64_MAX;  // overflow: cannot be covered
      for (auto next = std::next(it); covered_end < want_end && next != allocations_.end() &&
                                      next->first == covered_end;
           ++next)
        covered_end = next->first + next->second;
      if (want_end <= covered_end) return {};
    }
  }
  return Status::Cuda(CUDA_ERROR_INVALID_VALUE,
                      std::string(what) + ": range 0x" + [&] {
                        char b[64];
                        snprintf(b, sizeof b, "%llx+%llu", (unsigned long long)ptr,
                                 (unsigned long long)size);
                        return std::string(b);
                      }() + " is outside this session's allocations");
}

Result<uint64_t> WipeRanges(const backend::DriverTable& d, const std::map<CUdeviceptr, uint64_t>& ranges,
                            bool paranoid, const std::set<CUdeviceptr>* registered_only) {
  if (!d.cuMemsetD8_v2 || !d.cuMemcpyDtoH_v2) return Status::Internal("wipe: backend lacks memset/copy");
  constexpr uint64_t kPage = 4096;
  constexpr uint64_t kChunk = 64u << 20;
  std::vector<uint8_t> buf;
  uint64_t wiped = 0;
  Status bad;
  // A context that took a sticky error (a kernel faulted or asserted) runs
  // nothing more, a memset included. Its memory cannot be wiped through it;
  // it goes back to the kernel driver when the worker exits, and the driver
  // clears freed video memory before another process gets it. Say so once
  // instead of failing range by range.
  if (d.cuCtxSynchronize) {
    CUresult r = d.cuCtxSynchronize();
    if (r != CUDA_SUCCESS && r != CUDA_ERROR_INVALID_CONTEXT)
      return Status::Cuda(r, "wipe: the context has a sticky error (CUresult " + std::to_string(r) +
                                 "), so nothing can be written through it; its memory goes back to the driver "
                                 "when the worker exits");
  }
  for (auto& [ptr, size] : ranges) {
    if (size == 0) continue;
    if (CUresult r = d.cuMemsetD8_v2(ptr, 0, size); r != CUDA_SUCCESS) {
      bad = Status::Internal("wipe: memset failed at " + std::to_string(ptr) + " (CUresult " + std::to_string(r) + ")");
      continue;
    }
    wiped += size;
  }
  if (d.cuCtxSynchronize) d.cuCtxSynchronize();
  // Verify: read back and demand zeros.
  int copy_error = 0;
  auto check = [&](CUdeviceptr p, uint64_t n) {
    buf.assign(n, 0xff);
    if (CUresult r = d.cuMemcpyDtoH_v2(buf.data(), p, n); r != CUDA_SUCCESS) {
      copy_error = r;
      return false;
    }
    for (uint8_t b : buf)
      if (b != 0) return false;
    return true;
  };
  for (auto& [ptr, size] : ranges) {
    if (size == 0) continue;
    bool ok = true;
    if (paranoid) {
      for (uint64_t off = 0; ok && off < size; off += kChunk) ok = check(ptr + off, std::min(kChunk, size - off));
    } else {
      uint64_t n = std::min(kPage, size);
      for (uint64_t off : {uint64_t{0}, size / 2 / kPage * kPage, size - n})
        if (ok && off + n <= size) ok = check(ptr + off, n);
    }
    if (!ok)
      bad = Status::Internal(copy_error ? "wipe: cannot read back the allocation at " + std::to_string(ptr) +
                                              " (CUresult " + std::to_string(copy_error) + ")"
                                        : "wipe: non-zero bytes read back in the allocation at " + std::to_string(ptr) +
                                              (registered_only && registered_only->count(ptr) ? " (module global or mapping)" : ""));
    copy_error = 0;
  }
  if (!bad.ok()) return bad;
  return wiped;
}

Result<uint64_t> Session::WipeByContext(const std::map<CUdeviceptr, uint64_t>& ranges, bool paranoid) {
  // Each range is wiped and read back from the context it was made in: a
  // multi-GPU session's memory lies on several GPUs, and a device's memory
  // is written by that device.
  std::map<uint64_t, std::map<CUdeviceptr, uint64_t>> by_ctx;
  for (auto& [ptr, size] : ranges) {
    auto owner = range_ctx_.find(ptr);
    by_ctx[owner == range_ctx_.end() ? 0 : owner->second][ptr] = size;
  }
  uint64_t total = 0;
  Status bad;
  for (auto& [ctx_id, part] : by_ctx) {
    auto c = contexts_.find(ctx_id);
    if (c != contexts_.end() && driver_.cuCtxSetCurrent) driver_.cuCtxSetCurrent(c->second.ctx);
    Result<uint64_t> n = WipeRanges(driver_, part, paranoid, &registered_only_);
    if (!n.ok()) {
      bad = n.take_status();
      continue;
    }
    total += *n;
    if (devices_.count() > 1 && c != contexts_.end())
      RGPU_LOG_INFO("session %llu: device %d (GPU ordinal %d): wiped and verified %llu bytes",
                    (unsigned long long)session_id_, c->second.dev, devices_.BackendOrdinal(c->second.dev),
                    (unsigned long long)*n);
  }
  current_ctx_id_ = 0;  // the driver's current context is no longer the client's
  current_ctx_ = nullptr;
  if (!bad.ok()) return bad;
  return total;
}

Result<uint64_t> Session::WipeAll(bool paranoid) {
  if (heap_ == nullptr) return WipeByContext(allocations_, paranoid);
  // Heap memory is wiped chunk by chunk, slack included (and not at all
  // while swapped out: it was wiped when it left the card).
  std::map<CUdeviceptr, uint64_t> rest;
  for (auto& [ptr, size] : allocations_)
    if (!heap_->Owns(ptr)) rest[ptr] = size;
  Result<uint64_t> heap_bytes = heap_->Wipe(paranoid);
  Result<uint64_t> rest_bytes = WipeByContext(rest, paranoid);
  if (!heap_bytes.ok()) return heap_bytes;
  if (!rest_bytes.ok()) return rest_bytes;
  return *heap_bytes + *rest_bytes;
}

std::vector<std::pair<CUcontext, CUstream>> Session::AllStreams() const {
  std::vector<std::pair<CUcontext, CUstream>> out;
  for (auto& [id, c] : contexts_) out.push_back({c.ctx, nullptr});
  for (auto& [id, st] : streams_) out.push_back({nullptr, st});
  return out;
}

bool Session::ReleaseAll(bool paranoid_wipe) {
  bool all_wiped = true;
  // Work may still run: wait for it before freeing what it uses.
  for (auto& [id, c] : contexts_) {
    if (driver_.cuCtxSetCurrent && driver_.cuCtxSynchronize) {
      driver_.cuCtxSetCurrent(c.ctx);
      driver_.cuCtxSynchronize();
    }
  }
  // Every byte this session could have written is zeroed before anything is
  // freed (a sticky error in the context can make this fail: then the
  // context's memory goes back to the driver when the worker exits, the
  // failure is logged, and the card is scrubbed before the next session).
  if (!allocations_.empty() || (heap_ && heap_->chunk_bytes() > 0)) {
    Result<uint64_t> wiped = WipeAll(paranoid_wipe);
    if (wiped.ok())
      RGPU_LOG_INFO("session %llu: wiped and verified %llu bytes%s", (unsigned long long)session_id_,
                    (unsigned long long)*wiped, paranoid_wipe ? " (full read-back)" : "");
    else
      RGPU_LOG_ERROR("session %llu: %s", (unsigned long long)session_id_, wiped.status().message().c_str());
    all_wiped &= wiped.ok();
  }
  // Arrays are device memory too: wiped (by a copy from zeros) and freed,
  // with the texture and surface objects over them (arrays.h).
  if (!arrays_.empty()) {
    Result<uint64_t> wiped = arrays_.ReleaseAll(driver_);
    if (wiped.ok())
      RGPU_LOG_INFO("session %llu: wiped and verified %llu bytes of CUDA arrays",
                    (unsigned long long)session_id_, (unsigned long long)*wiped);
    else
      RGPU_LOG_ERROR("session %llu: %s", (unsigned long long)session_id_, wiped.status().message().c_str());
    all_wiped &= wiped.ok();
  }
  for (auto& [id, e] : execs_)
    if (driver_.cuGraphExecDestroy) driver_.cuGraphExecDestroy(e);
  execs_.clear();
  for (auto& [id, g] : graphs_)
    if (driver_.cuGraphDestroy) driver_.cuGraphDestroy(g);
  graphs_.clear();
  for (auto& [id, m] : modules_) {
    if (m.is_library && driver_.cuLibraryUnload) driver_.cuLibraryUnload(m.library);
    if (!m.is_library && driver_.cuModuleUnload) driver_.cuModuleUnload(m.module);
  }
  modules_.clear();
  functions_.clear();
  for (auto& [id, s] : streams_)
    if (driver_.cuStreamDestroy_v2) driver_.cuStreamDestroy_v2(s);
  streams_.clear();
  stream_info_.clear();
  for (auto& [id, e] : events_)
    if (driver_.cuEventDestroy_v2) driver_.cuEventDestroy_v2(e);
  events_.clear();
  event_info_.clear();
  // Mapped ranges are in allocations_ too, but are unmapped, not freed.
  for (auto& [ptr, size] : mappings_) {
    allocations_.erase(ptr);
    if (driver_.cuMemUnmap) driver_.cuMemUnmap(ptr, size);
  }
  mappings_.clear();
  for (auto& [id, h] : mem_handles_)
    if (driver_.cuMemRelease) driver_.cuMemRelease(h);
  mem_handles_.clear();
  for (auto& [ptr, size] : reservations_)
    if (driver_.cuMemAddressFree) driver_.cuMemAddressFree(ptr, size);
  reservations_.clear();
  for (auto& [ptr, size] : allocations_)
    if (driver_.cuMemFree_v2 && !registered_only_.count(ptr) && !(heap_ && heap_->Owns(ptr)))
      driver_.cuMemFree_v2(ptr);
  if (heap_ != nullptr) heap_->ReleaseAll();  // before the contexts it was used from
  allocations_.clear();
  registered_only_.clear();
  range_ctx_.clear();
  global_module_.clear();
  bytes_allocated_ = 0;
  quota_.Clear();
  for (auto& [id, c] : contexts_) {
    if (c.primary) {
      // c.dev is the client's ordinal: released on the GPU it was retained on.
      if (Result<CUdevice> dev = Device(c.dev); dev.ok() && driver_.cuDevicePrimaryCtxRelease_v2)
        driver_.cuDevicePrimaryCtxRelease_v2(*dev);
    } else if (driver_.cuCtxDestroy_v2) {
      driver_.cuCtxDestroy_v2(c.ctx);
    }
  }
  contexts_.clear();
  current_ctx_id_ = 0;
  current_ctx_ = nullptr;
  return all_wiped;
}

}  // namespace rgpu::worker
