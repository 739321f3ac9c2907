// Handlers: calls real programs still needed ("compat"):
// cuFuncSetSharedMemConfig, cuDeviceGetTexture1DLinearMaxWidth, stream
// memory operations (cuStreamWrite/WaitValue32/64, cuStreamBatchMemOp),
// cuCtxRecordEvent / cuCtxWaitEvent and clearing a capture's dependencies.
//
// Stream memory operations write or wait on device memory from the GPU's
// command stream: every address is checked to lie in this session's memory
// before the driver sees it (a write to another tenant's memory would be a
// write the session was never given; a wait on it would read it). A wait
// that is never satisfied stalls only that stream, as a kernel that never
// ends would; the session's end still wipes and frees everything.
#include <cstring>
#include <string>
#include <vector>

#include "common/log.h"
#include "proto/coding.h"
#include "server/worker/handlers.gen.h"
#include "server/worker/session.h"

namespace rgpu::worker {
namespace {

// The most operations one StreamMemOps carries (bytes<64K> / 24 bytes each).
constexpr uint32_t kMaxMemOps = (64u << 10) / 24;

Status Invalid(const std::string& what) { return Status::Cuda(CUDA_ERROR_INVALID_VALUE, what); }

bool IsWait(uint32_t t) { return t == CU_STREAM_MEM_OP_WAIT_VALUE_32 || t == CU_STREAM_MEM_OP_WAIT_VALUE_64; }
bool IsWrite(uint32_t t) { return t == CU_STREAM_MEM_OP_WRITE_VALUE_32 || t == CU_STREAM_MEM_OP_WRITE_VALUE_64; }
uint64_t Width(uint32_t t) {
  return t == CU_STREAM_MEM_OP_WAIT_VALUE_64 || t == CU_STREAM_MEM_OP_WRITE_VALUE_64 ? 8 : 4;
}

// Decodes ops (u32 count, then u32 type, u32 flags, u64 address, u64 value
// each) into the driver's structures, checking each operation's type, flags
// and address.
Status DecodeOps(Session& s, std::span<const uint8_t> bytes, std::vector<CUstreamBatchMemOpParams>* out) {
  proto::Reader r(bytes);
  uint32_t count = 0;
  RGPU_RETURN_IF_ERROR(r.U32(&count));
  if (count == 0 || count > kMaxMemOps) return Invalid("stream memory operations: count " + std::to_string(count));
  out->assign(count, CUstreamBatchMemOpParams{});
  for (uint32_t i = 0; i < count; ++i) {
    uint32_t type = 0, flags = 0;
    uint64_t addr = 0, value = 0;
    RGPU_RETURN_IF_ERROR(r.U32(&type));
    RGPU_RETURN_IF_ERROR(r.U32(&flags));
    RGPU_RETURN_IF_ERROR(r.U64(&addr));
    RGPU_RETURN_IF_ERROR(r.U64(&value));
    CUstreamBatchMemOpParams& p = (*out)[i];
    if (IsWait(type) || IsWrite(type)) {
      uint64_t w = Width(type);
      if (addr % w != 0) return Invalid("stream memory operation: misaligned address");
      RGPU_RETURN_IF_ERROR(s.CheckRange(addr, w, "stream memory operation address"));
      if (IsWait(type)) {
        uint32_t cond = flags & ~static_cast<uint32_t>(CU_STREAM_WAIT_VALUE_FLUSH);
        if (cond > CU_STREAM_WAIT_VALUE_NOR) return Invalid("wait value: flags");
        p.waitValue.operation = static_cast<CUstreamBatchMemOpType>(type);
        p.waitValue.address = addr;
        if (w == 8) p.waitValue.value64 = value;
        else p.waitValue.value = static_cast<cuuint32_t>(value);
        p.waitValue.flags = flags;
      } else {
        if (flags & ~static_cast<uint32_t>(CU_STREAM_WRITE_VALUE_NO_MEMORY_BARRIER))
          return Invalid("write value: flags");
        p.writeValue.operation = static_cast<CUstreamBatchMemOpType>(type);
        p.writeValue.address = addr;
        if (w == 8) p.writeValue.value64 = value;
        else p.writeValue.value = static_cast<cuuint32_t>(value);
        p.writeValue.flags = flags;
      }
    } else if (type == CU_STREAM_MEM_OP_FLUSH_REMOTE_WRITES) {
      p.flushRemoteWrites.operation = CU_STREAM_MEM_OP_FLUSH_REMOTE_WRITES;
      p.flushRemoteWrites.flags = flags;
    } else if (type == CU_STREAM_MEM_OP_BARRIER) {
      if (flags > CU_STREAM_MEMORY_BARRIER_TYPE_GPU) return Invalid("memory barrier: scope");
      p.memoryBarrier.operation = CU_STREAM_MEM_OP_BARRIER;
      p.memoryBarrier.flags = flags;
    } else {
      return Invalid("stream memory operation: type " + std::to_string(type));
    }
  }
  return r.Finish();
}

// One operation through its own driver call (what the client called).
Status RunOne(const backend::DriverTable& d, CUstream st, const CUstreamBatchMemOpParams& p) {
  switch (p.operation) {
    case CU_STREAM_MEM_OP_WRITE_VALUE_32:
      if (!d.cuStreamWriteValue32_v2) return NotProvided("cuStreamWriteValue32");
      return CuStatus(d.cuStreamWriteValue32_v2(st, p.writeValue.address, p.writeValue.value, p.writeValue.flags),
                      "cuStreamWriteValue32");
    case CU_STREAM_MEM_OP_WRITE_VALUE_64:
      if (!d.cuStreamWriteValue64_v2) return NotProvided("cuStreamWriteValue64");
      return CuStatus(d.cuStreamWriteValue64_v2(st, p.writeValue.address, p.writeValue.value64, p.writeValue.flags),
                      "cuStreamWriteValue64");
    case CU_STREAM_MEM_OP_WAIT_VALUE_32:
      if (!d.cuStreamWaitValue32_v2) return NotProvided("cuStreamWaitValue32");
      return CuStatus(d.cuStreamWaitValue32_v2(st, p.waitValue.address, p.waitValue.value, p.waitValue.flags),
                      "cuStreamWaitValue32");
    case CU_STREAM_MEM_OP_WAIT_VALUE_64:
      if (!d.cuStreamWaitValue64_v2) return NotProvided("cuStreamWaitValue64");
      return CuStatus(d.cuStreamWaitValue64_v2(st, p.waitValue.address, p.waitValue.value64, p.waitValue.flags),
                      "cuStreamWaitValue64");
    default:
      return Invalid("stream memory operation: not a single-call operation");
  }
}

}  // namespace

Status HandleFuncSetSharedMemConfig(Session& s, const proto::FuncSetSharedMemConfigReq& req,
                                    proto::FuncSetSharedMemConfigRep*) {
  if (req.config > CU_SHARED_MEM_CONFIG_EIGHT_BYTE_BANK_SIZE) return Invalid("shared memory config out of range");
  RGPU_RETURN_IF_ERROR(s.UseContext(req.ctx));
  if (!s.driver().cuFuncSetSharedMemConfig) return NotProvided("cuFuncSetSharedMemConfig");
  FunctionEntry* f = nullptr;
  RGPU_RETURN_IF_ERROR(LaunchableFunctionFor(s, req.func, &f));
  return CuStatus(s.driver().cuFuncSetSharedMemConfig(f->fn, static_cast<CUsharedconfig>(req.config)),
                  "cuFuncSetSharedMemConfig");
}

Status HandleDeviceGetTexture1DLinearMaxWidth(Session& s, const proto::DeviceGetTexture1DLinearMaxWidthReq& req,
                                              proto::DeviceGetTexture1DLinearMaxWidthRep* rep) {
  if (!s.driver().cuDeviceGetTexture1DLinearMaxWidth) return NotProvided("cuDeviceGetTexture1DLinearMaxWidth");
  Result<CUdevice> dev = s.Device(req.dev);
  if (!dev.ok()) return dev.take_status();
  size_t width = 0;
  RGPU_RETURN_IF_ERROR(CuStatus(s.driver().cuDeviceGetTexture1DLinearMaxWidth(
                                    &width, static_cast<CUarray_format>(req.format), req.channels, *dev),
                                "cuDeviceGetTexture1DLinearMaxWidth"));
  rep->width = width;
  return {};
}

Status HandleStreamMemOps(Session& s, const proto::StreamMemOpsReq& req, proto::StreamMemOpsRep*) {
  RGPU_RETURN_IF_ERROR(s.UseContext(req.ctx));
  CUstream st = nullptr;
  RGPU_RETURN_IF_ERROR(Get(s.FindStream(req.stream), &st));
  std::vector<CUstreamBatchMemOpParams> ops;
  RGPU_RETURN_IF_ERROR(DecodeOps(s, req.ops, &ops));
  const backend::DriverTable& d = s.driver();
  if (!req.batch) {
    if (ops.size() != 1) return Status::Protocol("stream memory operation: one operation expected");
    return RunOne(d, st, ops[0]);
  }
  if (req.flags != 0) return Invalid("cuStreamBatchMemOp: flags");
  if (!d.cuStreamBatchMemOp_v2) return NotProvided("cuStreamBatchMemOp");
  return CuStatus(d.cuStreamBatchMemOp_v2(st, static_cast<unsigned>(ops.size()), ops.data(), 0),
                  "cuStreamBatchMemOp");
}

Status HandleCtxRecordEvent(Session& s, const proto::CtxRecordEventReq& req, proto::CtxRecordEventRep*) {
  RGPU_RETURN_IF_ERROR(s.UseContext(req.ctx));
  if (!s.driver().cuCtxRecordEvent) return NotProvided("cuCtxRecordEvent");
  CUcontext ctx = nullptr;
  CUevent ev = nullptr;
  RGPU_RETURN_IF_ERROR(Get(s.FindContext(req.ctx), &ctx));
  RGPU_RETURN_IF_ERROR(Get(s.FindEvent(req.event), &ev));
  return CuStatus(s.driver().cuCtxRecordEvent(ctx, ev), "cuCtxRecordEvent");
}

Status HandleCtxWaitEvent(Session& s, const proto::CtxWaitEventReq& req, proto::CtxWaitEventRep*) {
  RGPU_RETURN_IF_ERROR(s.UseContext(req.ctx));
  if (!s.driver().cuCtxWaitEvent) return NotProvided("cuCtxWaitEvent");
  CUcontext ctx = nullptr;
  CUevent ev = nullptr;
  RGPU_RETURN_IF_ERROR(Get(s.FindContext(req.ctx), &ctx));
  RGPU_RETURN_IF_ERROR(Get(s.FindEvent(req.event), &ev));
  return CuStatus(s.driver().cuCtxWaitEvent(ctx, ev), "cuCtxWaitEvent");
}

Status HandleStreamClearCaptureDependencies(Session& s, const proto::StreamClearCaptureDependenciesReq& req,
                                            proto::StreamClearCaptureDependenciesRep*) {
  RGPU_RETURN_IF_ERROR(s.UseContext(req.ctx));
  if (!s.driver().cuStreamUpdateCaptureDependencies_v2) return NotProvided("cuStreamUpdateCaptureDependencies");
  CUstream st = nullptr;
  RGPU_RETURN_IF_ERROR(Get(s.FindStream(req.stream), &st));
  return CuStatus(s.driver().cuStreamUpdateCaptureDependencies_v2(st, nullptr, nullptr, 0,
                                                                  CU_STREAM_SET_CAPTURE_DEPENDENCIES),
                  "cuStreamUpdateCaptureDependencies");
}

}  // namespace rgpu::worker
