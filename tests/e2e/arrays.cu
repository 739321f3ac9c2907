// CUDA arrays, texture objects and surface objects: 2D and 3D arrays filled
// from the host, copied array -> array -> device -> host through every copy
// path (runtime 2D/3D copies, sync and async, and the driver's
// cuMemcpy{HtoA,AtoH,DtoA,AtoD,AtoA}), bytes checked at each end; texture
// and surface objects created over arrays and pitched memory, their
// descriptors read back; bad requests refused. Every request that the
// driver's documentation leaves open (a texture over memory past an
// allocation, a surface over an array made without load/store) prints the
// code it got, so a run on a GPU and one through rgpu can be compared line by
// line (tests/gpu/run_programs.sh). Data and refusal checks carry on after a
// mismatch; the exit status is 1 if any failed. A kernel reads the array
// through its surface object (the value the worker's driver made, passed as
// a kernel argument); no kernel samples a texture (the sim backend runs
// kernels as host functions and models no texture unit).
#define E2E_PROGRAM "arrays"
#include <cuda.h>
#include <cuda_runtime.h>

#include <cstring>
#include <vector>

#include "runtime_check.h"

#define CHECK_CU(call)                                                                      \
  do {                                                                                      \
    CUresult r_ = (call);                                                                   \
    if (r_ != CUDA_SUCCESS) {                                                               \
      fprintf(stderr, E2E_PROGRAM ": %s:%d: %s failed: %d\n", __FILE__, __LINE__, #call, (int)r_); \
      exit(1);                                                                              \
    }                                                                                       \
  } while (0)

// Host implementation for the sim: backend/sim/test_kernels.cc.
__global__ void surfRead2D(cudaSurfaceObject_t s, float* out, int w, int h) {
  int x = blockIdx.x * blockDim.x + threadIdx.x;
  int y = blockIdx.y * blockDim.y + threadIdx.y;
  if (x < w && y < h) out[y * w + x] = 2 * surf2Dread<float>(s, x * 4, y);
}


// Prints the code a request answered (no pointers: the line must read the
// same on a GPU and through rgpu).
static void Report(const char* what, cudaError_t err) {
  printf(E2E_PROGRAM ": %s: %s\n", what, cudaGetErrorName(err));
  cudaGetLastError();
}
static void ReportCu(const char* what, CUresult r) {
  const char* name = nullptr;
  if (cuGetErrorName(r, &name) != CUDA_SUCCESS || name == nullptr) name = "?";
  printf(E2E_PROGRAM ": %s: %s (%d)\n", what, name, static_cast<int>(r));
}
// A request the driver must refuse: prints its code, counts a success.
static void ExpectRefused(const char* what, cudaError_t err) {
  Report(what, err);
  SOFT_EXPECT(err != cudaSuccess, "%s must fail", what);
}

static void Fill(std::vector<float>& v, float base) {
  for (size_t i = 0; i < v.size(); ++i) v[i] = base + static_cast<float>(i);
}

static void Test2D() {
  const size_t W = 64, H = 16;
  cudaChannelFormatDesc ch = cudaCreateChannelDesc<float>();
  cudaArray_t a = nullptr, b = nullptr;
  CHECK(cudaMallocArray(&a, &ch, W, H, cudaArraySurfaceLoadStore));
  CHECK(cudaMallocArray(&b, &ch, W, H));
  std::vector<float> in(W * H), out(W * H, -1.f);
  Fill(in, 1.f);
  // host -> array -> array -> pitched device -> host
  CHECK(cudaMemcpy2DToArray(a, 0, 0, in.data(), W * 4, W * 4, H, cudaMemcpyHostToDevice));
  CHECK(cudaMemcpy2DArrayToArray(b, 0, 0, a, 0, 0, W * 4, H, cudaMemcpyDeviceToDevice));
  float* d = nullptr;
  size_t pitch = 0;
  CHECK(cudaMallocPitch(&d, &pitch, W * 4, H));
  CHECK(cudaMemcpy2DFromArray(d, pitch, b, 0, 0, W * 4, H, cudaMemcpyDeviceToDevice));
  CHECK(cudaMemcpy2D(out.data(), W * 4, d, pitch, W * 4, H, cudaMemcpyDeviceToHost));
  SOFT_EXPECT(memcmp(in.data(), out.data(), in.size() * 4) == 0, "2D host->array->array->device->host");
  // array -> host directly, and device -> array
  std::fill(out.begin(), out.end(), -1.f);
  CHECK(cudaMemcpy2DFromArray(out.data(), W * 4, a, 0, 0, W * 4, H, cudaMemcpyDeviceToHost));
  SOFT_EXPECT(memcmp(in.data(), out.data(), in.size() * 4) == 0, "2D array->host");
  CHECK(cudaMemset2D(d, pitch, 0, W * 4, H));
  CHECK(cudaMemcpy2DToArray(b, 0, 0, d, pitch, W * 4, H, cudaMemcpyDeviceToDevice));
  CHECK(cudaMemcpy2DFromArray(out.data(), W * 4, b, 0, 0, W * 4, H, cudaMemcpyDeviceToHost));
  size_t nonzero = 0;
  for (float f : out) nonzero += f != 0.f;
  SOFT_EXPECT(nonzero == 0, "device->array zeroes: %zu nonzero", nonzero);
  // Async, a sub-box: 8 floats x 4 rows at (x 16 floats, y 3).
  cudaStream_t s;
  CHECK(cudaStreamCreate(&s));
  std::vector<float> box(8 * 4), back(8 * 4, -1.f);
  Fill(box, 500.f);
  CHECK(cudaMemcpy2DToArrayAsync(b, 16 * 4, 3, box.data(), 8 * 4, 8 * 4, 4, cudaMemcpyHostToDevice, s));
  CHECK(cudaMemcpy2DFromArrayAsync(back.data(), 8 * 4, b, 16 * 4, 3, 8 * 4, 4, cudaMemcpyDeviceToHost, s));
  CHECK(cudaStreamSynchronize(s));
  SOFT_EXPECT(memcmp(box.data(), back.data(), box.size() * 4) == 0, "2D async sub-box");
  CHECK(cudaMemcpy2DFromArray(out.data(), W * 4, b, 0, 0, W * 4, H, cudaMemcpyDeviceToHost));
  SOFT_EXPECT(out[3 * W + 16] == 500.f && out[6 * W + 23] == 531.f && out[3 * W + 15] == 0.f && out[7 * W + 16] == 0.f,
         "2D async sub-box placement");
  // Outside the array: refused.
  ExpectRefused("copy past the array's right edge",
                cudaMemcpy2DToArray(a, 4, 0, in.data(), W * 4, W * 4, H, cudaMemcpyHostToDevice));
  ExpectRefused("copy past the array's last row",
                cudaMemcpy2DToArray(a, 0, 1, in.data(), W * 4, W * 4, H, cudaMemcpyHostToDevice));

  // Descriptor answers.
  cudaChannelFormatDesc got;
  cudaExtent ext;
  unsigned flags = 0;
  CHECK(cudaArrayGetInfo(&got, &ext, &flags, a));
  SOFT_EXPECT(got.x == 32 && got.y == 0 && got.f == cudaChannelFormatKindFloat, "array channel desc");
  SOFT_EXPECT(ext.width == W && ext.height == H && ext.depth == 0, "array extent %zu %zu %zu", ext.width, ext.height,
         ext.depth);
  SOFT_EXPECT(flags & cudaArraySurfaceLoadStore, "array flags %u", flags);

  // Texture object over the array.
  cudaResourceDesc rd{};
  rd.resType = cudaResourceTypeArray;
  rd.res.array.array = a;
  cudaTextureDesc td{};
  td.addressMode[0] = cudaAddressModeClamp;
  td.addressMode[1] = cudaAddressModeBorder;
  td.filterMode = cudaFilterModeLinear;
  td.readMode = cudaReadModeElementType;
  td.normalizedCoords = 1;
  cudaTextureObject_t tex = 0;
  CHECK(cudaCreateTextureObject(&tex, &rd, &td, nullptr));
  SOFT_EXPECT(tex != 0, "texture object value");
  cudaResourceDesc rd2{};
  CHECK(cudaGetTextureObjectResourceDesc(&rd2, tex));
  SOFT_EXPECT(rd2.resType == cudaResourceTypeArray && rd2.res.array.array == a, "texture resource desc");
  cudaTextureDesc td2{};
  CHECK(cudaGetTextureObjectTextureDesc(&td2, tex));
  SOFT_EXPECT(td2.addressMode[1] == cudaAddressModeBorder && td2.filterMode == cudaFilterModeLinear &&
             td2.normalizedCoords == 1,
         "texture desc");
  CHECK(cudaDestroyTextureObject(tex));

  // Texture object over pitched device memory.
  cudaResourceDesc pd{};
  pd.resType = cudaResourceTypePitch2D;
  pd.res.pitch2D.devPtr = d;
  pd.res.pitch2D.desc = ch;
  pd.res.pitch2D.width = W;
  pd.res.pitch2D.height = H;
  pd.res.pitch2D.pitchInBytes = pitch;
  cudaTextureDesc ptd{};
  ptd.filterMode = cudaFilterModePoint;
  ptd.readMode = cudaReadModeElementType;
  cudaTextureObject_t ptex = 0;
  CHECK(cudaCreateTextureObject(&ptex, &pd, &ptd, nullptr));
  cudaResourceDesc pd2{};
  CHECK(cudaGetTextureObjectResourceDesc(&pd2, ptex));
  SOFT_EXPECT(pd2.resType == cudaResourceTypePitch2D && pd2.res.pitch2D.devPtr == d && pd2.res.pitch2D.width == W &&
             pd2.res.pitch2D.pitchInBytes == pitch,
         "pitch2D resource desc");
  CHECK(cudaDestroyTextureObject(ptex));
  // Pitched memory that starts where the allocation ends: the driver does
  // not check a texture's extent against allocations (accepted on an H100,
  // driver 580); sampling it would read whatever lies there. Accepted.
  pd.res.pitch2D.devPtr = reinterpret_cast<char*>(d) + pitch * H;
  cudaError_t err = cudaCreateTextureObject(&ptex, &pd, &ptd, nullptr);
  Report("texture over pitched memory from the allocation's end", err);
  SOFT_EXPECT(err == cudaSuccess, "a texture over pitched memory past an allocation is accepted, as the driver does");
  if (err == cudaSuccess) CHECK(cudaDestroyTextureObject(ptex));
  pd.res.pitch2D.devPtr = d;
  // Linear memory running past the allocation's end: the code is printed
  // (the documentation does not say; the two runs must agree).
  cudaResourceDesc ld{};
  ld.resType = cudaResourceTypeLinear;
  ld.res.linear.devPtr = d;
  ld.res.linear.desc = ch;
  ld.res.linear.sizeInBytes = pitch * H + 4096;
  cudaTextureObject_t ltex = 0;
  err = cudaCreateTextureObject(&ltex, &ld, &ptd, nullptr);
  Report("texture over linear memory running past the allocation", err);
  if (err == cudaSuccess) CHECK(cudaDestroyTextureObject(ltex));

  // Surface objects: over an array made for load/store; not over pitched memory.
  cudaSurfaceObject_t surf = 0;
  CHECK(cudaCreateSurfaceObject(&surf, &rd));
  cudaResourceDesc sd{};
  CHECK(cudaGetSurfaceObjectResourceDesc(&sd, surf));
  SOFT_EXPECT(sd.resType == cudaResourceTypeArray && sd.res.array.array == a, "surface resource desc");
  // A kernel reads the array through the surface.
  float* doubled = nullptr;
  CHECK(cudaMalloc(&doubled, W * H * 4));
  surfRead2D<<<dim3((W + 15) / 16, (H + 15) / 16), dim3(16, 16)>>>(surf, doubled, W, H);
  CHECK(cudaGetLastError());
  CHECK(cudaMemcpy(out.data(), doubled, W * H * 4, cudaMemcpyDeviceToHost));
  size_t wrong = 0, first = 0;
  for (size_t i = 0; i < W * H; ++i)
    if (out[i] != 2 * in[i] && wrong++ == 0) first = i;
  SOFT_EXPECT(wrong == 0, "surf2Dread: %zu wrong, first [%zu]: %f != %f", wrong, first, out[first], 2 * in[first]);
  CHECK(cudaFree(doubled));
  CHECK(cudaDestroySurfaceObject(surf));
  // "resType must be cudaResourceTypeArray" (cudaCreateSurfaceObject).
  ExpectRefused("surface over pitched memory", cudaCreateSurfaceObject(&surf, &pd));
  // An array made without cudaArraySurfaceLoadStore: the surface-object
  // documentation does not require the flag (only the deprecated surface
  // references did), and the GPU's driver accepts it (H100, driver 580,
  // directly and through rgpu). The code is printed; both runs must agree.
  CHECK(cudaArrayGetInfo(&got, &ext, &flags, b));
  printf("arrays: array made without cudaArraySurfaceLoadStore has flags %u\n", flags);
  rd.res.array.array = b;
  err = cudaCreateSurfaceObject(&surf, &rd);
  Report("surface over an array made without cudaArraySurfaceLoadStore", err);
  SOFT_EXPECT(err == cudaSuccess || err == cudaErrorInvalidValue,
              "surface over an array made without cudaArraySurfaceLoadStore: %s", cudaGetErrorName(err));
  if (err == cudaSuccess) CHECK(cudaDestroySurfaceObject(surf));

  CHECK(cudaStreamDestroy(s));
  CHECK(cudaFree(d));
  CHECK(cudaFreeArray(a));
  CHECK(cudaFreeArray(b));
  printf("arrays: 2D copies, texture and surface objects done\n");
}

static void Test3D() {
  const size_t W = 8, H = 4, D = 3;
  cudaChannelFormatDesc ch = cudaCreateChannelDesc<float>();
  cudaArray_t a = nullptr, b = nullptr;
  CHECK(cudaMalloc3DArray(&a, &ch, make_cudaExtent(W, H, D)));
  CHECK(cudaMalloc3DArray(&b, &ch, make_cudaExtent(W, H, D)));
  std::vector<float> in(W * H * D), out(W * H * D, -1.f);
  Fill(in, 7.f);
  cudaMemcpy3DParms p{};
  p.srcPtr = make_cudaPitchedPtr(in.data(), W * 4, W, H);
  p.dstArray = a;
  p.extent = make_cudaExtent(W, H, D);
  p.kind = cudaMemcpyHostToDevice;
  CHECK(cudaMemcpy3D(&p));
  cudaMemcpy3DParms aa{};
  aa.srcArray = a;
  aa.dstArray = b;
  aa.extent = make_cudaExtent(W, H, D);
  aa.kind = cudaMemcpyDeviceToDevice;
  CHECK(cudaMemcpy3D(&aa));
  cudaPitchedPtr dev;
  CHECK(cudaMalloc3D(&dev, make_cudaExtent(W * 4, H, D)));
  cudaMemcpy3DParms ad{};
  ad.srcArray = b;
  ad.dstPtr = dev;
  ad.extent = make_cudaExtent(W, H, D);
  ad.kind = cudaMemcpyDeviceToDevice;
  CHECK(cudaMemcpy3D(&ad));
  cudaMemcpy3DParms dh{};
  dh.srcPtr = dev;
  dh.dstPtr = make_cudaPitchedPtr(out.data(), W * 4, W, H);
  dh.extent = make_cudaExtent(W * 4, H, D);
  dh.kind = cudaMemcpyDeviceToHost;
  CHECK(cudaMemcpy3D(&dh));
  SOFT_EXPECT(memcmp(in.data(), out.data(), in.size() * 4) == 0, "3D host->array->array->device->host");
  // array -> host, async
  std::fill(out.begin(), out.end(), -1.f);
  cudaMemcpy3DParms ah{};
  ah.srcArray = b;
  ah.dstPtr = make_cudaPitchedPtr(out.data(), W * 4, W, H);
  ah.extent = make_cudaExtent(W, H, D);
  ah.kind = cudaMemcpyDeviceToHost;
  CHECK(cudaMemcpy3DAsync(&ah, 0));
  CHECK(cudaDeviceSynchronize());
  SOFT_EXPECT(memcmp(in.data(), out.data(), in.size() * 4) == 0, "3D array->host async");
  cudaChannelFormatDesc got;
  cudaExtent ext;
  unsigned flags = 0;
  CHECK(cudaArrayGetInfo(&got, &ext, &flags, a));
  SOFT_EXPECT(ext.width == W && ext.height == H && ext.depth == D, "3D extent");
  CHECK(cudaFree(dev.ptr));
  CHECK(cudaFreeArray(a));
  CHECK(cudaFreeArray(b));
  printf("arrays: 3D copies done\n");
}

// The driver's 1D-array copies, on arrays made with the driver API.
static void TestDriver1D() {
  CHECK(cudaFree(0));  // the primary context is current from here
  const size_t N = 256;
  CUDA_ARRAY_DESCRIPTOR d{};
  d.Width = N;
  d.Height = 0;
  d.Format = CU_AD_FORMAT_UNSIGNED_INT32;
  d.NumChannels = 1;
  CUarray a, b;
  CHECK_CU(cuArrayCreate(&a, &d));
  CHECK_CU(cuArrayCreate(&b, &d));
  CUDA_ARRAY_DESCRIPTOR got{};
  CHECK_CU(cuArrayGetDescriptor(&got, a));
  SOFT_EXPECT(got.Width == N && got.Height == 0 && got.Format == CU_AD_FORMAT_UNSIGNED_INT32 && got.NumChannels == 1,
         "cuArrayGetDescriptor");
  CUDA_ARRAY3D_DESCRIPTOR got3{};
  CHECK_CU(cuArray3DGetDescriptor(&got3, a));
  SOFT_EXPECT(got3.Width == N && got3.Height == 0 && got3.Depth == 0 && got3.Flags == 0, "cuArray3DGetDescriptor");
  std::vector<unsigned> in(N), out(N, 0);
  for (size_t i = 0; i < N; ++i) in[i] = 0xA0000000u + static_cast<unsigned>(i);
  CHECK_CU(cuMemcpyHtoA(a, 0, in.data(), N * 4));
  CHECK_CU(cuMemcpyAtoA(b, 0, a, 0, N * 4));
  CUdeviceptr dev;
  CHECK_CU(cuMemAlloc(&dev, N * 4));
  CHECK_CU(cuMemcpyAtoD(dev, b, 0, N * 4));
  CHECK_CU(cuMemcpyDtoH(out.data(), dev, N * 4));
  SOFT_EXPECT(memcmp(in.data(), out.data(), N * 4) == 0, "HtoA/AtoA/AtoD");
  CHECK_CU(cuMemsetD32(dev, 7, N));
  CHECK_CU(cuMemcpyDtoA(a, 64, dev, 16));  // 4 words at byte 64
  CHECK_CU(cuMemcpyAtoH(out.data(), a, 0, N * 4));
  SOFT_EXPECT(out[15] == in[15] && out[16] == 7 && out[19] == 7 && out[20] == in[20], "DtoA at an offset");
  std::vector<unsigned> part(8, 0);
  CUstream s;
  CHECK_CU(cuStreamCreate(&s, 0));
  CHECK_CU(cuMemcpyHtoAAsync(b, 32, in.data() + 100, 32, s));
  CHECK_CU(cuMemcpyAtoHAsync(part.data(), b, 32, 32, s));
  CHECK_CU(cuStreamSynchronize(s));
  SOFT_EXPECT(memcmp(part.data(), in.data() + 100, 32) == 0, "HtoAAsync/AtoHAsync");
  CUresult r = cuMemcpyHtoA(a, N * 4 - 4, in.data(), 8);
  ReportCu("HtoA past the array's end", r);
  SOFT_EXPECT(r != CUDA_SUCCESS, "HtoA past the end must fail");
  CHECK_CU(cuStreamDestroy(s));
  CHECK_CU(cuMemFree(dev));
  CHECK_CU(cuArrayDestroy(a));
  CHECK_CU(cuArrayDestroy(b));
  // A destroyed handle is refused; which code is not documented (the H100's
  // driver 580 answers CUDA_ERROR_CONTEXT_IS_DESTROYED, rgpu
  // CUDA_ERROR_INVALID_HANDLE), so only the refusal is printed.
  r = cuArrayDestroy(a);
  printf("arrays: destroying an array twice: %s\n", r != CUDA_SUCCESS ? "refused" : "accepted");
  SOFT_EXPECT(r != CUDA_SUCCESS, "destroying an array twice must fail");
  printf("arrays: driver 1D array copies done\n");
}

// Surface objects over arrays made with the driver API, with and without
// CUDA_ARRAY3D_SURFACE_LDST: the flag reads back as given; with it a surface
// must be made; without it the code is printed (see Test2D).
static void TestDriverSurfaces() {
  CHECK(cudaFree(0));
  for (unsigned want : {0u, unsigned{CUDA_ARRAY3D_SURFACE_LDST}}) {
    CUDA_ARRAY3D_DESCRIPTOR d{};
    d.Width = 16;
    d.Height = 4;
    d.Format = CU_AD_FORMAT_FLOAT;
    d.NumChannels = 1;
    d.Flags = want;
    CUarray a;
    CHECK_CU(cuArray3DCreate(&a, &d));
    CUDA_ARRAY3D_DESCRIPTOR got{};
    CHECK_CU(cuArray3DGetDescriptor(&got, a));
    SOFT_EXPECT(got.Flags == want, "cuArray3DGetDescriptor flags %u, want %u", got.Flags, want);
    CUDA_RESOURCE_DESC rd{};
    rd.resType = CU_RESOURCE_TYPE_ARRAY;
    rd.res.array.hArray = a;
    CUsurfObject surf = 0;
    CUresult r = cuSurfObjectCreate(&surf, &rd);
    ReportCu(want ? "cuSurfObjectCreate over an array with CUDA_ARRAY3D_SURFACE_LDST"
                  : "cuSurfObjectCreate over an array without CUDA_ARRAY3D_SURFACE_LDST",
             r);
    if (want) SOFT_EXPECT(r == CUDA_SUCCESS, "a surface over a CUDA_ARRAY3D_SURFACE_LDST array must be made");
    else SOFT_EXPECT(r == CUDA_SUCCESS || r == CUDA_ERROR_INVALID_VALUE, "surface without CUDA_ARRAY3D_SURFACE_LDST: %d",
                     static_cast<int>(r));
    if (r == CUDA_SUCCESS) CHECK_CU(cuSurfObjectDestroy(surf));
    CHECK_CU(cuArrayDestroy(a));
  }
  printf("arrays: driver surface objects done\n");
}

int main() {
  Test2D();
  Test3D();
  TestDriver1D();
  TestDriverSurfaces();
  // One array left for the session-end wipe.
  cudaArray_t left;
  cudaChannelFormatDesc ch = cudaCreateChannelDesc<float>();
  CHECK(cudaMallocArray(&left, &ch, 32, 32));
  CHECK(cudaDeviceSynchronize());
  if (g_failures != 0) {
    printf("arrays: %d checks failed\n", g_failures);
    return 1;
  }
  printf("arrays: ok\n");
  return 0;
}
