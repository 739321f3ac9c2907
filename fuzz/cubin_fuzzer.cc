// Fuzzes ParseCubin (image/image.h): ELF header, sections, symbols, the
// .nv.info EIATTR records and module globals. Also ImageSize on the same
// bytes (the ELF extent walk) and the lookups callers make afterwards.
#include <cstdint>
#include <cstdio>
#include <cstdlib>

#include "image/image.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace rgpu::image;
  (void)ImageSize(data, size);
  rgpu::Result<ModuleInfo> info = ParseCubin(Bytes(reinterpret_cast<const std::byte*>(data), size));
  if (!info.ok()) return 0;
  for (const KernelInfo& k : info->kernels) {
    if (info->FindKernel(k.name) == nullptr) abort();
  }
  for (const GlobalInfo& g : info->globals) {
    if (g.init.size() > g.size && g.size != 0) {
      fprintf(stderr, "cubin_fuzzer: global %s: %zu init bytes > size %llu\n", g.name.c_str(),
              g.init.size(), static_cast<unsigned long long>(g.size));
      abort();
    }
    (void)info->FindGlobal(g.name);
  }
  return 0;
}
