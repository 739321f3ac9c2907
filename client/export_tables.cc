// cuGetExportTable and the tables it serves; see export_tables.h for the list.
//
// Slot signatures are those reverse-engineered by ZLUDA (dark_api/src/lib.rs,
// zluda/src/impl/driver.rs); behaviour on edge cases (missing keys, no current
// context, what [2] does to the primary context) was measured against the real
// 580.159 driver. Slots call only the client's public driver functions.
#include "client/export_tables.h"

#include <atomic>

#include <pthread.h>
#include <unistd.h>

#include <array>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <utility>
#include <vector>

#include "client/integrity_hash.h"
#include "client/proc_address.h"
#include "common/log.h"

namespace rgpu::client {
namespace {

// ---------------------------------------------------------------------------
// The tables we know.

enum TableId : uint8_t {
  kCudartInterface,
  kToolsTls,
  kRuntimeCallbackHooks,
  kContextLocalStorage,
  kIntegrityCheck,
  kContextChecks,
  kCudartF8cff951,
  kCtxCreateBypass,
  kDeviceExtendedRt,
  kToolsContext,
  kNvmlPrivate,
  kToolsModule,
  kToolsMemory,
  kToolsPushBuffer,
  kCluster,
  kTableCount,
};

constexpr size_t kMaxSlots = 99;
constexpr int kNoSlot = -1;

struct TableSpec {
  const char* name;
  uint8_t uuid[16];  // memory order, as callers pass it
  size_t slot_count;
  bool size_in_slot0;    // all but CONTEXT_LOCAL_STORAGE
  int null_slots[2];     // slots the real driver leaves null (kNoSlot: none)
};

// Indexed by TableId. Sizes and null slots as the real 580.159 driver serves them.
constexpr TableSpec kSpecs[kTableCount] = {
    {"CUDART_INTERFACE",
     {0x6b, 0xd5, 0xfb, 0x6c, 0x5b, 0xf4, 0xe7, 0x4a, 0x89, 0x87, 0xd9, 0x39, 0x12, 0xfd, 0x9d, 0xf9},
     13, true, {10, kNoSlot}},
    {"TOOLS_TLS",
     {0x42, 0xd8, 0x5a, 0x81, 0x23, 0xf6, 0xcb, 0x47, 0x82, 0x98, 0xf6, 0xe7, 0x8a, 0x3a, 0xec, 0xdc},
     3, true, {kNoSlot, kNoSlot}},
    {"TOOLS_RUNTIME_CALLBACK_HOOKS",
     {0xa0, 0x94, 0x79, 0x8c, 0x2e, 0x74, 0x2e, 0x74, 0x93, 0xf2, 0x08, 0x00, 0x20, 0x0c, 0x0a, 0x66},
     7, true, {kNoSlot, kNoSlot}},
    {"CONTEXT_LOCAL_STORAGE",
     {0xc6, 0x93, 0x33, 0x6e, 0x11, 0x21, 0xdf, 0x11, 0xa8, 0xc3, 0x68, 0xf3, 0x55, 0xd8, 0x95, 0x93},
     4, false, {3, kNoSlot}},
    {"INTEGRITY_CHECK",
     {0xd4, 0x08, 0x20, 0x55, 0xbd, 0xe6, 0x70, 0x4b, 0x8d, 0x34, 0xba, 0x12, 0x3c, 0x66, 0xe1, 0xf2},
     3, true, {kNoSlot, kNoSlot}},
    {"CONTEXT_CHECKS",
     {0x26, 0x3e, 0x88, 0x60, 0x7c, 0xd2, 0x61, 0x43, 0x92, 0xf6, 0xbb, 0xd5, 0x00, 0x6d, 0xfa, 0x7e},
     15, true, {kNoSlot, kNoSlot}},
    {"CUDART_F8CFF951",
     {0xf8, 0xcf, 0xf9, 0x51, 0x21, 0x46, 0x8b, 0x4e, 0xb9, 0xe2, 0xfb, 0x46, 0x9e, 0x7c, 0x0d, 0xd9},
     3, true, {kNoSlot, kNoSlot}},
    {"CTX_CREATE_BYPASS",
     {0x0c, 0xa5, 0x0b, 0x8c, 0x10, 0x04, 0x92, 0x9a, 0x89, 0xa7, 0xd0, 0xdf, 0x10, 0xe7, 0x72, 0x86},
     2, true, {kNoSlot, kNoSlot}},
    {"DEVICE_EXTENDED_RT",
     {0xb1, 0x05, 0x41, 0xe1, 0xf7, 0xc7, 0xc7, 0x4a, 0x9f, 0x64, 0xf2, 0x23, 0xbe, 0x99, 0xf1, 0xe2},
     31, true, {30, kNoSlot}},
    {"TOOLS_CONTEXT",
     {0x21, 0x31, 0x8c, 0x60, 0x97, 0x14, 0x32, 0x48, 0x8c, 0xa6, 0x41, 0xff, 0x73, 0x24, 0xc8, 0xf2},
     93, true, {91, kNoSlot}},
    {"NVML_PRIVATE",
     {0x69, 0xa2, 0x8e, 0x9f, 0x24, 0x49, 0x8b, 0x47, 0xb0, 0x30, 0xc5, 0xda, 0x33, 0x0e, 0xa4, 0xe9},
     34, true, {kNoSlot, kNoSlot}},
    {"TOOLS_MODULE",
     {0x6e, 0x16, 0x3f, 0xbe, 0xb9, 0x58, 0x44, 0x4d, 0x83, 0x5c, 0xe1, 0x82, 0xaf, 0xf1, 0x99, 0x1e},
     99, true, {93, kNoSlot}},
    {"TOOLS_MEMORY",
     {0xbf, 0xdb, 0x43, 0x2d, 0xbf, 0x3c, 0x5a, 0x4a, 0x94, 0x5e, 0xb3, 0x40, 0x29, 0xe8, 0x1e, 0x75},
     60, true, {kNoSlot, kNoSlot}},
    {"TOOLS_PUSHBUFFER",
     {0xa6, 0xb1, 0xff, 0x99, 0xec, 0xc4, 0xc9, 0x4f, 0x92, 0xf9, 0x19, 0x28, 0x66, 0x3d, 0x55, 0x85},
     32, true, {kNoSlot, kNoSlot}},
    // 1734dc26-800d-4745-8726-c0f1e7dd8bca; nvrtc's own messages call it
    // "the cuda cluster export table".
    {"CLUSTER",
     {0x17, 0x34, 0xdc, 0x26, 0x80, 0x0d, 0x47, 0x45, 0x87, 0x26, 0xc0, 0xf1, 0xe7, 0xdd, 0x8b, 0xca},
     17, true, {kNoSlot, kNoSlot}},
};

static_assert([] {
  for (const TableSpec& spec : kSpecs)
    if (spec.slot_count > kMaxSlots) return false;
  return true;
}());

// UUIDs asked for that we answer like an unknown one without a warning: the
// caller expects the refusal and carries on.
constexpr uint8_t kQuietlyRefused[][16] = {
    // HEAP_ACCESS (195bcbf4-d67d-024a-acc5-1d29cea631ae): the real driver
    // refuses it too.
    {0x19, 0x5b, 0xcb, 0xf4, 0xd6, 0x7d, 0x02, 0x4a, 0xac, 0xc5, 0x1d, 0x29, 0xce, 0xa6, 0x31, 0xae},
    // da9151d3-3ae6-cc41-a5c0-4f26d533e328: nvrtc's and nvJitLink's
    // compilation cache ("[nvrtc cache]" in libnvrtc.so.13 +0x9e3df4). Without
    // it they compile every time, which is all a cache on the client could
    // save: the driver that would use the cached code is on the GPU host.
    {0xda, 0x91, 0x51, 0xd3, 0x3a, 0xe6, 0xcc, 0x41, 0xa5, 0xc0, 0x4f, 0x26, 0xd5, 0x33, 0xe3, 0x28},
};

void FormatUuid(const uint8_t* b, char (&out)[37]) {
  snprintf(out, sizeof out,
           "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0], b[1],
           b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14],
           b[15]);
}

// ---------------------------------------------------------------------------
// Slots we don't know: one distinct function per (table, slot) so the log can
// say which one was called.

CUresult ReportUnknownSlot(TableId table, size_t slot) {
  char key[64];
  snprintf(key, sizeof key, "cuGetExportTable:%s[%zu]", kSpecs[table].name, slot);
  LogOnce(LogLevel::kWarn, key, "export table %s slot %zu is not supported by rgpu",
          kSpecs[table].name, slot);
  return CUDA_ERROR_NOT_SUPPORTED;
}

template <size_t kTable, size_t kSlot>
CUresult UnknownSlot() {
  return ReportUnknownSlot(static_cast<TableId>(kTable), kSlot);
}

template <size_t kTable, size_t... kSlot>
std::array<const void*, kMaxSlots> UnknownSlots(std::index_sequence<kSlot...>) {
  return {reinterpret_cast<const void*>(&UnknownSlot<kTable, kSlot>)...};
}

// ---------------------------------------------------------------------------
// CUDART_INTERFACE

// What nvcc emits per translation unit (__fatbinwrapper) and cudart passes in.
struct FatbinWrapper {
  uint32_t magic;    // kFatbinWrapperMagic
  uint32_t version;  // 1 or 2
  const void* data;  // the fatbin (header magic 0xBA55ED50)
  const void* filename_or_fatbins;
};
constexpr uint32_t kFatbinWrapperMagic = 0x466243B1;

CUresult LoadWrapper(const char* slot, CUmodule* module, const FatbinWrapper* wrapper) {
  if (module == nullptr || wrapper == nullptr) return CUDA_ERROR_INVALID_VALUE;
  if (wrapper->magic != kFatbinWrapperMagic || wrapper->data == nullptr) {
    RGPU_LOG_WARN("CUDART_INTERFACE%s: not a fatbin wrapper (magic 0x%08x)", slot,
                  wrapper->magic);
    return CUDA_ERROR_INVALID_IMAGE;
  }
  return cuModuleLoadData(module, wrapper->data);
}

// [1] module from a fatbin wrapper.
CUresult CudartModuleFromWrapper(CUmodule* module, const FatbinWrapper* wrapper) {
  RGPU_LOG_DEBUG("export table CUDART_INTERFACE[1](wrapper %p)", static_cast<const void*>(wrapper));
  return LoadWrapper("[1]", module, wrapper);
}

// [2] the primary context of `dev`. The real driver hands out the handle
// without retaining or activating it (measured: the state stays inactive, a
// following release fails with INVALID_CONTEXT) and doesn't make it current.
// (The real driver crashes on a null pctx; we refuse it.)
CUresult CudartPrimaryContext(CUcontext* pctx, CUdevice dev) {
  RGPU_LOG_DEBUG("export table CUDART_INTERFACE[2](dev %d)", dev);
  if (pctx == nullptr) return CUDA_ERROR_INVALID_VALUE;
  return PrimaryContextHandle(dev, pctx);
}

// [6] module from a fatbin wrapper, with three arguments of unknown meaning
// that ZLUDA has only seen null/0; anything else is refused rather than
// silently ignored.
CUresult CudartModuleFromWrapperEx(CUmodule* module, const FatbinWrapper* wrapper, void* arg3,
                                   void* arg4, unsigned arg5) {
  RGPU_LOG_DEBUG("export table CUDART_INTERFACE[6](wrapper %p, %p, %p, %u)",
                 static_cast<const void*>(wrapper), arg3, arg4, arg5);
  if (arg3 != nullptr || arg4 != nullptr || arg5 != 0) {
    RGPU_LOG_WARN("CUDART_INTERFACE[6] with unknown arguments (%p, %p, %u) is not supported",
                  arg3, arg4, arg5);
    return CUDA_ERROR_NOT_SUPPORTED;
  }
  return LoadWrapper("[6]", module, wrapper);
}

// [7] takes one word and does nothing visible.
void CudartNoOp7(uintptr_t arg) { RGPU_LOG_DEBUG("export table CUDART_INTERFACE[7](%#zx)", arg); }

// [8] module from a fatbin (no wrapper); same unknown arguments as [6].
CUresult CudartModuleFromFatbinEx(const void* fatbin, CUmodule* module, void* arg3, void* arg4,
                                  unsigned arg5) {
  RGPU_LOG_DEBUG("export table CUDART_INTERFACE[8](fatbin %p, %p, %p, %u)", fatbin, arg3, arg4,
                 arg5);
  if (arg3 != nullptr || arg4 != nullptr || arg5 != 0) {
    RGPU_LOG_WARN("CUDART_INTERFACE[8] with unknown arguments (%p, %p, %u) is not supported",
                  arg3, arg4, arg5);
    return CUDA_ERROR_NOT_SUPPORTED;
  }
  if (module == nullptr || fatbin == nullptr) return CUDA_ERROR_INVALID_VALUE;
  return cuModuleLoadData(module, fatbin);
}

// [12] the real driver loads its PTX compiler and libnvvm here; compilation
// happens on the GPU host, so there is nothing to load.
CUresult CudartLoadCompilers() {
  RGPU_LOG_DEBUG("export table CUDART_INTERFACE[12]()");
  return CUDA_SUCCESS;
}

// ---------------------------------------------------------------------------
// TOOLS_TLS, TOOLS_CONTEXT

// TOOLS_TLS[2]: the calling thread's current context (measured: the same
// handle cuCtxGetCurrent returns). cuBLASLt uses it.
CUresult ToolsCurrentContext(CUcontext* ctx) {
  RGPU_LOG_DEBUG("export table TOOLS_TLS[2]()");
  if (ctx == nullptr) return CUDA_ERROR_INVALID_VALUE;
  return cuCtxGetCurrent(ctx);
}

// TOOLS_CONTEXT[4]: a context's unique id (measured: equals cuCtxGetId).
CUresult ToolsContextId(CUcontext ctx, unsigned long long* id) {
  RGPU_LOG_DEBUG("export table TOOLS_CONTEXT[4](ctx %p)", static_cast<void*>(ctx));
  if (id == nullptr) return CUDA_ERROR_INVALID_VALUE;
  return cuCtxGetId(ctx, id);
}

// TOOLS_CONTEXT[51](ctx, stream, &resolved, per_thread) and
// TOOLS_CONTEXT[39](ctx, resolved, &key): cuBLAS 13 (libcublas.so.13
// +0x2182f0, the per-stream workspace cache behind reductions such as
// cublasSdot, also used through cuSOLVER) calls 51 with the current context,
// the handle's stream and `stream == CU_STREAM_PER_THREAD`, passes what it
// got to 39, and keys its cache by the result (by thread too for the
// per-thread stream); any non-zero return is CUBLAS_STATUS_INTERNAL_ERROR.
// Read from cuBLAS's code; measured on an H100 (driver 580) with the probe
// tests/programs/tools_context_probe.cu: 51 hands out the driver's own
// object for the stream, not the CUstream, and 39 gives that stream's id.
// Here 51 resolves the handle (NULL is the legacy stream, or the per-thread
// one when the flag says so) after checking it names a stream and hands out
// the client's stream object (what the handle points to: readable memory,
// should the caller look into it, and verified with cuBLAS on the GPU host);
// 39 gives the stream's id: stable per stream and unique, as the cache needs.
CUresult ToolsContextResolveStream(CUcontext ctx, CUstream stream, CUstream* resolved, int per_thread) {
  RGPU_LOG_DEBUG("export table TOOLS_CONTEXT[51](ctx %p, stream %p, %d)", static_cast<void*>(ctx),
                 static_cast<void*>(stream), per_thread);
  if (resolved == nullptr) return CUDA_ERROR_INVALID_VALUE;
  if (stream == nullptr) stream = per_thread ? CU_STREAM_PER_THREAD : CU_STREAM_LEGACY;
  unsigned long long id = 0;
  if (CUresult r = cuStreamGetId(stream, &id); r != CUDA_SUCCESS) return r;
  *resolved = stream;
  return CUDA_SUCCESS;
}

CUresult ToolsContextStreamKey(CUcontext ctx, CUstream stream, unsigned long long* key) {
  RGPU_LOG_DEBUG("export table TOOLS_CONTEXT[39](ctx %p, stream %p)", static_cast<void*>(ctx),
                 static_cast<void*>(stream));
  if (key == nullptr) return CUDA_ERROR_INVALID_VALUE;
  return cuStreamGetId(stream, key);
}

// TOOLS_MODULE[7](ctx, module, callback, user): the functions of a module
// without their names. cuFFT 12 (libcufft.so.12 +0x350fb0) loads a fatbin
// holding one kernel whose name it doesn't keep, calls this with the
// current context, the module, `void cb(void* user, CUfunction f)` (which
// stores f into *user) and a pointer to its result, treats a return value of
// 1 as success and anything else as an internal error, then launches the
// function it got. Read from cuFFT's code, not yet from the driver (the
// probe tests/programs/tools_module_probe.cu compares the two on the GPU
// host): calls the callback once per function, in the order
// cuModuleEnumerateFunctions gives, and returns how many it reported; 0
// (no function, or a failure, logged) is what cuFFT takes as an error.
using FunctionCallback = void (*)(void* user, CUfunction function);

int ToolsModuleEachFunction(CUcontext ctx, CUmodule module, FunctionCallback callback,
                            void* user) {
  RGPU_LOG_DEBUG("export table TOOLS_MODULE[7](ctx %p, module %p)", static_cast<void*>(ctx),
                 static_cast<void*>(module));
  if (callback == nullptr) return 0;
  unsigned count = 0;
  CUresult r = cuModuleGetFunctionCount(&count, module);
  std::vector<CUfunction> functions(count);
  if (r == CUDA_SUCCESS && count > 0)
    r = cuModuleEnumerateFunctions(functions.data(), count, module);
  if (r != CUDA_SUCCESS) {
    RGPU_LOG_WARN("TOOLS_MODULE[7]: listing the functions of module %p failed (%d)",
                  static_cast<void*>(module), static_cast<int>(r));
    return 0;
  }
  for (CUfunction f : functions) callback(user, f);
  return static_cast<int>(count);
}

// ---------------------------------------------------------------------------
// TOOLS_RUNTIME_CALLBACK_HOOKS: [2] and [6] hand out buffers the runtime
// writes its callback state into; nothing ever reads them back here. The
// sizes are the real driver's (measured: 1024 and 14, element counts as
// ZLUDA has them); the buffers are larger than that, as margin.

alignas(64) uint32_t g_hook_buffer2[2048];
alignas(64) uint32_t g_hook_buffer6[64];
constexpr size_t kHookBuffer2Size = 1024;
constexpr size_t kHookBuffer6Size = 14;

void HooksBuffer2(void** ptr, size_t* size) {
  RGPU_LOG_DEBUG("export table TOOLS_RUNTIME_CALLBACK_HOOKS[2]()");
  if (ptr != nullptr) *ptr = g_hook_buffer2;
  if (size != nullptr) *size = kHookBuffer2Size;
}

void HooksBuffer6(void** ptr, size_t* size) {
  RGPU_LOG_DEBUG("export table TOOLS_RUNTIME_CALLBACK_HOOKS[6]()");
  if (ptr != nullptr) *ptr = g_hook_buffer6;
  if (size != nullptr) *size = kHookBuffer6Size;
}

// ---------------------------------------------------------------------------
// CONTEXT_LOCAL_STORAGE: cudart keeps its per-context state here, keyed by
// (context, key). Return codes as the real driver's: no current context ->
// INVALID_CONTEXT; a missing key, or putting a key twice -> INVALID_HANDLE.

using ContextStorageDtor = void (*)(CUcontext ctx, void* key, void* value);

struct StoredValue {
  void* value;
  ContextStorageDtor dtor;
};

struct ContextStorage {
  std::mutex mu;
  std::map<std::pair<CUcontext, void*>, StoredValue> entries;  // GUARDED_BY(mu)
};

// Leaked on purpose: cudart's own exit handlers may still use it.
ContextStorage& Storage() {
  static ContextStorage* storage = new ContextStorage;
  return *storage;
}

// A null context means the calling thread's current one.
CUresult ResolveContext(CUcontext ctx, CUcontext* out) {
  if (ctx == nullptr) {
    const CUresult r = cuCtxGetCurrent(&ctx);
    if (r != CUDA_SUCCESS) return r;
    if (ctx == nullptr) return CUDA_ERROR_INVALID_CONTEXT;
  }
  *out = ctx;
  return CUDA_SUCCESS;
}

CUresult StoragePut(CUcontext ctx, void* key, void* value, ContextStorageDtor dtor) {
  RGPU_LOG_DEBUG("export table CONTEXT_LOCAL_STORAGE[0](ctx %p, key %p)",
                 static_cast<void*>(ctx), key);
  if (CUresult r = ResolveContext(ctx, &ctx); r != CUDA_SUCCESS) return r;
  ContextStorage& s = Storage();
  std::lock_guard<std::mutex> lock(s.mu);
  if (!s.entries.emplace(std::make_pair(ctx, key), StoredValue{value, dtor}).second) {
    return CUDA_ERROR_INVALID_HANDLE;  // the driver refuses to overwrite
  }
  return CUDA_SUCCESS;
}

CUresult StorageDelete(CUcontext ctx, void* key) {
  RGPU_LOG_DEBUG("export table CONTEXT_LOCAL_STORAGE[1](ctx %p, key %p)",
                 static_cast<void*>(ctx), key);
  if (CUresult r = ResolveContext(ctx, &ctx); r != CUDA_SUCCESS) return r;
  ContextStorage& s = Storage();
  std::lock_guard<std::mutex> lock(s.mu);
  return s.entries.erase(std::make_pair(ctx, key)) ? CUDA_SUCCESS : CUDA_ERROR_INVALID_HANDLE;
}

CUresult StorageGet(void** value, CUcontext ctx, void* key) {
  RGPU_LOG_DEBUG("export table CONTEXT_LOCAL_STORAGE[2](ctx %p, key %p)",
                 static_cast<void*>(ctx), key);
  if (value == nullptr) return CUDA_ERROR_INVALID_VALUE;
  if (CUresult r = ResolveContext(ctx, &ctx); r != CUDA_SUCCESS) return r;
  ContextStorage& s = Storage();
  std::lock_guard<std::mutex> lock(s.mu);
  auto it = s.entries.find(std::make_pair(ctx, key));
  if (it == s.entries.end()) return CUDA_ERROR_INVALID_HANDLE;
  *value = it->second.value;
  return CUDA_SUCCESS;
}

// ---------------------------------------------------------------------------
// INTEGRITY_CHECK

const void* const* TableSlots(TableId id);

// [1](version, unix_seconds, out[2]): see integrity_hash.h. The device list
// comes from our own cuDeviceGetCount/cuDeviceGetUuid_v2/cuDeviceGetAttribute,
// which is what cudart sees too; any failure there is returned as is.
CUresult IntegrityCheck(unsigned version, unsigned long long unix_seconds,
                        unsigned long long* out) {
  RGPU_LOG_DEBUG("export table INTEGRITY_CHECK[1](version %u)", version);
  if (out == nullptr) return CUDA_ERROR_INVALID_VALUE;
  IntegrityRecord record{};
  record.version = version;
  record.unix_seconds = unix_seconds;
  std::vector<IntegrityDevice> devices;
  if (version % 10 > 1) {  // below that the answer is a constant
    int driver_version = 0;
    if (cuDriverGetVersion(&driver_version) != CUDA_SUCCESS) driver_version = proc::kDriverVersion;
    record.driver_version = static_cast<uint32_t>(driver_version);
    record.process = static_cast<uint32_t>(getpid());
    record.thread = static_cast<uint32_t>(reinterpret_cast<uintptr_t>(pthread_self()));
    record.cudart_table = TableSlots(kCudartInterface);
    record.integrity_table = TableSlots(kIntegrityCheck);
    record.check_function = TableSlots(kIntegrityCheck)[1];
    int count = 0;
    if (CUresult r = cuDeviceGetCount(&count); r != CUDA_SUCCESS) return r;
    devices.resize(count > 0 ? static_cast<size_t>(count) : 0);
    for (int dev = 0; dev < count; ++dev) {
      IntegrityDevice& d = devices[static_cast<size_t>(dev)];
      CUuuid uuid{};
      CUresult r = cuDeviceGetUuid_v2(&uuid, dev);
      if (r == CUDA_SUCCESS) r = cuDeviceGetAttribute(&d.pci_domain, CU_DEVICE_ATTRIBUTE_PCI_DOMAIN_ID, dev);
      if (r == CUDA_SUCCESS) r = cuDeviceGetAttribute(&d.pci_bus, CU_DEVICE_ATTRIBUTE_PCI_BUS_ID, dev);
      if (r == CUDA_SUCCESS) r = cuDeviceGetAttribute(&d.pci_device, CU_DEVICE_ATTRIBUTE_PCI_DEVICE_ID, dev);
      if (r != CUDA_SUCCESS) return r;
      std::memcpy(d.uuid, uuid.bytes, sizeof d.uuid);
    }
  }
  const std::array<uint64_t, 2> hash = IntegrityHash(record, devices);
  out[0] = hash[0];
  out[1] = hash[1];
  return CUDA_SUCCESS;
}

// ---------------------------------------------------------------------------
// CONTEXT_CHECKS: [2] reports flags that are never observably set and leaves
// its third argument alone; [3] returns 0 (ZLUDA; both measured on 580.159).

CUresult ContextCheck(CUcontext ctx, uint32_t* flags, const void** detail) {
  RGPU_LOG_DEBUG("export table CONTEXT_CHECKS[2](ctx %p)", static_cast<void*>(ctx));
  (void)detail;  // never written by the reference implementation
  if (flags != nullptr) *flags = 0;
  return CUDA_SUCCESS;
}

uint32_t ContextCheck3() {
  RGPU_LOG_DEBUG("export table CONTEXT_CHECKS[3]()");
  return 0;
}

// CUDART_F8CFF951[1](a, b, c, va_list*): cudart's log sink. libcudart.so.13
// +0x24c50 is a variadic function that hands its three named arguments and
// its va_list to this slot and returns what it returns; cudart calls it with
// a message (seen with CUDA_MODULE_LOADING=EAGER). The driver keeps such
// messages for its logs API (cuLogs*, refused by rgpu); they are dropped here.
CUresult CudartLogMessage(void* a, void* b, void* c, void* args) {
  (void)a, (void)b, (void)c, (void)args;
  RGPU_LOG_DEBUG("export table CUDART_F8CFF951[1]: a runtime log message, dropped");
  return CUDA_SUCCESS;
}

// ---------------------------------------------------------------------------
// CLUSTER (1734dc26). Measured on 580.159 (H200) with a tracing shim and by
// disassembling the slots; only [4], [13] and [14] are served, the rest refuse:
//   [1](fn, x, y, z) sets a function's required cluster dims (1 if they were
//       fixed at compile time and differ, or any is negative); [5](fn, &x,
//       &y, &z) reads them; [2](fn, policy <= 2) / [6](fn, &policy) the
//       cluster scheduling policy; [3](fn, u8) / [7](fn, &u32) a flag next to
//       it; [12](fn, &u32) another flag. `fn` is the driver's own function
//       object, which an rgpu CUfunction is not.
//   [8] [15] [16](dev, &out) read per-device fields, [11](dev, v) sets one and
//       returns the old value (not a CUresult); meanings unknown.
//   [9] [10] occupancy calculations for clusters on the current context.
// cuBLASLt 13.1.0.3 (libcublasLt.so.13+0x330f9a6) calls [4], histograms the GPC
// ids to place thread-block clusters GPC by GPC, passes the result to its
// kernels and releases the arrays with [13]; on any error from [4] it passes
// the identity order instead (the path it also takes for odd cluster sizes).
// nvrtc and nvJitLink 13.0 (from their code) need the table to exist with
// more than 13 slots and call only [13]. Without the table cuBLASLt dereferences a null table and
// dies (measured: SIGSEGV on the first bf16 matmul).

// [4](&gpc_of_tpc, &tpc_in_gpc): the current context's device's TPC layout,
// two malloc'd arrays of one byte per TPC. The driver checks initialisation
// and the current context first (measured: NOT_INITIALIZED, INVALID_CONTEXT),
// answers NOT_SUPPORTED for a device without the layout, and writes the
// outputs only on success (it dereferences them unchecked; we refuse nulls).
CUresult ClusterTpcLayout(uint8_t** gpc_of_tpc, uint8_t** tpc_in_gpc) {
  RGPU_LOG_DEBUG("export table CLUSTER[4]()");
  CUdevice dev = 0;
  if (CUresult r = cuCtxGetDevice(&dev); r != CUDA_SUCCESS) return r;
  std::vector<uint8_t> gpc, tpc;
  if (CUresult r = DeviceTpcLayout(dev, &gpc, &tpc); r != CUDA_SUCCESS) {
    LogOnce(LogLevel::kInfo, "cuGetExportTable:CLUSTER[4]",
            "the GPU's TPC layout is not known to rgpu (CLUSTER[4] answers %d): cuBLASLt "
            "places thread-block clusters without it",
            static_cast<int>(r));
    return r;
  }
  if (gpc.empty() || gpc.size() != tpc.size()) {
    RGPU_LOG_WARN("CLUSTER[4]: inconsistent TPC layout (%zu GPC ids, %zu TPC indices)", gpc.size(),
                  tpc.size());
    return CUDA_ERROR_NOT_SUPPORTED;
  }
  if (gpc_of_tpc == nullptr || tpc_in_gpc == nullptr) return CUDA_ERROR_INVALID_VALUE;
  // malloc, as the driver: callers give the arrays back through [13].
  auto* a = static_cast<uint8_t*>(std::malloc(gpc.size()));
  auto* b = static_cast<uint8_t*>(std::malloc(tpc.size()));
  if (a == nullptr || b == nullptr) {
    std::free(a);
    std::free(b);
    return CUDA_ERROR_OUT_OF_MEMORY;
  }
  std::memcpy(a, gpc.data(), gpc.size());
  std::memcpy(b, tpc.data(), tpc.size());
  *gpc_of_tpc = a;
  *tpc_in_gpc = b;
  return CUDA_SUCCESS;
}

// [13](a, b) frees both (either may be null) and returns 0, exactly as the
// driver's (nvrtc and nvJitLink pass b = 0).
CUresult ClusterFreeTpcLayout(void* a, void* b) {
  RGPU_LOG_DEBUG("export table CLUSTER[13](%p, %p)", a, b);
  std::free(a);
  std::free(b);
  return CUDA_SUCCESS;
}

// [14](&out) stores 1 and returns 0, on any context or none (the driver's
// whole body; it doesn't check the pointer).
CUresult ClusterAlwaysOne(uint32_t* out) {
  RGPU_LOG_DEBUG("export table CLUSTER[14]()");
  if (out == nullptr) return CUDA_ERROR_INVALID_VALUE;
  *out = 1;
  return CUDA_SUCCESS;
}

// ---------------------------------------------------------------------------
// Building the tables (once, on first use).

template <class F>
const void* Fn(F* f) {
  return reinterpret_cast<const void*>(f);
}

template <size_t... kTable>
std::array<std::array<const void*, kMaxSlots>, kTableCount> AllUnknownSlots(
    std::index_sequence<kTable...>) {
  return {UnknownSlots<kTable>(std::make_index_sequence<kMaxSlots>{})...};
}

struct Tables {
  std::array<std::array<const void*, kMaxSlots>, kTableCount> slots;

  Tables() : slots(AllUnknownSlots(std::make_index_sequence<kTableCount>{})) {
    for (size_t t = 0; t < kTableCount; ++t) {
      const TableSpec& spec = kSpecs[t];
      if (spec.size_in_slot0) {
        slots[t][0] = reinterpret_cast<const void*>(spec.slot_count * sizeof(void*));
      }
      for (int n : spec.null_slots) {
        if (n != kNoSlot) slots[t][static_cast<size_t>(n)] = nullptr;
      }
      for (size_t i = spec.slot_count; i < kMaxSlots; ++i) slots[t][i] = nullptr;
    }
    auto& cudart = slots[kCudartInterface];
    cudart[1] = Fn(&CudartModuleFromWrapper);
    cudart[2] = Fn(&CudartPrimaryContext);
    cudart[6] = Fn(&CudartModuleFromWrapperEx);
    cudart[7] = Fn(&CudartNoOp7);
    cudart[8] = Fn(&CudartModuleFromFatbinEx);
    cudart[12] = Fn(&CudartLoadCompilers);
    slots[kToolsTls][2] = Fn(&ToolsCurrentContext);
    slots[kToolsContext][4] = Fn(&ToolsContextId);
    slots[kToolsContext][39] = Fn(&ToolsContextStreamKey);
    slots[kToolsContext][51] = Fn(&ToolsContextResolveStream);
    slots[kToolsModule][7] = Fn(&ToolsModuleEachFunction);
    slots[kRuntimeCallbackHooks][2] = Fn(&HooksBuffer2);
    slots[kRuntimeCallbackHooks][6] = Fn(&HooksBuffer6);
    auto& storage = slots[kContextLocalStorage];
    storage[0] = Fn(&StoragePut);
    storage[1] = Fn(&StorageDelete);
    storage[2] = Fn(&StorageGet);
    slots[kIntegrityCheck][1] = Fn(&IntegrityCheck);
    slots[kContextChecks][2] = Fn(&ContextCheck);
    slots[kContextChecks][3] = Fn(&ContextCheck3);
    slots[kCudartF8cff951][1] = Fn(&CudartLogMessage);
    auto& cluster = slots[kCluster];
    cluster[4] = Fn(&ClusterTpcLayout);
    cluster[13] = Fn(&ClusterFreeTpcLayout);
    cluster[14] = Fn(&ClusterAlwaysOne);
  }
};

const Tables& AllTables() {
  static const Tables* tables = new Tables;  // leaked: callers keep the pointers forever
  return *tables;
}

const void* const* TableSlots(TableId id) { return AllTables().slots[id].data(); }

int FindTableId(const CUuuid& id) {
  for (size_t t = 0; t < kTableCount; ++t) {
    if (std::memcmp(kSpecs[t].uuid, id.bytes, sizeof kSpecs[t].uuid) == 0) {
      return static_cast<int>(t);
    }
  }
  return -1;
}

}  // namespace

// Default for builds without the context code's lookup (unit tests): the
// public API only. Retain then release leaves the reference count as it was;
// the handle is stable across activations.
__attribute__((weak)) CUresult PrimaryContextHandle(CUdevice dev, CUcontext* ctx) {
  CUcontext handle = nullptr;
  CUresult r = cuDevicePrimaryCtxRetain(&handle, dev);
  if (r != CUDA_SUCCESS) return r;
  r = cuDevicePrimaryCtxRelease_v2(dev);
  if (r != CUDA_SUCCESS) return r;
  *ctx = handle;
  return CUDA_SUCCESS;
}

// Default: the public driver API can't tell the TPC layout, so answer what
// the real driver answers for a GPU without one.
__attribute__((weak)) CUresult DeviceTpcLayout(CUdevice dev, std::vector<uint8_t>* gpc_of_tpc,
                                               std::vector<uint8_t>* tpc_in_gpc) {
  (void)dev;
  (void)gpc_of_tpc;
  (void)tpc_in_gpc;
  return CUDA_ERROR_NOT_SUPPORTED;
}

void RunContextStorageDestructors(CUcontext ctx) {
  std::vector<std::pair<void*, StoredValue>> doomed;
  {
    ContextStorage& s = Storage();
    std::lock_guard<std::mutex> lock(s.mu);
    auto it = s.entries.lower_bound(std::make_pair(ctx, static_cast<void*>(nullptr)));
    while (it != s.entries.end() && it->first.first == ctx) {
      doomed.emplace_back(it->first.second, it->second);
      it = s.entries.erase(it);
    }
  }
  // Outside the lock: cudart's destructors call back into the driver.
  for (const auto& [key, stored] : doomed) {
    if (stored.dtor != nullptr) stored.dtor(ctx, key, stored.value);
  }
}

namespace {
std::atomic<PrivateTableFinder> g_private_finder{nullptr};
}  // namespace

void SetPrivateTableFinder(PrivateTableFinder finder) { g_private_finder.store(finder); }

bool FindExportTable(const CUuuid& id, ExportTableView* view) {
  if (PrivateTableFinder f = g_private_finder.load(); f != nullptr && f(id.bytes, view)) return true;
  const int t = FindTableId(id);
  if (t < 0) return false;
  view->name = kSpecs[t].name;
  view->slots = TableSlots(static_cast<TableId>(t));
  view->slot_count = kSpecs[t].slot_count;
  return true;
}

}  // namespace rgpu::client

extern "C" CUresult cuGetExportTable(const void** ppExportTable, const CUuuid* pExportTableId) {
  using namespace rgpu::client;
  if (ppExportTable == nullptr || pExportTableId == nullptr) return CUDA_ERROR_INVALID_VALUE;
  char uuid[37];
  FormatUuid(reinterpret_cast<const uint8_t*>(pExportTableId->bytes), uuid);
  ExportTableView view;
  if (FindExportTable(*pExportTableId, &view)) {
    RGPU_LOG_DEBUG("cuGetExportTable(%s) -> %s, %zu slots", uuid, view.name, view.slot_count);
    *ppExportTable = view.slots;
    return CUDA_SUCCESS;
  }
  // The real driver also answers INVALID_VALUE and a null table.
  *ppExportTable = nullptr;
  bool quiet = false;
  for (const auto& refused : kQuietlyRefused) {
    quiet |= std::memcmp(refused, pExportTableId->bytes, sizeof refused) == 0;
  }
  char key[64];
  snprintf(key, sizeof key, "cuGetExportTable:%s", uuid);
  rgpu::LogOnce(quiet ? rgpu::LogLevel::kDebug : rgpu::LogLevel::kWarn, key,
                "cuGetExportTable: unknown export table %s is not supported by rgpu", uuid);
  return CUDA_ERROR_INVALID_VALUE;
}
