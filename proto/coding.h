// Little-endian encoding of protocol values.
//
// Writer appends to a byte vector; Reader consumes a received frame and fails
// (returns a kProtocol Status) on truncation or on a length over its limit.
// Never encode a C struct by memcpy: every field has an explicit width here.
// Neither class is thread-safe; each is owned by one call.
#pragma once

#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace rgpu::proto {

class Writer {
 public:
  Writer() = default;
  explicit Writer(std::vector<uint8_t>* out) : buf_(out) {}

  void U8(uint8_t v) { buf_->push_back(v); }
  void U16(uint16_t v) { Fixed(v); }
  void U32(uint32_t v) { Fixed(v); }
  void U64(uint64_t v) { Fixed(v); }
  void I32(int32_t v) { Fixed(static_cast<uint32_t>(v)); }
  void I64(int64_t v) { Fixed(static_cast<uint64_t>(v)); }
  void F32(float v) {
    uint32_t u;
    std::memcpy(&u, &v, 4);
    Fixed(u);
  }
  // u64 length, then the bytes.
  void Bytes(const void* p, size_t n) {
    U64(n);
    Raw(p, n);
  }
  void Str(std::string_view s) { Bytes(s.data(), s.size()); }
  void Raw(const void* p, size_t n) {
    const uint8_t* b = static_cast<const uint8_t*>(p);
    buf_->insert(buf_->end(), b, b + n);
  }
  // Reserves n bytes and returns where they start (valid until the next write).
  uint8_t* Reserve(size_t n) {
    size_t at = buf_->size();
    buf_->resize(at + n);
    return buf_->data() + at;
  }
  size_t size() const { return buf_->size(); }
  std::vector<uint8_t>& buffer() { return *buf_; }

 private:
  template <class T>
  void Fixed(T v) {
    uint8_t b[sizeof(T)];
    if constexpr (std::endian::native == std::endian::little) {
      std::memcpy(b, &v, sizeof(T));
    } else {
      for (size_t i = 0; i < sizeof(T); ++i) b[i] = static_cast<uint8_t>(v >> (8 * i));
    }
    buf_->insert(buf_->end(), b, b + sizeof(T));
  }
  std::vector<uint8_t> own_;
  std::vector<uint8_t>* buf_ = &own_;
};

class Reader {
 public:
  Reader() = default;
  explicit Reader(std::span<const uint8_t> frame) : rest_(frame) {}
  Reader(const uint8_t* p, size_t n) : rest_(p, n) {}

  Status U8(uint8_t* v) { return Fixed(v); }
  Status U16(uint16_t* v) { return Fixed(v); }
  Status U32(uint32_t* v) { return Fixed(v); }
  Status U64(uint64_t* v) { return Fixed(v); }
  Status I32(int32_t* v) {
    uint32_t u;
    RGPU_RETURN_IF_ERROR(Fixed(&u));
    *v = static_cast<int32_t>(u);
    return {};
  }
  Status I64(int64_t* v) {
    uint64_t u;
    RGPU_RETURN_IF_ERROR(Fixed(&u));
    *v = static_cast<int64_t>(u);
    return {};
  }
  Status F32(float* v) {
    uint32_t u;
    RGPU_RETURN_IF_ERROR(Fixed(&u));
    std::memcpy(v, &u, 4);
    return {};
  }
  // Length-prefixed bytes of at most `limit`. *out points into the frame: no copy.
  Status Bytes(uint64_t limit, std::span<const uint8_t>* out) {
    uint64_t n = 0;
    RGPU_RETURN_IF_ERROR(U64(&n));
    if (n > limit)
      return Status::Protocol("length " + std::to_string(n) + " > limit " + std::to_string(limit));
    if (n > rest_.size())
      return Status::Protocol("length " + std::to_string(n) + " > rest of frame " +
                              std::to_string(rest_.size()));
    *out = rest_.first(n);
    rest_ = rest_.subspan(n);
    return {};
  }
  Status Str(uint64_t limit, std::string* out) {
    std::span<const uint8_t> b;
    RGPU_RETURN_IF_ERROR(Bytes(limit, &b));
    out->assign(reinterpret_cast<const char*>(b.data()), b.size());
    return {};
  }
  // Exactly n raw bytes.
  Status Raw(size_t n, std::span<const uint8_t>* out) {
    if (n > rest_.size()) return Status::Protocol("truncated: need " + std::to_string(n));
    *out = rest_.first(n);
    rest_ = rest_.subspan(n);
    return {};
  }
  size_t remaining() const { return rest_.size(); }
  std::span<const uint8_t> rest() const { return rest_; }
  // Leftover bytes mean the peer disagrees about the format: refuse, don't skip.
  Status Finish() const {
    return rest_.empty() ? Status()
                         : Status::Protocol(std::to_string(rest_.size()) + " trailing bytes");
  }

 private:
  // Every request is a dozen of these: the success path is inlined, the
  // error text is built out of line.
  template <class T>
  Status Fixed(T* v) {
    if (__builtin_expect(rest_.size() < sizeof(T), 0)) return Truncated(sizeof(T));
    T x = 0;
    if constexpr (std::endian::native == std::endian::little) {
      std::memcpy(&x, rest_.data(), sizeof(T));
    } else {
      for (size_t i = 0; i < sizeof(T); ++i) x |= static_cast<T>(rest_[i]) << (8 * i);
    }
    *v = x;
    rest_ = rest_.subspan(sizeof(T));
    return {};
  }
  [[gnu::cold, gnu::noinline]] Status Truncated(size_t need) const {
    return Status::Protocol("truncated: need " + std::to_string(need) + " bytes, have " +
                            std::to_string(rest_.size()));
  }
  std::span<const uint8_t> rest_;
};

}  // namespace rgpu::proto
