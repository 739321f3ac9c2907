// ClientState: all mutable state of the client library, in one place.
//
// Created by the first cuInit (no thread or socket exists before), it holds
// the link to the worker, the device facts fetched once at init, and the
// local mirror of everything this client created: contexts, streams, events,
// modules, functions, allocations. Handles given to the application are
// pointers to objects owned here; every handle the application passes back is
// looked up before use. Thread-safe (one mutex for the registries; the
// current-context stack and Sync()'s reply buffers are per thread).
//
// Exit: other libraries call the driver from their exit handlers and static
// destructors (cuFFT's cufftDestroy pushes and pops contexts, cudart frees
// memory), which run after the main thread's thread_local objects were
// destroyed. So nothing a driver call touches may be destroyed at exit: the
// ClientState and the connection are leaked, and the per-thread state is
// freed by a pthread key destructor (at the exit of a thread other than the
// main one, after its thread_local destructors), never by a thread_local
// destructor.
//
// Like the real driver, the client deinitialises itself in an exit handler
// that the first successful cuInit registers (std::atexit): handlers
// registered later (and static objects constructed after cuInit) still call
// the driver normally; from then on, on every thread, driver calls return
// CUDA_ERROR_DEINITIALIZED (the real driver's answer in the destructor of a
// static object constructed before main, measured on an H100 with driver
// 580), except the few the real driver answers without its state
// (cuGetErrorName/String, cuDriverGetVersion, cuGetProcAddress,
// cuGetExportTable). The handler frees and closes nothing: other threads may
// be inside a call, and the process is ending anyway.
#pragma once

#include <cuda.h>

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <tuple>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "client/arrays.h"
#include "client/connection.h"
#include "client/host_funcs.h"
#include "proto/device_info.h"

namespace rgpu::client {

struct CtxObj {
  uint64_t id = 0;
  int device = 0;
  bool primary = false;
  unsigned flags = 0;
  int retains = 0;       // primary: cuDevicePrimaryCtxRetain count
  bool active = false;   // primary: retained on the worker
  // cuCtxGetLimit answers, by CUlimit, stored as value + 1 (0: not known;
  // ask the worker). A limit changes only through cuCtxSetLimit (which
  // forgets it), except the stack size, which the driver raises at a launch
  // whose kernel needs more local memory (api_launch.cc forgets it then).
  static constexpr int kCachedLimits = 16;
  std::atomic<uint64_t> limits[kCachedLimits] = {};
};

// The local mirror of a stream capture (DESIGN.md rule 1: capture state is
// answered locally). The worker builds the graph itself.
struct Capture {
  uint64_t id = 0;          // capture sequence id (0: not capturing)
  uint64_t origin = 0;      // wire id of the stream that began it
  struct GraphObj* graph = nullptr;
  // cuStreamBeginCaptureToGraph: `graph` is the caller's (empty) graph, which
  // gets an empty model back if the capture fails.
  bool into_graph = false;
};

struct StreamObj {
  uint64_t id = 0;
  CtxObj* ctx = nullptr;
  unsigned flags = 0;
  int priority = 0;
  // Stream attributes this client set (cuStreamSetAttribute /
  // cuStreamCopyAttributes), by CUstreamAttrID: answered locally.
  std::mutex attrs_mu;
  std::map<uint32_t, CUstreamAttrValue> attrs;
};

struct EventObj {
  uint64_t id = 0;
  CtxObj* ctx = nullptr;
  unsigned flags = 0;
  Capture capture;  // the capture its last record joined, if any
};

struct MemPools;    // client/mem_pools.h: memory pools of cuMemAllocAsync
struct GraphModel;  // client/graph_model.h: a graph built node by node
struct ExecModel;

// Device memory a stream capture allocated (cuMemAllocAsync) or freed
// (cuMemFreeAsync) (client/api_graph_extras.cc): a free captured into a
// graph must not free the memory while the graph can still run, so the
// frees wait until the graph and every executable graph made from it (which
// share this object) are destroyed.
struct CapturedMem {
  std::vector<CUdeviceptr> frees;  // freed when the last graph holding this goes
};

struct GraphObj {
  uint64_t id = 0;
  CtxObj* ctx = nullptr;
  std::shared_ptr<GraphModel> model;  // built node by node; null for captured graphs
  bool embedded = false;              // a child graph node's graph (cuGraphChildGraphNodeGetGraph)
  // References this graph holds on user objects (cuGraphRetainUserObject).
  std::map<const void*, unsigned> user_refs;
  std::shared_ptr<CapturedMem> captured_mem;
};

struct ExecObj {
  uint64_t id = 0;
  CtxObj* ctx = nullptr;
  std::shared_ptr<ExecModel> model;  // instantiated from a GraphModel; else null
  std::map<const void*, unsigned> user_refs;  // copied from its graph at instantiation
  std::shared_ptr<CapturedMem> captured_mem;
};

// Graphs built node by node (client/api_graph_nodes.cc): one lock for all of
// them, and the node handles alive in user-visible graphs. The same lock
// guards user objects, graphs' user-object references and captured memory.
struct GraphNodeRegistry {
  std::mutex mu;
  std::unordered_set<const void*> live;
  std::unordered_set<const void*> user_objects;  // live CUuserObject handles
  // Allocations made in a stream capture, to the capture's memory record:
  // freeing one while a graph made by that capture lives is deferred too.
  std::map<CUdeviceptr, std::weak_ptr<CapturedMem>> capture_allocs;
  // Graph memory (alloc nodes and allocations captured from streams), for
  // cuDeviceGetGraphMemAttribute: each live one's device and size, and per
  // device what is in use now and the most since the last reset. rgpu keeps
  // no pool behind graphs, so reserved memory is the memory in use.
  struct GraphMemUse {
    uint64_t used = 0, used_high = 0, reserved_high = 0;
  };
  std::map<CUdeviceptr, std::pair<int, uint64_t>> graph_mem;
  std::map<int, GraphMemUse> graph_mem_use;
};

struct ModuleObj {
  uint64_t id = 0;
  CtxObj* ctx = nullptr;       // modules: the context loaded in
  bool is_library = false;
  std::vector<uint8_t> image;  // kept for lazy loads and re-resolution
  uint64_t hash = 0;
  bool loaded = false;         // sent to the worker
};

struct FuncObj {
  uint64_t id = 0;
  ModuleObj* module = nullptr;
  bool is_kernel = false;  // CUkernel (library) vs CUfunction
  std::string name;
  bool resolved = false;   // GetFunction done
  std::vector<std::pair<uint32_t, uint32_t>> params;  // (offset, size)
  std::vector<int32_t> attrs;                         // by CUfunction_attribute
  uint32_t params_bytes = 0;
};

// Virtual-memory objects this client made (cuMemCreate handles are named by
// the client; the worker maps them to real handles).
struct MemHandleObj {
  uint64_t size = 0;
  CUmemAllocationProp prop{};
  int refs = 1;
  CtxObj* ctx = nullptr;
};
struct VmmState {
  std::mutex mu;
  std::map<uint64_t, MemHandleObj> handles;                // id -> object
  std::map<CUdeviceptr, std::pair<uint64_t, uint64_t>> mappings;  // base -> (size, handle id)
  std::map<std::tuple<int, int, int>, size_t> granularity;  // (dev, type, option) -> bytes
};

struct Allocation {
  uint64_t size = 0;
  CtxObj* ctx = nullptr;
};

class ClientState {
 public:
  // The state, or nullptr before a successful cuInit.
  static ClientState* Get();
  // Runs the first time: connects, fetches device facts. Later calls return
  // the first outcome (an init failure is remembered, like the driver's).
  static CUresult Init(unsigned flags);

  Connection& conn() { return *conn_; }
  HostFuncs& host_funcs();
  VmmState& vmm() { return vmm_; }
  ArrayState& arrays() { return arrays_; }
  GraphNodeRegistry& graph_nodes() { return graph_nodes_; }
  MemPools& mem_pools();  // client/mem_pools.h
  const proto::DeviceInfo& info() const { return info_; }
  int device_count() const { return static_cast<int>(visible_.size()); }
  // Maps a visible ordinal (after CUDA_VISIBLE_DEVICES) to the worker's.
  int RemoteOrdinal(int dev) const { return visible_[dev]; }
  const proto::DeviceFacts& device(int dev) const { return info_.devices[visible_[dev]]; }

  uint64_t NewId() { return next_id_.fetch_add(1); }

  // Contexts. The primary context object of a device lives forever.
  CtxObj* Primary(int dev);
  CtxObj* NewContext(int dev, unsigned flags);
  bool IsContext(CUcontext c);
  void DropContext(CtxObj* c);
  // Per-thread current-context stack.
  static std::vector<CtxObj*>& Stack();
  CtxObj* Current();
  // Per-thread reply buffers of Sync() (api_common.h), one per slot; a slot
  // number comes from NewSyncReplySlot(), once per Sync instantiation.
  static Reply& SyncReply(size_t slot);
  static size_t NewSyncReplySlot();

  // Registries: Add returns the handle; Find returns nullptr for unknown.
  StreamObj* AddStream(std::unique_ptr<StreamObj> s);
  StreamObj* FindStream(CUstream s);
  void DropStream(StreamObj* s);
  EventObj* AddEvent(std::unique_ptr<EventObj> e);
  EventObj* FindEvent(CUevent e);
  void DropEvent(EventObj* e);
  ModuleObj* AddModule(std::unique_ptr<ModuleObj> m);
  ModuleObj* FindModule(const void* m);
  void DropModule(ModuleObj* m);
  FuncObj* AddFunc(std::unique_ptr<FuncObj> f);
  FuncObj* FindFunc(const void* f);
  // The handle resolved before for `name` in `m`, if any: the driver hands
  // out one handle per function, however often it is looked up or listed.
  FuncObj* FindFuncByName(const ModuleObj* m, const std::string& name, bool kernel);
  // Records a function attribute the driver accepted: on `f` and on every
  // other handle of the same function (the same name in the same module:
  // one function to the driver, however many times it was looked up).
  void SetFuncAttribute(const FuncObj* f, int attrib, int32_t value);
  // Changes whenever a function's attributes change or functions go away
  // (module unload): answers cached per thread under a handle and this value
  // stay valid while it holds, without a FindFunc.
  uint64_t func_epoch() const { return func_epoch_.load(std::memory_order_acquire); }
  void BumpFuncEpoch() { func_epoch_.fetch_add(1, std::memory_order_acq_rel); }
  GraphObj* AddGraph(std::unique_ptr<GraphObj> g);
  GraphObj* FindGraph(const void* g);
  void DropGraph(GraphObj* g);
  ExecObj* AddExec(std::unique_ptr<ExecObj> e);
  ExecObj* FindExec(const void* e);
  void DropExec(ExecObj* e);

  // True while any capture is open (lets capture queries skip the lookup).
  bool any_capture() const { return capture_count_.load(std::memory_order_relaxed) != 0; }
  // Stream capture mirror, keyed by wire stream id.
  Capture GetCapture(uint64_t stream);
  void SetCapture(uint64_t stream, const Capture& c);
  // Ends capture `id` on every stream that joined it.
  void EndCapture(uint64_t id);
  // True while a stream of context c captures (cuCtxRecordEvent refuses then).
  bool ContextCaptures(const CtxObj* c);

  void AddAllocation(CUdeviceptr p, uint64_t size, CtxObj* ctx);
  bool RemoveAllocation(CUdeviceptr p);
  // True when [p, p+n) is device memory of this client: one allocation, or
  // several placed end to end (virtual-memory mappings side by side).
  bool CoveredByAllocations(CUdeviceptr p, uint64_t n);
  // The allocation containing p, if any: base and size.
  bool FindAllocation(CUdeviceptr p, CUdeviceptr* base, uint64_t* size, CtxObj** ctx = nullptr);
  // Host memory from cuMemAllocHost / cuMemHostAlloc / cuMemHostRegister.
  void AddHostRange(const void* p, uint64_t size, unsigned flags, bool owned);
  bool RemoveHostRange(const void* p, bool* owned);
  bool IsHostRange(const void* p, uint64_t* base_size = nullptr, unsigned* flags = nullptr);

  // Async failures reported by the worker; surfaced at the next sync call.
  void RecordAsyncError(int cu, const std::string& msg);
  CUresult TakeAsyncError();
  // True while an error waits for the next Sync() (calls made on the
  // program's behalf check it so as not to take the program's error).
  bool HasAsyncError();

  // Marks the state unusable in a forked child (its link is the parent's).
  void OnForkChild();
  bool forked() const { return forked_; }

  // What every driver call answers instead of running (RGPU_STATE_OR_RETURN),
  // or CUDA_SUCCESS while calls run: CUDA_ERROR_NOT_INITIALIZED in a forked
  // child, CUDA_ERROR_DEINITIALIZED once the process is exiting. One relaxed
  // load: it is on the path of every launch and query.
  CUresult refusal() const { return static_cast<CUresult>(refusal_.load(std::memory_order_relaxed)); }
  // True once the exit handler registered by the first successful cuInit
  // ran (see OnExit in client_state.cc), for the few calls answered without
  // the state.
  static bool Deinitialized();
  void MarkDeinitialized();

 private:
  ClientState() = default;
  CUresult Start(unsigned flags);

  std::unique_ptr<Connection> conn_;
  std::unique_ptr<HostFuncs> host_funcs_;
  VmmState vmm_;
  ArrayState arrays_;
  GraphNodeRegistry graph_nodes_;
  std::shared_ptr<MemPools> mem_pools_;
  std::once_flag mem_pools_once_;
  std::once_flag host_funcs_once_;
  proto::DeviceInfo info_;
  std::vector<int> visible_;
  std::atomic<uint64_t> next_id_{0x1000};
  bool forked_ = false;
  std::atomic<int> refusal_{CUDA_SUCCESS};

  std::mutex mu_;
  std::vector<std::unique_ptr<CtxObj>> primaries_;
  std::unordered_map<const void*, std::unique_ptr<CtxObj>> contexts_;
  std::unordered_map<const void*, std::unique_ptr<StreamObj>> streams_;
  std::unordered_map<const void*, std::unique_ptr<EventObj>> events_;
  std::unordered_map<const void*, std::unique_ptr<ModuleObj>> modules_;
  std::unordered_map<const void*, std::unique_ptr<FuncObj>> funcs_;
  std::map<std::tuple<const ModuleObj*, bool, std::string>, FuncObj*> func_names_;  // FindFuncByName
  std::unordered_map<const void*, std::unique_ptr<GraphObj>> graphs_;
  std::unordered_map<const void*, std::unique_ptr<ExecObj>> execs_;
  std::unordered_map<uint64_t, Capture> captures_;
  std::atomic<int> capture_count_{0};  // entries in captures_
  std::atomic<uint64_t> func_epoch_{0};
  std::map<CUdeviceptr, Allocation> allocations_;
  std::map<uintptr_t, std::pair<uint64_t, unsigned>> host_ranges_;  // base -> (size, flags)
  std::map<uintptr_t, bool> host_owned_;
  int async_error_ = 0;
  std::string async_error_msg_;
  std::map<int, uint64_t> async_errors_seen_;  // CUresult -> count (RecordAsyncError logs the first)
};

// Wire ids with fixed meaning (see server/worker/session.h).
constexpr uint64_t kWireStreamLegacyDefault = 0;
constexpr uint64_t kWireStreamLegacy = 1;
constexpr uint64_t kWireStreamPerThread = 2;

}  // namespace rgpu::client
