// ByteView: bounds-checked little-endian reads from an untrusted image.
// Internal to image/. Every read takes an absolute offset and fails (returns
// false) instead of reading past the end; offset + size is checked for
// overflow in uint64_t. Not thread-affine; holds no ownership.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <string_view>
#include <type_traits>

namespace rgpu::image {

class ByteView {
 public:
  ByteView() = default;
  explicit ByteView(std::span<const std::byte> bytes) : bytes_(bytes) {}

  uint64_t size() const { return bytes_.size(); }
  const std::byte* data() const { return bytes_.data(); }

  // True when [offset, offset + n) lies inside the view.
  bool Contains(uint64_t offset, uint64_t n) const {
    return offset <= bytes_.size() && n <= bytes_.size() - offset;
  }

  template <class T>
  bool Read(uint64_t offset, T* out) const {
    static_assert(std::is_trivially_copyable_v<T>);
    if (!Contains(offset, sizeof(T))) return false;
    std::memcpy(out, bytes_.data() + offset, sizeof(T));  // host is little-endian
    return true;
  }

  bool Slice(uint64_t offset, uint64_t n, std::span<const std::byte>* out) const {
    if (!Contains(offset, n)) return false;
    *out = bytes_.subspan(offset, n);
    return true;
  }

  // NUL-terminated string starting at `offset`, which must end inside the view.
  bool CString(uint64_t offset, std::string_view* out) const {
    if (offset >= bytes_.size()) return false;
    const char* p = reinterpret_cast<const char*>(bytes_.data()) + offset;
    const void* nul = std::memchr(p, 0, bytes_.size() - offset);
    if (nul == nullptr) return false;
    *out = std::string_view(p, static_cast<const char*>(nul) - p);
    return true;
  }

 private:
  std::span<const std::byte> bytes_;
};

// a + b, false on uint64_t overflow.
inline bool AddOverflows(uint64_t a, uint64_t b, uint64_t* sum) {
  return __builtin_add_overflow(a, b, sum);
}
inline bool MulOverflows(uint64_t a, uint64_t b, uint64_t* product) {
  return __builtin_mul_overflow(a, b, product);
}

}  // namespace rgpu::image
