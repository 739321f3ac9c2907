// What slot 7 of the driver's private TOOLS_MODULE export table
// (6e163fbe-b958-444d-835c-e182aff1991e) does: cuFFT calls it after
// cuModuleLoadData of a one-kernel image, as
//     int r = slot7(ctx, module, callback, user);   // r == 1 means success
// with a callback `void cb(void* user, void* value) { *(void**)user = value; }`,
// and then launches what it got. This program calls the slot the same way on
// modules with zero, one and two kernels (and on a module of a library, and
// with the current context passed as null) and prints what came back, with
// pointers named (user, fn:<kernel>, ctx, module) so that the output is the
// same on the real driver and through rgpu. Where it hands out a function,
// the function is launched and its effect checked. Exit status 0 whatever
// the slot does; 1 only when a public call fails.
#include <cuda.h>

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "check.h"

namespace {

const char* const kPtxHeader = ".version 8.0\n.target sm_90\n.address_size 64\n";

// PTX of a kernel `name(u32* out)` that stores `value` to *out.
std::string KernelPtx(const std::string& name, unsigned value) {
  return ".visible .entry " + name +
         "(.param .u64 out) {\n"
         "  .reg .u64 %rd<2>;\n  .reg .u32 %r<2>;\n"
         "  ld.param.u64 %rd0, [out];\n  cvta.to.global.u64 %rd1, %rd0;\n"
         "  mov.u32 %r0, " +
         std::to_string(value) + ";\n  st.global.u32 [%rd1], %r0;\n  ret;\n}\n";
}

const std::string kNoKernels =
    std::string(kPtxHeader) + ".visible .global .align 4 .u32 probe_global;\n";
const std::string kOneKernel = kPtxHeader + KernelPtx("k_one", 111);
const std::string kTwoKernels = kPtxHeader + KernelPtx("k_a", 222) + KernelPtx("k_b", 333);

struct Record {
  void* arg[4];
};
std::vector<Record> g_calls;

extern "C" void RecordCall(void* a0, void* a1, void* a2, void* a3) {
  g_calls.push_back(Record{{a0, a1, a2, a3}});
}

using Slot7 = int (*)(CUcontext, CUmodule, void (*)(void*, void*, void*, void*), void*);

struct Names {
  void* user;
  CUcontext ctx;
  CUmodule module;
  std::vector<std::pair<std::string, CUfunction>> functions;
};

std::string Name(void* p, const Names& n) {
  if (p == nullptr) return "0";
  if (p == n.user) return "user";
  if (p == static_cast<void*>(n.ctx)) return "ctx";
  if (p == static_cast<void*>(n.module)) return "module";
  for (const auto& [name, f] : n.functions)
    if (p == static_cast<void*>(f)) return "fn:" + name;
  auto v = reinterpret_cast<uintptr_t>(p);
  if (v < 4096) return "int:" + std::to_string(v);
  return "other";
}

// Launches `f` (one thread, one pointer argument) and returns what it wrote.
unsigned LaunchAndRead(CUfunction f) {
  CUdeviceptr out;
  CK(cuMemAlloc(&out, 4));
  CK(cuMemsetD32(out, 0, 1));
  void* args[] = {&out};
  CUresult r = cuLaunchKernel(f, 1, 1, 1, 1, 1, 1, 0, nullptr, args, nullptr);
  unsigned value = 0;
  if (r == CUDA_SUCCESS) r = cuCtxSynchronize();
  if (r == CUDA_SUCCESS) CK(cuMemcpyDtoH(&value, out, 4));
  CK(cuMemFree(out));
  if (r != CUDA_SUCCESS) {
    const char* name = nullptr;
    cuGetErrorName(r, &name);
    printf("    launch failed: %s\n", name ? name : "?");
  }
  return value;
}

void Probe(const char* label, Slot7 slot7, CUcontext pass_ctx, CUcontext ctx, CUmodule module,
           const std::vector<const char*>& kernels) {
  Names names{&g_calls, ctx, module, {}};
  for (const char* k : kernels) {
    CUfunction f;
    CK(cuModuleGetFunction(&f, module, k));
    names.functions.emplace_back(k, f);
  }
  g_calls.clear();
  int r = slot7(pass_ctx, module, RecordCall, &g_calls);
  std::vector<Record> calls = g_calls;  // launches below don't call back
  printf("%s: returns %d, callback called %zu time(s)\n", label, r, calls.size());
  for (const Record& c : calls) {
    // Two arguments: what cuFFT's callback takes (the others hold whatever
    // the registers had; measured on an H100: the context's and the user's).
    printf("    cb(%s, %s)\n", Name(c.arg[0], names).c_str(), Name(c.arg[1], names).c_str());
    if (c.arg[0] == &g_calls && c.arg[1] != nullptr && !kernels.empty()) {
      // What cuFFT does with the value: launch it as a function.
      printf("    launching the value: wrote %u\n", LaunchAndRead(static_cast<CUfunction>(c.arg[1])));
    }
  }
}

}  // namespace

int main() {
  setvbuf(stdout, nullptr, _IONBF, 0);  // a crash in the slot must not eat the output
  CUdevice dev;
  CUcontext ctx = UsePrimaryContext(&dev);

  const void* table = nullptr;
  const unsigned char kToolsModuleId[16] = {0x6e, 0x16, 0x3f, 0xbe, 0xb9, 0x58, 0x44, 0x4d,
                                            0x83, 0x5c, 0xe1, 0x82, 0xaf, 0xf1, 0x99, 0x1e};
  CUuuid kToolsModule;
  memcpy(kToolsModule.bytes, kToolsModuleId, 16);
  CUresult r = cuGetExportTable(&table, &kToolsModule);
  if (r != CUDA_SUCCESS || table == nullptr) {
    printf("TOOLS_MODULE table: not served (%d)\n", static_cast<int>(r));
    return 0;
  }
  auto slots = static_cast<void* const*>(table);
  auto size = reinterpret_cast<uintptr_t>(slots[0]);
  printf("TOOLS_MODULE table: %zu bytes\n", static_cast<size_t>(size));
  if (size < 8 * 8 || slots[7] == nullptr) {
    printf("slot 7 absent\n");
    return 0;
  }
  auto slot7 = reinterpret_cast<Slot7>(slots[7]);

  struct Case {
    const char* label;
    const std::string& ptx;
    std::vector<const char*> kernels;
  };
  const Case cases[] = {{"no kernels", kNoKernels, {}},
                        {"one kernel", kOneKernel, {"k_one"}},
                        {"two kernels", kTwoKernels, {"k_a", "k_b"}}};
  for (const Case& c : cases) {
    CUmodule m;
    CK(cuModuleLoadData(&m, c.ptx.c_str()));
    Probe(c.label, slot7, ctx, ctx, m, c.kernels);
    if (c.kernels.size() == 1) {
      Probe("one kernel, null context", slot7, nullptr, ctx, m, c.kernels);
      for (const auto& k : c.kernels) {
        CUfunction f;
        CK(cuModuleGetFunction(&f, m, k));
        printf("    %s by name wrote %u\n", k, LaunchAndRead(f));
      }
    }
    CK(cuModuleUnload(m));
  }

  CUlibrary lib;
  CK(cuLibraryLoadData(&lib, kOneKernel.c_str(), nullptr, nullptr, 0, nullptr, nullptr, 0));
  CUmodule lib_module;
  CK(cuLibraryGetModule(&lib_module, lib));
  Probe("library module, one kernel", slot7, ctx, ctx, lib_module, {"k_one"});
  CK(cuLibraryUnload(lib));

  CK(cuDevicePrimaryCtxRelease(dev));
  return 0;
}
