// Cubin (CUDA ELF) parsing: kernels, parameter layout, attributes, globals.
//
// What nvcc 13.0 writes (checked with readelf on sm_75 ... sm_121 outputs):
// - e_machine 190 (EM_CUDA), OS/ABI 0x41, ABI version 8; the SM number is
//   (e_flags >> 8) & 0xff for ABI version >= 8, e_flags & 0xff before.
// - Kernels: STT_FUNC symbols with st_other & 0x10 (STO_CUDA_ENTRY); device
//   functions (e.g. with -rdc) have no such bit.
// - .nv.info (module-wide) holds per-function records keyed by symbol index:
//   EIATTR_REGCOUNT 0x2f, EIATTR_FRAME_SIZE 0x11 {u32 sym, u32 value}.
// - .nv.info.<kernel> holds that kernel's records: EIATTR_KPARAM_INFO 0x17
//   {u32 index, u16 ordinal, u16 offset, u32 bits (size = bits >> 18)},
//   EIATTR_CBANK_PARAM_SIZE 0x19 (u16 value), EIATTR_MAX_THREADS 0x05 and
//   EIATTR_REQNTID 0x10 (3 x u32), EIATTR_CTA_PER_CLUSTER 0x3d (3 x u32),
//   EIATTR_MAXREG_COUNT 0x1b (u16 value).
// - Records are {u8 format, u8 attribute, ...}: format 4 (EIFMT_SVAL) is
//   followed by a u16 size and that many bytes; formats 1-3 (no value, byte,
//   half) by two bytes.
// - Static shared memory: section .nv.shared.<kernel> (its size, less the
//   1 KiB reserved block it starts with when .nv.shared.reserved.0 exists).
// - Globals: STT_OBJECT (1) or STT_CUDA_OBJECT (13) symbols in .nv.global
//   (NOBITS, or type 0x70000007 with -rdc: zero), .nv.global.init (PROGBITS,
//   or 0x70000008 with -rdc: initial data) or
//   .nv.constant<N> with N != 0 (__constant__ data; bank 0 is the parameters).
#include <algorithm>
#include <map>
#include <string>
#include <unordered_map>

#include "image/byte_view.h"
#include "image/elf_format.h"
#include "image/image.h"

namespace rgpu::image {
namespace {

Status Bad(std::string what) { return Status::Invalid("image: cubin: " + std::move(what)); }

constexpr uint8_t kEifmtSval = 4;
constexpr uint8_t kEiattrMaxThreads = 0x05;
constexpr uint8_t kEiattrReqntid = 0x10;
constexpr uint8_t kEiattrFrameSize = 0x11;
constexpr uint8_t kEiattrMaxregCount = 0x1b;
constexpr uint8_t kEiattrRegcount = 0x2f;
constexpr uint8_t kEiattrCtaPerCluster = 0x3d;
constexpr uint8_t kSttObject = 1;
constexpr uint8_t kSttFunc = 2;
constexpr uint8_t kSttCudaObject = 13;
constexpr uint8_t kStoCudaEntry = 0x10;
constexpr uint8_t kStoCudaManaged = 0x04;  // __managed__ variables
constexpr uint16_t kShnLoreserve = 0xff00;
constexpr uint32_t kMaxParams = 1u << 14;  // 32 KiB of parameters / 2-byte minimum
constexpr uint64_t kReservedSmemBytes = 1024;  // CU_DEVICE_ATTRIBUTE_RESERVED_SHARED_MEMORY_PER_BLOCK

struct Symbol {
  std::string_view name;
  uint8_t type = 0, bind = 0, other = 0;
  uint16_t shndx = 0;
  uint64_t value = 0, size = 0;
};

struct Record {
  uint8_t format = 0, attr = 0;
  uint16_t half = 0;  // value of formats 1-3
  Bytes data;         // value of format 4
};

// Splits an .nv.info section into records; fails on a truncated record.
Status ReadRecords(Bytes section, const std::string& where, std::vector<Record>* out) {
  ByteView v(section);
  uint64_t p = 0;
  while (p < v.size()) {
    Record r;
    if (!v.Read(p, &r.format) || !v.Read(p + 1, &r.attr)) return Bad(where + ": record truncated");
    if (r.format == kEifmtSval) {
      uint16_t n = 0;
      if (!v.Read(p + 2, &n) || !v.Slice(p + 4, n, &r.data)) {
        return Bad(where + ": attribute 0x" + std::to_string(r.attr) + " truncated");
      }
      p += 4 + uint64_t{n};
    } else if (r.format >= 1 && r.format <= 3) {
      if (!v.Read(p + 2, &r.half)) return Bad(where + ": record truncated");
      p += 4;
    } else {
      return Bad(where + ": unknown record format " + std::to_string(r.format) + " at offset " +
                 std::to_string(p));
    }
    out->push_back(r);
  }
  return Status();
}

uint32_t U32At(Bytes b, size_t off) {
  uint32_t v = 0;
  ByteView(b).Read(off, &v);
  return v;
}

bool ReadDim3(const Record& r, uint32_t out[3]) {
  if (r.format != kEifmtSval || r.data.size() < 12) return false;
  for (int i = 0; i < 3; ++i) out[i] = U32At(r.data, 4 * i);
  return true;
}

Status ParseKernelInfo(const std::vector<Record>& records, const std::string& where, KernelInfo* k) {
  struct Param { uint16_t ordinal, offset; uint32_t size; };
  std::vector<Param> params;
  bool have_cbank_size = false;
  for (const Record& r : records) {
    switch (r.attr) {
      case kEiattrKparamInfo: {
        if (r.format != kEifmtSval || r.data.size() < 12) return Bad(where + ": short KPARAM_INFO");
        if (params.size() >= kMaxParams) return Bad(where + ": too many parameters");
        ByteView v(r.data);
        Param p{};
        v.Read(4, &p.ordinal);
        v.Read(6, &p.offset);
        p.size = U32At(r.data, 8) >> 18;
        params.push_back(p);
        break;
      }
      case kEiattrCbankParamSize:
        k->param_bytes = r.format == kEifmtSval ? U32At(r.data, 0) : r.half;
        have_cbank_size = true;
        break;
      case kEiattrMaxThreads: ReadDim3(r, k->max_threads); break;
      case kEiattrReqntid: ReadDim3(r, k->req_threads); break;
      case kEiattrCtaPerCluster: ReadDim3(r, k->cluster_dims); break;
      case kEiattrMaxregCount: k->max_reg_count = r.half; break;
      default: break;  // many others (exit offsets, API version, ...): not needed
    }
  }
  std::sort(params.begin(), params.end(),
            [](const Param& a, const Param& b) { return a.ordinal < b.ordinal; });
  uint32_t end = 0;
  for (size_t i = 0; i < params.size(); ++i) {
    if (params[i].ordinal != i) {
      return Bad(where + ": parameter ordinals are not 0.." + std::to_string(params.size() - 1));
    }
    k->params.push_back({params[i].offset, params[i].size});
    end = std::max<uint32_t>(end, uint32_t{params[i].offset} + params[i].size);
  }
  if (!have_cbank_size) {
    k->param_bytes = end;
  } else if (end > k->param_bytes) {
    return Bad(where + ": parameters end at " + std::to_string(end) + " > CBANK_PARAM_SIZE " +
               std::to_string(k->param_bytes));
  }
  return Status();
}

bool IsGlobalSection(std::string_view name, bool* constant) {
  if (name.starts_with(".nv.global")) {
    *constant = false;
    return true;
  }
  if (name.starts_with(".nv.constant") && !name.starts_with(".nv.constant0")) {
    *constant = true;
    return true;
  }
  return false;
}

}  // namespace

const KernelInfo* ModuleInfo::FindKernel(std::string_view name) const {
  for (const KernelInfo& k : kernels) {
    if (k.name == name) return &k;
  }
  return nullptr;
}

const GlobalInfo* ModuleInfo::FindGlobal(std::string_view name) const {
  for (const GlobalInfo& g : globals) {
    if (g.name == name) return &g;
  }
  return nullptr;
}

Result<ModuleInfo> ParseCubin(Bytes elf) {
  ByteView v(elf);
  ElfHeader eh;
  if (Status s = ReadElfHeader(v, &eh); !s.ok()) return s;
  if (eh.machine != kEmCuda) return Bad("e_machine " + std::to_string(eh.machine) + " is not EM_CUDA");
  if (eh.shnum == 0) return Bad("no section headers");

  std::vector<ElfSection> sections(eh.shnum);
  for (uint32_t i = 0; i < eh.shnum; ++i) {
    RGPU_RETURN_IF_ERROR(ReadElfSection(v, eh, i, &sections[i]));
  }
  Bytes shstr;
  RGPU_RETURN_IF_ERROR(SectionData(v, sections[eh.shstrndx], &shstr));
  ByteView shstr_view(shstr);
  std::vector<std::string_view> names(eh.shnum);
  std::unordered_map<std::string_view, uint32_t> by_name;
  int symtab = -1;
  for (uint32_t i = 0; i < eh.shnum; ++i) {
    if (i != 0 && !shstr_view.CString(sections[i].name, &names[i])) {
      return Bad("section " + std::to_string(i) + " name offset " +
                 std::to_string(sections[i].name) + " outside .shstrtab");
    }
    by_name.emplace(names[i], i);
    if (sections[i].type == kShtSymtab && symtab < 0) symtab = static_cast<int>(i);
  }

  ModuleInfo info;
  info.arch = eh.abi_version >= 8 ? (eh.flags >> 8) & 0xff : eh.flags & 0xff;
  if (symtab < 0) return info;  // no symbols: no kernels, no globals

  const ElfSection& st = sections[symtab];
  if (st.entsize != 24) return Bad(".symtab entsize " + std::to_string(st.entsize) + " != 24");
  if (st.link >= eh.shnum) return Bad(".symtab sh_link " + std::to_string(st.link) + " out of range");
  Bytes sym_bytes, str_bytes;
  RGPU_RETURN_IF_ERROR(SectionData(v, st, &sym_bytes));
  RGPU_RETURN_IF_ERROR(SectionData(v, sections[st.link], &str_bytes));
  ByteView syms(sym_bytes), strs(str_bytes);
  std::vector<Symbol> symbols(sym_bytes.size() / 24);
  for (size_t i = 0; i < symbols.size(); ++i) {
    uint64_t b = i * 24;
    uint32_t name = 0;
    uint8_t info_byte = 0;
    Symbol& s = symbols[i];
    syms.Read(b, &name);
    syms.Read(b + 4, &info_byte);
    syms.Read(b + 5, &s.other);
    syms.Read(b + 6, &s.shndx);
    syms.Read(b + 8, &s.value);
    syms.Read(b + 16, &s.size);
    s.type = info_byte & 0xf;
    s.bind = info_byte >> 4;
    if (!strs.CString(name, &s.name)) {
      return Bad("symbol " + std::to_string(i) + " name offset " + std::to_string(name) +
                 " outside the string table");
    }
  }

  // Kernels and their per-kernel records.
  const bool reserved_smem = by_name.count(".nv.shared.reserved.0") != 0;
  std::unordered_map<uint32_t, size_t> kernel_by_sym;
  for (size_t i = 0; i < symbols.size(); ++i) {
    const Symbol& s = symbols[i];
    if (s.type != kSttFunc || !(s.other & kStoCudaEntry) || s.shndx == 0 ||
        s.shndx >= kShnLoreserve || s.name.empty()) {
      continue;
    }
    KernelInfo k;
    k.name = std::string(s.name);
    std::string where = ".nv.info." + k.name;
    if (auto it = by_name.find(where); it != by_name.end()) {
      Bytes data;
      RGPU_RETURN_IF_ERROR(SectionData(v, sections[it->second], &data));
      std::vector<Record> records;
      RGPU_RETURN_IF_ERROR(ReadRecords(data, where, &records));
      RGPU_RETURN_IF_ERROR(ParseKernelInfo(records, where, &k));
    }
    if (auto it = by_name.find(".nv.shared." + k.name); it != by_name.end()) {
      uint64_t size = sections[it->second].size;
      if (size > UINT32_MAX) return Bad(".nv.shared." + k.name + " too large");
      k.shared_section_bytes = static_cast<uint32_t>(size);
      // In linked sm_80+ cubins that use the driver-reserved shared memory
      // (.nv.shared.reserved.0), the kernel's section starts with that 1 KiB
      // block; the driver does not count it as the kernel's static shared
      // memory (cuFuncGetAttribute(SHARED_SIZE_BYTES) reads 512 for a
      // 1536-byte section on an H200).
      uint64_t reserved = reserved_smem && size >= kReservedSmemBytes ? kReservedSmemBytes : 0;
      k.static_shared_bytes = static_cast<uint32_t>(size - reserved);
    }
    kernel_by_sym[static_cast<uint32_t>(i)] = info.kernels.size();
    info.kernels.push_back(std::move(k));
  }

  // Module-wide records keyed by symbol index.
  if (auto it = by_name.find(".nv.info"); it != by_name.end()) {
    Bytes data;
    RGPU_RETURN_IF_ERROR(SectionData(v, sections[it->second], &data));
    std::vector<Record> records;
    RGPU_RETURN_IF_ERROR(ReadRecords(data, ".nv.info", &records));
    for (const Record& r : records) {
      if ((r.attr != kEiattrRegcount && r.attr != kEiattrFrameSize) || r.format != kEifmtSval ||
          r.data.size() < 8) {
        continue;
      }
      auto k = kernel_by_sym.find(U32At(r.data, 0));
      if (k == kernel_by_sym.end()) continue;
      uint32_t value = U32At(r.data, 4);
      if (r.attr == kEiattrRegcount) {
        info.kernels[k->second].num_regs = static_cast<int>(std::min<uint32_t>(value, 255));
      } else {
        info.kernels[k->second].local_bytes = value;
      }
    }
  }

  // Globals.
  for (const Symbol& s : symbols) {
    if ((s.type != kSttObject && s.type != kSttCudaObject) || s.shndx == 0 ||
        s.shndx >= kShnLoreserve || s.shndx >= eh.shnum || s.name.empty()) {
      continue;
    }
    bool constant = false;
    if (!IsGlobalSection(names[s.shndx], &constant)) continue;
    if (info.FindGlobal(s.name) != nullptr) continue;
    const ElfSection& sec = sections[s.shndx];
    uint64_t end = 0;
    if (AddOverflows(s.value, s.size, &end) || end > sec.size) {
      return Bad("global " + std::string(s.name) + " (offset " + std::to_string(s.value) +
                 ", size " + std::to_string(s.size) + ") outside section " +
                 std::string(names[s.shndx]));
    }
    GlobalInfo g;
    g.name = std::string(s.name);
    g.size = s.size;
    g.is_constant = constant;
    g.is_managed = (s.other & kStoCudaManaged) != 0;
    if (SectionHasFileData(sec.type)) {
      Bytes data;
      RGPU_RETURN_IF_ERROR(SectionData(v, sec, &data));
      Bytes init = data.subspan(s.value, s.size);
      g.init.assign(init.begin(), init.end());
    }
    info.globals.push_back(std::move(g));
  }
  return info;
}

}  // namespace rgpu::image
