#include "client/unsupported.h"

#include "common/log.h"

namespace rgpu::client {

CUresult ReportUnsupported(const char* name) {
  ::rgpu::LogOnce(::rgpu::LogLevel::kWarn, name, "%s is not supported by rgpu", name);
  return CUDA_ERROR_NOT_SUPPORTED;
}

}  // namespace rgpu::client
