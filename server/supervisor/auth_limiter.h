// AuthLimiter: rate limiting of failed handshakes per source address.
//
// A handshake fails when the peer sends garbage or a malformed hello, speaks
// another protocol version, presents a wrong or missing token, or lets the
// handshake deadline pass. Each failure is charged to the peer's address
// (an IPv4 address, or the /64 prefix of an IPv6 one, since one IPv6 host
// commonly holds a whole /64). Once an address has `limit` failures within
// one window, its new connections are refused at once, without looking at
// their token, until the window that began with its first failure is over:
// a token cannot be guessed faster than `limit` tries per window per address.
//
// Trade-off (docs/security.md): the check comes before the token, so a good
// client that shares an address (a NAT, a shared login host) with someone
// failing repeatedly is refused too until the window ends. A peer that
// connects and hangs up before sending a whole hello is not charged: it has
// tried nothing.
//
// Bounded: at most `max_addresses` are tracked. When the table is full,
// finished windows are dropped first, then the address whose window started
// earliest (so a flood from many addresses cannot grow memory; it can only
// shorten how long an old entry is remembered).
//
// Not thread-safe: driven by the supervisor's poll loop.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <unordered_map>

namespace rgpu::server {

struct AuthLimiterOptions {
  int limit = 20;                            // failures per window; 0 turns limiting off
  std::chrono::milliseconds window{60000};   // how long failures count
  size_t max_addresses = 4096;               // tracked addresses at most
};

class AuthLimiter {
 public:
  using Clock = std::chrono::steady_clock;

  explicit AuthLimiter(AuthLimiterOptions options) : options_(options) {}

  // The limiter's key for a peer named "HOST:PORT" (net::PeerName): the
  // host for IPv4, "PREFIX::/64" for IPv6.
  static std::string AddressOf(const std::string& peer);

  // Whether connections from `address` are refused now. When refused,
  // *retry_after says for how long still, and *first_refusal is true the
  // first time in this window (log it then, not for every connection).
  bool Refused(const std::string& address, Clock::time_point now,
               std::chrono::milliseconds* retry_after, bool* first_refusal);

  // Charges one failed handshake to `address`. Returns true when this
  // failure reached the limit (the address is refused from now on).
  bool RecordFailure(const std::string& address, Clock::time_point now);

  size_t tracked() const { return entries_.size(); }
  const AuthLimiterOptions& options() const { return options_; }

 private:
  struct Entry {
    Clock::time_point window_start;
    int failures = 0;
    bool refusal_logged = false;
  };
  // Makes room for one more entry (see the header comment).
  void Evict(Clock::time_point now);

  const AuthLimiterOptions options_;
  std::unordered_map<std::string, Entry> entries_;
};

}  // namespace rgpu::server
