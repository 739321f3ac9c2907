// Requests that decode but carry values a driver call must never see: enum
// fields out of range, device ranges outside the session's allocations. Each
// must get CUDA_ERROR_INVALID_VALUE (1) from the worker, as an answer or an
// async error, and the session must go on (a Ping still answers).
#include <unistd.h>

#include <cuda.h>
#include <gtest/gtest.h>

#include "tests/support/process.h"
#include "tests/support/raw_client.h"

namespace rgpu::testing {
namespace {

using proto::CallId;

class CallChecks : public ::testing::Test {
 protected:
  void SetUp() override {
    fd_ = DialLoopback(server_.port());
    ASSERT_GE(fd_, 0);
    proto::HelloReply r = Handshake(fd_, "");
    ASSERT_EQ(r.status, proto::HelloStatus::kAccepted) << r.message;
    ASSERT_EQ(Call(fd_, CallId::kPrimaryCtxRetain, proto::PrimaryCtxRetainReq{1, 0}, rid_++), 0);
    ASSERT_EQ(Call(fd_, CallId::kMemAlloc, proto::MemAllocReq{1, kSize}, rid_++, &alloc_), 0);
  }
  void TearDown() override {
    EXPECT_EQ(Call(fd_, CallId::kPing, proto::PingReq{}, rid_++), 0) << "the session did not survive";
    close(fd_);
    EXPECT_TRUE(server_.alive());
  }
  // An async request's failure comes back as an async-error frame.
  template <class Req>
  int PostAndCollect(CallId id, const Req& req) {
    if (!Send(fd_, id, req, rid_++, /*async=*/true)) return -1;
    proto::FrameHeader h;
    std::vector<uint8_t> rest;
    int cu = NextAnswer(fd_, &h, &rest);
    EXPECT_TRUE(h.flags & proto::kAsyncError);
    return cu;
  }

  static constexpr uint64_t kSize = 1 << 20;
  TestServer server_;
  int fd_ = -1;
  uint64_t rid_ = 1;
  proto::MemAllocRep alloc_;
};

TEST_F(CallChecks, ContextEnumsOutOfRange) {
  EXPECT_EQ(Call(fd_, CallId::kCtxSetLimit, proto::CtxSetLimitReq{1, 0x40, 1}, rid_++), CUDA_ERROR_INVALID_VALUE);
  EXPECT_EQ(Call(fd_, CallId::kCtxGetLimit, proto::CtxGetLimitReq{1, 0xffffffffu}, rid_++), CUDA_ERROR_INVALID_VALUE);
  EXPECT_EQ(PostAndCollect(CallId::kCtxSetCacheConfig, proto::CtxSetCacheConfigReq{1, 0x401}),
            CUDA_ERROR_INVALID_VALUE);
  EXPECT_EQ(Call(fd_, CallId::kFuncSetAttribute, proto::FuncSetAttributeReq{1, 5, 0x1000, 0}, rid_++),
            CUDA_ERROR_INVALID_VALUE);
}

TEST_F(CallChecks, VirtualMemoryEnumsOutOfRange) {
  // type, handle types, location type, location id, compression
  auto create = [&](uint32_t type, uint32_t loc_type, uint8_t compression) {
    return Call(fd_, CallId::kMemCreate,
                proto::MemCreateReq{1, 9, 2u << 20, type, 0, loc_type, 0, compression, 0, 0, 0}, rid_++);
  };
  EXPECT_EQ(create(0x80000000u, 1, 0), CUDA_ERROR_INVALID_VALUE);
  EXPECT_EQ(create(1, 77, 0), CUDA_ERROR_INVALID_VALUE);
  EXPECT_EQ(create(1, 1, 9), CUDA_ERROR_INVALID_VALUE);
  // Access descriptors: count, then (location type, id, flags) each.
  auto access = [&](uint32_t loc_type, uint32_t flags) {
    std::vector<uint8_t> descs;
    proto::Writer w(&descs);
    w.U32(1);
    w.U32(loc_type);
    w.I32(0);
    w.U32(flags);
    return Call(fd_, CallId::kMemSetAccess, proto::MemSetAccessReq{1, alloc_.dptr, kSize, descs}, rid_++);
  };
  EXPECT_EQ(access(1, 2), CUDA_ERROR_INVALID_VALUE);
  EXPECT_EQ(access(0x7fffffffu, 3), CUDA_ERROR_INVALID_VALUE);
}

TEST_F(CallChecks, CopiesAndMemsetsMustLieInsideTheSessionsAllocations) {
  // One byte past the end, a range that wraps around, memory never allocated.
  EXPECT_EQ(Call(fd_, CallId::kMemcpyDtoH, proto::MemcpyDtoHReq{1, 0, 0, alloc_.dptr + 1, kSize}, rid_++),
            CUDA_ERROR_INVALID_VALUE);
  EXPECT_EQ(Call(fd_, CallId::kMemcpyDtoH, proto::MemcpyDtoHReq{1, 0, 0, alloc_.dptr, ~uint64_t{0}}, rid_++),
            CUDA_ERROR_INVALID_VALUE);
  EXPECT_EQ(PostAndCollect(CallId::kMemcpyDtoD, proto::MemcpyDtoDReq{1, 0, 0, alloc_.dptr, 0x1000, 16}),
            CUDA_ERROR_INVALID_VALUE);
  EXPECT_EQ(PostAndCollect(CallId::kMemset, proto::MemsetReq{1, 0, 0, alloc_.dptr + kSize - 2, 0, 7, 4, 1, 1}),
            CUDA_ERROR_INVALID_VALUE);
  // 2D: rows that run past the end through the pitch.
  EXPECT_EQ(PostAndCollect(CallId::kMemset, proto::MemsetReq{1, 0, 0, alloc_.dptr, 4096, 7, 1, 64, 257}),
            CUDA_ERROR_INVALID_VALUE);
  // A memset element size that is no element size.
  EXPECT_EQ(PostAndCollect(CallId::kMemset, proto::MemsetReq{1, 0, 0, alloc_.dptr, 0, 7, 3, 1, 1}),
            CUDA_ERROR_INVALID_VALUE);
  // Inside is fine.
  EXPECT_EQ(Call(fd_, CallId::kMemcpyDtoH, proto::MemcpyDtoHReq{1, 0, 0, alloc_.dptr + kSize - 16, 16}, rid_++), 0);
}

TEST_F(CallChecks, ArraysAndTextureObjectsAreChecked) {
  // Bad channel count, unknown flags, a zero width; then a good 16 x 4 float array.
  EXPECT_EQ(PostAndCollect(CallId::kArrayCreate, proto::ArrayCreateReq{1, 0x9000, CU_AD_FORMAT_FLOAT, 3, 16, 4, 0, 0}),
            CUDA_ERROR_INVALID_VALUE);
  EXPECT_EQ(PostAndCollect(CallId::kArrayCreate, proto::ArrayCreateReq{1, 0x9000, CU_AD_FORMAT_FLOAT, 1, 16, 4, 0, 0x40}),
            CUDA_ERROR_NOT_SUPPORTED);
  EXPECT_EQ(PostAndCollect(CallId::kArrayCreate, proto::ArrayCreateReq{1, 0x9000, CU_AD_FORMAT_FLOAT, 1, 0, 4, 0, 0}),
            CUDA_ERROR_INVALID_VALUE);
  ASSERT_TRUE(Send(fd_, CallId::kArrayCreate, proto::ArrayCreateReq{1, 0x9000, CU_AD_FORMAT_FLOAT, 1, 16, 4, 0, 0},
                   rid_++, /*async=*/true));
  // A copy into it one row too far, from an array id never made, then a good one.
  proto::Memcpy3DReq c{};
  c.ctx = 1;
  c.src_type = CU_MEMORYTYPE_DEVICE;
  c.src_dev = alloc_.dptr;
  c.src_pitch = 64;
  c.dst_type = CU_MEMORYTYPE_ARRAY;
  c.dst_dev = 0x9000;
  c.dst_y = 1;
  c.width_bytes = 64;
  c.height = 4;
  c.depth = 1;
  EXPECT_EQ(Call(fd_, CallId::kMemcpy3D, c, rid_++), CUDA_ERROR_INVALID_VALUE);
  c.dst_y = 0;
  c.dst_dev = 0x9010;
  EXPECT_EQ(Call(fd_, CallId::kMemcpy3D, c, rid_++), CUDA_ERROR_INVALID_HANDLE);
  c.dst_dev = 0x9000;
  EXPECT_EQ(Call(fd_, CallId::kMemcpy3D, c, rid_++), 0);
  // Texture objects: pitched memory past the allocation is made (the driver
  // does not check a texture's memory against allocations); an address mode
  // out of range and a pitch smaller than a row are refused; then one over
  // the array, destroyed twice.
  proto::TexObjectCreateReq t{};
  t.ctx = 1;
  t.res_type = CU_RESOURCE_TYPE_PITCH2D;
  t.res_handle = alloc_.dptr;
  t.res_format = CU_AD_FORMAT_FLOAT;
  t.res_channels = 1;
  t.res_width = 64;
  t.res_height = 4097;
  t.res_pitch = 256;
  proto::TexObjectCreateRep rep;
  ASSERT_EQ(Call(fd_, CallId::kTexObjectCreate, t, rid_++, &rep), 0);
  EXPECT_EQ(Call(fd_, CallId::kTexObjectDestroy, proto::TexObjectDestroyReq{1, rep.tex}, rid_++), 0);
  t.res_pitch = 255;
  EXPECT_EQ(Call(fd_, CallId::kTexObjectCreate, t, rid_++), CUDA_ERROR_INVALID_VALUE);
  t.res_pitch = 256;
  t.res_height = 4;
  t.addr1 = 9;
  EXPECT_EQ(Call(fd_, CallId::kTexObjectCreate, t, rid_++), CUDA_ERROR_INVALID_VALUE);
  t.addr1 = 0;
  t.res_type = CU_RESOURCE_TYPE_ARRAY;
  t.res_handle = 0x9000;
  ASSERT_EQ(Call(fd_, CallId::kTexObjectCreate, t, rid_++, &rep), 0);
  EXPECT_EQ(PostAndCollect(CallId::kTexObjectDestroy, proto::TexObjectDestroyReq{1, rep.tex + 1}),
            CUDA_ERROR_INVALID_VALUE);
  // Surfaces only over arrays (of this session); the array's flags are the
  // driver's to judge (this one, made without load/store, is accepted as the
  // GPU's driver accepts it).
  EXPECT_EQ(Call(fd_, CallId::kSurfObjectCreate, proto::SurfObjectCreateReq{1, CU_RESOURCE_TYPE_LINEAR, alloc_.dptr, 0},
                 rid_++),
            CUDA_ERROR_INVALID_VALUE);
  EXPECT_EQ(Call(fd_, CallId::kSurfObjectCreate, proto::SurfObjectCreateReq{1, CU_RESOURCE_TYPE_ARRAY, 0x9010, 0},
                 rid_++),
            CUDA_ERROR_INVALID_HANDLE);
  proto::SurfObjectCreateRep srep;
  ASSERT_EQ(Call(fd_, CallId::kSurfObjectCreate, proto::SurfObjectCreateReq{1, CU_RESOURCE_TYPE_ARRAY, 0x9000, 0},
                 rid_++, &srep),
            0);
  EXPECT_EQ(Call(fd_, CallId::kSurfObjectDestroy, proto::SurfObjectDestroyReq{1, srep.surf}, rid_++), 0);
  EXPECT_EQ(PostAndCollect(CallId::kArrayDestroy, proto::ArrayDestroyReq{1, 0x9010}), CUDA_ERROR_INVALID_HANDLE);
}

// Small driver calls ("misc"): tensor maps must describe memory of the
// session; stream attributes and memory queries check their enums and ranges.
TEST_F(CallChecks, MiscCallsCheckRangesAndEnums) {
  auto u64s = [](std::initializer_list<uint64_t> v) {
    std::vector<uint8_t> b;
    proto::Writer w(&b);
    for (uint64_t x : v) w.U64(x);
    return b;
  };
  auto u32s = [](std::initializer_list<uint32_t> v) {
    std::vector<uint8_t> b;
    proto::Writer w(&b);
    for (uint32_t x : v) w.U32(x);
    return b;
  };
  std::vector<uint8_t> dims = u64s({256, 64}), strides = u64s({1024}), box = u32s({32, 8}), es = u32s({1, 1});
  auto encode = [&](uint64_t addr, const std::vector<uint8_t>& d, uint32_t dtype) {
    proto::TensorMapEncodeReq t{1, 0, dtype, 2, addr, d, strides, box, es, {}, {}, 0, 0, 0, 0, 0, 0, 0};
    return Call(fd_, CallId::kTensorMapEncode, t, rid_++);
  };
  EXPECT_EQ(encode(alloc_.dptr, dims, CU_TENSOR_MAP_DATA_TYPE_FLOAT32), 0);
  // Outside the session's memory is refused; running past the allocation is
  // not (the driver allows it), but an extent past 2^64 is.
  EXPECT_EQ(encode(0x10000, dims, CU_TENSOR_MAP_DATA_TYPE_FLOAT32), CUDA_ERROR_INVALID_VALUE);
  EXPECT_EQ(encode(alloc_.dptr, u64s({256, 1025}), CU_TENSOR_MAP_DATA_TYPE_FLOAT32), 0);
  EXPECT_EQ(encode(alloc_.dptr, u64s({256, uint64_t{1} << 62}), CU_TENSOR_MAP_DATA_TYPE_FLOAT32),
            CUDA_ERROR_INVALID_VALUE);
  EXPECT_EQ(encode(alloc_.dptr, dims, 99), CUDA_ERROR_INVALID_VALUE);
  EXPECT_EQ(encode(alloc_.dptr, u64s({256, 0}), CU_TENSOR_MAP_DATA_TYPE_FLOAT32), CUDA_ERROR_INVALID_VALUE);
  std::vector<uint8_t> map(128, 0);
  EXPECT_EQ(Call(fd_, CallId::kTensorMapReplaceAddress, proto::TensorMapReplaceAddressReq{1, map, 0x10000}, rid_++),
            CUDA_ERROR_INVALID_VALUE);
  // Stream attributes: ids outside the stream set, enum values out of range.
  std::vector<uint8_t> value(64, 0);
  EXPECT_EQ(Call(fd_, CallId::kStreamGetAttribute, proto::StreamGetAttributeReq{1, 0, 2}, rid_++),
            CUDA_ERROR_INVALID_VALUE);
  value[0] = 9;  // syncPolicy
  EXPECT_EQ(PostAndCollect(CallId::kStreamSetAttribute,
                           proto::StreamSetAttributeReq{1, 0, CU_LAUNCH_ATTRIBUTE_SYNCHRONIZATION_POLICY, value}),
            CUDA_ERROR_INVALID_VALUE);
  EXPECT_EQ(PostAndCollect(CallId::kStreamSetAttribute, proto::StreamSetAttributeReq{1, 0, 77, value}),
            CUDA_ERROR_INVALID_VALUE);
  EXPECT_EQ(Call(fd_, CallId::kMemGetAccess, proto::MemGetAccessReq{1, CU_MEM_LOCATION_TYPE_DEVICE, 0, 0x10000},
                 rid_++),
            CUDA_ERROR_INVALID_VALUE);
  EXPECT_EQ(Call(fd_, CallId::kMemGetAccess, proto::MemGetAccessReq{1, 0x77, 0, alloc_.dptr}, rid_++),
            CUDA_ERROR_INVALID_VALUE);
  EXPECT_EQ(Call(fd_, CallId::kPointerSetSyncMemops, proto::PointerSetSyncMemopsReq{1, 0x10000, 1}, rid_++),
            CUDA_ERROR_INVALID_VALUE);
  EXPECT_EQ(Call(fd_, CallId::kPointerSetSyncMemops, proto::PointerSetSyncMemopsReq{1, alloc_.dptr, 1}, rid_++), 0);
  EXPECT_EQ(Call(fd_, CallId::kModuleFunctionNames, proto::ModuleFunctionNamesReq{1, 12345, 4}, rid_++),
            CUDA_ERROR_INVALID_HANDLE);
  // JIT linking: options that carry pointers, out-of-range values, unknown
  // link states.
  auto link_options = [](uint32_t opt, uint64_t value) {
    std::vector<uint8_t> b;
    proto::Writer w(&b);
    w.U32(1);
    w.U32(opt);
    w.U64(value);
    return b;
  };
  EXPECT_EQ(PostAndCollect(CallId::kLinkCreate,
                           proto::LinkCreateReq{1, 77, link_options(CU_JIT_INFO_LOG_BUFFER, 0x1000), 0, 0}),
            CUDA_ERROR_INVALID_VALUE);
  EXPECT_EQ(PostAndCollect(CallId::kLinkCreate,
                           proto::LinkCreateReq{1, 78, link_options(CU_JIT_OPTIMIZATION_LEVEL, 9), 0, 0}),
            CUDA_ERROR_INVALID_VALUE);
  std::vector<uint8_t> ptx(16, 'x');
  EXPECT_EQ(Call(fd_, CallId::kLinkAddData, proto::LinkAddDataReq{1, 77, CU_JIT_INPUT_PTX, "x", ptx}, rid_++),
            CUDA_ERROR_INVALID_HANDLE);
  EXPECT_EQ(Call(fd_, CallId::kLinkComplete, proto::LinkCompleteReq{1, 78}, rid_++), CUDA_ERROR_INVALID_HANDLE);
}

// Stream memory operations write and watch device memory from the GPU: every
// address must be the session's, aligned, with known types and flags
// (server/worker/handlers_compat.cc). The client checks first; these are
// what a client that skips its checks would send.
TEST_F(CallChecks, StreamMemoryOperationsStayInsideTheSession) {
  auto ops = [](uint32_t type, uint32_t flags, uint64_t addr, uint64_t value) {
    std::vector<uint8_t> b;
    proto::Writer w(&b);
    w.U32(1);
    w.U32(type);
    w.U32(flags);
    w.U64(addr);
    w.U64(value);
    return b;
  };
  auto post = [&](uint8_t batch, uint32_t flags, const std::vector<uint8_t>& b) {
    return PostAndCollect(CallId::kStreamMemOps, proto::StreamMemOpsReq{1, 0, batch, flags, b});
  };
  uint64_t end = alloc_.dptr + kSize;
  EXPECT_EQ(post(0, 0, ops(CU_STREAM_MEM_OP_WRITE_VALUE_32, 0, end, 1)), CUDA_ERROR_INVALID_VALUE);
  EXPECT_EQ(post(0, 0, ops(CU_STREAM_MEM_OP_WRITE_VALUE_64, 0, end - 4, 1)), CUDA_ERROR_INVALID_VALUE);
  EXPECT_EQ(post(0, 0, ops(CU_STREAM_MEM_OP_WAIT_VALUE_32, 0, 0x1000, 1)), CUDA_ERROR_INVALID_VALUE);
  EXPECT_EQ(post(0, 0, ops(CU_STREAM_MEM_OP_WRITE_VALUE_32, 0, alloc_.dptr + 2, 1)), CUDA_ERROR_INVALID_VALUE);
  EXPECT_EQ(post(0, 0, ops(CU_STREAM_MEM_OP_WRITE_VALUE_32, 0x80, alloc_.dptr, 1)), CUDA_ERROR_INVALID_VALUE);
  EXPECT_EQ(post(0, 0, ops(CU_STREAM_MEM_OP_WAIT_VALUE_64, 9, alloc_.dptr, 1)), CUDA_ERROR_INVALID_VALUE);
  EXPECT_EQ(post(1, 0, ops(99, 0, alloc_.dptr, 1)), CUDA_ERROR_INVALID_VALUE);
  EXPECT_EQ(post(1, 1, ops(CU_STREAM_MEM_OP_WRITE_VALUE_32, 0, alloc_.dptr, 1)), CUDA_ERROR_INVALID_VALUE);
  std::vector<uint8_t> none(4, 0);  // count 0
  EXPECT_EQ(post(1, 0, none), CUDA_ERROR_INVALID_VALUE);
  // In range: written, then a wait for that value passes (the sim fails a
  // wait that is not yet satisfied), so no async error precedes the answer.
  ASSERT_TRUE(Send(fd_, CallId::kStreamMemOps,
                   proto::StreamMemOpsReq{1, 0, 0, 0, ops(CU_STREAM_MEM_OP_WRITE_VALUE_32, 0, end - 4, 77)}, rid_++,
                   /*async=*/true));
  ASSERT_TRUE(Send(fd_, CallId::kStreamMemOps,
                   proto::StreamMemOpsReq{1, 0, 1, 0, ops(CU_STREAM_MEM_OP_WAIT_VALUE_32, CU_STREAM_WAIT_VALUE_EQ,
                                                          end - 4, 77)},
                   rid_++, /*async=*/true));
  EXPECT_EQ(Call(fd_, CallId::kStreamSynchronize, proto::StreamSynchronizeReq{1, 0}, rid_++), 0);
  EXPECT_EQ(post(0, 0, ops(CU_STREAM_MEM_OP_WAIT_VALUE_32, CU_STREAM_WAIT_VALUE_EQ, end - 4, 78)),
            CUDA_ERROR_NOT_SUPPORTED);  // the sim cannot wait for a value that never comes
  // Unknown function, event and context.
  EXPECT_NE(PostAndCollect(CallId::kFuncSetSharedMemConfig, proto::FuncSetSharedMemConfigReq{1, 4242, 0}), 0);
  EXPECT_EQ(PostAndCollect(CallId::kFuncSetSharedMemConfig, proto::FuncSetSharedMemConfigReq{1, 4242, 9}),
            CUDA_ERROR_INVALID_VALUE);
  EXPECT_NE(PostAndCollect(CallId::kCtxRecordEvent, proto::CtxRecordEventReq{1, 4242}), 0);
  EXPECT_NE(PostAndCollect(CallId::kCtxWaitEvent, proto::CtxWaitEventReq{77, 4242}), 0);
  EXPECT_NE(Call(fd_, CallId::kDeviceGetTexture1DLinearMaxWidth,
                 proto::DeviceGetTexture1DLinearMaxWidthReq{5, CU_AD_FORMAT_FLOAT, 1}, rid_++),
            0);
}

}  // namespace
}  // namespace rgpu::testing
