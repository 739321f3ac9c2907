// Handlers: allocation, copies, memsets. Every device range a client names is
// checked against this session's allocations before the driver sees it.
#include <algorithm>
#include <vector>

#include "server/worker/d2h_staging.h"
#include "server/worker/device_heap.h"
#include "server/worker/handlers.gen.h"
#include "server/worker/session.h"

namespace rgpu::worker {
namespace {

// Owned by the single worker thread; holds device->host reply data until the
// reply is encoded (the dispatcher encodes before the next request).
std::vector<uint8_t>& ReplyScratch() {
  static std::vector<uint8_t> buf;
  return buf;
}

Status CheckedMul(uint64_t a, uint64_t b, uint64_t* out, const char* what) {
  if (a != 0 && b > UINT64_MAX / a)
    return Status::Cuda(CUDA_ERROR_INVALID_VALUE, std::string(what) + ": size overflows");
  *out = a * b;
  return {};
}

// The bytes a pitched 3D region touches: from its first to its last byte.
Status RegionSpan(uint64_t x, uint64_t y, uint64_t z, uint64_t pitch, uint64_t rows_per_slice,
                  uint64_t width, uint64_t height, uint64_t depth, uint64_t* offset,
                  uint64_t* length) {
  if (width == 0 || height == 0 || depth == 0) {
    *offset = 0;
    *length = 0;
    return {};
  }
  if (height > 1 && pitch < width + x)
    return Status::Cuda(CUDA_ERROR_INVALID_VALUE, "pitch smaller than the row");
  uint64_t slice = 0, first = 0, last = 0;
  RGPU_RETURN_IF_ERROR(CheckedMul(pitch, rows_per_slice, &slice, "slice"));
  uint64_t a = 0, b = 0;
  RGPU_RETURN_IF_ERROR(CheckedMul(z, slice, &a, "z"));
  RGPU_RETURN_IF_ERROR(CheckedMul(y, pitch, &b, "y"));
  first = a + b + x;
  RGPU_RETURN_IF_ERROR(CheckedMul(z + depth - 1, slice, &a, "depth"));
  RGPU_RETURN_IF_ERROR(CheckedMul(y + height - 1, pitch, &b, "height"));
  last = a + b + x + width;
  if (last < first) return Status::Cuda(CUDA_ERROR_INVALID_VALUE, "region overflows");
  *offset = first;
  *length = last - first;
  return {};
}

// An array side of a copy: the client's array id names one of this
// session's arrays, and the box must lie inside it.
Status CheckArraySide(Session& s, uint64_t id, uint64_t x, uint64_t y, uint64_t z, uint64_t width,
                      uint64_t height, uint64_t depth, const char* what, CUarray* out) {
  Result<ArrayEntry*> a = s.arrays().Find(id);
  if (!a.ok()) return a.take_status();
  const ArrayEntry& e = **a;
  if (x > e.row_bytes || width > e.row_bytes - x || y > e.rows || height > e.rows - y || z > e.slices ||
      depth > e.slices - z)
    return Status::Cuda(CUDA_ERROR_INVALID_VALUE, std::string(what) + ": outside the array");
  *out = e.array;
  return {};
}

}  // namespace

Status HandleMemAlloc(Session& s, const proto::MemAllocReq& req, proto::MemAllocRep* rep) {
  RGPU_RETURN_IF_ERROR(s.UseContext(req.ctx));
  RGPU_RETURN_IF_ERROR(s.quota().Check(req.size, "cuMemAlloc"));
  CUdeviceptr p = 0;
  if (s.heap() != nullptr) {
    // Idle detach is on: memory that can leave the card and come back at
    // the same address (device_heap.h).
    Result<CUdeviceptr> r = s.heap()->Alloc(req.size);
    if (!r.ok()) return r.take_status();
    s.AddAllocation(*r, req.size, /*owned=*/false);
    s.quota().AddAllocation(*r, req.size);
    rep->dptr = *r;
    return {};
  }
  RGPU_RETURN_IF_ERROR(CuStatus(s.driver().cuMemAlloc_v2(&p, req.size), "cuMemAlloc"));
  s.AddAllocation(p, req.size);
  s.quota().AddAllocation(p, req.size);
  rep->dptr = p;
  return {};
}

Status HandleMemAllocPitch(Session& s, const proto::MemAllocPitchReq& req,
                           proto::MemAllocPitchRep* rep) {
  RGPU_RETURN_IF_ERROR(s.UseContext(req.ctx));
  // The pitch is known only once allocated: refuse what cannot fit even
  // unpadded, and give back what the padding took past the limit.
  uint64_t least = 0;
  if (CheckedMul(req.width, req.height, &least, "cuMemAllocPitch").ok())
    RGPU_RETURN_IF_ERROR(s.quota().Check(least, "cuMemAllocPitch"));
  CUdeviceptr p = 0;
  size_t pitch = 0;
  RGPU_RETURN_IF_ERROR(CuStatus(
      s.driver().cuMemAllocPitch_v2(&p, &pitch, req.width, req.height, req.elem_size),
      "cuMemAllocPitch"));
  uint64_t bytes = static_cast<uint64_t>(pitch) * req.height;
  if (Status fits = s.quota().Check(bytes, "cuMemAllocPitch"); !fits.ok()) {
    s.driver().cuMemFree_v2(p);
    return fits;
  }
  s.AddAllocation(p, bytes);
  s.quota().AddAllocation(p, bytes);
  rep->dptr = p;
  rep->pitch = pitch;
  return {};
}

Status HandleMemFree(Session& s, const proto::MemFreeReq& req, proto::MemFreeRep*) {
  RGPU_RETURN_IF_ERROR(s.UseContext(req.ctx));
  if (!s.RemoveAllocation(req.dptr))
    return Status::Cuda(CUDA_ERROR_INVALID_VALUE, "cuMemFree: not an allocation of this session");
  s.quota().RemoveAllocation(req.dptr);
  if (s.heap() != nullptr && s.heap()->Owns(req.dptr)) return s.heap()->Free(req.dptr);
  return CuStatus(s.driver().cuMemFree_v2(req.dptr), "cuMemFree");
}

Status HandleMemGetInfo(Session& s, const proto::MemGetInfoReq& req, proto::MemGetInfoRep* rep) {
  RGPU_RETURN_IF_ERROR(s.UseContext(req.ctx));
  size_t free = 0, total = 0;
  Status st = CuStatus(s.driver().cuMemGetInfo_v2(&free, &total), "cuMemGetInfo");
  // Under --max-mem the session's card is as large as its limit: programs
  // that size themselves by what is free then stay inside it.
  if (uint64_t limit = s.quota().limit(); limit != 0) {
    uint64_t left = limit - std::min(limit, s.quota().used());
    total = std::min<uint64_t>(total, limit);
    free = std::min<uint64_t>(free, left);
  }
  rep->free = free;
  rep->total = total;
  return st;
}

Status HandleMemcpyHtoD(Session& s, const proto::MemcpyHtoDReq& req, proto::MemcpyHtoDRep*) {
  RGPU_RETURN_IF_ERROR(s.UseContext(req.ctx));
  RGPU_RETURN_IF_ERROR(s.CheckRange(req.dst, req.data.size(), "cuMemcpyHtoD destination"));
  if (!req.is_async)
    return CuStatus(s.driver().cuMemcpyHtoD_v2(req.dst, req.data.data(), req.data.size()),
                    "cuMemcpyHtoD");
  Result<CUstream> st = s.FindStream(req.stream);
  if (!st.ok()) return st.take_status();
  // The frame buffer is pageable: the driver stages it before returning, so
  // it may be reused as soon as this call returns.
  return CuStatus(
      s.driver().cuMemcpyHtoDAsync_v2(req.dst, req.data.data(), req.data.size(), *st),
      "cuMemcpyHtoDAsync");
}

Status HandleMemcpyDtoH(Session& s, const proto::MemcpyDtoHReq& req, proto::MemcpyDtoHRep* rep) {
  RGPU_RETURN_IF_ERROR(s.UseContext(req.ctx));
  RGPU_RETURN_IF_ERROR(s.CheckRange(req.src, req.size, "cuMemcpyDtoH source"));
  if (req.size > (64u << 20))
    return Status::Cuda(CUDA_ERROR_INVALID_VALUE, "cuMemcpyDtoH: chunk over 64 MiB");
  if (req.size >= D2HStaging::kMinStaged && D2HStaging::Get(s.driver()).Available()) {
    // Pinned staging, sent while it still arrives (d2h_staging.h). A
    // synchronous copy runs on the legacy (or per-thread) stream as the
    // driver's cuMemcpyDtoH does, and its reply waits for all of it.
    Result<CUstream> stream = s.FindStream(req.stream);
    if (!stream.ok()) return stream.take_status();
    return D2HStaging::Get(s.driver()).Start(req.src, req.size, *stream, &rep->data);
  }
  std::vector<uint8_t>& buf = ReplyScratch();
  buf.resize(req.size);
  Status st;
  if (!req.is_async) {
    st = CuStatus(s.driver().cuMemcpyDtoH_v2(buf.data(), req.src, req.size), "cuMemcpyDtoH");
  } else {
    Result<CUstream> stream = s.FindStream(req.stream);
    if (!stream.ok()) return stream.take_status();
    // Into pageable memory the driver completes the copy before returning.
    st = CuStatus(s.driver().cuMemcpyDtoHAsync_v2(buf.data(), req.src, req.size, *stream),
                  "cuMemcpyDtoHAsync");
    if (st.ok()) st = CuStatus(s.driver().cuStreamSynchronize(*stream), "cuStreamSynchronize");
  }
  if (st.ok()) rep->data = buf;
  return st;
}

Status HandleMemcpyDtoD(Session& s, const proto::MemcpyDtoDReq& req, proto::MemcpyDtoDRep*) {
  RGPU_RETURN_IF_ERROR(s.UseContext(req.ctx));
  RGPU_RETURN_IF_ERROR(s.CheckRange(req.dst, req.size, "cuMemcpyDtoD destination"));
  RGPU_RETURN_IF_ERROR(s.CheckRange(req.src, req.size, "cuMemcpyDtoD source"));
  if (!req.is_async)
    return CuStatus(s.driver().cuMemcpyDtoD_v2(req.dst, req.src, req.size), "cuMemcpyDtoD");
  Result<CUstream> st = s.FindStream(req.stream);
  if (!st.ok()) return st.take_status();
  return CuStatus(s.driver().cuMemcpyDtoDAsync_v2(req.dst, req.src, req.size, *st),
                  "cuMemcpyDtoDAsync");
}

Status HandleMemset(Session& s, const proto::MemsetReq& req, proto::MemsetRep*) {
  RGPU_RETURN_IF_ERROR(s.UseContext(req.ctx));
  if (req.elem_size != 1 && req.elem_size != 2 && req.elem_size != 4)
    return Status::Cuda(CUDA_ERROR_INVALID_VALUE, "memset: element size must be 1, 2 or 4");
  const backend::DriverTable& d = s.driver();
  uint64_t row_bytes = 0;
  RGPU_RETURN_IF_ERROR(CheckedMul(req.width, req.elem_size, &row_bytes, "memset"));
  bool is2d = req.height > 1 || req.pitch != 0;
  uint64_t offset = 0, length = 0;
  RGPU_RETURN_IF_ERROR(RegionSpan(0, 0, 0, is2d ? req.pitch : row_bytes, req.height, row_bytes,
                                  req.height, 1, &offset, &length));
  RGPU_RETURN_IF_ERROR(s.CheckRange(req.dst, length, "memset destination"));
  CUstream stream = nullptr;
  if (req.is_async) {
    Result<CUstream> st = s.FindStream(req.stream);
    if (!st.ok()) return st.take_status();
    stream = *st;
  }
  CUresult r;
  uint32_t v = req.value;
  if (!is2d) {
    switch (req.elem_size) {
      case 1: r = req.is_async ? d.cuMemsetD8Async(req.dst, v, req.width, stream) : d.cuMemsetD8_v2(req.dst, v, req.width); break;
      case 2: r = req.is_async ? d.cuMemsetD16Async(req.dst, v, req.width, stream) : d.cuMemsetD16_v2(req.dst, v, req.width); break;
      default: r = req.is_async ? d.cuMemsetD32Async(req.dst, v, req.width, stream) : d.cuMemsetD32_v2(req.dst, v, req.width); break;
    }
  } else {
    switch (req.elem_size) {
      case 1: r = req.is_async ? d.cuMemsetD2D8Async(req.dst, req.pitch, v, req.width, req.height, stream) : d.cuMemsetD2D8_v2(req.dst, req.pitch, v, req.width, req.height); break;
      case 2: r = req.is_async ? d.cuMemsetD2D16Async(req.dst, req.pitch, v, req.width, req.height, stream) : d.cuMemsetD2D16_v2(req.dst, req.pitch, v, req.width, req.height); break;
      default: r = req.is_async ? d.cuMemsetD2D32Async(req.dst, req.pitch, v, req.width, req.height, stream) : d.cuMemsetD2D32_v2(req.dst, req.pitch, v, req.width, req.height); break;
    }
  }
  return CuStatus(r, "cuMemset");
}

Status HandleMemcpy3D(Session& s, const proto::Memcpy3DReq& req, proto::Memcpy3DRep* rep) {
  RGPU_RETURN_IF_ERROR(s.UseContext(req.ctx));
  CUDA_MEMCPY3D c{};
  uint64_t packed = 0, tmp = 0;
  RGPU_RETURN_IF_ERROR(CheckedMul(req.width_bytes, req.height, &tmp, "memcpy3D"));
  RGPU_RETURN_IF_ERROR(CheckedMul(tmp, req.depth, &packed, "memcpy3D"));
  c.WidthInBytes = req.width_bytes;
  c.Height = req.height;
  c.Depth = req.depth;
  // Source.
  if (req.src_type == CU_MEMORYTYPE_HOST) {
    if (req.data.size() != packed)
      return Status::Cuda(CUDA_ERROR_INVALID_VALUE, "memcpy3D: host data size mismatch");
    c.srcMemoryType = CU_MEMORYTYPE_HOST;
    c.srcHost = req.data.data();
    c.srcPitch = req.width_bytes;
    c.srcHeight = req.height;
  } else if (req.src_type == CU_MEMORYTYPE_DEVICE) {
    uint64_t off = 0, len = 0;
    RGPU_RETURN_IF_ERROR(RegionSpan(req.src_x, req.src_y, req.src_z, req.src_pitch,
                                    req.src_height ? req.src_height : req.height, req.width_bytes,
                                    req.height, req.depth, &off, &len));
    RGPU_RETURN_IF_ERROR(s.CheckRange(req.src_dev + off, len, "memcpy3D source"));
    c.srcMemoryType = CU_MEMORYTYPE_DEVICE;
    c.srcDevice = req.src_dev;
    c.srcXInBytes = req.src_x;
    c.srcY = req.src_y;
    c.srcZ = req.src_z;
    c.srcPitch = req.src_pitch;
    c.srcHeight = req.src_height;
  } else if (req.src_type == CU_MEMORYTYPE_ARRAY) {
    RGPU_RETURN_IF_ERROR(CheckArraySide(s, req.src_dev, req.src_x, req.src_y, req.src_z, req.width_bytes,
                                        req.height, req.depth, "memcpy3D source", &c.srcArray));
    c.srcMemoryType = CU_MEMORYTYPE_ARRAY;
    c.srcXInBytes = req.src_x;
    c.srcY = req.src_y;
    c.srcZ = req.src_z;
  } else {
    return Status::Cuda(CUDA_ERROR_INVALID_VALUE, "memcpy3D: bad source memory type");
  }
  // Destination.
  std::vector<uint8_t>& buf = ReplyScratch();
  if (req.dst_type == CU_MEMORYTYPE_HOST) {
    if (packed > (64u << 20))
      return Status::Cuda(CUDA_ERROR_INVALID_VALUE, "memcpy3D: host chunk over 64 MiB");
    buf.resize(packed);
    c.dstMemoryType = CU_MEMORYTYPE_HOST;
    c.dstHost = buf.data();
    c.dstPitch = req.width_bytes;
    c.dstHeight = req.height;
  } else if (req.dst_type == CU_MEMORYTYPE_DEVICE) {
    uint64_t off = 0, len = 0;
    RGPU_RETURN_IF_ERROR(RegionSpan(req.dst_x, req.dst_y, req.dst_z, req.dst_pitch,
                                    req.dst_height ? req.dst_height : req.height, req.width_bytes,
                                    req.height, req.depth, &off, &len));
    RGPU_RETURN_IF_ERROR(s.CheckRange(req.dst_dev + off, len, "memcpy3D destination"));
    c.dstMemoryType = CU_MEMORYTYPE_DEVICE;
    c.dstDevice = req.dst_dev;
    c.dstXInBytes = req.dst_x;
    c.dstY = req.dst_y;
    c.dstZ = req.dst_z;
    c.dstPitch = req.dst_pitch;
    c.dstHeight = req.dst_height;
  } else if (req.dst_type == CU_MEMORYTYPE_ARRAY) {
    RGPU_RETURN_IF_ERROR(CheckArraySide(s, req.dst_dev, req.dst_x, req.dst_y, req.dst_z, req.width_bytes,
                                        req.height, req.depth, "memcpy3D destination", &c.dstArray));
    c.dstMemoryType = CU_MEMORYTYPE_ARRAY;
    c.dstXInBytes = req.dst_x;
    c.dstY = req.dst_y;
    c.dstZ = req.dst_z;
  } else {
    return Status::Cuda(CUDA_ERROR_INVALID_VALUE, "memcpy3D: bad destination memory type");
  }
  Status st;
  if (req.is_async) {
    Result<CUstream> stream = s.FindStream(req.stream);
    if (!stream.ok()) return stream.take_status();
    st = CuStatus(s.driver().cuMemcpy3DAsync_v2(&c, *stream), "cuMemcpy3DAsync");
    if (st.ok() && req.dst_type == CU_MEMORYTYPE_HOST)
      st = CuStatus(s.driver().cuStreamSynchronize(*stream), "cuStreamSynchronize");
  } else {
    st = CuStatus(s.driver().cuMemcpy3D_v2(&c), "cuMemcpy3D");
  }
  if (st.ok() && req.dst_type == CU_MEMORYTYPE_HOST) rep->data = buf;
  return st;
}

}  // namespace rgpu::worker
