// Fuzzes every generated message decoder (proto/calls.gen.h, requests and
// replies: the worker decodes the first from the network, the client the
// second).
//
// Input: u16 little-endian selector, then the payload. The selector modulo
// kFuzzedMessageCount picks the message (see calls_fuzzer.h), so every input
// reaches some decoder. Oracle: ASan/UBSan, plus a successful decode must
// re-encode to the same bytes (DecodeOne aborts otherwise).
#include <cstddef>
#include <cstdint>

#include "fuzz/calls_fuzzer.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  unsigned selector = data[0] | (unsigned{data[1]} << 8);
  rgpu::fuzz::DecodeOne(static_cast<int>(selector % rgpu::fuzz::kFuzzedMessageCount),
                        std::span<const uint8_t>(data + 2, size - 2));
  return 0;
}
