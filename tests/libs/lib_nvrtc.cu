// Run-time compilation through rgpu: NVRTC compiles a kernel to PTX (loaded
// with cuModuleLoadDataEx and JIT options) and to a cubin for the device's
// own architecture (asked from the device), and the driver's linker
// (cuLinkCreate / cuLinkAddData / cuLinkComplete) links the PTX; each module
// runs the kernel and the results are checked.
#include <cuda.h>
#include <nvrtc.h>

#include <cstdio>
#include <string>
#include <vector>

#include "../programs/check.h"

#define CK_RTC(x) CK_STATUS(x, NVRTC_SUCCESS)

const char* kSource = R"(
template <typename T> __device__ T square(T v) { return v * v; }
extern "C" __global__ void squares(float* out, int n, float scale) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) out[i] = square(static_cast<float>(i)) * scale;
}
)";

std::vector<char> Compile(const std::string& arch, bool cubin) {
  nvrtcProgram p;
  CK_RTC(nvrtcCreateProgram(&p, kSource, "squares.cu", 0, nullptr, nullptr));
  std::string opt = "--gpu-architecture=" + arch;
  const char* opts[] = {opt.c_str(), "-default-device"};
  nvrtcResult r = nvrtcCompileProgram(p, 2, opts);
  if (r != NVRTC_SUCCESS) {
    size_t n;
    nvrtcGetProgramLogSize(p, &n);
    std::string log(n, '\0');
    nvrtcGetProgramLog(p, log.data());
    printf("FAIL compile: %s\n", log.c_str());
    exit(1);
  }
  size_t n;
  std::vector<char> out;
  if (cubin) {
    CK_RTC(nvrtcGetCUBINSize(p, &n));
    out.resize(n);
    CK_RTC(nvrtcGetCUBIN(p, out.data()));
  } else {
    CK_RTC(nvrtcGetPTXSize(p, &n));
    out.resize(n);
    CK_RTC(nvrtcGetPTX(p, out.data()));
  }
  CK_RTC(nvrtcDestroyProgram(&p));
  return out;
}

void Run(const char* label, CUmodule m) {
  CUfunction f;
  CK(cuModuleGetFunction(&f, m, "squares"));
  const int n = 1000;
  CUdeviceptr d;
  CK(cuMemAlloc(&d, n * sizeof(float)));
  int nn = n;
  float scale = 0.5f;
  void* args[] = {&d, &nn, &scale};
  CK(cuLaunchKernel(f, (n + 127) / 128, 1, 1, 128, 1, 1, 0, nullptr, args, nullptr));
  std::vector<float> h(n);
  CK(cuMemcpyDtoH(h.data(), d, n * sizeof(float)));
  bool ok = true;
  for (int i = 0; i < n; ++i) ok &= h[i] == static_cast<float>(i) * static_cast<float>(i) * 0.5f;
  printf("%s: %s\n", label, ok ? "correct" : "WRONG");
  CK(cuMemFree(d));
}

int main() {
  CUdevice dev;
  CUcontext ctx = UsePrimaryContext(&dev);
  int major, minor;
  CK(cuDeviceGetAttribute(&major, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR, dev));
  CK(cuDeviceGetAttribute(&minor, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR, dev));
  std::string sm = "sm_" + std::to_string(major * 10 + minor);
  std::string compute = "compute_" + std::to_string(major * 10 + minor);

  std::vector<char> ptx = Compile(compute, false);
  CUmodule m1;
  char log[4096] = {0};
  CUjit_option opts[] = {CU_JIT_INFO_LOG_BUFFER, CU_JIT_INFO_LOG_BUFFER_SIZE_BYTES,
                         CU_JIT_OPTIMIZATION_LEVEL};
  void* vals[] = {log, reinterpret_cast<void*>(sizeof log), reinterpret_cast<void*>(3)};
  CK(cuModuleLoadDataEx(&m1, ptx.data(), 3, opts, vals));
  Run("ptx via cuModuleLoadDataEx", m1);

  std::vector<char> cubin = Compile(sm, true);
  CUmodule m2;
  CK(cuModuleLoadData(&m2, cubin.data()));
  Run("cubin via cuModuleLoadData", m2);

  CUlinkState link;
  CK(cuLinkCreate(0, nullptr, nullptr, &link));
  CK(cuLinkAddData(link, CU_JIT_INPUT_PTX, ptx.data(), ptx.size(), "squares.ptx", 0, nullptr,
                   nullptr));
  void* linked;
  size_t linked_size;
  CK(cuLinkComplete(link, &linked, &linked_size));
  CUmodule m3;
  CK(cuModuleLoadData(&m3, linked));
  CK(cuLinkDestroy(link));
  Run("ptx linked with cuLinkComplete", m3);

  CK(cuModuleUnload(m1));
  CK(cuModuleUnload(m2));
  CK(cuModuleUnload(m3));
  CK(cuDevicePrimaryCtxRelease(dev));
  printf("nvrtc ok\n");
  return 0;
}
