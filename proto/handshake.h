// The handshake: the first frame on a connection (call id 0, kHello).
//
// Client -> server  Hello      {u32 magic, u32 version, str token, str identity,
//                               u32 gpus_wanted, u8 compress_offer}
// Server -> client  HelloReply {i32 status, str message, u64 session_id,
//                               u8 codec}
// compress_offer: the codecs the client would use (proto/compression.h,
// bits 1 << Codec); codec: the server's pick, kNone for plain frames.
// status 0 means accepted; otherwise the server closes the connection after
// the reply, and `message` says why (wrong token, version mismatch, ...).
//
// Over TLS (docs/security.md) the same Hello goes to the supervisor inside a
// first TLS session. Instead of the HelloReply the supervisor, once a GPU
// is the client's, ends that session with
// Server -> client  HandOver   kEvent frame, call kEventHandOver:
//                              {i32 0, bytes secret}, then close_notify
// and the client opens a second TLS session on the same socket, now with the
// worker, whose first message is
// Client -> worker  Bind       {u32 kBindMagic, bytes secret}  (call 0, flags 0)
// The worker got the secret from the supervisor with the socket; it answers
// a matching Bind with the HelloReply, and closes on anything else. The
// secret ties the second session to the client that authenticated in the
// first: whoever takes over the TCP stream between the two cannot bind.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "common/status.h"

namespace rgpu::proto {

constexpr uint32_t kMaxTokenLength = 4096;
constexpr uint32_t kMaxIdentityLength = 1024;
constexpr uint32_t kMaxHelloPayload = 8192;

struct Hello {
  uint32_t magic = 0;
  uint32_t version = 0;
  std::string token;
  std::string identity;  // "user@host pid=N exe=/path"
  uint32_t gpus_wanted = 1;  // GPUs for this session; kAllGpus: every GPU of the server
  uint8_t compress_offer = 0;  // CodecBit()s
};

// Hello::gpus_wanted for "all the server's GPUs" (RGPU_GPUS=all).
constexpr uint32_t kAllGpus = 0xffffffffu;

enum class HelloStatus : int32_t {
  kAccepted = 0,
  kBadVersion = 1,
  kBadToken = 2,
  kRefused = 3,     // e.g. non-loopback peer without a configured token
  kNoCapacity = 4,  // too many sessions, or no worker could be started
  kMalformed = 5,
};

struct HelloReply {
  HelloStatus status = HelloStatus::kAccepted;
  std::string message;
  uint64_t session_id = 0;
  uint8_t codec = 0;  // a Codec the client offered, or 0 (none)
};

// Whole frames (header + payload), ready to write.
std::vector<uint8_t> EncodeHelloFrame(const Hello& h);
std::vector<uint8_t> EncodeHelloReplyFrame(const HelloReply& r);
// Decode a payload (the frame header was checked by the caller).
Status DecodeHello(std::span<const uint8_t> payload, Hello* h);
Status DecodeHelloReply(std::span<const uint8_t> payload, HelloReply* r);

constexpr uint16_t kEventHandOver = 5;  // after 1..4 of server/worker/output_capture.h
constexpr uint32_t kBindMagic = 0x444E4942;  // "BIND" little-endian
constexpr size_t kHandOverSecretSize = 32;

std::vector<uint8_t> EncodeHandOverFrame(const std::string& secret);
std::vector<uint8_t> EncodeBindFrame(const std::string& secret);
// Payloads (after the frame header). The secret must be kHandOverSecretSize bytes.
Status DecodeHandOver(std::span<const uint8_t> payload, std::string* secret);
Status DecodeBind(std::span<const uint8_t> payload, std::string* secret);

// Compares secrets in time independent of where they differ.
bool ConstantTimeEquals(const std::string& a, const std::string& b);

}  // namespace rgpu::proto
