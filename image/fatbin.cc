// Fatbin parsing, decompression and entry selection. See image.h.
//
// Entry header, as written by nvcc/fatbinary 13.0 (all little-endian):
//   +0  u16 kind (1 PTX, 2 ELF)      +2  u16 format version (0x0101)
//   +4  u32 header_size (64; 80 for PTX: extra fields follow)
//   +8  u64 payload size (padded to 8 bytes)
//   +16 u32 compressed size (exact; 0 when not compressed)
//   +20 u32 (PTX: offset of the options field)   +24 u16, u16 (versions)
//   +28 u32 arch (sm / compute number, 90)       +32 u32, u32 (name offset, length)
//   +40 u64 flags (0x2000 LZ4, 0x8000 Zstd, 0x10 / 0x1: host / 64-bit)
//   +48 u64 (0)                                  +56 u64 uncompressed size
// CUDA 13's default compresses PTX entries only (Zstd); -Xfatbin -compress-all
// compresses ELF entries too; -compress-mode=speed selects LZ4. LZ4 payloads are
// raw LZ4 blocks (no frame); Zstd payloads are one Zstd frame.
#include <lz4.h>
#include <zstd.h>

#include <algorithm>
#include <string>

#include "image/byte_view.h"
#include "image/elf_format.h"
#include "image/image.h"

namespace rgpu::image {
namespace {

Status Bad(std::string what) { return Status::Invalid("image: fatbin: " + std::move(what)); }

constexpr uint32_t kMinEntryHeader = 64;

// `budget`: uncompressed bytes still allowed (ParseFatbinOptions limit, for
// all entries together).
Status ParseEntries(const ByteView& v, uint64_t begin, uint64_t end, const ParseFatbinOptions& opt,
                    uint64_t* budget, std::vector<FatbinEntry>* out) {
  uint64_t p = begin;
  while (p < end) {
    if (end - p < kMinEntryHeader) {
      return Bad("entry header at " + std::to_string(p) + " truncated");
    }
    uint16_t kind = 0;
    uint32_t header_size = 0, compressed_size = 0, arch = 0;
    uint64_t size = 0, flags = 0, uncompressed = 0;
    v.Read(p + 0, &kind);
    v.Read(p + 4, &header_size);
    v.Read(p + 8, &size);
    v.Read(p + 16, &compressed_size);
    v.Read(p + 28, &arch);
    v.Read(p + 40, &flags);
    v.Read(p + 56, &uncompressed);
    if (header_size < kMinEntryHeader || header_size > end - p) {
      return Bad("entry at " + std::to_string(p) + ": header_size " + std::to_string(header_size));
    }
    uint64_t payload_off = p + header_size;
    if (size > end - payload_off) {
      return Bad("entry at " + std::to_string(p) + ": payload size " + std::to_string(size) +
                 " runs past the fatbin");
    }
    FatbinEntry e;
    e.kind = kind;
    e.arch = arch;
    e.flags = flags;
    bool lz4 = flags & kFatbinFlagLz4, zstd = flags & kFatbinFlagZstd;
    if (lz4 && zstd) return Bad("entry at " + std::to_string(p) + " has both LZ4 and Zstd flags");
    e.compression = lz4 ? Compression::kLz4 : zstd ? Compression::kZstd : Compression::kNone;
    uint64_t stored = size;
    if (e.compression != Compression::kNone) {
      if (compressed_size == 0 || compressed_size > size) {
        return Bad("entry at " + std::to_string(p) + ": compressed size " +
                   std::to_string(compressed_size) + " vs payload " + std::to_string(size));
      }
      stored = compressed_size;
      e.uncompressed_size = uncompressed;
    }
    v.Slice(payload_off, stored, &e.payload);
    if (e.compression != Compression::kNone && opt.decompress) {
      if (uncompressed > *budget) {
        return Bad("entry at " + std::to_string(p) + ": uncompressed size " +
                   std::to_string(uncompressed) + " exceeds the limit of " +
                   std::to_string(opt.max_uncompressed_bytes) + " bytes for the image");
      }
      *budget -= uncompressed;
      Result<std::vector<std::byte>> data = Decompress(e.compression, e.payload, uncompressed);
      if (!data.ok()) return std::move(data.take_status()).With("entry at " + std::to_string(p));
      e.decompressed = std::move(data.value());
    }
    out->push_back(std::move(e));
    p = payload_off + size;
  }
  return Status();
}

}  // namespace

Result<std::vector<std::byte>> Decompress(Compression c, Bytes raw, uint64_t uncompressed_size) {
  if (uncompressed_size > kMaxImageBytes) return Bad("uncompressed size too large");
  // Refuse sizes the payload cannot produce before allocating for them: LZ4
  // expands at most ~255x; a Zstd frame states its content size.
  if (c == Compression::kLz4 && uncompressed_size > uint64_t{raw.size()} * 255 + 64) {
    return Bad("LZ4 payload of " + std::to_string(raw.size()) + " bytes cannot hold " +
               std::to_string(uncompressed_size));
  }
  if (c == Compression::kZstd) {
    unsigned long long declared = ZSTD_getFrameContentSize(raw.data(), raw.size());
    if (declared == ZSTD_CONTENTSIZE_ERROR) return Bad("not a Zstd frame");
    if (declared != ZSTD_CONTENTSIZE_UNKNOWN && declared != uncompressed_size) {
      return Bad("Zstd frame holds " + std::to_string(declared) + " bytes, header says " +
                 std::to_string(uncompressed_size));
    }
  }
  std::vector<std::byte> out(uncompressed_size);
  switch (c) {
    case Compression::kNone:
      if (raw.size() != uncompressed_size) return Bad("size mismatch");
      std::copy(raw.begin(), raw.end(), out.begin());
      return out;
    case Compression::kLz4: {
      if (raw.size() > INT32_MAX || uncompressed_size > INT32_MAX) {
        return Bad("LZ4 payload too large");
      }
      int n = LZ4_decompress_safe(reinterpret_cast<const char*>(raw.data()),
                                  reinterpret_cast<char*>(out.data()), static_cast<int>(raw.size()),
                                  static_cast<int>(uncompressed_size));
      if (n < 0) return Bad("corrupt LZ4 payload");
      if (static_cast<uint64_t>(n) != uncompressed_size) {
        return Bad("LZ4 payload decompressed to " + std::to_string(n) + " bytes, header says " +
                   std::to_string(uncompressed_size));
      }
      return out;
    }
    case Compression::kZstd: {
      size_t n = ZSTD_decompress(out.data(), out.size(), raw.data(), raw.size());
      if (ZSTD_isError(n)) return Bad(std::string("Zstd: ") + ZSTD_getErrorName(n));
      if (n != uncompressed_size) {
        return Bad("Zstd payload decompressed to " + std::to_string(n) + " bytes, header says " +
                   std::to_string(uncompressed_size));
      }
      return out;
    }
  }
  return Bad("unknown compression");
}

Result<std::vector<FatbinEntry>> ParseFatbin(Bytes fatbin, const ParseFatbinOptions& options) {
  ByteView v(fatbin);
  std::vector<FatbinEntry> entries;
  uint64_t pos = 0, budget = options.max_uncompressed_bytes;
  bool first = true;
  while (pos < v.size()) {
    uint32_t magic = 0;
    if (!first && (!v.Read(pos, &magic) || magic != kFatbinMagic)) {
      // Only zero padding may follow the last fatbin.
      for (uint64_t i = pos; i < v.size(); ++i) {
        if (v.data()[i] != std::byte{0}) {
          return Bad("unexpected bytes at offset " + std::to_string(i) + " after the fatbin");
        }
      }
      break;
    }
    first = false;
    FatbinHeaderFields h;
    if (Status s = ReadFatbinHeader(v, pos, &h); !s.ok()) return s;
    if (h.version != 1) return Bad("version " + std::to_string(h.version) + " (expected 1)");
    uint64_t files_begin = pos + h.header_size;
    uint64_t files_end = 0;
    if (files_begin > v.size() || AddOverflows(files_begin, h.files_size, &files_end) ||
        files_end > v.size()) {
      return Bad("files_size " + std::to_string(h.files_size) + " runs past the image (" +
                 std::to_string(v.size()) + " bytes)");
    }
    if (Status s = ParseEntries(v, files_begin, files_end, options, &budget, &entries); !s.ok()) {
      return s;
    }
    pos = files_end;
    // Fatbins laid end to end are 8-byte aligned.
    uint64_t aligned = (pos + 7) & ~uint64_t{7};
    if (aligned <= v.size()) {
      bool zero = true;
      for (uint64_t i = pos; i < aligned; ++i) zero = zero && v.data()[i] == std::byte{0};
      if (zero) pos = aligned;
    }
  }
  if (first) return Bad("empty image");
  return entries;
}

const FatbinEntry* SelectElf(const std::vector<FatbinEntry>& entries, int cc) {
  const FatbinEntry* best = nullptr;
  for (const FatbinEntry& e : entries) {
    if (!e.is_elf()) continue;
    int arch = static_cast<int>(e.arch);
    // SASS runs on the same major version with an equal or higher minor.
    if (arch / 10 != cc / 10 || arch > cc) continue;
    if (best == nullptr || arch > static_cast<int>(best->arch)) best = &e;
  }
  return best;
}

const FatbinEntry* SelectPtx(const std::vector<FatbinEntry>& entries, int cc) {
  const FatbinEntry* best = nullptr;
  for (const FatbinEntry& e : entries) {
    if (!e.is_ptx() || static_cast<int>(e.arch) > cc) continue;
    if (best == nullptr || e.arch > best->arch) best = &e;
  }
  return best;
}

const FatbinEntry* SelectCode(const std::vector<FatbinEntry>& entries, int cc) {
  const FatbinEntry* e = SelectElf(entries, cc);
  return e != nullptr ? e : SelectPtx(entries, cc);
}

}  // namespace rgpu::image
