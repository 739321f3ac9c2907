#include <gtest/gtest.h>

#include "proto/calls.gen.h"

namespace rgpu::proto {
namespace {

TEST(Calls, TableSortedAndFindable) {
  for (int i = 1; i < kCallCount; ++i)
    EXPECT_LT(static_cast<int>(kCalls[i - 1].id), static_cast<int>(kCalls[i].id));
  const CallInfo* c = FindCall(static_cast<uint16_t>(CallId::kMemAlloc));
  ASSERT_NE(c, nullptr);
  EXPECT_STREQ(c->name, "MemAlloc");
  EXPECT_EQ(FindCall(0), nullptr);
  EXPECT_EQ(FindCall(60000), nullptr);
}

TEST(Calls, LaunchRoundTrip) {
  std::vector<uint8_t> params = {1, 2, 3, 4, 5, 6, 7, 8};
  LaunchKernelReq req;
  req.ctx = 1;
  req.func = 42;
  req.gx = 10;
  req.bx = 256;
  req.stream = 7;
  req.params = params;
  std::vector<uint8_t> buf;
  Writer w(&buf);
  Encode(w, req);
  Reader r(buf);
  LaunchKernelReq out;
  ASSERT_TRUE(Decode(r, &out).ok());
  EXPECT_EQ(out.func, 42u);
  EXPECT_EQ(out.gx, 10u);
  EXPECT_EQ(out.bx, 256u);
  EXPECT_EQ(out.stream, 7u);
  ASSERT_EQ(out.params.size(), 8u);
  EXPECT_EQ(out.params[7], 8);
}

TEST(Calls, EveryTruncationOfARequestFails) {
  GetFunctionReq req;
  req.ctx = 1;
  req.module = 2;
  req.func = 3;
  req.name = "_Z6kernelPf";
  std::vector<uint8_t> buf;
  Writer w(&buf);
  Encode(w, req);
  for (size_t n = 0; n < buf.size(); ++n) {
    Reader r(buf.data(), n);
    GetFunctionReq out;
    EXPECT_FALSE(Decode(r, &out).ok()) << n;
  }
  buf.push_back(0);
  Reader r(buf);
  GetFunctionReq out;
  EXPECT_FALSE(Decode(r, &out).ok()) << "trailing byte accepted";
}

TEST(Calls, NameOverLimitRefused) {
  std::vector<uint8_t> buf;
  Writer w(&buf);
  w.U64(1);
  w.U64(2);
  w.U64(3);
  w.U64(1u << 20);  // name length 1 MiB > 64 KiB limit
  Reader r(buf);
  GetFunctionReq out;
  Status s = Decode(r, &out);
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find("name"), std::string::npos);
}

}  // namespace
}  // namespace rgpu::proto

namespace rgpu::proto {
namespace {
TEST(Calls, EncodeHeadPlusBulkEqualsEncode) {
  std::vector<uint8_t> data = {9, 8, 7, 6, 5};
  MemcpyHtoDReq req{1, 2, 1, 0x7000, data};
  std::vector<uint8_t> whole, head;
  Writer w1(&whole), w2(&head);
  Encode(w1, req);
  EncodeHead(w2, req);
  head.insert(head.end(), data.begin(), data.end());
  EXPECT_EQ(whole, head);
}
}  // namespace
}  // namespace rgpu::proto
