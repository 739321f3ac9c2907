// cuGetExportTable: the driver's private interfaces ("dark API"), tables of
// function pointers keyed by UUID that cudart, cuBLAS, cuDNN and tools ask for.
// Function pointers can't be forwarded over a socket, so the client implements
// them itself, on top of its own public driver functions.
//
// What we serve, with sizes and null slots exactly as the real 580.159 driver
// (measured on an H200 host; slot 0 holds the table's size in bytes, except in
// CONTEXT_LOCAL_STORAGE, whose slot 3 is the driver's null terminator):
//   6bd5fb6c CUDART_INTERFACE    13 slots  [1][6][8] module from fatbin, [2] primary ctx,
//                                          [7] no-op, [12] load compilers (no-op); [10] null
//   42d85a81 TOOLS_TLS            3 slots  [2] current context
//   a094798c RUNTIME_CALLBACK_HOOKS 7 slots [2][6] hand out static buffers
//   c693336e CONTEXT_LOCAL_STORAGE 4 slots [0] put [1] delete [2] get, [3] null
//   d4082055 INTEGRITY_CHECK      3 slots  [1] the hash (integrity_hash.h)
//   263e8860 CONTEXT_CHECKS      15 slots  [2] context check, [3] returns 0
//   f8cff951 (cudart, first ask)  3 slots
//   0ca50b8c CTX_CREATE_BYPASS    2 slots
//   b10541e1 DEVICE_EXTENDED_RT  31 slots  [30] null
//   21318c60 TOOLS_CONTEXT       93 slots  [4] context id (cuCtxGetId); [91] null
//   69a28e9f NVML_PRIVATE        34 slots  (only the real libnvidia-ml calls it)
//   6e163fbe TOOLS_MODULE        99 slots  [7] each function of a module, [93] null
//   bfdb432d TOOLS_MEMORY        60 slots
//   a6b1ff99 TOOLS_PUSHBUFFER    32 slots
//   1734dc26 CLUSTER             17 slots  [4] TPC layout (DeviceTpcLayout), [13] frees it,
//                                          [14] stores 1
// Measured with the real driver and a tracing shim: cudart 13.0 (static and
// shared) calls, in order, CUDART_INTERFACE[2] per device, HOOKS[2], HOOKS[6],
// CONTEXT_CHECKS[3], INTEGRITY_CHECK[1] (versions 13000, 13001, 13002), then
// per API call CONTEXT_LOCAL_STORAGE[2]/[0]/[1] and CONTEXT_CHECKS[2];
// cuBLASLt calls TOOLS_TLS[2] and TOOLS_CONTEXT[4], and for bf16/fp16 matmuls
// CLUSTER[4] then CLUSTER[13] (once per configuration it caches). PyTorch 2.11 calls
// nothing else, apart from the real NVML's use of 69a28e9f. cuFFT 12 (CUDA
// 13.0) calls TOOLS_CONTEXT[4] and TOOLS_MODULE[7] when it makes a plan.
//
// Every other slot points to a function that logs "<table>[<slot>] is not
// supported by rgpu" once and returns CUDA_ERROR_NOT_SUPPORTED: nothing a caller
// can reach is null unless the real driver's slot is null too.
//
// An unknown UUID (the real driver refuses some, e.g. 195bcbf4 HEAP_ACCESS)
// gets CUDA_ERROR_INVALID_VALUE with *ppExportTable = NULL, and a log line once.
//
// Thread-safety: tables are immutable once built (on first use, thread-safe);
// context-local storage is guarded by its own mutex. Nothing here opens a
// connection by itself; the slots call the client's public driver functions,
// which may.
#pragma once

#include <cuda.h>

#include <cstddef>
#include <cstdint>
#include <vector>

namespace rgpu::client {

// Runs, then forgets, every CONTEXT_LOCAL_STORAGE destructor registered for
// `ctx` (cudart keeps its per-context state there). The context code must
// call it when the real driver would (measured for the first):
// cuDevicePrimaryCtxReset, and cuCtxDestroy. Destructors are
// called as dtor(ctx, key, value) without any lock held, so they may call back
// into the driver. A plain delete (slot 1) never runs a destructor, as in the
// real driver. Thread-safe.
void RunContextStorageDestructors(CUcontext ctx);

// CUDART_INTERFACE[2] answers with this: the handle of `dev`'s primary
// context, WITHOUT retaining or activating it (the real driver leaves it
// inactive; cudart then calls cuCtxSetCurrent on it, then
// cuDevicePrimaryCtxRetain). The default (weak) definition can only use the
// public API: cuDevicePrimaryCtxRetain then cuDevicePrimaryCtxRelease_v2,
// which activates the context, a round trip and GPU memory on every device
// at cudart init. The context code should override it with a strong
// definition that looks the handle up locally. Errors: CUDA_ERROR_INVALID_DEVICE
// for a bad ordinal, or whatever the lookup returns. `ctx` is never null.
CUresult PrimaryContextHandle(CUdevice dev, CUcontext* ctx);

// CLUSTER[4] answers with this: `dev`'s TPC layout as the GPU host's driver
// reports it, one entry per TPC in the driver's order: the group (GPC) each
// TPC belongs to, and the TPC's index within it. Measured on an H200 (132
// SMs, 66 TPCs): GPC ids 0..7 holding 4, 8, 8, 8, 8, 8, 9, 9 TPCs, then four
// TPCs alone in groups 11, 14, 17, 19 (index 0). It differs from chip to chip
// (floorsweeping) and the public driver API can't reveal it, so the default
// (weak) definition returns CUDA_ERROR_NOT_SUPPORTED: what the real driver
// answers for a GPU without a layout, and what cuBLASLt handles by placing
// clusters in plain order (measured: identical matmul results).
// A strong definition that gets the arrays from the GPU host (its driver's
// CLUSTER[4]) makes the slot answer them; both must have the same, non-zero
// length, the driver's TPC count (cuBLASLt reads as many entries as it
// expects TPCs, without asking the length).
CUresult DeviceTpcLayout(CUdevice dev, std::vector<uint8_t>* gpc_of_tpc,
                         std::vector<uint8_t>* tpc_in_gpc);

// For tests and diagnostics: the table served for `id`, its slot count and
// name, or nullptr if the UUID is unknown.
struct ExportTableView {
  const char* name;
  const void* const* slots;
  size_t slot_count;
};
bool FindExportTable(const CUuuid& id, ExportTableView* view);

// rgpu-private tables (the NVML bridge) live in files the unit tests of this
// one do not link; they register a finder here when the library loads.
using PrivateTableFinder = bool (*)(const void* uuid, ExportTableView* view);
void SetPrivateTableFinder(PrivateTableFinder finder);

}  // namespace rgpu::client
