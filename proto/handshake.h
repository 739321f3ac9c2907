// The handshake: the first frame on a connection (call id 0, kHello).
//
// Client -> server  Hello      {u32 magic, u32 version, str token, str identity,
//                               u32 gpus_wanted}
// Server -> client  HelloReply {i32 status, str message, u64 session_id}
// status 0 means accepted; otherwise the server closes the connection after
// the reply, and `message` says why (wrong token, version mismatch, ...).
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
  uint32_t gpus_wanted = 1;
};

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
};

// Whole frames (header + payload), ready to write.
std::vector<uint8_t> EncodeHelloFrame(const Hello& h);
std::vector<uint8_t> EncodeHelloReplyFrame(const HelloReply& r);
// Decode a payload (the frame header was checked by the caller).
Status DecodeHello(std::span<const uint8_t> payload, Hello* h);
Status DecodeHelloReply(std::span<const uint8_t> payload, HelloReply* r);

// Compares secrets in time independent of where they differ.
bool ConstantTimeEquals(const std::string& a, const std::string& b);

}  // namespace rgpu::proto
