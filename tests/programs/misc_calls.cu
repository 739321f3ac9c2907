// misc_calls: small driver calls real programs use, through the driver API:
// tensor maps (tiled, im2col, im2col wide, address replacement), the
// profiler, stream attributes, persisting-L2 reset, function / kernel
// enumeration of a module and a library, cuMemGetAccess on a mapping,
// cuPointerSetAttribute(SYNC_MEMOPS), the newer pointer attributes (handle
// types, access flags, pool, mapping, block id) and memsets past an
// allocation. Prints "OK misc_calls" and exits 0 when every check holds.
#include "check.h"

#include <cuda.h>
#include <cudaProfiler.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <unistd.h>
#include <set>
#include <string>

// Kernel names the sim has host implementations for (backend/sim/test_kernels.cc):
// the sim accepts PTX only for those.
static const char kPtx[] =
    ".version 8.0\n"
    ".target sm_90\n"
    ".address_size 64\n"
    ".visible .entry multiplyByGlobal(.param .u64 p)\n{\n  ret;\n}\n"
    ".visible .entry addRowIndex(.param .u32 n, .param .u64 q)\n{\n  ret;\n}\n";

static void TensorMaps(CUdeviceptr buf, size_t size) {
  alignas(64) CUtensorMap map;
  memset(&map, 0, sizeof map);
  cuuint64_t dims[2] = {256, 64};       // 256 floats a row, 64 rows
  cuuint64_t strides[1] = {1024};       // bytes between rows
  cuuint32_t box[2] = {32, 8};
  cuuint32_t estrides[2] = {1, 1};
  CK(cuTensorMapEncodeTiled(&map, CU_TENSOR_MAP_DATA_TYPE_FLOAT32, 2, reinterpret_cast<void*>(buf), dims, strides,
                            box, estrides, CU_TENSOR_MAP_INTERLEAVE_NONE, CU_TENSOR_MAP_SWIZZLE_128B,
                            CU_TENSOR_MAP_L2_PROMOTION_L2_128B, CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE));
  bool nonzero = false;
  for (int i = 0; i < 16; ++i) nonzero |= map.opaque[i] != 0;
  EXPECT(nonzero);
  // Same arguments, same bytes.
  alignas(64) CUtensorMap again;
  CK(cuTensorMapEncodeTiled(&again, CU_TENSOR_MAP_DATA_TYPE_FLOAT32, 2, reinterpret_cast<void*>(buf), dims, strides,
                            box, estrides, CU_TENSOR_MAP_INTERLEAVE_NONE, CU_TENSOR_MAP_SWIZZLE_128B,
                            CU_TENSOR_MAP_L2_PROMOTION_L2_128B, CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE));
  EXPECT(memcmp(&map, &again, sizeof map) == 0);
  // Documented refusals: misaligned address, box over 256, rank 0 and 6.
  EXPECT_CU(CUDA_ERROR_INVALID_VALUE,
            cuTensorMapEncodeTiled(&map, CU_TENSOR_MAP_DATA_TYPE_FLOAT32, 2, reinterpret_cast<void*>(buf + 4), dims,
                                   strides, box, estrides, CU_TENSOR_MAP_INTERLEAVE_NONE, CU_TENSOR_MAP_SWIZZLE_NONE,
                                   CU_TENSOR_MAP_L2_PROMOTION_NONE, CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE));
  cuuint32_t big_box[2] = {512, 8};
  EXPECT_CU(CUDA_ERROR_INVALID_VALUE,
            cuTensorMapEncodeTiled(&map, CU_TENSOR_MAP_DATA_TYPE_FLOAT32, 2, reinterpret_cast<void*>(buf), dims,
                                   strides, big_box, estrides, CU_TENSOR_MAP_INTERLEAVE_NONE,
                                   CU_TENSOR_MAP_SWIZZLE_NONE, CU_TENSOR_MAP_L2_PROMOTION_NONE,
                                   CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE));
  EXPECT_CU(CUDA_ERROR_INVALID_VALUE,
            cuTensorMapEncodeTiled(&map, CU_TENSOR_MAP_DATA_TYPE_FLOAT32, 0, reinterpret_cast<void*>(buf), dims,
                                   strides, box, estrides, CU_TENSOR_MAP_INTERLEAVE_NONE, CU_TENSOR_MAP_SWIZZLE_NONE,
                                   CU_TENSOR_MAP_L2_PROMOTION_NONE, CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE));
  // A tensor larger than its allocation: the driver accepts it (it checks
  // the address, not the extent; measured on an H100).
  cuuint64_t huge[2] = {256, 1 << 20};
  EXPECT_CU(CUDA_SUCCESS,
            cuTensorMapEncodeTiled(&map, CU_TENSOR_MAP_DATA_TYPE_FLOAT32, 2, reinterpret_cast<void*>(buf), huge,
                                   strides, box, estrides, CU_TENSOR_MAP_INTERLEAVE_NONE, CU_TENSOR_MAP_SWIZZLE_NONE,
                                   CU_TENSOR_MAP_L2_PROMOTION_NONE, CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE));
  // Address replacement keeps the rest of the descriptor.
  alignas(64) CUtensorMap moved = again;
  CK(cuTensorMapReplaceAddress(&moved, reinterpret_cast<void*>(buf + 4096)));
  EXPECT(memcmp(&moved, &again, sizeof moved) != 0);
  EXPECT_CU(CUDA_ERROR_INVALID_VALUE, cuTensorMapReplaceAddress(&moved, reinterpret_cast<void*>(buf + 8)));
  CK(cuTensorMapReplaceAddress(&moved, reinterpret_cast<void*>(buf)));
  EXPECT(memcmp(&moved, &again, sizeof moved) == 0);

  // NHWC, 16 channels of fp16, 8 x 8 pixels, 2 images.
  cuuint64_t idims[4] = {16, 8, 8, 2};
  cuuint64_t istrides[3] = {32, 256, 2048};
  cuuint32_t iestrides[4] = {1, 1, 1, 1};
  int lower[2] = {0, 0}, upper[2] = {-1, -1};
  CK(cuTensorMapEncodeIm2col(&map, CU_TENSOR_MAP_DATA_TYPE_FLOAT16, 4, reinterpret_cast<void*>(buf), idims, istrides,
                             lower, upper, 16, 64, iestrides, CU_TENSOR_MAP_INTERLEAVE_NONE,
                             CU_TENSOR_MAP_SWIZZLE_NONE, CU_TENSOR_MAP_L2_PROMOTION_NONE,
                             CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE));
  EXPECT_CU(CUDA_ERROR_INVALID_VALUE,
            cuTensorMapEncodeIm2col(&map, CU_TENSOR_MAP_DATA_TYPE_FLOAT16, 2, reinterpret_cast<void*>(buf), idims,
                                    istrides, lower, upper, 16, 64, iestrides, CU_TENSOR_MAP_INTERLEAVE_NONE,
                                    CU_TENSOR_MAP_SWIZZLE_NONE, CU_TENSOR_MAP_L2_PROMOTION_NONE,
                                    CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE));
  CK(cuTensorMapEncodeIm2colWide(&map, CU_TENSOR_MAP_DATA_TYPE_FLOAT16, 4, reinterpret_cast<void*>(buf), idims,
                                 istrides, 0, -1, 16, 64, iestrides, CU_TENSOR_MAP_INTERLEAVE_NONE,
                                 CU_TENSOR_MAP_IM2COL_WIDE_MODE_W, CU_TENSOR_MAP_SWIZZLE_NONE,
                                 CU_TENSOR_MAP_L2_PROMOTION_NONE, CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE));
  (void)size;
  printf("tensor maps: tiled, im2col, im2col wide, replace address\n");
}

static void StreamAttributes(CUdeviceptr buf) {
  // Stream 0 is the legacy stream: the same id either way it is named.
  unsigned long long id_null = 0, id_legacy = 0, id_per_thread = 0;
  CK(cuStreamGetId(nullptr, &id_null));
  CK(cuStreamGetId(CU_STREAM_LEGACY, &id_legacy));
  CK(cuStreamGetId(CU_STREAM_PER_THREAD, &id_per_thread));
  EXPECT(id_null == id_legacy && id_null != id_per_thread);
  CUstream a = nullptr, b = nullptr;
  CK(cuStreamCreate(&a, CU_STREAM_NON_BLOCKING));
  CK(cuStreamCreate(&b, CU_STREAM_NON_BLOCKING));
  CUstreamAttrValue v;
  memset(&v, 0, sizeof v);
  CK(cuStreamGetAttribute(b, CU_STREAM_ATTRIBUTE_SYNCHRONIZATION_POLICY, &v));
  // Not CU_SYNC_POLICY_AUTO on the real driver (H100, driver 580), and not
  // documented: printed, so that run_programs.sh compares it with rgpu's.
  printf("sync policy of a new stream: %d\n", static_cast<int>(v.syncPolicy));
  v.syncPolicy = CU_SYNC_POLICY_SPIN;
  CK(cuStreamSetAttribute(a, CU_STREAM_ATTRIBUTE_SYNCHRONIZATION_POLICY, &v));
  memset(&v, 0, sizeof v);
  v.accessPolicyWindow.base_ptr = reinterpret_cast<void*>(buf);
  v.accessPolicyWindow.num_bytes = 4096;
  v.accessPolicyWindow.hitRatio = 0.5f;
  v.accessPolicyWindow.hitProp = CU_ACCESS_PROPERTY_PERSISTING;
  v.accessPolicyWindow.missProp = CU_ACCESS_PROPERTY_STREAMING;
  CK(cuStreamSetAttribute(a, CU_STREAM_ATTRIBUTE_ACCESS_POLICY_WINDOW, &v));
  CK(cuStreamSynchronize(a));
  memset(&v, 0, sizeof v);
  CK(cuStreamGetAttribute(a, CU_STREAM_ATTRIBUTE_SYNCHRONIZATION_POLICY, &v));
  EXPECT(v.syncPolicy == CU_SYNC_POLICY_SPIN);
  CK(cuStreamGetAttribute(a, CU_STREAM_ATTRIBUTE_ACCESS_POLICY_WINDOW, &v));
  EXPECT(v.accessPolicyWindow.num_bytes == 4096 && v.accessPolicyWindow.hitRatio == 0.5f);
  CK(cuStreamCopyAttributes(b, a));
  memset(&v, 0, sizeof v);
  CK(cuStreamGetAttribute(b, CU_STREAM_ATTRIBUTE_SYNCHRONIZATION_POLICY, &v));
  EXPECT(v.syncPolicy == CU_SYNC_POLICY_SPIN);
  // A priority out of range is clamped, and cuStreamGetPriority agrees.
  int least = 0, greatest = 0, prio = 1;
  CK(cuCtxGetStreamPriorityRange(&least, &greatest));
  memset(&v, 0, sizeof v);
  v.priority = greatest - 100;
  CK(cuStreamSetAttribute(a, CU_STREAM_ATTRIBUTE_PRIORITY, &v));
  CK(cuStreamGetPriority(a, &prio));
  EXPECT(prio == greatest);
  CK(cuStreamGetAttribute(b, CU_STREAM_ATTRIBUTE_PRIORITY, &v));
  EXPECT(v.priority == least);
  // Bad values are refused at the call, as the driver does.
  v.syncPolicy = static_cast<CUsynchronizationPolicy>(9);
  EXPECT_CU(CUDA_ERROR_INVALID_VALUE, cuStreamSetAttribute(a, CU_STREAM_ATTRIBUTE_SYNCHRONIZATION_POLICY, &v));
  EXPECT_CU(CUDA_ERROR_INVALID_VALUE,
            cuStreamGetAttribute(a, static_cast<CUstreamAttrID>(CU_LAUNCH_ATTRIBUTE_COOPERATIVE), &v));
  CK(cuCtxResetPersistingL2Cache());
  CK(cuStreamSynchronize(b));
  CK(cuStreamDestroy(a));
  CK(cuStreamDestroy(b));
  printf("stream attributes: set, get, copy; persisting L2 reset\n");
}

static void Enumeration() {
  CUmodule mod = nullptr;
  CK(cuModuleLoadData(&mod, kPtx));
  unsigned n = 0;
  CK(cuModuleGetFunctionCount(&n, mod));
  EXPECT(n == 2);
  CUfunction fs[4] = {};
  CK(cuModuleEnumerateFunctions(fs, 4, mod));
  std::set<std::string> names;
  for (unsigned i = 0; i < n; ++i) {
    const char* name = nullptr;
    CK(cuFuncGetName(&name, fs[i]));
    names.insert(name);
  }
  EXPECT(names.count("multiplyByGlobal") && names.count("addRowIndex"));
  size_t off = 0, sz = 0;
  CK(cuFuncGetParamInfo(fs[0], 0, &off, &sz));
  CK(cuModuleUnload(mod));

  CUlibrary lib = nullptr;
  CK(cuLibraryLoadData(&lib, kPtx, nullptr, nullptr, 0, nullptr, nullptr, 0));
  CK(cuLibraryGetKernelCount(&n, lib));
  EXPECT(n == 2);
  CUkernel ks[1] = {};
  CK(cuLibraryEnumerateKernels(ks, 1, lib));  // fewer than there are
  const char* kname = nullptr;
  CK(cuKernelGetName(&kname, ks[0]));
  EXPECT(strcmp(kname, "multiplyByGlobal") == 0 || strcmp(kname, "addRowIndex") == 0);
  EXPECT_CU(CUDA_ERROR_INVALID_VALUE, cuLibraryGetKernelCount(nullptr, lib));
  CK(cuLibraryUnload(lib));
  printf("enumeration: module functions, library kernels\n");
}

static void Linking() {
  char info[1024], error[1024];
  memset(info, 'x', sizeof info);
  memset(error, 'x', sizeof error);
  CUjit_option opts[] = {CU_JIT_INFO_LOG_BUFFER, CU_JIT_INFO_LOG_BUFFER_SIZE_BYTES, CU_JIT_ERROR_LOG_BUFFER,
                         CU_JIT_ERROR_LOG_BUFFER_SIZE_BYTES, CU_JIT_LOG_VERBOSE, CU_JIT_OPTIMIZATION_LEVEL,
                         CU_JIT_WALL_TIME};
  void* vals[] = {info, reinterpret_cast<void*>(sizeof info), error, reinterpret_cast<void*>(sizeof error),
                  reinterpret_cast<void*>(1), reinterpret_cast<void*>(3), nullptr};
  CUlinkState link = nullptr;
  CK(cuLinkCreate(7, opts, vals, &link));
  CK(cuLinkAddData(link, CU_JIT_INPUT_PTX, const_cast<char*>(kPtx), sizeof kPtx, "misc.ptx", 0, nullptr, nullptr));
  EXPECT_CU(CUDA_ERROR_INVALID_VALUE, cuLinkAddData(link, CU_JIT_INPUT_PTX, nullptr, 0, "none", 0, nullptr, nullptr));
  void* image = nullptr;
  size_t size = 0;
  CK(cuLinkComplete(link, &image, &size));
  EXPECT(image != nullptr && size > 0);
  EXPECT(memchr(info, 0, sizeof info) != nullptr && memchr(error, 0, sizeof error) != nullptr);
  CUmodule mod = nullptr;
  CK(cuModuleLoadData(&mod, image));
  unsigned n = 0;
  CK(cuModuleGetFunctionCount(&n, mod));
  EXPECT(n == 2);
  CK(cuModuleUnload(mod));
  CK(cuLinkDestroy(link));  // (not twice: the driver frees it again, which corrupted this program's heap)

  // An input from a file.
  char path[] = "/tmp/misc_calls_XXXXXX";
  int fd = mkstemp(path);
  EXPECT(fd >= 0);
  EXPECT(write(fd, kPtx, sizeof kPtx - 1) == static_cast<ssize_t>(sizeof kPtx - 1));
  close(fd);
  CK(cuLinkCreate(0, nullptr, nullptr, &link));
  CK(cuLinkAddFile(link, CU_JIT_INPUT_PTX, path, 0, nullptr, nullptr));
  EXPECT_CU(CUDA_ERROR_FILE_NOT_FOUND, cuLinkAddFile(link, CU_JIT_INPUT_PTX, "/nonexistent/x.ptx", 0, nullptr, nullptr));
  CK(cuLinkComplete(link, &image, &size));
  CK(cuModuleLoadData(&mod, image));
  CK(cuModuleUnload(mod));
  CK(cuLinkDestroy(link));
  unlink(path);

  // Options holding pointers the GPU host cannot use are refused.
  CUjit_option bad[] = {CU_JIT_GLOBAL_SYMBOL_NAMES};
  void* bad_vals[] = {nullptr};
  EXPECT_CU(CUDA_ERROR_NOT_SUPPORTED, cuLinkCreate(1, bad, bad_vals, &link));
  printf("linking: cuLinkAddData, cuLinkAddFile, cuLinkComplete, logs\n");
}

static void Memory(CUdevice dev, CUdeviceptr buf) {
  CUmemAllocationProp prop = {};
  prop.type = CU_MEM_ALLOCATION_TYPE_PINNED;
  prop.location.type = CU_MEM_LOCATION_TYPE_DEVICE;
  prop.location.id = dev;
  size_t gran = 0;
  CK(cuMemGetAllocationGranularity(&gran, &prop, CU_MEM_ALLOC_GRANULARITY_MINIMUM));
  CUdeviceptr base = 0;
  CK(cuMemAddressReserve(&base, gran, 0, 0, 0));
  CUmemGenericAllocationHandle h = 0;
  CK(cuMemCreate(&h, gran, &prop, 0));
  CK(cuMemMap(base, gran, 0, h, 0));
  CUmemAccessDesc desc = {};
  desc.location = prop.location;
  desc.flags = CU_MEM_ACCESS_FLAGS_PROT_READWRITE;
  CK(cuMemSetAccess(base, gran, &desc, 1));
  unsigned long long flags = 0;
  CK(cuMemGetAccess(&flags, &prop.location, base + 128));
  EXPECT(flags == CU_MEM_ACCESS_FLAGS_PROT_READWRITE);
  EXPECT_CU(CUDA_ERROR_INVALID_VALUE, cuMemGetAccess(nullptr, &prop.location, base));
  CK(cuMemUnmap(base, gran));
  CK(cuMemRelease(h));
  CK(cuMemAddressFree(base, gran));

  unsigned int one = 1;
  CK(cuPointerSetAttribute(&one, CU_POINTER_ATTRIBUTE_SYNC_MEMOPS, buf));
  EXPECT_CU(CUDA_ERROR_INVALID_VALUE, cuPointerSetAttribute(&one, CU_POINTER_ATTRIBUTE_CONTEXT, buf));
  printf("memory: cuMemGetAccess, SYNC_MEMOPS\n");
}

// The pointer attributes of CUDA 11-13 beyond the classic ones, on memory of
// each kind. What a local driver and rgpu both say is checked everywhere
// (tests/gpu/run_programs.sh compares the two runs); what rgpu says on
// purpose is checked when the program runs through it (RGPU_SERVER set).
static void PointerAttributes(CUdevice dev, CUdeviceptr buf, size_t size) {
  const bool rgpu = getenv("RGPU_SERVER") != nullptr;
  // cuMemAlloc memory: no handle types, read-write, no pool, inside one
  // mapping (a local driver's may hold more than this allocation), one block.
  unsigned long long types = ~0ull;
  CK(cuPointerGetAttribute(&types, CU_POINTER_ATTRIBUTE_ALLOWED_HANDLE_TYPES, buf + 16));
  EXPECT(types == CU_MEM_HANDLE_TYPE_NONE);
  unsigned access = 99;
  CK(cuPointerGetAttribute(&access, CU_POINTER_ATTRIBUTE_ACCESS_FLAGS, buf));
  EXPECT(access == CU_POINTER_ATTRIBUTE_ACCESS_FLAG_READWRITE);
  CUmemoryPool pool = reinterpret_cast<CUmemoryPool>(1);
  CK(cuPointerGetAttribute(&pool, CU_POINTER_ATTRIBUTE_MEMPOOL_HANDLE, buf));
  EXPECT(pool == nullptr);
  size_t msize = 0;
  void* mbase = nullptr;
  CK(cuPointerGetAttribute(&msize, CU_POINTER_ATTRIBUTE_MAPPING_SIZE, buf + 100));
  CK(cuPointerGetAttribute(&mbase, CU_POINTER_ATTRIBUTE_MAPPING_BASE_ADDR, buf + 100));
  EXPECT(reinterpret_cast<CUdeviceptr>(mbase) <= buf && reinterpret_cast<CUdeviceptr>(mbase) + msize >= buf + size);
  unsigned long long block = 0, block_end = 1;
  CK(cuPointerGetAttribute(&block, CU_POINTER_ATTRIBUTE_MEMORY_BLOCK_ID, buf));
  CK(cuPointerGetAttribute(&block_end, CU_POINTER_ATTRIBUTE_MEMORY_BLOCK_ID, buf + size - 1));
  EXPECT(block == block_end);
  int rdma = 99, decompress = 99;
  CK(cuPointerGetAttribute(&rdma, CU_POINTER_ATTRIBUTE_IS_GPU_DIRECT_RDMA_CAPABLE, buf));
  CK(cuPointerGetAttribute(&decompress, CU_POINTER_ATTRIBUTE_IS_HW_DECOMPRESS_CAPABLE, buf));
  EXPECT((rdma == 0 || rdma == 1) && (decompress == 0 || decompress == 1));
  if (rgpu) {
    // No RDMA or hardware decompression reaches the GPU host's memory from here.
    EXPECT(rdma == 0 && decompress == 0);
    EXPECT(reinterpret_cast<CUdeviceptr>(mbase) == buf && msize == size);
    CUDA_POINTER_ATTRIBUTE_P2P_TOKENS tokens;
    EXPECT_CU(CUDA_ERROR_NOT_SUPPORTED, cuPointerGetAttribute(&tokens, CU_POINTER_ATTRIBUTE_P2P_TOKENS, buf));
  }

  // Stream-ordered memory: from the device's default pool.
  CUdeviceptr async = 0;
  CK(cuMemAllocAsync(&async, 1 << 16, nullptr));
  CUmemoryPool def = nullptr;
  CK(cuDeviceGetDefaultMemPool(&def, dev));
  CK(cuPointerGetAttribute(&pool, CU_POINTER_ATTRIBUTE_MEMPOOL_HANDLE, async + 8));
  EXPECT(pool == def && def != nullptr);
  CK(cuMemFreeAsync(async, nullptr));

  // Virtual memory: the handle types it was created with, no access until
  // cuMemSetAccess, one mapping and one block per physical allocation.
  CUmemAllocationProp prop = {};
  prop.type = CU_MEM_ALLOCATION_TYPE_PINNED;
  prop.location.type = CU_MEM_LOCATION_TYPE_DEVICE;
  prop.location.id = dev;
  prop.requestedHandleTypes = CU_MEM_HANDLE_TYPE_POSIX_FILE_DESCRIPTOR;
  size_t gran = 0;
  CK(cuMemGetAllocationGranularity(&gran, &prop, CU_MEM_ALLOC_GRANULARITY_MINIMUM));
  CUdeviceptr base = 0;
  CK(cuMemAddressReserve(&base, 2 * gran, 0, 0, 0));
  CUmemGenericAllocationHandle fd_handle = 0, plain = 0;
  CK(cuMemCreate(&fd_handle, gran, &prop, 0));
  prop.requestedHandleTypes = CU_MEM_HANDLE_TYPE_NONE;
  CK(cuMemCreate(&plain, gran, &prop, 0));
  CK(cuMemMap(base, gran, 0, fd_handle, 0));
  CK(cuMemMap(base + gran, gran, 0, plain, 0));
  CK(cuPointerGetAttribute(&access, CU_POINTER_ATTRIBUTE_ACCESS_FLAGS, base + 64));
  EXPECT(access == CU_POINTER_ATTRIBUTE_ACCESS_FLAG_NONE);
  CUmemAccessDesc desc = {};
  desc.location = prop.location;
  desc.flags = CU_MEM_ACCESS_FLAGS_PROT_READWRITE;
  CK(cuMemSetAccess(base, 2 * gran, &desc, 1));
  CK(cuPointerGetAttribute(&access, CU_POINTER_ATTRIBUTE_ACCESS_FLAGS, base + 64));
  EXPECT(access == CU_POINTER_ATTRIBUTE_ACCESS_FLAG_READWRITE);
  CK(cuPointerGetAttribute(&types, CU_POINTER_ATTRIBUTE_ALLOWED_HANDLE_TYPES, base + 64));
  EXPECT(types == CU_MEM_HANDLE_TYPE_POSIX_FILE_DESCRIPTOR);
  CK(cuPointerGetAttribute(&types, CU_POINTER_ATTRIBUTE_ALLOWED_HANDLE_TYPES, base + gran + 64));
  EXPECT(types == CU_MEM_HANDLE_TYPE_NONE);
  CK(cuPointerGetAttribute(&mbase, CU_POINTER_ATTRIBUTE_MAPPING_BASE_ADDR, base + gran + 64));
  CK(cuPointerGetAttribute(&msize, CU_POINTER_ATTRIBUTE_MAPPING_SIZE, base + gran + 64));
  EXPECT(reinterpret_cast<CUdeviceptr>(mbase) == base + gran && msize == gran);
  CK(cuPointerGetAttribute(&block, CU_POINTER_ATTRIBUTE_MEMORY_BLOCK_ID, base));
  CK(cuPointerGetAttribute(&block_end, CU_POINTER_ATTRIBUTE_MEMORY_BLOCK_ID, base + gran));
  EXPECT(block != block_end);

  // The plural form: the same answers, and defaults for memory nobody allocated.
  CUpointer_attribute attrs[6] = {CU_POINTER_ATTRIBUTE_ALLOWED_HANDLE_TYPES, CU_POINTER_ATTRIBUTE_ACCESS_FLAGS,
                                  CU_POINTER_ATTRIBUTE_MEMPOOL_HANDLE,       CU_POINTER_ATTRIBUTE_MAPPING_SIZE,
                                  CU_POINTER_ATTRIBUTE_MAPPING_BASE_ADDR,    CU_POINTER_ATTRIBUTE_DEVICE_ORDINAL};
  unsigned long long a_types = ~0ull;
  unsigned a_access = 99;
  CUmemoryPool a_pool = reinterpret_cast<CUmemoryPool>(1);
  size_t a_size = 0;
  void* a_base = nullptr;
  int a_ord = -1;
  void* out[6] = {&a_types, &a_access, &a_pool, &a_size, &a_base, &a_ord};
  CK(cuPointerGetAttributes(6, attrs, out, base + 64));
  EXPECT(a_types == CU_MEM_HANDLE_TYPE_POSIX_FILE_DESCRIPTOR && a_access == CU_POINTER_ATTRIBUTE_ACCESS_FLAG_READWRITE);
  EXPECT(a_pool == nullptr && a_size == gran && reinterpret_cast<CUdeviceptr>(a_base) == base && a_ord == dev);
  static int not_cuda;
  a_types = ~0ull;
  a_size = 1;
  a_base = &not_cuda;
  CK(cuPointerGetAttributes(6, attrs, out, reinterpret_cast<CUdeviceptr>(&not_cuda)));
  EXPECT(a_types == 0 && a_size == 0 && a_base == nullptr && a_ord == -2);

  CK(cuMemUnmap(base, gran));
  CK(cuMemUnmap(base + gran, gran));
  CK(cuMemRelease(fd_handle));
  CK(cuMemRelease(plain));
  CK(cuMemAddressFree(base, 2 * gran));
  printf("pointer attributes: handle types, access, pool, mapping, block id\n");

  // A memset past the end of an allocation: refused by rgpu (with one line
  // on stderr naming the call and the range, checked by e2e_test); a local
  // driver may accept it when its mapping extends further.
  if (rgpu) {
    EXPECT_CU(CUDA_ERROR_INVALID_VALUE, cuMemsetD32Async(buf + size - 8, 0, 4, nullptr));
    EXPECT_CU(CUDA_ERROR_INVALID_VALUE, cuMemsetD32Async(buf + size - 8, 0, 4, nullptr));
    EXPECT_CU(CUDA_ERROR_INVALID_VALUE, cuMemcpyHtoD(buf + size, &not_cuda, sizeof not_cuda));
    CK(cuCtxSynchronize());
  }
}

int main() {
  setvbuf(stdout, nullptr, _IONBF, 0);  // a crash must not eat the output
  CK(cuInit(0));
  CUdevice dev = 0;
  CK(cuDeviceGet(&dev, 0));
  CUcontext ctx = nullptr;
  CK(cuDevicePrimaryCtxRetain(&ctx, dev));
  CK(cuCtxSetCurrent(ctx));
  const size_t size = 1 << 20;
  CUdeviceptr buf = 0;
  CK(cuMemAlloc(&buf, size));

  TensorMaps(buf, size);
  CK(cuProfilerStart());
  CK(cuProfilerStop());
  printf("profiler: start, stop\n");
  StreamAttributes(buf);
  Enumeration();
  Linking();
  Memory(dev, buf);
  PointerAttributes(dev, buf, size);

  CK(cuMemFree(buf));
  CK(cuCtxSynchronize());
  CK(cuDevicePrimaryCtxRelease(dev));
  printf("OK misc_calls\n");
  return 0;
}
