// Session: the state of one client's CUDA session inside its worker process.
//
// Maps the client's handle ids (contexts, streams, events, modules,
// functions) to real driver handles, and records every device allocation so
// that copies and memsets can be checked to fall inside memory this session
// owns. One Session per worker process; used only from the worker's thread.
//
// It also records how each handle was made (stream flags and priority, event
// flags, module images, function names and the attributes set on them,
// context flags, limits and cache configuration), so that SessionMover
// (session_move.h) can make them again on another GPU behind the same ids.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <set>
#include <span>
#include <string>
#include <unordered_map>
#include <vector>

#include "backend/driver_table.h"
#include "common/status.h"
#include "server/worker/arrays.h"
#include "server/worker/device_map.h"
#include "server/worker/mem_quota.h"

namespace rgpu::worker {

// Stream ids with fixed meaning (the client names all others).
constexpr uint64_t kStreamLegacyDefault = 0;  // the NULL stream
constexpr uint64_t kStreamLegacy = 1;         // CU_STREAM_LEGACY
constexpr uint64_t kStreamPerThread = 2;      // CU_STREAM_PER_THREAD

struct ParamSlot {
  uint32_t offset = 0;
  uint32_t size = 0;
};

struct FunctionEntry {
  CUfunction fn = nullptr;  // for library kernels: the function in fn_ctx
  CUkernel kernel = nullptr;
  CUcontext fn_ctx = nullptr;
  std::vector<ParamSlot> params;
  uint64_t module = 0;
  // For moving the session (session_move.h): the name it was resolved by,
  // and what cuFuncSetAttribute / cuFuncSetCacheConfig set on it.
  std::string name;
  std::map<int, int> attrs;
  int cache_config = -1;  // -1: never set
};

struct ModuleEntry {
  bool is_library = false;
  CUmodule module = nullptr;
  CUlibrary library = nullptr;
  CUcontext ctx = nullptr;  // the context a module was loaded in
  // For moving the session (session_move.h): the image as loaded (kept only
  // while idle detach is on) and the client's id of the context.
  std::shared_ptr<const std::vector<uint8_t>> image;
  uint64_t ctx_id = 0;
  // The names of the image's globals, listed at the first move check.
  std::shared_ptr<const std::vector<std::string>> global_names;
};

class Link;
class DeviceHeap;

// Zeroes every range (base -> size) and checks that it reads back as zero:
// sampled pages (first, middle, last), or everything when `paranoid`.
// Returns the bytes wiped; non-OK if a check found data left behind.
// `registered_only` (optional) names ranges the error text calls module
// globals or mappings. Used at session end and at idle detach.
Result<uint64_t> WipeRanges(const backend::DriverTable& d, const std::map<CUdeviceptr, uint64_t>& ranges,
                            bool paranoid, const std::set<CUdeviceptr>* registered_only = nullptr);

class Session {
 public:
  friend class SessionMover;  // re-creates the handles below on another GPU
  // `devices`: the session's GPUs (device_map.h); every device ordinal from
  // the client is translated through it.
  Session(const backend::DriverTable& driver, uint64_t session_id, std::string backend_kind,
          DeviceMap devices = DeviceMap({0}));
  ~Session();
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  const backend::DriverTable& driver() const { return driver_; }
  uint64_t id() const { return session_id_; }
  const std::string& backend_kind() const { return backend_kind_; }
  // Client device ordinals -> the driver's devices.
  const DeviceMap& devices() const { return devices_; }
  DeviceMap& devices() { return devices_; }
  // The driver's CUdevice for client device `ordinal` (INVALID_DEVICE if the
  // session has no such device).
  Result<CUdevice> Device(int ordinal) const { return devices_.Device(driver_, ordinal); }
  // The client link, for host functions (null outside a session's life).
  Link* link() const { return link_; }
  void set_link(Link* link) { link_ = link; }
  // Where cuMemAlloc memory comes from when idle detach is on (null: plain
  // cuMemAlloc). Not owned; must outlive the session's ReleaseAll.
  DeviceHeap* heap() const { return heap_; }
  void set_heap(DeviceHeap* heap) { heap_ = heap; }
  // Whether module images are kept after loading, so that idle detach can
  // move the session to another GPU and load them there (session_move.h).
  // Only where a move is possible (detach on, more than one GPU in the
  // pool): a copy of every image costs host memory (PyTorch loads hundreds
  // of MB of them).
  bool keep_module_images() const { return keep_module_images_; }
  void set_keep_module_images(bool keep) { keep_module_images_ = keep; }

  // Makes the client's context `ctx_id` current on this thread. 0 is refused
  // with CUDA_ERROR_INVALID_CONTEXT, as the driver does without a context.
  Status UseContext(uint64_t ctx_id);
  // `flags`: cuCtxCreate's (non-primary contexts).
  Status AddContext(uint64_t ctx_id, CUcontext ctx, bool primary, int dev, unsigned flags = 0);
  // The client's id of the current context (0: none made current yet).
  uint64_t current_context_id() const { return current_ctx_id_; }
  // Recorded for moving the session: what the client set on the current
  // context, and the flags it gave client device `dev`'s primary context.
  void NoteContextLimit(int limit, uint64_t value);
  void NoteContextCacheConfig(int config);
  void NotePrimaryFlags(int dev, unsigned flags) { primary_flags_[dev] = flags; }
  // Something the session holds cannot be made again on another GPU (said
  // by SessionMover::Blocker); the first reason is kept.
  void NoteUnmovable(const std::string& why) {
    if (unmovable_.empty()) unmovable_ = why;
  }
  const std::string& unmovable() const { return unmovable_; }
  Status RemoveContext(uint64_t ctx_id);
  Result<CUcontext> FindContext(uint64_t ctx_id) const;
  // The context UseContext made current (null before any, or after it was
  // destroyed): what the driver's cuCtxGetCurrent would say, without a call.
  CUcontext current_context() const { return current_ctx_; }

  Result<CUstream> FindStream(uint64_t id) const;
  // `flags` and `priority` as created (recorded, with the current context,
  // so the stream can be made again elsewhere).
  Status AddStream(uint64_t id, CUstream s, unsigned flags = 0, int priority = 0);
  Result<CUstream> TakeStream(uint64_t id);
  Result<CUevent> FindEvent(uint64_t id) const;
  Status AddEvent(uint64_t id, CUevent e, unsigned flags = 0);
  Result<CUevent> TakeEvent(uint64_t id);

  Status AddModule(uint64_t id, ModuleEntry m);
  Result<ModuleEntry*> FindModule(uint64_t id);
  Status RemoveModule(uint64_t id);  // also drops its functions
  Status AddFunction(uint64_t id, FunctionEntry f);
  Result<FunctionEntry*> FindFunction(uint64_t id);

  // Graphs (from stream capture) and their executable instances.
  Status AddGraph(uint64_t id, CUgraph g);
  Result<CUgraph> FindGraph(uint64_t id) const;
  Result<CUgraph> TakeGraph(uint64_t id);
  Status AddExec(uint64_t id, CUgraphExec e);
  Result<CUgraphExec> FindExec(uint64_t id) const;
  Result<CUgraphExec> TakeExec(uint64_t id);

  // Virtual memory: physical allocations by client id, reservations and
  // mappings by address (all released at session end).
  Status AddMemHandle(uint64_t id, CUmemGenericAllocationHandle h);
  Result<CUmemGenericAllocationHandle> FindMemHandle(uint64_t id) const;
  Result<CUmemGenericAllocationHandle> TakeMemHandle(uint64_t id);
  void AddReservation(CUdeviceptr p, uint64_t size) { reservations_[p] = size; }
  bool RemoveReservation(CUdeviceptr p, uint64_t size);
  void AddMapping(CUdeviceptr p, uint64_t size) { mappings_[p] = size; }
  bool RemoveMapping(CUdeviceptr p, uint64_t size);

  // Device memory owned by this session. CheckRange fails with
  // CUDA_ERROR_INVALID_VALUE unless [ptr, ptr+size) lies in this session's
  // memory: one allocation, or several that follow each other without a gap
  // (virtual-memory mappings placed side by side).
  // `owned`: made by cuMemAlloc here, so freed by ReleaseAll; module
  // globals and virtual-memory mappings are only registered.
  // Records a range the session may use; remembers the context current at
  // the time, so the range is forgotten when the client destroys it.
  void AddAllocation(CUdeviceptr ptr, uint64_t size, bool owned = true);
  bool RemoveAllocation(CUdeviceptr ptr);
  // A module global (a range inside a module): forgotten when the module is
  // unloaded, since its address is no longer the session's then (cudart
  // unloads every module at exit, before the session-end wipe).
  void AddModuleGlobal(uint64_t module_id, CUdeviceptr ptr, uint64_t size);
  Status CheckRange(CUdeviceptr ptr, uint64_t size, const char* what) const;
  uint64_t bytes_allocated() const { return bytes_allocated_; }
  // The session's device-memory limit (--max-mem); the allocation handlers
  // check and charge it, ReleaseAll clears it.
  MemQuota& quota() { return quota_; }
  // CUDA arrays, texture and surface objects (arrays.h).
  ArrayTable& arrays() { return arrays_; }
  const ArrayTable& arrays() const { return arrays_; }
  // For idle detach (server/worker/swap.h): what the session holds.
  const std::map<CUdeviceptr, uint64_t>& allocations() const { return allocations_; }
  bool HasGraphs() const { return !graphs_.empty() || !execs_.empty(); }
  // True for memory the session made with the driver's own allocator
  // (cuMemAlloc without the heap, cuMemAllocPitch, managed memory).
  bool IsDriverAllocation(CUdeviceptr p) const { return allocations_.count(p) && !registered_only_.count(p); }
  bool HasOwnVirtualMemory() const { return !mem_handles_.empty() || !reservations_.empty() || !mappings_.empty(); }
  // Every stream the client created, plus each context's NULL stream (as
  // {context, nullptr}), for asking whether work is still running.
  std::vector<std::pair<CUcontext, CUstream>> AllStreams() const;

  // Zeroes every byte of device memory this session could have written
  // (allocations, module globals, mappings) and checks that it reads back as
  // zero: sampled pages, or everything when `paranoid`. Returns the number
  // of bytes wiped; a non-OK status if a check found data left behind.
  Result<uint64_t> WipeAll(bool paranoid);
  // WipeRanges for `ranges`, each from the context current when it was
  // registered (so on the GPU it lies on).
  Result<uint64_t> WipeByContext(const std::map<CUdeviceptr, uint64_t>& ranges, bool paranoid);
  // Frees everything the session still holds (modules, streams, events,
  // memory, contexts), in dependency order, after wiping it. Called at
  // session end. False when some memory could not be wiped (a sticky error
  // in its context): the worker then leaves the card to be scrubbed.
  bool ReleaseAll(bool paranoid_wipe = false);

 private:
  struct ContextEntry {
    CUcontext ctx = nullptr;
    bool primary = false;
    int dev = 0;
    unsigned flags = 0;             // cuCtxCreate's
    std::map<int, uint64_t> limits;  // cuCtxSetLimit
    int cache_config = -1;           // cuCtxSetCacheConfig; -1: never set
  };
  struct StreamInfo {
    uint64_t ctx_id = 0;
    unsigned flags = 0;
    int priority = 0;
  };
  struct EventInfo {
    uint64_t ctx_id = 0;
    unsigned flags = 0;
  };
  const backend::DriverTable& driver_;
  const uint64_t session_id_;
  const std::string backend_kind_;
  DeviceMap devices_;
  Link* link_ = nullptr;
  DeviceHeap* heap_ = nullptr;
  bool keep_module_images_ = false;
  uint64_t current_ctx_id_ = 0;
  CUcontext current_ctx_ = nullptr;  // of current_ctx_id_ (null when 0)
  std::unordered_map<uint64_t, ContextEntry> contexts_;
  std::unordered_map<uint64_t, CUstream> streams_;
  std::unordered_map<uint64_t, CUevent> events_;
  std::unordered_map<uint64_t, StreamInfo> stream_info_;
  std::unordered_map<uint64_t, EventInfo> event_info_;
  std::map<int, unsigned> primary_flags_;  // client device -> flags
  std::string unmovable_;
  std::unordered_map<uint64_t, ModuleEntry> modules_;
  std::unordered_map<uint64_t, FunctionEntry> functions_;
  std::unordered_map<uint64_t, CUgraph> graphs_;
  std::unordered_map<uint64_t, CUgraphExec> execs_;
  std::map<CUdeviceptr, uint64_t> allocations_;  // base -> size
  std::set<CUdeviceptr> registered_only_;         // in allocations_, not ours to free
  std::map<CUdeviceptr, uint64_t> range_ctx_;     // range -> context id current when added
  std::map<CUdeviceptr, uint64_t> global_module_; // module global -> module id
  std::unordered_map<uint64_t, CUmemGenericAllocationHandle> mem_handles_;
  std::map<CUdeviceptr, uint64_t> reservations_;  // base -> size
  std::map<CUdeviceptr, uint64_t> mappings_;      // base -> size
  uint64_t bytes_allocated_ = 0;
  MemQuota quota_;
  ArrayTable arrays_;
};

struct FunctionEntry;
// Decodes launch attributes as the client encodes them (u32 count, then
// u32 id + 64-byte CUlaunchAttributeValue each), translating event ids.
// `attrs` must hold kMaxLaunchAttrs entries.
constexpr uint32_t kMaxLaunchAttrs = 32;
Status DecodeLaunchAttrs(Session& s, std::span<const uint8_t> bytes, CUlaunchAttribute* attrs,
                         uint32_t* count);
// The function `id` resolved for the current context (library kernels are
// re-resolved when the context changes).
Status LaunchableFunctionFor(Session& s, uint64_t id, FunctionEntry** out);

// Moves a Result's value into *out, or returns its Status.
template <class T>
Status Get(Result<T>&& r, T* out) {
  if (!r.ok()) return r.take_status();
  *out = *r;
  return {};
}

// What a handler answers when the backend lacks a function.
inline Status NotProvided(const char* what) {
  return Status::Cuda(CUDA_ERROR_NOT_SUPPORTED, std::string(what) + " is not provided by this backend");
}

// A kCuda Status carrying `r` (OK when r == CUDA_SUCCESS).
Status CuStatus(CUresult r, const char* what);

}  // namespace rgpu::worker
