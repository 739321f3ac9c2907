// samples_mix: the runtime-API patterns of NVIDIA's CUDA samples and of
// everyday programs that no other program here covers, each checked against
// the host's own answer: cooperative launches with grid-wide sync, host
// memory registered with cudaHostRegister (asynchronous copies from it),
// __constant__/__device__ symbols, device-side malloc under
// cudaDeviceSetLimit, thread-block clusters through cudaLaunchKernelEx with
// distributed shared memory, pitched 2D copies and memsets on a stream,
// memcpy_async pipelines, more than 48 KiB of dynamic shared memory, stream
// priorities and callbacks, system-scope atomics on mapped memory, texture
// objects over linear memory, and cudaMemcpyDefault between both sides.
// Prints one "OK <section>" line each and "OK samples_mix"; exits 1 at the
// first mismatch (check.h).
#include "check.h"

#include <cooperative_groups.h>
#include <cooperative_groups/memcpy_async.h>
#include <cuda/pipeline>
#include <cuda_runtime.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <unistd.h>
#include <vector>

namespace cg = cooperative_groups;

// As the CUDA samples do: the pipeline state is a __shared__ object with a
// constructor, which nvcc warns about for every such kernel.
#pragma nv_diag_suppress static_var_with_dynamic_init

// ---- cooperative launch: a grid-wide sum, then every block reads it ----
__global__ void GridSum(const int* in, int n, int* partial, int* out) {
  cg::grid_group grid = cg::this_grid();
  int sum = 0;
  for (int i = grid.thread_rank(); i < n; i += grid.size()) sum += in[i];
  atomicAdd(&partial[0], sum);
  grid.sync();
  // After the grid barrier every thread sees the finished total.
  if (grid.thread_rank() == 0) out[0] = partial[0];
  if (threadIdx.x == 0) out[1 + blockIdx.x] = partial[0];
}

static void Cooperative() {
  int dev = 0, coop = 0, sms = 0, per_sm = 0;
  CK_RT(cudaGetDevice(&dev));
  CK_RT(cudaDeviceGetAttribute(&coop, cudaDevAttrCooperativeLaunch, dev));
  EXPECT(coop == 1);
  CK_RT(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev));
  CK_RT(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, GridSum, 256, 0));
  EXPECT(per_sm > 0);
  int blocks = sms * per_sm;
  const int n = 1 << 20;
  std::vector<int> h(n);
  long long want = 0;
  for (int i = 0; i < n; ++i) want += h[i] = (i * 7) % 13 - 6;
  int *in, *partial, *out;
  CK_RT(cudaMalloc(&in, n * sizeof(int)));
  CK_RT(cudaMalloc(&partial, sizeof(int)));
  CK_RT(cudaMalloc(&out, (1 + blocks) * sizeof(int)));
  CK_RT(cudaMemcpy(in, h.data(), n * sizeof(int), cudaMemcpyHostToDevice));
  CK_RT(cudaMemset(partial, 0, sizeof(int)));
  int nn = n;
  void* args[] = {&in, &nn, &partial, &out};
  CK_RT(cudaLaunchCooperativeKernel(reinterpret_cast<void*>(GridSum), blocks, 256, args, 0, 0));
  std::vector<int> got(1 + blocks);
  CK_RT(cudaMemcpy(got.data(), out, got.size() * sizeof(int), cudaMemcpyDeviceToHost));
  for (int v : got) EXPECT(v == want);
  // Too many blocks for one wave: the driver refuses a cooperative launch.
  cudaError_t e = cudaLaunchCooperativeKernel(reinterpret_cast<void*>(GridSum), blocks * 4 + 1, 256, args, 0, 0);
  EXPECT(e == cudaErrorCooperativeLaunchTooLarge);
  EXPECT(cudaGetLastError() == cudaErrorCooperativeLaunchTooLarge);
  EXPECT(cudaGetLastError() == cudaSuccess);
  CK_RT(cudaDeviceSynchronize());
  CK_RT(cudaFree(in));
  CK_RT(cudaFree(partial));
  CK_RT(cudaFree(out));
  printf("OK cooperative sum %lld\n", want);
}

// ---- cudaHostRegister: pageable memory made pinned, then mapped ----
__global__ void AddOne(int* p, int n) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) p[i] += 1;
}

static void HostRegister() {
  const int n = 1 << 18;
  const size_t bytes = n * sizeof(int);
  long page = sysconf(_SC_PAGESIZE);
  // Page-aligned, as cudaHostRegister's users usually pass it...
  int* h = static_cast<int*>(aligned_alloc(page, bytes));
  for (int i = 0; i < n; ++i) h[i] = i;
  CK_RT(cudaHostRegister(h, bytes, cudaHostRegisterDefault));
  cudaPointerAttributes pa;
  CK_RT(cudaPointerGetAttributes(&pa, h));
  EXPECT(pa.type == cudaMemoryTypeHost);
  int* d;
  cudaStream_t s;
  CK_RT(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
  CK_RT(cudaMalloc(&d, bytes));
  CK_RT(cudaMemcpyAsync(d, h, bytes, cudaMemcpyHostToDevice, s));
  AddOne<<<(n + 255) / 256, 256, 0, s>>>(d, n);
  CK_RT(cudaMemcpyAsync(h, d, bytes, cudaMemcpyDeviceToHost, s));
  CK_RT(cudaStreamSynchronize(s));
  for (int i = 0; i < n; ++i) EXPECT(h[i] == i + 1);
  CK_RT(cudaHostUnregister(h));
  // Unregistering twice is an error, as the driver says.
  EXPECT(cudaHostUnregister(h) == cudaErrorHostMemoryNotRegistered);
  free(h);
  CK_RT(cudaFree(d));
  CK_RT(cudaStreamDestroy(s));
  printf("OK host register\n");
}

// ---- symbols ----
__constant__ float kCoeffs[16];
__device__ int gCounter;
__device__ float gTable[256];

__global__ void UseSymbols(float* out) {
  int i = threadIdx.x;
  out[i] = gTable[i] * kCoeffs[i % 16];
  atomicAdd(&gCounter, 1);
}

static void Symbols() {
  float coeffs[16], table[256], out_h[256];
  for (int i = 0; i < 16; ++i) coeffs[i] = 0.5f * i;
  for (int i = 0; i < 256; ++i) table[i] = static_cast<float>(i);
  CK_RT(cudaMemcpyToSymbol(kCoeffs, coeffs, sizeof coeffs));
  CK_RT(cudaMemcpyToSymbolAsync(gTable, table, sizeof table, 0, cudaMemcpyHostToDevice, 0));
  int zero = 0;
  CK_RT(cudaMemcpyToSymbol(gCounter, &zero, sizeof zero));
  size_t size = 0;
  CK_RT(cudaGetSymbolSize(&size, gTable));
  EXPECT(size == sizeof table);
  float* table_ptr = nullptr;
  CK_RT(cudaGetSymbolAddress(reinterpret_cast<void**>(&table_ptr), gTable));
  EXPECT(table_ptr != nullptr);
  float* out;
  CK_RT(cudaMalloc(&out, sizeof out_h));
  UseSymbols<<<1, 256>>>(out);
  UseSymbols<<<1, 256>>>(out);
  CK_RT(cudaMemcpy(out_h, out, sizeof out_h, cudaMemcpyDeviceToHost));
  for (int i = 0; i < 256; ++i) EXPECT(out_h[i] == table[i] * coeffs[i % 16]);
  int counter = 0;
  CK_RT(cudaMemcpyFromSymbol(&counter, gCounter, sizeof counter));
  EXPECT(counter == 512);
  // A symbol read with an offset, through its address too.
  float tail[4];
  CK_RT(cudaMemcpyFromSymbol(tail, gTable, sizeof tail, 252 * sizeof(float)));
  EXPECT(tail[0] == 252.0f && tail[3] == 255.0f);
  CK_RT(cudaMemcpy(tail, table_ptr + 8, sizeof tail, cudaMemcpyDeviceToHost));
  EXPECT(tail[0] == 8.0f);
  CK_RT(cudaFree(out));
  printf("OK symbols\n");
}

// ---- device-side malloc under a raised heap limit ----
__global__ void DeviceMalloc(int per_thread, unsigned long long* sums) {
  int* p = static_cast<int*>(malloc(per_thread * sizeof(int)));
  if (p == nullptr) {
    sums[threadIdx.x] = ~0ull;
    return;
  }
  for (int i = 0; i < per_thread; ++i) p[i] = i + threadIdx.x;
  unsigned long long s = 0;
  for (int i = 0; i < per_thread; ++i) s += p[i];
  free(p);
  sums[threadIdx.x] = s;
}

static void Limits() {
  size_t heap = 0, stack = 0, fifo = 0;
  CK_RT(cudaDeviceSetLimit(cudaLimitMallocHeapSize, 64u << 20));
  CK_RT(cudaDeviceGetLimit(&heap, cudaLimitMallocHeapSize));
  EXPECT(heap >= (64u << 20));
  CK_RT(cudaDeviceSetLimit(cudaLimitStackSize, 4096));
  CK_RT(cudaDeviceGetLimit(&stack, cudaLimitStackSize));
  EXPECT(stack >= 4096);
  CK_RT(cudaDeviceSetLimit(cudaLimitPrintfFifoSize, 2u << 20));
  CK_RT(cudaDeviceGetLimit(&fifo, cudaLimitPrintfFifoSize));
  EXPECT(fifo >= (2u << 20));
  const int threads = 256, per_thread = 4096;  // 4 MiB from the device heap
  unsigned long long* sums;
  CK_RT(cudaMalloc(&sums, threads * sizeof(unsigned long long)));
  DeviceMalloc<<<1, threads>>>(per_thread, sums);
  std::vector<unsigned long long> h(threads);
  CK_RT(cudaMemcpy(h.data(), sums, threads * sizeof(unsigned long long), cudaMemcpyDeviceToHost));
  for (int t = 0; t < threads; ++t) {
    unsigned long long want = 0;
    for (int i = 0; i < per_thread; ++i) want += i + t;
    EXPECT(h[t] == want);
  }
  CK_RT(cudaFree(sums));
  printf("OK limits and device malloc (heap %zu MiB)\n", heap >> 20);
}

// ---- clusters: each block reads its neighbour's shared memory ----
__global__ void __cluster_dims__(2, 1, 1) ClusterSwap(int* out) {
  __shared__ int mine;
  cg::cluster_group cluster = cg::this_cluster();
  if (threadIdx.x == 0) mine = 1000 + blockIdx.x;
  cluster.sync();
  unsigned other = cluster.block_rank() ^ 1;
  int* theirs = cluster.map_shared_rank(&mine, other);
  if (threadIdx.x == 0) out[blockIdx.x] = *theirs;
  cluster.sync();
}

__global__ void ClusterRank(int* out) {
  cg::cluster_group cluster = cg::this_cluster();
  if (threadIdx.x == 0) out[blockIdx.x] = static_cast<int>(cluster.block_rank() * 100 + cluster.num_blocks());
}

static void Clusters() {
  const int blocks = 8;
  int* out;
  CK_RT(cudaMalloc(&out, blocks * sizeof(int)));
  ClusterSwap<<<blocks, 32>>>(out);
  int h[blocks];
  CK_RT(cudaMemcpy(h, out, sizeof h, cudaMemcpyDeviceToHost));
  for (int b = 0; b < blocks; ++b) EXPECT(h[b] == 1000 + (b ^ 1));

  // The cluster shape given at launch time instead.
  cudaLaunchConfig_t config = {};
  cudaLaunchAttribute attr[1];
  attr[0].id = cudaLaunchAttributeClusterDimension;
  attr[0].val.clusterDim.x = 4;
  attr[0].val.clusterDim.y = 1;
  attr[0].val.clusterDim.z = 1;
  config.gridDim = dim3(blocks);
  config.blockDim = dim3(64);
  config.attrs = attr;
  config.numAttrs = 1;
  int max_clusters = 0;
  CK_RT(cudaOccupancyMaxActiveClusters(&max_clusters, ClusterRank, &config));
  EXPECT(max_clusters > 0);
  CK_RT(cudaLaunchKernelEx(&config, ClusterRank, out));
  CK_RT(cudaMemcpy(h, out, sizeof h, cudaMemcpyDeviceToHost));
  for (int b = 0; b < blocks; ++b) EXPECT(h[b] == (b % 4) * 100 + 4);
  CK_RT(cudaFree(out));
  printf("OK clusters\n");
}

// ---- pitched 2D memory on a stream ----
static void Pitched() {
  const int w = 300, hgt = 77;  // bytes per row, rows
  char* d;
  size_t pitch = 0;
  CK_RT(cudaMallocPitch(reinterpret_cast<void**>(&d), &pitch, w, hgt));
  EXPECT(pitch >= static_cast<size_t>(w));
  cudaStream_t s;
  CK_RT(cudaStreamCreate(&s));
  std::vector<char> src(w * hgt), dst(w * hgt, 0);
  for (int i = 0; i < w * hgt; ++i) src[i] = static_cast<char>(i * 31);
  CK_RT(cudaMemset2DAsync(d, pitch, 0x5a, pitch, hgt, s));
  CK_RT(cudaMemcpy2DAsync(d, pitch, src.data(), w, w - 20, hgt, cudaMemcpyHostToDevice, s));
  CK_RT(cudaMemcpy2DAsync(dst.data(), w, d, pitch, w, hgt, cudaMemcpyDeviceToHost, s));
  CK_RT(cudaStreamSynchronize(s));
  for (int r = 0; r < hgt; ++r)
    for (int c = 0; c < w; ++c) EXPECT(dst[r * w + c] == (c < w - 20 ? src[r * w + c] : 0x5a));
  CK_RT(cudaStreamDestroy(s));
  CK_RT(cudaFree(d));
  printf("OK pitched 2D (rows of %d bytes)\n", w);
}

// ---- memcpy_async through a two-stage pipeline, and big dynamic smem ----
__global__ void PipelineScale(const float* in, float* out, int tiles, float k) {
  extern __shared__ float smem[];  // two tiles of blockDim.x floats
  auto block = cg::this_thread_block();
  constexpr int kStages = 2;
  __shared__ cuda::pipeline_shared_state<cuda::thread_scope_block, kStages> state;
  auto pipe = cuda::make_pipeline(block, &state);
  const int tile = blockDim.x;
  for (int fetch = 0, t = 0; t < tiles; ++t) {
    for (; fetch < tiles && fetch < t + kStages; ++fetch) {
      pipe.producer_acquire();
      cuda::memcpy_async(block, smem + (fetch % kStages) * tile, in + fetch * tile, sizeof(float) * tile, pipe);
      pipe.producer_commit();
    }
    pipe.consumer_wait();
    out[t * tile + threadIdx.x] = smem[(t % kStages) * tile + threadIdx.x] * k;
    pipe.consumer_release();
  }
}

__global__ void BigShared(float* out) {
  extern __shared__ float big[];
  const int n = (100 * 1024) / sizeof(float);
  // Small values: every partial sum is an integer below 2^24, exact in
  // float whatever order the atomics add them in.
  for (int i = threadIdx.x; i < n; i += blockDim.x) big[i] = static_cast<float>(i & 7);
  __syncthreads();
  float s = 0;
  for (int i = threadIdx.x; i < n; i += blockDim.x) s += big[n - 1 - i];
  atomicAdd(out, s);
}

static void SharedMemory() {
  const int tile = 128, tiles = 64;
  float *in, *out;
  CK_RT(cudaMalloc(&in, tile * tiles * sizeof(float)));
  CK_RT(cudaMalloc(&out, tile * tiles * sizeof(float)));
  std::vector<float> h(tile * tiles);
  for (int i = 0; i < tile * tiles; ++i) h[i] = static_cast<float>(i % 1000);
  CK_RT(cudaMemcpy(in, h.data(), h.size() * sizeof(float), cudaMemcpyHostToDevice));
  PipelineScale<<<1, tile, 2 * tile * sizeof(float)>>>(in, out, tiles, 2.0f);
  std::vector<float> got(h.size());
  CK_RT(cudaMemcpy(got.data(), out, got.size() * sizeof(float), cudaMemcpyDeviceToHost));
  for (size_t i = 0; i < h.size(); ++i) EXPECT(got[i] == 2.0f * h[i]);

  // Over 48 KiB needs the opt-in attribute, as locally: refused without it.
  const int bytes = 100 * 1024;
  BigShared<<<1, 256, bytes>>>(out);
  EXPECT(cudaGetLastError() == cudaErrorInvalidValue);
  EXPECT(cudaGetLastError() == cudaSuccess);
  CK_RT(cudaFuncSetAttribute(BigShared, cudaFuncAttributeMaxDynamicSharedMemorySize, bytes));
  cudaFuncAttributes fa;
  CK_RT(cudaFuncGetAttributes(&fa, BigShared));
  EXPECT(fa.maxDynamicSharedSizeBytes == bytes);
  CK_RT(cudaMemset(out, 0, sizeof(float)));
  BigShared<<<1, 256, bytes>>>(out);
  CK_RT(cudaGetLastError());
  float sum = 0;
  CK_RT(cudaMemcpy(&sum, out, sizeof sum, cudaMemcpyDeviceToHost));
  const int n = bytes / sizeof(float);
  EXPECT(sum == static_cast<float>(n / 8 * 28));
  int min_grid = 0, block = 0;
  CK_RT(cudaOccupancyMaxPotentialBlockSize(&min_grid, &block, PipelineScale, 0, 0));
  EXPECT(block > 0 && block <= 1024 && min_grid > 0);
  CK_RT(cudaFree(in));
  CK_RT(cudaFree(out));
  printf("OK shared memory (pipeline, %d KiB dynamic)\n", bytes / 1024);
}

// ---- stream priorities, callbacks, host functions, events ----
struct Order {
  int next = 0;
  int seen[4] = {-1, -1, -1, -1};
};

static void CUDART_CB Callback(cudaStream_t, cudaError_t status, void* p) {
  auto* o = static_cast<Order*>(p);
  o->seen[o->next++] = status == cudaSuccess ? 10 : -10;
}
static void CUDART_CB HostFn(void* p) {
  auto* o = static_cast<Order*>(p);
  o->seen[o->next] = 20 + o->next;
  ++o->next;
}

__global__ void Spin(int* flag, long long cycles) {
  long long t0 = clock64();
  while (clock64() - t0 < cycles) {
  }
  *flag = 1;
}

static void StreamsAndCallbacks() {
  int least = 0, greatest = 0;
  CK_RT(cudaDeviceGetStreamPriorityRange(&least, &greatest));
  EXPECT(greatest <= least);
  cudaStream_t hi, lo;
  CK_RT(cudaStreamCreateWithPriority(&hi, cudaStreamNonBlocking, greatest));
  CK_RT(cudaStreamCreateWithPriority(&lo, cudaStreamNonBlocking, least));
  int p = 1;
  CK_RT(cudaStreamGetPriority(hi, &p));
  EXPECT(p == greatest);
  unsigned flags = 0;
  CK_RT(cudaStreamGetFlags(lo, &flags));
  EXPECT(flags == cudaStreamNonBlocking);

  int* flag;
  CK_RT(cudaMalloc(&flag, sizeof(int)));
  CK_RT(cudaMemset(flag, 0, sizeof(int)));
  Order order;
  cudaEvent_t done, t0, t1;
  CK_RT(cudaEventCreateWithFlags(&done, cudaEventBlockingSync | cudaEventDisableTiming));
  CK_RT(cudaEventCreate(&t0));
  CK_RT(cudaEventCreate(&t1));
  CK_RT(cudaEventRecord(t0, lo));
  Spin<<<1, 1, 0, lo>>>(flag, 20000000);  // ~10 ms
  CK_RT(cudaStreamAddCallback(lo, Callback, &order, 0));
  CK_RT(cudaLaunchHostFunc(lo, HostFn, &order));
  CK_RT(cudaEventRecord(t1, lo));
  CK_RT(cudaEventRecord(done, lo));
  // The high-priority stream waits for the spin through the event.
  CK_RT(cudaStreamWaitEvent(hi, done, 0));
  int h = 0;
  CK_RT(cudaMemcpyAsync(&h, flag, sizeof h, cudaMemcpyDeviceToHost, hi));
  CK_RT(cudaStreamSynchronize(hi));
  EXPECT(h == 1);
  CK_RT(cudaEventSynchronize(done));
  CK_RT(cudaStreamSynchronize(lo));
  EXPECT(cudaEventQuery(done) == cudaSuccess);
  EXPECT(cudaStreamQuery(lo) == cudaSuccess);
  EXPECT(order.next == 2 && order.seen[0] == 10 && order.seen[1] == 21);
  float ms = 0;
  CK_RT(cudaEventElapsedTime(&ms, t0, t1));
  EXPECT(ms > 0.5f);
  EXPECT(cudaEventElapsedTime(&ms, t0, done) == cudaErrorInvalidResourceHandle);
  for (cudaEvent_t e : {done, t0, t1}) CK_RT(cudaEventDestroy(e));
  CK_RT(cudaStreamDestroy(hi));
  CK_RT(cudaStreamDestroy(lo));
  CK_RT(cudaFree(flag));
  printf("OK priorities, callbacks, events\n");
}

// ---- system-scope atomics on mapped pinned memory ----
__global__ void SystemAtomics(int* counter, int* slots) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  int old = atomicAdd_system(counter, 1);
  slots[i] = old >= 0 ? 1 : 0;
}

static void MappedAtomics() {
  int *counter, *slots;
  CK_RT(cudaHostAlloc(&counter, sizeof(int), cudaHostAllocMapped));
  CK_RT(cudaHostAlloc(&slots, 4096 * sizeof(int), cudaHostAllocMapped | cudaHostAllocWriteCombined));
  *counter = 5;
  memset(slots, 0, 4096 * sizeof(int));
  int *dc, *ds;
  CK_RT(cudaHostGetDevicePointer(reinterpret_cast<void**>(&dc), counter, 0));
  CK_RT(cudaHostGetDevicePointer(reinterpret_cast<void**>(&ds), slots, 0));
  SystemAtomics<<<16, 256>>>(dc, ds);
  CK_RT(cudaDeviceSynchronize());
  EXPECT(*counter == 5 + 4096);
  int ones = 0;
  for (int i = 0; i < 4096; ++i) ones += slots[i];
  EXPECT(ones == 4096);
  CK_RT(cudaFreeHost(counter));
  CK_RT(cudaFreeHost(slots));
  printf("OK mapped atomics\n");
}

// ---- a texture object over linear memory; cudaMemcpyDefault ----
__global__ void FetchLinear(cudaTextureObject_t tex, float* out, int n) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) out[i] = tex1Dfetch<float>(tex, n - 1 - i);
}

static void TextureAndDefaultCopies() {
  const int n = 4096;
  float *buf, *out;
  CK_RT(cudaMalloc(&buf, n * sizeof(float)));
  CK_RT(cudaMalloc(&out, n * sizeof(float)));
  std::vector<float> h(n), got(n);
  for (int i = 0; i < n; ++i) h[i] = 0.25f * i;
  // Unified addressing: the driver tells the direction from the pointers.
  CK_RT(cudaMemcpy(buf, h.data(), n * sizeof(float), cudaMemcpyDefault));
  cudaResourceDesc res = {};
  res.resType = cudaResourceTypeLinear;
  res.res.linear.devPtr = buf;
  res.res.linear.desc = cudaCreateChannelDesc<float>();
  res.res.linear.sizeInBytes = n * sizeof(float);
  cudaTextureDesc td = {};
  td.readMode = cudaReadModeElementType;
  cudaTextureObject_t tex = 0;
  CK_RT(cudaCreateTextureObject(&tex, &res, &td, nullptr));
  FetchLinear<<<n / 256, 256>>>(tex, out, n);
  CK_RT(cudaMemcpy(got.data(), out, n * sizeof(float), cudaMemcpyDefault));
  for (int i = 0; i < n; ++i) EXPECT(got[i] == h[n - 1 - i]);
  cudaResourceDesc back = {};
  CK_RT(cudaGetTextureObjectResourceDesc(&back, tex));
  EXPECT(back.resType == cudaResourceTypeLinear && back.res.linear.devPtr == buf);
  CK_RT(cudaDestroyTextureObject(tex));
  float* pinned;
  CK_RT(cudaMallocHost(&pinned, n * sizeof(float)));
  CK_RT(cudaMemcpy(pinned, out, n * sizeof(float), cudaMemcpyDefault));
  EXPECT(pinned[0] == h[n - 1]);
  CK_RT(cudaMemcpy(out, pinned, n * sizeof(float), cudaMemcpyDefault));
  CK_RT(cudaMemcpy(buf, out, n * sizeof(float), cudaMemcpyDefault));
  CK_RT(cudaMemcpy(got.data(), buf, n * sizeof(float), cudaMemcpyDeviceToHost));
  EXPECT(got[n - 1] == h[0]);
  CK_RT(cudaFreeHost(pinned));
  CK_RT(cudaFree(buf));
  CK_RT(cudaFree(out));
  printf("OK texture object, default copies\n");
}

// ---- identity of the device ----
static void DeviceIdentity() {
  char bus[32] = {};
  CK_RT(cudaDeviceGetPCIBusId(bus, sizeof bus, 0));
  int back = -1;
  CK_RT(cudaDeviceGetByPCIBusId(&back, bus));
  EXPECT(back == 0);
  size_t free = 0, total = 0;
  CK_RT(cudaMemGetInfo(&free, &total));
  EXPECT(free > 0 && free <= total);
  cudaDeviceProp prop;
  CK_RT(cudaGetDeviceProperties(&prop, 0));
  EXPECT(prop.totalGlobalMem == total);
  EXPECT(prop.cooperativeLaunch == 1 && prop.major >= 9);
  // The flags as the driver reports them (compared with a local run: does
  // it add cudaDeviceMapHost?), before and after choosing blocking sync.
  unsigned flags = 0;
  CK_RT(cudaGetDeviceFlags(&flags));
  printf("device flags %#x\n", flags);
  CK_RT(cudaSetDeviceFlags(cudaDeviceScheduleBlockingSync));
  CK_RT(cudaGetDeviceFlags(&flags));
  printf("device flags after blocking sync %#x\n", flags);
  printf("OK device identity (%s, cc %d.%d)\n", prop.name, prop.major, prop.minor);
}

int main() {
  CK_RT(cudaSetDevice(0));
  DeviceIdentity();
  Cooperative();
  HostRegister();
  Symbols();
  Limits();
  Clusters();
  Pitched();
  SharedMemory();
  StreamsAndCallbacks();
  MappedAtomics();
  TextureAndDefaultCopies();
  CK_RT(cudaDeviceReset());
  printf("OK samples_mix\n");
  return 0;
}
