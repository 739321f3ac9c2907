// cuGetProcAddress: which exported function the driver hands out for a name,
// a CUDA version and a flag, answered from the real driver's recorded table
// (data/driver/procaddress-580.159.txt, compiled into proc_address.gen.cc by
// client/gen/gen_exports.py).
//
// The exported entry points (cuGetProcAddress, cuGetProcAddress_v2) live in
// proc_address.cc; this header exposes the lookup for tests and for other
// client code. Everything here is read-only after load: thread-safe, no
// allocation, no driver calls, callable before cuInit.
//
// Behaviour of the real 580.159 driver that the table alone does not show,
// measured on an H200 host and mirrored here:
//   - any version above the driver's (13001 too, not just 13010) -> INVALID_VALUE,
//     with *pfn and *symbolStatus left untouched;
//   - a negative version answers as the newest one; 0..999 as 1000;
//   - flags 3 answers as 2 (the per-thread bit wins); flags >= 4 -> INVALID_VALUE;
//   - flags 0 answers as 1 whatever the process environment says (setting
//     CUDA_API_PER_THREAD_DEFAULT_STREAM=1 changes nothing): that macro only
//     switches the names a program compiles against;
//   - a name it does not export -> CUDA_SUCCESS, *pfn = NULL, SYMBOL_NOT_FOUND;
//   - the 4-argument cuGetProcAddress returns CUDA_ERROR_NOT_FOUND where _v2
//     returns CUDA_SUCCESS with a null pointer, and then leaves *pfn untouched.
// The real driver crashes on a null symbol or pfn; we return INVALID_VALUE.
#pragma once

#include <cuda.h>

#include <cstddef>
#include <cstdint>

namespace rgpu::client {

struct ProcAddressAnswer {
  CUresult result = CUDA_SUCCESS;
  // Meaningful only when `result` is CUDA_SUCCESS (the driver writes neither
  // output otherwise): the function, or null with `status` saying why.
  void* pfn = nullptr;
  CUdriverProcAddressQueryResult status = CU_GET_PROC_ADDRESS_SUCCESS;
};

// What cuGetProcAddress_v2(symbol, &pfn, version, flags, &status) answers.
// `symbol` must not be null.
ProcAddressAnswer LookupProcAddress(const char* symbol, int version, uint64_t flags);

// The generated table, for proc_address.cc and tests only.
namespace proc {

// One answer for one name, one flags value and the versions from
// `min_version` up to the next row's min_version (same name and flags) or up
// to kDriverVersion for the last row.
struct Row {
  uint16_t min_version;
  uint8_t flags;    // 0, 1 or 2, as recorded
  uint8_t status;   // CUdriverProcAddressQueryResult
  int16_t symbol;   // index into kSymbols, or -1 for "no function"
  uint16_t result;  // CUresult returned with it
};

struct Entry {
  const char* name;    // sorted by strcmp
  uint16_t first_row;  // rows sorted by flags, then min_version
  uint16_t row_count;
};

extern const int kDriverVersion;  // the newest version the table answers (13000)
extern void* const kSymbols[];
extern const char* const kSymbolNames[];
extern const size_t kSymbolCount;
extern const Row kRows[];
extern const size_t kRowCount;
extern const Entry kEntries[];
extern const size_t kEntryCount;

}  // namespace proc
}  // namespace rgpu::client
