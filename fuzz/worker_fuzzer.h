// Input format helpers for fuzz/worker_fuzzer.cc (see its header comment).
#pragma once

#include <cstdint>

namespace rgpu::fuzz {

// A device address the worker harness replaces by allocation `index` (in
// the order this session's allocation replies returned them) + `offset`.
constexpr uint64_t PointerToken(uint16_t index, uint32_t offset) {
  return (uint64_t{0xFDFD} << 48) | (uint64_t{index} << 32) | offset;
}

}  // namespace rgpu::fuzz
