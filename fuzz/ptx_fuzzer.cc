// Fuzzes ParsePtx (image/image.h): .entry parameter lists and alignment,
// kernel directives and module-scope variables with initialisers.
#include <cstdint>
#include <string_view>

#include "image/image.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace rgpu::image;
  std::string_view text(reinterpret_cast<const char*>(data), size);
  rgpu::Result<ModuleInfo> info = ParsePtx(text);
  if (info.ok()) {
    for (const KernelInfo& k : info->kernels) (void)info->FindKernel(k.name);
  }
  return 0;
}
