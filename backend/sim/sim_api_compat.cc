// Sim driver functions: calls real programs still needed ("compat"):
// cuFuncSetSharedMemConfig, cuDeviceGetTexture1DLinearMaxWidth, stream
// memory operations (write / wait value, batches), cuCtxRecordEvent /
// cuCtxWaitEvent and cuStreamUpdateCaptureDependencies.
//
// The sim runs all work at submission (sim_api_stream.cc), so:
//   - a write value stores the value when its stream reaches it (or, in a
//     capture, at each replay of the graph);
//   - a wait value is checked at that moment: a wait that is already
//     satisfied passes; one that is not could never become satisfied by
//     earlier work and there is no concurrent work to wait for, so it fails
//     with CUDA_ERROR_NOT_SUPPORTED (the real GPU would wait);
//   - a context's work is always complete, so cuCtxRecordEvent records the
//     event at once and cuCtxWaitEvent has nothing to wait for.
// cuDeviceGetTexture1DLinearMaxWidth answers the recorded profile's
// (deprecated) CU_DEVICE_ATTRIBUTE_MAXIMUM_TEXTURE1D_LINEAR_WIDTH for every
// valid format (not yet compared with the driver's per-format answers).
#include <chrono>
#include <cstring>

#include "backend/sim/sim_state.h"

namespace rgpu::backend::sim {
namespace {

bool ValidArrayFormat(int f) {
  switch (f) {
    case CU_AD_FORMAT_UNSIGNED_INT8: case CU_AD_FORMAT_UNSIGNED_INT16: case CU_AD_FORMAT_UNSIGNED_INT32:
    case CU_AD_FORMAT_SIGNED_INT8: case CU_AD_FORMAT_SIGNED_INT16: case CU_AD_FORMAT_SIGNED_INT32:
    case CU_AD_FORMAT_HALF: case CU_AD_FORMAT_FLOAT:
      return true;
    default:
      return false;
  }
}

// One memory operation, as cuStreamBatchMemOp describes it.
struct MemOp {
  int type = 0;
  unsigned flags = 0;
  CUdeviceptr addr = 0;
  uint64_t value = 0;
};

unsigned Width(int type) {
  return type == CU_STREAM_MEM_OP_WAIT_VALUE_64 || type == CU_STREAM_MEM_OP_WRITE_VALUE_64 ? 8 : 4;
}

bool IsWait(int type) { return type == CU_STREAM_MEM_OP_WAIT_VALUE_32 || type == CU_STREAM_MEM_OP_WAIT_VALUE_64; }
bool IsWrite(int type) { return type == CU_STREAM_MEM_OP_WRITE_VALUE_32 || type == CU_STREAM_MEM_OP_WRITE_VALUE_64; }

// The driver's argument checks, at the call.
CUresult CheckOp(SimDevice* s, const MemOp& op) {
  if (IsWait(op.type)) {
    unsigned cond = op.flags & ~static_cast<unsigned>(CU_STREAM_WAIT_VALUE_FLUSH);
    if (cond > CU_STREAM_WAIT_VALUE_NOR) return CUDA_ERROR_INVALID_VALUE;
  } else if (IsWrite(op.type)) {
    if (op.flags & ~static_cast<unsigned>(CU_STREAM_WRITE_VALUE_NO_MEMORY_BARRIER)) return CUDA_ERROR_INVALID_VALUE;
  } else if (op.type == CU_STREAM_MEM_OP_FLUSH_REMOTE_WRITES || op.type == CU_STREAM_MEM_OP_BARRIER) {
    return CUDA_SUCCESS;
  } else {
    return CUDA_ERROR_INVALID_VALUE;
  }
  unsigned w = Width(op.type);
  if (op.addr % w != 0 || !s->IsDeviceRange(op.addr, w)) return CUDA_ERROR_INVALID_VALUE;
  return CUDA_SUCCESS;
}

CUresult RunOp(SimDevice* d, const MemOp& op) {
  if (!IsWait(op.type) && !IsWrite(op.type)) return CUDA_SUCCESS;  // flush / barrier: all is visible
  unsigned w = Width(op.type);
  if (!d->IsDeviceRange(op.addr, w)) return CUDA_ERROR_ILLEGAL_ADDRESS;  // freed since
  void* p = reinterpret_cast<void*>(static_cast<uintptr_t>(op.addr));
  if (IsWrite(op.type)) {
    if (w == 4) {
      uint32_t v = static_cast<uint32_t>(op.value);
      std::memcpy(p, &v, 4);
    } else {
      std::memcpy(p, &op.value, 8);
    }
    return CUDA_SUCCESS;
  }
  uint64_t have = 0, want = op.value;
  if (w == 4) {
    uint32_t v = 0;
    std::memcpy(&v, p, 4);
    have = v;
    want = static_cast<uint32_t>(want);
  } else {
    std::memcpy(&have, p, 8);
  }
  bool ok = false;
  switch (op.flags & ~static_cast<unsigned>(CU_STREAM_WAIT_VALUE_FLUSH)) {
    case CU_STREAM_WAIT_VALUE_GEQ:  // cyclic comparison, as cuda.h defines it
      ok = w == 4 ? static_cast<int32_t>(static_cast<uint32_t>(have) - static_cast<uint32_t>(want)) >= 0
                  : static_cast<int64_t>(have - want) >= 0;
      break;
    case CU_STREAM_WAIT_VALUE_EQ: ok = have == want; break;
    case CU_STREAM_WAIT_VALUE_AND: ok = (have & want) != 0; break;
    case CU_STREAM_WAIT_VALUE_NOR: ok = (w == 4 ? ~static_cast<uint32_t>(have | want) : ~(have | want)) != 0; break;
  }
  return ok ? CUDA_SUCCESS : CUDA_ERROR_NOT_SUPPORTED;  // the sim cannot wait (file comment)
}

CUresult Submit(CUstream stream, std::vector<MemOp> ops) {
  SIM_ENTER(s);
  if (CUresult r = s->CheckStream(stream); r != CUDA_SUCCESS) return r;
  for (const MemOp& op : ops)
    if (CUresult r = CheckOp(s, op); r != CUDA_SUCCESS) return r;
  return s->Submit(stream, [ops = std::move(ops)](SimDevice* d) {
    for (const MemOp& op : ops)
      if (CUresult r = RunOp(d, op); r != CUDA_SUCCESS) return r;
    return CUDA_SUCCESS;
  });
}

CUresult One(CUstream stream, int type, CUdeviceptr addr, uint64_t value, unsigned flags) {
  return Submit(stream, {MemOp{type, flags, addr, value}});
}

// The context named by hCtx (null: the current one) and the event, which
// must belong to it.
CUresult CtxAndEvent(SimDevice* s, CUcontext hCtx, CUevent hEvent, Context** ctx, Event** ev) {
  if (hCtx == nullptr) {
    if (CUresult r = s->CurrentContext(ctx); r != CUDA_SUCCESS) return r;
  } else if ((*ctx = s->FindContext(FromHandle(hCtx))) == nullptr) {
    return CUDA_ERROR_INVALID_CONTEXT;
  }
  auto it = s->events.find(FromHandle(hEvent));
  if (it == s->events.end() || it->second.ctx != (*ctx)->id) return CUDA_ERROR_INVALID_HANDLE;
  *ev = &it->second;
  // Not while one of the context's streams captures (cuda.h).
  for (const auto& [id, c] : s->captures)
    if (c.ctx == (*ctx)->id) return CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED;
  return CUDA_SUCCESS;
}

}  // namespace

CUresult cuFuncSetSharedMemConfig(CUfunction hfunc, CUsharedconfig config) {
  SIM_ENTER(s);
  if (EnumValue(config) < CU_SHARED_MEM_CONFIG_DEFAULT_BANK_SIZE ||
      EnumValue(config) > CU_SHARED_MEM_CONFIG_EIGHT_BYTE_BANK_SIZE)
    return CUDA_ERROR_INVALID_VALUE;
  uint64_t id = 0;
  Function* f = nullptr;
  // A hint since Volta: checked, then ignored, as by the driver.
  return s->ResolveFunction(hfunc, &id, &f);
}

CUresult cuDeviceGetTexture1DLinearMaxWidth(size_t* maxWidthInElements, CUarray_format format, unsigned numChannels,
                                            CUdevice dev) {
  SIM_ENTER(s);
  if (maxWidthInElements == nullptr) return CUDA_ERROR_INVALID_VALUE;
  if (CUresult r = s->CheckDevice(dev); r != CUDA_SUCCESS) return r;
  if (!ValidArrayFormat(EnumValue(format)) || (numChannels != 1 && numChannels != 2 && numChannels != 4))
    return CUDA_ERROR_INVALID_VALUE;
  *maxWidthInElements = static_cast<size_t>(s->Attr(dev, CU_DEVICE_ATTRIBUTE_MAXIMUM_TEXTURE1D_LINEAR_WIDTH));
  return CUDA_SUCCESS;
}

CUresult cuStreamWriteValue32_v2(CUstream stream, CUdeviceptr addr, cuuint32_t value, unsigned int flags) {
  return One(stream, CU_STREAM_MEM_OP_WRITE_VALUE_32, addr, value, flags);
}
CUresult cuStreamWriteValue64_v2(CUstream stream, CUdeviceptr addr, cuuint64_t value, unsigned int flags) {
  return One(stream, CU_STREAM_MEM_OP_WRITE_VALUE_64, addr, value, flags);
}
CUresult cuStreamWaitValue32_v2(CUstream stream, CUdeviceptr addr, cuuint32_t value, unsigned int flags) {
  return One(stream, CU_STREAM_MEM_OP_WAIT_VALUE_32, addr, value, flags);
}
CUresult cuStreamWaitValue64_v2(CUstream stream, CUdeviceptr addr, cuuint64_t value, unsigned int flags) {
  return One(stream, CU_STREAM_MEM_OP_WAIT_VALUE_64, addr, value, flags);
}

CUresult cuStreamBatchMemOp_v2(CUstream stream, unsigned int count, CUstreamBatchMemOpParams* paramArray,
                               unsigned int flags) {
  if (flags != 0 || count == 0 || paramArray == nullptr) return CUDA_ERROR_INVALID_VALUE;
  std::vector<MemOp> ops;
  for (unsigned i = 0; i < count; ++i) {
    const CUstreamBatchMemOpParams& p = paramArray[i];
    MemOp op;
    op.type = EnumValue(p.operation);
    if (IsWait(op.type)) {
      op.addr = p.waitValue.address;
      op.value = op.type == CU_STREAM_MEM_OP_WAIT_VALUE_64 ? p.waitValue.value64 : p.waitValue.value;
      op.flags = p.waitValue.flags;
    } else if (IsWrite(op.type)) {
      op.addr = p.writeValue.address;
      op.value = op.type == CU_STREAM_MEM_OP_WRITE_VALUE_64 ? p.writeValue.value64 : p.writeValue.value;
      op.flags = p.writeValue.flags;
    } else {
      op.flags = p.flushRemoteWrites.flags;
    }
    ops.push_back(op);
  }
  return Submit(stream, std::move(ops));
}

CUresult cuCtxRecordEvent(CUcontext hCtx, CUevent hEvent) {
  SIM_ENTER(s);
  Context* ctx = nullptr;
  Event* ev = nullptr;
  if (CUresult r = CtxAndEvent(s, hCtx, hEvent, &ctx, &ev); r != CUDA_SUCCESS) return r;
  ev->recorded = true;
  ev->capture = 0;
  ev->time = std::chrono::steady_clock::now();
  return CUDA_SUCCESS;
}

CUresult cuCtxWaitEvent(CUcontext hCtx, CUevent hEvent) {
  SIM_ENTER(s);
  Context* ctx = nullptr;
  Event* ev = nullptr;
  return CtxAndEvent(s, hCtx, hEvent, &ctx, &ev);
}

// The sim's capture is a linear sequence with no node handles: only an empty
// node set can be given, and every later node depends on all earlier ones
// anyway, which is a valid order of the graph the caller asked for.
CUresult cuStreamUpdateCaptureDependencies_v2(CUstream hStream, CUgraphNode* dependencies,
                                              const CUgraphEdgeData* dependencyData, size_t numDependencies,
                                              unsigned int flags) {
  SIM_ENTER(s);
  if (CUresult r = s->CheckStream(hStream); r != CUDA_SUCCESS) return r;
  if (flags != CU_STREAM_ADD_CAPTURE_DEPENDENCIES && flags != CU_STREAM_SET_CAPTURE_DEPENDENCIES)
    return CUDA_ERROR_INVALID_VALUE;
  if (s->CaptureOf(hStream) == nullptr) return CUDA_ERROR_ILLEGAL_STATE;
  if (numDependencies != 0 || dependencies != nullptr || dependencyData != nullptr) return CUDA_ERROR_NOT_SUPPORTED;
  return CUDA_SUCCESS;
}

}  // namespace rgpu::backend::sim
