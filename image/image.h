// image/: what is inside a CUDA module image (fatbin, cubin, PTX) without a GPU.
//
// Images reach cuModuleLoadData / cuLibraryLoadData as a bare pointer with no
// size; ImageSize() finds the size from the magic. ParseFatbin() lists the
// entries of a fatbin (decompressing LZ4 / Zstd payloads), SelectElf() picks
// the best SASS for a compute capability, ParseCubin() and ParsePtx() list the
// kernels (mangled name, parameter layout, attributes) and the module globals.
//
// Formats, as produced by nvcc 13.0 (checked against its outputs; see
// image_test.cc and the comments in each .cc):
//   fatbin wrapper  {u32 magic 0x466243B1, u32 version, const void* data, void* other}
//   fatbin header   {u32 magic 0xBA55ED50, u16 version, u16 header_size, u64 files_size}
//   fatbin entry    64+ byte header (kind 1 PTX / 2 ELF, arch, flags, sizes), payload
//   cubin           ELF64, EM_CUDA (190); .nv.info.<kernel> holds EIATTR records
//
// Failure: every function returns a non-OK Status (Code::kInvalid, message
// naming the field) for malformed input; nothing reads outside the span it is
// given (ImageSize: outside `limit` bytes). Nothing here aborts or throws on
// bad input.
//
// Ownership: spans in the results point into the caller's input and live as
// long as it does; decompressed payloads are owned by the FatbinEntry.
// Threading: all functions are pure; call them from any thread.
//
// Dependencies: common/ only (plus static liblz4 / libzstd), since the client
// library (libcuda.so.1) links this too.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace rgpu::image {

using Bytes = std::span<const std::byte>;

inline constexpr uint32_t kFatbinWrapperMagic = 0x466243B1;
inline constexpr uint32_t kFatbinMagic = 0xBA55ED50;
inline constexpr uint64_t kNoLimit = ~uint64_t{0};
// Largest image / decompressed payload we accept (libtorch's biggest fatbins
// are a few hundred MB).
inline constexpr uint64_t kMaxImageBytes = uint64_t{4} << 30;

enum class ImageKind : uint8_t { kUnknown, kFatbinWrapper, kFatbin, kElf, kPtx };
const char* ImageKindName(ImageKind kind);

// Kind from the first bytes (needs 4 readable bytes unless `limit` < 4).
ImageKind DetectImageKind(const void* image, uint64_t limit = kNoLimit);

// Size in bytes of the image at `image`, reading at most `limit` bytes from it
// (kNoLimit: trust the pointer, as the client must for cuModuleLoadData):
//   fatbin wrapper -> the size of the fatbin `data` points to (the wrapper's
//                     data pointer is followed), only with kNoLimit: with a
//                     limit (an untrusted buffer) a wrapper is an error
//   fatbin         -> header_size + files_size
//   ELF            -> max extent of ELF header, section/program header tables,
//                     sections (except NOBITS) and segments
//   PTX            -> strlen + 1 (text starting with '.' or whitespace / '/')
// Unknown magic, a null pointer or a size over min(limit, kMaxImageBytes)
// give an error.
Result<uint64_t> ImageSize(const void* image, uint64_t limit = kNoLimit);

// The fatbin a wrapper points to, as a span (ImageSize of the data).
Result<Bytes> FatbinWrapperData(const void* wrapper);

// ---- fatbin ----------------------------------------------------------------

enum class EntryKind : uint16_t { kPtx = 1, kElf = 2 };
inline constexpr uint64_t kFatbinFlagLz4 = 0x2000;
inline constexpr uint64_t kFatbinFlagZstd = 0x8000;
enum class Compression : uint8_t { kNone, kLz4, kZstd };

struct FatbinEntry {
  uint16_t kind = 0;            // EntryKind value; other kinds are listed too
  uint32_t arch = 0;            // sm / compute number: 90 for sm_90
  uint64_t flags = 0;           // raw entry flags
  Compression compression = Compression::kNone;
  Bytes payload;                // bytes as stored (compressed or not)
  uint64_t uncompressed_size = 0;  // from the entry header (0 if not compressed)
  std::vector<std::byte> decompressed;  // filled when compressed and decompressed

  bool is_elf() const { return kind == static_cast<uint16_t>(EntryKind::kElf); }
  bool is_ptx() const { return kind == static_cast<uint16_t>(EntryKind::kPtx); }
  // The usable bytes: the decompressed copy when there is one, else payload.
  Bytes data() const {
    return compression == Compression::kNone ? payload : Bytes(decompressed);
  }
};

struct ParseFatbinOptions {
  bool decompress = true;  // false: leave `decompressed` empty (cheap listing)
  uint64_t max_uncompressed_bytes = kMaxImageBytes;  // all entries together
};

// Lists the entries of one or more fatbins laid end to end in `fatbin`.
// Errors: bad magic, header or entry sizes outside the span, unknown
// compression, corrupt compressed data, decompressed size mismatch.
Result<std::vector<FatbinEntry>> ParseFatbin(Bytes fatbin, const ParseFatbinOptions& options = {});

// Decompresses `raw` (exactly the compressed bytes) into exactly
// `uncompressed_size` bytes.
Result<std::vector<std::byte>> Decompress(Compression c, Bytes raw, uint64_t uncompressed_size);

// The ELF entry to run on a device of compute capability `cc` (major*10 +
// minor, e.g. 90): same major, highest minor <= device minor; null if none.
const FatbinEntry* SelectElf(const std::vector<FatbinEntry>& entries, int cc);
// The newest PTX entry with arch <= cc; null if none.
const FatbinEntry* SelectPtx(const std::vector<FatbinEntry>& entries, int cc);
// What the driver loads for compute capability `cc`: the ELF SelectElf picks,
// else the PTX SelectPtx picks (JIT-compiled); null if neither exists.
const FatbinEntry* SelectCode(const std::vector<FatbinEntry>& entries, int cc);

// ---- kernels and globals ---------------------------------------------------

struct KernelParam {
  uint32_t offset = 0;  // bytes from the start of the parameter buffer
  uint32_t size = 0;    // bytes
};

struct KernelInfo {
  std::string name;                 // mangled, e.g. _Z6vecAddPKfS0_Pfi
  std::vector<KernelParam> params;  // in declaration order
  uint32_t param_bytes = 0;         // EIATTR_CBANK_PARAM_SIZE, else end of last param
  int num_regs = -1;                // EIATTR_REGCOUNT; -1 if unknown (PTX)
  uint32_t static_shared_bytes = 0; // as the driver reports it (see cubin.cc)
  uint32_t shared_section_bytes = 0;  // size of .nv.shared.<name>
  uint32_t local_bytes = 0;         // EIATTR_FRAME_SIZE
  uint32_t max_threads[3] = {0, 0, 0};   // EIATTR_MAX_THREADS (__launch_bounds__ / .maxntid)
  uint32_t req_threads[3] = {0, 0, 0};   // EIATTR_REQNTID (.reqntid)
  uint32_t cluster_dims[3] = {0, 0, 0};  // EIATTR_CTA_PER_CLUSTER (__cluster_dims__)
  uint32_t max_reg_count = 0;       // EIATTR_MAXREG_COUNT
};

struct GlobalInfo {
  std::string name;
  uint64_t size = 0;
  std::vector<std::byte> init;  // initial bytes (may be shorter than size; rest is zero)
  bool is_constant = false;  // __constant__ (.nv.constantN / .const)
  // __managed__ (cubin: st_other & 0x4; PTX: .attribute(.managed)): reached
  // from the host through cuLibraryGetManaged's address.
  bool is_managed = false;
};

struct ModuleInfo {
  bool is_ptx = false;
  uint32_t arch = 0;  // sm number (ELF e_flags) or PTX .target
  std::vector<KernelInfo> kernels;
  std::vector<GlobalInfo> globals;
  const KernelInfo* FindKernel(std::string_view name) const;
  const GlobalInfo* FindGlobal(std::string_view name) const;
};

// EIATTR record ids used (the full list is in cubin.cc).
inline constexpr uint8_t kEiattrKparamInfo = 0x17;
inline constexpr uint8_t kEiattrCbankParamSize = 0x19;

// Parses a CUDA ELF (cubin). Kernels are STT_FUNC symbols marked as entries
// (st_other & 0x10); parameters come from .nv.info.<name>. Globals are object
// symbols in .nv.global* / .nv.constant1-17 sections (not the parameter bank 0).
Result<ModuleInfo> ParseCubin(Bytes elf);

// Parses PTX text: .entry declarations (params laid out with their natural or
// .align alignment, like ptxas does), kernel directives (.maxntid, .reqntid,
// .reqnctapercluster, .maxnreg) and module-scope .global / .const variables
// with their initialisers (integers and 0f/0d float bit patterns; address
// initialisers such as generic(sym) read as zero). A trailing NUL is allowed.
Result<ModuleInfo> ParsePtx(std::string_view ptx);

}  // namespace rgpu::image
