// cuGetProcAddress and cuGetProcAddress_v2: the driver's own function lookup,
// which cudart (static or shared) uses for every driver call it makes. The
// answers come from the recorded table (proc_address.gen.cc); the edge cases
// the table does not cover are documented in proc_address.h.
#include "client/proc_address.h"

#include <cstring>

#include "common/log.h"

namespace rgpu::client {
namespace {

using proc::Entry;
using proc::Row;

constexpr int kOldestRecordedVersion = 1000;

const Entry* FindEntry(const char* symbol) {
  size_t lo = 0, hi = proc::kEntryCount;
  while (lo < hi) {
    const size_t mid = lo + (hi - lo) / 2;
    const int c = std::strcmp(proc::kEntries[mid].name, symbol);
    if (c == 0) return &proc::kEntries[mid];
    if (c < 0) {
      lo = mid + 1;
    } else {
      hi = mid;
    }
  }
  return nullptr;
}

// Flags as the driver reads them: the per-thread bit wins over the legacy bit
// (3 answers as 2). Returns -1 for flags it rejects.
int RecordedFlags(uint64_t flags) {
  if (flags > 3) return -1;
  if (flags & CU_GET_PROC_ADDRESS_PER_THREAD_DEFAULT_STREAM) return 2;
  return static_cast<int>(flags);
}

}  // namespace

ProcAddressAnswer LookupProcAddress(const char* symbol, int version, uint64_t flags) {
  ProcAddressAnswer answer;
  const int recorded_flags = RecordedFlags(flags);
  if (recorded_flags < 0 || version > proc::kDriverVersion) {
    answer.result = CUDA_ERROR_INVALID_VALUE;
    return answer;
  }
  // The real driver reads a negative version as the newest and anything older
  // than CUDA 1.0 as 1.0 (where nothing is available yet).
  if (version < 0) version = proc::kDriverVersion;
  if (version < kOldestRecordedVersion) version = kOldestRecordedVersion;

  const Entry* entry = FindEntry(symbol);
  if (entry == nullptr) {
    answer.status = CU_GET_PROC_ADDRESS_SYMBOL_NOT_FOUND;
    return answer;
  }
  const Row* match = nullptr;
  for (size_t i = entry->first_row; i < entry->first_row + entry->row_count; ++i) {
    const Row& row = proc::kRows[i];
    if (row.flags == recorded_flags && row.min_version <= version) match = &row;
  }
  if (match == nullptr) {  // the generator guarantees a row from 1000 for each flags value
    RGPU_LOG_ERROR("cuGetProcAddress: no recorded answer for %s version %d flags %d", symbol,
                   version, recorded_flags);
    answer.result = CUDA_ERROR_UNKNOWN;
    return answer;
  }
  answer.result = static_cast<CUresult>(match->result);
  answer.status = static_cast<CUdriverProcAddressQueryResult>(match->status);
  answer.pfn = match->symbol >= 0 ? proc::kSymbols[match->symbol] : nullptr;
  return answer;
}

}  // namespace rgpu::client

// The exported entry points. Default visibility comes from cuda.h's
// declarations (__CUDA_API_PUSH_VISIBILITY_DEFAULT, set by CMake).

extern "C" CUresult cuGetProcAddress_v2(const char* symbol, void** pfn, int cudaVersion,
                                        cuuint64_t flags,
                                        CUdriverProcAddressQueryResult* symbolStatus) {
  if (symbol == nullptr || pfn == nullptr) return CUDA_ERROR_INVALID_VALUE;
  const rgpu::client::ProcAddressAnswer answer =
      rgpu::client::LookupProcAddress(symbol, cudaVersion, flags);
  RGPU_LOG_DEBUG("cuGetProcAddress_v2(%s, %d, %llu) -> %d status %d %s", symbol, cudaVersion,
                 static_cast<unsigned long long>(flags), answer.result, answer.status,
                 answer.pfn ? "found" : "null");
  if (answer.result != CUDA_SUCCESS) return answer.result;  // outputs untouched, as the driver
  *pfn = answer.pfn;
  if (symbolStatus != nullptr) *symbolStatus = answer.status;
  return CUDA_SUCCESS;
}

// The CUDA 11.3-11.8 entry point (no symbolStatus). Unlike _v2 it reports a
// missing or too new function as CUDA_ERROR_NOT_FOUND and leaves *pfn alone.
extern "C" CUresult cuGetProcAddress(const char* symbol, void** pfn, int cudaVersion,
                                     cuuint64_t flags) {
  if (symbol == nullptr || pfn == nullptr) return CUDA_ERROR_INVALID_VALUE;
  const rgpu::client::ProcAddressAnswer answer =
      rgpu::client::LookupProcAddress(symbol, cudaVersion, flags);
  RGPU_LOG_DEBUG("cuGetProcAddress(%s, %d, %llu) -> %d status %d", symbol, cudaVersion,
                 static_cast<unsigned long long>(flags), answer.result, answer.status);
  if (answer.result != CUDA_SUCCESS) return answer.result;
  if (answer.pfn == nullptr) return CUDA_ERROR_NOT_FOUND;
  *pfn = answer.pfn;
  return CUDA_SUCCESS;
}
