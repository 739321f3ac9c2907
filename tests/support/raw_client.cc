#include "tests/support/raw_client.h"

#include <sys/socket.h>
#include <unistd.h>

#include <chrono>

#include "common/net.h"

namespace rgpu::testing {

int DialLoopback(int port) {
  Result<int> fd = net::Connect({"127.0.0.1", static_cast<uint16_t>(port)}, 2000);
  return fd.ok() ? *fd : -1;
}

bool ReadFrame(int fd, proto::FrameHeader* h, std::vector<uint8_t>* body, int timeout_ms) {
  if (!net::WaitReadable(fd, timeout_ms)) return false;
  uint8_t hb[proto::kFrameHeaderSize];
  if (!net::ReadExact(fd, hb, sizeof hb).ok()) return false;
  if (!proto::DecodeFrameHeader(hb, proto::kMaxFramePayload, h).ok()) return false;
  body->resize(h->length);
  return net::ReadExact(fd, body->data(), body->size()).ok();
}

bool PeerCloses(int fd, int timeout_ms) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  char buf[4096];
  while (std::chrono::steady_clock::now() < deadline) {
    if (!net::WaitReadable(fd, 50)) continue;
    if (recv(fd, buf, sizeof buf, 0) <= 0) return true;
  }
  return false;
}

proto::HelloReply Handshake(int fd, const std::string& token, uint32_t version) {
  proto::HelloReply r;
  r.status = proto::HelloStatus::kMalformed;
  r.message = "no reply";
  auto frame = proto::EncodeHelloFrame({proto::kHelloMagic, version, token, "test", 1});
  if (!net::WriteAll(fd, frame.data(), frame.size()).ok()) return r;
  proto::FrameHeader h;
  std::vector<uint8_t> body;
  do {  // queue-position events may come first
    if (!ReadFrame(fd, &h, &body, 10000)) return r;
  } while (h.flags & proto::kEvent);
  if (!proto::DecodeHelloReply(body, &r).ok()) r.message = "undecodable reply";
  return r;
}

bool SendAll(int fd, const std::vector<uint8_t>& bytes) { return net::WriteAll(fd, bytes.data(), bytes.size()).ok(); }

int NextAnswer(int fd, proto::FrameHeader* h, std::vector<uint8_t>* rest, int timeout_ms) {
  std::vector<uint8_t> body;
  do {
    if (!ReadFrame(fd, h, &body, timeout_ms)) return -1;
  } while (h->flags & proto::kEvent);
  proto::Reader r(body);
  int32_t cu = -1;
  if (!r.I32(&cu).ok()) return -1;
  rest->assign(body.begin() + 4, body.end());
  return cu;
}

}  // namespace rgpu::testing
