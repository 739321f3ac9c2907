#include "common/status.h"

#include <cstring>

namespace rgpu {
namespace {
// CUresult values used here; common/ does not include cuda.h.
constexpr int kCudaErrorInvalidValue = 1;
constexpr int kCudaErrorNotInitialized = 3;
constexpr int kCudaErrorNotSupported = 801;
constexpr int kCudaErrorUnknown = 999;
constexpr int kCudaErrorDeviceUnavailable = 46;
}  // namespace

Status Status::Errno(Code code, std::string_view what, int err) {
  return Status(code, 0, std::string(what) + ": " + std::strerror(err));
}

const std::string& Status::message() const {
  static const std::string kEmpty;
  return rep_ ? rep_->msg : kEmpty;
}

std::string Status::ToString() const {
  if (ok()) return "OK";
  static const char* const kNames[] = {"OK",   "protocol error", "transport error", "unsupported",
                                       "CUDA error", "auth error", "invalid argument", "internal error"};
  return std::string(kNames[static_cast<int>(rep_->code)]) + ": " + rep_->msg;
}

Status Status::With(std::string_view where) && {
  if (rep_) rep_->msg = std::string(where) + ": " + rep_->msg;
  return std::move(*this);
}

int Status::ToCuResult() const {
  switch (code()) {
    case Code::kOk: return 0;
    case Code::kCuda: return rep_->cu;
    case Code::kUnsupported: return kCudaErrorNotSupported;
    case Code::kInvalid: return kCudaErrorInvalidValue;
    case Code::kAuth: return kCudaErrorNotInitialized;
    case Code::kTransport: return kCudaErrorDeviceUnavailable;
    case Code::kProtocol: return kCudaErrorUnknown;
    case Code::kInternal: return kCudaErrorUnknown;
  }
  return kCudaErrorUnknown;
}

}  // namespace rgpu
