// Control channel between the supervisor and one worker: a Unix
// SOCK_SEQPACKET pair, one message per packet, optionally carrying one file
// descriptor (SCM_RIGHTS). The supervisor never touches CUDA; workers tell it
// when they are warm, and it hands them clients.
//
//   worker -> supervisor  kReady    {}            context created, may take a session
//   supervisor -> worker  kAttach   {u64 session_id, str identity, gpus, secret,
//                                   value: the agreed proto::Codec} + client fd
//   worker -> supervisor  kReleased {u64 session_id}  the session ended and every
//                                   byte it wrote is wiped: the GPU may go on
//                                   while this process tears its context down
//
// Idle detach (docs/time-slicing.md; `value` carries the number):
//   supervisor -> worker  kWaiting  {value: sessions waiting}  sent when it changes
//   worker -> supervisor  kUsage    {value: device bytes held}  at most once a second
//   worker -> supervisor  kDetached {value: bytes swapped out}  memory saved, wiped and
//                                   freed: the GPU may go to the next session
//   worker -> supervisor  kReattach {value: 1 if the session can move to another
//                                   GPU of its type, else 0}  a call needs a GPU
//                                   again: queue me
//   supervisor -> worker  kResume   {gpus: the GPUs it got, as pool positions, in
//                                   client order}  its own, or another of the same
//                                   type (the worker then moves the session there)
//
// After a session ended without its wipe (its worker died or was ended
// while its GPU was still busy), before the GPU serves anyone else:
//   supervisor -> worker  kScrub    {}  a warm worker zeroes all the free memory
//                                   of its GPU, then says kReady again
//
// Both ends check the message kind and length; a malformed message ends the
// worker (it never serves a client it cannot identify).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/status.h"

namespace rgpu::server {

enum class ControlKind : uint8_t {
  kReady = 1,
  kAttach = 2,
  kReleased = 3,
  kWaiting = 4,
  kUsage = 5,
  kDetached = 6,
  kReattach = 7,
  kResume = 8,
  kScrub = 9,
};

struct ControlMessage {
  ControlKind kind = ControlKind::kReady;
  uint64_t session_id = 0;
  std::string identity;
  int fd = -1;  // received or to send; -1 for none
  uint64_t value = 0;  // kWaiting, kUsage, kDetached: see above
  // kAttach: the session's GPUs as the worker's backend ordinals (positions
  // in the pool; see server/worker/device_map.h), in the order the client
  // numbers them; the first is the worker's own warm GPU. kResume: the GPUs
  // the detached session gets back, the same way. Empty elsewhere (a
  // message of another kind that carries GPUs is refused as malformed).
  std::vector<int> gpus;
  // kAttach over TLS: the one-time secret the client must present to the
  // worker in its own TLS session (proto/handshake.h). Empty elsewhere.
  std::string secret;
};

// Creates a connected pair (both CLOEXEC).
Status ControlPair(int fds[2]);
// `nonblocking`: fail (kTransport, EAGAIN) rather than wait when the peer's
// buffer is full (notices the supervisor may repeat later).
Status SendControl(int sock, const ControlMessage& m, bool nonblocking = false);
// Blocks for one message. kTransport when the peer closed.
Status ReceiveControl(int sock, ControlMessage* m);

}  // namespace rgpu::server
