// ImageSize and image kind detection. See image.h.
//
// The ELF extent is computed from the ELF64 header (offsets per the System V
// gABI): e_phoff 0x20, e_shoff 0x28, e_ehsize 0x34, e_phentsize 0x36,
// e_phnum 0x38, e_shentsize 0x3a, e_shnum 0x3c. nvcc's cubins put the section
// header table before the program headers and the program headers last, so
// both tables and every section / segment are taken into account.
#include <algorithm>
#include <cstring>
#include <string>

#include "image/byte_view.h"
#include "image/elf_format.h"
#include "image/image.h"

namespace rgpu::image {
namespace {

Status Bad(std::string what) { return Status::Invalid("image: " + std::move(what)); }

// The readable window [image, image + min(limit, kMaxImageBytes)), clipped so
// that the end pointer does not wrap.
Bytes Window(const void* image, uint64_t limit) {
  uint64_t n = std::min(limit, kMaxImageBytes);
  uint64_t room = UINTPTR_MAX - reinterpret_cast<uintptr_t>(image);
  n = std::min(n, room);
  return Bytes(static_cast<const std::byte*>(image), static_cast<size_t>(n));
}

bool LooksLikePtx(const char* p, uint64_t n) {
  // PTX from nvcc starts with "//" comments or ".version"; payloads inside
  // fatbins may start with blank lines.
  for (uint64_t i = 0; i < n && i < 4096; ++i) {
    char c = p[i];
    if (c == ' ' || c == '\t' || c == '\n' || c == '\r') continue;
    return c == '/' || c == '.';
  }
  return false;
}

Result<uint64_t> FatbinSize(ByteView v) {
  FatbinHeaderFields h;
  if (Status s = ReadFatbinHeader(v, 0, &h); !s.ok()) return s;
  uint64_t total = 0;
  if (AddOverflows(h.header_size, h.files_size, &total) || total > kMaxImageBytes) {
    return Bad("fatbin size " + std::to_string(h.header_size) + " + " +
               std::to_string(h.files_size) + " too large");
  }
  return total;
}

}  // namespace

const char* ImageKindName(ImageKind kind) {
  switch (kind) {
    case ImageKind::kFatbinWrapper: return "fatbin wrapper";
    case ImageKind::kFatbin: return "fatbin";
    case ImageKind::kElf: return "ELF";
    case ImageKind::kPtx: return "PTX";
    case ImageKind::kUnknown: break;
  }
  return "unknown";
}

ImageKind DetectImageKind(const void* image, uint64_t limit) {
  if (image == nullptr) return ImageKind::kUnknown;
  ByteView v(Window(image, limit));
  uint32_t magic = 0;
  if (!v.Read(0, &magic)) {
    // Shorter than 4 bytes: only a tiny PTX text could be that.
    return v.size() > 0 && LooksLikePtx(reinterpret_cast<const char*>(v.data()), v.size())
               ? ImageKind::kPtx
               : ImageKind::kUnknown;
  }
  if (magic == kFatbinWrapperMagic) return ImageKind::kFatbinWrapper;
  if (magic == kFatbinMagic) return ImageKind::kFatbin;
  if (std::memcmp(v.data(), "\x7f" "ELF", 4) == 0) return ImageKind::kElf;
  if (LooksLikePtx(reinterpret_cast<const char*>(v.data()), v.size())) return ImageKind::kPtx;
  return ImageKind::kUnknown;
}

Result<uint64_t> ElfExtent(Bytes elf) {
  ByteView v(elf);
  ElfHeader eh;
  if (Status s = ReadElfHeader(v, &eh); !s.ok()) return s;
  uint64_t extent = eh.ehsize;
  auto grow = [&](uint64_t off, uint64_t n, const char* what) -> Status {
    uint64_t end = 0;
    if (AddOverflows(off, n, &end) || end > kMaxImageBytes) {
      return Bad(std::string("ELF ") + what + " extends past " + std::to_string(kMaxImageBytes));
    }
    extent = std::max(extent, end);
    return Status();
  };
  // Tables first (their sizes were bounded by ReadElfHeader's counts).
  RGPU_RETURN_IF_ERROR(grow(eh.shoff, uint64_t{eh.shnum} * eh.shentsize, "section headers"));
  RGPU_RETURN_IF_ERROR(grow(eh.phoff, uint64_t{eh.phnum} * eh.phentsize, "program headers"));
  for (uint32_t i = 0; i < eh.shnum; ++i) {
    ElfSection sec;
    if (Status s = ReadElfSection(v, eh, i, &sec); !s.ok()) return s;
    if (!SectionHasFileData(sec.type)) continue;
    RGPU_RETURN_IF_ERROR(grow(sec.offset, sec.size, "section"));
  }
  for (uint32_t i = 0; i < eh.phnum; ++i) {
    uint64_t base = eh.phoff + uint64_t{i} * eh.phentsize;
    uint64_t off = 0, filesz = 0;
    if (!v.Read(base + 8, &off) || !v.Read(base + 32, &filesz)) {
      return Bad("ELF program header " + std::to_string(i) + " truncated");
    }
    RGPU_RETURN_IF_ERROR(grow(off, filesz, "segment"));
  }
  return extent;
}

Result<Bytes> FatbinWrapperData(const void* wrapper) {
  if (wrapper == nullptr) return Bad("null fatbin wrapper");
  // {u32 magic, u32 version, const void* data, void* filename_or_fatbins}
  ByteView v(Window(wrapper, 16));
  uint32_t magic = 0, version = 0;
  uint64_t data = 0;
  if (!v.Read(0, &magic) || !v.Read(4, &version) || !v.Read(8, &data)) {
    return Bad("fatbin wrapper truncated");
  }
  if (magic != kFatbinWrapperMagic) return Bad("not a fatbin wrapper");
  if (version != 1 && version != 2) {
    return Bad("fatbin wrapper version " + std::to_string(version) + " (expected 1 or 2)");
  }
  if (data == 0) return Bad("fatbin wrapper has a null data pointer");
  const void* fatbin = reinterpret_cast<const void*>(static_cast<uintptr_t>(data));
  ByteView fv(Window(fatbin, 16));
  Result<uint64_t> size = FatbinSize(fv);
  if (!size.ok()) return size.take_status();
  return Bytes(static_cast<const std::byte*>(fatbin), *size);
}

Result<uint64_t> ImageSize(const void* image, uint64_t limit) {
  if (image == nullptr) return Bad("null image");
  Bytes window = Window(image, limit);
  switch (DetectImageKind(image, limit)) {
    case ImageKind::kFatbinWrapper: {
      // A wrapper holds a host pointer. Within a bounded (untrusted) buffer
      // it cannot be followed: the data it names lies outside the limit.
      if (limit != kNoLimit) return Bad("fatbin wrapper in a bounded image (holds a pointer)");
      if (window.size() < 16) return Bad("fatbin wrapper truncated");
      Result<Bytes> data = FatbinWrapperData(image);
      if (!data.ok()) return data.take_status();
      return static_cast<uint64_t>(data->size());
    }
    case ImageKind::kFatbin: {
      Result<uint64_t> size = FatbinSize(ByteView(window));
      if (size.ok() && *size > window.size()) {
        return Bad("fatbin size " + std::to_string(*size) + " > limit " +
                   std::to_string(window.size()));
      }
      return size;
    }
    case ImageKind::kElf: {
      Result<uint64_t> size = ElfExtent(window);
      if (size.ok() && *size > window.size()) {
        return Bad("ELF size " + std::to_string(*size) + " > limit " +
                   std::to_string(window.size()));
      }
      return size;
    }
    case ImageKind::kPtx: {
      const void* nul = std::memchr(window.data(), 0, window.size());
      if (nul == nullptr) return Bad("PTX text is not NUL-terminated within the limit");
      return static_cast<uint64_t>(static_cast<const std::byte*>(nul) - window.data()) + 1;
    }
    case ImageKind::kUnknown: break;
  }
  uint32_t magic = 0;
  ByteView(window).Read(0, &magic);
  char buf[16];
  snprintf(buf, sizeof buf, "0x%08x", magic);
  return Bad(std::string("unknown image magic ") + buf);
}

}  // namespace rgpu::image
