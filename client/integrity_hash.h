// The hash behind the INTEGRITY_CHECK export table (d4082055-bde6-704b-8d34-ba123c66e1f2).
//
// cudart calls INTEGRITY_CHECK[1](version, unix_seconds, uint64_t out[2]) while
// it initialises and compares the answer with what it computes itself, so the
// client must produce the real driver's value bit for bit. Reverse engineering
// (ZLUDA, dark_api/src/lib.rs) shows it is HMAC-MD2 (RFC 1319 MD2, 16-byte
// blocks, RFC 2104 HMAC) with a fixed 16-byte key over:
//   - a 48-byte record: driver version, the caller's version, pid, thread id
//     (low 32 bits of pthread_self()), the addresses of the CUDART_INTERFACE
//     table, of the INTEGRITY_CHECK table and of its slot 1, and unix_seconds;
//   - then, per device, 28 bytes: UUID, PCI domain, bus and device ids.
// Callers whose version % 10 is 0 or 1 get one of two constants instead.
//
// Everything here is pure computation: no driver calls, no allocation, no
// failure modes. Thread-safe (no shared state).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>

namespace rgpu::client {

// MD2 (RFC 1319), exposed byte by byte because the INTEGRITY_CHECK unit-test
// vectors published with ZLUDA check the raw 66-byte state after each stage.
// State layout, kept identical to that reference so the vectors apply:
//   [0,48)  MD2's X buffer (digest in [0,16), block in [16,32), block^digest in [32,48))
//   [48,64) checksum C, [64] bytes in the current block, [65] last checksum byte L.
class Md2 {
 public:
  static constexpr size_t kStateSize = 66;
  using State = std::array<uint8_t, kStateSize>;

  Md2() { state_.fill(0); }
  explicit Md2(const State& state) : state_(state) {}

  // Feeds `size` bytes, each XORed with `xor_mask` first (HMAC's ipad/opad).
  void Update(const void* data, size_t size, uint8_t xor_mask = 0);
  void UpdateByte(uint8_t byte);
  // Pads, appends the checksum and returns the 16-byte digest (also left in
  // state()[0..16)). The object must not be updated afterwards.
  std::array<uint8_t, 16> Finish();

  const State& state() const { return state_; }

 private:
  State state_;
};

// The 48-byte record hashed first. Field order and widths are the driver's;
// pointers are hashed as their 8 address bytes (x86-64, little-endian).
struct IntegrityRecord {
  uint32_t driver_version;  // what cuDriverGetVersion reports (13000 for 580.x)
  uint32_t version;         // the caller's first argument
  uint32_t process;         // getpid()
  uint32_t thread;          // (uint32_t)pthread_self()
  const void* cudart_table;     // CUDART_INTERFACE table as returned by cuGetExportTable
  const void* integrity_table;  // INTEGRITY_CHECK table as returned by cuGetExportTable
  const void* check_function;   // INTEGRITY_CHECK slot 1
  uint64_t unix_seconds;        // the caller's second argument
};
static_assert(sizeof(IntegrityRecord) == 48, "hashed byte for byte: no padding allowed");

// One device's contribution, hashed byte for byte (28 bytes, no padding).
struct IntegrityDevice {
  uint8_t uuid[16];  // cuDeviceGetUuid_v2
  int32_t pci_domain;
  int32_t pci_bus;
  int32_t pci_device;
};
static_assert(sizeof(IntegrityDevice) == 28, "hashed byte for byte: no padding allowed");

// The answer INTEGRITY_CHECK[1] writes to its out[2].
std::array<uint64_t, 2> IntegrityHash(const IntegrityRecord& record,
                                      std::span<const IntegrityDevice> devices);

}  // namespace rgpu::client
