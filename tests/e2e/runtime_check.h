// CHECK and EXPECT for the runtime-API test programs: any failure prints
// "<program>: ..." to stderr and exits 1. Define E2E_PROGRAM (a string)
// before including.
#pragma once

#include <cstdio>
#include <cstdlib>

#define CHECK(call)                                                                   \
  do {                                                                                \
    cudaError_t err_ = (call);                                                        \
    if (err_ != cudaSuccess) {                                                        \
      fprintf(stderr, E2E_PROGRAM ": %s:%d: %s failed: %s (%d)\n", __FILE__, __LINE__, \
              #call, cudaGetErrorString(err_), static_cast<int>(err_));               \
      exit(1);                                                                        \
    }                                                                                 \
  } while (0)

#define EXPECT(cond, ...)                                   \
  do {                                                      \
    if (!(cond)) {                                          \
      fprintf(stderr, E2E_PROGRAM ": FAILED: " __VA_ARGS__); \
      fprintf(stderr, "\n");                                \
      exit(1);                                              \
    }                                                       \
  } while (0)

// EXPECT that counts instead of exiting: the program goes on and ends with
// exit status 1 when g_failures is not zero.
inline int g_failures = 0;
#define SOFT_EXPECT(cond, ...)                                 \
  do {                                                         \
    if (!(cond)) {                                             \
      fprintf(stderr, E2E_PROGRAM ": FAILED: " __VA_ARGS__);   \
      fprintf(stderr, "\n");                                   \
      ++g_failures;                                            \
    }                                                          \
  } while (0)
