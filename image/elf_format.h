// ELF64 and fatbin header readers shared by image/*.cc. Internal to image/.
// Each reader validates what it returns: table entry sizes, counts and
// offsets are checked against the view before anything is indexed.
#pragma once

#include <cstdint>
#include <string>

#include "common/status.h"
#include "image/byte_view.h"
#include "image/image.h"

namespace rgpu::image {

inline constexpr uint16_t kEmCuda = 190;
inline constexpr uint32_t kShtNull = 0;
inline constexpr uint32_t kShtProgbits = 1;
inline constexpr uint32_t kShtSymtab = 2;
inline constexpr uint32_t kShtStrtab = 3;
inline constexpr uint32_t kShtNobits = 8;
// CUDA section types without file data: .nv.global (zero-initialised globals,
// used by -rdc objects instead of NOBITS) and .nv.shared.<kernel>.
inline constexpr uint32_t kShtCudaGlobal = 0x70000007;
inline constexpr uint32_t kShtCudaShared = 0x7000000a;
inline bool SectionHasFileData(uint32_t type) {
  return type != kShtNull && type != kShtNobits && type != kShtCudaGlobal && type != kShtCudaShared;
}
inline constexpr uint32_t kMaxSections = 1u << 20;  // sanity limit on e_shnum
inline constexpr uint32_t kMaxSegments = 1u << 16;

struct ElfHeader {
  uint8_t abi_version = 0;  // e_ident[EI_ABIVERSION]
  uint16_t type = 0;
  uint16_t machine = 0;
  uint32_t flags = 0;
  uint64_t phoff = 0, shoff = 0;
  uint16_t ehsize = 0, phentsize = 0, shentsize = 0;
  uint32_t phnum = 0, shnum = 0, shstrndx = 0;  // extended numbering resolved
};

struct ElfSection {
  uint32_t name = 0, type = 0;
  uint64_t flags = 0, offset = 0, size = 0;
  uint32_t link = 0, info = 0;
  uint64_t entsize = 0;
};

// Reads and checks the ELF64 little-endian header; both header tables must lie
// inside `v`.
Status ReadElfHeader(const ByteView& v, ElfHeader* out);
// Section `index` (< eh.shnum). Its data range is NOT checked here (NOBITS
// sections have none); use SectionData for that.
Status ReadElfSection(const ByteView& v, const ElfHeader& eh, uint32_t index, ElfSection* out);
// The bytes of a section with file data (empty for NOBITS-like types),
// checked against `v`.
Status SectionData(const ByteView& v, const ElfSection& sec, Bytes* out);
// Extent of an ELF image (see ImageSize).
Result<uint64_t> ElfExtent(Bytes elf);

struct FatbinHeaderFields {
  uint16_t version = 0;
  uint16_t header_size = 0;
  uint64_t files_size = 0;
};
// The 16-byte fatbin header at `offset` (magic checked, header_size >= 16).
Status ReadFatbinHeader(const ByteView& v, uint64_t offset, FatbinHeaderFields* out);

}  // namespace rgpu::image
