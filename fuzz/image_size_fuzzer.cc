// Fuzzes ImageSize / DetectImageKind (image/image.h) with a limit: the
// bounded form, for images whose length is known (a buffer from the network).
// Nothing may be read outside [data, data + size); a size that is returned
// must fit in the limit.
#include <cstdint>
#include <cstdio>
#include <cstdlib>

#include "image/image.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace rgpu::image;
  (void)DetectImageKind(data, size);
  rgpu::Result<uint64_t> n = ImageSize(data, size);
  if (n.ok() && (*n == 0 || *n > size)) {
    fprintf(stderr, "image_size_fuzzer: size %llu outside (0, %zu]\n",
            static_cast<unsigned long long>(*n), size);
    abort();
  }
  return 0;
}
