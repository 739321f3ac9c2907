#include "server/supervisor/auth_limiter.h"

#include <arpa/inet.h>

#include <cstring>

namespace rgpu::server {

std::string AuthLimiter::AddressOf(const std::string& peer) {
  size_t colon = peer.rfind(':');
  std::string host = colon == std::string::npos ? peer : peer.substr(0, colon);
  in6_addr a6{};
  if (host.find(':') == std::string::npos || inet_pton(AF_INET6, host.c_str(), &a6) != 1) return host;
  // IPv4-mapped addresses name one IPv4 host: keep them whole.
  if (IN6_IS_ADDR_V4MAPPED(&a6)) return host;
  memset(a6.s6_addr + 8, 0, 8);
  char buf[INET6_ADDRSTRLEN];
  if (inet_ntop(AF_INET6, &a6, buf, sizeof buf) == nullptr) return host;
  return std::string(buf) + "/64";
}

bool AuthLimiter::Refused(const std::string& address, Clock::time_point now,
                          std::chrono::milliseconds* retry_after, bool* first_refusal) {
  *first_refusal = false;
  if (options_.limit <= 0) return false;
  auto it = entries_.find(address);
  if (it == entries_.end()) return false;
  Entry& e = it->second;
  Clock::time_point end = e.window_start + options_.window;
  if (now >= end) {  // the window is over: the address starts afresh
    entries_.erase(it);
    return false;
  }
  if (e.failures < options_.limit) return false;
  *retry_after = std::chrono::ceil<std::chrono::milliseconds>(end - now);
  *first_refusal = !e.refusal_logged;
  e.refusal_logged = true;
  return true;
}

bool AuthLimiter::RecordFailure(const std::string& address, Clock::time_point now) {
  if (options_.limit <= 0) return false;
  auto it = entries_.find(address);
  if (it != entries_.end() && now >= it->second.window_start + options_.window) {
    entries_.erase(it);
    it = entries_.end();
  }
  if (it == entries_.end()) {
    if (entries_.size() >= options_.max_addresses) Evict(now);
    it = entries_.emplace(address, Entry{now, 0, false}).first;
  }
  return ++it->second.failures == options_.limit;
}

void AuthLimiter::Evict(Clock::time_point now) {
  for (auto it = entries_.begin(); it != entries_.end();) {
    if (now >= it->second.window_start + options_.window) it = entries_.erase(it);
    else ++it;
  }
  while (!entries_.empty() && entries_.size() >= options_.max_addresses) {
    auto oldest = entries_.begin();
    for (auto it = entries_.begin(); it != entries_.end(); ++it)
      if (it->second.window_start < oldest->second.window_start) oldest = it;
    entries_.erase(oldest);
  }
}

}  // namespace rgpu::server
