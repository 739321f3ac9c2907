// Test fixture for the sim backend: loads it from the repository's H200
// profile, calls cuInit and makes device 0's primary context current.
// Tests call the sim through the DriverTable, as the worker does.
#pragma once

#include <gtest/gtest.h>

#include "backend/driver_table.h"
#include "backend/sim/sim_backend.h"

namespace rgpu::backend {

#define ASSERT_CU(expr) ASSERT_EQ((expr), CUDA_SUCCESS) << #expr
#define EXPECT_CU(expr) EXPECT_EQ((expr), CUDA_SUCCESS) << #expr

class SimTest : public ::testing::Test {
 protected:
  virtual int gpus() const { return 1; }
  void SetUp() override {
    BackendOptions o;
    o.kind = "sim";
    o.profile_path = RGPU_SIM_PROFILE;
    o.sim_gpus = gpus();
    Status s = LoadSimBackend(o, &t);
    ASSERT_TRUE(s.ok()) << s.ToString();
    ASSERT_CU(t.cuInit(0));
    ASSERT_CU(t.cuDevicePrimaryCtxRetain(&ctx, 0));
    ASSERT_CU(t.cuCtxSetCurrent(ctx));
  }
  DriverTable t;
  CUcontext ctx = nullptr;
};

}  // namespace rgpu::backend
