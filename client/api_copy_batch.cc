// cuMemcpyBatchAsync (cudaMemcpyBatchAsync): a batch of 1D copies on one
// stream. The batch runs in stream order and the copies inside it in no
// particular order, so issuing them one after another through the ordinary
// copy paths (api_copy.cc) is a valid execution; a host source is read
// during the call, which every source access order allows. The driver's
// argument checks are made first, so a bad batch copies nothing.
// (cuMemcpy3DBatchAsync, with CUDA arrays, is not offered: refused by name.)
#include <cstdint>

#include "client/api_common.h"

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

}  // extern "C"
