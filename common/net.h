// Small socket helpers shared by client and server. Every error names the
// operation and the peer ("connect 10.0.0.5:7070: Connection refused").
// EINTR is retried, never reported.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "common/status.h"

namespace rgpu::net {

struct HostPort {
  std::string host;
  uint16_t port = 0;
};

// Parses "HOST:PORT" or "[v6]:PORT"; a bare "HOST" gets `default_port`.
// Port 0 is accepted (listening on it picks a free port).
Result<HostPort> ParseHostPort(const std::string& text, uint16_t default_port);

// Blocking TCP connect with TCP_NODELAY set, bounded by `timeout_ms`.
Result<int> Connect(const HostPort& hp, int timeout_ms);
// Listening socket (SO_REUSEADDR, CLOEXEC). Port 0 picks a free port.
Result<int> Listen(const HostPort& hp, int backlog);
// The port a listening socket is bound to.
Result<uint16_t> LocalPort(int fd);
// True when the connected peer's address is loopback.
bool PeerIsLoopback(int fd);
std::string PeerName(int fd);
bool IsLoopbackHost(const std::string& host);

// Write all of buf (blocking fd). kTransport on failure or closed peer.
Status WriteAll(int fd, const void* buf, size_t n);
// Write all of a, then all of b, as one byte stream with as few system
// calls as the socket takes (sendmsg with both pieces): a frame header and
// its data go out in one segment instead of two.
Status WriteAll2(int fd, const void* a, size_t na, const void* b, size_t nb);
// Write all of buf to any fd (pipe, file, tty) with write(2).
Status WriteFd(int fd, const void* buf, size_t n);
// Read exactly n bytes (blocking fd). kTransport on failure; "closed" on EOF.
Status ReadExact(int fd, void* buf, size_t n);
// Waits until fd is readable, at most timeout_ms. false on timeout.
bool WaitReadable(int fd, int timeout_ms);

void SetNoDelay(int fd);
void SetCloexec(int fd, bool on);

}  // namespace rgpu::net
