// The generated part of calls_fuzzer (calls_fuzzer.gen.cc, written by
// gen_calls_fuzzer.py from the build's proto/calls.gen.h): one entry per
// message of proto/calls.spec, requests and replies.
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <vector>

namespace rgpu::fuzz {

// Number of messages: 2 * kCallCount (index 2i = kCalls[i]'s request,
// 2i + 1 = its reply).
extern const int kFuzzedMessageCount;

// Decodes `payload` as message `index` (0 <= index < kFuzzedMessageCount).
// A successful decode must re-encode to exactly `payload`; abort() if not.
void DecodeOne(int index, std::span<const uint8_t> payload);
// "MemAllocReq", ... ("?" out of range).
const char* MessageName(int index);

// Valid encodings of every message (a default one and a filled-in one),
// for the seed corpus: fn(index, name, payload).
void ForEachSeed(
    const std::function<void(int, const std::string&, const std::vector<uint8_t>&)>& fn);

// The calls_fuzzer input for message `index`: u16 little-endian selector,
// then the payload.
inline std::vector<uint8_t> CallsFuzzerInput(int index, const std::vector<uint8_t>& payload) {
  std::vector<uint8_t> in = {static_cast<uint8_t>(index), static_cast<uint8_t>(index >> 8)};
  in.insert(in.end(), payload.begin(), payload.end());
  return in;
}

}  // namespace rgpu::fuzz
