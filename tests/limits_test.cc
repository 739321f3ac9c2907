// Server limits against a real rgpu-server (sim backend), each seen from a
// hand-written client (tests/support/raw_client.h): failed handshakes per
// address, sessions, device memory per session (--max-mem) and request bytes
// queued per session (--max-pending-bytes). Each limit must give a clear
// answer to the client that hit it, and to no one else.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <fstream>
#include <sstream>
#include <thread>

#include <cuda.h>
#include <gtest/gtest.h>

#include "tests/support/process.h"
#include "tests/support/raw_client.h"

namespace rgpu::testing {
namespace {

using proto::CallId;
using proto::HelloStatus;
using Clock = std::chrono::steady_clock;

const std::string kToken = "0123456789abcdef0123456789abcdef";

struct TokenFile {
  TokenFile() {
    char tmpl[] = "/tmp/rgpu_limits_token_XXXXXX";
    int fd = mkstemp(tmpl);
    path = tmpl;
    EXPECT_EQ(write(fd, kToken.data(), kToken.size()), static_cast<ssize_t>(kToken.size()));
    close(fd);
  }
  ~TokenFile() { unlink(path.c_str()); }
  std::string path;
};

// Connects from another loopback address (all of 127/8 is loopback), so that
// the server sees a different source.
int DialFrom(const char* source, int port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in src{}, dst{};
  src.sin_family = dst.sin_family = AF_INET;
  inet_pton(AF_INET, source, &src.sin_addr);
  inet_pton(AF_INET, "127.0.0.1", &dst.sin_addr);
  dst.sin_port = htons(static_cast<uint16_t>(port));
  if (bind(fd, reinterpret_cast<sockaddr*>(&src), sizeof src) != 0 ||
      connect(fd, reinterpret_cast<sockaddr*>(&dst), sizeof dst) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

// A session that passed the handshake and retained context 1 on device 0.
int OpenSession(const TestServer& server, const std::string& token = "") {
  int fd = DialLoopback(server.port());
  EXPECT_GE(fd, 0);
  proto::HelloReply r = Handshake(fd, token);
  EXPECT_EQ(r.status, HelloStatus::kAccepted) << r.message;
  EXPECT_EQ(Call(fd, CallId::kPrimaryCtxRetain, proto::PrimaryCtxRetainReq{1, 0}, 1), 0);
  return fd;
}

size_t Count(const std::string& text, const std::string& what) {
  size_t n = 0;
  for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

uint64_t RssBytes(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("VmRSS:", 0) == 0) return std::stoull(line.substr(6)) * 1024;
  return 0;
}

TEST(Limits, FailedHandshakesAreRateLimitedPerAddress) {
  TokenFile token;
  const int window_ms = 3000;
  TestServer server({"--token-file", token.path, "--auth-fail-limit", "4", "--auth-fail-window-ms",
                     std::to_string(window_ms), "--handshake-timeout-ms", "300"});
  Clock::time_point first_failure = Clock::now();
  // Four failures of four kinds: wrong token, wrong version, garbage, silence.
  int fd = DialLoopback(server.port());
  EXPECT_EQ(Handshake(fd, "0123456789abcdef0123456789abcdeX").status, HelloStatus::kBadToken);
  close(fd);
  fd = DialLoopback(server.port());
  EXPECT_EQ(Handshake(fd, kToken, proto::kProtocolVersion + 1).status, HelloStatus::kBadVersion);
  close(fd);
  fd = DialLoopback(server.port());
  const char junk[] = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
  ASSERT_EQ(write(fd, junk, sizeof junk), static_cast<ssize_t>(sizeof junk));
  EXPECT_TRUE(PeerCloses(fd));
  close(fd);
  fd = DialLoopback(server.port());
  EXPECT_TRUE(PeerCloses(fd, 3000));  // the handshake deadline
  close(fd);
  // From now on even the right token is refused, with the reason, and the
  // refusals are logged once for the window, not once each.
  for (int i = 0; i < 10; ++i) {
    fd = DialLoopback(server.port());
    proto::HelloReply r = Handshake(fd, kToken);
    EXPECT_EQ(r.status, HelloStatus::kRefused) << r.message;
    EXPECT_NE(r.message.find("too many failed handshakes from 127.0.0.1"), std::string::npos) << r.message;
    close(fd);
  }
  std::string log = server.Log();
  EXPECT_EQ(Count(log, "4 failed handshakes within"), 1u) << log;
  EXPECT_EQ(Count(log, "logged once per window"), 1u) << log;
  // Another address is not affected.
  fd = DialFrom("127.0.0.2", server.port());
  ASSERT_GE(fd, 0);
  proto::HelloReply other = Handshake(fd, kToken);
  EXPECT_EQ(other.status, HelloStatus::kAccepted) << other.message;
  close(fd);
  // Once the window is over, the address is served again.
  std::this_thread::sleep_until(first_failure + std::chrono::milliseconds(window_ms + 300));
  fd = DialLoopback(server.port());
  proto::HelloReply again = Handshake(fd, kToken);
  EXPECT_EQ(again.status, HelloStatus::kAccepted) << again.message;
  EXPECT_EQ(Call(fd, CallId::kPing, proto::PingReq{}, 9), 0);
  close(fd);
}

TEST(Limits, SessionLimitRefusesWithAReasonAndFreesOnExit) {
  TestServer server({"--max-sessions", "1"});
  int first = OpenSession(server);
  int fd = DialLoopback(server.port());
  proto::HelloReply r = Handshake(fd, "");
  EXPECT_EQ(r.status, HelloStatus::kNoCapacity);
  EXPECT_NE(r.message.find("session limit (1)"), std::string::npos) << r.message;
  close(fd);
  EXPECT_EQ(Call(first, CallId::kPing, proto::PingReq{}, 2), 0);  // the first goes on
  close(first);
  // Its end gives the place back (the supervisor notices the worker's exit).
  bool served = false;
  for (int i = 0; i < 100 && !served; ++i) {
    fd = DialLoopback(server.port());
    served = Handshake(fd, "").status == HelloStatus::kAccepted;
    close(fd);
    if (!served) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_TRUE(served) << server.Log();
}

TEST(Limits, MemoryLimitFailsThatSessionsAllocationsOnly) {
  constexpr uint64_t kMiB = 1 << 20;
  TestServer server({"--sim-gpus", "2", "--max-mem", "32M"});
  int a = OpenSession(server);
  int b = OpenSession(server);
  uint64_t rid = 10;
  proto::MemAllocRep p1, p2, p3;
  ASSERT_EQ(Call(a, CallId::kMemAlloc, proto::MemAllocReq{1, 16 * kMiB}, rid++, &p1), 0);
  ASSERT_EQ(Call(a, CallId::kMemAlloc, proto::MemAllocReq{1, 16 * kMiB}, rid++, &p2), 0);
  // The next byte is over the limit: CUDA_ERROR_OUT_OF_MEMORY (2), as from a full card.
  EXPECT_EQ(Call(a, CallId::kMemAlloc, proto::MemAllocReq{1, 1}, rid++, &p3), CUDA_ERROR_OUT_OF_MEMORY);
  EXPECT_EQ(Call(a, CallId::kMemAllocPitch, proto::MemAllocPitchReq{1, 4096, 16, 4}, rid++),
            CUDA_ERROR_OUT_OF_MEMORY);
  EXPECT_EQ(Call(a, CallId::kMemCreate, proto::MemCreateReq{1, 7, 2 * kMiB, 1, 0, 1, 0, 0, 0, 0, 0}, rid++),
            CUDA_ERROR_OUT_OF_MEMORY);
  // The card looks as large as the limit, and full.
  proto::MemGetInfoRep info;
  ASSERT_EQ(Call(a, CallId::kMemGetInfo, proto::MemGetInfoReq{1}, rid++, &info), 0);
  EXPECT_EQ(info.total, 32 * kMiB);
  EXPECT_EQ(info.free, 0u);
  // The other session is not affected.
  proto::MemAllocRep pb;
  EXPECT_EQ(Call(b, CallId::kMemAlloc, proto::MemAllocReq{1, 32 * kMiB}, rid++, &pb), 0);
  // Freeing gives it back.
  ASSERT_TRUE(Send(a, CallId::kMemFree, proto::MemFreeReq{1, p2.dptr}, rid++, /*async=*/true));
  ASSERT_EQ(Call(a, CallId::kMemGetInfo, proto::MemGetInfoReq{1}, rid++, &info), 0);
  EXPECT_EQ(info.free, 16 * kMiB);
  // Physical memory (cuMemCreate) counts until it is released and unmapped.
  ASSERT_EQ(Call(a, CallId::kMemCreate, proto::MemCreateReq{1, 7, 16 * kMiB, 1, 0, 1, 0, 0, 0, 0, 0}, rid++), 0);
  proto::MemAddressReserveRep va;
  ASSERT_EQ(Call(a, CallId::kMemAddressReserve, proto::MemAddressReserveReq{1, 16 * kMiB, 0, 0, 0}, rid++, &va), 0);
  ASSERT_EQ(Call(a, CallId::kMemMap, proto::MemMapReq{1, va.ptr, 16 * kMiB, 0, 7, 0}, rid++), 0);
  ASSERT_TRUE(Send(a, CallId::kMemRelease, proto::MemReleaseReq{1, 7}, rid++, /*async=*/true));
  EXPECT_EQ(Call(a, CallId::kMemAlloc, proto::MemAllocReq{1, 2 * kMiB}, rid++, &p3), CUDA_ERROR_OUT_OF_MEMORY);
  ASSERT_TRUE(Send(a, CallId::kMemUnmap, proto::MemUnmapReq{1, va.ptr, 16 * kMiB}, rid++, /*async=*/true));
  EXPECT_EQ(Call(a, CallId::kMemAlloc, proto::MemAllocReq{1, 16 * kMiB}, rid++, &p3), 0);
  close(a);
  close(b);
  // The worker said which limit, once.
  std::string log = server.Log();
  EXPECT_NE(log.find("--max-mem limit is 33554432 bytes per session"), std::string::npos) << log;
}

// A client that sends faster than its session executes: the worker stops
// reading once --max-pending-bytes are queued, so neither its memory nor
// what the client got onto the wire grows with what the client sends.
TEST(Limits, FastSenderCannotGrowTheWorkersMemory) {
  constexpr uint64_t kMiB = 1 << 20;
  TestServer server({"--max-pending-bytes", "64M"});
  int fd = OpenSession(server);
  std::vector<pid_t> workers = server.SessionWorkers();
  ASSERT_EQ(workers.size(), 1u) << server.StatusJson();
  uint64_t rss_before = RssBytes(workers[0]);
  // A host function the client never answers holds the executor (the sim
  // runs it on the executor's thread; a real GPU would be busy likewise).
  ASSERT_TRUE(Send(fd, CallId::kLaunchHostFunc, proto::LaunchHostFuncReq{1, 0, 77}, 2, /*async=*/true));
  // Then 512 MiB of copies, 8 MiB a frame, from a thread: its writes block
  // once the worker stops reading.
  std::vector<uint8_t> data(8 * kMiB, 0x5a);
  std::vector<uint8_t> frame;
  {
    std::vector<uint8_t> payload;
    proto::Writer w(&payload);
    proto::Encode(w, proto::MemcpyHtoDReq{1, 0, 0, 0x1000, data});
    proto::AppendFrame({0, static_cast<uint16_t>(CallId::kMemcpyHtoD), proto::kNoReply, 3}, payload, &frame);
  }
  std::atomic<uint64_t> sent{0};
  std::thread sender([&] {
    for (int i = 0; i < 64; ++i) {
      size_t at = 0;
      while (at < frame.size()) {
        ssize_t n = send(fd, frame.data() + at, frame.size() - at, MSG_NOSIGNAL);
        if (n <= 0) return;  // the connection was shut down below
        at += n;
        sent += n;
      }
    }
  });
  // Wait until the sender stalls: nothing more goes out for a second.
  uint64_t last = 0;
  for (int i = 0; i < 60; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1000));
    if (sent.load() == last) break;
    last = sent.load();
  }
  uint64_t rss_after = RssBytes(workers[0]);
  uint64_t got_through = sent.load();
  shutdown(fd, SHUT_RDWR);  // ends the session and unblocks the sender
  sender.join();
  close(fd);
  printf("[ figures  ] %llu MiB of 512 got through; worker RSS %llu -> %llu MiB\n",
         (unsigned long long)(got_through / kMiB), (unsigned long long)(rss_before / kMiB),
         (unsigned long long)(rss_after / kMiB));
  // Bound: the queue (64 MiB), one frame being read (8 MiB), and slack for
  // the reader's buffers and the allocator; socket buffers are the kernel's.
  EXPECT_LT(got_through, 160 * kMiB) << "the worker kept reading";
  EXPECT_GT(got_through, 64 * kMiB) << "the worker queued less than allowed";
  EXPECT_LT(rss_after, rss_before + 128 * kMiB) << "before " << rss_before << ", after " << rss_after;
  // The session ends cleanly and the server goes on.
  EXPECT_TRUE(server.alive());
  int next = OpenSession(server);
  EXPECT_EQ(Call(next, CallId::kPing, proto::PingReq{}, 5), 0);
  close(next);
}

}  // namespace
}  // namespace rgpu::testing
