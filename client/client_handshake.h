// The client's half of the handshake (proto/handshake.h), inside cuInit.
//
// Plaintext: Hello, then queue-position events while every GPU is leased,
// then the worker's HelloReply.
// TLS (options.tls): a first TLS session with the supervisor carries the
// Hello and the queue events and ends with the hand-over secret and
// close_notify; a second TLS session on the same socket, with the worker,
// starts with the Bind frame and gets the HelloReply. Both sessions check the
// server's certificate against options.tls_ca (or the system store) and
// the server's name. A plaintext server, a TLS server met without TLS, a
// certificate that does not verify: each fails with one line that says
// which and what to set.
#pragma once

#include <cstdint>
#include <memory>

#include "client/connection.h"
#include "common/status.h"
#include "common/tls.h"
#include "proto/handshake.h"

namespace rgpu::client {

struct HandshakeResult {
  uint64_t session_id = 0;
  std::unique_ptr<tls::Stream> tls;  // the worker's session; null for plaintext
  proto::Codec codec = proto::Codec::kNone;  // the server's pick of the offered codecs
};

// Runs the handshake on connected socket `fd` (blocking). Fails with kAuth
// when the server refused the session (token, version, capacity), kTransport
// when the link or TLS failed, kInvalid for a bad local TLS setting.
Result<HandshakeResult> ClientHandshake(int fd, const ConnectOptions& options, const proto::Hello& hello);

}  // namespace rgpu::client
