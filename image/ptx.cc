// PTX parsing: kernels (with their parameter layout) and module globals.
//
// Only module scope is interpreted: brace depth 0, outside parentheses except
// an .entry's own parameter list. Parameter layout follows the PTX ISA
// (".param" state space): each parameter is placed at the next multiple of its
// alignment (the .align value if given, else its type size); this matches the
// EIATTR_KPARAM_INFO offsets ptxas writes for the same kernels.
#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <string>

#include "image/byte_view.h"
#include "image/image.h"

namespace rgpu::image {
namespace {

Status Bad(std::string what) { return Status::Invalid("image: PTX: " + std::move(what)); }

constexpr size_t kMaxPtxGlobalBytes = size_t{1} << 30;

// Splits PTX into tokens: identifiers / directives / numbers (letters, digits,
// '.', '_', '$', '%'), and single punctuation characters. Comments dropped.
class Lexer {
 public:
  explicit Lexer(std::string_view text) : s_(text) {}
  // Next token; empty at end of input.
  std::string_view Next() {
    SkipSpaceAndComments();
    if (pos_ >= s_.size()) return {};
    size_t start = pos_;
    if (IsWord(s_[pos_]) || (s_[pos_] == '-' && pos_ + 1 < s_.size() && IsWord(s_[pos_ + 1]))) {
      ++pos_;
      while (pos_ < s_.size() && IsWord(s_[pos_])) ++pos_;
    } else if (s_[pos_] == '"') {
      ++pos_;
      while (pos_ < s_.size() && s_[pos_] != '"') ++pos_;
      if (pos_ < s_.size()) ++pos_;
    } else {
      ++pos_;
    }
    return s_.substr(start, pos_ - start);
  }
  std::string_view Peek() {
    size_t save = pos_;
    std::string_view t = Next();
    pos_ = save;
    return t;
  }

 private:
  static bool IsWord(char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '$' ||
           c == '%';
  }
  void SkipSpaceAndComments() {
    while (pos_ < s_.size()) {
      char c = s_[pos_];
      if (std::isspace(static_cast<unsigned char>(c)) || c == 0) {
        ++pos_;
      } else if (s_.compare(pos_, 2, "//") == 0) {
        while (pos_ < s_.size() && s_[pos_] != '\n') ++pos_;
      } else if (s_.compare(pos_, 2, "/*") == 0) {
        size_t end = s_.find("*/", pos_ + 2);
        pos_ = end == std::string_view::npos ? s_.size() : end + 2;
      } else {
        return;
      }
    }
  }
  std::string_view s_;
  size_t pos_ = 0;
};

// Size of a PTX fundamental type (.u32 -> 4); 0 if `t` is not one.
uint32_t TypeSize(std::string_view t) {
  if (t.size() < 3 || t[0] != '.') return 0;
  char k = t[1];
  if (k != 'b' && k != 'u' && k != 's' && k != 'f') return 0;
  std::string_view bits = t.substr(2);
  if (bits == "8") return 1;
  if (bits == "16") return 2;
  if (bits == "32") return 4;
  if (bits == "64") return 8;
  if (bits == "128" && k == 'b') return 16;
  return 0;
}

bool ParseU64(std::string_view t, uint64_t* out) {
  if (t.empty()) return false;
  std::string s(t);
  char* end = nullptr;
  errno = 0;
  unsigned long long v = strtoull(s.c_str(), &end, 0);
  if (errno != 0 || end != s.c_str() + s.size()) return false;
  *out = v;
  return true;
}

// An initialiser value as raw little-endian bits of `size` bytes.
bool ParseValue(std::string_view t, uint32_t size, uint64_t* bits) {
  if (t.size() > 2 && t[0] == '0' && (t[1] == 'f' || t[1] == 'F' || t[1] == 'd' || t[1] == 'D')) {
    std::string hex = "0x" + std::string(t.substr(2));
    return ParseU64(hex, bits);  // 0f3F800000: the float's bit pattern
  }
  bool neg = !t.empty() && t[0] == '-';
  uint64_t v = 0;
  if (!ParseU64(neg ? t.substr(1) : t, &v)) return false;
  if (neg) v = ~v + 1;
  *bits = size >= 8 ? v : v & ((uint64_t{1} << (8 * size)) - 1);
  return true;
}

uint64_t AlignUp(uint64_t v, uint64_t a) { return a == 0 ? v : (v + a - 1) / a * a; }

// After ".entry": name ( params ) directives... up to '{' or ';'.
Status ParseEntry(Lexer& lx, KernelInfo* k) {
  k->name = std::string(lx.Next());
  if (k->name.empty() || k->name == "(") return Bad("entry without a name");
  std::string where = "entry " + k->name;
  uint64_t offset = 0;
  if (lx.Peek() == "(") {
    lx.Next();
    while (true) {
      std::string_view t = lx.Next();
      if (t.empty()) return Bad(where + ": unterminated parameter list");
      if (t == ")") break;
      if (t == ",") continue;
      if (t != ".param") return Bad(where + ": unexpected '" + std::string(t) + "' in parameters");
      uint32_t type_size = 0;
      uint64_t align = 0, count = 1;
      while (true) {
        std::string_view m = lx.Next();
        if (m.empty()) return Bad(where + ": truncated parameter");
        if (m == ".align") {
          if (!ParseU64(lx.Next(), &align) || align == 0 || align > 4096) {
            return Bad(where + ": bad .align");
          }
        } else if (uint32_t ts = TypeSize(m); ts != 0) {
          type_size = ts;
        } else if (m[0] == '.') {
          continue;  // .ptr, .global, .const, ...
        } else {
          break;  // the parameter's name
        }
      }
      if (type_size == 0) return Bad(where + ": parameter without a type");
      if (lx.Peek() == "[") {
        lx.Next();
        if (!ParseU64(lx.Next(), &count) || lx.Next() != "]") return Bad(where + ": bad array size");
      }
      uint64_t size = 0;
      if (MulOverflows(type_size, count, &size) || size > 32764) {
        return Bad(where + ": parameter too large");
      }
      offset = AlignUp(offset, align ? align : type_size);
      if (k->params.size() >= 16384) return Bad(where + ": too many parameters");
      k->params.push_back({static_cast<uint32_t>(offset), static_cast<uint32_t>(size)});
      offset += size;
      if (offset > 32764) return Bad(where + ": parameters exceed 32764 bytes");
    }
  }
  k->param_bytes = static_cast<uint32_t>(offset);
  // Performance directives between ')' and '{'.
  while (true) {
    std::string_view t = lx.Peek();
    if (t.empty() || t == "{" || t == ";") return Status();
    lx.Next();
    uint32_t* dims = t == ".maxntid" ? k->max_threads
                     : t == ".reqntid" ? k->req_threads
                     : t == ".reqnctapercluster" ? k->cluster_dims
                                                 : nullptr;
    if (dims != nullptr) {
      dims[0] = dims[1] = dims[2] = 1;
      for (int i = 0; i < 3; ++i) {
        uint64_t v = 0;
        if (!ParseU64(lx.Peek(), &v)) break;
        lx.Next();
        dims[i] = static_cast<uint32_t>(std::min<uint64_t>(v, UINT32_MAX));
        if (lx.Peek() != ",") break;
        lx.Next();
      }
    } else if (t == ".maxnreg") {
      uint64_t v = 0;
      if (ParseU64(lx.Peek(), &v)) k->max_reg_count = static_cast<uint32_t>(std::min<uint64_t>(v, 255));
    }
  }
}

// After ".global" / ".const": [.align N] [.attribute(...)] .type name[N]... [= init] ;
Status ParseVariable(Lexer& lx, bool constant, bool external, ModuleInfo* info) {
  uint32_t type_size = 0;
  std::string_view name;
  bool managed = false;
  while (true) {
    std::string_view t = lx.Next();
    if (t.empty()) return Bad("truncated variable declaration");
    if (t == ".align") {
      lx.Next();
    } else if (t == ".attribute") {
      if (lx.Next() != "(") return Bad("bad .attribute");
      while (!lx.Peek().empty()) {
        std::string_view a = lx.Next();
        if (a == ")") break;
        if (a == ".managed") managed = true;
      }
    } else if (uint32_t ts = TypeSize(t); ts != 0) {
      type_size = ts;
    } else if (t[0] == '.') {
      continue;  // .v2/.v4 vectors and other qualifiers: treated as scalars
    } else {
      name = t;
      break;
    }
  }
  if (type_size == 0) return Bad("variable " + std::string(name) + " without a type");
  uint64_t count = 1;
  while (lx.Peek() == "[") {
    lx.Next();
    std::string_view n = lx.Next();
    if (n == "]") {
      count = 0;  // unsized (extern): no storage here
      continue;
    }
    uint64_t dim = 0;
    if (!ParseU64(n, &dim) || lx.Next() != "]" || MulOverflows(count, dim, &count)) {
      return Bad("variable " + std::string(name) + ": bad array size");
    }
  }
  uint64_t size = 0;
  if (MulOverflows(count, type_size, &size) || size > kMaxPtxGlobalBytes) {
    return Bad("variable " + std::string(name) + " too large");
  }
  GlobalInfo g;
  g.name = std::string(name);
  g.size = size;
  g.is_constant = constant;
  g.is_managed = managed;
  if (lx.Peek() == "=") {
    lx.Next();
    int depth = 0;
    while (true) {
      std::string_view t = lx.Next();
      if (t.empty()) return Bad("variable " + g.name + ": unterminated initialiser");
      if (t == "{") ++depth;
      else if (t == "}") --depth;
      else if (t == "(") ++depth;  // generic(sym): an address, not known here
      else if (t == ")") --depth;
      else if (t == ";" && depth <= 0) break;
      else if (t != ",") {
        uint64_t bits = 0;
        bool value = ParseValue(t, type_size, &bits);
        if (g.init.size() + type_size <= g.size) {
          for (uint32_t i = 0; i < type_size; ++i) {
            g.init.push_back(static_cast<std::byte>(value ? (bits >> (8 * i)) & 0xff : 0));
          }
        }
      }
    }
  } else if (lx.Peek() == ";") {
    lx.Next();
  }
  if (!external && !g.name.empty() && info->FindGlobal(g.name) == nullptr) {
    info->globals.push_back(std::move(g));
  }
  return Status();
}

}  // namespace

Result<ModuleInfo> ParsePtx(std::string_view ptx) {
  while (!ptx.empty() && ptx.back() == '\0') ptx.remove_suffix(1);
  if (ptx.find('\0') != std::string_view::npos) return Bad("embedded NUL in text");
  ModuleInfo info;
  info.is_ptx = true;
  Lexer lx(ptx);
  int depth = 0;
  bool external = false, saw_version = false;
  while (true) {
    std::string_view t = lx.Next();
    if (t.empty()) break;
    if (t == "{") { ++depth; continue; }
    if (t == "}") { --depth; continue; }
    if (depth != 0) continue;
    if (t == ";") { external = false; continue; }
    if (t == ".version") saw_version = true;
    else if (t == ".target") {
      std::string_view target = lx.Next();
      if (target.starts_with("sm_")) info.arch = static_cast<uint32_t>(atoi(std::string(target.substr(3)).c_str()));
    } else if (t == ".extern") {
      external = true;
    } else if (t == ".entry") {
      KernelInfo k;
      RGPU_RETURN_IF_ERROR(ParseEntry(lx, &k));
      if (info.FindKernel(k.name) == nullptr) info.kernels.push_back(std::move(k));
      external = false;
    } else if (t == ".func") {
      // Skip the declaration up to its body or ';' (parameters may contain
      // tokens we would otherwise interpret).
      int parens = 0;
      while (!lx.Peek().empty()) {
        std::string_view u = lx.Peek();
        if (parens == 0 && (u == "{" || u == ";")) break;
        lx.Next();
        if (u == "(") ++parens;
        if (u == ")") --parens;
      }
      external = false;
    } else if (t == ".global" || t == ".const") {
      RGPU_RETURN_IF_ERROR(ParseVariable(lx, t == ".const", external, &info));
      external = false;
    }
  }
  if (!saw_version) return Bad("no .version directive");
  if (depth != 0) return Bad("unbalanced braces");
  return info;
}

}  // namespace rgpu::image
