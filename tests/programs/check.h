// The failure check shared by the test programs of this folder: a call that
// fails prints "FAIL file:line call: error name" on stdout and main()
// returns 1. CK is for driver-API calls (CUresult), CK_RT for runtime calls.
#pragma once

#include <cuda.h>
#include <cuda_runtime.h>

#include <cstdio>

#define CK(x)                                                               \
  do {                                                                      \
    CUresult r_ = (x);                                                      \
    if (r_ != CUDA_SUCCESS) {                                               \
      const char* n_ = nullptr;                                             \
      cuGetErrorName(r_, &n_);                                              \
      printf("FAIL %s:%d %s: %s\n", __FILE__, __LINE__, #x, n_ ? n_ : "?"); \
      return 1;                                                             \
    }                                                                       \
  } while (0)

#define CK_RT(x)                                                                       \
  do {                                                                                 \
    cudaError_t e_ = (x);                                                              \
    if (e_ != cudaSuccess) {                                                           \
      printf("FAIL %s:%d %s: %s\n", __FILE__, __LINE__, #x, cudaGetErrorName(e_));     \
      return 1;                                                                        \
    }                                                                                  \
  } while (0)
