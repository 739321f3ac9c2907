// Exported driver functions: JIT linking ("misc"): cuLinkCreate_v2,
// cuLinkAddData_v2, cuLinkAddFile_v2, cuLinkComplete, cuLinkDestroy.
//
// The worker links with the real driver. Creating a link state is queued
// (the client names it); each input is a round trip, so that an input the
// driver refuses fails at cuLinkAddData with its error log, as locally.
// cuLinkAddFile reads the file here and sends its bytes. The linked image
// is kept in the link state and stays valid until cuLinkDestroy.
//
// JIT options: the scalar ones are forwarded (optimisation level, target,
// debug / line info, log verbosity, register limit, cache and fallback
// modes). The log buffers and their sizes, and the wall time, are the
// caller's: the driver's logs come back with every answer and are copied in,
// and the size options are updated, as the driver does through the arrays
// given to cuLinkCreate. Other options (pointers the worker cannot use) are
// refused with CUDA_ERROR_NOT_SUPPORTED.
#include <cstdio>
#include <cstring>
#include <mutex>
#include <unordered_set>

#include "client/api_common.h"

using namespace rgpu::client;
namespace proto = rgpu::proto;

namespace {

struct LinkObj {
  uint64_t id = 0;
  CtxObj* ctx = nullptr;
  // The caller's option arrays (they must outlive the link state, as with
  // the driver); indices of the output options in them, -1 if absent.
  CUjit_option* options = nullptr;
  void** values = nullptr;
  char* info = nullptr;
  size_t info_size = 0;
  char* error = nullptr;
  size_t error_size = 0;
  int info_size_index = -1, error_size_index = -1, wall_index = -1;
  std::vector<uint8_t> image;  // the linked image (cuLinkComplete)
};

// The live link states: a CUlinkState is checked here before use.
struct LinkRegistry {
  std::mutex mu;
  std::unordered_set<LinkObj*> live;
};
LinkRegistry& Registry() {
  static LinkRegistry* r = new LinkRegistry;
  return *r;
}
LinkObj* FindLink(CUlinkState state) {
  LinkRegistry& r = Registry();
  std::lock_guard<std::mutex> lock(r.mu);
  auto* l = reinterpret_cast<LinkObj*>(state);
  return r.live.count(l) ? l : nullptr;
}

bool IsForwarded(CUjit_option o) {
  switch (o) {
    case CU_JIT_MAX_REGISTERS:
    case CU_JIT_OPTIMIZATION_LEVEL:
    case CU_JIT_TARGET_FROM_CUCONTEXT:
    case CU_JIT_TARGET:
    case CU_JIT_FALLBACK_STRATEGY:
    case CU_JIT_GENERATE_DEBUG_INFO:
    case CU_JIT_LOG_VERBOSE:
    case CU_JIT_GENERATE_LINE_INFO:
    case CU_JIT_CACHE_MODE: return true;
    default: return false;
  }
}

// Copies a log into the caller's buffer (NUL-terminated, truncated to fit)
// and stores the bytes written in the size option.
void CopyLog(std::span<const uint8_t> log, char* buf, size_t size, void** size_slot) {
  if (buf == nullptr || size == 0) return;
  size_t n = std::min(log.size(), size - 1);
  memcpy(buf, log.data(), n);
  buf[n] = 0;
  if (size_slot) *size_slot = reinterpret_cast<void*>(static_cast<uintptr_t>(n ? n + 1 : 0));
}

void WriteBack(LinkObj* l, std::span<const uint8_t> info, std::span<const uint8_t> error) {
  CopyLog(info, l->info, l->info_size, l->info_size_index >= 0 ? &l->values[l->info_size_index] : nullptr);
  CopyLog(error, l->error, l->error_size, l->error_size_index >= 0 ? &l->values[l->error_size_index] : nullptr);
}

CUresult AddBytes(LinkObj* l, CUjitInputType type, const void* data, size_t size, const char* name,
                  unsigned numOptions) {
  if (data == nullptr || size == 0) return CUDA_ERROR_INVALID_VALUE;
  if (numOptions != 0) {
    rgpu::LogOnce(rgpu::LogLevel::kWarn, "link-input-options",
                  "cuLinkAddData: per-input JIT options are not supported (refused)");
    return CUDA_ERROR_NOT_SUPPORTED;
  }
  RGPU_STATE_OR_RETURN(s);
  uint32_t t = 0;
  memcpy(&t, &type, sizeof t);
  std::span<const uint8_t> bytes(static_cast<const uint8_t*>(data), size);
  proto::LinkAddDataRep rep;
  CUresult r = Sync(s, proto::CallId::kLinkAddData,
                    proto::LinkAddDataReq{l->ctx->id, l->id, t, name ? name : "", bytes}, &rep);
  if (r != CUDA_SUCCESS) return r;
  WriteBack(l, rep.info_log, rep.error_log);
  return static_cast<CUresult>(rep.result);
}

}  // namespace

extern "C" {

CUresult cuLinkCreate_v2(unsigned int numOptions, CUjit_option* options, void** optionValues, CUlinkState* stateOut) {
  RGPU_LOG_DEBUG("cuLinkCreate_v2");
  if (stateOut == nullptr || (numOptions > 0 && (options == nullptr || optionValues == nullptr)))
    return CUDA_ERROR_INVALID_VALUE;
  RGPU_STATE_OR_RETURN(s);
  RGPU_CTX_OR_RETURN(s, ctx);
  auto l = std::make_unique<LinkObj>();
  l->options = options;
  l->values = optionValues;
  std::vector<uint8_t> wire;
  proto::Writer w(&wire);
  uint32_t forwarded = 0;
  for (unsigned i = 0; i < numOptions; ++i) {
    if (IsForwarded(options[i])) ++forwarded;
  }
  w.U32(forwarded);
  for (unsigned i = 0; i < numOptions; ++i) {
    uintptr_t v = reinterpret_cast<uintptr_t>(optionValues[i]);
    switch (options[i]) {
      case CU_JIT_INFO_LOG_BUFFER: l->info = static_cast<char*>(optionValues[i]); break;
      case CU_JIT_ERROR_LOG_BUFFER: l->error = static_cast<char*>(optionValues[i]); break;
      case CU_JIT_INFO_LOG_BUFFER_SIZE_BYTES:
        l->info_size = v;
        l->info_size_index = static_cast<int>(i);
        break;
      case CU_JIT_ERROR_LOG_BUFFER_SIZE_BYTES:
        l->error_size = v;
        l->error_size_index = static_cast<int>(i);
        break;
      case CU_JIT_WALL_TIME: l->wall_index = static_cast<int>(i); break;
      default:
        if (!IsForwarded(options[i])) {
          uint32_t raw = 0;
          memcpy(&raw, &options[i], sizeof raw);
          rgpu::LogOnce(rgpu::LogLevel::kWarn, "link-option-" + std::to_string(raw),
                        "cuLinkCreate: JIT option %u is not supported (refused)", raw);
          return CUDA_ERROR_NOT_SUPPORTED;
        }
        w.U32(static_cast<uint32_t>(options[i]));
        w.U64(options[i] == CU_JIT_TARGET_FROM_CUCONTEXT ? 0 : v);
    }
  }
  if (l->info_size > (1u << 20) || l->error_size > (1u << 20)) {
    // Larger logs than the wire carries: the driver's log is cut at 1 MiB.
    l->info_size = std::min<size_t>(l->info_size, 1u << 20);
    l->error_size = std::min<size_t>(l->error_size, 1u << 20);
  }
  l->id = s->NewId();
  l->ctx = ctx;
  CUresult r = Post(s, proto::CallId::kLinkCreate,
                    proto::LinkCreateReq{ctx->id, l->id, wire, static_cast<uint32_t>(l->info ? l->info_size : 0),
                                         static_cast<uint32_t>(l->error ? l->error_size : 0)});
  if (r != CUDA_SUCCESS) return r;
  LinkObj* raw = l.release();
  {
    LinkRegistry& reg = Registry();
    std::lock_guard<std::mutex> lock(reg.mu);
    reg.live.insert(raw);
  }
  *stateOut = reinterpret_cast<CUlinkState>(raw);
  return CUDA_SUCCESS;
}

CUresult cuLinkAddData_v2(CUlinkState state, CUjitInputType type, void* data, size_t size, const char* name,
                          unsigned int numOptions, CUjit_option*, void**) {
  RGPU_LOG_DEBUG("cuLinkAddData_v2");
  RGPU_RETURN_IF_DEINITIALIZED();
  LinkObj* l = FindLink(state);
  if (l == nullptr) return CUDA_ERROR_INVALID_HANDLE;
  return AddBytes(l, type, data, size, name, numOptions);
}

CUresult cuLinkAddFile_v2(CUlinkState state, CUjitInputType type, const char* path, unsigned int numOptions,
                          CUjit_option*, void**) {
  RGPU_LOG_DEBUG("cuLinkAddFile_v2");
  RGPU_RETURN_IF_DEINITIALIZED();
  LinkObj* l = FindLink(state);
  if (l == nullptr) return CUDA_ERROR_INVALID_HANDLE;
  if (path == nullptr) return CUDA_ERROR_INVALID_VALUE;
  FILE* f = fopen(path, "rb");
  if (f == nullptr) return CUDA_ERROR_FILE_NOT_FOUND;
  std::vector<uint8_t> bytes;
  uint8_t chunk[65536];
  size_t n = 0;
  while ((n = fread(chunk, 1, sizeof chunk, f)) > 0) bytes.insert(bytes.end(), chunk, chunk + n);
  bool failed = ferror(f) != 0;
  fclose(f);
  if (failed) return CUDA_ERROR_FILE_NOT_FOUND;
  // PTX from a file is text without its terminator.
  if (type == CU_JIT_INPUT_PTX && (bytes.empty() || bytes.back() != 0)) bytes.push_back(0);
  return AddBytes(l, type, bytes.data(), bytes.size(), path, numOptions);
}

CUresult cuLinkComplete(CUlinkState state, void** cubinOut, size_t* sizeOut) {
  RGPU_LOG_DEBUG("cuLinkComplete");
  LinkObj* l = FindLink(state);
  if (l == nullptr) return CUDA_ERROR_INVALID_HANDLE;
  if (cubinOut == nullptr) return CUDA_ERROR_INVALID_VALUE;
  RGPU_STATE_OR_RETURN(s);
  proto::LinkCompleteRep rep;
  CUresult r = Sync(s, proto::CallId::kLinkComplete, proto::LinkCompleteReq{l->ctx->id, l->id}, &rep);
  if (r != CUDA_SUCCESS) return r;
  WriteBack(l, rep.info_log, rep.error_log);
  if (l->wall_index >= 0) memcpy(&l->values[l->wall_index], &rep.wall_ms, sizeof rep.wall_ms);
  if (rep.result != CUDA_SUCCESS) return static_cast<CUresult>(rep.result);
  l->image.assign(rep.image.begin(), rep.image.end());
  *cubinOut = l->image.data();
  if (sizeOut) *sizeOut = l->image.size();
  return CUDA_SUCCESS;
}

CUresult cuLinkDestroy(CUlinkState state) {
  RGPU_LOG_DEBUG("cuLinkDestroy");
  RGPU_RETURN_IF_DEINITIALIZED();
  LinkObj* l = nullptr;
  {
    LinkRegistry& reg = Registry();
    std::lock_guard<std::mutex> lock(reg.mu);
    l = reinterpret_cast<LinkObj*>(state);
    if (reg.live.erase(l) == 0) return CUDA_ERROR_INVALID_HANDLE;
  }
  std::unique_ptr<LinkObj> owned(l);
  ClientState* s = ClientState::Get();
  if (s == nullptr || s->forked()) return CUDA_SUCCESS;
  return Post(s, proto::CallId::kLinkDestroy, proto::LinkDestroyReq{l->ctx->id, l->id});
}

}  // extern "C"
