// The failure checks shared by the test programs of this folder: a call that
// fails prints "FAIL file:line call: error name" on stdout and the program
// exits with status 1 (from any function). CK is for driver-API calls
// (CUresult), CK_RT for runtime calls, EXPECT_CU for a driver call that must
// return a given CUresult, EXPECT for any condition.
#pragma once

#include <cuda.h>
#include <cuda_runtime.h>

#include <cstdio>
#include <cstdlib>

#define CK(x)                                                               \
  do {                                                                      \
    CUresult r_ = (x);                                                      \
    if (r_ != CUDA_SUCCESS) {                                               \
      const char* n_ = nullptr;                                             \
      cuGetErrorName(r_, &n_);                                              \
      printf("FAIL %s:%d %s: %s\n", __FILE__, __LINE__, #x, n_ ? n_ : "?"); \
      exit(1);                                                              \
    }                                                                       \
  } while (0)

#define CK_RT(x)                                                                       \
  do {                                                                                 \
    cudaError_t e_ = (x);                                                              \
    if (e_ != cudaSuccess) {                                                           \
      printf("FAIL %s:%d %s: %s\n", __FILE__, __LINE__, #x, cudaGetErrorName(e_));     \
      exit(1);                                                                         \
    }                                                                                  \
  } while (0)

#define EXPECT_CU(want, x)                                                                 \
  do {                                                                                     \
    CUresult r_ = (x);                                                                     \
    if (r_ != (want)) {                                                                    \
      printf("FAIL %s:%d %s -> %d, want %d\n", __FILE__, __LINE__, #x, static_cast<int>(r_), \
             static_cast<int>(want));                                                      \
      exit(1);                                                                             \
    }                                                                                      \
  } while (0)

#define EXPECT(cond)                                               \
  do {                                                             \
    if (!(cond)) {                                                 \
      printf("FAIL %s:%d %s\n", __FILE__, __LINE__, #cond);        \
      exit(1);                                                     \
    }                                                              \
  } while (0)

// For the CUDA libraries' calls (cuFFT, cuRAND, ...): the status must equal
// `ok` (each library's own success value).
#define CK_STATUS(x, ok)                                                                  \
  do {                                                                                    \
    auto r_ = (x);                                                                        \
    if (r_ != (ok)) {                                                                     \
      printf("FAIL %s:%d %s: status %d\n", __FILE__, __LINE__, #x, static_cast<int>(r_)); \
      exit(1);                                                                            \
    }                                                                                     \
  } while (0)

// cuInit, then device 0's primary context made current; returns the context.
inline CUcontext UsePrimaryContext(CUdevice* dev) {
  CK(cuInit(0));
  CK(cuDeviceGet(dev, 0));
  CUcontext ctx = nullptr;
  CK(cuDevicePrimaryCtxRetain(&ctx, *dev));
  CK(cuCtxSetCurrent(ctx));
  return ctx;
}
