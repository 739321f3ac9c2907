// Optional compression of bulk copy data on the wire (lz4 or zstd).
//
// Only large frames are compressed: a host-to-device copy's data and a
// device-to-host copy's reply data (DESIGN.md rule 5). Both sides agree on
// one codec in the handshake (the client offers, the server picks); with
// none, no frame is ever compressed and a compressed frame is refused.
//
// A compressed frame has the kCompressed flag, and its header's length is
// the payload's length *before* compression (what the receiver's code reads,
// unchanged). Its payload on the wire is a sequence of blocks, each
//
//   u8 method (0 stored, 1 lz4, 2 zstd) | u32 raw_length | u32 wire_length | bytes
//
// whose raw lengths add up to the header's length. A block holds at most
// kMaxBlock bytes once decoded. Blocks make the stream pipelined (a 64 MiB
// copy is compressed, sent and decompressed a block at a time, on both sides
// at once), bound the receiver's scratch memory, and let the sender store a
// block raw when compressing it would not pay.
//
// Whether it pays is decided per block, per link (BlockEncoder), from what
// it measures as it goes:
//  - the data: a block that compresses to more than 7/8 of its size is sent
//    stored, and the next few blocks are then not even tried (random or
//    already-compressed data costs one attempt now and then);
//  - the link: the time a block costs per raw byte, stored (how long its
//    write blocks) against compressed (compressing plus its write), as
//    moving averages of what the last blocks of each kind cost. Write
//    times include the receiver's side: a peer busy decompressing drains
//    its socket later. On loopback or a fast network storing is cheaper,
//    on a slow link compressing is. One block goes the other way now and
//    then to keep both figures current: after kProbeEvery blocks, and
//    twice as long after each probe that left the choice as it was (up to
//    kMaxProbeEvery), so that the losing way costs little once it is clear
//    (a compressed probe on a 10 Gbit/s link costs about a block's time).
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "common/status.h"

namespace rgpu::proto {

enum class Codec : uint8_t { kNone = 0, kLz4 = 1, kZstd = 2 };

// Bit (1 << codec) of a handshake offer.
constexpr uint8_t CodecBit(Codec c) { return static_cast<uint8_t>(1u << static_cast<uint8_t>(c)); }
constexpr uint8_t kKnownCodecBits = CodecBit(Codec::kLz4) | CodecBit(Codec::kZstd);

const char* CodecName(Codec c);  // "off", "lz4", "zstd"

constexpr size_t kMaxBlock = 1u << 20;
constexpr size_t kBlockHeaderSize = 9;
// Frames with less bulk data than this go out plain: compressing a small
// copy would add latency to save a few microseconds of wire time.
constexpr size_t kMinCompressedBulk = 64u << 10;

// The most wire bytes a block of `raw` bytes may take (refuse more).
size_t MaxWireBlock(Codec c, size_t raw);

// Decompresses one block. Fails (kProtocol) unless exactly dst.size()
// bytes come out of exactly `wire`.
Status DecodeBlock(Codec c, std::span<const uint8_t> wire, std::span<uint8_t> dst);

// Writes bytes to the link; returns non-OK when the link failed.
using WriteFn = std::function<Status(const uint8_t* p, size_t n)>;
// Before bulk bytes [.., upto) are read: blocks until they are there (data
// still arriving from the GPU; see server/worker/d2h_staging.h).
using ReadyFn = std::function<Status(size_t upto)>;

// Decides block by block whether to try compressing (the rules above),
// from the costs it is told. Pure bookkeeping: no clock, no codec.
class CompressionPolicy {
 public:
  static constexpr int kProbeEvery = 8;
  static constexpr int kMaxProbeEvery = 128;
  static constexpr int kSkipAfterMiss = 8;

  // True: compress the next block (or at least try).
  bool Decide();
  // What the block just sent cost, per raw byte, and which way it went.
  void Record(bool compressed, double ns_per_byte);
  // The block tried did not shrink enough: store the next few untried.
  void Incompressible() { skip_ = kSkipAfterMiss; }

 private:
  int skip_ = 0;          // blocks still to store without trying
  int since_probe_ = 0;   // blocks sent the cheaper way since the last probe
  int probe_every_ = kProbeEvery;
  bool compressing_ = false;  // the cheaper way, as last decided
  // Moving averages (0: no sample yet): nanoseconds per raw byte of blocks
  // sent stored, and of blocks that were compressed (or tried).
  double stored_ns_per_byte_ = 0, compressed_ns_per_byte_ = 0;
};

// Encodes frames as compressed blocks. One per link sender; not
// thread-safe (callers hold their link's write lock).
class BlockEncoder {
 public:
  explicit BlockEncoder(Codec codec);
  ~BlockEncoder();
  BlockEncoder(const BlockEncoder&) = delete;
  BlockEncoder& operator=(const BlockEncoder&) = delete;

  Codec codec() const { return codec_; }
  // Tests: try every block, whatever it costs (blocks that do not shrink
  // still go stored), so that what goes compressed does not depend on
  // timing.
  void set_always_try(bool on) { always_try_ = on; }

  // Writes one frame: header `h` (its length must be fields + bulk; the
  // kCompressed flag is added), `fields` as a stored block, then `bulk` in
  // compressed or stored blocks. With `ready`, bulk bytes are read only
  // once ready says they are there; if ready fails, the rest of the frame is
  // still written (the stream must stay framed, the receiver discards it)
  // and ready's error is returned (a transport failure is returned as such).
  Status WriteFrame(uint16_t call, uint16_t flags, uint64_t request_id, std::span<const uint8_t> fields,
                    std::span<const uint8_t> bulk, const WriteFn& write, const ReadyFn& ready = nullptr);

  // Bytes given and bytes written since construction (tests, stats).
  uint64_t raw_bytes() const { return raw_bytes_; }
  uint64_t wire_bytes() const { return wire_bytes_; }

 private:
  // Compresses `raw` into out_ (after the block header); returns the wire
  // length, or 0 when the block should be stored.
  size_t Compress(std::span<const uint8_t> raw);
  Status WriteBlock(std::span<const uint8_t> raw, bool try_compress, const WriteFn& write);
  // Writes the block header and data: compressed (wire bytes in out_) or,
  // with wire == 0, stored.
  Status WriteBlockAs(std::span<const uint8_t> raw, size_t wire, const WriteFn& write);

  const Codec codec_;
  std::vector<uint8_t> out_;  // a compressed block: header, then data (made when first needed)
  void* zstd_ = nullptr;  // ZSTD_CCtx*, reused across blocks
  CompressionPolicy policy_;
  bool always_try_ = false;
  uint64_t raw_bytes_ = 0, wire_bytes_ = 0;
};

// Parses RGPU_COMPRESS (off | lz4 | zstd | auto) into the codec bits a
// client offers. `auto` (and empty) offers lz4 unless the server is on a
// loopback address, where copies run at memory speed and compression only
// costs. Fails on any other word.
Result<uint8_t> ParseCompressOffer(const std::string& value, bool server_is_loopback);

// The server's pick from a client's offer: lz4 before zstd; none when the
// server does not allow compression or nothing offered is known.
Codec PickCodec(uint8_t offer, bool allowed);

}  // namespace rgpu::proto
