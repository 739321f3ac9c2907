// cuMemcpyBatchAsync (cudaMemcpyBatchAsync): a batch of 1D copies on one
// stream. The batch runs in stream order and the copies inside it in no
// particular order, so issuing them one after another through the ordinary
// copy paths (api_copy.cc) is a valid execution; a host source is read
// during the call, which every source access order allows. The driver's
// argument checks are made first, so a bad batch copies nothing.
//
// cuMemcpy3DBatchAsync: a batch of 3D copies between pointers and CUDA
// arrays, each turned into the CUDA_MEMCPY3D it describes (elements of one
// byte between pointers, of the array's element size otherwise; a row length
// or layer height of 0 means tightly packed) and issued through the
// cuMemcpy3D path, after every operation has been checked.
#include <cstdint>
#include <vector>

#include "client/api_common.h"
#include "client/arrays.h"

using namespace rgpu::client;

namespace {

CUresult CheckBatch(CUdeviceptr* dsts, CUdeviceptr* srcs, size_t* sizes, size_t count, CUmemcpyAttributes* attrs,
                    size_t* attrsIdxs, size_t numAttrs, CUstream h, bool per_thread) {
  if (count == 0 || dsts == nullptr || srcs == nullptr || sizes == nullptr || attrs == nullptr ||
      attrsIdxs == nullptr || numAttrs == 0 || numAttrs > count)
    return CUDA_ERROR_INVALID_VALUE;
  // "Must not be legacy NULL stream."
  if ((h == nullptr && !per_thread) || h == CU_STREAM_LEGACY) return CUDA_ERROR_INVALID_VALUE;
  if (attrsIdxs[0] != 0) return CUDA_ERROR_INVALID_VALUE;
  for (size_t k = 0; k < numAttrs; ++k) {
    if (k > 0 && attrsIdxs[k] <= attrsIdxs[k - 1]) return CUDA_ERROR_INVALID_VALUE;
    if (attrsIdxs[k] >= count) return CUDA_ERROR_INVALID_VALUE;
    const CUmemcpyAttributes& a = attrs[k];
    if (a.srcAccessOrder != CU_MEMCPY_SRC_ACCESS_ORDER_STREAM &&
        a.srcAccessOrder != CU_MEMCPY_SRC_ACCESS_ORDER_DURING_API_CALL &&
        a.srcAccessOrder != CU_MEMCPY_SRC_ACCESS_ORDER_ANY)
      return CUDA_ERROR_INVALID_VALUE;
    if (a.flags & ~static_cast<unsigned>(CU_MEMCPY_FLAG_PREFER_OVERLAP_WITH_COMPUTE)) return CUDA_ERROR_INVALID_VALUE;
  }
  return CUDA_SUCCESS;
}

CUresult Batch(CUdeviceptr* dsts, CUdeviceptr* srcs, size_t* sizes, size_t count, CUmemcpyAttributes* attrs,
               size_t* attrsIdxs, size_t numAttrs, size_t* failIdx, CUstream h, bool per_thread) {
  if (failIdx != nullptr) *failIdx = SIZE_MAX;  // the error concerns no copy in particular
  if (CUresult r = CheckBatch(dsts, srcs, sizes, count, attrs, attrsIdxs, numAttrs, h, per_thread);
      r != CUDA_SUCCESS)
    return r;
  for (size_t i = 0; i < count; ++i) {
    CUresult r = per_thread ? cuMemcpyAsync_ptsz(dsts[i], srcs[i], sizes[i], h) : cuMemcpyAsync(dsts[i], srcs[i], sizes[i], h);
    if (r != CUDA_SUCCESS) {
      if (failIdx != nullptr) *failIdx = i;
      return r;
    }
  }
  return CUDA_SUCCESS;
}

bool ValidAccessOrder(CUmemcpySrcAccessOrder o) {
  return o == CU_MEMCPY_SRC_ACCESS_ORDER_STREAM || o == CU_MEMCPY_SRC_ACCESS_ORDER_DURING_API_CALL ||
         o == CU_MEMCPY_SRC_ACCESS_ORDER_ANY;
}

// Element size of an array operand, 0 for a pointer; -1 when the operand is
// invalid (unknown type or array).
int64_t OperandElementSize(ClientState* s, const CUmemcpy3DOperand& op) {
  if (op.type == CU_MEMCPY_OPERAND_TYPE_POINTER) return 0;
  if (op.type != CU_MEMCPY_OPERAND_TYPE_ARRAY) return -1;
  ArrayObj a;
  if (!FindArray(s, op.op.array.array, &a)) return -1;
  return static_cast<int64_t>(FormatBytes(a.desc.Format) * a.desc.NumChannels);
}

// One side of the CUDA_MEMCPY3D an operand describes.
void Side(const CUmemcpy3DOperand& op, uint64_t elem, const CUextent3D& extent, CUmemorytype* type,
          CUdeviceptr* ptr, CUarray* array, size_t* x_bytes, size_t* y, size_t* z, size_t* pitch,
          size_t* height) {
  if (op.type == CU_MEMCPY_OPERAND_TYPE_ARRAY) {
    *type = CU_MEMORYTYPE_ARRAY;
    *array = op.op.array.array;
    *x_bytes = op.op.array.offset.x * elem;
    *y = op.op.array.offset.y;
    *z = op.op.array.offset.z;
    return;
  }
  *type = CU_MEMORYTYPE_UNIFIED;
  *ptr = op.op.ptr.ptr;
  *pitch = (op.op.ptr.rowLength ? op.op.ptr.rowLength : extent.width) * elem;
  *height = op.op.ptr.layerHeight ? op.op.ptr.layerHeight : extent.height;
}

CUresult Batch3D(size_t count, CUDA_MEMCPY3D_BATCH_OP* ops, size_t* failIdx, unsigned long long flags,
                 CUstream h, bool per_thread) {
  if (failIdx != nullptr) *failIdx = SIZE_MAX;
  RGPU_STATE_OR_RETURN(s);
  if (count == 0 || ops == nullptr || flags != 0) return CUDA_ERROR_INVALID_VALUE;
  if ((h == nullptr && !per_thread) || h == CU_STREAM_LEGACY) return CUDA_ERROR_INVALID_VALUE;
  std::vector<CUDA_MEMCPY3D> copies(count);
  for (size_t i = 0; i < count; ++i) {
    const CUDA_MEMCPY3D_BATCH_OP& op = ops[i];
    const int64_t src_elem = OperandElementSize(s, op.src), dst_elem = OperandElementSize(s, op.dst);
    const bool bad =
        src_elem < 0 || dst_elem < 0 || (src_elem > 0 && dst_elem > 0 && src_elem != dst_elem) ||
        op.extent.width == 0 || op.extent.height == 0 || op.extent.depth == 0 ||
        !ValidAccessOrder(op.srcAccessOrder) ||
        (op.flags & ~static_cast<unsigned>(CU_MEMCPY_FLAG_PREFER_OVERLAP_WITH_COMPUTE)) != 0;
    const auto bad_pointer = [&](const CUmemcpy3DOperand& o) {
      return o.type == CU_MEMCPY_OPERAND_TYPE_POINTER &&
             ((o.op.ptr.rowLength != 0 && o.op.ptr.rowLength < op.extent.width) ||
              (o.op.ptr.layerHeight != 0 && o.op.ptr.layerHeight < op.extent.height));
    };
    if (bad || bad_pointer(op.src) || bad_pointer(op.dst)) {
      if (failIdx != nullptr) *failIdx = i;
      return CUDA_ERROR_INVALID_VALUE;
    }
    const uint64_t elem = static_cast<uint64_t>(src_elem > 0 ? src_elem : dst_elem > 0 ? dst_elem : 1);
    CUDA_MEMCPY3D& c = copies[i];
    c = CUDA_MEMCPY3D{};
    Side(op.src, elem, op.extent, &c.srcMemoryType, &c.srcDevice, &c.srcArray, &c.srcXInBytes, &c.srcY,
         &c.srcZ, &c.srcPitch, &c.srcHeight);
    Side(op.dst, elem, op.extent, &c.dstMemoryType, &c.dstDevice, &c.dstArray, &c.dstXInBytes, &c.dstY,
         &c.dstZ, &c.dstPitch, &c.dstHeight);
    c.WidthInBytes = op.extent.width * elem;
    c.Height = op.extent.height;
    c.Depth = op.extent.depth;
  }
  for (size_t i = 0; i < count; ++i) {
    if (CUresult r = Memcpy3DAny(copies[i], h, true, per_thread); r != CUDA_SUCCESS) {
      if (failIdx != nullptr) *failIdx = i;
      return r;
    }
  }
  return CUDA_SUCCESS;
}

}  // namespace

extern "C" {

// CUDA 12.8's form (with failIdx) and CUDA 13's (_v2, without).
CUresult cuMemcpyBatchAsync(CUdeviceptr* dsts, CUdeviceptr* srcs, size_t* sizes, size_t count,
                            CUmemcpyAttributes* attrs, size_t* attrsIdxs, size_t numAttrs, size_t* failIdx,
                            CUstream h) {
  return Batch(dsts, srcs, sizes, count, attrs, attrsIdxs, numAttrs, failIdx, h, false);
}
CUresult cuMemcpyBatchAsync_ptsz(CUdeviceptr* dsts, CUdeviceptr* srcs, size_t* sizes, size_t count,
                                 CUmemcpyAttributes* attrs, size_t* attrsIdxs, size_t numAttrs, size_t* failIdx,
                                 CUstream h) {
  return Batch(dsts, srcs, sizes, count, attrs, attrsIdxs, numAttrs, failIdx, h, true);
}
CUresult cuMemcpyBatchAsync_v2(CUdeviceptr* dsts, CUdeviceptr* srcs, size_t* sizes, size_t count,
                               CUmemcpyAttributes* attrs, size_t* attrsIdxs, size_t numAttrs, CUstream h) {
  return Batch(dsts, srcs, sizes, count, attrs, attrsIdxs, numAttrs, nullptr, h, false);
}
CUresult cuMemcpyBatchAsync_v2_ptsz(CUdeviceptr* dsts, CUdeviceptr* srcs, size_t* sizes, size_t count,
                                    CUmemcpyAttributes* attrs, size_t* attrsIdxs, size_t numAttrs, CUstream h) {
  return Batch(dsts, srcs, sizes, count, attrs, attrsIdxs, numAttrs, nullptr, h, true);
}

CUresult cuMemcpy3DBatchAsync(size_t n, CUDA_MEMCPY3D_BATCH_OP* ops, size_t* failIdx, unsigned long long flags,
                              CUstream h) {
  return Batch3D(n, ops, failIdx, flags, h, false);
}
CUresult cuMemcpy3DBatchAsync_ptsz(size_t n, CUDA_MEMCPY3D_BATCH_OP* ops, size_t* failIdx,
                                   unsigned long long flags, CUstream h) {
  return Batch3D(n, ops, failIdx, flags, h, true);
}
CUresult cuMemcpy3DBatchAsync_v2(size_t n, CUDA_MEMCPY3D_BATCH_OP* ops, unsigned long long flags, CUstream h) {
  return Batch3D(n, ops, nullptr, flags, h, false);
}
CUresult cuMemcpy3DBatchAsync_v2_ptsz(size_t n, CUDA_MEMCPY3D_BATCH_OP* ops, unsigned long long flags,
                                      CUstream h) {
  return Batch3D(n, ops, nullptr, flags, h, true);
}

}  // extern "C"
