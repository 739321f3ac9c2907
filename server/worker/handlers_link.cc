// Handlers: JIT linking (cuLinkCreate_v2, cuLinkAddData_v2, cuLinkComplete,
// cuLinkDestroy), "misc".
//
// The worker links with the real driver and returns the image; the client
// keeps it until cuLinkDestroy. Only scalar JIT options pass (optimisation
// level, target, debug / line info, verbosity, register limit, cache and
// fallback modes), each range-checked; the log buffers are the worker's own,
// sized as the caller's (at most 1 MiB), and their contents go back with
// every answer. A link state lives until LinkDestroy or the worker's end
// (one worker process per session).
#include <cstring>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "proto/coding.h"
#include "server/worker/handlers.gen.h"
#include "server/worker/session.h"
#include "server/worker/session_move.h"

namespace rgpu::worker {
namespace {

constexpr uint32_t kMaxLinkOptions = 16;
constexpr uint32_t kMaxLogBytes = 1u << 20;  // the spec's bytes<1M>
constexpr size_t kMaxLinks = 256;             // live link states per session (each holds its logs)

struct LinkEntry {
  CUlinkState state = nullptr;
  // The driver writes logs, their lengths and the wall time through these
  // until the state is destroyed: never resized after cuLinkCreate.
  std::vector<CUjit_option> options;
  std::vector<void*> values;
  std::vector<char> info, error;
  int wall_index = -1;
};

std::unordered_map<uint64_t, std::unique_ptr<LinkEntry>>& Links() {
  static auto* links = new std::unordered_map<uint64_t, std::unique_ptr<LinkEntry>>;
  return *links;  // the worker's thread only
}

Status FindLink(uint64_t id, LinkEntry** out) {
  auto it = Links().find(id);
  if (it == Links().end()) return Status::Cuda(CUDA_ERROR_INVALID_HANDLE, "unknown link state");
  *out = it->second.get();
  return {};
}

Status CheckOption(uint32_t opt, uint64_t value) {
  auto bad = [&] { return Status::Cuda(CUDA_ERROR_INVALID_VALUE, "JIT option " + std::to_string(opt) + " value"); };
  switch (opt) {
    case CU_JIT_MAX_REGISTERS: return value <= 255 ? Status() : bad();
    case CU_JIT_OPTIMIZATION_LEVEL: return value <= 4 ? Status() : bad();
    case CU_JIT_TARGET_FROM_CUCONTEXT: return Status();
    case CU_JIT_TARGET: return value < 1000 ? Status() : bad();
    case CU_JIT_FALLBACK_STRATEGY: return value <= CU_PREFER_BINARY ? Status() : bad();
    case CU_JIT_GENERATE_DEBUG_INFO:
    case CU_JIT_LOG_VERBOSE:
    case CU_JIT_GENERATE_LINE_INFO: return value <= 1 ? Status() : bad();
    case CU_JIT_CACHE_MODE: return value <= CU_JIT_CACHE_OPTION_CA ? Status() : bad();
    default: return Status::Cuda(CUDA_ERROR_INVALID_VALUE, "JIT option " + std::to_string(opt) + " not allowed");
  }
}

std::span<const uint8_t> LogSpan(const std::vector<char>& buf) {
  size_t n = buf.empty() ? 0 : strnlen(buf.data(), buf.size());
  return std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(buf.data()), n);
}

}  // namespace

size_t LiveLinkStates() { return Links().size(); }

Status HandleLinkCreate(Session& s, const proto::LinkCreateReq& req, proto::LinkCreateRep*) {
  RGPU_RETURN_IF_ERROR(s.UseContext(req.ctx));
  if (!s.driver().cuLinkCreate_v2) return NotProvided("cuLinkCreate_v2");
  if (Links().count(req.link)) return Status::Protocol("link id in use");
  if (Links().size() >= kMaxLinks)
    return Status::Cuda(CUDA_ERROR_OUT_OF_MEMORY, "cuLinkCreate: more than 256 live link states");
  auto e = std::make_unique<LinkEntry>();
  proto::Reader r(req.options);
  uint32_t n = 0;
  RGPU_RETURN_IF_ERROR(r.U32(&n));
  if (n > kMaxLinkOptions) return Status::Protocol("cuLinkCreate: too many options");
  for (uint32_t i = 0; i < n; ++i) {
    uint32_t opt = 0;
    uint64_t value = 0;
    RGPU_RETURN_IF_ERROR(r.U32(&opt));
    RGPU_RETURN_IF_ERROR(r.U64(&value));
    RGPU_RETURN_IF_ERROR(CheckOption(opt, value));
    e->options.push_back(static_cast<CUjit_option>(opt));
    e->values.push_back(reinterpret_cast<void*>(static_cast<uintptr_t>(value)));
  }
  RGPU_RETURN_IF_ERROR(r.Finish());
  e->info.assign(std::min(req.info_size, kMaxLogBytes), 0);
  e->error.assign(std::min(req.error_size, kMaxLogBytes), 0);
  if (!e->info.empty()) {
    e->options.push_back(CU_JIT_INFO_LOG_BUFFER);
    e->values.push_back(e->info.data());
    e->options.push_back(CU_JIT_INFO_LOG_BUFFER_SIZE_BYTES);
    e->values.push_back(reinterpret_cast<void*>(static_cast<uintptr_t>(e->info.size())));
  }
  if (!e->error.empty()) {
    e->options.push_back(CU_JIT_ERROR_LOG_BUFFER);
    e->values.push_back(e->error.data());
    e->options.push_back(CU_JIT_ERROR_LOG_BUFFER_SIZE_BYTES);
    e->values.push_back(reinterpret_cast<void*>(static_cast<uintptr_t>(e->error.size())));
  }
  e->wall_index = static_cast<int>(e->options.size());
  e->options.push_back(CU_JIT_WALL_TIME);
  e->values.push_back(nullptr);
  RGPU_RETURN_IF_ERROR(CuStatus(s.driver().cuLinkCreate_v2(static_cast<unsigned>(e->options.size()),
                                                            e->options.data(), e->values.data(), &e->state),
                                "cuLinkCreate"));
  Links()[req.link] = std::move(e);
  return {};
}

Status HandleLinkAddData(Session& s, const proto::LinkAddDataReq& req, proto::LinkAddDataRep* rep) {
  static std::string name;  // the driver may keep it for its logs
  RGPU_RETURN_IF_ERROR(s.UseContext(req.ctx));
  if (!s.driver().cuLinkAddData_v2) return NotProvided("cuLinkAddData_v2");
  LinkEntry* e = nullptr;
  RGPU_RETURN_IF_ERROR(FindLink(req.link, &e));
  if (req.type >= CU_JIT_NUM_INPUT_TYPES) return Status::Cuda(CUDA_ERROR_INVALID_VALUE, "JIT input type");
  name.assign(req.name.data(), req.name.size());
  // The driver copies the input; it does not write it.
  void* data = const_cast<uint8_t*>(req.data.data());
  CUresult r = s.driver().cuLinkAddData_v2(e->state, static_cast<CUjitInputType>(req.type), data, req.data.size(),
                                           name.c_str(), 0, nullptr, nullptr);
  rep->result = r;
  rep->info_log = LogSpan(e->info);
  rep->error_log = LogSpan(e->error);
  return {};
}

Status HandleLinkComplete(Session& s, const proto::LinkCompleteReq& req, proto::LinkCompleteRep* rep) {
  RGPU_RETURN_IF_ERROR(s.UseContext(req.ctx));
  if (!s.driver().cuLinkComplete) return NotProvided("cuLinkComplete");
  LinkEntry* e = nullptr;
  RGPU_RETURN_IF_ERROR(FindLink(req.link, &e));
  void* image = nullptr;
  size_t size = 0;
  CUresult r = s.driver().cuLinkComplete(e->state, &image, &size);
  rep->result = r;
  if (r == CUDA_SUCCESS && image != nullptr)
    rep->image = std::span<const uint8_t>(static_cast<const uint8_t*>(image), size);  // owned by the state
  rep->info_log = LogSpan(e->info);
  rep->error_log = LogSpan(e->error);
  float wall = 0;
  std::memcpy(&wall, &e->values[e->wall_index], sizeof wall);
  rep->wall_ms = wall;
  return {};
}

Status HandleLinkDestroy(Session& s, const proto::LinkDestroyReq& req, proto::LinkDestroyRep*) {
  RGPU_RETURN_IF_ERROR(s.UseContext(req.ctx));
  if (!s.driver().cuLinkDestroy) return NotProvided("cuLinkDestroy");
  auto it = Links().find(req.link);
  if (it == Links().end()) return Status::Cuda(CUDA_ERROR_INVALID_HANDLE, "unknown link state");
  CUresult r = s.driver().cuLinkDestroy(it->second->state);
  Links().erase(it);
  return CuStatus(r, "cuLinkDestroy");
}

}  // namespace rgpu::worker
