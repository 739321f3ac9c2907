// Fuzzes ParseFatbin (image/image.h) and what callers do with its result:
// SelectElf / SelectPtx for the sim's cc 9.0, then ParseCubin / ParsePtx on
// the selected entry, as backend/sim's LoadImage does.
//
// The decompression limit is lowered to 64 MiB (callers use kMaxImageBytes,
// 4 GiB) so that an entry that merely claims a huge size is not reported as
// an out-of-memory crash: the claim is allowed by design, the allocation is
// what the limit bounds.
#include <cstdint>
#include <cstdio>
#include <cstdlib>

#include "image/image.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace rgpu::image;
  Bytes in(reinterpret_cast<const std::byte*>(data), size);
  ParseFatbinOptions listing;
  listing.decompress = false;
  (void)ParseFatbin(in, listing);
  ParseFatbinOptions opt;
  opt.max_uncompressed_bytes = uint64_t{64} << 20;
  rgpu::Result<std::vector<FatbinEntry>> entries = ParseFatbin(in, opt);
  if (!entries.ok()) return 0;
  for (const FatbinEntry& e : *entries) {
    if (e.compression != Compression::kNone && e.decompressed.size() != e.uncompressed_size) {
      fprintf(stderr, "fatbin_fuzzer: decompressed %zu bytes, entry says %llu\n",
              e.decompressed.size(), static_cast<unsigned long long>(e.uncompressed_size));
      abort();
    }
  }
  if (const FatbinEntry* e = SelectElf(*entries, 90)) (void)ParseCubin(e->data());
  if (const FatbinEntry* p = SelectPtx(*entries, 90)) {
    Bytes b = p->data();
    (void)ParsePtx(std::string_view(reinterpret_cast<const char*>(b.data()), b.size()));
  }
  return 0;
}
