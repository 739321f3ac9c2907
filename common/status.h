// Status: what went wrong, where, and what the application will see.
//
// OK is a null pointer, so success allocates nothing. A non-OK status carries
// a code, the CUresult the application should see (when there is one) and a
// message with context joined as "where: what". Statuses are move-only.
// Mapping to CUresult happens in exactly one place: ToCuResult().
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>

namespace rgpu {

enum class Code : uint8_t {
  kOk = 0,
  kProtocol,     // the peer sent something malformed or out of bounds
  kTransport,    // the link failed (connect, read, write, closed)
  kUnsupported,  // a call or feature rgpu does not implement
  kCuda,         // a CUDA call returned an error (cu_result() says which)
  kAuth,         // handshake refused: token, version, identity
  kInvalid,      // bad argument from the local caller or a config
  kInternal,     // a bug in rgpu
};

class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(Status&&) noexcept = default;
  Status& operator=(Status&&) noexcept = default;
  Status(const Status& o) : rep_(o.rep_ ? std::make_unique<Rep>(*o.rep_) : nullptr) {}
  Status& operator=(const Status& o) {
    rep_ = o.rep_ ? std::make_unique<Rep>(*o.rep_) : nullptr;
    return *this;
  }

  static Status Protocol(std::string msg) { return Status(Code::kProtocol, 0, std::move(msg)); }
  static Status Transport(std::string msg) { return Status(Code::kTransport, 0, std::move(msg)); }
  static Status Unsupported(std::string msg) { return Status(Code::kUnsupported, 0, std::move(msg)); }
  static Status Auth(std::string msg) { return Status(Code::kAuth, 0, std::move(msg)); }
  static Status Invalid(std::string msg) { return Status(Code::kInvalid, 0, std::move(msg)); }
  static Status Internal(std::string msg) { return Status(Code::kInternal, 0, std::move(msg)); }
  // `cu` is a CUresult value; kept as int so that common/ needs no cuda.h.
  static Status Cuda(int cu, std::string msg) { return Status(Code::kCuda, cu, std::move(msg)); }
  // Builds "<prefix>: strerror(errno)" for a failed system call.
  static Status Errno(Code code, std::string_view what, int err);

  bool ok() const { return rep_ == nullptr; }
  Code code() const { return rep_ ? rep_->code : Code::kOk; }
  int cu_result() const { return rep_ ? rep_->cu : 0; }
  const std::string& message() const;
  std::string ToString() const;

  // Prefixes context: "cuModuleLoadData: image: length 96 > limit 64".
  Status With(std::string_view where) &&;

  // The only Code -> CUresult mapping. kCuda keeps its own value.
  int ToCuResult() const;

 private:
  Status(Code code, int cu, std::string msg)
      : rep_(std::make_unique<Rep>(Rep{code, cu, std::move(msg)})) {}
  struct Rep {
    Code code;
    int cu;
    std::string msg;
  };
  std::unique_ptr<Rep> rep_;
};

// A value or a non-OK Status.
template <class T>
class [[nodiscard]] Result {
 public:
  Result(T value) : value_(std::move(value)) {}  // NOLINT: implicit by design
  Result(Status status) : status_(std::move(status)) {}  // NOLINT
  bool ok() const { return status_.ok(); }
  const Status& status() const { return status_; }
  Status take_status() { return std::move(status_); }
  T& value() { return value_; }
  const T& value() const { return value_; }
  T* operator->() { return &value_; }
  T& operator*() { return value_; }

 private:
  Status status_;
  T value_{};
};

#define RGPU_RETURN_IF_ERROR(expr)            \
  do {                                        \
    ::rgpu::Status _st = (expr);              \
    if (!_st.ok()) return _st;                \
  } while (0)

}  // namespace rgpu
