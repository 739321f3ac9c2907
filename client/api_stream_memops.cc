// Exported driver functions: stream memory operations
// (cuStreamWriteValue32/64, cuStreamWaitValue32/64, cuStreamBatchMemOp, in
// their v1, _v2 and per-thread (_ptsz) forms).
//
// Each is asynchronous stream work: checked here as the driver checks it at
// the call (flags, alignment, and that the address is device memory of this
// client), then queued without a round trip (DESIGN.md rule 2); the worker
// checks the addresses again against the session and runs the driver's own
// call, so a failure there surfaces at the next synchronising call. In a
// stream capture the operations become the capture's memory-operation nodes
// on the worker. Since CUDA 12 the v1 entry points behave as the _v2 ones.
//
// Host memory (zero-copy, cuMemHostRegister with device mapping) cannot be
// written or watched by a GPU across the network: refused with
// CUDA_ERROR_NOT_SUPPORTED and logged once.
#include <vector>

#include "client/api_common.h"
#include "client/managed_memory.h"
#include "client/unsupported.h"

using namespace rgpu::client;
namespace proto = rgpu::proto;

namespace {

// The most operations one batch may hold (what one StreamMemOps carries;
// the driver documents no limit, and real batches hold a few).
constexpr unsigned kMaxBatch = 2048;

struct Op {
  uint32_t type = 0;
  uint32_t flags = 0;
  CUdeviceptr addr = 0;
  uint64_t value = 0;
};

bool IsWait(uint32_t t) { return t == CU_STREAM_MEM_OP_WAIT_VALUE_32 || t == CU_STREAM_MEM_OP_WAIT_VALUE_64; }
bool IsWrite(uint32_t t) { return t == CU_STREAM_MEM_OP_WRITE_VALUE_32 || t == CU_STREAM_MEM_OP_WRITE_VALUE_64; }

// What the device cannot do, the driver refuses at the call with
// CUDA_ERROR_NOT_SUPPORTED (Hopper: no remote-write flush).
CUresult CheckCapability(const std::vector<int32_t>& attrs, const Op& op) {
  auto attr = [&](CUdevice_attribute a) { return static_cast<size_t>(a) < attrs.size() ? attrs[a] : 1; };
  bool flush = op.type == CU_STREAM_MEM_OP_FLUSH_REMOTE_WRITES ||
               (IsWait(op.type) && (op.flags & CU_STREAM_WAIT_VALUE_FLUSH));
  if (flush && attr(CU_DEVICE_ATTRIBUTE_CAN_FLUSH_REMOTE_WRITES) == 0) return CUDA_ERROR_NOT_SUPPORTED;
  bool wide = op.type == CU_STREAM_MEM_OP_WAIT_VALUE_64 || op.type == CU_STREAM_MEM_OP_WRITE_VALUE_64;
  if (wide && attr(CU_DEVICE_ATTRIBUTE_CAN_USE_64_BIT_STREAM_MEM_OPS) == 0) return CUDA_ERROR_NOT_SUPPORTED;
  bool nor = IsWait(op.type) &&
             (op.flags & ~static_cast<uint32_t>(CU_STREAM_WAIT_VALUE_FLUSH)) == CU_STREAM_WAIT_VALUE_NOR;
  if (nor && attr(CU_DEVICE_ATTRIBUTE_CAN_USE_STREAM_WAIT_VALUE_NOR) == 0) return CUDA_ERROR_NOT_SUPPORTED;
  return CUDA_SUCCESS;
}

CUresult CheckOp(ClientState* s, const Op& op, const char* name) {
  if (IsWait(op.type)) {
    if ((op.flags & ~static_cast<uint32_t>(CU_STREAM_WAIT_VALUE_FLUSH)) > CU_STREAM_WAIT_VALUE_NOR)
      return CUDA_ERROR_INVALID_VALUE;
  } else if (IsWrite(op.type)) {
    if (op.flags & ~static_cast<uint32_t>(CU_STREAM_WRITE_VALUE_NO_MEMORY_BARRIER)) return CUDA_ERROR_INVALID_VALUE;
  } else if (op.type == CU_STREAM_MEM_OP_FLUSH_REMOTE_WRITES) {
    return CUDA_SUCCESS;
  } else if (op.type == CU_STREAM_MEM_OP_BARRIER) {
    return op.flags <= CU_STREAM_MEMORY_BARRIER_TYPE_GPU ? CUDA_SUCCESS : CUDA_ERROR_INVALID_VALUE;
  } else {
    return CUDA_ERROR_INVALID_VALUE;
  }
  uint64_t w = op.type == CU_STREAM_MEM_OP_WAIT_VALUE_64 || op.type == CU_STREAM_MEM_OP_WRITE_VALUE_64 ? 8 : 4;
  if (op.addr == 0 || op.addr % w != 0) return CUDA_ERROR_INVALID_VALUE;
  if (IsManaged(op.addr) || s->CoveredByAllocations(op.addr, w)) return CUDA_SUCCESS;
  if (s->IsHostRange(reinterpret_cast<const void*>(static_cast<uintptr_t>(op.addr))))
    return ReportUnsupported(name);  // e.g. "cuStreamWriteValue32 on host memory"
  return CUDA_ERROR_INVALID_VALUE;
}

CUresult Queue(CUstream h, bool pt, bool batch, unsigned flags, const std::vector<Op>& ops, const char* host_name) {
  RGPU_STATE_OR_RETURN(s);
  uint64_t stream = 0;
  if (!WireStream(s, h, pt, &stream)) return CUDA_ERROR_INVALID_HANDLE;
  StreamObj* so = s->FindStream(h);
  CtxObj* c = so ? so->ctx : s->Current();
  if (c == nullptr) return CUDA_ERROR_INVALID_CONTEXT;
  const std::vector<int32_t>& attrs = s->device(c->device).attributes;
  for (const Op& op : ops) {
    if (CUresult r = CheckOp(s, op, host_name); r != CUDA_SUCCESS) return r;
    if (CUresult r = CheckCapability(attrs, op); r != CUDA_SUCCESS) return r;
  }
  std::vector<uint8_t> bytes;
  proto::Writer w(&bytes);
  w.U32(static_cast<uint32_t>(ops.size()));
  for (const Op& op : ops) {
    w.U32(op.type);
    w.U32(op.flags);
    w.U64(op.addr);
    w.U64(op.value);
  }
  // Managed memory: host writes reach the device first, and device results
  // are fetched back on the next host access (managed_memory.h).
  if (CUresult r = ManagedBeforeDeviceWork(s); r != CUDA_SUCCESS) return r;
  CUresult r = Post(s, proto::CallId::kStreamMemOps,
                    proto::StreamMemOpsReq{c->id, stream, static_cast<uint8_t>(batch), flags, bytes});
  ManagedAfterDeviceWork();
  return r;
}

CUresult One(CUstream h, bool pt, uint32_t type, CUdeviceptr addr, uint64_t value, unsigned flags,
             const char* host_name) {
  return Queue(h, pt, false, 0, {Op{type, flags, addr, value}}, host_name);
}

CUresult Batch(CUstream h, unsigned count, const CUstreamBatchMemOpParams* p, unsigned flags, bool pt) {
  if (p == nullptr || count == 0 || flags != 0) return CUDA_ERROR_INVALID_VALUE;
  if (count > kMaxBatch) return ReportUnsupported("cuStreamBatchMemOp with more than 2048 operations");
  std::vector<Op> ops(count);
  for (unsigned i = 0; i < count; ++i) {
    Op& op = ops[i];
    op.type = static_cast<uint32_t>(p[i].operation);
    if (IsWait(op.type)) {
      op.addr = p[i].waitValue.address;
      op.value = op.type == CU_STREAM_MEM_OP_WAIT_VALUE_64 ? p[i].waitValue.value64 : p[i].waitValue.value;
      op.flags = p[i].waitValue.flags;
    } else if (IsWrite(op.type)) {
      op.addr = p[i].writeValue.address;
      op.value = op.type == CU_STREAM_MEM_OP_WRITE_VALUE_64 ? p[i].writeValue.value64 : p[i].writeValue.value;
      op.flags = p[i].writeValue.flags;
    } else {
      op.flags = p[i].flushRemoteWrites.flags;  // flush and barrier: flags follow the operation
    }
  }
  return Queue(h, pt, true, flags, ops, "cuStreamBatchMemOp on host memory");
}

}  // namespace

#define RGPU_W32 CU_STREAM_MEM_OP_WRITE_VALUE_32
#define RGPU_W64 CU_STREAM_MEM_OP_WRITE_VALUE_64
#define RGPU_A32 CU_STREAM_MEM_OP_WAIT_VALUE_32
#define RGPU_A64 CU_STREAM_MEM_OP_WAIT_VALUE_64

// Every name the driver exports for one operation: v1, _v2, and their
// per-thread forms (cuda.h declares only some of them: all are exported).
#define RGPU_MEMOP(NAME, TYPE, VALUE_T)                                                                       \
  __attribute__((visibility("default"))) CUresult NAME(CUstream h, CUdeviceptr a, VALUE_T v, unsigned f) {    \
    return One(h, false, TYPE, a, v, f, #NAME " on host memory");                                             \
  }                                                                                                           \
  __attribute__((visibility("default"))) CUresult NAME##_ptsz(CUstream h, CUdeviceptr a, VALUE_T v, unsigned f) { \
    return One(h, true, TYPE, a, v, f, #NAME " on host memory");                                              \
  }                                                                                                           \
  __attribute__((visibility("default"))) CUresult NAME##_v2(CUstream h, CUdeviceptr a, VALUE_T v, unsigned f) { \
    return One(h, false, TYPE, a, v, f, #NAME " on host memory");                                             \
  }                                                                                                           \
  __attribute__((visibility("default"))) CUresult NAME##_v2_ptsz(CUstream h, CUdeviceptr a, VALUE_T v,       \
                                                                 unsigned f) {                                \
    return One(h, true, TYPE, a, v, f, #NAME " on host memory");                                              \
  }

extern "C" {

RGPU_MEMOP(cuStreamWriteValue32, RGPU_W32, cuuint32_t)
RGPU_MEMOP(cuStreamWriteValue64, RGPU_W64, cuuint64_t)
RGPU_MEMOP(cuStreamWaitValue32, RGPU_A32, cuuint32_t)
RGPU_MEMOP(cuStreamWaitValue64, RGPU_A64, cuuint64_t)

__attribute__((visibility("default"))) CUresult cuStreamBatchMemOp(CUstream h, unsigned count,
                                                                   CUstreamBatchMemOpParams* p, unsigned flags) {
  return Batch(h, count, p, flags, false);
}
__attribute__((visibility("default"))) CUresult cuStreamBatchMemOp_ptsz(CUstream h, unsigned count,
                                                                        CUstreamBatchMemOpParams* p, unsigned flags) {
  return Batch(h, count, p, flags, true);
}
__attribute__((visibility("default"))) CUresult cuStreamBatchMemOp_v2(CUstream h, unsigned count,
                                                                      CUstreamBatchMemOpParams* p, unsigned flags) {
  return Batch(h, count, p, flags, false);
}
__attribute__((visibility("default"))) CUresult cuStreamBatchMemOp_v2_ptsz(CUstream h, unsigned count,
                                                                           CUstreamBatchMemOpParams* p,
                                                                           unsigned flags) {
  return Batch(h, count, p, flags, true);
}

}  // extern "C"
