// What slots 51 and 39 of the driver's private TOOLS_CONTEXT export table
// (21318c60-9714-3248-8ca6-41ff7324c8f2) do. cuBLAS 13 (libcublas.so.13
// +0x2182f0, its per-stream workspace cache for reductions such as
// cublasSdot) calls, with the current context and the handle's stream:
//     slot51(ctx, stream, &x, stream == CU_STREAM_PER_THREAD)   // 0 = ok
//     slot39(ctx, x, &key)                                        // 0 = ok
// and keys its cache by `key` (and by thread for the per-thread stream).
// This program calls them the same way for a created stream, the NULL
// stream, CU_STREAM_LEGACY and CU_STREAM_PER_THREAD and prints what came
// back with values named (stream, null, legacy, per-thread, id:<stream>) so
// that the output is comparable between the real driver and rgpu. Exit
// status 0 whatever the slots do; 1 only when a public call fails.
#include <cuda.h>

#include <cstdint>
#include <cstdio>
#include <cstring>

#include "check.h"

namespace {

using Slot51 = CUresult (*)(CUcontext, CUstream, void**, int);
using Slot39 = CUresult (*)(CUcontext, void*, unsigned long long*);

struct Known {
  CUstream created;
  unsigned long long id_created, id_null, id_per_thread;
};

const char* NameId(unsigned long long id, const Known& k) {
  if (id == k.id_created) return "id:stream";
  if (id == k.id_null) return "id:null";
  if (id == k.id_per_thread) return "id:per-thread";
  return "id:other";
}

}  // namespace

int main() {
  setvbuf(stdout, nullptr, _IONBF, 0);  // a crash must not eat the output
  CUdevice dev;
  CUcontext ctx = UsePrimaryContext(&dev);
  const unsigned char kId[16] = {0x21, 0x31, 0x8c, 0x60, 0x97, 0x14, 0x32, 0x48,
                                 0x8c, 0xa6, 0x41, 0xff, 0x73, 0x24, 0xc8, 0xf2};
  CUuuid uuid;
  memcpy(uuid.bytes, kId, 16);
  const void* table = nullptr;
  CUresult r = cuGetExportTable(&table, &uuid);
  if (r != CUDA_SUCCESS || table == nullptr) {
    printf("TOOLS_CONTEXT table: not served (%d)\n", static_cast<int>(r));
    return 0;
  }
  auto slots = static_cast<void* const*>(table);
  printf("TOOLS_CONTEXT table: %zu bytes\n", static_cast<size_t>(reinterpret_cast<uintptr_t>(slots[0])));
  auto s51 = reinterpret_cast<Slot51>(slots[51]);
  auto s39 = reinterpret_cast<Slot39>(slots[39]);
  Known k{};
  CK(cuStreamCreate(&k.created, CU_STREAM_NON_BLOCKING));
  CK(cuStreamGetId(k.created, &k.id_created));
  CK(cuStreamGetId(nullptr, &k.id_null));
  CK(cuStreamGetId(CU_STREAM_PER_THREAD, &k.id_per_thread));
  struct {
    const char* name;
    CUstream stream;
  } cases[] = {{"created", k.created}, {"NULL", nullptr}, {"LEGACY", CU_STREAM_LEGACY},
               {"PER_THREAD", CU_STREAM_PER_THREAD}};
  for (const auto& c : cases) {
    void* x = reinterpret_cast<void*>(0x5a5a);
    CUresult r51 = s51(ctx, c.stream, &x, c.stream == CU_STREAM_PER_THREAD);
    unsigned long long key = 0x5a5a;
    CUresult r39 = r51 == CUDA_SUCCESS ? s39(ctx, x, &key) : CUDA_ERROR_UNKNOWN;
    // The value itself is not printed: the driver's is its own object (not
    // the CUstream: cuStreamGetId on it crashed the driver), rgpu's the
    // stream's; what callers get from it, slot 39's id, is compared.
    printf("%-10s: slot51 -> %d, value %s; slot39 -> %d, %s\n", c.name, static_cast<int>(r51),
           r51 != CUDA_SUCCESS ? "-" : x == nullptr ? "null" : "set", static_cast<int>(r39),
           r39 == CUDA_SUCCESS ? NameId(key, k) : "-");
  }
  // The per-thread flag with a created stream, and a null context.
  for (CUcontext c : {ctx, static_cast<CUcontext>(nullptr)}) {
    void* x = nullptr;
    CUresult r51 = s51(c, k.created, &x, c == ctx ? 1 : 0);
    unsigned long long key = 0;
    CUresult r39 = r51 == CUDA_SUCCESS ? s39(ctx, x, &key) : CUDA_ERROR_UNKNOWN;
    printf("created, %s: slot51 -> %d; slot39 -> %d, %s\n", c == ctx ? "flag 1" : "null ctx",
           static_cast<int>(r51), static_cast<int>(r39), r39 == CUDA_SUCCESS ? NameId(key, k) : "-");
  }
  CK(cuStreamDestroy(k.created));
  printf("OK tools_context_probe\n");
  return 0;
}
