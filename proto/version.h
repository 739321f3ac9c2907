// The protocol version both sides announce in the handshake. Bump it when
// proto/calls.spec, the frame layout or the handshake change incompatibly.
#pragma once

#include <cstdint>

namespace rgpu::proto {
constexpr uint32_t kProtocolVersion = 3;  // 3: compressed bulk frames (codec in the handshake)
// First bytes of every Hello: lets a server tell rgpu from a stray client.
constexpr uint32_t kHelloMagic = 0x55504752;  // "RGPU" little-endian
}  // namespace rgpu::proto
