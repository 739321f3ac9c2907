#include "image/elf_format.h"

#include <cstring>

namespace rgpu::image {
namespace {
Status Bad(std::string what) { return Status::Invalid("image: " + std::move(what)); }
}  // namespace

Status ReadElfHeader(const ByteView& v, ElfHeader* out) {
  if (v.size() < 64) return Bad("ELF header truncated");
  const auto* id = reinterpret_cast<const unsigned char*>(v.data());
  if (std::memcmp(id, "\x7f" "ELF", 4) != 0) return Bad("not an ELF image");
  if (id[4] != 2) return Bad("ELF class " + std::to_string(id[4]) + " (only ELF64 is supported)");
  if (id[5] != 1) return Bad("ELF is not little-endian");
  ElfHeader h;
  h.abi_version = id[8];
  uint16_t phnum16 = 0, shnum16 = 0, shstrndx16 = 0;
  v.Read(0x10, &h.type);
  v.Read(0x12, &h.machine);
  v.Read(0x20, &h.phoff);
  v.Read(0x28, &h.shoff);
  v.Read(0x30, &h.flags);
  v.Read(0x34, &h.ehsize);
  v.Read(0x36, &h.phentsize);
  v.Read(0x38, &phnum16);
  v.Read(0x3a, &h.shentsize);
  v.Read(0x3c, &shnum16);
  v.Read(0x3e, &shstrndx16);
  if (h.ehsize < 64) return Bad("ELF e_ehsize " + std::to_string(h.ehsize) + " < 64");
  h.phnum = phnum16;
  h.shnum = shnum16;
  h.shstrndx = shstrndx16;
  if (h.shoff != 0 && h.shentsize < 64) {
    return Bad("ELF e_shentsize " + std::to_string(h.shentsize) + " < 64");
  }
  if (h.phnum != 0 && h.phentsize < 56) {
    return Bad("ELF e_phentsize " + std::to_string(h.phentsize) + " < 56");
  }
  if (h.shoff == 0) {
    h.shnum = 0;
    h.shstrndx = 0;
  } else if (shnum16 == 0 || shstrndx16 == 0xffff) {
    // Extended numbering: the real values live in section header 0.
    uint64_t size0 = 0;
    uint32_t link0 = 0;
    if (!v.Read(h.shoff + 0x20, &size0) || !v.Read(h.shoff + 0x28, &link0)) {
      return Bad("ELF section header 0 truncated");
    }
    if (shnum16 == 0) {
      if (size0 > kMaxSections) return Bad("ELF section count " + std::to_string(size0));
      h.shnum = static_cast<uint32_t>(size0);
    }
    if (shstrndx16 == 0xffff) h.shstrndx = link0;
  }
  if (h.shnum > kMaxSections) return Bad("ELF section count " + std::to_string(h.shnum));
  if (h.phnum > kMaxSegments) return Bad("ELF segment count " + std::to_string(h.phnum));
  if (h.shnum != 0 && !v.Contains(h.shoff, uint64_t{h.shnum} * h.shentsize)) {
    return Bad("ELF section header table (offset " + std::to_string(h.shoff) + ", " +
               std::to_string(h.shnum) + " entries) lies outside the image");
  }
  if (h.phnum != 0 && !v.Contains(h.phoff, uint64_t{h.phnum} * h.phentsize)) {
    return Bad("ELF program header table (offset " + std::to_string(h.phoff) + ", " +
               std::to_string(h.phnum) + " entries) lies outside the image");
  }
  if (h.shnum != 0 && h.shstrndx >= h.shnum) {
    return Bad("ELF e_shstrndx " + std::to_string(h.shstrndx) + " >= section count");
  }
  *out = h;
  return Status();
}

Status ReadElfSection(const ByteView& v, const ElfHeader& eh, uint32_t index, ElfSection* out) {
  if (index >= eh.shnum) return Bad("ELF section index " + std::to_string(index) + " out of range");
  uint64_t base = eh.shoff + uint64_t{index} * eh.shentsize;
  ElfSection s;
  bool ok = v.Read(base + 0x00, &s.name) && v.Read(base + 0x04, &s.type) &&
            v.Read(base + 0x08, &s.flags) && v.Read(base + 0x18, &s.offset) &&
            v.Read(base + 0x20, &s.size) && v.Read(base + 0x28, &s.link) &&
            v.Read(base + 0x2c, &s.info) && v.Read(base + 0x38, &s.entsize);
  if (!ok) return Bad("ELF section header " + std::to_string(index) + " truncated");
  *out = s;
  return Status();
}

Status SectionData(const ByteView& v, const ElfSection& sec, Bytes* out) {
  if (!SectionHasFileData(sec.type)) {
    *out = Bytes();
    return Status();
  }
  if (!v.Slice(sec.offset, sec.size, out)) {
    return Bad("ELF section data (offset " + std::to_string(sec.offset) + ", size " +
               std::to_string(sec.size) + ") lies outside the image");
  }
  return Status();
}

Status ReadFatbinHeader(const ByteView& v, uint64_t offset, FatbinHeaderFields* out) {
  uint32_t magic = 0;
  FatbinHeaderFields h;
  if (!v.Read(offset, &magic) || !v.Read(offset + 4, &h.version) ||
      !v.Read(offset + 6, &h.header_size) || !v.Read(offset + 8, &h.files_size)) {
    return Bad("fatbin header truncated");
  }
  if (magic != kFatbinMagic) return Bad("bad fatbin magic");
  if (h.header_size < 16) return Bad("fatbin header_size " + std::to_string(h.header_size) + " < 16");
  *out = h;
  return Status();
}

}  // namespace rgpu::image
