// Tests for the sim's "compat" functions (sim_api_compat.cc), through the
// DriverTable as the worker calls them: stream memory operations (values
// written, wait conditions as cuda.h defines them, captured replays),
// cuCtxRecordEvent / cuCtxWaitEvent, cuFuncSetSharedMemConfig's checks,
// cuDeviceGetTexture1DLinearMaxWidth and cuStreamUpdateCaptureDependencies.
#include <cstring>

#include "backend/sim/sim_test_util.h"

namespace rgpu::backend {
namespace {

class SimCompat : public SimTest {
 protected:
  void SetUp() override {
    SimTest::SetUp();
    ASSERT_CU(t.cuMemAlloc_v2(&buf, 4096));
    ASSERT_CU(t.cuMemsetD8_v2(buf, 0, 4096));
  }
  uint32_t Read32(CUdeviceptr p) {
    uint32_t v = 0;
    EXPECT_CU(t.cuMemcpyDtoH_v2(&v, p, 4));
    return v;
  }
  CUdeviceptr buf = 0;
};

TEST_F(SimCompat, WriteValuesLandAndWaitsCheckTheirCondition) {
  ASSERT_CU(t.cuStreamWriteValue32_v2(nullptr, buf, 0xfffffff0u, 0));
  ASSERT_CU(t.cuStreamWriteValue64_v2(nullptr, buf + 8, 0x0102030405060708ull, 0));
  EXPECT_EQ(Read32(buf), 0xfffffff0u);
  uint64_t v64 = 0;
  ASSERT_CU(t.cuMemcpyDtoH_v2(&v64, buf + 8, 8));
  EXPECT_EQ(v64, 0x0102030405060708ull);
  // GEQ is cyclic: 0xfffffff0 - 0x10 wraps, so 0x10 is "before" it...
  EXPECT_CU(t.cuStreamWaitValue32_v2(nullptr, buf, 0xffffffe0u, CU_STREAM_WAIT_VALUE_GEQ));
  // ...and 0x10 counts as after it: not satisfied (the sim cannot wait).
  EXPECT_EQ(t.cuStreamWaitValue32_v2(nullptr, buf, 0x10, CU_STREAM_WAIT_VALUE_GEQ), CUDA_ERROR_NOT_SUPPORTED);
  EXPECT_CU(t.cuStreamWaitValue32_v2(nullptr, buf, 0xfffffff0u, CU_STREAM_WAIT_VALUE_EQ | CU_STREAM_WAIT_VALUE_FLUSH));
  EXPECT_CU(t.cuStreamWaitValue32_v2(nullptr, buf, 0x10, CU_STREAM_WAIT_VALUE_AND));
  EXPECT_EQ(t.cuStreamWaitValue32_v2(nullptr, buf, 0x0f, CU_STREAM_WAIT_VALUE_AND), CUDA_ERROR_NOT_SUPPORTED);
  EXPECT_CU(t.cuStreamWaitValue32_v2(nullptr, buf, 0x0e, CU_STREAM_WAIT_VALUE_NOR));  // bit 0 of neither
  EXPECT_EQ(t.cuStreamWaitValue32_v2(nullptr, buf, 0x0f, CU_STREAM_WAIT_VALUE_NOR), CUDA_ERROR_NOT_SUPPORTED);
  EXPECT_CU(t.cuStreamWaitValue64_v2(nullptr, buf + 8, 0x0102030405060708ull, CU_STREAM_WAIT_VALUE_EQ));
  // Argument checks.
  EXPECT_EQ(t.cuStreamWriteValue32_v2(nullptr, buf + 2, 1, 0), CUDA_ERROR_INVALID_VALUE);
  EXPECT_EQ(t.cuStreamWriteValue64_v2(nullptr, buf + 4, 1, 0), CUDA_ERROR_INVALID_VALUE);
  EXPECT_EQ(t.cuStreamWriteValue32_v2(nullptr, buf, 1, 2), CUDA_ERROR_INVALID_VALUE);
  EXPECT_EQ(t.cuStreamWaitValue32_v2(nullptr, buf, 1, 4), CUDA_ERROR_INVALID_VALUE);
  EXPECT_EQ(t.cuStreamWriteValue32_v2(nullptr, buf + 4096, 1, 0), CUDA_ERROR_INVALID_VALUE);
}

TEST_F(SimCompat, BatchesRunInOrderAndCapturesReplay) {
  CUstreamBatchMemOpParams ops[3];
  memset(ops, 0, sizeof ops);
  ops[0].writeValue.operation = CU_STREAM_MEM_OP_WRITE_VALUE_32;
  ops[0].writeValue.address = buf;
  ops[0].writeValue.value = 5;
  ops[1].waitValue.operation = CU_STREAM_MEM_OP_WAIT_VALUE_32;
  ops[1].waitValue.address = buf;
  ops[1].waitValue.value = 5;
  ops[1].waitValue.flags = CU_STREAM_WAIT_VALUE_EQ;
  ops[2].memoryBarrier.operation = CU_STREAM_MEM_OP_BARRIER;
  EXPECT_CU(t.cuStreamBatchMemOp_v2(nullptr, 3, ops, 0));
  EXPECT_EQ(Read32(buf), 5u);
  EXPECT_EQ(t.cuStreamBatchMemOp_v2(nullptr, 3, ops, 1), CUDA_ERROR_INVALID_VALUE);
  EXPECT_EQ(t.cuStreamBatchMemOp_v2(nullptr, 0, ops, 0), CUDA_ERROR_INVALID_VALUE);

  CUstream s = nullptr;
  ASSERT_CU(t.cuStreamCreate(&s, CU_STREAM_NON_BLOCKING));
  ASSERT_CU(t.cuStreamBeginCapture_v2(s, CU_STREAM_CAPTURE_MODE_RELAXED));
  EXPECT_CU(t.cuStreamUpdateCaptureDependencies_v2(s, nullptr, nullptr, 0, CU_STREAM_SET_CAPTURE_DEPENDENCIES));
  ASSERT_CU(t.cuStreamWriteValue32_v2(s, buf + 16, 9, 0));
  EXPECT_EQ(Read32(buf + 16), 0u);  // recorded, not run
  CUevent e = nullptr;
  ASSERT_CU(t.cuEventCreate(&e, 0));
  EXPECT_EQ(t.cuCtxRecordEvent(ctx, e), CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED);
  CUgraph g = nullptr;
  ASSERT_CU(t.cuStreamEndCapture(s, &g));
  EXPECT_EQ(t.cuStreamUpdateCaptureDependencies_v2(s, nullptr, nullptr, 0, CU_STREAM_SET_CAPTURE_DEPENDENCIES),
            CUDA_ERROR_ILLEGAL_STATE);
  CUgraphExec x = nullptr;
  ASSERT_CU(t.cuGraphInstantiateWithFlags(&x, g, 0));
  ASSERT_CU(t.cuGraphLaunch(x, s));
  EXPECT_EQ(Read32(buf + 16), 9u);
  EXPECT_CU(t.cuGraphExecDestroy(x));
  EXPECT_CU(t.cuGraphDestroy(g));
  EXPECT_CU(t.cuEventDestroy_v2(e));
  EXPECT_CU(t.cuStreamDestroy_v2(s));
}

TEST_F(SimCompat, ContextEventsSharedMemConfigAndTextureWidth) {
  CUevent a = nullptr, b = nullptr;
  ASSERT_CU(t.cuEventCreate(&a, 0));
  ASSERT_CU(t.cuEventCreate(&b, 0));
  EXPECT_CU(t.cuEventRecord(a, nullptr));
  float ms = 0;
  EXPECT_EQ(t.cuEventElapsedTime_v2(&ms, a, b), CUDA_ERROR_INVALID_HANDLE);  // b never recorded
  EXPECT_CU(t.cuCtxRecordEvent(ctx, b));
  EXPECT_CU(t.cuEventElapsedTime_v2(&ms, a, b));
  EXPECT_CU(t.cuCtxWaitEvent(ctx, a));
  EXPECT_EQ(t.cuCtxRecordEvent(ctx, reinterpret_cast<CUevent>(0x12340)), CUDA_ERROR_INVALID_HANDLE);
  EXPECT_EQ(t.cuCtxWaitEvent(reinterpret_cast<CUcontext>(0x12340), a), CUDA_ERROR_INVALID_CONTEXT);

  EXPECT_EQ(t.cuFuncSetSharedMemConfig(reinterpret_cast<CUfunction>(0x12340), CU_SHARED_MEM_CONFIG_DEFAULT_BANK_SIZE),
            CUDA_ERROR_INVALID_HANDLE);
  EXPECT_EQ(t.cuFuncSetSharedMemConfig(nullptr, static_cast<CUsharedconfig>(3)), CUDA_ERROR_INVALID_VALUE);

  size_t w = 0;
  EXPECT_CU(t.cuDeviceGetTexture1DLinearMaxWidth(&w, CU_AD_FORMAT_HALF, 2, 0));
  int attr = 0;
  EXPECT_CU(t.cuDeviceGetAttribute(&attr, CU_DEVICE_ATTRIBUTE_MAXIMUM_TEXTURE1D_LINEAR_WIDTH, 0));
  EXPECT_EQ(w, static_cast<size_t>(attr));
  EXPECT_EQ(t.cuDeviceGetTexture1DLinearMaxWidth(&w, CU_AD_FORMAT_HALF, 3, 0), CUDA_ERROR_INVALID_VALUE);
  EXPECT_EQ(t.cuDeviceGetTexture1DLinearMaxWidth(&w, static_cast<CUarray_format>(0x77), 1, 0),
            CUDA_ERROR_INVALID_VALUE);
  EXPECT_EQ(t.cuDeviceGetTexture1DLinearMaxWidth(&w, CU_AD_FORMAT_HALF, 1, 7), CUDA_ERROR_INVALID_DEVICE);
}

}  // namespace
}  // namespace rgpu::backend
