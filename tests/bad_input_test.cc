// Bad connections against a real rgpu-server (sim backend): each must get a
// clear refusal or a closed connection, and the server must go on serving a
// real client with no growth in fds or processes.
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <fstream>
#include <thread>

#include <gtest/gtest.h>

#include "common/net.h"
#include "proto/calls.gen.h"
#include "proto/frame.h"
#include "proto/handshake.h"
#include "proto/version.h"
#include "tests/support/process.h"

namespace rgpu::testing {
namespace {

int Dial(const TestServer& server) {
  Result<int> fd = net::Connect({"127.0.0.1", static_cast<uint16_t>(server.port())}, 2000);
  EXPECT_TRUE(fd.ok()) << fd.status().ToString();
  return fd.ok() ? *fd : -1;
}

// Reads one frame with a deadline; returns false on EOF/timeout.
bool ReadFrame(int fd, proto::FrameHeader* h, std::vector<uint8_t>* body, int timeout_ms = 3000) {
  if (!net::WaitReadable(fd, timeout_ms)) return false;
  uint8_t hb[proto::kFrameHeaderSize];
  if (!net::ReadExact(fd, hb, sizeof hb).ok()) return false;
  if (!proto::DecodeFrameHeader(hb, proto::kMaxFramePayload, h).ok()) return false;
  body->resize(h->length);
  return net::ReadExact(fd, body->data(), body->size()).ok();
}

// True when the peer closes within the timeout (whatever it sent first).
bool Closed(int fd, int timeout_ms = 3000) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  char buf[4096];
  while (std::chrono::steady_clock::now() < deadline) {
    if (!net::WaitReadable(fd, 50)) continue;
    if (recv(fd, buf, sizeof buf, 0) <= 0) return true;
  }
  return false;
}

proto::HelloReply Handshake(int fd, const std::string& token, uint32_t version = proto::kProtocolVersion) {
  auto frame = proto::EncodeHelloFrame({proto::kHelloMagic, version, token, "test", 1});
  EXPECT_TRUE(net::WriteAll(fd, frame.data(), frame.size()).ok());
  proto::FrameHeader h;
  std::vector<uint8_t> body;
  proto::HelloReply r;
  r.status = proto::HelloStatus::kMalformed;
  do {  // queue-position events may come first
    if (!ReadFrame(fd, &h, &body, 10000)) {
      r.message = "no reply";
      return r;
    }
  } while (h.flags & proto::kEvent);
  EXPECT_TRUE(proto::DecodeHelloReply(body, &r).ok());
  return r;
}

// A real session: handshake, then a Ping round trip.
void ExpectServes(const TestServer& server, const std::string& token = "") {
  int fd = Dial(server);
  ASSERT_GE(fd, 0);
  proto::HelloReply r = Handshake(fd, token);
  ASSERT_EQ(r.status, proto::HelloStatus::kAccepted) << r.message;
  std::vector<uint8_t> frame;
  proto::AppendFrame({0, static_cast<uint16_t>(proto::CallId::kPing), 0, 7}, {}, &frame);
  ASSERT_TRUE(net::WriteAll(fd, frame.data(), frame.size()).ok());
  proto::FrameHeader h;
  std::vector<uint8_t> body;
  ASSERT_TRUE(ReadFrame(fd, &h, &body));
  EXPECT_EQ(h.request_id, 7u);
  EXPECT_TRUE(h.flags & proto::kReply);
  close(fd);
}

TEST(BadInput, GarbageBytesAreRefusedAndServerGoesOn) {
  TestServer server;
  int fd = Dial(server);
  const char junk[] = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
  ASSERT_TRUE(net::WriteAll(fd, junk, sizeof junk).ok());
  EXPECT_TRUE(Closed(fd));
  close(fd);
  ExpectServes(server);
  EXPECT_NE(server.Log().find("refused"), std::string::npos) << server.Log();
}

TEST(BadInput, FrameAnnouncingFourGigabytesIsRefused) {
  TestServer server;
  int fd = Dial(server);
  uint8_t hb[proto::kFrameHeaderSize];
  proto::EncodeFrameHeader({0xffffffffu, 0, 0, 0}, hb);
  ASSERT_TRUE(net::WriteAll(fd, hb, sizeof hb).ok());
  proto::FrameHeader h;
  std::vector<uint8_t> body;
  ASSERT_TRUE(ReadFrame(fd, &h, &body));  // a refusal saying why
  proto::HelloReply r;
  ASSERT_TRUE(proto::DecodeHelloReply(body, &r).ok());
  EXPECT_EQ(r.status, proto::HelloStatus::kMalformed);
  EXPECT_NE(r.message.find("limit"), std::string::npos) << r.message;
  EXPECT_TRUE(Closed(fd));
  close(fd);
  ExpectServes(server);
}

TEST(BadInput, WrongProtocolVersionIsRefusedWithReason) {
  TestServer server;
  int fd = Dial(server);
  proto::HelloReply r = Handshake(fd, "", proto::kProtocolVersion + 100);
  EXPECT_EQ(r.status, proto::HelloStatus::kBadVersion);
  EXPECT_NE(r.message.find("protocol version"), std::string::npos);
  close(fd);
  ExpectServes(server);
}

TEST(BadInput, TokenIsRequiredWhenConfigured) {
  char path[] = "/tmp/rgpu_token_XXXXXX";
  int tfd = mkstemp(path);
  std::string token = "0123456789abcdef0123456789abcdef";
  ASSERT_EQ(write(tfd, token.data(), token.size()), static_cast<ssize_t>(token.size()));
  close(tfd);
  {
    TestServer server({"--token-file", path});
    int fd = Dial(server);
    EXPECT_EQ(Handshake(fd, "").status, proto::HelloStatus::kBadToken);
    close(fd);
    fd = Dial(server);
    EXPECT_EQ(Handshake(fd, "0123456789abcdef0123456789abcdeX").status, proto::HelloStatus::kBadToken);
    close(fd);
    ExpectServes(server, token);
  }
  unlink(path);
}

TEST(BadInput, NonLoopbackListenWithoutTokenRefusesToStart) {
  RunResult r = RunProgram({ServerBinary(), "--listen", "0.0.0.0:0", "--backend", "sim"}, {}, 10);
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("without a token"), std::string::npos) << r.err;
}

TEST(BadInput, SilentConnectionTimesOut) {
  TestServer server({"--handshake-timeout-ms", "300"});
  int fd = Dial(server);
  auto start = std::chrono::steady_clock::now();
  EXPECT_TRUE(Closed(fd, 5000));
  double waited = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  EXPECT_LT(waited, 3.0);
  close(fd);
  ExpectServes(server);
}

TEST(BadInput, GarbageAfterHandshakeEndsOnlyThatSession) {
  TestServer server;
  int fd = Dial(server);
  ASSERT_EQ(Handshake(fd, "").status, proto::HelloStatus::kAccepted);
  uint8_t hb[proto::kFrameHeaderSize];
  proto::EncodeFrameHeader({0x7fffffffu, 14, 0, 1}, hb);  // 2 GiB MemAlloc request
  ASSERT_TRUE(net::WriteAll(fd, hb, sizeof hb).ok());
  EXPECT_TRUE(Closed(fd));
  close(fd);
  // A truncated request body (decoder must refuse, not read past it).
  fd = Dial(server);
  ASSERT_EQ(Handshake(fd, "").status, proto::HelloStatus::kAccepted);
  std::vector<uint8_t> frame;
  uint8_t short_body[3] = {1, 2, 3};
  proto::AppendFrame({0, static_cast<uint16_t>(proto::CallId::kMemAlloc), 0, 1}, short_body, &frame);
  ASSERT_TRUE(net::WriteAll(fd, frame.data(), frame.size()).ok());
  EXPECT_TRUE(Closed(fd));
  close(fd);
  ExpectServes(server);
  EXPECT_TRUE(server.alive());
}

// Sends one request and returns the CUresult of its reply (-1: no reply).
template <class Req>
int CallRaw(int fd, proto::CallId id, const Req& req, uint64_t rid) {
  std::vector<uint8_t> payload, frame;
  proto::Writer w(&payload);
  proto::Encode(w, req);
  proto::AppendFrame({0, static_cast<uint16_t>(id), 0, rid}, payload, &frame);
  if (!net::WriteAll(fd, frame.data(), frame.size()).ok()) return -1;
  proto::FrameHeader h;
  std::vector<uint8_t> body;
  do {
    if (!ReadFrame(fd, &h, &body)) return -1;
  } while (h.flags & proto::kEvent);
  proto::Reader r(body);
  int32_t cu = -1;
  (void)r.I32(&cu);
  return cu;
}

TEST(BadInput, ModuleImagesMustLieInsideWhatWasSent) {
  TestServer server;
  int fd = Dial(server);
  ASSERT_EQ(Handshake(fd, "").status, proto::HelloStatus::kAccepted);
  ASSERT_EQ(CallRaw(fd, proto::CallId::kPrimaryCtxRetain, proto::PrimaryCtxRetainReq{1, 0}, 1), 0);
  // PTX without its NUL: the driver would read past the frame.
  std::vector<uint8_t> ptx = {'.', 'v', 'e', 'r', 's', 'i', 'o', 'n', ' ', '8'};
  // An ELF header whose section table lies far outside the bytes sent.
  std::vector<uint8_t> elf(64, 0);
  elf[0] = 0x7f; elf[1] = 'E'; elf[2] = 'L'; elf[3] = 'F'; elf[4] = 2; elf[5] = 1;
  elf[0x28] = 0x00; elf[0x29] = 0x00; elf[0x2a] = 0x00; elf[0x2b] = 0x40;  // e_shoff = 1 GiB
  elf[0x3a] = 64; elf[0x3c] = 4;                                           // e_shentsize, e_shnum
  // A fatbin wrapper: its data pointer belongs to the client.
  std::vector<uint8_t> wrapper = {0xb1, 0x43, 0x62, 0x46, 1, 0, 0, 0, 0x41, 0x41, 0x41, 0x41, 0x41, 0x41, 0x41, 0x41};
  uint64_t rid = 2, module = 100;
  for (const auto& image : {ptx, elf, wrapper}) {
    int cu = CallRaw(fd, proto::CallId::kModuleLoad, proto::ModuleLoadReq{1, module++, 0, 0, image}, rid++);
    EXPECT_EQ(cu, 200) << "CUDA_ERROR_INVALID_IMAGE expected";  // and the worker is still there:
    EXPECT_EQ(CallRaw(fd, proto::CallId::kPing, proto::PingReq{}, rid++), 0);
  }
  close(fd);
  EXPECT_TRUE(server.alive());
}

TEST(BadInput, ThousandDroppedConnectionsLeakNothing) {
  TestServer server;
  ExpectServes(server);
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  int fds_before = OpenFds(server.pid());
  size_t workers_before = server.Workers().size();
  for (int i = 0; i < 1000; ++i) {
    int fd = Dial(server);
    if (i % 3 == 1) {
      const char b[4] = {1, 2, 3, 4};
      (void)!write(fd, b, sizeof b);
    }
    close(fd);
  }
  ExpectServes(server);
  // Let the supervisor notice the closes and reap the worker.
  for (int i = 0; i < 100 && (OpenFds(server.pid()) > fds_before || server.Workers().size() > workers_before ||
                              !server.SessionWorkers().empty());
       ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  EXPECT_LE(OpenFds(server.pid()), fds_before);
  // Only the warm workers remain: one per GPU, no session.
  EXPECT_EQ(server.Workers().size(), workers_before);
  EXPECT_TRUE(server.SessionWorkers().empty()) << server.StatusJson();
}

}  // namespace
}  // namespace rgpu::testing
