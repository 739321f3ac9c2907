// net::WriteAll2: both pieces arrive whole and in order, however the socket
// splits the writes (a small send buffer forces many partial sendmsg calls),
// and empty pieces are allowed.
#include "common/net.h"

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <thread>
#include <vector>

namespace rgpu::net {
namespace {

// Sends head+bulk through a socket pair with a small send buffer and
// returns what the other end read.
std::vector<uint8_t> RoundTrip(const std::vector<uint8_t>& head, const std::vector<uint8_t>& bulk) {
  int sv[2];
  EXPECT_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
  int small = 4096;
  setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &small, sizeof small);
  std::vector<uint8_t> got(head.size() + bulk.size());
  std::thread reader([&] { EXPECT_TRUE(ReadExact(sv[1], got.data(), got.size()).ok()); });
  EXPECT_TRUE(WriteAll2(sv[0], head.data(), head.size(), bulk.data(), bulk.size()).ok());
  reader.join();
  close(sv[0]);
  close(sv[1]);
  return got;
}

std::vector<uint8_t> Pattern(size_t n, uint8_t seed) {
  std::vector<uint8_t> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = static_cast<uint8_t>(seed + i * 7 + i / 251);
  return v;
}

TEST(WriteAll2, BothPiecesArriveInOrderThroughPartialWrites) {
  std::vector<uint8_t> head = Pattern(20, 1), bulk = Pattern(3 << 20, 9);
  std::vector<uint8_t> want = head;
  want.insert(want.end(), bulk.begin(), bulk.end());
  EXPECT_EQ(RoundTrip(head, bulk), want);
}

TEST(WriteAll2, EmptyPiecesAreAllowed) {
  std::vector<uint8_t> some = Pattern(100000, 3);
  EXPECT_EQ(RoundTrip({}, some), some);
  EXPECT_EQ(RoundTrip(some, {}), some);
  EXPECT_TRUE(RoundTrip({}, {}).empty());
}

TEST(WriteAll2, AClosedPeerIsATransportError) {
  int sv[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
  close(sv[1]);
  std::vector<uint8_t> data = Pattern(1 << 20, 5);
  Status st = WriteAll2(sv[0], data.data(), 16, data.data(), data.size());
  EXPECT_FALSE(st.ok());
  EXPECT_EQ(st.code(), Code::kTransport);
  close(sv[0]);
}

}  // namespace
}  // namespace rgpu::net
