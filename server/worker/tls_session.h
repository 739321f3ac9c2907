// The worker's side of a TLS session (docs/security.md, proto/handshake.h).
//
// The supervisor authenticated the client inside its own TLS session, then
// ended it and handed over the socket with a one-time secret. The worker
// runs a fresh TLS handshake with the client on that socket (its own
// certificate and key, loaded before the sandbox closes the file system)
// and requires the client's first message to be a Bind carrying the same
// secret: only the process that authenticated in the first session has it.
#pragma once

#include <memory>
#include <string>

#include "common/status.h"
#include "common/tls.h"

namespace rgpu::worker {

// Accepts the client's TLS session on `fd` and checks its Bind against
// `secret` (constant time), all within `timeout_ms`. Fails, with the reason
// for the log, on a failed handshake, a missing, malformed or wrong Bind.
// The client then gets nothing more: it was not the client the supervisor
// admitted, or the link broke.
Result<std::unique_ptr<tls::Stream>> AcceptBoundSession(std::shared_ptr<tls::Context> ctx, int fd,
                                                        const std::string& secret, int timeout_ms);

}  // namespace rgpu::worker
