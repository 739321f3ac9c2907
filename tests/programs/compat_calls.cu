// compat_calls: driver calls real programs reach that rgpu used to refuse,
// through the driver API: cuFuncSetSharedMemConfig,
// cuDeviceGetTexture1DLinearMaxWidth, stream memory operations (write / wait
// value 32/64, batches, in a capture), cuMemcpy3DPeer[Async], kernel node
// attributes, a child graph node's graph, cuGraphDebugDotPrint, user
// objects, cuMemAllocAsync / cuMemFreeAsync in a capture (the free waits for
// the graph), graph memory alloc / free nodes, cuCtxRecordEvent / cuCtxWaitEvent, cuStreamBeginCaptureToGraph
// and cuStreamUpdateCaptureDependencies, the CUDA 13 batch prefetch /
// discard of managed memory, cuMemcpy3DBatchAsync, cuStreamGetCtx_v2 and
// cuDeviceGetHostAtomicCapabilities. Prints "OK compat_calls" and exits 0
// when every check holds. Kernels are the sim's host kernels (PTX stubs).
#include "check.h"

#include <cuda.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <unistd.h>
#include <vector>

// clusterRank(int* out): out[blockIdx.x] = the block's rank in its cluster
// (the sim runs its host version, backend/sim/test_kernels.cc), so a launch
// shows its cluster size.
static const char kPtx[] =
    ".version 8.0\n"
    ".target sm_90\n"
    ".address_size 64\n"
    ".visible .entry clusterRank(.param .u64 out)\n{\n"
    "  .reg .u64 %rd<4>;\n  .reg .u32 %r<3>;\n  .reg .pred %p<1>;\n"
    "  ld.param.u64 %rd0, [out];\n  cvta.to.global.u64 %rd1, %rd0;\n"
    "  mov.u32 %r0, %tid.x;\n  setp.ne.u32 %p0, %r0, 0;\n"
    "  mov.u32 %r1, %ctaid.x;\n  mov.u32 %r2, %cluster_ctarank;\n"
    "  mul.wide.u32 %rd2, %r1, 4;\n  add.u64 %rd3, %rd1, %rd2;\n"
    "  @!%p0 st.global.u32 [%rd3], %r2;\n  ret;\n}\n";

static std::vector<int> ReadInts(CUdeviceptr p, size_t n) {
  std::vector<int> v(n);
  CK(cuMemcpyDtoH(v.data(), p, n * sizeof(int)));
  return v;
}

static void SharedMemConfigAndTextureWidth(CUfunction fn) {
  CK(cuFuncSetSharedMemConfig(fn, CU_SHARED_MEM_CONFIG_FOUR_BYTE_BANK_SIZE));
  CK(cuFuncSetSharedMemConfig(fn, CU_SHARED_MEM_CONFIG_DEFAULT_BANK_SIZE));
  EXPECT_CU(CUDA_ERROR_INVALID_VALUE, cuFuncSetSharedMemConfig(fn, static_cast<CUsharedconfig>(7)));
  // (No made-up function handle here: NVIDIA's driver dereferences it and
  // crashed this program on an H100.)
  CK(cuCtxSynchronize());  // the queued sets reached the worker's driver and were accepted

  size_t w = 0;
  CK(cuDeviceGetTexture1DLinearMaxWidth(&w, CU_AD_FORMAT_FLOAT, 4, 0));
  int attr = 0;
  CK(cuDeviceGetAttribute(&attr, CU_DEVICE_ATTRIBUTE_MAXIMUM_TEXTURE1D_LINEAR_WIDTH, 0));
  EXPECT(w != 0 && w == static_cast<size_t>(attr));  // the sim answers the profile's value
  EXPECT_CU(CUDA_ERROR_INVALID_VALUE, cuDeviceGetTexture1DLinearMaxWidth(&w, CU_AD_FORMAT_FLOAT, 3, 0));
  EXPECT_CU(CUDA_ERROR_INVALID_DEVICE, cuDeviceGetTexture1DLinearMaxWidth(&w, CU_AD_FORMAT_FLOAT, 1, 99));
  // (No null output pointer here: NVIDIA's driver writes through it.)
  printf("shared memory config, texture 1D linear width %zu\n", w);
}

static void StreamMemOps(CUdeviceptr buf, CUstream st) {
  CK(cuMemsetD8(buf, 0, 256));
  CK(cuStreamWriteValue32(st, buf, 0xdeadbeefu, 0));
  CK(cuStreamWriteValue64(st, buf + 8, 0x1122334455667788ull, 0));
  CK(cuStreamWaitValue32(st, buf, 0xdeadbeefu, CU_STREAM_WAIT_VALUE_EQ));
  CK(cuStreamWaitValue64(st, buf + 8, 0x1122334455667700ull, CU_STREAM_WAIT_VALUE_GEQ));
  CUstreamBatchMemOpParams ops[4];
  memset(ops, 0, sizeof ops);
  ops[0].writeValue.operation = CU_STREAM_MEM_OP_WRITE_VALUE_32;
  ops[0].writeValue.address = buf + 16;
  ops[0].writeValue.value = 7;
  ops[1].writeValue.operation = CU_STREAM_MEM_OP_WRITE_VALUE_64;
  ops[1].writeValue.address = buf + 24;
  ops[1].writeValue.value64 = 0xabcdef0123456789ull;
  ops[2].waitValue.operation = CU_STREAM_MEM_OP_WAIT_VALUE_32;
  ops[2].waitValue.address = buf + 16;
  ops[2].waitValue.value = 5;
  ops[2].waitValue.flags = CU_STREAM_WAIT_VALUE_GEQ;
  // A flush of remote writes only where the device can (Hopper cannot:
  // the driver answers CUDA_ERROR_NOT_SUPPORTED); a barrier otherwise.
  int can_flush = 0;
  CK(cuDeviceGetAttribute(&can_flush, CU_DEVICE_ATTRIBUTE_CAN_FLUSH_REMOTE_WRITES, 0));
  if (can_flush) {
    ops[3].flushRemoteWrites.operation = CU_STREAM_MEM_OP_FLUSH_REMOTE_WRITES;
  } else {
    ops[3].memoryBarrier.operation = CU_STREAM_MEM_OP_BARRIER;
    ops[3].memoryBarrier.flags = CU_STREAM_MEMORY_BARRIER_TYPE_GPU;
  }
  CK(cuStreamBatchMemOp(st, 4, ops, 0));
  CK(cuStreamSynchronize(st));
  uint32_t v32 = 0, b32 = 0;
  uint64_t v64 = 0, b64 = 0;
  CK(cuMemcpyDtoH(&v32, buf, 4));
  CK(cuMemcpyDtoH(&v64, buf + 8, 8));
  CK(cuMemcpyDtoH(&b32, buf + 16, 4));
  CK(cuMemcpyDtoH(&b64, buf + 24, 8));
  EXPECT(v32 == 0xdeadbeefu && v64 == 0x1122334455667788ull);
  EXPECT(b32 == 7 && b64 == 0xabcdef0123456789ull);

  // What the driver refuses at the call. On a stream of their own: should a
  // driver take one of them after all, what it queued can neither stall `st`
  // nor wait for ever (buf is then set to 1, which satisfies the wait below
  // whichever way its flags are read), and the run goes on to report it.
  CUstream probe = nullptr, unblock = nullptr;
  CK(cuStreamCreate(&probe, CU_STREAM_NON_BLOCKING));
  CK(cuStreamCreate(&unblock, CU_STREAM_NON_BLOCKING));
  EXPECT_CU(CUDA_ERROR_INVALID_VALUE, cuStreamWriteValue32(probe, buf + 2, 1, 0));
  EXPECT_CU(CUDA_ERROR_INVALID_VALUE, cuStreamWriteValue64(probe, buf + 4, 1, 0));
  EXPECT_CU(CUDA_ERROR_INVALID_VALUE, cuStreamWriteValue32(probe, buf, 1, 0x40));
  EXPECT_CU(CUDA_ERROR_INVALID_VALUE, cuStreamWaitValue32(probe, buf, 1, 7));
  EXPECT_CU(CUDA_ERROR_INVALID_VALUE, cuStreamBatchMemOp(probe, 4, ops, 1));
  EXPECT_CU(CUDA_ERROR_INVALID_VALUE, cuStreamBatchMemOp(probe, 0, ops, 0));
  if (!can_flush) {  // refused at the call, as by the driver (seen on an H100)
    CUstreamBatchMemOpParams flush;
    memset(&flush, 0, sizeof flush);
    flush.flushRemoteWrites.operation = CU_STREAM_MEM_OP_FLUSH_REMOTE_WRITES;
    EXPECT_CU(CUDA_ERROR_NOT_SUPPORTED, cuStreamBatchMemOp(probe, 1, &flush, 0));
    EXPECT_CU(CUDA_ERROR_NOT_SUPPORTED, cuStreamWaitValue32(probe, buf, 1, CU_STREAM_WAIT_VALUE_FLUSH));
  }
  CK(cuMemsetD32Async(buf, 1, 1, unblock));
  CK(cuStreamSynchronize(unblock));
  CK(cuStreamSynchronize(probe));
  CK(cuStreamDestroy(probe));
  CK(cuStreamDestroy(unblock));

  // Captured: every launch of the graph writes again.
  CUstream cs = nullptr;
  CK(cuStreamCreate(&cs, CU_STREAM_NON_BLOCKING));
  CK(cuStreamBeginCapture(cs, CU_STREAM_CAPTURE_MODE_GLOBAL));
  CK(cuStreamWriteValue32(cs, buf + 32, 42, 0));
  CUgraph g = nullptr;
  CK(cuStreamEndCapture(cs, &g));
  CUgraphExec e = nullptr;
  CK(cuGraphInstantiate(&e, g, 0));
  for (int i = 0; i < 2; ++i) {
    CK(cuMemsetD32(buf + 32, 0, 1));
    CK(cuGraphLaunch(e, cs));
    CK(cuStreamSynchronize(cs));
    CK(cuMemcpyDtoH(&v32, buf + 32, 4));
    EXPECT(v32 == 42);
  }
  CK(cuGraphExecDestroy(e));
  CK(cuGraphDestroy(g));
  CK(cuStreamDestroy(cs));
  printf("stream memory operations: write/wait 32/64, batch, captured\n");
}

static void Copy3DPeer(CUcontext ctx, CUstream st) {
  const size_t w = 64, h = 4, d = 3;  // bytes, rows, slices
  std::vector<unsigned char> host(w * h * d), back(w * h * d, 0);
  for (size_t i = 0; i < host.size(); ++i) host[i] = static_cast<unsigned char>(i * 7 + 1);
  CUdeviceptr a = 0, b = 0;
  CK(cuMemAlloc(&a, w * h * d));
  CK(cuMemAlloc(&b, w * h * d));

  CUDA_MEMCPY3D_PEER p;
  memset(&p, 0, sizeof p);
  p.srcMemoryType = CU_MEMORYTYPE_HOST;
  p.srcHost = host.data();
  p.srcPitch = w;
  p.srcHeight = h;
  p.dstMemoryType = CU_MEMORYTYPE_DEVICE;
  p.dstDevice = a;
  p.dstContext = ctx;
  p.dstPitch = w;
  p.dstHeight = h;
  p.WidthInBytes = w;
  p.Height = h;
  p.Depth = d;
  CK(cuMemcpy3DPeer(&p));

  // Device to device between the two contexts' memory (one device here).
  memset(&p, 0, sizeof p);
  p.srcMemoryType = CU_MEMORYTYPE_DEVICE;
  p.srcDevice = a;
  p.srcContext = ctx;
  p.srcPitch = w;
  p.srcHeight = h;
  p.dstMemoryType = CU_MEMORYTYPE_DEVICE;
  p.dstDevice = b;
  p.dstContext = ctx;
  p.dstPitch = w;
  p.dstHeight = h;
  p.WidthInBytes = w;
  p.Height = h;
  p.Depth = d;
  CK(cuMemcpy3DPeerAsync(&p, st));
  CK(cuStreamSynchronize(st));
  CK(cuMemcpyDtoH(back.data(), b, back.size()));
  EXPECT(back == host);

  // A sub-box: rows 1..2 of slice 2, bytes 8..39, to the origin of a.
  CK(cuMemsetD8(a, 0, w * h * d));
  p.srcXInBytes = 8;
  p.srcY = 1;
  p.srcZ = 2;
  p.srcDevice = b;
  p.dstDevice = a;
  p.WidthInBytes = 32;
  p.Height = 2;
  p.Depth = 1;
  CK(cuMemcpy3DPeer(&p));
  CK(cuMemcpyDtoH(back.data(), a, back.size()));
  for (size_t y = 0; y < 2; ++y)
    for (size_t x = 0; x < 32; ++x) EXPECT(back[y * w + x] == host[2 * w * h + (y + 1) * w + 8 + x]);
  EXPECT(back[32] == 0 && back[2 * w] == 0);

  p.srcContext = reinterpret_cast<CUcontext>(0x1230);
  EXPECT_CU(CUDA_ERROR_INVALID_CONTEXT, cuMemcpy3DPeer(&p));
  EXPECT_CU(CUDA_ERROR_INVALID_VALUE, cuMemcpy3DPeer(nullptr));
  CK(cuMemFree(a));
  CK(cuMemFree(b));
  printf("3D peer copies: host to device, device to device (async), sub-box\n");
}

static CUgraphNode AddClusterRankNode(CUgraph g, CUfunction fn, CUdeviceptr* out, unsigned blocks) {
  void* args[] = {out};
  CUDA_KERNEL_NODE_PARAMS kp;
  memset(&kp, 0, sizeof kp);
  kp.func = fn;
  kp.gridDimX = blocks;
  kp.gridDimY = kp.gridDimZ = 1;
  kp.blockDimX = 32;
  kp.blockDimY = kp.blockDimZ = 1;
  kp.kernelParams = args;
  CUgraphNode n = nullptr;
  CK(cuGraphAddKernelNode(&n, g, nullptr, 0, &kp));
  return n;
}

static int g_destroyed = 0;
static void CountDestroy(void* p) { g_destroyed += *static_cast<int*>(p); }

static void GraphExtras(CUfunction fn, CUstream st) {
  const unsigned kBlocks = 8;
  CUdeviceptr out1 = 0, out2 = 0;
  CK(cuMemAlloc(&out1, kBlocks * sizeof(int)));
  CK(cuMemAlloc(&out2, kBlocks * sizeof(int)));
  CUgraph g = nullptr;
  CK(cuGraphCreate(&g, 0));
  CUgraphNode k1 = AddClusterRankNode(g, fn, &out1, kBlocks);
  CUgraphNode k2 = AddClusterRankNode(g, fn, &out2, kBlocks);

  // Kernel node attributes: a cluster of 2 makes ranks 0,1,0,1,...
  CUkernelNodeAttrValue v;
  memset(&v, 0, sizeof v);
  CK(cuGraphKernelNodeGetAttribute(k1, CU_KERNEL_NODE_ATTRIBUTE_CLUSTER_DIMENSION, &v));
  EXPECT(v.clusterDim.x == 0);
  v.clusterDim.x = 2;
  v.clusterDim.y = v.clusterDim.z = 1;
  CK(cuGraphKernelNodeSetAttribute(k1, CU_KERNEL_NODE_ATTRIBUTE_CLUSTER_DIMENSION, &v));
  memset(&v, 0, sizeof v);
  CK(cuGraphKernelNodeGetAttribute(k1, CU_KERNEL_NODE_ATTRIBUTE_CLUSTER_DIMENSION, &v));
  EXPECT(v.clusterDim.x == 2 && v.clusterDim.y == 1 && v.clusterDim.z == 1);
  v.priority = 0;
  memset(&v, 0, sizeof v);
  v.priority = -1;
  CK(cuGraphKernelNodeSetAttribute(k1, CU_KERNEL_NODE_ATTRIBUTE_PRIORITY, &v));
  EXPECT_CU(CUDA_ERROR_INVALID_VALUE,
            cuGraphKernelNodeSetAttribute(k1, static_cast<CUkernelNodeAttrID>(CU_LAUNCH_ATTRIBUTE_SYNCHRONIZATION_POLICY), &v));
  CK(cuGraphKernelNodeCopyAttributes(k2, k1));
  memset(&v, 0, sizeof v);
  CK(cuGraphKernelNodeGetAttribute(k2, CU_KERNEL_NODE_ATTRIBUTE_PRIORITY, &v));
  EXPECT(v.priority == -1);
  CK(cuGraphKernelNodeGetAttribute(k2, CU_KERNEL_NODE_ATTRIBUTE_CLUSTER_DIMENSION, &v));
  EXPECT(v.clusterDim.x == 2);
  // k2's cluster becomes 4.
  v.clusterDim.x = 4;
  CK(cuGraphKernelNodeSetAttribute(k2, CU_KERNEL_NODE_ATTRIBUTE_CLUSTER_DIMENSION, &v));

  // A child graph, changed through the handle of its node's graph.
  CUdeviceptr flag = 0;
  CK(cuMemAlloc(&flag, 2 * sizeof(int)));
  CK(cuMemsetD32(flag, 0, 2));
  CUgraph child = nullptr;
  CK(cuGraphCreate(&child, 0));
  CUDA_MEMSET_NODE_PARAMS mp;
  memset(&mp, 0, sizeof mp);
  mp.dst = flag;
  mp.value = 11;
  mp.elementSize = 4;
  mp.width = 1;
  mp.height = 1;
  CUgraphNode m1 = nullptr;
  CK(cuGraphAddMemsetNode(&m1, child, nullptr, 0, &mp, nullptr));
  CUgraphNode cn = nullptr;
  CK(cuGraphAddChildGraphNode(&cn, g, &k1, 1, child));
  CK(cuGraphDestroy(child));  // the node holds its own copy
  CUgraph embedded = nullptr;
  CK(cuGraphChildGraphNodeGetGraph(cn, &embedded));
  CUgraph again = nullptr;
  CK(cuGraphChildGraphNodeGetGraph(cn, &again));
  EXPECT(again == embedded);
  size_t count = 0;
  CK(cuGraphGetNodes(embedded, nullptr, &count));
  EXPECT(count == 1);
  mp.dst = flag + sizeof(int);
  mp.value = 22;
  CUgraphNode m2 = nullptr;
  CK(cuGraphAddMemsetNode(&m2, embedded, nullptr, 0, &mp, nullptr));
  EXPECT_CU(CUDA_ERROR_INVALID_VALUE, cuGraphDestroy(embedded));  // owned by the node
  EXPECT_CU(CUDA_ERROR_INVALID_VALUE, cuGraphChildGraphNodeGetGraph(k1, &again));

  // DOT output of the model: 4 nodes at the top, one edge, two in the child.
  char path[64];
  snprintf(path, sizeof path, "/tmp/rgpu_compat_%d.dot", static_cast<int>(getpid()));
  CK(cuGraphDebugDotPrint(g, path, CU_GRAPH_DEBUG_DOT_FLAGS_VERBOSE));
  FILE* f = fopen(path, "r");
  EXPECT(f != nullptr);
  std::string dot;
  char chunk[4096];
  size_t got = 0;
  while ((got = fread(chunk, 1, sizeof chunk, f)) > 0) dot.append(chunk, got);
  fclose(f);
  unlink(path);
  EXPECT(dot.rfind("digraph", 0) == 0);
  EXPECT(dot.find("clusterRank") != std::string::npos);
  EXPECT(dot.find("MEMSET") != std::string::npos);
  size_t edges = 0;
  for (size_t at = dot.find("->"); at != std::string::npos; at = dot.find("->", at + 2)) ++edges;
  EXPECT(edges == 1);
  EXPECT_CU(CUDA_ERROR_INVALID_VALUE, cuGraphDebugDotPrint(g, nullptr, 0));

  // User objects: the graph takes over the caller's reference; its
  // executable graph keeps one of its own.
  static int one = 1;
  CUuserObject obj = nullptr;
  CK(cuUserObjectCreate(&obj, &one, CountDestroy, 1, CU_USER_OBJECT_NO_DESTRUCTOR_SYNC));
  CK(cuGraphRetainUserObject(g, obj, 1, CU_GRAPH_USER_OBJECT_MOVE));
  EXPECT_CU(CUDA_ERROR_INVALID_VALUE, cuUserObjectCreate(&obj, &one, CountDestroy, 1, 0));

  CUgraphExec e = nullptr;
  CK(cuGraphInstantiate(&e, g, 0));
  CK(cuMemsetD32(out1, 9, kBlocks));
  CK(cuMemsetD32(out2, 9, kBlocks));
  CK(cuGraphLaunch(e, st));
  CK(cuStreamSynchronize(st));
  std::vector<int> r1 = ReadInts(out1, kBlocks), r2 = ReadInts(out2, kBlocks), fl = ReadInts(flag, 2);
  for (unsigned i = 0; i < kBlocks; ++i) {
    EXPECT(r1[i] == static_cast<int>(i % 2));
    EXPECT(r2[i] == static_cast<int>(i % 4));
  }
  EXPECT(fl[0] == 11 && fl[1] == 22);

  CK(cuGraphDestroy(g));
  EXPECT(g_destroyed == 0);  // the executable graph still holds it
  CK(cuGraphExecDestroy(e));
  EXPECT(g_destroyed == 1);

  CUuserObject o2 = nullptr;
  CK(cuUserObjectCreate(&o2, &one, CountDestroy, 1, CU_USER_OBJECT_NO_DESTRUCTOR_SYNC));
  CK(cuUserObjectRetain(o2, 2));
  CK(cuUserObjectRelease(o2, 2));
  EXPECT(g_destroyed == 1);
  CK(cuUserObjectRelease(o2, 1));
  EXPECT(g_destroyed == 2);
  EXPECT_CU(CUDA_ERROR_INVALID_VALUE, cuUserObjectRelease(o2, 1));
  CK(cuMemFree(out1));
  CK(cuMemFree(out2));
  CK(cuMemFree(flag));
  printf("graphs: kernel node attributes, child graph handle, DOT, user objects\n");
}

// cuMemAllocAsync / cuMemFreeAsync captured into a graph: the memory stays
// the graph's for every launch and is freed when the graph goes.
static void CapturedAllocation(CUcontext ctx, CUstream st) {
  CUdeviceptr out = 0;
  CK(cuMemAlloc(&out, sizeof(int)));
  CUstream cs = nullptr;
  CK(cuStreamCreate(&cs, CU_STREAM_NON_BLOCKING));
  CK(cuStreamBeginCapture(cs, CU_STREAM_CAPTURE_MODE_GLOBAL));
  CUevent ev = nullptr;
  CK(cuEventCreate(&ev, 0));
  EXPECT_CU(CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED, cuCtxRecordEvent(ctx, ev));
  CUdeviceptr tmp = 0;
  CK(cuMemAllocAsync(&tmp, 4096, cs));
  CK(cuMemsetD32Async(tmp, 5, 1, cs));
  CK(cuMemcpyDtoDAsync(out, tmp, sizeof(int), cs));
  CK(cuMemFreeAsync(tmp, cs));
  CUgraph g = nullptr;
  CK(cuStreamEndCapture(cs, &g));
  CUdeviceptr base = 0;
  size_t size = 0;
  CK(cuMemGetAddressRange(&base, &size, tmp));  // not freed at capture
  CUgraphExec e = nullptr;
  CK(cuGraphInstantiate(&e, g, 0));
  CK(cuGraphDestroy(g));
  for (int i = 0; i < 2; ++i) {
    CK(cuMemsetD32(out, 0, 1));
    CK(cuGraphLaunch(e, st));
    CK(cuStreamSynchronize(st));
    EXPECT(ReadInts(out, 1)[0] == 5);
  }
  CK(cuMemGetAddressRange(&base, &size, tmp));  // the executable graph still uses it
  CK(cuGraphExecDestroy(e));
  EXPECT_CU(CUDA_ERROR_NOT_FOUND, cuMemGetAddressRange(&base, &size, tmp));  // freed with the graph
  CK(cuEventDestroy(ev));
  CK(cuStreamDestroy(cs));
  CK(cuMemFree(out));
  printf("captured cuMemAllocAsync / cuMemFreeAsync: freed with the graph\n");
}

// Memory nodes of a graph built node by node: allocated at add, valid for
// every launch, freed with the graph.
static void GraphMemoryNodes(CUstream st) {
  int dev = 0;
  CK(cuCtxGetDevice(&dev));
  CUdeviceptr out = 0;
  CK(cuMemAlloc(&out, sizeof(int)));
  CUgraph g = nullptr;
  CK(cuGraphCreate(&g, 0));
  CUDA_MEM_ALLOC_NODE_PARAMS ap;
  memset(&ap, 0, sizeof ap);
  ap.poolProps.allocType = CU_MEM_ALLOCATION_TYPE_PINNED;
  ap.poolProps.location.type = CU_MEM_LOCATION_TYPE_DEVICE;
  ap.poolProps.location.id = dev;
  ap.bytesize = 8192;
  CUgraphNode an = nullptr;
  CK(cuGraphAddMemAllocNode(&an, g, nullptr, 0, &ap));
  EXPECT(ap.dptr != 0);
  CUDA_MEMSET_NODE_PARAMS mp;
  memset(&mp, 0, sizeof mp);
  mp.dst = ap.dptr;
  mp.value = 6;
  mp.elementSize = 4;
  mp.width = 1;
  mp.height = 1;
  CUgraphNode ms = nullptr;
  CK(cuGraphAddMemsetNode(&ms, g, &an, 1, &mp, nullptr));
  CUDA_MEMCPY3D cp;
  memset(&cp, 0, sizeof cp);
  cp.srcMemoryType = CU_MEMORYTYPE_DEVICE;
  cp.srcDevice = ap.dptr;
  cp.dstMemoryType = CU_MEMORYTYPE_DEVICE;
  cp.dstDevice = out;
  cp.WidthInBytes = sizeof(int);
  cp.Height = 1;
  cp.Depth = 1;
  CUcontext ctx = nullptr;
  CK(cuCtxGetCurrent(&ctx));
  CUgraphNode cn = nullptr;
  CK(cuGraphAddMemcpyNode(&cn, g, &ms, 1, &cp, ctx));
  CUgraphNode fn = nullptr;
  CK(cuGraphAddMemFreeNode(&fn, g, &cn, 1, ap.dptr));
  EXPECT_CU(CUDA_ERROR_INVALID_VALUE, cuGraphAddMemFreeNode(&fn, g, &cn, 1, ap.dptr));  // freed twice
  EXPECT_CU(CUDA_ERROR_INVALID_VALUE, cuGraphAddMemFreeNode(&fn, g, &cn, 1, ap.dptr + 4));

  CUDA_MEM_ALLOC_NODE_PARAMS got;
  CK(cuGraphMemAllocNodeGetParams(an, &got));
  EXPECT(got.dptr == ap.dptr && got.bytesize == 8192 && got.poolProps.location.id == dev);
  CUdeviceptr freed = 0;
  CK(cuGraphMemFreeNodeGetParams(fn, &freed));
  EXPECT(freed == ap.dptr);
  CUgraphNodeType type;
  CK(cuGraphNodeGetType(an, &type));
  EXPECT(type == CU_GRAPH_NODE_TYPE_MEM_ALLOC);
  // A graph with memory nodes cannot be a child graph.
  CUgraph parent = nullptr;
  CK(cuGraphCreate(&parent, 0));
  CUgraphNode child = nullptr;
  EXPECT_CU(CUDA_ERROR_INVALID_VALUE, cuGraphAddChildGraphNode(&child, parent, nullptr, 0, g));
  CK(cuGraphDestroy(parent));
  ap.poolProps.location.id = 64;  // no such device
  EXPECT_CU(CUDA_ERROR_INVALID_VALUE, cuGraphAddMemAllocNode(&an, g, nullptr, 0, &ap));
  ap.poolProps.location.id = dev;
  ap.poolProps.handleTypes = CU_MEM_HANDLE_TYPE_POSIX_FILE_DESCRIPTOR;  // IPC: refused
  EXPECT_CU(CUDA_ERROR_NOT_SUPPORTED, cuGraphAddMemAllocNode(&an, g, nullptr, 0, &ap));

  CUgraphExec e = nullptr;
  CK(cuGraphInstantiate(&e, g, 0));
  CK(cuGraphDestroy(g));
  for (int i = 0; i < 2; ++i) {
    CK(cuMemsetD32(out, 0, 1));
    CK(cuGraphLaunch(e, st));
    CK(cuStreamSynchronize(st));
    EXPECT(ReadInts(out, 1)[0] == 6);
  }
  // Graph memory use (the graphMemoryNodes sample prints it): what the
  // alloc node took shows in the high-water marks; only those can be reset,
  // and only to zero.
  cuuint64_t used = 0, used_high = 0, reserved = 0, reserved_high = 0, zero = 0, one = 1;
  CK(cuDeviceGetGraphMemAttribute(dev, CU_GRAPH_MEM_ATTR_USED_MEM_CURRENT, &used));
  CK(cuDeviceGetGraphMemAttribute(dev, CU_GRAPH_MEM_ATTR_USED_MEM_HIGH, &used_high));
  CK(cuDeviceGetGraphMemAttribute(dev, CU_GRAPH_MEM_ATTR_RESERVED_MEM_CURRENT, &reserved));
  CK(cuDeviceGetGraphMemAttribute(dev, CU_GRAPH_MEM_ATTR_RESERVED_MEM_HIGH, &reserved_high));
  EXPECT(used_high >= 8192 && reserved_high >= 8192 && reserved >= used && used_high >= used);
  CK(cuDeviceSetGraphMemAttribute(dev, CU_GRAPH_MEM_ATTR_USED_MEM_HIGH, &zero));
  CK(cuDeviceSetGraphMemAttribute(dev, CU_GRAPH_MEM_ATTR_RESERVED_MEM_HIGH, &zero));
  EXPECT_CU(CUDA_ERROR_INVALID_VALUE, cuDeviceSetGraphMemAttribute(dev, CU_GRAPH_MEM_ATTR_USED_MEM_HIGH, &one));
  EXPECT_CU(CUDA_ERROR_INVALID_VALUE, cuDeviceSetGraphMemAttribute(dev, CU_GRAPH_MEM_ATTR_USED_MEM_CURRENT, &zero));
  CK(cuDeviceGetGraphMemAttribute(dev, CU_GRAPH_MEM_ATTR_USED_MEM_HIGH, &used_high));
  EXPECT(used_high <= used + 8192);  // restarted from what is in use now
  CUdeviceptr base = 0;
  size_t size = 0;
  CK(cuMemGetAddressRange(&base, &size, got.dptr));  // the executable graph still uses it
  CK(cuGraphExecDestroy(e));
  EXPECT_CU(CUDA_ERROR_NOT_FOUND, cuMemGetAddressRange(&base, &size, got.dptr));  // freed with the graph
  CK(cuDeviceGraphMemTrim(dev));
  CK(cuDeviceGetGraphMemAttribute(dev, CU_GRAPH_MEM_ATTR_USED_MEM_CURRENT, &used));
  CK(cuDeviceGetGraphMemAttribute(dev, CU_GRAPH_MEM_ATTR_RESERVED_MEM_CURRENT, &reserved));
  EXPECT(used == 0 && reserved == 0);  // nothing left once the graph and its memory are gone
  CK(cuMemFree(out));
  printf("graph memory nodes: alloc, free, parameters, freed with the graph, memory use attributes\n");
}

static void ContextEventsAndCaptureToGraph(CUcontext ctx, CUstream st) {
  CUevent a = nullptr, b = nullptr;
  CK(cuEventCreate(&a, 0));
  CK(cuEventCreate(&b, 0));
  CK(cuEventRecord(a, st));
  CK(cuCtxRecordEvent(ctx, b));
  CK(cuEventSynchronize(b));
  float ms = -1;
  CK(cuEventElapsedTime(&ms, a, b));  // b was recorded: elapsed time is defined
  EXPECT(ms >= 0);
  CK(cuCtxWaitEvent(ctx, a));
  EXPECT_CU(CUDA_ERROR_INVALID_HANDLE, cuCtxRecordEvent(ctx, reinterpret_cast<CUevent>(0x1230)));
  EXPECT_CU(CUDA_ERROR_INVALID_CONTEXT, cuCtxWaitEvent(reinterpret_cast<CUcontext>(0x1230), a));
  CK(cuCtxSynchronize());

  // Capture into a graph made by cuGraphCreate.
  CUdeviceptr buf = 0;
  CK(cuMemAlloc(&buf, 4 * sizeof(int)));
  CK(cuMemsetD32(buf, 0, 4));
  CUstream cs = nullptr;
  CK(cuStreamCreate(&cs, CU_STREAM_NON_BLOCKING));
  CUgraph g = nullptr;
  CK(cuGraphCreate(&g, 0));
  EXPECT_CU(CUDA_ERROR_ILLEGAL_STATE, cuStreamUpdateCaptureDependencies(cs, nullptr, nullptr, 0,
                                                                         CU_STREAM_SET_CAPTURE_DEPENDENCIES));
  CK(cuStreamBeginCaptureToGraph(cs, g, nullptr, nullptr, 0, CU_STREAM_CAPTURE_MODE_GLOBAL));
  CK(cuMemsetD32Async(buf, 3, 2, cs));
  CK(cuStreamUpdateCaptureDependencies(cs, nullptr, nullptr, 0, CU_STREAM_SET_CAPTURE_DEPENDENCIES));
  CK(cuStreamUpdateCaptureDependencies(cs, nullptr, nullptr, 0, CU_STREAM_ADD_CAPTURE_DEPENDENCIES));
  CK(cuMemsetD32Async(buf + 2 * sizeof(int), 4, 2, cs));
  CUgraph captured = nullptr;
  CK(cuStreamEndCapture(cs, &captured));
  EXPECT(captured == g);
  CUgraphExec e = nullptr;
  CK(cuGraphInstantiate(&e, g, 0));
  CK(cuGraphLaunch(e, cs));
  CK(cuStreamSynchronize(cs));
  std::vector<int> v = ReadInts(buf, 4);
  EXPECT(v[0] == 3 && v[1] == 3 && v[2] == 4 && v[3] == 4);
  CK(cuGraphExecDestroy(e));
  CK(cuGraphDestroy(g));
  CK(cuStreamDestroy(cs));
  CK(cuMemFree(buf));
  CK(cuEventDestroy(a));
  CK(cuEventDestroy(b));
  printf("cuCtxRecordEvent / cuCtxWaitEvent, capture into a graph, capture dependencies\n");
}

// CUDA 13 additions: batched prefetch and discard of managed memory (data
// stays intact through prefetches; a discard leaves it indeterminate, so it
// is rewritten after), the stream's green context (none), and the host
// atomic capabilities query's argument checks.
static void Cuda13Calls(CUcontext ctx, CUstream st) {
  const size_t n = 4096;
  CUdeviceptr a = 0, b = 0, plain = 0;
  CK(cuMemAllocManaged(&a, n, CU_MEM_ATTACH_GLOBAL));
  CK(cuMemAllocManaged(&b, n, CU_MEM_ATTACH_GLOBAL));
  CK(cuMemAlloc(&plain, n));
  memset(reinterpret_cast<void*>(a), 0x5a, n);
  memset(reinterpret_cast<void*>(b), 0xa5, n);
  CUdeviceptr ptrs[2] = {a, b};
  size_t sizes[2] = {n, n};
  CUmemLocation locs[2] = {{CU_MEM_LOCATION_TYPE_DEVICE, 0}, {CU_MEM_LOCATION_TYPE_HOST, 0}};
  size_t idxs[2] = {0, 1};
  CK(cuMemPrefetchBatchAsync(ptrs, sizes, 2, locs, idxs, 2, 0, st));
  CK(cuStreamSynchronize(st));
  EXPECT(reinterpret_cast<unsigned char*>(a)[n - 1] == 0x5a && reinterpret_cast<unsigned char*>(b)[0] == 0xa5);
  CK(cuMemPrefetchBatchAsync(ptrs, sizes, 2, locs, idxs, 1, 0, st));  // one location for both
  size_t bad_idxs[2] = {1, 0};
  EXPECT(cuMemPrefetchBatchAsync(ptrs, sizes, 2, locs, bad_idxs, 2, 0, st) != CUDA_SUCCESS);
  CUdeviceptr mixed[2] = {a, plain};
  EXPECT(cuMemPrefetchBatchAsync(mixed, sizes, 2, locs, idxs, 2, 0, st) != CUDA_SUCCESS);
  CK(cuMemDiscardBatchAsync(ptrs, sizes, 2, 0, st));
  CK(cuMemDiscardAndPrefetchBatchAsync(ptrs, sizes, 2, locs, idxs, 2, 0, st));
  EXPECT(cuMemDiscardBatchAsync(ptrs, sizes, 0, 0, st) != CUDA_SUCCESS);
  CK(cuStreamSynchronize(st));
  memset(reinterpret_cast<void*>(a), 1, n);  // discarded: write before reading
  EXPECT(reinterpret_cast<unsigned char*>(a)[7] == 1);
  CK(cuMemFree(a));
  CK(cuMemFree(b));
  CK(cuMemFree(plain));

  CUcontext owner = nullptr;
  CUgreenCtx green = reinterpret_cast<CUgreenCtx>(0x1);
  CK(cuStreamGetCtx_v2(st, &owner, &green));
  EXPECT(owner == ctx && green == nullptr);

  CUatomicOperation ops[3] = {CU_ATOMIC_OPERATION_INTEGER_ADD, CU_ATOMIC_OPERATION_CAS,
                              CU_ATOMIC_OPERATION_FLOAT_ADD};
  unsigned caps[3] = {};
  CK(cuDeviceGetHostAtomicCapabilities(caps, ops, 3, 0));
  ops[1] = CU_ATOMIC_OPERATION_MAX;
  EXPECT_CU(CUDA_ERROR_INVALID_VALUE, cuDeviceGetHostAtomicCapabilities(caps, ops, 3, 0));
  EXPECT_CU(CUDA_ERROR_INVALID_VALUE, cuDeviceGetHostAtomicCapabilities(caps, ops, 0, 0));
  EXPECT_CU(CUDA_ERROR_INVALID_DEVICE, cuDeviceGetHostAtomicCapabilities(caps, ops, 1, 99));
  printf("CUDA 13 calls: batch prefetch/discard, stream green context, host atomics\n");
}

// cuMemcpy3DBatchAsync: host rows into a CUDA array and into packed device
// memory in one batch, then a window of the array back to a host buffer with
// its own row length; bad operations are refused before anything is copied.
static void Copy3DBatch(CUstream st) {
  const size_t w = 64, h = 32;
  std::vector<float> host(w * h);
  for (size_t i = 0; i < host.size(); ++i) host[i] = static_cast<float>(i);
  CUDA_ARRAY3D_DESCRIPTOR d{};
  d.Width = w;
  d.Height = h;
  d.Format = CU_AD_FORMAT_FLOAT;
  d.NumChannels = 1;
  CUarray arr = nullptr;
  CK(cuArray3DCreate(&arr, &d));
  CUdeviceptr lin = 0;
  CK(cuMemAlloc(&lin, w * h * sizeof(float)));
  auto pointer = [](const void* p, size_t row) {
    CUmemcpy3DOperand o{};
    o.type = CU_MEMCPY_OPERAND_TYPE_POINTER;
    o.op.ptr.ptr = reinterpret_cast<CUdeviceptr>(p);
    o.op.ptr.rowLength = row;
    return o;
  };
  CUmemcpy3DOperand to_array{};
  to_array.type = CU_MEMCPY_OPERAND_TYPE_ARRAY;
  to_array.op.array.array = arr;
  CUDA_MEMCPY3D_BATCH_OP ops[2] = {};
  ops[0].src = pointer(host.data(), 0);
  ops[0].dst = to_array;
  ops[0].extent = {w, h, 1};
  ops[0].srcAccessOrder = CU_MEMCPY_SRC_ACCESS_ORDER_STREAM;
  ops[1].src = pointer(host.data(), 0);
  ops[1].dst = pointer(reinterpret_cast<void*>(lin), 0);
  ops[1].extent = {w * sizeof(float), h, 1};  // pointer to pointer: bytes
  ops[1].srcAccessOrder = CU_MEMCPY_SRC_ACCESS_ORDER_STREAM;
  CK(cuMemcpy3DBatchAsync(2, ops, 0, st));
  CK(cuStreamSynchronize(st));
  std::vector<float> back(w * h, -1.0f);
  CK(cuMemcpyDtoH(back.data(), lin, back.size() * sizeof(float)));
  EXPECT(back == host);

  const size_t ww = 16, wh = 8, x0 = 8, y0 = 4;
  std::vector<float> window(ww * wh, -1.0f);
  CUDA_MEMCPY3D_BATCH_OP out{};
  out.src.type = CU_MEMCPY_OPERAND_TYPE_ARRAY;
  out.src.op.array.array = arr;
  out.src.op.array.offset = {x0, y0, 0};
  out.dst = pointer(window.data(), ww);
  out.extent = {ww, wh, 1};
  out.srcAccessOrder = CU_MEMCPY_SRC_ACCESS_ORDER_STREAM;
  CK(cuMemcpy3DBatchAsync(1, &out, 0, st));
  CK(cuStreamSynchronize(st));
  for (size_t r = 0; r < wh; ++r)
    for (size_t c = 0; c < ww; ++c) EXPECT(window[r * ww + c] == host[(y0 + r) * w + x0 + c]);

  CUDA_MEMCPY3D_BATCH_OP bad = out;
  bad.extent.depth = 0;
  EXPECT_CU(CUDA_ERROR_INVALID_VALUE, cuMemcpy3DBatchAsync(1, &bad, 0, st));
  bad = out;
  bad.dst.op.ptr.rowLength = ww - 1;  // shorter than a row of the copy
  EXPECT_CU(CUDA_ERROR_INVALID_VALUE, cuMemcpy3DBatchAsync(1, &bad, 0, st));
  bad = out;
  bad.srcAccessOrder = CU_MEMCPY_SRC_ACCESS_ORDER_INVALID;
  EXPECT_CU(CUDA_ERROR_INVALID_VALUE, cuMemcpy3DBatchAsync(1, &bad, 0, st));
  EXPECT_CU(CUDA_ERROR_INVALID_VALUE, cuMemcpy3DBatchAsync(0, &out, 0, st));
  CK(cuMemFree(lin));
  CK(cuArrayDestroy(arr));
  printf("cuMemcpy3DBatchAsync: pointers and arrays, both ways, bad operations refused\n");
}

int main() {
  setvbuf(stdout, nullptr, _IONBF, 0);  // a crash must not eat the output
  CK(cuInit(0));
  CUdevice dev = 0;
  CK(cuDeviceGet(&dev, 0));
  CUcontext ctx = nullptr;
  CK(cuDevicePrimaryCtxRetain(&ctx, dev));
  CK(cuCtxSetCurrent(ctx));
  CUmodule mod = nullptr;
  CK(cuModuleLoadData(&mod, kPtx));
  CUfunction fn = nullptr;
  CK(cuModuleGetFunction(&fn, mod, "clusterRank"));
  CUstream st = nullptr;
  CK(cuStreamCreate(&st, CU_STREAM_NON_BLOCKING));
  CUdeviceptr buf = 0;
  CK(cuMemAlloc(&buf, 4096));

  SharedMemConfigAndTextureWidth(fn);
  StreamMemOps(buf, st);
  Copy3DPeer(ctx, st);
  GraphExtras(fn, st);
  CapturedAllocation(ctx, st);
  GraphMemoryNodes(st);
  ContextEventsAndCaptureToGraph(ctx, st);
  Cuda13Calls(ctx, st);
  Copy3DBatch(st);

  CK(cuCtxSynchronize());
  CK(cuMemFree(buf));
  CK(cuStreamDestroy(st));
  CK(cuModuleUnload(mod));
  CK(cuDevicePrimaryCtxRelease(dev));
  printf("OK compat_calls\n");
  return 0;
}
