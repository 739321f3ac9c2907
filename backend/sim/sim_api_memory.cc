// Sim driver functions: device memory, copies in every direction, memsets.
//
// Device addresses are host addresses inside a device arena (sim_memory.h).
// Every device range a call touches must lie inside ONE live allocation,
// otherwise the call fails with CUDA_ERROR_INVALID_VALUE before any byte
// moves. Host pointers cannot be checked beyond null (the worker owns them).
// Copies are synchronous, also the *Async ones (after their stream is
// validated), except that a capturing stream records them for cuGraphLaunch. A CUDA
// array side (sim_arrays.h) is addressed like pitched memory with pitch =
// the array's row bytes, and must lie inside the array.
#include <cstring>
#include <sys/mman.h>
#include <unistd.h>

#include "backend/sim/sim_arrays.h"
#include "backend/sim/sim_state.h"
#include "common/log.h"

namespace rgpu::backend::sim {
namespace {

bool Mul(uint64_t a, uint64_t b, uint64_t* out) { return !__builtin_mul_overflow(a, b, out); }
bool Add(uint64_t a, uint64_t b, uint64_t* out) { return !__builtin_add_overflow(a, b, out); }

// One side of a 3D copy, resolved to an address.
struct Side {
  bool device = false;
  uint64_t base = 0;   // address of (0,0,0)
  uint64_t x = 0, y = 0, z = 0;
  uint64_t pitch = 0, height = 0;  // row pitch in bytes, rows per slice
  bool array = false;              // a CUDA array: rows `height`, slices below
  uint64_t slices = 0;
};

CUresult ResolveSide(SimDevice* s, const CUmemorytype& type, const void* host, CUdeviceptr device,
                     CUarray array, Side* out) {
  switch (EnumValue(type)) {
    case CU_MEMORYTYPE_HOST:
      out->device = false;
      out->base = reinterpret_cast<uint64_t>(host);
      break;
    case CU_MEMORYTYPE_DEVICE:
      out->device = true;
      out->base = device;
      break;
    case CU_MEMORYTYPE_UNIFIED:
      // A unified address is device memory exactly when it lies in an arena.
      out->device = s->ArenaFor(device) != nullptr;
      out->base = device;
      break;
    case CU_MEMORYTYPE_ARRAY: {
      SimArray* a = FindSimArray(FromHandle(array));
      if (a == nullptr) return CUDA_ERROR_INVALID_HANDLE;
      out->device = false;
      out->array = true;
      out->base = reinterpret_cast<uint64_t>(a->bytes.data());
      out->pitch = a->row_bytes;
      out->height = a->rows;
      out->slices = a->slices;
      break;
    }
    default:
      return CUDA_ERROR_INVALID_VALUE;
  }
  return out->base == 0 ? CUDA_ERROR_INVALID_VALUE : CUDA_SUCCESS;
}

// First byte and one-past-last byte a copy of width x height x depth touches.
bool Extent(const Side& sd, uint64_t width, uint64_t height, uint64_t depth, uint64_t* first,
            uint64_t* end) {
  uint64_t rows = 0, first_row = 0, last_row = 0, off = 0, last_off = 0;
  if (!Mul(sd.z, sd.height, &rows) || !Add(rows, sd.y, &first_row) ||
      !Mul(first_row, sd.pitch, &off) || !Add(off, sd.x, &off) || !Add(sd.base, off, first)) {
    return false;
  }
  uint64_t last_z = 0, last_y = 0;
  if (!Add(sd.z, depth - 1, &last_z) || !Add(sd.y, height - 1, &last_y) ||
      !Mul(last_z, sd.height, &rows) || !Add(rows, last_y, &last_row) ||
      !Mul(last_row, sd.pitch, &last_off) || !Add(last_off, sd.x, &last_off) ||
      !Add(last_off, width, &last_off) || !Add(sd.base, last_off, end)) {
    return false;
  }
  return true;
}

CUresult Copy3D(SimDevice* s, Side src, Side dst, uint64_t width, uint64_t height, uint64_t depth) {
  if (width == 0 || height == 0 || depth == 0) return CUDA_SUCCESS;
  // A row must fit in its pitch, even for a single row (the driver refuses
  // pitch 0 there too), and no pitch may exceed CU_DEVICE_ATTRIBUTE_MAX_PITCH.
  uint64_t max_pitch = static_cast<uint64_t>(s->Attr(0, CU_DEVICE_ATTRIBUTE_MAX_PITCH));
  for (const Side* sd : {&src, &dst}) {
    if (sd->array && (sd->x > sd->pitch || width > sd->pitch - sd->x || sd->y > sd->height ||
                      height > sd->height - sd->y || sd->z > sd->slices || depth > sd->slices - sd->z))
      return CUDA_ERROR_INVALID_VALUE;
    if (sd->pitch < width || sd->pitch > max_pitch) return CUDA_ERROR_INVALID_VALUE;
    if (depth > 1 && sd->height < height) return CUDA_ERROR_INVALID_VALUE;
  }
  uint64_t sf = 0, se = 0, df = 0, de = 0;
  if (!Extent(src, width, height, depth, &sf, &se) || !Extent(dst, width, height, depth, &df, &de)) {
    return CUDA_ERROR_INVALID_VALUE;
  }
  if (src.device && !s->IsDeviceRange(sf, se - sf)) return CUDA_ERROR_INVALID_VALUE;
  if (dst.device && !s->IsDeviceRange(df, de - df)) return CUDA_ERROR_INVALID_VALUE;
  for (uint64_t z = 0; z < depth; ++z) {
    for (uint64_t y = 0; y < height; ++y) {
      uint64_t so = ((src.z + z) * src.height + src.y + y) * src.pitch + src.x;
      uint64_t d_o = ((dst.z + z) * dst.height + dst.y + y) * dst.pitch + dst.x;
      std::memmove(reinterpret_cast<void*>(dst.base + d_o),
                   reinterpret_cast<const void*>(src.base + so), width);
    }
  }
  return CUDA_SUCCESS;
}

CUresult Copy2DImpl(SimDevice* s, const CUDA_MEMCPY2D* p) {
  if (p == nullptr) return CUDA_ERROR_INVALID_VALUE;
  Side src, dst;
  if (CUresult r = ResolveSide(s, p->srcMemoryType, p->srcHost, p->srcDevice, p->srcArray, &src)) return r;
  if (CUresult r = ResolveSide(s, p->dstMemoryType, p->dstHost, p->dstDevice, p->dstArray, &dst)) return r;
  src.x = p->srcXInBytes, src.y = p->srcY;
  if (!src.array) src.pitch = p->srcPitch;
  dst.x = p->dstXInBytes, dst.y = p->dstY;
  if (!dst.array) dst.pitch = p->dstPitch;
  return Copy3D(s, src, dst, p->WidthInBytes, p->Height, 1);
}

CUresult Copy3DImpl(SimDevice* s, const CUDA_MEMCPY3D* p) {
  if (p == nullptr || p->reserved0 != nullptr || p->reserved1 != nullptr || p->srcLOD != 0 ||
      p->dstLOD != 0) {
    return CUDA_ERROR_INVALID_VALUE;
  }
  Side src, dst;
  if (CUresult r = ResolveSide(s, p->srcMemoryType, p->srcHost, p->srcDevice, p->srcArray, &src)) return r;
  if (CUresult r = ResolveSide(s, p->dstMemoryType, p->dstHost, p->dstDevice, p->dstArray, &dst)) return r;
  src.x = p->srcXInBytes, src.y = p->srcY, src.z = p->srcZ;
  if (!src.array) src.pitch = p->srcPitch, src.height = p->srcHeight;
  dst.x = p->dstXInBytes, dst.y = p->dstY, dst.z = p->dstZ;
  if (!dst.array) dst.pitch = p->dstPitch, dst.height = p->dstHeight;
  return Copy3D(s, src, dst, p->WidthInBytes, p->Height, p->Depth);
}

CUresult Linear(SimDevice* s, bool src_device, uint64_t src, bool dst_device, uint64_t dst,
                size_t n) {
  if (n == 0) return CUDA_SUCCESS;
  if (src == 0 || dst == 0) return CUDA_ERROR_INVALID_VALUE;
  if (src_device && !s->IsDeviceRange(src, n)) return CUDA_ERROR_INVALID_VALUE;
  if (dst_device && !s->IsDeviceRange(dst, n)) return CUDA_ERROR_INVALID_VALUE;
  std::memmove(reinterpret_cast<void*>(dst), reinterpret_cast<const void*>(src), n);
  return CUDA_SUCCESS;
}

// Zeroes [dst, dst + n) of arena memory. Whole pages are dropped
// (MADV_DONTNEED: they read as zero and hold no host memory until written)
// rather than written: a wipe or scrub of the whole simulated card (tens of
// GiB) must not commit that much of the host.
void ZeroRange(CUdeviceptr dst, uint64_t n) {
  const uint64_t page = static_cast<uint64_t>(sysconf(_SC_PAGESIZE));
  uint64_t first = (dst + page - 1) / page * page, last = (dst + n) / page * page;
  if (n < 4 * page || first >= last) {
    std::memset(reinterpret_cast<void*>(dst), 0, n);
    return;
  }
  std::memset(reinterpret_cast<void*>(dst), 0, first - dst);
  if (madvise(reinterpret_cast<void*>(first), last - first, MADV_DONTNEED) != 0)
    std::memset(reinterpret_cast<void*>(first), 0, last - first);
  std::memset(reinterpret_cast<void*>(last), 0, dst + n - last);
}

// Memset of `height` rows of `width` elements of `elem` bytes, rows `pitch`
// apart (pitch ignored for one row).
CUresult Memset2D(SimDevice* s, CUdeviceptr dst, size_t pitch, uint32_t value, uint32_t elem,
                  size_t width, size_t height) {
  if (dst % elem != 0) return CUDA_ERROR_INVALID_VALUE;
  if (width == 0 || height == 0) return CUDA_SUCCESS;
  uint64_t row = 0, span = 0;
  if (!Mul(width, elem, &row)) return CUDA_ERROR_INVALID_VALUE;
  if (height > 1) {
    if (pitch < row || pitch % elem != 0) return CUDA_ERROR_INVALID_VALUE;
    if (!Mul(height - 1, pitch, &span) || !Add(span, row, &span)) return CUDA_ERROR_INVALID_VALUE;
  } else {
    span = row;
  }
  if (!s->IsDeviceRange(dst, span)) return CUDA_ERROR_INVALID_VALUE;
  if (value == 0 && height == 1) {
    ZeroRange(dst, span);
    return CUDA_SUCCESS;
  }
  for (size_t y = 0; y < height; ++y) {
    auto* p = reinterpret_cast<unsigned char*>(dst + y * pitch);
    switch (elem) {
      case 1: std::memset(p, static_cast<int>(value & 0xff), width); break;
      case 2: {
        uint16_t v = static_cast<uint16_t>(value);
        for (size_t i = 0; i < width; ++i) std::memcpy(p + 2 * i, &v, 2);
        break;
      }
      default: {
        for (size_t i = 0; i < width; ++i) std::memcpy(p + 4 * i, &value, 4);
        break;
      }
    }
  }
  return CUDA_SUCCESS;
}

}  // namespace

// ---- allocation ------------------------------------------------------------

CUresult cuMemAlloc_v2(CUdeviceptr* dptr, size_t bytesize) {
  SIM_ENTER(s);
  if (dptr == nullptr) return CUDA_ERROR_INVALID_VALUE;
  SIM_CURRENT_CTX(s, ctx);
  if (CUresult r = s->CheckUnsafeCall(); r != CUDA_SUCCESS) return r;
  if (bytesize == 0) return CUDA_ERROR_INVALID_VALUE;
  uint64_t p = s->devices[ctx->device]->arena.Allocate(bytesize, 0, ctx->id);
  if (p == 0) return CUDA_ERROR_OUT_OF_MEMORY;
  *dptr = p;
  return CUDA_SUCCESS;
}

CUresult cuMemAllocPitch_v2(CUdeviceptr* dptr, size_t* pPitch, size_t WidthInBytes, size_t Height,
                            unsigned int ElementSizeBytes) {
  SIM_ENTER(s);
  if (dptr == nullptr || pPitch == nullptr) return CUDA_ERROR_INVALID_VALUE;
  SIM_CURRENT_CTX(s, ctx);
  if (CUresult r = s->CheckUnsafeCall(); r != CUDA_SUCCESS) return r;
  if (ElementSizeBytes != 4 && ElementSizeBytes != 8 && ElementSizeBytes != 16) {
    return CUDA_ERROR_INVALID_VALUE;
  }
  uint64_t max_pitch = static_cast<uint64_t>(s->Attr(ctx->device, CU_DEVICE_ATTRIBUTE_MAX_PITCH));
  if (WidthInBytes == 0 || Height == 0 || WidthInBytes > max_pitch) return CUDA_ERROR_INVALID_VALUE;
  // Rows start on the texture alignment (512 bytes on Hopper).
  uint64_t align =
      static_cast<uint64_t>(std::max(1, s->Attr(ctx->device, CU_DEVICE_ATTRIBUTE_TEXTURE_ALIGNMENT)));
  uint64_t pitch = (WidthInBytes + align - 1) / align * align, bytes = 0;
  if (!Mul(pitch, Height, &bytes)) return CUDA_ERROR_OUT_OF_MEMORY;
  uint64_t p = s->devices[ctx->device]->arena.Allocate(bytes, 0, ctx->id);
  if (p == 0) return CUDA_ERROR_OUT_OF_MEMORY;
  *dptr = p;
  *pPitch = pitch;
  return CUDA_SUCCESS;
}

CUresult cuMemFree_v2(CUdeviceptr dptr) {
  SIM_ENTER(s);
  SIM_CURRENT_CTX(s, ctx);
  if (CUresult r = s->CheckUnsafeCall(); r != CUDA_SUCCESS) return r;
  if (dptr == 0) return CUDA_SUCCESS;  // like free(NULL), on the real driver too
  Arena* a = s->ArenaFor(dptr);
  if (a == nullptr) return CUDA_ERROR_INVALID_VALUE;
  const Block* b = a->Find(dptr);
  // Only the start of a user allocation can be freed (not a module global).
  if (b == nullptr || b->base != dptr || b->owner != 0) return CUDA_ERROR_INVALID_VALUE;
  a->Free(dptr);
  return CUDA_SUCCESS;
}

CUresult cuMemGetInfo_v2(size_t* free, size_t* total) {
  SIM_ENTER(s);
  if (free == nullptr || total == nullptr) return CUDA_ERROR_INVALID_VALUE;
  SIM_CURRENT_CTX(s, ctx);
  const Device& d = *s->devices[ctx->device];
  *total = d.facts.total_mem;
  *free = d.arena.used() >= d.facts.total_mem ? 0 : d.facts.total_mem - d.arena.used();
  return CUDA_SUCCESS;
}

CUresult cuMemGetAddressRange_v2(CUdeviceptr* pbase, size_t* psize, CUdeviceptr dptr) {
  SIM_ENTER(s);
  SIM_CURRENT_CTX(s, ctx);
  Arena* a = s->ArenaFor(dptr);
  const Block* b = a ? a->Find(dptr) : nullptr;
  if (b == nullptr) return CUDA_ERROR_NOT_FOUND;
  if (pbase != nullptr) *pbase = b->base;
  if (psize != nullptr) *psize = b->size;
  return CUDA_SUCCESS;
}

// ---- linear copies -----------------------------------------------------------

// Synchronous copies and memsets: "potentially unsafe" during stream capture.
#define SIM_SYNC_PROLOGUE()                                                 \
  SIM_ENTER(s);                                                             \
  if (CUresult r = s->CheckStream(nullptr); r != CUDA_SUCCESS) return r;    \
  if (CUresult r = s->CheckUnsafeCall(); r != CUDA_SUCCESS) return r

// Asynchronous ones run now or are recorded by a capturing stream.
#define SIM_ASYNC(stream, expr)                                             \
  SIM_ENTER(s);                                                             \
  if (CUresult r = s->CheckStream(stream); r != CUDA_SUCCESS) return r;     \
  return s->Submit(stream, [=](SimDevice* d) { return (expr); })

CUresult cuMemcpyHtoD_v2(CUdeviceptr dstDevice, const void* srcHost, size_t ByteCount) {
  SIM_SYNC_PROLOGUE();
  return Linear(s, false, reinterpret_cast<uint64_t>(srcHost), true, dstDevice, ByteCount);
}
CUresult cuMemcpyDtoH_v2(void* dstHost, CUdeviceptr srcDevice, size_t ByteCount) {
  SIM_SYNC_PROLOGUE();
  return Linear(s, true, srcDevice, false, reinterpret_cast<uint64_t>(dstHost), ByteCount);
}
CUresult cuMemcpyDtoD_v2(CUdeviceptr dstDevice, CUdeviceptr srcDevice, size_t ByteCount) {
  SIM_SYNC_PROLOGUE();
  return Linear(s, true, srcDevice, true, dstDevice, ByteCount);
}
CUresult cuMemcpyHtoDAsync_v2(CUdeviceptr dstDevice, const void* srcHost, size_t ByteCount,
                              CUstream hStream) {
  SIM_ASYNC(hStream, Linear(d, false, reinterpret_cast<uint64_t>(srcHost), true, dstDevice, ByteCount));
}
CUresult cuMemcpyDtoHAsync_v2(void* dstHost, CUdeviceptr srcDevice, size_t ByteCount,
                              CUstream hStream) {
  SIM_ASYNC(hStream, Linear(d, true, srcDevice, false, reinterpret_cast<uint64_t>(dstHost), ByteCount));
}
CUresult cuMemcpyDtoDAsync_v2(CUdeviceptr dstDevice, CUdeviceptr srcDevice, size_t ByteCount,
                              CUstream hStream) {
  SIM_ASYNC(hStream, Linear(d, true, srcDevice, true, dstDevice, ByteCount));
}

// ---- 2D / 3D copies ----------------------------------------------------------

CUresult cuMemcpy2D_v2(const CUDA_MEMCPY2D* pCopy) {
  SIM_SYNC_PROLOGUE();
  return Copy2DImpl(s, pCopy);
}
CUresult cuMemcpy2DUnaligned_v2(const CUDA_MEMCPY2D* pCopy) {
  SIM_SYNC_PROLOGUE();
  return Copy2DImpl(s, pCopy);
}
CUresult cuMemcpy2DAsync_v2(const CUDA_MEMCPY2D* pCopy, CUstream hStream) {
  if (pCopy == nullptr) return CUDA_ERROR_INVALID_VALUE;
  CUDA_MEMCPY2D c = *pCopy;  // a captured copy must not depend on the caller's struct
  SIM_ASYNC(hStream, Copy2DImpl(d, &c));
}
CUresult cuMemcpy3D_v2(const CUDA_MEMCPY3D* pCopy) {
  SIM_SYNC_PROLOGUE();
  return Copy3DImpl(s, pCopy);
}
CUresult cuMemcpy3DAsync_v2(const CUDA_MEMCPY3D* pCopy, CUstream hStream) {
  if (pCopy == nullptr) return CUDA_ERROR_INVALID_VALUE;
  CUDA_MEMCPY3D c = *pCopy;
  SIM_ASYNC(hStream, Copy3DImpl(d, &c));
}

// ---- memsets -----------------------------------------------------------------

CUresult cuMemsetD8_v2(CUdeviceptr dstDevice, unsigned char uc, size_t N) {
  SIM_SYNC_PROLOGUE();
  return Memset2D(s, dstDevice, 0, uc, 1, N, 1);
}
CUresult cuMemsetD16_v2(CUdeviceptr dstDevice, unsigned short us, size_t N) {
  SIM_SYNC_PROLOGUE();
  return Memset2D(s, dstDevice, 0, us, 2, N, 1);
}
CUresult cuMemsetD32_v2(CUdeviceptr dstDevice, unsigned int ui, size_t N) {
  SIM_SYNC_PROLOGUE();
  return Memset2D(s, dstDevice, 0, ui, 4, N, 1);
}
CUresult cuMemsetD2D8_v2(CUdeviceptr dstDevice, size_t dstPitch, unsigned char uc, size_t Width,
                         size_t Height) {
  SIM_SYNC_PROLOGUE();
  return Memset2D(s, dstDevice, dstPitch, uc, 1, Width, Height);
}
CUresult cuMemsetD2D16_v2(CUdeviceptr dstDevice, size_t dstPitch, unsigned short us, size_t Width,
                          size_t Height) {
  SIM_SYNC_PROLOGUE();
  return Memset2D(s, dstDevice, dstPitch, us, 2, Width, Height);
}
CUresult cuMemsetD2D32_v2(CUdeviceptr dstDevice, size_t dstPitch, unsigned int ui, size_t Width,
                          size_t Height) {
  SIM_SYNC_PROLOGUE();
  return Memset2D(s, dstDevice, dstPitch, ui, 4, Width, Height);
}
CUresult cuMemsetD8Async(CUdeviceptr dstDevice, unsigned char uc, size_t N, CUstream hStream) {
  SIM_ASYNC(hStream, Memset2D(d, dstDevice, 0, uc, 1, N, 1));
}
CUresult cuMemsetD16Async(CUdeviceptr dstDevice, unsigned short us, size_t N, CUstream hStream) {
  SIM_ASYNC(hStream, Memset2D(d, dstDevice, 0, us, 2, N, 1));
}
CUresult cuMemsetD32Async(CUdeviceptr dstDevice, unsigned int ui, size_t N, CUstream hStream) {
  SIM_ASYNC(hStream, Memset2D(d, dstDevice, 0, ui, 4, N, 1));
}
CUresult cuMemsetD2D8Async(CUdeviceptr dstDevice, size_t dstPitch, unsigned char uc, size_t Width,
                           size_t Height, CUstream hStream) {
  SIM_ASYNC(hStream, Memset2D(d, dstDevice, dstPitch, uc, 1, Width, Height));
}
CUresult cuMemsetD2D16Async(CUdeviceptr dstDevice, size_t dstPitch, unsigned short us, size_t Width,
                            size_t Height, CUstream hStream) {
  SIM_ASYNC(hStream, Memset2D(d, dstDevice, dstPitch, us, 2, Width, Height));
}
CUresult cuMemsetD2D32Async(CUdeviceptr dstDevice, size_t dstPitch, unsigned int ui, size_t Width,
                            size_t Height, CUstream hStream) {
  SIM_ASYNC(hStream, Memset2D(d, dstDevice, dstPitch, ui, 4, Width, Height));
}

}  // namespace rgpu::backend::sim
