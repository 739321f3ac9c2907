// Control channel between the supervisor and one worker: a Unix
// SOCK_SEQPACKET pair, one message per packet, optionally carrying one file
// descriptor (SCM_RIGHTS). The supervisor never touches CUDA; workers tell it
// when they are warm, and it hands them clients.
//
//   worker -> supervisor  kReady    {}            context created, may take a session
//   supervisor -> worker  kAttach   {u64 session_id, str identity} + client fd
//   worker -> supervisor  kReleased {u64 session_id}  the session ended and every
//                                   byte it wrote is wiped: the GPU may go on
//                                   while this process tears its context down
//
// Both ends check the message kind and length; a malformed message ends the
// worker (it never serves a client it cannot identify).
#pragma once

#include <cstdint>
#include <string>

#include "common/status.h"

namespace rgpu::server {

enum class ControlKind : uint8_t { kReady = 1, kAttach = 2, kReleased = 3 };

struct ControlMessage {
  ControlKind kind = ControlKind::kReady;
  uint64_t session_id = 0;
  std::string identity;
  int fd = -1;  // received or to send; -1 for none
};

// Creates a connected pair (both CLOEXEC).
Status ControlPair(int fds[2]);
Status SendControl(int sock, const ControlMessage& m);
// Blocks for one message. kTransport when the peer closed.
Status ReceiveControl(int sock, ControlMessage* m);

}  // namespace rgpu::server
