#include "proto/compression.h"

#include <lz4.h>
#include <zstd.h>

#include <algorithm>
#include <chrono>
#include <cstring>

#include "proto/frame.h"

namespace rgpu::proto {

namespace {
// A block must shrink to 7/8 of its size to be sent compressed: less saves
// too little wire time to pay for the receiver's decompression.
constexpr size_t kWorthNumerator = 7, kWorthDenominator = 8;
constexpr int kZstdLevel = 1;
// Weight of the newest sample in the moving averages.
constexpr double kNewest = 0.25;
// Compress only when that is expected to take less than this share of the
// time sending the block stored would take (noise must not flip the choice
// on a link where the two are close).
constexpr double kMustSave = 0.9;

double Ns(std::chrono::steady_clock::time_point since) {
  return std::chrono::duration<double, std::nano>(std::chrono::steady_clock::now() - since).count();
}
void Average(double* avg, double sample) { *avg = *avg == 0 ? sample : *avg + kNewest * (sample - *avg); }

void PutU32(uint8_t* p, uint32_t v) {
  for (int i = 0; i < 4; ++i) p[i] = static_cast<uint8_t>(v >> (8 * i));
}
}  // namespace

const char* CodecName(Codec c) {
  switch (c) {
    case Codec::kLz4:
      return "lz4";
    case Codec::kZstd:
      return "zstd";
    case Codec::kNone:
      break;
  }
  return "off";
}

size_t MaxWireBlock(Codec c, size_t raw) {
  switch (c) {
    case Codec::kLz4:
      return static_cast<size_t>(LZ4_compressBound(static_cast<int>(raw)));
    case Codec::kZstd:
      return ZSTD_compressBound(raw);
    case Codec::kNone:
      break;
  }
  return raw;
}

Status DecodeBlock(Codec c, std::span<const uint8_t> wire, std::span<uint8_t> dst) {
  if (c == Codec::kLz4) {
    int n = LZ4_decompress_safe(reinterpret_cast<const char*>(wire.data()), reinterpret_cast<char*>(dst.data()),
                                static_cast<int>(wire.size()), static_cast<int>(dst.size()));
    if (n < 0 || static_cast<size_t>(n) != dst.size())
      return Status::Protocol("compressed block: lz4 data is corrupt or of the wrong length");
    return {};
  }
  if (c == Codec::kZstd) {
    // One-shot decompression of a single frame; checks the frame's own
    // content size against dst.
    thread_local std::unique_ptr<ZSTD_DCtx, size_t (*)(ZSTD_DCtx*)> dctx(ZSTD_createDCtx(), ZSTD_freeDCtx);
    if (dctx == nullptr) return Status::Internal("zstd: cannot create a decompression context");
    size_t n = ZSTD_decompressDCtx(dctx.get(), dst.data(), dst.size(), wire.data(), wire.size());
    if (ZSTD_isError(n) || n != dst.size())
      return Status::Protocol("compressed block: zstd data is corrupt or of the wrong length");
    return {};
  }
  return Status::Protocol("compressed block: no codec agreed");
}

BlockEncoder::BlockEncoder(Codec codec) : codec_(codec) {
  if (codec == Codec::kZstd) zstd_ = ZSTD_createCCtx();
}

BlockEncoder::~BlockEncoder() {
  if (zstd_ != nullptr) ZSTD_freeCCtx(static_cast<ZSTD_CCtx*>(zstd_));
}

size_t BlockEncoder::Compress(std::span<const uint8_t> raw) {
  const size_t limit = raw.size() * kWorthNumerator / kWorthDenominator;
  // Made at the first attempt: a link that never compresses (every worker
  // has an encoder) holds no scratch buffer.
  if (out_.empty()) out_.resize(kBlockHeaderSize + MaxWireBlock(codec_, kMaxBlock));
  uint8_t* dst = out_.data() + kBlockHeaderSize;
  size_t n = 0;
  if (codec_ == Codec::kLz4) {
    // Capacity `limit`: lz4 gives up as soon as the output would not fit,
    // which makes an incompressible block cheap to reject.
    int r = LZ4_compress_default(reinterpret_cast<const char*>(raw.data()), reinterpret_cast<char*>(dst),
                                 static_cast<int>(raw.size()), static_cast<int>(limit));
    n = r > 0 ? static_cast<size_t>(r) : 0;
  } else if (codec_ == Codec::kZstd && zstd_ != nullptr) {
    size_t r = ZSTD_compressCCtx(static_cast<ZSTD_CCtx*>(zstd_), dst, limit, raw.data(), raw.size(), kZstdLevel);
    n = ZSTD_isError(r) ? 0 : r;
  }
  return n > 0 && n <= limit ? n : 0;
}

bool CompressionPolicy::Decide() {
  if (skip_ > 0) {
    --skip_;
    return false;
  }
  // A figure for each way first: stored, then compressed.
  if (stored_ns_per_byte_ == 0) return false;
  if (compressed_ns_per_byte_ == 0) return true;
  const bool compress = compressed_ns_per_byte_ < kMustSave * stored_ns_per_byte_;
  if (compress != compressing_) {  // the figures changed their minds: probe soon again
    compressing_ = compress;
    probe_every_ = kProbeEvery;
    since_probe_ = 0;
  }
  if (++since_probe_ < probe_every_) return compress;
  since_probe_ = 0;
  probe_every_ = std::min(2 * probe_every_, kMaxProbeEvery);
  return !compress;  // the probe
}

void CompressionPolicy::Record(bool compressed, double ns_per_byte) {
  Average(compressed ? &compressed_ns_per_byte_ : &stored_ns_per_byte_, ns_per_byte);
}

Status BlockEncoder::WriteBlock(std::span<const uint8_t> raw, bool try_compress, const WriteFn& write) {
  const auto t0 = std::chrono::steady_clock::now();
  const bool tried = try_compress && codec_ != Codec::kNone && (always_try_ || policy_.Decide());
  size_t wire = 0;
  if (tried) {
    wire = Compress(raw);
    if (wire == 0) policy_.Incompressible();
  }
  Status st = WriteBlockAs(raw, wire, write);
  // Only data blocks teach the averages (the small fields block would
  // mostly measure the system call).
  if (try_compress && st.ok()) policy_.Record(tried, Ns(t0) / static_cast<double>(raw.size()));
  return st;
}

Status BlockEncoder::WriteBlockAs(std::span<const uint8_t> raw, size_t wire, const WriteFn& write) {
  uint8_t stored_head[kBlockHeaderSize];
  uint8_t* head = wire > 0 ? out_.data() : stored_head;  // compressed data follows its header in out_
  head[0] = static_cast<uint8_t>(wire > 0 ? codec_ : Codec::kNone);
  PutU32(head + 1, static_cast<uint32_t>(raw.size()));
  PutU32(head + 5, static_cast<uint32_t>(wire > 0 ? wire : raw.size()));
  raw_bytes_ += raw.size();
  if (wire > 0) {
    wire_bytes_ += kBlockHeaderSize + wire;
    return write(out_.data(), kBlockHeaderSize + wire);
  }
  wire_bytes_ += kBlockHeaderSize + raw.size();
  RGPU_RETURN_IF_ERROR(write(head, kBlockHeaderSize));
  return write(raw.data(), raw.size());
}

Status BlockEncoder::WriteFrame(uint16_t call, uint16_t flags, uint64_t request_id,
                                std::span<const uint8_t> fields, std::span<const uint8_t> bulk,
                                const WriteFn& write, const ReadyFn& ready) {
  uint8_t header[kFrameHeaderSize];
  EncodeFrameHeader({static_cast<uint32_t>(fields.size() + bulk.size()), call,
                     static_cast<uint16_t>(flags | kCompressed), request_id},
                    header);
  RGPU_RETURN_IF_ERROR(write(header, sizeof header));
  if (!fields.empty()) RGPU_RETURN_IF_ERROR(WriteBlock(fields, false, write));
  Status late;  // ready's failure, returned once the frame is complete
  for (size_t at = 0; at < bulk.size(); at += kMaxBlock) {
    size_t n = std::min(kMaxBlock, bulk.size() - at);
    if (ready && late.ok()) late = ready(at + n);
    // Data that failed to arrive is garbage: store it rather than spend
    // time compressing it.
    RGPU_RETURN_IF_ERROR(WriteBlock(bulk.subspan(at, n), late.ok(), write));
  }
  return late;
}

Result<uint8_t> ParseCompressOffer(const std::string& value, bool server_is_loopback) {
  if (value.empty() || value == "auto") return server_is_loopback ? uint8_t{0} : CodecBit(Codec::kLz4);
  if (value == "off" || value == "0" || value == "none") return uint8_t{0};
  if (value == "lz4") return CodecBit(Codec::kLz4);
  if (value == "zstd") return CodecBit(Codec::kZstd);
  return Status::Invalid("RGPU_COMPRESS=" + value + ": expected off, lz4, zstd or auto");
}

Codec PickCodec(uint8_t offer, bool allowed) {
  if (!allowed) return Codec::kNone;
  if (offer & CodecBit(Codec::kLz4)) return Codec::kLz4;
  if (offer & CodecBit(Codec::kZstd)) return Codec::kZstd;
  return Codec::kNone;
}

}  // namespace rgpu::proto
