// A client that speaks the wire protocol by hand, for tests that must send
// what the real client library never would (bad enums, ranges outside an
// allocation, floods) or must watch each reply. Every read has a deadline:
// a test fails, it never hangs.
#pragma once

#include <cstdint>
#include <cstddef>
#include <string>
#include <type_traits>
#include <vector>

#include "common/status.h"
#include "proto/calls.gen.h"
#include "proto/coding.h"
#include "proto/frame.h"
#include "proto/handshake.h"
#include "proto/version.h"

namespace rgpu::testing {

// Connects to 127.0.0.1:port; -1 on failure.
int DialLoopback(int port);
// Reads one frame within timeout_ms; false on EOF, error or timeout.
bool ReadFrame(int fd, proto::FrameHeader* h, std::vector<uint8_t>* body, int timeout_ms = 3000);
// True when the peer closes within the timeout (whatever it sent first).
bool PeerCloses(int fd, int timeout_ms = 3000);
// Sends a hello and returns the reply (status kMalformed, message "no
// reply", when none comes).
proto::HelloReply Handshake(int fd, const std::string& token, uint32_t version = proto::kProtocolVersion);

bool SendAll(int fd, const std::vector<uint8_t>& bytes);
// Sends one request frame; `async` sets kNoReply.
template <class Req>
bool Send(int fd, proto::CallId id, const Req& req, uint64_t rid, bool async = false) {
  std::vector<uint8_t> payload, frame;
  proto::Writer w(&payload);
  proto::Encode(w, req);
  proto::AppendFrame({0, static_cast<uint16_t>(id), static_cast<uint16_t>(async ? proto::kNoReply : 0), rid},
                     payload, &frame);
  return SendAll(fd, frame);
}

// The next reply or async error (events are skipped). Returns its CUresult
// (-1: none within the timeout); *rest gets the bytes after the CUresult.
int NextAnswer(int fd, proto::FrameHeader* h, std::vector<uint8_t>* rest, int timeout_ms = 3000);

// A synchronous call: returns the reply's CUresult (-1: no reply) and, on
// success, decodes the reply fields into *rep.
template <class Req, class Rep>
int Call(int fd, proto::CallId id, const Req& req, uint64_t rid, Rep* rep) {
  if (!Send(fd, id, req, rid)) return -1;
  proto::FrameHeader h;
  std::vector<uint8_t> rest;
  int cu = NextAnswer(fd, &h, &rest);
  if constexpr (!std::is_same_v<Rep, std::nullptr_t>) {
    if (cu == 0 && rep != nullptr) {
      proto::Reader r(rest);
      if (!proto::Decode(r, rep).ok()) return -2;  // a reply that does not decode
    }
  }
  return cu;
}
template <class Req>
int Call(int fd, proto::CallId id, const Req& req, uint64_t rid) {
  return Call<Req, std::nullptr_t>(fd, id, req, rid, nullptr);
}

}  // namespace rgpu::testing
