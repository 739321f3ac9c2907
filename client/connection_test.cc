// Connection against a scripted server on loopback: what the client does
// when the link breaks at awkward moments. The real worker is not needed:
// the server here speaks just enough of the protocol (accept the Hello,
// read one request, answer part of it, hang up).
#include "client/connection.h"

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <future>
#include <thread>
#include <vector>

#include "common/net.h"
#include "proto/compression.h"
#include "proto/frame.h"
#include "proto/handshake.h"

namespace rgpu::client {
namespace {

// One-connection server: accepts, answers the Hello, then runs `script` on
// the connected socket and closes it.
class ScriptedServer {
 public:
  // `codec`: the compression the HelloReply says was agreed.
  explicit ScriptedServer(std::function<void(int fd)> script, proto::Codec codec = proto::Codec::kNone) {
    Result<int> l = net::Listen({"127.0.0.1", 0}, 1);
    EXPECT_TRUE(l.ok());
    listen_fd_ = *l;
    port_ = *net::LocalPort(listen_fd_);
    thread_ = std::thread([this, script = std::move(script), codec] {
      int fd = accept(listen_fd_, nullptr, nullptr);
      if (fd < 0) return;
      proto::FrameHeader h;
      if (ReadFrame(fd, &h, nullptr)) {
        std::vector<uint8_t> reply =
            proto::EncodeHelloReplyFrame({proto::HelloStatus::kAccepted, "", 7, static_cast<uint8_t>(codec)});
        (void)net::WriteAll(fd, reply.data(), reply.size());
        script(fd);
      }
      close(fd);
    });
  }
  ~ScriptedServer() {
    shutdown(listen_fd_, SHUT_RDWR);
    thread_.join();
    close(listen_fd_);
  }
  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }

  // Reads one whole frame; its payload into `body` when given.
  static bool ReadFrame(int fd, proto::FrameHeader* h, std::vector<uint8_t>* body) {
    uint8_t hb[proto::kFrameHeaderSize];
    if (!net::ReadExact(fd, hb, sizeof hb).ok()) return false;
    if (!proto::DecodeFrameHeader(hb, proto::kMaxFramePayload, h).ok()) return false;
    std::vector<uint8_t> b(h->length);
    if (!net::ReadExact(fd, b.data(), b.size()).ok()) return false;
    if (body != nullptr) *body = std::move(b);
    return true;
  }

 private:
  int listen_fd_ = -1;
  uint16_t port_ = 0;
  std::thread thread_;
};

std::unique_ptr<Connection> Open(const ScriptedServer& server, const std::string& compress = "") {
  ConnectOptions options;
  options.server = server.address();
  options.identity = "connection_test";
  options.compress = compress;
  Result<std::unique_ptr<Connection>> c = Connection::Open(options, nullptr);
  EXPECT_TRUE(c.ok()) << c.status().ToString();
  return c.ok() ? std::move(*c) : nullptr;
}

// The worker dies after it has started a device-to-host reply: the caller,
// whose reply was being read, gets the link failure instead of waiting
// forever for the rest of the data.
TEST(Connection, LinkLostInsideAReplyReleasesItsCaller) {
  constexpr size_t kLen = 1 << 20;
  ScriptedServer server([](int fd) {
    proto::FrameHeader h;
    if (!ScriptedServer::ReadFrame(fd, &h, nullptr)) return;
    // Header for a 12 + kLen payload, the result code and length, half
    // the data, then the connection closes.
    std::vector<uint8_t> out(proto::kFrameHeaderSize);
    proto::EncodeFrameHeader({static_cast<uint32_t>(12 + kLen), h.call, proto::kReply, h.request_id},
                             out.data());
    uint8_t fields[12] = {};
    uint64_t n = kLen;
    memcpy(fields + 4, &n, 8);
    out.insert(out.end(), fields, fields + 12);
    out.resize(out.size() + kLen / 2, 0xab);
    (void)net::WriteAll(fd, out.data(), out.size());
  });
  std::unique_ptr<Connection> c = Open(server);
  ASSERT_NE(c, nullptr);
  std::vector<uint8_t> dst(kLen);
  auto call = std::async(std::launch::async, [&] {
    int cu = 0;
    return c->CallInto(proto::CallId::kMemcpyDtoH, std::vector<uint8_t>(8, 0), dst.data(), dst.size(), &cu);
  });
  ASSERT_EQ(call.wait_for(std::chrono::seconds(5)), std::future_status::ready) << "the caller hung";
  Status st = call.get();
  EXPECT_FALSE(st.ok());
  EXPECT_FALSE(c->health().ok());
  // Every later call fails at once.
  int cu = 0;
  EXPECT_FALSE(c->CallInto(proto::CallId::kMemcpyDtoH, std::vector<uint8_t>(8, 0), dst.data(), 16, &cu).ok());
}

// The same for a link that closes between replies, with a call waiting.
TEST(Connection, LinkLostWhileWaitingReleasesTheCaller) {
  ScriptedServer server([](int fd) {
    proto::FrameHeader h;
    (void)ScriptedServer::ReadFrame(fd, &h, nullptr);
  });
  std::unique_ptr<Connection> c = Open(server);
  ASSERT_NE(c, nullptr);
  Reply reply;
  auto call = std::async(std::launch::async, [&] {
    return c->CallRaw(proto::CallId::kCtxSynchronize, std::vector<uint8_t>(8, 0), &reply);
  });
  ASSERT_EQ(call.wait_for(std::chrono::seconds(5)), std::future_status::ready) << "the caller hung";
  EXPECT_FALSE(call.get().ok());
}

// A device-to-host reply sent as compressed blocks lands in the caller's
// buffer exactly (the client decodes inside its frame reader).
TEST(Connection, CompressedReplyLandsExactly) {
  constexpr size_t kLen = (3 << 20) + 1234;
  std::vector<uint8_t> data(kLen);
  for (size_t i = 0; i < kLen; ++i) data[i] = (i % 8 == 0) ? static_cast<uint8_t>(i * 2654435761u >> 24) : 0;
  ScriptedServer server(
      [&](int fd) {
        proto::FrameHeader h;
        if (!ScriptedServer::ReadFrame(fd, &h, nullptr)) return;
        uint8_t fields[12] = {};
        uint64_t n = kLen;
        memcpy(fields + 4, &n, 8);
        proto::BlockEncoder enc(proto::Codec::kLz4);
        enc.set_always_try(true);
        (void)enc.WriteFrame(h.call, proto::kReply, h.request_id, fields, data,
                             [fd](const uint8_t* p, size_t k) { return net::WriteAll(fd, p, k); });
        EXPECT_LT(enc.wire_bytes(), kLen / 2) << "the reply went compressed";
        (void)ScriptedServer::ReadFrame(fd, &h, nullptr);  // until the client hangs up
      },
      proto::Codec::kLz4);
  std::unique_ptr<Connection> c = Open(server, "lz4");
  ASSERT_NE(c, nullptr);
  EXPECT_EQ(c->codec(), proto::Codec::kLz4);
  std::vector<uint8_t> dst(kLen, 0xee);
  int cu = -1;
  ASSERT_TRUE(c->CallInto(proto::CallId::kMemcpyDtoH, std::vector<uint8_t>(8, 0), dst.data(), dst.size(), &cu).ok());
  EXPECT_EQ(cu, 0);
  EXPECT_TRUE(dst == data);
}

// A server that picks a codec the client did not offer is refused.
TEST(Connection, ACodecThatWasNotOfferedIsRefused) {
  ScriptedServer server([](int) {}, proto::Codec::kZstd);
  ConnectOptions options;
  options.server = server.address();
  options.identity = "connection_test";
  options.compress = "lz4";
  Result<std::unique_ptr<Connection>> c = Connection::Open(options, nullptr);
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.status().message().find("zstd, which was not offered"), std::string::npos) << c.status().ToString();
}

}  // namespace
}  // namespace rgpu::client
