// SimDevice: all state of the sim backend, one object per process.
//
// Ownership: LoadSimBackend() creates the SimDevice (replacing, and freeing, a
// previous one: tests load it repeatedly); it lives until the next load or
// process exit. Every CUDA object (context, stream, event, module, function,
// library, kernel) is a record in one of the maps below; the handle the
// application sees is the record's id cast to the handle type. Ids come from
// one process-wide counter and are never reused, so a stale or forged handle
// is simply not found (CUDA_ERROR_INVALID_HANDLE / INVALID_CONTEXT), never
// dereferenced.
//
// Threading: every sim driver function takes `mu` for its whole duration
// (kernels included: the sim executes all work synchronously at submission).
// The current-context stack is per thread, like the real driver's.
#pragma once

#include <cuda.h>

#include <chrono>
#include <cstring>
#include <functional>
#include <type_traits>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "backend/driver_table.h"
#include "backend/sim/sim_memory.h"
#include "image/image.h"

namespace rgpu::backend::sim {

// Next unused handle id (multiple of 16, never 0, 1 or 2: those are the
// special stream handles 0, CU_STREAM_LEGACY and CU_STREAM_PER_THREAD).
uint64_t NextId();

// The raw value of an enum field supplied by the caller. Reading it as the
// enum type would be undefined behaviour when it holds no enumerator (999 in
// a CUlaunchAttributeID, say), which untrusted input may do.
template <class E>
int EnumValue(const E& e) {
  std::underlying_type_t<E> v;
  std::memcpy(&v, &e, sizeof v);
  return static_cast<int>(v);
}

template <class H>
H ToHandle(uint64_t id) {
  return reinterpret_cast<H>(static_cast<uintptr_t>(id));
}
template <class H>
uint64_t FromHandle(H h) {
  return static_cast<uint64_t>(reinterpret_cast<uintptr_t>(h));
}

struct DeviceFacts {
  std::string name;
  uint64_t total_mem = 0;
  CUuuid uuid{};
  std::unordered_map<int, int> attributes;  // CUdevice_attribute -> value
  int cc = 0;                               // major * 10 + minor
};

struct Device {
  DeviceFacts facts;
  Arena arena;
  uint64_t primary_ctx = 0;  // id of the primary context record (always exists)
};

struct Context {
  uint64_t id = 0;
  int device = 0;
  unsigned flags = 0;
  bool primary = false;
  bool active = true;    // primary: retained at least once since the last reset
  int refcount = 0;      // primary only
  size_t limits[16] = {};
  CUfunc_cache cache_config = CU_FUNC_CACHE_PREFER_NONE;
  CUresult sticky = CUDA_SUCCESS;  // set by a failed kernel, like the real driver
  std::vector<uint64_t> peers;     // contexts this one enabled peer access to
};

struct Stream {
  uint64_t ctx = 0;
  unsigned flags = 0;
  int priority = 0;
  uint64_t capture = 0;  // id of the capture this stream records into, 0 if none
};

struct Event {
  uint64_t ctx = 0;
  unsigned flags = 0;
  bool recorded = false;
  uint64_t capture = 0;  // recorded into this (still open) capture
  std::chrono::steady_clock::time_point time;
};

class SimDevice;
// One unit of stream work (a copy, memset, launch, event record), run with the
// device lock held. Captured work is kept as ops and replayed by cuGraphLaunch.
using SimOp = std::function<CUresult(SimDevice*)>;
using SimOps = std::vector<SimOp>;

// An open stream capture (cuStreamBeginCapture .. cuStreamEndCapture). Work
// submitted to any stream that joined it is recorded, in submission order, not
// run. The graph it produces is that linear sequence (a valid topological
// order of the real graph, which is all a synchronous simulator needs).
struct Capture {
  uint64_t ctx = 0;
  uint64_t origin = 0;  // stream that began it
  CUstreamCaptureMode mode = CU_STREAM_CAPTURE_MODE_GLOBAL;
  std::thread::id thread;
  bool invalidated = false;
  SimOps ops;
};

struct Graph {
  std::shared_ptr<const SimOps> ops;
};

struct GraphExec {
  uint64_t ctx = 0;
  std::shared_ptr<const SimOps> ops;
};

// A parsed image, shared by a library and the modules made from it.
struct LoadedImage {
  image::ModuleInfo info;
  std::string description;  // "sm_90 ELF", "PTX (compute_90)" (for logs)
  int binary_version = 0;   // cc the code was built for (device cc for PTX)
};

// Per-function attribute state (settable with cuFuncSetAttribute).
struct FuncAttrs {
  int max_dynamic_shared = 0;
  int carveout = -1;
  int cluster[3] = {0, 0, 0};
  int non_portable_cluster = 0;
  int cluster_policy = 0;
  CUfunc_cache cache_config = CU_FUNC_CACHE_PREFER_NONE;
};

struct Module {
  uint64_t ctx = 0;
  uint64_t library = 0;  // 0 unless created by a library for a context
  std::shared_ptr<const LoadedImage> image;
  std::map<std::string, uint64_t, std::less<>> functions;  // name -> function id
  std::map<std::string, std::pair<CUdeviceptr, size_t>, std::less<>> globals;
};

struct Function {
  uint64_t module = 0;
  uint64_t kernel = 0;  // the library kernel it came from, if any
  const image::KernelInfo* info = nullptr;  // owned by the module's image
  FuncAttrs attrs;
  std::vector<size_t> param_sizes;
};

struct Library {
  std::shared_ptr<const LoadedImage> image;
  std::map<std::string, uint64_t, std::less<>> kernels;  // name -> kernel id
  std::map<uint64_t, uint64_t> modules;                   // ctx id -> module id
};

struct Kernel {
  uint64_t library = 0;
  const image::KernelInfo* info = nullptr;
  FuncAttrs attrs;
  bool attrs_set = false;  // cuKernelSetAttribute was called: copy to new functions
};

class SimDevice {
 public:
  // Reads the profile and reserves device memory. Errors name the file / field.
  static Result<std::unique_ptr<SimDevice>> Create(const BackendOptions& options);

  // The process's instance (null before LoadSimBackend), and replacing it.
  static SimDevice* Get();
  static void Install(std::unique_ptr<SimDevice> dev);

  std::mutex mu;
  bool initialized = false;  // cuInit called
  int driver_version = 0;
  uint64_t generation = 0;   // distinguishes instances for thread-local state
  std::vector<std::unique_ptr<Device>> devices;
  std::unordered_map<uint64_t, Context> contexts;
  std::unordered_map<uint64_t, Stream> streams;
  std::unordered_map<uint64_t, Event> events;
  std::unordered_map<uint64_t, Module> modules;
  std::unordered_map<uint64_t, Function> functions;
  std::unordered_map<uint64_t, Library> libraries;
  std::unordered_map<uint64_t, Kernel> kernels;
  std::unordered_map<uint64_t, Capture> captures;
  std::unordered_map<uint64_t, Graph> graphs;
  std::unordered_map<uint64_t, GraphExec> graph_execs;

  // ---- helpers; all require `mu` held ----

  // Validates `dev` (CUDA_ERROR_INVALID_DEVICE).
  CUresult CheckDevice(CUdevice dev) const;
  int Attr(int device, CUdevice_attribute a) const;

  // The calling thread's context stack (top = current).
  std::vector<uint64_t>& ThreadStack();
  // Current context: INVALID_CONTEXT if none, CONTEXT_IS_DESTROYED if it was
  // destroyed (or an inactive primary), its sticky error if a kernel failed.
  CUresult CurrentContext(Context** out);
  // A context named by handle (INVALID_CONTEXT if unknown).
  Context* FindContext(uint64_t id);
  // Destroys everything a context owns (memory, streams, events, modules).
  void DestroyContextResources(uint64_t ctx);

  // The device arena containing address p (null if none).
  Arena* ArenaFor(uint64_t p);
  // True when [p, p + n) lies in one live allocation (any device).
  bool IsDeviceRange(uint64_t p, uint64_t n);

  // Stream validation: 0 / CU_STREAM_LEGACY / CU_STREAM_PER_THREAD need a
  // current context; others must be live (INVALID_HANDLE otherwise).
  CUresult CheckStream(CUstream s);

  // Runs `op` now, or records it if `stream` is capturing (CheckStream it
  // first). Work on the legacy stream while a capture is open in the same
  // context fails with CUDA_ERROR_STREAM_CAPTURE_IMPLICIT and invalidates it.
  CUresult Submit(CUstream stream, SimOp op);
  // For calls that are "potentially unsafe" during stream capture (synchronous
  // copies, allocation, context synchronisation): fails with
  // CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED, invalidating the capture, when the
  // capture mode rules of cuThreadExchangeStreamCaptureMode forbid the call.
  CUresult CheckUnsafeCall();
  // The capture `stream` records into (and its id), or null / 0.
  Capture* CaptureOf(CUstream stream);
  uint64_t StreamCaptureId(CUstream stream);

  // Resolves a CUfunction that may also be a CUkernel (cuLaunchKernel accepts
  // both) to a function record in the current context.
  CUresult ResolveFunction(CUfunction f, uint64_t* id, Function** out);
  // The function for `kernel` in the current context (created on first use).
  CUresult KernelFunction(uint64_t kernel, uint64_t* id);
  // The module of `library` for the current context (created on first use).
  CUresult LibraryModule(uint64_t library, uint64_t* module);

  // Creates a module in context `ctx` from a parsed image (allocates and
  // initialises its globals).
  CUresult CreateModule(uint64_t ctx, std::shared_ptr<const LoadedImage> image, uint64_t library,
                        uint64_t* id);
  void DestroyModule(uint64_t id);

 private:
  SimDevice() = default;
};

// Parses any image (wrapper, fatbin, cubin, PTX) for a device of compute
// capability `cc`; logs why on failure.
CUresult LoadImage(const void* image, int cc, std::shared_ptr<const LoadedImage>* out);

// Default attribute values of a function made from `k`.
FuncAttrs DefaultFuncAttrs(const image::KernelInfo& k);
// cuFuncGetAttribute for a function / kernel on `device`.
CUresult GetFuncAttribute(const SimDevice& s, int device, const image::KernelInfo& k,
                          const FuncAttrs& a, const LoadedImage& img, CUfunction_attribute attr,
                          int* value);
CUresult SetFuncAttribute(const SimDevice& s, int device, const image::KernelInfo& k,
                          CUfunction_attribute attr, int value, FuncAttrs* a);

// Declarations of every sim driver function, with cuda.h's exact signatures:
// sim::cuInit etc. (defined across sim_api_*.cc).
#define RGPU_SIM_DECLARE(name) decltype(::name) name;
RGPU_DRIVER_FUNCTIONS(RGPU_SIM_DECLARE)
#undef RGPU_SIM_DECLARE

}  // namespace rgpu::backend::sim

// Enter a sim driver function: take the lock, fail before cuInit.
#define SIM_ENTER(dev)                                                   \
  ::rgpu::backend::sim::SimDevice* dev = ::rgpu::backend::sim::SimDevice::Get(); \
  if (dev == nullptr) return CUDA_ERROR_NOT_INITIALIZED;                 \
  std::lock_guard<std::mutex> sim_lock_(dev->mu);                        \
  if (!dev->initialized) return CUDA_ERROR_NOT_INITIALIZED

// Require a current context, bound to `ctx`.
#define SIM_CURRENT_CTX(dev, ctx)                                        \
  ::rgpu::backend::sim::Context* ctx = nullptr;                          \
  if (CUresult sim_r_ = (dev)->CurrentContext(&ctx); sim_r_ != CUDA_SUCCESS) return sim_r_
