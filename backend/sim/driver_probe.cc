// sim_driver_probe: asks a backend (sim or the real driver, through the same
// DriverTable) a fixed list of questions — return codes for bad input,
// attribute values, parameter layouts, occupancy — and prints one
// "question = answer" line each. Run it against both and diff the outputs to
// see where the sim departs from the driver:
//   sim_driver_probe cuda <image testdata dir>            (on a GPU host)
//   sim_driver_probe sim  <image testdata dir> <profile>  (anywhere)
// The images are image/testdata/sample_kernels.cu's nvcc outputs. It launches
// kernels only with valid arguments, so the real GPU never faults.
// testdata/probe_h200_driver580.txt holds the real driver's answers (H200,
// driver 580.159, images from nvcc 13.0); the sim_driver_conformance test
// checks that the sim still gives every one of them.
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "backend/driver_table.h"
#include "backend/sim/kernel_registry.h"

using rgpu::backend::DriverTable;

// The sim needs a host version of the one kernel the probe launches (with
// n = 0, so it does nothing on either side).
RGPU_SIM_KERNEL("add", [](const rgpu::backend::SimLaunch&) {});

namespace {

DriverTable t;
std::string g_dir;

// A call through the table; -1 where the backend leaves the entry empty.
#define C(fn, ...) (t.fn ? t.fn(__VA_ARGS__) : static_cast<CUresult>(-1))

void Out(const std::string& key, long long v) { printf("%s = %lld\n", key.c_str(), v); }
void OutS(const std::string& key, const std::string& v) { printf("%s = %s\n", key.c_str(), v.c_str()); }

std::vector<char> Read(const std::string& name) {
  std::ifstream in(g_dir + "/" + name, std::ios::binary);
  std::vector<char> v((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  v.resize(v.size() + 8, 0);
  return v;
}

void Device() {
  char name[128] = {};
  C(cuDeviceGetName, name, sizeof name, 0);
  OutS("device.name", name);
  char bus[64] = {};
  C(cuDeviceGetPCIBusId, bus, sizeof bus, 0);
  OutS("device.pci_bus_id", bus);
  int v = 0;
  Out("device.attr_9999", C(cuDeviceGetAttribute, &v, static_cast<CUdevice_attribute>(9999), 0));
  Out("device.get_1", C(cuDeviceGet, reinterpret_cast<CUdevice*>(&v), 99));
  // (cuDeviceGetName with len 0 crashes the real driver 580: not asked.)
}

void Contexts(CUcontext primary) {
  size_t v = 0;
  for (int l = 0; l <= CU_LIMIT_MAX; ++l) {
    CUresult r = C(cuCtxGetLimit, &v, static_cast<CUlimit>(l));
    Out("limit." + std::to_string(l), r == CUDA_SUCCESS ? static_cast<long long>(v) : -1000 - r);
  }
  Out("limit.set_l2fetch_256", C(cuCtxSetLimit, CU_LIMIT_MAX_L2_FETCH_GRANULARITY, 256));
  Out("limit.set_shmem", C(cuCtxSetLimit, CU_LIMIT_SHMEM_SIZE, 1));
  int lo = 9, hi = 9;
  C(cuCtxGetStreamPriorityRange, &lo, &hi);
  Out("ctx.priority_least", lo);
  Out("ctx.priority_greatest", hi);
  Out("ctx.destroy_null", C(cuCtxDestroy_v2, nullptr));
  Out("ctx.destroy_primary", C(cuCtxDestroy_v2, primary));
  unsigned flags = 0;
  int active = 0;
  C(cuDevicePrimaryCtxGetState, 0, &flags, &active);
  Out("ctx.primary_active", active);
  Out("ctx.primary_setflags_3", C(cuDevicePrimaryCtxSetFlags_v2, 0, 3));
}

void Memory() {
  CUdeviceptr a = 0, b = 0;
  C(cuMemAlloc_v2, &a, 100);
  C(cuMemAlloc_v2, &b, 1);
  Out("mem.small_align512", a % 512 == 0);
  CUdeviceptr base = 0;
  size_t size = 0;
  C(cuMemGetAddressRange_v2, &base, &size, a + 10);
  Out("mem.range_size_of_100", size);
  Out("mem.range_past_requested", C(cuMemGetAddressRange_v2, &base, &size, a + 100));
  Out("mem.range_unknown", C(cuMemGetAddressRange_v2, &base, &size, 0x10));
  std::vector<char> h(1 << 16);
  Out("mem.htod_past_end", C(cuMemcpyHtoD_v2, a, h.data(), 101));
  Out("mem.htod_into_rounding", C(cuMemcpyHtoD_v2, a + 100, h.data(), 4));
  Out("mem.memset32_misaligned", C(cuMemsetD32_v2, a + 2, 0, 1));
  Out("mem.free_interior", C(cuMemFree_v2, a + 8));
  Out("mem.free_zero", C(cuMemFree_v2, 0));
  Out("mem.alloc_zero", C(cuMemAlloc_v2, &base, 0));
  Out("mem.alloc_huge", C(cuMemAlloc_v2, &base, size_t{1} << 50));
  C(cuMemFree_v2, b);
  Out("mem.double_free", C(cuMemFree_v2, b));
  size_t free0 = 0, free1 = 0, total = 0;
  C(cuMemGetInfo_v2, &free0, &total);
  CUdeviceptr big = 0;
  C(cuMemAlloc_v2, &big, 5 << 20);
  C(cuMemGetInfo_v2, &free1, &total);
  Out("mem.info_delta_5MiB", static_cast<long long>(free0) - static_cast<long long>(free1));
  C(cuMemGetAddressRange_v2, &base, &size, big);
  Out("mem.range_size_of_5MiB", size);
  Out("mem.big_align_2MiB", big % (2 << 20) == 0);
  CUdeviceptr p = 0;
  size_t pitch = 0;
  C(cuMemAllocPitch_v2, &p, &pitch, 100, 10, 4);
  Out("mem.pitch_100", pitch);
  C(cuMemAllocPitch_v2, &p, &pitch, 2000, 3, 16);
  Out("mem.pitch_2000", pitch);
  Out("mem.pitch_elem3", C(cuMemAllocPitch_v2, &p, &pitch, 100, 10, 3));
  CUDA_MEMCPY2D c = {};
  c.srcMemoryType = CU_MEMORYTYPE_HOST;
  c.srcHost = h.data();
  c.srcPitch = 10;
  c.dstMemoryType = CU_MEMORYTYPE_DEVICE;
  c.dstDevice = p;
  c.dstPitch = pitch;
  c.WidthInBytes = 20;
  c.Height = 2;
  Out("mem.copy2d_pitch_lt_width", C(cuMemcpy2D_v2, &c));
  c.srcPitch = 20;
  c.Height = 1000;
  Out("mem.copy2d_past_end", C(cuMemcpy2D_v2, &c));
  c.Height = 1;
  c.srcPitch = 0;
  Out("mem.copy2d_one_row_pitch0", C(cuMemcpy2D_v2, &c));
  C(cuMemFree_v2, a);
  C(cuMemFree_v2, big);
}

void StreamsEvents() {
  CUstream s = nullptr;
  Out("stream.create_flags4", C(cuStreamCreate, &s, 4));
  C(cuStreamCreateWithPriority, &s, 0, -100);
  int prio = 0;
  C(cuStreamGetPriority, s, &prio);
  Out("stream.clamped_priority", prio);
  Out("stream.destroy_null", C(cuStreamDestroy_v2, nullptr));
  CUevent a, b, q;
  C(cuEventCreate, &a, 0);
  C(cuEventCreate, &b, 0);
  C(cuEventCreate, &q, CU_EVENT_DISABLE_TIMING);
  float ms = 0;
  Out("event.query_unrecorded", C(cuEventQuery, a));
  Out("event.elapsed_unrecorded", C(cuEventElapsedTime_v2, &ms, a, b));
  C(cuEventRecord, a, s);
  C(cuEventRecord, b, s);
  C(cuEventRecord, q, s);
  C(cuStreamSynchronize, s);
  Out("event.elapsed_ok", C(cuEventElapsedTime_v2, &ms, a, b));
  Out("event.elapsed_disabled", C(cuEventElapsedTime_v2, &ms, a, q));
  Out("event.elapsed_null", C(cuEventElapsedTime_v2, nullptr, a, b));
  CUevent x;
  Out("event.interprocess_without_disable", C(cuEventCreate, &x, CU_EVENT_INTERPROCESS));
  Out("stream.wait_flags2", C(cuStreamWaitEvent, s, a, 2));
  // Capture.
  CUdeviceptr p = 0;
  C(cuMemAlloc_v2, &p, 64);
  CUstream cs;
  C(cuStreamCreate, &cs, 0);
  Out("capture.begin_legacy", C(cuStreamBeginCapture_v2, nullptr, CU_STREAM_CAPTURE_MODE_GLOBAL));
  Out("capture.begin", C(cuStreamBeginCapture_v2, cs, CU_STREAM_CAPTURE_MODE_GLOBAL));
  Out("capture.begin_again", C(cuStreamBeginCapture_v2, cs, CU_STREAM_CAPTURE_MODE_GLOBAL));
  Out("capture.memset_async", C(cuMemsetD8Async, p, 1, 64, cs));
  Out("capture.legacy_memset", C(cuMemsetD8Async, p, 1, 64, nullptr));
  CUgraph g = nullptr;
  Out("capture.end_after_legacy", C(cuStreamEndCapture, cs, &g));
  C(cuStreamBeginCapture_v2, cs, CU_STREAM_CAPTURE_MODE_GLOBAL);
  CUdeviceptr q2;
  Out("capture.alloc_during", C(cuMemAlloc_v2, &q2, 64));
  Out("capture.end_after_alloc", C(cuStreamEndCapture, cs, &g));
  C(cuStreamBeginCapture_v2, cs, CU_STREAM_CAPTURE_MODE_GLOBAL);
  Out("capture.query_during", C(cuStreamQuery, cs));
  Out("capture.end_after_query", C(cuStreamEndCapture, cs, &g));
  Out("capture.end_not_capturing", C(cuStreamEndCapture, cs, &g));
  C(cuMemFree_v2, p);
}

const char* const kKernels[] = {"add", "_Z5saxpyfPKfPfi6Triplecd", "_Z4fillIiEvPT_S0_m",
                                "_Z8noparamsv", "_Z7boundedPfi", "_Z9clusteredPf",
                                "_Z8bigparam3BigPi"};

void Modules() {
  std::vector<char> fatbin = Read("sample.fatbin");
  CUmodule m;
  Out("module.load_fatbin", C(cuModuleLoadData, &m, fatbin.data()));
  for (const char* k : kKernels) {
    std::string pre = std::string("func.") + k;
    CUfunction f;
    if (C(cuModuleGetFunction, &f, m, k) != CUDA_SUCCESS) {
      OutS(pre, "missing");
      continue;
    }
    std::string layout;
    size_t i = 0;
    for (;; ++i) {
      size_t off = 0, size = 0;
      if (C(cuFuncGetParamInfo, f, i, &off, &size) != CUDA_SUCCESS) break;
      layout += std::to_string(off) + ":" + std::to_string(size) + " ";
    }
    OutS(pre + ".params", layout);
    for (int a = 0; a < CU_FUNC_ATTRIBUTE_MAX; ++a) {
      int v = 0;
      CUresult r = C(cuFuncGetAttribute, &v, static_cast<CUfunction_attribute>(a), f);
      Out(pre + ".attr" + std::to_string(a), r == CUDA_SUCCESS ? v : -1000 - r);
    }
    for (int bs : {32, 128, 256, 512, 1024}) {
      for (size_t smem : {size_t{0}, size_t{48 * 1024}}) {
        int n = -1;
        CUresult r = C(cuOccupancyMaxActiveBlocksPerMultiprocessor, &n, f, bs, smem);
        Out(pre + ".occ_" + std::to_string(bs) + "_" + std::to_string(smem), r ? -1000 - r : n);
      }
    }
    for (auto [blocks, bs] : {std::pair{1, 256}, {2, 256}, {8, 128}, {40, 64}}) {
      size_t avail = 0;
      CUresult r = C(cuOccupancyAvailableDynamicSMemPerBlock, &avail, f, blocks, bs);
      Out(pre + ".avail_smem_" + std::to_string(blocks) + "_" + std::to_string(bs),
          r ? -1000 - r : static_cast<long long>(avail));
    }
  }
  CUfunction saxpy, bounded, clustered, add;
  C(cuModuleGetFunction, &saxpy, m, kKernels[1]);
  C(cuModuleGetFunction, &bounded, m, kKernels[4]);
  C(cuModuleGetFunction, &clustered, m, kKernels[5]);
  C(cuModuleGetFunction, &add, m, kKernels[0]);
  Out("func.set_dyn_200000", C(cuFuncSetAttribute, saxpy, CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES, 200000));
  Out("func.set_dyn_300000", C(cuFuncSetAttribute, saxpy, CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES, 300000));
  Out("func.set_numregs", C(cuFuncSetAttribute, saxpy, CU_FUNC_ATTRIBUTE_NUM_REGS, 3));
  Out("func.param_info_null_offset", C(cuFuncGetParamInfo, saxpy, 0, nullptr, nullptr));
  for (const char* gname : {"g_counter", "g_table", "c_coef"}) {
    CUdeviceptr g;
    size_t bytes = 0;
    CUresult r = C(cuModuleGetGlobal_v2, &g, &bytes, m, gname);
    Out(std::string("global.") + gname, r ? -1000 - r : static_cast<long long>(bytes));
  }
  CUdeviceptr table;
  C(cuModuleGetGlobal_v2, &table, nullptr, m, "g_table");
  float f[4] = {};
  C(cuMemcpyDtoH_v2, f, table, sizeof f);
  Out("global.g_table_init", static_cast<long long>(f[0] * 100 + f[1] * 10 + f[2]));
  Out("global.free", C(cuMemFree_v2, table));
  // Launch validation (nothing here reaches the GPU).
  CUdeviceptr buf;
  C(cuMemAlloc_v2, &buf, 1 << 20);
  int n = 0;
  void* ap[] = {&buf, &buf, &buf, &n};
  Out("launch.grid0", C(cuLaunchKernel, add, 0, 1, 1, 32, 1, 1, 0, nullptr, ap, nullptr));
  Out("launch.block2048", C(cuLaunchKernel, add, 1, 1, 1, 2048, 1, 1, 0, nullptr, ap, nullptr));
  Out("launch.blockz65", C(cuLaunchKernel, add, 1, 1, 1, 16, 1, 65, 0, nullptr, ap, nullptr));
  Out("launch.smem49153", C(cuLaunchKernel, add, 1, 1, 1, 32, 1, 1, 49153, nullptr, ap, nullptr));
  Out("launch.params_null", C(cuLaunchKernel, add, 1, 1, 1, 32, 1, 1, 0, nullptr, nullptr, nullptr));
  void* bp[] = {&buf, &n};
  Out("launch.bounded512", C(cuLaunchKernel, bounded, 1, 1, 1, 512, 1, 1, 0, nullptr, bp, nullptr));
  Out("launch.ok", C(cuLaunchKernel, add, 4, 1, 1, 256, 1, 1, 0, nullptr, ap, nullptr));
  CUlaunchConfig cfg = {};
  cfg.gridDimX = 3;
  cfg.gridDimY = cfg.gridDimZ = 1;
  cfg.blockDimX = 32;
  cfg.blockDimY = cfg.blockDimZ = 1;
  void* cp[] = {&buf};
  Out("launch.cluster_grid3", C(cuLaunchKernelEx, &cfg, clustered, cp, nullptr));
  CUlaunchAttribute attr = {};
  attr.id = CU_LAUNCH_ATTRIBUTE_COOPERATIVE;
  attr.value.cooperative = 1;
  cfg.attrs = &attr;
  cfg.numAttrs = 1;
  cfg.blockDimX = 1024;
  int per_sm = 0, sms = 0;
  C(cuOccupancyMaxActiveBlocksPerMultiprocessor, &per_sm, add, 1024, 0);
  C(cuDeviceGetAttribute, &sms, CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT, 0);
  cfg.gridDimX = per_sm * sms + 1;
  Out("launch.coop_too_large", C(cuLaunchKernelEx, &cfg, add, ap, nullptr));
  cfg.gridDimX = per_sm * sms;
  Out("launch.coop_fits", C(cuLaunchKernelEx, &cfg, add, ap, nullptr));
  attr.id = static_cast<CUlaunchAttributeID>(999);
  Out("launch.attr999", C(cuLaunchKernelEx, &cfg, add, ap, nullptr));
  Out("launch.sync", C(cuCtxSynchronize, ));
  // Cluster occupancy.
  for (int bs : {128, 256, 1024}) {
    for (unsigned cs : {0u, 1u, 2u, 4u, 8u, 16u}) {
      CUlaunchAttribute ca = {};
      ca.id = CU_LAUNCH_ATTRIBUTE_CLUSTER_DIMENSION;
      ca.value.clusterDim.x = cs;
      ca.value.clusterDim.y = ca.value.clusterDim.z = 1;
      CUlaunchConfig cc = {};
      cc.gridDimX = 16;
      cc.gridDimY = cc.gridDimZ = 1;
      cc.blockDimX = bs;
      cc.blockDimY = cc.blockDimZ = 1;
      cc.attrs = &ca;
      cc.numAttrs = cs ? 1 : 0;
      for (auto [name, fn] : {std::pair{"add", add}, {"clustered", clustered}}) {
        int v = -1;
        std::string key = std::string("cluster.") + name + "_" + std::to_string(bs) + "_" + std::to_string(cs);
        CUresult r = C(cuOccupancyMaxActiveClusters, &v, fn, &cc);
        Out(key + ".active", r ? -1000 - r : v);
        r = C(cuOccupancyMaxPotentialClusterSize, &v, fn, &cc);
        Out(key + ".potential", r ? -1000 - r : v);
      }
    }
  }
  C(cuFuncSetAttribute, add, CU_FUNC_ATTRIBUTE_NON_PORTABLE_CLUSTER_SIZE_ALLOWED, 1);
  {
    CUlaunchAttribute ca = {};
    ca.id = CU_LAUNCH_ATTRIBUTE_CLUSTER_DIMENSION;
    ca.value.clusterDim.x = 16;
    ca.value.clusterDim.y = ca.value.clusterDim.z = 1;
    CUlaunchConfig cc = {};
    cc.gridDimX = 16;
    cc.gridDimY = cc.gridDimZ = 1;
    cc.blockDimX = 256;
    cc.blockDimY = cc.blockDimZ = 1;
    cc.attrs = &ca;
    cc.numAttrs = 1;
    int v = -1;
    CUresult r = C(cuOccupancyMaxActiveClusters, &v, add, &cc);
    Out("cluster.nonportable16.active", r ? -1000 - r : v);
    r = C(cuOccupancyMaxPotentialClusterSize, &v, add, &cc);
    Out("cluster.nonportable16.potential", r ? -1000 - r : v);
    cc.sharedMemBytes = 40000;
    r = C(cuOccupancyMaxActiveClusters, &v, add, &cc);
    Out("cluster.nonportable16_smem40000.active", r ? -1000 - r : v);
  }
  // Images the device cannot run.
  std::vector<char> sm75 = Read("sample_sm75.cubin");
  Out("module.load_sm75", C(cuModuleLoadData, &m, sm75.data()));
  const char junk[] = "\x01\x02\x03\x04garbage";
  Out("module.load_junk", C(cuModuleLoadData, &m, junk));
  CUfunction none;
  Out("module.get_missing", C(cuModuleGetFunction, &none, m, "nope"));
}

void Errors() {
  for (int code : {0, 1, 2, 3, 4, 100, 101, 200, 201, 209, 215, 218, 400, 401, 500, 600, 700,
                   701, 709, 719, 720, 801, 900, 901, 903, 906, 907, 912, 999}) {
    const char* s = nullptr;
    C(cuGetErrorString, static_cast<CUresult>(code), &s);
    OutS("error." + std::to_string(code), s ? s : "(null)");
  }
  const char* s = reinterpret_cast<const char*>(1);
  Out("error.unknown_name", C(cuGetErrorName, static_cast<CUresult>(12345), &s));
  Out("error.unknown_name_null", s == nullptr);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: %s sim|cuda <image testdata dir> [profile]\n", argv[0]);
    return 2;
  }
  rgpu::backend::BackendOptions o;
  o.kind = argv[1];
  g_dir = argv[2];
  if (argc > 3) o.profile_path = argv[3];
  rgpu::Status st = rgpu::backend::LoadBackend(o, &t);
  if (!st.ok()) {
    fprintf(stderr, "%s\n", st.ToString().c_str());
    return 1;
  }
  setvbuf(stdout, nullptr, _IOLBF, 0);
  for (int i = 0; i < rgpu::backend::DriverTableSize(); ++i) {
    if (rgpu::backend::DriverTableEntry(t, i) == nullptr) {
      printf("missing.%s = 1\n", rgpu::backend::DriverTableName(i));
    }
  }
  if (C(cuInit, 0) != CUDA_SUCCESS) return 1;
  CUcontext primary;
  C(cuDevicePrimaryCtxRetain, &primary, 0);
  C(cuCtxSetCurrent, primary);
  Device();
  Contexts(primary);
  Memory();
  StreamsEvents();
  Modules();
  Errors();
  return 0;
}
