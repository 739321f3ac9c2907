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

}  // namespace
}  // namespace rgpu::testing
